// BatchNorm's per-channel statistics on the GPU: the running estimates of training and the constant
// statistics of eval mode; the twins of batch_norm_update_running / batch_norm_eval_stats in
// tensor/cpu_norm.cpp (maths in tensor/kernels.h). One thread per channel, the CPU's expressions.
#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

// r = (1 − m) r + m batch
__global__ void batch_norm_update_running_kernel(float* __restrict__ running_mean, float* __restrict__ running_var,
                                                 const float* __restrict__ mean,
                                                 const float* __restrict__ var_unbiased, int64_t C, float momentum) {
  AHMSA_GRID_STRIDE_LOOP(c, C) {
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1 - momentum) * running_var[c] + momentum * var_unbiased[c];
  }
}

// mean = rmean, invstd = 1/sqrt(rvar + eps) (IEEE division and square root, as on the CPU)
__global__ void batch_norm_eval_stats_kernel(const float* __restrict__ rmean, const float* __restrict__ rvar,
                                             float* __restrict__ mean, float* __restrict__ invstd, int64_t C,
                                             float eps) {
  AHMSA_GRID_STRIDE_LOOP(c, C) {
    mean[c] = rmean[c];
    invstd[c] = 1.f / sqrtf(rvar[c] + eps);
  }
}

}  // namespace

void batch_norm_update_running(float* running_mean, float* running_var, const float* mean, const float* var_unbiased,
                               int64_t C, float momentum) {
  if (C <= 0) return;
  AHMSA_LAUNCH(blocks_for(C), kThreads, 0, stream(), batch_norm_update_running_kernel)(running_mean, running_var, mean,
                                                                                      var_unbiased, C, momentum);
  check_launch_of([&] { return "batch_norm_update_running of " + std::to_string(C) + " channels"; });
}

void batch_norm_eval_stats(const float* rmean, const float* rvar, float* mean, float* invstd, int64_t C, float eps) {
  if (C <= 0) return;
  AHMSA_LAUNCH(blocks_for(C), kThreads, 0, stream(), batch_norm_eval_stats_kernel)(rmean, rvar, mean, invstd, C, eps);
  check_launch_of([&] { return "batch_norm_eval_stats of " + std::to_string(C) + " channels"; });
}

}  // namespace ahmsa::cuda
