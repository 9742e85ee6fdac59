// Optimiser updates on the GPU: every parameter in one launch; the twins of tensor/cpu_optim.cpp
// (PyTorch's update rules, maths in tensor/kernels.h). The arithmetic is the CPU loop's, expression
// for expression (the constants that the CPU kernel computes once are computed on the host here, in
// the same float operations), so the results agree to the ulp that FMA contraction may change.
//
// The parameters are described to the kernel by a table in device memory: one entry per parameter
// that has a gradient (pointers, state offset, and where its elements start in the launch's flat
// range). The table is uploaded only when it differs from the last one, so a training loop uploads
// it once, after which a step does no copy and no allocation (and can be captured in a CUDA graph).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
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
  int64_t start;   // of its elements in the flat range [0, total); entry count holds start = total
};

// The entry whose elements contain flat element e: the last k with table[k].start <= e.
__device__ inline int find_param(const ParamEntry* __restrict__ table, int count, int64_t e) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table[mid].start <= e) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

struct SgdArgs {
  float lr, momentum, weight_decay;
  bool nesterov, first;
};

// d = g + λθ; with momentum v = first ? d : μ v + d, d = nesterov ? d + μ v : v;  θ −= lr d
__global__ void sgd_kernel(const ParamEntry* __restrict__ table, int count, int64_t total, float* __restrict__ v_slab,
                           SgdArgs a) {
  AHMSA_GRID_STRIDE_LOOP(e, total) {
    const ParamEntry& p = table[find_param(table, count, e)];
    const int64_t j = e - p.start;
    float th = p.theta[j];
    float d = p.grad[j] + a.weight_decay * th;
    if (v_slab) {
      float& v = v_slab[p.offset + j];
      v = a.first ? d : a.momentum * v + d;
      d = a.nesterov ? d + a.momentum * v : v;
    }
    th -= a.lr * d;
    p.theta[j] = th;
  }
}

struct AdamArgs {
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  float decay;      // 1 − lr λ
  float step_size;  // lr / (1 − β1ᵗ)
  float bc2_sqrt;   // sqrt(1 − β2ᵗ)
};

// decoupled: θ *= 1 − lr λ, else g += λθ; m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²;
// θ −= (lr / (1−β1ᵗ)) m / (sqrt(v) / sqrt(1−β2ᵗ) + ε)
__global__ void adam_kernel(const ParamEntry* __restrict__ table, int count, int64_t total, float* __restrict__ m_slab,
                            float* __restrict__ v_slab, AdamArgs a) {
  AHMSA_GRID_STRIDE_LOOP(e, total) {
    const ParamEntry& p = table[find_param(table, count, e)];
    const int64_t j = e - p.start;
    float th = p.theta[j];
    float g = p.grad[j];
    if (a.decoupled)
      th *= a.decay;
    else
      g += a.weight_decay * th;
    float& m = m_slab[p.offset + j];
    float& v = v_slab[p.offset + j];
    m = a.beta1 * m + (1.f - a.beta1) * g;
    v = a.beta2 * v + (1.f - a.beta2) * g * g;
    th -= a.step_size * m / (sqrtf(v) / a.bc2_sqrt + a.eps);
    p.theta[j] = th;
  }
}

// The device copy of the last table uploaded. Guarded by mu from upload to launch, so a second host
// thread cannot overwrite the table before the first one's kernel is queued (the copy and the
// kernels are ordered on the one stream).
struct DeviceTable {
  std::mutex mu;
  std::vector<ParamEntry> host;
  ParamEntry* dev = nullptr;
  size_t capacity = 0;
};
DeviceTable& device_table() {
  static DeviceTable* t = new DeviceTable;  // never destroyed: its memory lives as long as the process
  return *t;
}

