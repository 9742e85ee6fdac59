// BatchNorm2d and channel LayerNorm / LayerNorm on the GPU (the twins of tensor/cpu_norm.cpp).
//
// Every reduction has a fixed order, so the same input gives the same bits run to run (no float
// atomics): each thread sums a fixed strided subset, then a fixed tree in shared memory (blocks) or
// fixed shuffles (warps); sums over many blocks go through per-block partials added in block order.
//   BatchNorm:  one block per channel reduces over (N, H, W), then normalises that channel.
//   norm_mid:   groups (outer, inner) normalised over C: one warp per row when inner = 1 (LayerNorm
//               over the last dim, C contiguous), else one thread per (outer, inner) pair stepping
//               over C with stride inner (neighbouring threads read neighbouring floats).
//               The parameter gradients gw[c], gb[c] (sums over all groups) are per-chunk partials
//               then one ordered sum per channel.
#include <algorithm>
#include <cmath>

#include "tensor/cuda_blas.h"
#include "tensor/cuda_check.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

constexpr int kWarp = 32, kRowsPerBlock = kThreads / kWarp;  // kThreads (256): tensor/cuda_grid.h
// BatchNorm has few channels (32 to 256) and many elements per channel: a large block per channel keeps
// enough loads in flight.
constexpr int kBnThreads = 1024;

