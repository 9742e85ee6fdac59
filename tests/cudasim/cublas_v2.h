// cudasim's cuBLAS test double: the calls the project makes, with cuBLAS's column-major semantics and
// its argument checks, so that the classic mistakes (a row-major operand passed as column-major, a
// leading dimension that is the wrong one of the two sizes, a transposed flag for the wrong operand)
// fail here as they would on the GPU: cuBLAS's own error code, or a fault when the operation would
// read or write past the end of a device allocation.
//
// C = α op(A) op(B) + β C, all column-major: A is lda-strided with op(A) m × k, op(B) k × n, C m × n.
// Products are accumulated in double (the GPU's order differs; tests compare with a tolerance). When
// β = 0, C is not read, as in cuBLAS (NaN there does not propagate).
#pragma once
#include "cuda_runtime.h"

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cublasMath_t {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
};
enum cublasPointerMode_t { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };

namespace cudasim {
struct CublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};
}  // namespace cudasim
using cublasHandle_t = cudasim::CublasContext*;

inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new cudasim::CublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
// cuBLAS's workspace from the caller, so that no call allocates (needed for graph capture).
inline cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void* workspace, size_t bytes) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes && !cudasim::is_device_pointer(workspace, bytes)) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t* s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  *s = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->math = m;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t* m) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  *m = h->math;
  return CUBLAS_STATUS_SUCCESS;
}

namespace cudasim::detail {

inline bool valid_op(cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C; }

// The bytes a column-major rows × cols operand with leading dimension ld spans.
inline size_t operand_bytes(int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return 0;
  return (size_t(cols - 1) * size_t(ld) + size_t(rows)) * sizeof(float);
}

// cuBLAS's checks of Sgemm's sizes, in its order; then the device-memory extents of one batch entry.
inline cublasStatus_t gemm_checks(const char* call, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                  int m, int n, int k, const float* alpha, const float* A, int lda, long long sA,
                                  const float* B, int ldb, long long sB, const float* beta, const float* C, int ldc,
                                  long long sC, int batch) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int a_rows = ta == CUBLAS_OP_N ? m : k, a_cols = ta == CUBLAS_OP_N ? k : m;
  const int b_rows = tb == CUBLAS_OP_N ? k : n, b_cols = tb == CUBLAS_OP_N ? n : k;
  if (!valid_op(ta) || !valid_op(tb) || m < 0 || n < 0 || k < 0 || batch < 0 || lda < std::max(1, a_rows) ||
      ldb < std::max(1, b_rows) || ldc < std::max(1, m)) {
    if (!config().quiet)
      std::fprintf(stderr,
                   "cudasim: %s: CUBLAS_STATUS_INVALID_VALUE (m %d n %d k %d, lda %d for op(A) %s, ldb %d for op(B) "
                   "%s, ldc %d, batch %d)\n",
                   call, m, n, k, lda, ta == CUBLAS_OP_N ? "N" : "T", ldb, tb == CUBLAS_OP_N ? "N" : "T", ldc,
                   batch);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  auto in_device = [&](const float* p, long long stride, size_t bytes, const char* name) {
    if (bytes == 0) return true;
    for (int b = 0; b < batch; b += std::max(1, batch - 1)) {  // the first and the last entry
      const float* q = p + stride * b;
      if (!is_device_pointer(q, bytes)) {
        fault(cudaErrorIllegalAddress,
              std::string(call) + ": operand " + name + " of batch entry " + std::to_string(b) + " (" +
                  std::to_string(bytes) + " bytes from the pointer) is not inside one device allocation");
        return false;
      }
      if (batch == 1) break;
    }
    return true;
  };
  const bool reads_ab = k > 0 && *alpha != 0.f;
  if ((reads_ab && !in_device(A, sA, operand_bytes(a_rows, a_cols, lda), "A")) ||
      (reads_ab && !in_device(B, sB, operand_bytes(b_rows, b_cols, ldb), "B")) ||
      !in_device(C, sC, operand_bytes(m, n, ldc), "C"))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  return CUBLAS_STATUS_SUCCESS;
}

inline void gemm_one(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* A,
                     int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  std::vector<double> acc(static_cast<size_t>(m));
  for (int j = 0; j < n; ++j) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int p = 0; p < k; ++p) {
      const double b = tb == CUBLAS_OP_N ? B[p + size_t(j) * ldb] : B[j + size_t(p) * ldb];
      if (ta == CUBLAS_OP_N) {
        const float* a = A + size_t(p) * lda;
        for (int i = 0; i < m; ++i) acc[size_t(i)] += double(a[i]) * b;
      } else {
        for (int i = 0; i < m; ++i) acc[size_t(i)] += double(A[p + size_t(i) * lda]) * b;
      }
    }
    float* c = C + size_t(j) * ldc;
    for (int i = 0; i < m; ++i) {
      const double prior = beta == 0.f ? 0.0 : double(beta) * c[i];
      c[i] = float(double(alpha) * acc[size_t(i)] + prior);
    }
  }
}

inline cublasStatus_t gemm_batched(const char* call, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                   int m, int n, int k, const float* alpha, const float* A, int lda, long long sA,
                                   const float* B, int ldb, long long sB, const float* beta, float* C, int ldc,
                                   long long sC, int batch) {
  std::lock_guard<std::recursive_mutex> lock(big_lock());
  if (sticky_error() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  cublasStatus_t s = gemm_checks(call, h, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
  if (s != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0 || batch == 0) return s;
  const float al = *alpha, be = *beta;
  auto work = [=] {
    DeviceAccess open;
    for (int b = 0; b < batch; ++b)
      gemm_one(ta, tb, m, n, al == 0.f ? 0 : k, al, A + sA * b, lda, B + sB * b, ldb, be, C + sC * b, ldc);
  };
  return submit(h->stream, work) == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
}  // namespace cudasim::detail

inline cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float* alpha, const float* A, int lda, const float* B, int ldb,
                                  const float* beta, float* C, int ldc) {
  return cudasim::detail::gemm_batched("cublasSgemm", h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc,
                                       0, 1);
}
inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                                                int n, int k, const float* alpha, const float* A, int lda,
                                                long long strideA, const float* B, int ldb, long long strideB,
                                                const float* beta, float* C, int ldc, long long strideC,
                                                int batchCount) {
  return cudasim::detail::gemm_batched("cublasSgemmStridedBatched", h, ta, tb, m, n, k, alpha, A, lda, strideA, B,
                                       ldb, strideB, beta, C, ldc, strideC, batchCount);
}
