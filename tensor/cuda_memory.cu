// Memory kernels on the GPU: fill, gradient accumulation, and the gather of a strided view into
// contiguous memory: the twins of tensor/cpu_memory.cpp (maths in tensor/kernels.h). Pure copies, so
// the results are the CPU's bit for bit.
#include <stdexcept>
#include <string>

#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

__global__ void fill_kernel(float* __restrict__ y, int64_t n, float v) {
  AHMSA_GRID_STRIDE_LOOP(i, n) y[i] = v;
}

__global__ void add_inplace_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  AHMSA_GRID_STRIDE_LOOP(i, n) dst[i] += src[i];
}

// One thread per element of dst; its row-major index is split into the view's coordinates from the
// innermost dim out. Index is uint32_t when every offset fits (as in binary_forward: 64-bit division
// would dominate the copy).
template <typename Index>
__global__ void strided_copy_kernel(const float* __restrict__ src, StridedView v, float* __restrict__ dst,
                                    int64_t n) {
  AHMSA_GRID_STRIDE_LOOP(i, n) {
    Index rem = Index(i), off = 0;
    for (int d = v.ndim - 1; d >= 0; --d) {
      const Index size = Index(v.shape[d]);
      off += (rem % size) * Index(v.strides[d]);
      rem /= size;
    }
    dst[i] = src[off];
  }
}

bool fits_32(const StridedView& v, int64_t n) {
  if (n >= (int64_t(1) << 31)) return false;
  int64_t last = 0;
  for (int d = 0; d < v.ndim; ++d) {
    if (v.strides[d] < 0) return false;
    last += (v.shape[d] - 1) * v.strides[d];
  }
  return last < (int64_t(1) << 31);
}

std::string view_str(const StridedView& v) {
  std::string s = "shape [", t = "strides [";
  for (int d = 0; d < v.ndim; ++d) {
    s += (d ? ", " : "") + std::to_string(v.shape[d]);
    t += (d ? ", " : "") + std::to_string(v.strides[d]);
  }
  return s + "], " + t + "]";
}

}  // namespace

void fill(float* y, int64_t n, float v) {
  if (n <= 0) return;
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), fill_kernel)(y, n, v);
  check_launch_of([&] { return "fill of " + std::to_string(n) + " elements"; });
}

void add_inplace(float* dst, const float* src, int64_t n) {
  if (n <= 0) return;
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), add_inplace_kernel)(dst, src, n);
  check_launch_of([&] { return "add_inplace of " + std::to_string(n) + " elements"; });
}

void strided_copy(const float* src, const StridedView& view, float* dst) {
  if (view.ndim < 0 || view.ndim > cpu::kMaxDims)
    throw std::invalid_argument("cuda::strided_copy: a view of " + std::to_string(view.ndim) + " dims, at most " +
                                std::to_string(cpu::kMaxDims));
  int64_t n = 1;  // a 0-d view is one element
  for (int d = 0; d < view.ndim; ++d) n *= view.shape[d];
  if (n <= 0) return;
  if (fits_32(view, n))
    AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), strided_copy_kernel<uint32_t>)(src, view, dst, n);
  else
    AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), strided_copy_kernel<int64_t>)(src, view, dst, n);
  check_launch_of([&] { return "strided_copy of the view " + view_str(view); });
}

}  // namespace ahmsa::cuda
