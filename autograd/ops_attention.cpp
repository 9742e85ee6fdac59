// Multi-head self-attention as one op: the score matrix, softmax and weighted sum of every
// (sequence, head) pair, reading q, k and v in place from the qkv projection.
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/backend.h"

namespace ahmsa {
using namespace detail;

Tensor multi_head_attention(const Tensor& qkv, int64_t heads) {
  if (qkv.dim() != 3 || heads < 1 || qkv.size(2) % (3 * heads) != 0)
    shape_fail("multi_head_attention", "qkv " + qkv.str() + " with " + std::to_string(heads) +
                                           " heads (need [B, T, 3C] with C divisible by the heads)");
  const Device dev = qkv.device();
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, d = C / heads;
  Tensor x = contiguous_input(qkv);
  Tensor out = Tensor::empty({B, T, C}, dev), P = Tensor::empty({B, heads, T, T}, dev);
  tt::attention_forward(dev, x.data(), out.data(), P.data(), B, T, heads, d);
  autograd::record(out, "multi_head_attention", {qkv}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gx = Tensor::empty(x.shape(), dev);
    tt::attention_backward(dev, x.data(), P.data(), gc.data(), gx.data(), B, T, heads, d);
    return {gx};
  });
  return out;
}

}  // namespace ahmsa
