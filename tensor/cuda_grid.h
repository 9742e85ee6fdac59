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

// "[2, 3, 28, 28]" for launch-error messages.
inline std::string shape_str(std::initializer_list<int64_t> dims) {
  std::string s = "[";
  for (auto it = dims.begin(); it != dims.end(); ++it) s += (it == dims.begin() ? "" : ", ") + std::to_string(*it);
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

// Blocks of `threads` for a grid-stride loop over n items (kernels loop with 64-bit indices, so the
// grid may be smaller than n / threads; capped well inside the 2^31 − 1 limit of grid.x).
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(std::clamp<int64_t>(blocks, 1, int64_t(1) << 20));
}

// A 3-D grid over (pixels of a plane, channels, samples) of NCHW data: x covers the pixels in blocks
// of `threads`, y the channels, z the samples, each capped at its grid limit (65535 for y and z); the
// kernels stride over all three, so any size works and no thread divides to find its plane.
inline dim3 plane_grid(int64_t pixels, int64_t channels, int64_t samples, int threads) {
  return dim3(grid_for(pixels, threads), unsigned(std::clamp<int64_t>(channels, 1, 65535)),
              unsigned(std::clamp<int64_t>(samples, 1, 65535)));
}

// The loops of a kernel launched on plane_grid: pixel p (of count) of channel c (of C) of sample n (of N).
#define AHMSA_FOR_PIXELS(p, count) \
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < (count); p += int64_t(gridDim.x) * blockDim.x)
#define AHMSA_FOR_PLANES(c, C, n, N)                              \
  for (int64_t n = blockIdx.z; n < (N); n += gridDim.z)           \
    for (int64_t c = blockIdx.y; c < (C); c += gridDim.y)

}  // namespace ahmsa::cuda
