// Matrix products on the GPU: the per-thread cuBLAS handle and bmm (the twin of cpu::bmm in
// tensor/cpu_reduce.cpp). The row-major → column-major mapping lives in cuda::gemm (tensor/cuda_blas.h).
#include <cstdio>

#include "tensor/cuda_blas.h"
#include "tensor/cuda_check.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

// One handle per host thread (cuBLAS handles must not be shared between threads that call at once),
// bound to stream() (re-bound if stream() has changed since the last call, e.g. for graph capture),
// with a workspace of its own: 32 MiB, cuBLAS's recommendation for Hopper, so that no cuBLAS call
// allocates (a graph capture records no allocation). cublasSetStream resets the workspace to cuBLAS's
// pool, so every binding sets it again.
// CUBLAS_DEFAULT_MATH: fp32 products stay fp32 (no TF32 tensor-core rounding), so the CUDA backend
// matches the CPU kernels to fp32 rounding.
cublasHandle_t cublas() {
  constexpr size_t kWorkspace = size_t(32) << 20;
  struct Handle {
    cublasHandle_t h = nullptr;
    cudaStream_t bound = nullptr;
    void* workspace = nullptr;
    ~Handle() {
      if (h) cublasDestroy(h);  // at thread exit; the status is of no use then
      device_free(workspace);
    }
    void bind(cudaStream_t s) {
      check(cublasSetStream(h, s), "cublasSetStream");
      check(cublasSetWorkspace(h, workspace, kWorkspace), "cublasSetWorkspace (32 MiB)");
      bound = s;
    }
  };
  thread_local Handle handle;
  if (!handle.h) {
    cublasHandle_t h = nullptr;
    check(cublasCreate(&h), "cublasCreate");
    handle.h = h;
    check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode(CUBLAS_DEFAULT_MATH)");
    handle.workspace = device_alloc(kWorkspace);
    handle.bind(stream());
  } else if (handle.bound != stream()) {
    handle.bind(stream());
  }
  return handle.h;
}

// y[b] = a[b] @ c[b]: a[b] is [M,K] (stored [K,M] when ta), c[b] is [K,N] (stored [N,K] when tc).
void bmm(const float* a, const float* c, float* y, int64_t batch, int64_t M, int64_t K, int64_t N, bool ta, bool tc,
         float beta) {
  const int64_t lda = ta ? M : K, ldc = tc ? K : N;
  const auto describe = [&] {
    char beta_str[32];
    std::snprintf(beta_str, sizeof beta_str, "%g", double(beta));
    return std::string("bmm on a ") + shape_str({batch, M, K}) + (ta ? "ᵀ" : "") + ", c " + shape_str({batch, K, N}) +
           (tc ? "ᵀ" : "") + ", beta " + beta_str;
  };
  gemm(ta, tc, M, N, K, 1.f, a, lda, M * K, c, ldc, K * N, beta, y, N, M * N, batch, describe);
}

}  // namespace ahmsa::cuda
