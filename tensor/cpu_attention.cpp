// Multi-head self-attention over token rows laid out as qkv = [q | k | v] (each C = h·d wide).
// Per sequence b and head j, with Q, K, V the T×d slices of that head (row stride 3C):
//   forward:  S = Q Kᵀ / sqrt(d),  P = softmax_rows(S),  O = P V          (O written into out[b, :, j·d:(j+1)·d])
//   backward: dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),
//             dQ = dS K / sqrt(d),  dK = dSᵀ Q / sqrt(d)
// Every (b, j) pair reads and writes its own columns, so the pairs run in parallel without locks,
// and the GEMMs read the slices in place through their strides (no permute copies).
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/gemm.h"
#include "tensor/kernels.h"
#include "tensor/parallel.h"
#include "tensor/simd_math.h"

namespace ahmsa::cpu {

// row = softmax(row) over n values. The AVX2 build takes e^x 8 lanes at a time (exp8, relative error
// about 2e-7): with libm's scalar expf this loop was the largest share of e^x in a training step.
static void softmax_row_scalar(float* row, int64_t n) {
  const float m = *std::max_element(row, row + n);
  float s = 0.f;
  for (int64_t c = 0; c < n; ++c) s += (row[c] = std::exp(row[c] - m));
  const float inv = 1.f / s;
  for (int64_t c = 0; c < n; ++c) row[c] *= inv;
}
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void softmax_row_avx2(float* row, int64_t n) {
  const float m = *std::max_element(row, row + n);
  const __m256 vm = _mm256_set1_ps(m);
  __m256 vs = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + c), vm));
    _mm256_storeu_ps(row + c, e);
    vs = _mm256_add_ps(vs, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vs);
  float s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; c < n; ++c) s += (row[c] = std::exp(row[c] - m));
  const float inv = 1.f / s;
  for (c = 0; c < n; ++c) row[c] *= inv;
}
static void softmax_row(float* row, int64_t n) {
  static const bool avx2 = cpu_has_avx2_fma();
  avx2 ? softmax_row_avx2(row, n) : softmax_row_scalar(row, n);
}
#else
static void softmax_row(float* row, int64_t n) { softmax_row_scalar(row, n); }
#endif

void attention_forward(const float* qkv, float* out, float* P, int64_t B, int64_t T, int64_t heads, int64_t d) {
  const int64_t C = heads * d, ld = 3 * C;
  const float scale = 1.f / std::sqrt(float(d));
  parallel_for(0, B * heads, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t bh = lo; bh < hi; ++bh) {
      int64_t b = bh / heads, j = bh % heads;
      const float* q = qkv + b * T * ld + j * d;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* p = P + bh * T * T;
      sgemm_serial(false, true, T, T, d, scale, q, ld, k, ld, 0.f, p, T);
      for (int64_t r = 0; r < T; ++r) softmax_row(p + r * T, T);
      sgemm_serial(false, false, T, d, T, 1.f, p, T, v, ld, 0.f, out + b * T * C + j * d, C);
    }
  });
}

void attention_backward(const float* qkv, const float* P, const float* gout, float* gqkv, int64_t B, int64_t T,
                        int64_t heads, int64_t d) {
  const int64_t C = heads * d, ld = 3 * C;
  const float scale = 1.f / std::sqrt(float(d));
  parallel_for(0, B * heads, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> ds(static_cast<size_t>(T * T));
    for (int64_t bh = lo; bh < hi; ++bh) {
      int64_t b = bh / heads, j = bh % heads;
      const float* q = qkv + b * T * ld + j * d;
      const float* k = q + C;
      const float* v = q + 2 * C;
      const float* p = P + bh * T * T;
      const float* go = gout + b * T * C + j * d;
      float* gq = gqkv + b * T * ld + j * d;
      float* gk = gq + C;
      float* gv = gq + 2 * C;
      sgemm_serial(true, false, T, d, T, 1.f, p, T, go, C, 0.f, gv, ld);           // dV = Pᵀ dO
      sgemm_serial(false, true, T, T, d, 1.f, go, C, v, ld, 0.f, ds.data(), T);    // dP = dO Vᵀ
      for (int64_t r = 0; r < T; ++r) {                                            // dS = P ⊙ (dP − Σ P⊙dP)
        const float* pr = p + r * T;
        float* dr = ds.data() + r * T;
        float dot = 0.f;
        for (int64_t c = 0; c < T; ++c) dot += pr[c] * dr[c];
        for (int64_t c = 0; c < T; ++c) dr[c] = pr[c] * (dr[c] - dot);
      }
      sgemm_serial(false, false, T, d, T, scale, ds.data(), T, k, ld, 0.f, gq, ld);  // dQ = dS K / √d
      sgemm_serial(true, false, T, d, T, scale, ds.data(), T, q, ld, 0.f, gk, ld);   // dK = dSᵀ Q / √d
    }
  });
}

}  // namespace ahmsa::cpu
