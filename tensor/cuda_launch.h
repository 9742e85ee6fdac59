// The two spellings that differ between nvcc and the CPU simulator (tests/cudasim): a kernel launch
// and dynamic shared memory. Every .cu file of the project uses these instead of <<<>>> and
// `extern __shared__`, so that the same source compiles with nvcc for the GPU and with g++ for the
// simulated build that CI runs.
//
//   AHMSA_LAUNCH(grid, block, shared_bytes, stream, kernel<T>)(args...);
//   AHMSA_DYNAMIC_SHARED(float, tile);   // inside a kernel: float* tile, shared_bytes long
//
// The kernel comes last so that a template with several arguments needs no parentheses.
#pragma once
#include <cuda_runtime.h>

#ifdef CUDASIM  // defined by the simulator's cuda_runtime.h
#define AHMSA_LAUNCH(grid, block, shared_bytes, stream, ...) \
  ::cudasim::launch(#__VA_ARGS__, grid, block, shared_bytes, stream, __VA_ARGS__)
#define AHMSA_DYNAMIC_SHARED(T, name) T* name = ::cudasim::dynamic_shared<T>()
#else
#define AHMSA_LAUNCH(grid, block, shared_bytes, stream, ...) __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#define AHMSA_DYNAMIC_SHARED(T, name)                            \
  extern __shared__ __align__(16) unsigned char ahmsa_dynamic_shared_[]; \
  T* name = reinterpret_cast<T*>(ahmsa_dynamic_shared_)
#endif
