// Error checks and the stream for the CUDA kernels of tensor/cuda_*.cu (included by .cu files only).
// Every CUDA and cuBLAS call is checked; a failure throws CudaError naming the kernel or call, the
// shapes it worked on and the CUDA error, e.g.
//   "conv2d_forward (im2col) on x [2, 3, 28, 28]: cudaErrorInvalidConfiguration (invalid configuration argument)".
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "tensor/cuda_launch.h"

namespace ahmsa::cuda {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess)
    throw CudaError(what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}
// After a launch: the launch's own error (configuration, resources).
inline void check_launch(const std::string& what) { check(cudaGetLastError(), what); }

inline const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_(other)";
  }
}
inline void check(cublasStatus_t s, const std::string& what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw CudaError(what + ": " + cublas_status_name(s));
}

// The stream every kernel of the backend runs on: the legacy default stream, or, while this thread
// captures a CUDA graph (DeviceGraph, tensor/device_graph.h), the capture's stream. Every launch and
// async copy of the backend names stream(), so the same code runs eagerly or is recorded.
inline cudaStream_t& current_stream() {
  thread_local cudaStream_t s = nullptr;
  return s;
}
inline cudaStream_t stream() { return current_stream(); }

// One cuBLAS handle per host thread, bound to stream(), with a workspace of its own (so that no cuBLAS
// call allocates, which a graph capture needs); TF32 off (fp32 products, as on the CPU).
cublasHandle_t cublas();

}  // namespace ahmsa::cuda
