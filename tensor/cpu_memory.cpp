// Memory kernels: fill, gradient accumulation, and the gather of a strided view into contiguous memory.
#include <algorithm>
#include <cstring>

#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa::cpu {

static constexpr int64_t kGrain = 1 << 14;

void fill(float* y, int64_t n, float v) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) { std::fill(y + lo, y + hi, v); });
}

void add_inplace(float* dst, const float* src, int64_t n) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dst[i] += src[i];
  });
}

// Walks the view row by row (a row = the last dimension), keeping the multi-index of the other
// dimensions as an odometer; rows are independent, so threads take contiguous ranges of them.
void strided_copy(const float* src, const StridedView& view, float* dst) {
  const int nd = view.ndim;
  const int64_t* sh = view.shape;
  const int64_t* st = view.strides;
  int64_t n = 1;
  for (int d = 0; d < nd; ++d) n *= sh[d];
  if (n == 0) return;
  if (nd == 0) {
    dst[0] = src[0];
    return;
  }
  const int64_t inner = sh[nd - 1], istride = st[nd - 1], rows = n / inner;
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t lo, int64_t hi) {
    int64_t idx[kMaxDims] = {};
    int64_t rem = lo;  // the multi-index of row `lo`
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = rem % sh[d];
      rem /= sh[d];
    }
    for (int64_t r = lo; r < hi; ++r) {
      int64_t off = 0;
      for (int d = 0; d < nd - 1; ++d) off += idx[d] * st[d];
      const float* p = src + off;
      float* q = dst + r * inner;
      if (istride == 1)
        std::memcpy(q, p, size_t(inner) * sizeof(float));
      else
        for (int64_t j = 0; j < inner; ++j) q[j] = p[j * istride];
      for (int d = nd - 2; d >= 0; --d) {
        if (++idx[d] < sh[d]) break;
        idx[d] = 0;
      }
    }
  });
}

}  // namespace ahmsa::cpu
