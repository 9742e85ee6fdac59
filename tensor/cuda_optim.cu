// Optimiser updates on the GPU: every parameter in one launch; the twins of tensor/cpu_optim.cpp
// (PyTorch's update rules, maths in tensor/kernels.h). The arithmetic is the CPU loop's, expression
// for expression (the per-step terms are computed on the host by the same adam_terms/sgd_terms), so the
// results agree to the ulp that FMA contraction may change.
//
// The parameters reach the kernel as a table passed by value in the launch's arguments (one entry per
// parameter that has a gradient: pointers, state offset, and where its elements start in the launch's
// flat range), up to kMaxEntries a launch (a larger list takes more launches; AHMSA-Net's ~90 take one).
// Nothing is uploaded and nothing global is kept, so a step does no copy and no allocation, and a
// captured launch holds its own table. The arguments stay under the classic 4 KB limit.
// With ParamList::live the step's terms are read from device memory (a CUDA graph's replays).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

struct ParamEntry {
  float* theta;
  const float* grad;
  int64_t offset;  // of the parameter's state in the slabs
  int64_t start;   // of its elements in this launch's flat range [0, total)
};

// 120 entries (3.8 KB) and the counts: with the kernels' other arguments under 4 KB.
constexpr int kMaxEntries = 120;
struct ParamTable {
  int count;
  int64_t total;  // elements in this launch
  ParamEntry e[kMaxEntries];
};
static_assert(sizeof(ParamTable) + 64 < 4096, "kernel arguments beyond 4 KB");

// The entry whose elements contain flat element e: the last k with table.e[k].start <= e.
__device__ inline int find_param(const ParamTable& t, int64_t e) {
  int lo = 0, hi = t.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (t.e[mid].start <= e) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

struct SgdArgs {
  float lr, momentum, weight_decay;
  bool nesterov, first;
};

// d = g + λθ; with momentum v = first ? d : μ v + d, d = nesterov ? d + μ v : v;  θ −= lr d
__global__ void sgd_kernel(const ParamTable t, float* __restrict__ v_slab, SgdArgs a,
                           const StepTerms* __restrict__ live) {
  const float lr = live ? live->lr : a.lr;
  AHMSA_GRID_STRIDE_LOOP(e, t.total) {
    const ParamEntry& p = t.e[find_param(t, e)];
    const int64_t j = e - p.start;
    float th = p.theta[j];
    float d = p.grad[j] + a.weight_decay * th;
    if (v_slab) {
      float& v = v_slab[p.offset + j];
      v = a.first ? d : a.momentum * v + d;
      d = a.nesterov ? d + a.momentum * v : v;
    }
    th -= lr * d;
    p.theta[j] = th;
  }
}

struct AdamArgs {
  float beta1, beta2, eps, weight_decay;
  bool decoupled;
  StepTerms terms;  // used when live is null
};

// decoupled: θ *= 1 − lr λ, else g += λθ; m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²;
// θ −= (lr / (1−β1ᵗ)) m / (sqrt(v) / sqrt(1−β2ᵗ) + ε)
__global__ void adam_kernel(const ParamTable t, float* __restrict__ m_slab, float* __restrict__ v_slab, AdamArgs a,
                            const StepTerms* __restrict__ live) {
  const StepTerms k = live ? *live : a.terms;
  AHMSA_GRID_STRIDE_LOOP(e, t.total) {
    const ParamEntry& p = t.e[find_param(t, e)];
    const int64_t j = e - p.start;
    float th = p.theta[j];
    float g = p.grad[j];
    if (a.decoupled)
      th *= k.decay;
    else
      g += a.weight_decay * th;
    float& m = m_slab[p.offset + j];
    float& v = v_slab[p.offset + j];
    m = a.beta1 * m + (1.f - a.beta1) * g;
    v = a.beta2 * v + (1.f - a.beta2) * g * g;
    th -= k.step_size * m / (sqrtf(v) / k.bc2_sqrt + a.eps);
    p.theta[j] = th;
  }
}

// The parameters with a gradient (and elements) cut into tables of at most kMaxEntries.
std::vector<ParamTable> param_tables(const ParamList& p, int64_t& total, const char* op) {
  if (p.grad.size() != p.theta.size() || p.numel.size() != p.theta.size() || p.offset.size() != p.theta.size())
    throw std::invalid_argument(std::string("cuda::") + op + ": ParamList with " + std::to_string(p.theta.size()) +
                                " parameters but " + std::to_string(p.grad.size()) + " gradients, " +
                                std::to_string(p.numel.size()) + " sizes, " + std::to_string(p.offset.size()) +
                                " offsets");
  std::vector<ParamTable> tables;
  total = 0;
  for (size_t k = 0; k < p.theta.size(); ++k) {
    if (!p.grad[k] || p.numel[k] <= 0) continue;
    if (tables.empty() || tables.back().count == kMaxEntries) {
      tables.emplace_back();
      tables.back().count = 0, tables.back().total = 0;
    }
    ParamTable& t = tables.back();
    t.e[t.count++] = {p.theta[k], p.grad[k], p.offset[k], t.total};
    t.total += p.numel[k];
    total += p.numel[k];
  }
  return tables;
}

// A bounded grid (grid-stride loops): the table argument is read by every thread, and 512 blocks of
// 256 threads keep an H200's memory busy.
unsigned update_blocks(int64_t total) { return std::min(blocks_for(total), 512u); }

std::string describe(const char* op, const ParamList& p, int64_t total) {
  return std::string(op) + " of " + std::to_string(p.theta.size()) + " parameters, " + std::to_string(total) +
         " elements" + (p.live ? " (terms read from device memory)" : "");
}

}  // namespace

void sgd_update(const ParamList& p, float* v_slab, float lr, float momentum, float weight_decay, bool nesterov,
                bool first) {
  int64_t total = 0;
  const auto live = reinterpret_cast<const StepTerms*>(p.live);
  const SgdArgs a{lr, momentum, weight_decay, nesterov, first};
  for (const ParamTable& t : param_tables(p, total, "sgd_update"))
    AHMSA_LAUNCH(update_blocks(t.total), kThreads, 0, stream(), sgd_kernel)(t, v_slab, a, live);
  check_launch_of([&] { return describe("sgd_update", p, total); });
}

void adam_update(const ParamList& p, float* m_slab, float* v_slab, float lr, float beta1, float beta2, float eps,
                 float weight_decay, bool decoupled, int64_t t_step) {
  int64_t total = 0;
  const auto live = reinterpret_cast<const StepTerms*>(p.live);
  const AdamArgs a{beta1, beta2, eps, weight_decay, decoupled, cpu::adam_terms(lr, beta1, beta2, weight_decay, t_step)};
  for (const ParamTable& t : param_tables(p, total, "adam_update"))
    AHMSA_LAUNCH(update_blocks(t.total), kThreads, 0, stream(), adam_kernel)(t, m_slab, v_slab, a, live);
  check_launch_of([&] { return describe("adam_update", p, total) + " (step " + std::to_string(t_step) + ")"; });
}

}  // namespace ahmsa::cuda
