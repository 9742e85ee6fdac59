// Dropout and cross-entropy.
#include <memory>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/backend.h"
#include "tensor/buffer.h"

namespace ahmsa {
using namespace detail;

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  if (p < 0.f || p >= 1.f) shape_fail("dropout", "probability " + std::to_string(p) + " outside [0, 1)");
  if (!training || p == 0.f) return x;
  const Device dev = x.device();
  Tensor mask = Tensor::empty(x.shape(), dev);
  auto block = gen.counter_block(uint64_t(mask.numel()));
  tt::dropout_mask(dev, mask.data(), mask.numel(), p, block.seed, block.offset, block.shift);
  return mul(x, mask);
}

// The kernel writes the loss and ∂loss/∂logits in one pass; the backward scales the saved
// gradient by the incoming one (a 0-d tensor on the same device: a broadcast mul, no host read).
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& targets, const Tensor& class_weights,
                     float label_smoothing) {
  if (logits.dim() != 2 || logits.size(0) != int64_t(targets.size()))
    shape_fail("cross_entropy", "logits " + logits.str() + " for " + std::to_string(targets.size()) + " targets");
  const int64_t K = logits.size(1);
  for (size_t i = 0; i < targets.size(); ++i)  // checked on the host, before the ids are uploaded
    if (targets[i] < 0 || targets[i] >= K)
      shape_fail("cross_entropy", "target " + std::to_string(targets[i]) + " of sample " + std::to_string(i) +
                                      " outside [0, " + std::to_string(K) + ")");
  const IntBuffer ids = IntBuffer::upload(std::vector<int32_t>(targets.begin(), targets.end()), logits.device());
  return cross_entropy(logits, ids, class_weights, label_smoothing);
}

Tensor cross_entropy(const Tensor& logits, const IntBuffer& targets, const Tensor& class_weights,
                     float label_smoothing) {
  const Device dev = same_device("cross_entropy", {{"logits", &logits}, {"class_weights", &class_weights}});
  if (targets.device() != dev)
    shape_fail("cross_entropy", std::string("targets on ") + device_name(targets.device()) + ", logits on " +
                                    device_name(dev));
  if (logits.dim() != 2 || logits.size(0) != targets.size())
    shape_fail("cross_entropy", "logits " + logits.str() + " for " + std::to_string(targets.size()) + " targets");
  const int64_t N = logits.size(0), K = logits.size(1);
  if (class_weights.defined() && (class_weights.dim() != 1 || class_weights.size(0) != K))
    shape_fail("cross_entropy", "class weights " + class_weights.str() + " for " + std::to_string(K) + " classes");
  Tensor lc = contiguous_input(logits), wc = class_weights.defined() ? contiguous_input(class_weights) : Tensor();
  Tensor dlogits = Tensor::empty(logits.shape(), dev), y = Tensor::empty({}, dev);
  tt::cross_entropy(dev, lc.data(), targets.data(), wc.defined() ? wc.data() : nullptr, N, K, label_smoothing,
                    y.data(), dlogits.data());
  autograd::record(y, "cross_entropy", {logits}, [dlogits](const Tensor& g) -> std::vector<Tensor> {
    return {mul(dlogits, g)};
  });
  return y;
}

Tensor cross_entropy_soft(const Tensor& logits, const Tensor& targets, const Tensor& class_weights, float label_smoothing) {
  const Device dev =
      same_device("cross_entropy_soft", {{"logits", &logits}, {"targets", &targets}, {"class_weights", &class_weights}});
  if (logits.dim() != 2 || targets.shape() != logits.shape())
    shape_fail("cross_entropy_soft", "logits " + logits.str() + ", targets " + targets.str() + " (both [N, K])");
  const int64_t N = logits.size(0), K = logits.size(1);
  if (class_weights.defined() && (class_weights.dim() != 1 || class_weights.size(0) != K))
    shape_fail("cross_entropy_soft", "class weights " + class_weights.str() + " for " + std::to_string(K) + " classes");
  Tensor lc = contiguous_input(logits), tc = contiguous_input(targets);
  Tensor wc = class_weights.defined() ? contiguous_input(class_weights) : Tensor();
  Tensor dlogits = Tensor::empty(logits.shape(), dev), y = Tensor::empty({}, dev);
  tt::cross_entropy_soft(dev, lc.data(), tc.data(), wc.defined() ? wc.data() : nullptr, N, K, label_smoothing, y.data(),
                         dlogits.data());
  autograd::record(y, "cross_entropy_soft", {logits}, [dlogits](const Tensor& g) -> std::vector<Tensor> {
    return {mul(dlogits, g)};
  });
  return y;
}

}  // namespace ahmsa
