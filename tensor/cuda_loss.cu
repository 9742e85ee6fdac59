// Cross-entropy with class weights and label smoothing on the GPU: the twins of cpu::cross_entropy and
// cpu::cross_entropy_soft (maths in tensor/kernels.h). The batch is small (a few hundred rows of a few classes), so one block
// does it all: a thread per row computes l_n and w[t_n] in the CPU's arithmetic (float softmax,
// double sums), a fixed tree adds them up (deterministic, no atomics), and then every thread writes
// its rows of dlogits with the normaliser it now knows.
#include <stdexcept>

#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

constexpr int kLossThreads = 256;

// log-sum-exp of row z and Σ_k exp(z_k − m), as cpu::cross_entropy computes them
__device__ inline float row_max(const float* z, int64_t K) {
  float m = z[0];
  for (int64_t k = 1; k < K; ++k) m = z[k] > m ? z[k] : m;  // std::max_element: first of the largest
  return m;
}

// q_k = (1 − ε) [k = t] + ε / K
__device__ inline float smoothed(int64_t k, int t, float eps, int64_t K) {
  return (k == t ? 1.f - eps : 0.f) + eps / float(K);
}

__global__ void cross_entropy_kernel(const float* __restrict__ logits, const int32_t* __restrict__ targets,
                                     const float* __restrict__ wc, int64_t N, int64_t K, float eps,
                                     float* __restrict__ loss, float* __restrict__ dlogits) {
  __shared__ double sh_loss[kLossThreads], sh_norm[kLossThreads];
  const int tid = int(threadIdx.x);
  double total = 0, norm = 0;
  for (int64_t n = tid; n < N; n += blockDim.x) {
    const float* z = logits + n * K;
    const int t = targets[n];
    const float m = row_max(z, K);
    float s = 0.f;
    for (int64_t k = 0; k < K; ++k) s += expf(z[k] - m);
    const float lse = m + logf(s);
    double ln = 0;
    for (int64_t k = 0; k < K; ++k) ln += -double(wc ? wc[k] : 1.f) * smoothed(k, t, eps, K) * (z[k] - lse);
    total += ln;
    norm += wc ? wc[t] : 1.f;
  }
  sh_loss[tid] = total;
  sh_norm[tid] = norm;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) sh_loss[tid] += sh_loss[tid + s], sh_norm[tid] += sh_norm[tid + s];
    __syncthreads();
  }
  norm = sh_norm[0];
  if (tid == 0) loss[0] = float(sh_loss[0] / norm);
  if (!dlogits) return;
  // ∂l_n/∂z_k = ((Σ_j w_j q_j) p_k − w_k q_k) / normaliser
  for (int64_t n = tid; n < N; n += blockDim.x) {
    const float* z = logits + n * K;
    const int t = targets[n];
    const float m = row_max(z, K);
    float s = 0.f, wq = 0.f;
    for (int64_t k = 0; k < K; ++k) {
      s += expf(z[k] - m);
      wq += (wc ? wc[k] : 1.f) * smoothed(k, t, eps, K);
    }
    for (int64_t k = 0; k < K; ++k) {
      const float p = expf(z[k] - m);
      dlogits[n * K + k] = float((wq * p / s - (wc ? wc[k] : 1.f) * smoothed(k, t, eps, K)) / norm);
    }
  }
}

// The soft-target twin of cpu::cross_entropy_soft: the normaliser is N, known before the pass, so each
// thread writes its rows of dlogits as it goes and the tree only adds up the loss.
__global__ void cross_entropy_soft_kernel(const float* __restrict__ logits, const float* __restrict__ targets,
                                          const float* __restrict__ wc, int64_t N, int64_t K, float eps,
                                          float* __restrict__ loss, float* __restrict__ dlogits) {
  __shared__ double sh_loss[kLossThreads];
  const int tid = int(threadIdx.x);
  double total = 0;
  for (int64_t n = tid; n < N; n += blockDim.x) {
    const float* z = logits + n * K;
    const float* t = targets + n * K;
    const float m = row_max(z, K);
    float s = 0.f;
    for (int64_t k = 0; k < K; ++k) s += expf(z[k] - m);
    const float lse = m + logf(s);
    double ln = 0;
    float wq = 0.f;
    for (int64_t k = 0; k < K; ++k) {
      const float q = (1.f - eps) * t[k] + eps / float(K), w = wc ? wc[k] : 1.f;
      ln += -double(w) * q * (z[k] - lse);
      wq += w * q;
    }
    total += ln;
    if (dlogits)
      for (int64_t k = 0; k < K; ++k) {
        const float q = (1.f - eps) * t[k] + eps / float(K), w = wc ? wc[k] : 1.f;
        dlogits[n * K + k] = float((wq * (expf(z[k] - m) / s) - w * q) / double(N));
      }
  }
  sh_loss[tid] = total;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) sh_loss[tid] += sh_loss[tid + s];
    __syncthreads();
  }
  if (tid == 0) loss[0] = float(sh_loss[0] / double(N));
}

}  // namespace

void cross_entropy_soft(const float* logits, const float* targets, const float* wc, int64_t N, int64_t K, float eps,
                        float* loss, float* dlogits) {
  if (N < 0 || (N > 0 && K <= 0))
    throw std::invalid_argument("cuda::cross_entropy_soft: logits " + shape_str({N, K}) + " (no classes)");
  int threads = 32;
  while (threads < kLossThreads && threads < N) threads *= 2;
  AHMSA_LAUNCH(1, threads, 0, stream(), cross_entropy_soft_kernel)(logits, targets, wc, N, K, eps, loss, dlogits);
  check_launch_of([&] { return "cross_entropy_soft on logits " + shape_str({N, K}) + (wc ? " with class weights" : ""); });
}

void cross_entropy(const float* logits, const int32_t* targets, const float* wc, int64_t N, int64_t K, float eps,
                   float* loss, float* dlogits) {
  // N = 0 still runs: the loss is 0/0 = NaN, as on the CPU (PyTorch's mean over nothing).
  if (N < 0 || (N > 0 && K <= 0))
    throw std::invalid_argument("cuda::cross_entropy: logits " + shape_str({N, K}) + " (no classes)");
  int threads = 32;  // a power of two for the tree, no more threads than rows
  while (threads < kLossThreads && threads < N) threads *= 2;
  AHMSA_LAUNCH(1, threads, 0, stream(), cross_entropy_kernel)(logits, targets, wc, N, K, eps, loss, dlogits);
  check_launch_of([&] { return "cross_entropy on logits " + shape_str({N, K}) + (wc ? " with class weights" : ""); });
}

}  // namespace ahmsa::cuda
