// Multi-head self-attention on the GPU (the twin of tensor/cpu_attention.cpp), over qkv = [q | k | v]
// rows (each C = heads·d wide, row stride 3C). Per sequence b and head j, Q, K, V are T×d slices:
//   forward:  S = Q Kᵀ / sqrt(d),  P = softmax_rows(S),  O = P V          (O into out[b, :, j·d:(j+1)·d])
//   backward: dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),
//             dQ = dS K / sqrt(d),  dK = dSᵀ Q / sqrt(d)
// The GEMMs read the slices in place through their strides: for each head, one strided-batched cuBLAS
// call covers every sequence (sequence b's slice is T·3C floats after b−1's). The row softmax and its
// backward are one warp per row, with shuffles in a fixed order (deterministic).
#include <cmath>

#include "tensor/cuda_blas.h"
#include "tensor/cuda_check.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

constexpr int kWarp = 32, kRowsPerBlock = kThreads / kWarp;  // kThreads (256): tensor/cuda_grid.h

__device__ float warp_max(float v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ float warp_sum(float v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// p[r] = softmax(p[r]) over n columns, for rows r < rows; one warp per row.
__global__ void softmax_rows_kernel(float* p, int64_t rows, int64_t n) {
  const int64_t r = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;  // the whole warp leaves together
  float* row = p + r * n;
  float m = -INFINITY;
  for (int64_t c = lane; c < n; c += kWarp) m = fmaxf(m, row[c]);
  m = warp_max(m);
  float s = 0.f;
  for (int64_t c = lane; c < n; c += kWarp) {
    const float e = expf(row[c] - m);
    row[c] = e;
    s += e;
  }
  const float inv = 1.f / warp_sum(s);
  for (int64_t c = lane; c < n; c += kWarp) row[c] *= inv;
}

// ds[r] = p[r] ⊙ (ds[r] − Σ_c p[r,c] ds[r,c]) (ds holds dP on entry); one warp per row.
__global__ void softmax_rows_backward_kernel(const float* p, float* ds, int64_t rows, int64_t n) {
  const int64_t r = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;
  const float* pr = p + r * n;
  float* dr = ds + r * n;
  float dot = 0.f;
  for (int64_t c = lane; c < n; c += kWarp) dot += pr[c] * dr[c];
  dot = warp_sum(dot);
  for (int64_t c = lane; c < n; c += kWarp) dr[c] = pr[c] * (dr[c] - dot);
}

unsigned row_blocks(int64_t rows) { return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

struct AttentionShape {
  int64_t B, T, heads, d;
  std::string describe(const char* part) const {
    return std::string(part) + " on qkv " + shape_str({B, T, 3 * heads * d}) + " with " + std::to_string(heads) +
           " heads of " + std::to_string(d);
  }
};

}  // namespace

void attention_forward(const float* qkv, float* out, float* P, int64_t B, int64_t T, int64_t heads, int64_t d) {
  if (B == 0 || T == 0 || heads == 0) return;
  const AttentionShape a{B, T, heads, d};
  const int64_t C = heads * d, ld = 3 * C, seq = T * ld, TT = T * T, hTT = heads * TT;
  const float scale = 1.f / std::sqrt(float(d));
  for (int64_t j = 0; j < heads; ++j) {  // S = Q Kᵀ / sqrt(d) into P
    const float* q = qkv + j * d;
    gemm(false, true, T, T, d, scale, q, ld, seq, q + C, ld, seq, 0.f, P + j * TT, T, hTT, B,
         [&] { return a.describe("attention_forward (S = q kᵀ)"); });
  }
  const int64_t rows = B * heads * T;
  AHMSA_LAUNCH(row_blocks(rows), kThreads, 0, stream(), softmax_rows_kernel)(P, rows, T);
  check_launch_of([&] { return a.describe("attention_forward (softmax)"); });
  for (int64_t j = 0; j < heads; ++j)  // O = P V
    gemm(false, false, T, d, T, 1.f, P + j * TT, T, hTT, qkv + 2 * C + j * d, ld, seq, 0.f, out + j * d, C, T * C, B,
         [&] { return a.describe("attention_forward (out = P v)"); });
}

void attention_backward(const float* qkv, const float* P, const float* gout, float* gqkv, int64_t B, int64_t T,
                        int64_t heads, int64_t d) {
  if (B == 0 || T == 0 || heads == 0) return;
  const AttentionShape a{B, T, heads, d};
  const int64_t C = heads * d, ld = 3 * C, seq = T * ld, TT = T * T, hTT = heads * TT;
  const float scale = 1.f / std::sqrt(float(d));
  DeviceScratch ds(size_t(B * hTT));
  for (int64_t j = 0; j < heads; ++j) {
    const float* p = P + j * TT;
    const float* go = gout + j * d;
    gemm(true, false, T, d, T, 1.f, p, T, hTT, go, C, T * C, 0.f, gqkv + 2 * C + j * d, ld, seq, B,
         [&] { return a.describe("attention_backward (dv = Pᵀ dout)"); });
    gemm(false, true, T, T, d, 1.f, go, C, T * C, qkv + 2 * C + j * d, ld, seq, 0.f, ds.data() + j * TT, T, hTT, B,
         [&] { return a.describe("attention_backward (dP = dout vᵀ)"); });
  }
  const int64_t rows = B * heads * T;
  AHMSA_LAUNCH(row_blocks(rows), kThreads, 0, stream(), softmax_rows_backward_kernel)(P, ds.data(), rows, T);
  check_launch_of([&] { return a.describe("attention_backward (softmax)"); });
  for (int64_t j = 0; j < heads; ++j) {
    const float* dsj = ds.data() + j * TT;
    const float* q = qkv + j * d;
    float* gq = gqkv + j * d;
    gemm(false, false, T, d, T, scale, dsj, T, hTT, q + C, ld, seq, 0.f, gq, ld, seq, B,
         [&] { return a.describe("attention_backward (dq = dS k)"); });
    gemm(true, false, T, d, T, scale, dsj, T, hTT, q, ld, seq, 0.f, gq + C, ld, seq, B,
         [&] { return a.describe("attention_backward (dk = dSᵀ q)"); });
  }
}

}  // namespace ahmsa::cuda