// Sum of v over the block (blockDim.x == Threads), returned to every thread; part has Threads slots.
template <int Threads>
__device__ double block_sum(double v, double* part) {
  part[threadIdx.x] = v;
  __syncthreads();
  for (int half = Threads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  const double total = part[0];
  __syncthreads();  // part is free again for the next sum
  return total;
}

__device__ float warp_sum(float v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// ---- BatchNorm: block c handles channel c of x [N, C, HW]; thread t takes the elements t, t + kBnThreads, ...
// of the channel's (n, i) grid, at x[(n C + c) HW + i].

__device__ int64_t channel_at(const GridWalk& e, int64_t c, int64_t C, int64_t HW) { return (e.r * C + c) * HW + e.c; }

__global__ void __launch_bounds__(kBnThreads)
    batch_norm_train_forward_kernel(const float* x, const float* w, const float* b, float* y, float* mean,
                                    float* invstd, float* var_unbiased, int64_t N, int64_t C, int64_t HW, float eps) {
  __shared__ double part[kBnThreads];
  const int64_t c = blockIdx.x, M = N * HW;
  double s = 0;
  for (GridWalk e(threadIdx.x, kBnThreads, HW); e.r < N; e.next()) s += x[channel_at(e, c, C, HW)];
  const float mu = float(block_sum<kBnThreads>(s, part) / double(M));
  double ss = 0;  // two passes, as on the CPU: Σ (x − μ)² does not cancel
  for (GridWalk e(threadIdx.x, kBnThreads, HW); e.r < N; e.next()) {
    const float d = x[channel_at(e, c, C, HW)] - mu;
    ss += d * d;
  }
  ss = block_sum<kBnThreads>(ss, part);
  const double var = ss / double(M);
  const float is = float(1.0 / sqrt(var + eps));
  if (threadIdx.x == 0) {
    mean[c] = mu;
    invstd[c] = is;
    var_unbiased[c] = M > 1 ? float(ss / double(M - 1)) : float(var);
  }
  const float scale = (w ? w[c] : 1.f) * is, shift = (b ? b[c] : 0.f) - mu * scale;
  for (GridWalk e(threadIdx.x, kBnThreads, HW); e.r < N; e.next()) {
    const int64_t i = channel_at(e, c, C, HW);
    y[i] = x[i] * scale + shift;
  }
}

__global__ void batch_norm_eval_forward_kernel(const float* x, const float* w, const float* b, const float* rmean,
                                               const float* rvar, float* y, int64_t N, int64_t C, int64_t HW,
                                               float eps) {
  AHMSA_FOR_PLANES(c, C, n, N) {
    const float scale = (w ? w[c] : 1.f) / sqrtf(rvar[c] + eps), shift = (b ? b[c] : 0.f) - rmean[c] * scale;
    const float* xp = x + (n * C + c) * HW;
    float* yp = y + (n * C + c) * HW;
    AHMSA_FOR_PIXELS(i, HW) yp[i] = xp[i] * scale + shift;
  }
}

__global__ void __launch_bounds__(kBnThreads)
    batch_norm_backward_kernel(const float* x, const float* w, const float* mean, const float* invstd,
                               const float* gy, float* gx, float* gw, float* gb, int64_t N, int64_t C, int64_t HW,
                               bool training) {
  __shared__ double part[kBnThreads];
  const int64_t c = blockIdx.x, M = N * HW;
  const float mu = mean[c], is = invstd[c];
  double sg = 0, sgx = 0;  // Σ gy and Σ gy (x − μ)
  for (GridWalk e(threadIdx.x, kBnThreads, HW); e.r < N; e.next()) {
    const int64_t i = channel_at(e, c, C, HW);
    sg += gy[i];
    sgx += gy[i] * (x[i] - mu);
  }
  sg = block_sum<kBnThreads>(sg, part);
  sgx = block_sum<kBnThreads>(sgx, part) * is;  // Σ gy x̂
  if (threadIdx.x == 0) {
    if (gw) gw[c] = float(sgx);
    if (gb) gb[c] = float(sg);
  }
  if (!gx) return;
  const float wc = w ? w[c] : 1.f;
  const float k = wc * is / float(M), mg = float(sg), mgx = float(sgx);
  for (GridWalk e(threadIdx.x, kBnThreads, HW); e.r < N; e.next()) {
    const int64_t i = channel_at(e, c, C, HW);
    if (training) {
      const float xh = (x[i] - mu) * is;
      gx[i] = k * (float(M) * gy[i] - mg - xh * mgx);
    } else {
      gx[i] = wc * is * gy[i];
    }
  }
}

// ---- norm_mid, inner = 1: warp per row of C contiguous values

__global__ void norm_rows_forward_kernel(const float* x, const float* w, const float* b, float* y, float* mean,
                                         float* invstd, int64_t rows, int64_t C, float eps) {
  const int64_t r = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;  // the whole warp leaves together
  const float* xr = x + r * C;
  float* yr = y + r * C;
  float s = 0.f;
  for (int64_t c = lane; c < C; c += kWarp) s += xr[c];
  const float mu = warp_sum(s) / float(C);
  float ss = 0.f;
  for (int64_t c = lane; c < C; c += kWarp) ss += (xr[c] - mu) * (xr[c] - mu);
  const float is = 1.f / sqrtf(warp_sum(ss) / float(C) + eps);
  if (lane == 0) mean[r] = mu, invstd[r] = is;
  for (int64_t c = lane; c < C; c += kWarp) yr[c] = (xr[c] - mu) * is * (w ? w[c] : 1.f) + (b ? b[c] : 0.f);
}

// gx only (the parameter gradients are summed by norm_param_grad_*).
__global__ void norm_rows_backward_kernel(const float* x, const float* w, const float* mean, const float* invstd,
                                          const float* gy, float* gx, int64_t rows, int64_t C) {
  const int64_t r = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;
  const float* xr = x + r * C;
  const float* gr = gy + r * C;
  const float mu = mean[r], is = invstd[r];
  float sa = 0.f, sb = 0.f;  // Σ ĝ, Σ ĝ x̂ with ĝ = w gy
  for (int64_t c = lane; c < C; c += kWarp) {
    const float g = (w ? w[c] : 1.f) * gr[c];
    sa += g;
    sb += g * (xr[c] - mu) * is;
  }
  const float ma = warp_sum(sa) / float(C), mb = warp_sum(sb) / float(C);
  for (int64_t c = lane; c < C; c += kWarp) {
    const float xh = (xr[c] - mu) * is;
    gx[r * C + c] = is * ((w ? w[c] : 1.f) * gr[c] - ma - xh * mb);
  }
}

// ---- norm_mid, inner > 1: thread per group (o, i), reading x[o, c, i] for c < C

__global__ void norm_groups_forward_kernel(const float* x, const float* w, const float* b, float* y, float* mean,
                                           float* invstd, int64_t outer, int64_t C, int64_t inner, float eps) {
  const int64_t groups = outer * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < groups; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = t / inner, i = t % inner;
    const float* xg = x + o * C * inner + i;
    float* yg = y + o * C * inner + i;
    float s = 0.f;
    for (int64_t c = 0; c < C; ++c) s += xg[c * inner];
    const float mu = s / float(C);
    float ss = 0.f;
    for (int64_t c = 0; c < C; ++c) ss += (xg[c * inner] - mu) * (xg[c * inner] - mu);
    const float is = 1.f / sqrtf(ss / float(C) + eps);
    mean[t] = mu;
    invstd[t] = is;
    for (int64_t c = 0; c < C; ++c) yg[c * inner] = (xg[c * inner] - mu) * is * (w ? w[c] : 1.f) + (b ? b[c] : 0.f);
  }
}

__global__ void norm_groups_backward_kernel(const float* x, const float* w, const float* mean, const float* invstd,
                                            const float* gy, float* gx, int64_t outer, int64_t C, int64_t inner) {
  const int64_t groups = outer * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < groups; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (t / inner) * C * inner + t % inner;
    const float mu = mean[t], is = invstd[t];
    float sa = 0.f, sb = 0.f;
    for (int64_t c = 0; c < C; ++c) {
      const float g = (w ? w[c] : 1.f) * gy[base + c * inner];
      sa += g;
      sb += g * (x[base + c * inner] - mu) * is;
    }
    for (int64_t c = 0; c < C; ++c) {
      const int64_t at = base + c * inner;
      const float xh = (x[at] - mu) * is;
      gx[at] = is * ((w ? w[c] : 1.f) * gy[at] - (sa + xh * sb) / float(C));
    }
  }
}

