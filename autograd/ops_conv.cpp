// Convolution and pooling.
#include <memory>
#include <vector>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/backend.h"
#include "tensor/buffer.h"

namespace ahmsa {
using namespace detail;

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad) {
  const Device dev = same_device("conv2d", {{"x", &x}, {"weight", &w}, {"bias", &b}});
  if (x.dim() != 4 || w.dim() != 4 || w.size(1) != x.size(1) || w.size(2) != w.size(3) ||
      (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0))) || stride < 1 || pad < 0)
    shape_fail("conv2d", "input " + x.str() + ", weight " + w.str() + (b.defined() ? ", bias " + b.str() : "") +
                             ", stride " + std::to_string(stride) + ", pad " + std::to_string(pad));
  tt::ConvShape s{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), stride, pad};
  if (s.OH() < 1 || s.OW() < 1) shape_fail("conv2d", "kernel " + std::to_string(s.k) + " larger than padded input " + x.str());
  Tensor xc = contiguous_input(x), wc = contiguous_input(w), bc = b.defined() ? contiguous_input(b) : Tensor();
  Tensor y = Tensor::empty({s.N, s.O, s.OH(), s.OW()}, dev);
  tt::conv2d_forward(dev, s, xc.data(), wc.data(), bc.defined() ? bc.data() : nullptr, y.data());
  bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
  autograd::record(y, "conv2d", {x, w, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g);
    Tensor tx = gx ? Tensor::empty(xc.shape(), dev) : Tensor(), tw = gw ? Tensor::empty(wc.shape(), dev) : Tensor(),
           tb = gb ? Tensor::empty({s.O}, dev) : Tensor();
    tt::conv2d_backward(dev, s, xc.data(), wc.data(), gc.data(), gx ? tx.data() : nullptr, gw ? tw.data() : nullptr,
                        gb ? tb.data() : nullptr);
    return {tx, tw, tb};
  });
  return y;
}

static void require_nchw(const char* op, const Tensor& x) {
  if (x.dim() != 4) shape_fail(op, "expects an N×C×H×W input, got " + x.str());
}

// Max pools share the backward: the gradient goes to the remembered argmax of each window
// (idx, on the input's device).
static void record_argmax_backward(Tensor& y, const char* op, const Tensor& x, std::shared_ptr<IntBuffer> idx) {
  const Device dev = x.device();
  Shape xs = x.shape();
  int64_t planes = xs[0] * xs[1], HW = xs[2] * xs[3], OHW = y.size(2) * y.size(3);
  autograd::record(y, op, {x}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gx = Tensor::empty(xs, dev);
    tt::pool_scatter_backward(dev, gc.data(), idx->data(), gx.data(), planes, HW, OHW);
    return {gx};
  });
}

Tensor max_pool2d(const Tensor& x, int k, int stride, int pad) {
  require_nchw("max_pool2d", x);
  if (k < 1 || stride < 1 || pad < 0 || 2 * pad > k)
    shape_fail("max_pool2d", "kernel " + std::to_string(k) + ", stride " + std::to_string(stride) + ", pad " +
                                 std::to_string(pad) + " (pad must be at most half the kernel)");
  const Device dev = x.device();
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  int64_t OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
  if (OH < 1 || OW < 1) shape_fail("max_pool2d", "kernel larger than input " + x.str());
  Tensor y = Tensor::empty({N, C, OH, OW}, dev);
  auto idx = std::make_shared<IntBuffer>(y.numel(), dev);
  tt::max_pool2d_forward(dev, contiguous_input(x).data(), y.data(), idx->data(), N * C, H, W, OH, OW, k, stride, pad);
  record_argmax_backward(y, "max_pool2d", x, idx);
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int oh, int ow) {
  require_nchw("adaptive_avg_pool2d", x);
  if (oh < 1 || ow < 1) shape_fail("adaptive_avg_pool2d", "output size must be positive");
  const Device dev = x.device();
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = Tensor::empty({N, C, oh, ow}, dev);
  tt::adaptive_avg_pool2d_forward(dev, contiguous_input(x).data(), y.data(), N * C, H, W, oh, ow);
  Shape xs = x.shape();
  autograd::record(y, "adaptive_avg_pool2d", {x}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gx = Tensor::empty(xs, dev);
    tt::adaptive_avg_pool2d_backward(dev, gc.data(), gx.data(), N * C, H, W, oh, ow);
    return {gx};
  });
  return y;
}

Tensor adaptive_max_pool2d(const Tensor& x, int oh, int ow) {
  require_nchw("adaptive_max_pool2d", x);
  if (oh < 1 || ow < 1) shape_fail("adaptive_max_pool2d", "output size must be positive");
  const Device dev = x.device();
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = Tensor::empty({N, C, oh, ow}, dev);
  auto idx = std::make_shared<IntBuffer>(y.numel(), dev);
  tt::adaptive_max_pool2d_forward(dev, contiguous_input(x).data(), y.data(), idx->data(), N * C, H, W, oh, ow);
  record_argmax_backward(y, "adaptive_max_pool2d", x, idx);
  return y;
}

}  // namespace ahmsa
