// Optimiser updates over every parameter in one call (PyTorch's update rules, float32 as PyTorch
// computes them). Elements are independent, so threads split each parameter; the result does not
// depend on the thread count.
#include <cmath>
#include <cstring>

#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa::cpu {

static constexpr int64_t kGrain = 1 << 14;

StepTerms sgd_terms(float lr) { return {lr, 1.f, lr, 1.f}; }

StepTerms adam_terms(float lr, float beta1, float beta2, float weight_decay, int64_t t) {
  const float bc1 = 1.f - std::pow(beta1, float(t)), bc2 = 1.f - std::pow(beta2, float(t));
  return {lr, 1.f - lr * weight_decay, lr / bc1, std::sqrt(bc2)};
}

void sgd_update(const ParamList& p, float* v_slab, float lr_arg, float momentum, float weight_decay, bool nesterov,
                bool first) {
  const float lr = p.live ? p.live[0] : lr_arg;
  for (size_t k = 0; k < p.theta.size(); ++k) {
    if (!p.grad[k]) continue;
    float* th = p.theta[k];
    const float* g = p.grad[k];
    float* v = v_slab ? v_slab + p.offset[k] : nullptr;
    parallel_for(0, p.numel[k], kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        float d = g[j] + weight_decay * th[j];
        if (v) {
          v[j] = first ? d : momentum * v[j] + d;
          d = nesterov ? d + momentum * v[j] : v[j];
        }
        th[j] -= lr * d;
      }
    });
  }
}

void adam_update(const ParamList& p, float* m_slab, float* v_slab, float lr, float beta1, float beta2, float eps,
                 float weight_decay, bool decoupled, int64_t t) {
  StepTerms terms = adam_terms(lr, beta1, beta2, weight_decay, t);
  if (p.live) std::memcpy(&terms, p.live, sizeof terms);
  const float decay = terms.decay, step_size = terms.step_size, bc2_sqrt = terms.bc2_sqrt;
  for (size_t k = 0; k < p.theta.size(); ++k) {
    if (!p.grad[k]) continue;
    float* th = p.theta[k];
    const float* g = p.grad[k];
    float* m = m_slab + p.offset[k];
    float* v = v_slab + p.offset[k];
    parallel_for(0, p.numel[k], kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        float gj = g[j];
        if (decoupled)
          th[j] *= decay;
        else
          gj += weight_decay * th[j];
        m[j] = beta1 * m[j] + (1.f - beta1) * gj;
        v[j] = beta2 * v[j] + (1.f - beta2) * gj * gj;
        th[j] -= step_size * m[j] / (std::sqrt(v[j]) / bc2_sqrt + eps);
      }
    });
  }
}

}  // namespace ahmsa::cpu