// ---- norm_mid parameter gradients: partial sums of gy x̂ and gy per (chunk of outer, channel)

// inner = 1: block (32 channels, 8 row lanes) of chunk blockIdx.y; neighbouring threads read neighbouring channels.
constexpr int kTileC = 32, kTileR = 8;
__global__ void norm_param_grad_rows_kernel(const float* x, const float* mean, const float* invstd, const float* gy,
                                            float* pw, float* pb, int64_t rows, int64_t C, int64_t rows_per_chunk) {
  __shared__ double sw[kTileR][kTileC], sb[kTileR][kTileC];
  const int64_t c = blockIdx.x * int64_t(kTileC) + threadIdx.x, chunk = blockIdx.y;
  const int64_t r0 = chunk * rows_per_chunk, r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  double aw = 0, ab = 0;
  if (c < C)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kTileR) {
      const float g = gy[r * C + c];
      aw += g * ((x[r * C + c] - mean[r]) * invstd[r]);
      ab += g;
    }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    for (int k = 1; k < kTileR; ++k) aw += sw[k][threadIdx.x], ab += sb[k][threadIdx.x];
    pw[chunk * C + c] = float(aw);
    pb[chunk * C + c] = float(ab);
  }
}

// inner > 1: block (channel blockIdx.x, chunk blockIdx.y) over the (o, i) of its chunk of outer.
__global__ void norm_param_grad_groups_kernel(const float* x, const float* mean, const float* invstd, const float* gy,
                                              float* pw, float* pb, int64_t outer, int64_t C, int64_t inner,
                                              int64_t outer_per_chunk) {
  __shared__ double part[kThreads];
  const int64_t c = blockIdx.x, chunk = blockIdx.y;
  const int64_t o0 = chunk * outer_per_chunk, o1 = o0 + outer_per_chunk < outer ? o0 + outer_per_chunk : outer;
  double aw = 0, ab = 0;
  for (GridWalk e(threadIdx.x, kThreads, inner); e.r < o1 - o0; e.next()) {
    const int64_t o = o0 + e.r, at = (o * C + c) * inner + e.c, g = o * inner + e.c;
    aw += gy[at] * ((x[at] - mean[g]) * invstd[g]);
    ab += gy[at];
  }
  aw = block_sum<kThreads>(aw, part);
  ab = block_sum<kThreads>(ab, part);
  if (threadIdx.x == 0) {
    pw[chunk * C + c] = float(aw);
    pb[chunk * C + c] = float(ab);
  }
}

// gw[c] = Σ_k pw[k, c], gb[c] = Σ_k pb[k, c] in chunk order
__global__ void sum_partials_kernel(const float* pw, const float* pb, float* gw, float* gb, int64_t chunks, int64_t C) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    float aw = 0.f, ab = 0.f;
    for (int64_t k = 0; k < chunks; ++k) aw += pw[k * C + c], ab += pb[k * C + c];
    if (gw) gw[c] = aw;
    if (gb) gb[c] = ab;
  }
}

// p[0..n) = 0 when p is given
void zero(float* p, int64_t n, const char* what) {
  if (p && n > 0) check(cudaMemsetAsync(p, 0, size_t(n) * sizeof(float), stream()), what);
}

std::string describe_bn(const char* part, int64_t N, int64_t C, int64_t HW) {
  return std::string(part) + " on x [" + std::to_string(N) + ", " + std::to_string(C) + ", HW " + std::to_string(HW) +
         "]";
}
std::string describe_norm(const char* part, int64_t outer, int64_t C, int64_t inner) {
  return std::string(part) + " on x (outer, C, inner) " + shape_str({outer, C, inner});
}

}  // namespace

void batch_norm_train_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                              float* var_unbiased, int64_t N, int64_t C, int64_t HW, float eps) {
  if (C == 0 || N * HW == 0) return;
  AHMSA_LAUNCH(unsigned(C), kBnThreads, 0, stream(), batch_norm_train_forward_kernel)(x, w, b, y, mean, invstd,
                                                                                    var_unbiased, N, C, HW, eps);
  check_launch_of([&] { return describe_bn("batch_norm_train_forward", N, C, HW); });
}

