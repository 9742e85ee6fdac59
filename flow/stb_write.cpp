// The stb_image_write implementation (PNG, JPEG, BMP writers), in its own file: its JPEG bit writer
// left-shifts negative ints (stbiw__jpg_writeBits), undefined in C++17 though harmless in practice,
// so the sanitizer build compiles this file without UBSan's shift-base check (CMakeLists.txt). The
// readers (flow/image.cpp, stb_image) stay fully sanitized: fuzzing found real defects there.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
