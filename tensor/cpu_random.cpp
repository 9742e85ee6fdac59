// Random kernels: the dropout mask from the counter-based generator (tensor/counter_rng.h), so
// element i of a call depends only on (seed, offset + i), never on the thread that computes it.
#include "tensor/counter_rng.h"
#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa::cpu {

void dropout_mask(float* mask, int64_t n, float p, uint64_t seed, uint64_t offset, const uint64_t* offset_shift) {
  const float scale = 1.f / (1.f - p);
  if (offset_shift) offset += *offset_shift;
  parallel_for(0, n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) mask[i] = counter_uniform(seed, offset + uint64_t(i)) < p ? 0.f : scale;
  });
}

}  // namespace ahmsa::cpu
