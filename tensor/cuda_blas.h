// Shared by the CUDA kernels of the matrix-product families (tensor/cuda_gemm.cu, cuda_conv.cu,
// cuda_attention.cu, cuda_norm.cu; included by .cu files only):
//   - gemm(): a row-major, strided-batched product on cuBLAS, with the same operand conventions as
//     tensor/gemm.h, so the CUDA kernels read like their CPU twins;
//   - DeviceScratch: temporary device memory from the caching allocator (tensor/device.h), so a
//     training step after the first calls no cudaMalloc;
// (Launch geometry and launch checks are in tensor/cuda_grid.h, shared with the other kernels.)
//
// Error messages are built only on failure (the describe callables), so a healthy step spends no
// host time formatting strings.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/device.h"

namespace ahmsa::cuda {

// Walks the elements e = first, first + step, first + 2·step, ... of a row-major (rows × cols) grid as
// (row r, column c) pairs without dividing at each step (a 64-bit division costs dozens of instructions):
//   for (GridWalk e(threadIdx.x, blockDim.x, cols); e.r < rows; e.next()) ... x[e.r * ld + e.c] ...
struct GridWalk {
  int64_t r, c, dr, dc, cols;
  __device__ GridWalk(int64_t first, int64_t step, int64_t cols_)
      : r(first / cols_), c(first % cols_), dr(step / cols_), dc(step % cols_), cols(cols_) {}
  __device__ void next() {
    r += dr, c += dc;
    if (c >= cols) c -= cols, ++r;
  }
};

// Device memory for the lifetime of one kernel call. Freed blocks go back to the cache; all kernels run
// in order on cuda::stream(), so a block reused by the next call is not overwritten before this call's
// kernels have finished with it.
class DeviceScratch {
 public:
  explicit DeviceScratch(size_t floats)
      : p_(floats ? static_cast<float*>(device_alloc(floats * sizeof(float))) : nullptr) {}
  ~DeviceScratch() { device_free(p_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  float* data() const { return p_; }

 private:
  float* p_;
};

// Row-major, strided-batched single-precision product (operands as in tensor/gemm.h): for b < batch
//   C_b[M,N] = alpha · op(A_b)[M,K] · op(B_b)[K,N] + beta · C_b,  A_b = A + b·sa, B_b = B + b·sb, C_b = C + b·sc,
// where op(X) = X or Xᵀ and lda/ldb/ldc are the row strides of A, B, C as stored (sa = 0 reuses one A).
// cuBLAS is column-major: a row-major matrix with row stride ld is, read column-major, its transpose
// with leading dimension ld. So the product is computed as C_bᵀ[N,M] = op(B_b)ᵀ · op(A_b)ᵀ, i.e. cuBLAS
// gets (B, A) in that order with the same transpose flags, m = N, n = M. beta = 0 does not read C.
template <class Describe>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, int64_t sa,
          const float* B, int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc, int64_t sc, int64_t batch,
          Describe describe) {
  if (M == 0 || N == 0 || batch == 0) return;
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  // cuBLAS wants leading dimensions ≥ 1 even for an empty K.
  lda = std::max<int64_t>(lda, 1), ldb = std::max<int64_t>(ldb, 1), ldc = std::max<int64_t>(ldc, 1);
  if (M > kIntMax || N > kIntMax || K > kIntMax || lda > kIntMax || ldb > kIntMax || ldc > kIntMax || batch > kIntMax)
    throw CudaError(describe() + ": matrix dimensions exceed cuBLAS's 32-bit limits (M " + std::to_string(M) +
                    ", N " + std::to_string(N) + ", K " + std::to_string(K) + ", batch " + std::to_string(batch) + ")");
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t st;
  const char* call;
  if (batch == 1) {
    call = "cublasSgemm";
    st = cublasSgemm(cublas(), opb, opa, int(N), int(M), int(K), &alpha, B, int(ldb), A, int(lda), &beta, C, int(ldc));
  } else {
    call = "cublasSgemmStridedBatched";
    st = cublasSgemmStridedBatched(cublas(), opb, opa, int(N), int(M), int(K), &alpha, B, int(ldb), (long long)sb, A,
                                   int(lda), (long long)sa, &beta, C, int(ldc), (long long)sc, int(batch));
  }
  if (st != CUBLAS_STATUS_SUCCESS) {
    const auto flag = [](bool t) { return t ? "T" : "N"; };
    check(st, describe() + " (" + call + " row-major " + flag(ta) + flag(tb) + ", M " + std::to_string(M) + ", N " +
                  std::to_string(N) + ", K " + std::to_string(K) + ", lda " + std::to_string(lda) + ", ldb " +
                  std::to_string(ldb) + ", ldc " + std::to_string(ldc) + ", batch " + std::to_string(batch) + ")");
  }
}

}  // namespace ahmsa::cuda
