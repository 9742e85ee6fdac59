#include "tensor/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tensor/parallel.h"
#include "tensor/simd_math.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ahmsa {

namespace {

constexpr int MR = 6, NR = 16;
constexpr int64_t KC = 256, MC = 120, NC = 2048;  // A block ≈ 120 KB (L2), B strip 16 KB (L1)

// ---- micro-kernels: acc[MR][NR] = sum_k a[k][0..MR) ⊗ b[k][0..NR), then C = alpha*acc + beta*C ----

void kernel_generic(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta,
                    int mr, int nr) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* ak = a + k * MR;
    const float* bk = b + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ak[i] * bk[j];
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float& cij = c[i * ldc + j];
      cij = alpha * acc[i][j] + (beta == 0.f ? 0.f : beta * cij);
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* a, const float* b, float* c,
                                                      int64_t ldc, float alpha, float beta, int mr, int nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 a0 = _mm256_broadcast_ss(a + 0), a1 = _mm256_broadcast_ss(a + 1);
    c00 = _mm256_fmadd_ps(a0, b0, c00);
    c01 = _mm256_fmadd_ps(a0, b1, c01);
    c10 = _mm256_fmadd_ps(a1, b0, c10);
    c11 = _mm256_fmadd_ps(a1, b1, c11);
    a0 = _mm256_broadcast_ss(a + 2);
    a1 = _mm256_broadcast_ss(a + 3);
    c20 = _mm256_fmadd_ps(a0, b0, c20);
    c21 = _mm256_fmadd_ps(a0, b1, c21);
    c30 = _mm256_fmadd_ps(a1, b0, c30);
    c31 = _mm256_fmadd_ps(a1, b1, c31);
    a0 = _mm256_broadcast_ss(a + 4);
    a1 = _mm256_broadcast_ss(a + 5);
    c40 = _mm256_fmadd_ps(a0, b0, c40);
    c41 = _mm256_fmadd_ps(a0, b1, c41);
    c50 = _mm256_fmadd_ps(a1, b0, c50);
    c51 = _mm256_fmadd_ps(a1, b1, c51);
    a += MR;
    b += NR;
  }
  alignas(32) float acc[MR][NR];
  _mm256_store_ps(acc[0], c00), _mm256_store_ps(acc[0] + 8, c01);
  _mm256_store_ps(acc[1], c10), _mm256_store_ps(acc[1] + 8, c11);
  _mm256_store_ps(acc[2], c20), _mm256_store_ps(acc[2] + 8, c21);
  _mm256_store_ps(acc[3], c30), _mm256_store_ps(acc[3] + 8, c31);
  _mm256_store_ps(acc[4], c40), _mm256_store_ps(acc[4] + 8, c41);
  _mm256_store_ps(acc[5], c50), _mm256_store_ps(acc[5] + 8, c51);
  if (mr == MR && nr == NR) {
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      __m256 r0 = _mm256_mul_ps(va, _mm256_load_ps(acc[i])), r1 = _mm256_mul_ps(va, _mm256_load_ps(acc[i] + 8));
      if (beta != 0.f) {
        r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
        r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
      }
      _mm256_storeu_ps(ci, r0);
      _mm256_storeu_ps(ci + 8, r1);
    }
    return;
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float& cij = c[i * ldc + j];
      cij = alpha * acc[i][j] + (beta == 0.f ? 0.f : beta * cij);
    }
}
#endif

using Kernel = void (*)(int64_t, const float*, const float*, float*, int64_t, float, float, int, int);

Kernel pick_kernel() {
#if defined(__x86_64__)
  if (cpu::cpu_has_avx2_fma()) return kernel_avx2;
#endif
  return kernel_generic;
}
const Kernel g_kernel = pick_kernel();

// Packs op(A)[i0:i0+mc, p0:p0+kc] as MR-high strips: strip s holds, for each k, MR values.
void pack_a(bool ta, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst,
            int64_t strip_begin, int64_t strip_end) {
  for (int64_t s = strip_begin; s < strip_end; ++s) {
    float* d = dst + s * kc * MR;
    int64_t i = i0 + s * MR, rows = std::min<int64_t>(MR, i0 + mc - i);
    if (!ta) {
      for (int64_t k = 0; k < kc; ++k) {
        for (int r = 0; r < rows; ++r) d[k * MR + r] = A[(i + r) * lda + p0 + k];
        for (int r = int(rows); r < MR; ++r) d[k * MR + r] = 0.f;
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (p0 + k) * lda + i;
        for (int r = 0; r < rows; ++r) d[k * MR + r] = src[r];
        for (int r = int(rows); r < MR; ++r) d[k * MR + r] = 0.f;
      }
    }
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] as NR-wide strips.
void pack_b(bool tb, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst,
            int64_t strip_begin, int64_t strip_end) {
  for (int64_t s = strip_begin; s < strip_end; ++s) {
    float* d = dst + s * kc * NR;
    int64_t j = j0 + s * NR, cols = std::min<int64_t>(NR, j0 + nc - j);
    if (!tb) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (p0 + k) * ldb + j;
        if (cols == NR)
          std::memcpy(d + k * NR, src, NR * sizeof(float));
        else {
          for (int c = 0; c < cols; ++c) d[k * NR + c] = src[c];
          for (int c = int(cols); c < NR; ++c) d[k * NR + c] = 0.f;
        }
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int c = 0; c < cols; ++c) d[k * NR + c] = B[(j + c) * ldb + p0 + k];
        for (int c = int(cols); c < NR; ++c) d[k * NR + c] = 0.f;
      }
    }
  }
}

