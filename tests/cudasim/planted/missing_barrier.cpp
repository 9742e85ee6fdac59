// A planted bug for the simulator's TSan check: a block reverses a tile through shared memory without
// the barrier between the writes and the reads. Built with -fsanitize=thread; CTest expects TSan's
// data-race report naming this file. (The same kernel with __syncthreads() is race-free.)
#include <cuda_runtime.h>

#include <cstdio>

#include "tensor/cuda_launch.h"

__global__ void reverse_tile(const float* x, float* y) {
  __shared__ float tile[64];
  tile[threadIdx.x] = x[threadIdx.x];
  // the planted bug: __syncthreads() belongs here
  y[threadIdx.x] = tile[63 - threadIdx.x];
}

__global__ void reverse_tile_fixed(const float* x, float* y) {
  __shared__ float tile[64];
  tile[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  y[threadIdx.x] = tile[63 - threadIdx.x];
}

int main() {
  float *x = nullptr, *y = nullptr;
  cudaMalloc(&x, 64 * sizeof(float));
  cudaMalloc(&y, 64 * sizeof(float));
  cudaMemset(x, 0, 64 * sizeof(float));
  AHMSA_LAUNCH(1, 64, 0, nullptr, reverse_tile_fixed)(x, y);  // first: a clean run, which reports nothing
  AHMSA_LAUNCH(1, 64, 0, nullptr, reverse_tile)(x, y);
  std::printf("no report: the race went unnoticed (%s)\n", cudaGetErrorName(cudaGetLastError()));
  return 0;
}
