// Launch geometry and launch checks shared by the tensor kernels of tensor/cuda_*.cu (included by
// .cu files only).
//
// Elementwise kernels use grid-stride loops with 64-bit indices: the grid is capped (kMaxBlocks), so
// any n is covered and no block count overflows. The deterministic reductions (sum, max, softmax,
// the loss) reduce in a fixed tree per block: the same shape always gives the same bits.
#pragma once
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "tensor/cuda_check.h"

namespace ahmsa::cuda {

constexpr int kThreads = 256;        // threads per block of the elementwise kernels
constexpr int64_t kMaxBlocks = 4096;  // enough to fill an H100/H200 (132 SMs x 2048 threads) many times

// Blocks for a grid-stride loop over n elements (n > 0).
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  return unsigned(std::min<int64_t>((n + threads - 1) / threads, kMaxBlocks));
}

// "[2, 3, 4]" for launch-error messages.
inline std::string dims_str(std::initializer_list<int64_t> d) {
  std::string s = "[";
  for (int64_t v : d) s += (s.size() > 1 ? ", " : "") + std::to_string(v);
  return s + "]";
}

// Checks the last launch (configuration, resources); describe() names the kernel and its shapes and
// runs only on failure, so a healthy launch formats no string (a training step is launch-bound).
template <class Describe>
void check_launch_of(Describe describe) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) check(e, describe());
}

// The first index and the stride of a grid-stride loop, in 64 bits.
#define AHMSA_GRID_STRIDE_LOOP(i, n)                                                              \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);                      \
       i += int64_t(blockDim.x) * gridDim.x)

}  // namespace ahmsa::cuda
