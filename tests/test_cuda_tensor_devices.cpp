// The cases of test_tensor_devices.cpp once more, as a CUDA test: built against the simulated CUDA
// libraries (run in the simulator's three thread orders) and, with nvcc, against the real ones, so
// every branch that needs cuda_available() runs in CI. The plain build runs test_tensor_devices.
#include "test_tensor_devices.cpp"