void batch_norm_eval_forward(const float* x, const float* w, const float* b, const float* rmean, const float* rvar,
                             float* y, int64_t N, int64_t C, int64_t HW, float eps) {
  if (N * C * HW == 0) return;
  AHMSA_LAUNCH(plane_grid(HW, C, N, kThreads), kThreads, 0, stream(), batch_norm_eval_forward_kernel)(x, w, b, rmean,
                                                                                                     rvar, y, N, C, HW,
                                                                                                     eps);
  check_launch_of([&] { return describe_bn("batch_norm_eval_forward", N, C, HW); });
}

void batch_norm_backward(const float* x, const float* w, const float* mean, const float* invstd, const float* gy,
                         float* gx, float* gw, float* gb, int64_t N, int64_t C, int64_t HW, bool training) {
  if (C == 0) return;
  if (N * HW == 0) {  // the parameter gradients are sums over nothing
    zero(gw, C, "batch_norm_backward (gw = 0)");
    zero(gb, C, "batch_norm_backward (gb = 0)");
    return;
  }
  AHMSA_LAUNCH(unsigned(C), kBnThreads, 0, stream(), batch_norm_backward_kernel)(x, w, mean, invstd, gy, gx, gw, gb, N,
                                                                               C, HW, training);
  check_launch_of([&] { return describe_bn("batch_norm_backward", N, C, HW); });
}

void norm_mid_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                      int64_t outer, int64_t C, int64_t inner, float eps) {
  const int64_t groups = outer * inner;
  if (groups == 0) return;
  if (inner == 1) {
    AHMSA_LAUNCH(unsigned((outer + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0, stream(),
                 norm_rows_forward_kernel)(x, w, b, y, mean, invstd, outer, C, eps);
  } else {
    AHMSA_LAUNCH(grid_for(groups, kThreads), kThreads, 0, stream(), norm_groups_forward_kernel)(x, w, b, y, mean,
                                                                                               invstd, outer, C,
                                                                                               inner, eps);
  }
  check_launch_of([&] { return describe_norm("norm_mid_forward", outer, C, inner); });
}

void norm_mid_backward(const float* x, const float* w, const float* mean, const float* invstd, const float* gy,
                       float* gx, float* gw, float* gb, int64_t outer, int64_t C, int64_t inner) {
  const int64_t groups = outer * inner;
  if (C == 0) return;
  if (groups == 0) {  // the parameter gradients are sums over nothing
    zero(gw, C, "norm_mid_backward (gw = 0)");
    zero(gb, C, "norm_mid_backward (gb = 0)");
    return;
  }
  if (gx) {
    if (inner == 1) {
      AHMSA_LAUNCH(unsigned((outer + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0, stream(),
                   norm_rows_backward_kernel)(x, w, mean, invstd, gy, gx, outer, C);
    } else {
      AHMSA_LAUNCH(grid_for(groups, kThreads), kThreads, 0, stream(), norm_groups_backward_kernel)(x, w, mean, invstd,
                                                                                                  gy, gx, outer, C,
                                                                                                  inner);
    }
    check_launch_of([&] { return describe_norm("norm_mid_backward (gx)", outer, C, inner); });
  }
  if (!gw && !gb) return;
  // Chunks of outer with about 4096 groups each (at most 256 chunks): a function of the shape alone,
  // so the summation order, and hence the result, does not change between runs.
  const int64_t want = std::clamp<int64_t>((groups + 4095) / 4096, 1, 256);
  const int64_t per_chunk = std::max<int64_t>((outer + want - 1) / want, 1);
  const int64_t chunks = std::max<int64_t>((outer + per_chunk - 1) / per_chunk, 1);
  DeviceScratch partial(size_t(2 * chunks * C));
  float* pw = partial.data();
  float* pb = pw + chunks * C;
  if (inner == 1) {
    const dim3 grid{unsigned((C + kTileC - 1) / kTileC), unsigned(chunks)}, block{kTileC, kTileR};
    AHMSA_LAUNCH(grid, block, 0, stream(), norm_param_grad_rows_kernel)(x, mean, invstd, gy, pw, pb, outer, C,
                                                                        per_chunk);
  } else {
    const dim3 grid{unsigned(C), unsigned(chunks)};
    AHMSA_LAUNCH(grid, kThreads, 0, stream(), norm_param_grad_groups_kernel)(x, mean, invstd, gy, pw, pb, outer, C,
                                                                             inner, per_chunk);
  }
  check_launch_of([&] { return describe_norm("norm_mid_backward (parameter partials)", outer, C, inner); });
  AHMSA_LAUNCH(grid_for(C, kThreads), kThreads, 0, stream(), sum_partials_kernel)(pw, pb, gw, gb, chunks, C);
  check_launch_of([&] { return describe_norm("norm_mid_backward (parameter sums)", outer, C, inner); });
}

}  // namespace ahmsa::cuda
