// Matrix products: matmul (plain and batched) and linear layers.
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/backend.h"

namespace ahmsa {
using namespace detail;

// y = a @ b;  ga = g @ bᵀ,  gb = aᵀ @ g   (per batch)
Tensor matmul(const Tensor& a, const Tensor& b) {
  const Device dev = same_device("matmul", {{"a", &a}, {"b", &b}});
  bool batched = a.dim() == 3;
  if (!((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0))) ||
      a.size(-1) != b.size(-2))
    shape_fail("matmul", "cannot multiply " + a.str() + " by " + b.str());
  int64_t B = batched ? a.size(0) : 1, M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Tensor ac = contiguous_input(a), bc = contiguous_input(b);
  Tensor y = Tensor::empty(batched ? Shape{B, M, N} : Shape{M, N}, dev);
  tt::bmm(dev, ac.data(), bc.data(), y.data(), B, M, K, N);
  bool ga = a.requires_grad(), gb = b.requires_grad();
  autograd::record(y, "matmul", {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gA, gB;
    if (ga) {
      gA = Tensor::empty(ac.shape(), dev);
      tt::bmm(dev, gc.data(), bc.data(), gA.data(), B, M, N, K, false, true);
    }
    if (gb) {
      gB = Tensor::empty(bc.shape(), dev);
      tt::bmm(dev, ac.data(), gc.data(), gB.data(), B, K, M, N, true, false);
    }
    return {gA, gB};
  });
  return y;
}

// y[..., o] = Σ_i x[..., i] w[o, i] + b[o];  gx = g w,  gw = gᵀ x,  gb = Σ_rows g
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  const Device dev = same_device("linear", {{"x", &x}, {"weight", &w}, {"bias", &b}});
  if (w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(1) || (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0))))
    shape_fail("linear", "input " + x.str() + ", weight " + w.str() + (b.defined() ? ", bias " + b.str() : ""));
  int64_t in_f = w.size(1), out_f = w.size(0), rows = x.numel() / in_f;
  Tensor xc = contiguous_input(x), wc = contiguous_input(w);
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  Tensor y = Tensor::empty(out_shape, dev);
  if (b.defined()) {  // start every row from the bias (a stride-0 view of it), then accumulate the product
    Tensor bc = contiguous_input(b);
    tt::StridedView rows_of_bias;
    rows_of_bias.ndim = 2;
    rows_of_bias.shape[0] = rows, rows_of_bias.shape[1] = out_f;
    rows_of_bias.strides[0] = 0, rows_of_bias.strides[1] = 1;
    if (rows > 0) tt::strided_copy(dev, bc.data(), rows_of_bias, y.data());
  }
  tt::bmm(dev, xc.data(), wc.data(), y.data(), 1, rows, in_f, out_f, false, true, b.defined() ? 1.f : 0.f);
  bool gx_need = x.requires_grad(), gw_need = w.requires_grad(), gb_need = b.defined() && b.requires_grad();
  Shape xs = x.shape();
  autograd::record(y, "linear", {x, w, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gx, gw, gb;
    if (gx_need) {
      gx = Tensor::empty(xs, dev);
      tt::bmm(dev, gc.data(), wc.data(), gx.data(), 1, rows, out_f, in_f);
    }
    if (gw_need) {
      gw = Tensor::empty({out_f, in_f}, dev);
      tt::bmm(dev, gc.data(), xc.data(), gw.data(), 1, out_f, rows, in_f, true, false);
    }
    if (gb_need) {
      gb = Tensor::empty({out_f}, dev);
      tt::sum_mid(dev, gc.data(), gb.data(), 1, rows, out_f);
    }
    return {gx, gw, gb};
  });
  return y;
}

}  // namespace ahmsa
