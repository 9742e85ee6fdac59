# Embedding (docs/EMBEDDING.md): the C example built in the tree, and what `cmake --install` puts in a
# prefix: the headers (include/ahmsa), the product static libraries (lib), the CMake package
# (lib/cmake/ahmsa: ahmsa::infer, ahmsa::train and the libraries under them) and a pkg-config file
# (lib/pkgconfig/ahmsa.pc, for ahmsa::infer). Only product libraries are installed, never the _common
# object libraries or the _sim twins. Included by CMakeLists.txt after the libraries are defined.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The exported name of each installed library (ahmsa::<name>), and the folders whose headers it needs.
set(AHMSA_INFER_LIBS ahmsa_tensor ahmsa_model ahmsa_flow ahmsa_infer)
set(AHMSA_INFER_DIRS tensor autograd layers model flow infer)
set(AHMSA_TRAIN_LIBS)
set(AHMSA_TRAIN_DIRS)
set(AHMSA_HAVE_TRAIN OFF)
if(TARGET ahmsa_train)
  set(AHMSA_HAVE_TRAIN ON)
  set(AHMSA_TRAIN_LIBS ahmsa_optim ahmsa_data ahmsa_train)
  set(AHMSA_TRAIN_DIRS train train/optim train/data)
endif()
foreach(lib ${AHMSA_INFER_LIBS} ${AHMSA_TRAIN_LIBS})
  string(REGEX REPLACE "^ahmsa_" "" short ${lib})
  set_target_properties(${lib} PROPERTIES EXPORT_NAME ${short})
  add_library(ahmsa::${short} ALIAS ${lib})
endforeach()
# The C API header is included as <ahmsa.h>: capi/ in the tree, include/ahmsa once installed.
target_include_directories(ahmsa_infer PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/capi>)

# ---- the C example (examples/classify.c), compiled as C against ahmsa::infer ---------------------
add_executable(ahmsa_classify ${CMAKE_SOURCE_DIR}/examples/classify.c)
target_link_libraries(ahmsa_classify PRIVATE ahmsa_infer)
if(AHMSA_MINIMAL)
  target_link_options(ahmsa_classify PRIVATE -Wl,--gc-sections)
endif()

# ---- install -----------------------------------------------------------------------------------
set(AHMSA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ahmsa)
install(TARGETS ${AHMSA_INFER_LIBS} ${AHMSA_TRAIN_LIBS} EXPORT ahmsaTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(dir ${AHMSA_INFER_DIRS} ${AHMSA_TRAIN_DIRS})
  file(GLOB headers ${CMAKE_SOURCE_DIR}/${dir}/*.h)
  install(FILES ${headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ahmsa/${dir})
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/capi/ahmsa.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ahmsa)
install(EXPORT ahmsaTargets NAMESPACE ahmsa:: DESTINATION ${AHMSA_CMAKE_DIR})

# What the package reports (ahmsa_HAVE_<part> and the components of find_package(ahmsa COMPONENTS ...)).
set(AHMSA_HAVE_OPENMP OFF)
if(OpenMP_CXX_FOUND)
  set(AHMSA_HAVE_OPENMP ON)
endif()
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/ahmsaConfig.cmake.in ${CMAKE_BINARY_DIR}/package/ahmsaConfig.cmake
                              INSTALL_DESTINATION ${AHMSA_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/package/ahmsaConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/package/ahmsaConfig.cmake ${CMAKE_BINARY_DIR}/package/ahmsaConfigVersion.cmake
        DESTINATION ${AHMSA_CMAKE_DIR})

# pkg-config: the inference libraries in link order, then what they need from the system.
set(AHMSA_PC_LIBS "-lahmsa_infer -lahmsa_model -lahmsa_flow -lahmsa_tensor")
set(AHMSA_PC_REQUIRES "")
if(AHMSA_HAVE_OPENMP)
  string(APPEND AHMSA_PC_LIBS " ${OpenMP_CXX_FLAGS}")
endif()
if(AHMSA_THREADS)
  string(APPEND AHMSA_PC_LIBS " -pthread")
endif()
if(AHMSA_HAVE_CUDA)
  string(APPEND AHMSA_PC_LIBS " -L${CUDAToolkit_LIBRARY_DIR} -lcublas -lcudart")
endif()
if(AHMSA_HAVE_OPENCV)
  set(AHMSA_PC_REQUIRES "opencv4")
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/ahmsa.pc.in ${CMAKE_BINARY_DIR}/package/ahmsa.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/package/ahmsa.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# ---- tests ---------------------------------------------------------------------------------------
# The C example on the tiny fixture checkpoint; with the full build also against `ahmsa predict`
# (same probabilities) and built from scratch against the installed package (tests/embed/).
enable_testing()
set(AHMSA_TINY_MODEL ${CMAKE_SOURCE_DIR}/tests/fixtures/tiny_model.safetensors)
set(AHMSA_TINY_UVOS ${CMAKE_SOURCE_DIR}/tests/fixtures/tiny_uvos.png)
add_test(NAME c_example COMMAND ahmsa_classify ${AHMSA_TINY_MODEL} ${AHMSA_TINY_UVOS})
set_tests_properties(c_example PROPERTIES PASS_REGULAR_EXPRESSION "logits: [-0-9.e]+ [-0-9.e]+ [-0-9.e]+\nprobabilities:")
if(NOT AHMSA_MINIMAL)
  add_test(NAME c_example_vs_predict
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/embed/c_example_vs_predict.sh $<TARGET_FILE:ahmsa_classify> $<TARGET_FILE:ahmsa>
                   ${AHMSA_TINY_MODEL} ${AHMSA_SHARED_DIR}/data/flow)
endif()
# (Not in a sanitized build: the consumer, built without the sanitizer, could not link its libraries.)
if(NOT AHMSA_MINIMAL AND NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
  add_test(NAME package_consumer
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/embed/package_consumer.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR}
                   $<TARGET_FILE:ahmsa_classify> ${AHMSA_SHARED_DIR}/data/flow)
  set_tests_properties(package_consumer PROPERTIES TIMEOUT 600)
endif()
