// Random kernels on the GPU: the dropout mask from the counter-based generator
// (tensor/counter_rng.h), the twin of tensor/cpu_random.cpp. Element i depends only on
// (seed, offset + i), so the mask is the CPU's bit for bit, whatever the thread order.
#include "tensor/counter_rng.h"
#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

__global__ void dropout_mask_kernel(float* __restrict__ mask, int64_t n, float p, float scale, uint64_t seed,
                                    uint64_t offset, const uint64_t* __restrict__ offset_shift) {
  if (offset_shift) offset += *offset_shift;
  AHMSA_GRID_STRIDE_LOOP(i, n) mask[i] = counter_uniform(seed, offset + uint64_t(i)) < p ? 0.f : scale;
}

}  // namespace

void dropout_mask(float* mask, int64_t n, float p, uint64_t seed, uint64_t offset, const uint64_t* offset_shift) {
  if (n <= 0) return;
  const float scale = 1.f / (1.f - p);  // on the host, as the CPU kernel computes it
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), dropout_mask_kernel)(mask, n, p, scale, seed, offset,
                                                                                  offset_shift);
  check_launch_of([&] { return "dropout_mask of " + std::to_string(n) + " elements (p " + std::to_string(p) + ")"; });
}

}  // namespace ahmsa::cuda