struct Buffers {
  float* a = nullptr;
  float* b = nullptr;
  Buffers() {
    a = static_cast<float*>(std::aligned_alloc(64, MC * KC * sizeof(float)));
    b = static_cast<float*>(std::aligned_alloc(64, KC * NC * sizeof(float)));
  }
  ~Buffers() {
    std::free(a);
    std::free(b);
  }
};

// Scales C by beta when K == 0 (nothing to multiply).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
}

// The blocked loops on one thread: B panel (KC×NC) → A block (MC×KC) → B strip → A strip.
void gemm_blocked(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc, float* pa, float* pb) {
  for (int64_t j0 = 0; j0 < N; j0 += NC) {
    int64_t nc = std::min(NC, N - j0), nstrips = (nc + NR - 1) / NR;
    for (int64_t p0 = 0; p0 < K; p0 += KC) {
      int64_t kc = std::min(KC, K - p0);
      float b_eff = p0 == 0 ? beta : 1.f;
      pack_b(tb, B, ldb, p0, kc, j0, nc, pb, 0, nstrips);
      for (int64_t i0 = 0; i0 < M; i0 += MC) {
        int64_t mc = std::min(MC, M - i0), mstrips = (mc + MR - 1) / MR;
        pack_a(ta, A, lda, i0, mc, p0, kc, pa, 0, mstrips);
        // The B strip (16 KB) stays in L1 while the A strips (from the L2-resident block) pass.
        for (int64_t js = 0; js < nstrips; ++js) {
          int64_t j = j0 + js * NR;
          int nr = int(std::min<int64_t>(NR, N - j));
          for (int64_t is = 0; is < mstrips; ++is) {
            int64_t i = i0 + is * MR;
            int mr = int(std::min<int64_t>(MR, M - i));
            g_kernel(kc, pa + is * kc * MR, pb + js * kc * NR, C + i * ldc + j, ldc, alpha, b_eff, mr, nr);
          }
        }
      }
    }
  }
}

// One per thread, made on first use and freed when the thread exits.
Buffers& local_buffers() {
  thread_local Buffers buffers;
  return buffers;
}

}  // namespace

const char* sgemm_kernel_name() {
#if defined(__x86_64__)
  if (g_kernel == kernel_avx2) return "avx2-fma 6x16";
#endif
  return "generic 6x16";
}

void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  Buffers& buf = local_buffers();
  gemm_blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, buf.a, buf.b);
}

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  if (num_threads() <= 1 || in_parallel_region() || double(M) * N * K < 2e5)
    return sgemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // Each thread computes its own block of C (a range of NR-wide column strips, or of MR-high row
  // strips) as an independent serial product with its own packing buffers: no barrier inside the
  // product, so on a busy machine a descheduled thread delays only its own share (with shared
  // packed panels and a barrier per block, a 1024³ product on 2 loaded cores fell from ~120 to
  // ~7 GFLOP/s). The operand that is not split is packed by every thread; splitting the longer of
  // M and N keeps that duplicated packing the smaller one. Strip-aligned splits keep every
  // element's summation order, so the result equals sgemm_serial's bit for bit.
  const bool split_n = N >= M;
  const int64_t strip = split_n ? NR : MR, strips = ((split_n ? N : M) + strip - 1) / strip;
  if (strips < 2) return sgemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  parallel_for(0, strips, 1, [&](int64_t lo, int64_t hi) {
    if (split_n) {
      int64_t j0 = lo * NR, j1 = std::min(N, hi * NR);
      sgemm_serial(ta, tb, M, j1 - j0, K, alpha, A, lda, tb ? B + j0 * ldb : B + j0, ldb, beta, C + j0, ldc);
    } else {
      int64_t i0 = lo * MR, i1 = std::min(M, hi * MR);
      sgemm_serial(ta, tb, i1 - i0, N, K, alpha, ta ? A + i0 : A + i0 * lda, lda, B, ldb, beta, C + i0 * ldc, ldc);
    }
  });
}

}  // namespace ahmsa
