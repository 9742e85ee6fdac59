// A planted bug for the simulator's ASan check: the kernel reads one element past the end of its
// input. Built with -fsanitize=address; CTest expects ASan's heap-buffer-overflow report naming this
// file and the kernel's line.
#include <cuda_runtime.h>

#include <cstdio>

#include "tensor/cuda_launch.h"

__global__ void shift_left(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i + 1];  // the planted bug: x[n] is read by the last thread
}

int main() {
  const int n = 100;
  float *x = nullptr, *y = nullptr;
  cudaMalloc(&x, n * sizeof(float));
  cudaMalloc(&y, n * sizeof(float));
  AHMSA_LAUNCH(1, 128, 0, nullptr, shift_left)(x, y, n);
  std::printf("no report: the out-of-bounds read went unnoticed (%s)\n", cudaGetErrorName(cudaGetLastError()));
  return 0;
}
