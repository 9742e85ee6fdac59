#include "tensor/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tensor/parallel.h"

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
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kernel_avx2;
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

// The blocked loops; `tid`/`nt` split the work when several threads share the packed panels.
void gemm_blocked(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc, float* pa, float* pb, int tid,
                  int nt, bool threaded) {
  for (int64_t j0 = 0; j0 < N; j0 += NC) {
    int64_t nc = std::min(NC, N - j0), nstrips = (nc + NR - 1) / NR;
    for (int64_t p0 = 0; p0 < K; p0 += KC) {
      int64_t kc = std::min(KC, K - p0);
      float b_eff = p0 == 0 ? beta : 1.f;
      // Pack B cooperatively.
      int64_t s0 = nstrips * tid / nt, s1 = nstrips * (tid + 1) / nt;
      pack_b(tb, B, ldb, p0, kc, j0, nc, pb, s0, s1);
      if (threaded) parallel_barrier();
      for (int64_t i0 = 0; i0 < M; i0 += MC) {
        int64_t mc = std::min(MC, M - i0), mstrips = (mc + MR - 1) / MR;
        int64_t a0 = mstrips * tid / nt, a1 = mstrips * (tid + 1) / nt;
        pack_a(ta, A, lda, i0, mc, p0, kc, pa, a0, a1);
        if (threaded) parallel_barrier();
        // Each thread takes a contiguous range of B strips (its C columns) for this A block.
        for (int64_t js = s0; js < s1; ++js) {
          int64_t j = j0 + js * NR;
          int nr = int(std::min<int64_t>(NR, N - j));
          for (int64_t is = 0; is < mstrips; ++is) {
            int64_t i = i0 + is * MR;
            int mr = int(std::min<int64_t>(MR, M - i));
            g_kernel(kc, pa + is * kc * MR, pb + js * kc * NR, C + i * ldc + j, ldc, alpha, b_eff, mr, nr);
          }
        }
        if (threaded) parallel_barrier();  // pa is overwritten by the next block
      }
    }
  }
}

thread_local Buffers* tl_buffers = nullptr;
Buffers& local_buffers() {
  if (!tl_buffers) tl_buffers = new Buffers;  // one per thread, lives as long as the thread
  return *tl_buffers;
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
  gemm_blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, buf.a, buf.b, 0, 1, false);
}

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  int nt = num_threads();
  // Threads split the B strips (columns of C); too few columns or too little work: one thread.
  if (nt <= 1 || in_parallel_region() || double(M) * N * K < 2e5 || N < 2 * NR)
    return sgemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // Shared packed B so all threads read one copy; each thread packs part of it.
  static thread_local std::vector<float> shared_b;
  static thread_local std::vector<float> shared_a;
  shared_b.resize(size_t(KC * NC) + 16);
  shared_a.resize(size_t(MC * KC) + 16);
  float* pb = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(shared_b.data()) + 63) & ~uintptr_t(63));
  float* pa = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(shared_a.data()) + 63) & ~uintptr_t(63));
  parallel_region([&](int tid, int n) {
    gemm_blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pa, pb, tid, n, true);
  });
}

}  // namespace ahmsa
