// Dropout and cross-entropy.
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/kernels.h"

namespace ahmsa {
using namespace detail;

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  if (p < 0.f || p >= 1.f) shape_fail("dropout", "probability " + std::to_string(p) + " outside [0, 1)");
  if (!training || p == 0.f) return x;
  require_cpu("dropout", {&x});
  Tensor mask = Tensor::empty(x.shape());
  auto block = gen.counter_block(uint64_t(mask.numel()));
  cpu::dropout_mask(mask.data(), mask.numel(), p, block.seed, block.offset);
  return mul(x, mask);
}

Tensor cross_entropy(const Tensor& logits, const std::vector<int>& targets, const Tensor& class_weights,
                     float label_smoothing) {
  require_cpu("cross_entropy", {&logits, &class_weights});
  if (logits.dim() != 2 || logits.size(0) != int64_t(targets.size()))
    shape_fail("cross_entropy", "logits " + logits.str() + " for " + std::to_string(targets.size()) + " targets");
  int64_t N = logits.size(0), K = logits.size(1);
  for (size_t i = 0; i < targets.size(); ++i)
    if (targets[i] < 0 || targets[i] >= K)
      shape_fail("cross_entropy", "target " + std::to_string(targets[i]) + " of sample " + std::to_string(i) +
                                      " outside [0, " + std::to_string(K) + ")");
  if (class_weights.defined() && (class_weights.dim() != 1 || class_weights.size(0) != K))
    shape_fail("cross_entropy", "class weights " + class_weights.str() + " for " + std::to_string(K) + " classes");
  Tensor lc = in(logits), wc = class_weights.defined() ? in(class_weights) : Tensor();
  Tensor dlogits = Tensor::empty(logits.shape()), y = Tensor::empty({});
  std::vector<int32_t> t32(targets.begin(), targets.end());
  cpu::cross_entropy(lc.data(), t32.data(), wc.defined() ? wc.data() : nullptr, N, K, label_smoothing, y.data(),
                     dlogits.data());
  autograd::record(y, "cross_entropy", {logits}, [dlogits](const Tensor& g) -> std::vector<Tensor> {
    return {mul(dlogits, g.item())};
  });
  return y;
}

}  // namespace ahmsa
