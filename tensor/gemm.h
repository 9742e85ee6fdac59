// Single-precision matrix product, row-major:  C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
// with op(X) = X or Xᵀ. lda/ldb/ldc are the row strides of A, B, C as stored.
//
// Cache-blocked in the GotoBLAS/BLIS way: B is packed in KC×NC panels of NR-wide strips, A in
// MC×KC blocks of MR-high strips, and an MR×NR register-tile micro-kernel (AVX2+FMA when the CPU
// has it, chosen at run time; portable C++ otherwise) does the arithmetic.
#pragma once
#include <cstdint>

namespace ahmsa {

// Uses the OpenMP threads when called outside a parallel region and the product is large enough.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same on one thread: for callers that parallelise over many small products themselves.
void sgemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

const char* sgemm_kernel_name();  // "avx2-fma 6x16" or "generic 6x16"

}  // namespace ahmsa