// The entries of the parameters with a gradient (and elements), plus the end sentinel; total = their
// element count.
std::vector<ParamEntry> param_entries(const ParamList& p, int64_t& total, const char* op) {
  if (p.grad.size() != p.theta.size() || p.numel.size() != p.theta.size() || p.offset.size() != p.theta.size())
    throw std::invalid_argument(std::string("cuda::") + op + ": ParamList with " + std::to_string(p.theta.size()) +
                                " parameters but " + std::to_string(p.grad.size()) + " gradients, " +
                                std::to_string(p.numel.size()) + " sizes, " + std::to_string(p.offset.size()) +
                                " offsets");
  std::vector<ParamEntry> entries;
  total = 0;
  for (size_t k = 0; k < p.theta.size(); ++k) {
    if (!p.grad[k] || p.numel[k] <= 0) continue;
    entries.push_back({p.theta[k], p.grad[k], p.offset[k], total});
    total += p.numel[k];
  }
  entries.push_back({nullptr, nullptr, 0, total});
  return entries;
}

// Makes t.dev hold `entries` (t.mu held by the caller).
void upload(DeviceTable& t, const std::vector<ParamEntry>& entries, const char* op) {
  if (entries.size() == t.host.size() &&
      std::memcmp(entries.data(), t.host.data(), entries.size() * sizeof(ParamEntry)) == 0)
    return;
  if (entries.size() > t.capacity) {  // first use, or a longer list: the only allocations
    if (t.dev) check(cudaFree(t.dev), std::string(op) + ": freeing the parameter table");
    t.dev = nullptr, t.capacity = 0, t.host.clear();
    const size_t cap = std::max<size_t>(64, entries.size() * 2);
    check(cudaMalloc(&t.dev, cap * sizeof(ParamEntry)),
          std::string(op) + ": allocating the table of " + std::to_string(cap) + " parameters");
    t.capacity = cap;
  }
  t.host = entries;
  check(cudaMemcpyAsync(t.dev, t.host.data(), t.host.size() * sizeof(ParamEntry), cudaMemcpyHostToDevice, stream()),
        std::string(op) + ": uploading the table of " + std::to_string(entries.size() - 1) + " parameters");
}

}  // namespace

void sgd_update(const ParamList& p, float* v_slab, float lr, float momentum, float weight_decay, bool nesterov,
                bool first) {
  int64_t total = 0;
  const std::vector<ParamEntry> entries = param_entries(p, total, "sgd_update");
  if (total == 0) return;
  DeviceTable& t = device_table();
  std::lock_guard<std::mutex> lock(t.mu);
  upload(t, entries, "sgd_update");
  const SgdArgs a{lr, momentum, weight_decay, nesterov, first};
  AHMSA_LAUNCH(blocks_for(total), kThreads, 0, stream(), sgd_kernel)(t.dev, int(entries.size() - 1), total, v_slab,
                                                                     a);
  check_launch_of([&] {
    return "sgd_update of " + std::to_string(entries.size() - 1) + " parameters, " + std::to_string(total) +
           " elements";
  });
}

void adam_update(const ParamList& p, float* m_slab, float* v_slab, float lr, float beta1, float beta2, float eps,
                 float weight_decay, bool decoupled, int64_t t_step) {
  int64_t total = 0;
  const std::vector<ParamEntry> entries = param_entries(p, total, "adam_update");
  if (total == 0) return;
  // The constants of cpu::adam_update, in the same float operations.
  const float bc1 = 1.f - std::pow(beta1, float(t_step)), bc2 = 1.f - std::pow(beta2, float(t_step));
  const AdamArgs a{lr, beta1, beta2, eps, weight_decay, decoupled, 1.f - lr * weight_decay, lr / bc1, std::sqrt(bc2)};
  DeviceTable& t = device_table();
  std::lock_guard<std::mutex> lock(t.mu);
  upload(t, entries, "adam_update");
  AHMSA_LAUNCH(blocks_for(total), kThreads, 0, stream(), adam_kernel)(t.dev, int(entries.size() - 1), total, m_slab,
                                                                      v_slab, a);
  check_launch_of([&] {
    return "adam_update of " + std::to_string(entries.size() - 1) + " parameters, " + std::to_string(total) +
           " elements (step " + std::to_string(t_step) + ")";
  });
}

}  // namespace ahmsa::cuda
