// Matrix products: matmul (plain and batched) and linear layers.
#include <algorithm>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/gemm.h"
#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa {
using namespace detail;

// y = a @ b;  ga = g @ bᵀ,  gb = aᵀ @ g   (per batch)
Tensor matmul(const Tensor& a, const Tensor& b) {
  require_cpu("matmul", {&a, &b});
  bool batched = a.dim() == 3;
  if (!((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0))) ||
      a.size(-1) != b.size(-2))
    shape_fail("matmul", "cannot multiply " + a.str() + " by " + b.str());
  int64_t B = batched ? a.size(0) : 1, M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Tensor ac = in(a), bc = in(b);
  Tensor y = Tensor::empty(batched ? Shape{B, M, N} : Shape{M, N});
  cpu::bmm(ac.data(), bc.data(), y.data(), B, M, K, N);
  bool ga = a.requires_grad(), gb = b.requires_grad();
  autograd::record(y, "matmul", {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = in(g), gA, gB;
    if (ga) {
      gA = Tensor::empty(ac.shape());
      cpu::bmm(gc.data(), bc.data(), gA.data(), B, M, N, K, false, true);
    }
    if (gb) {
      gB = Tensor::empty(bc.shape());
      cpu::bmm(ac.data(), gc.data(), gB.data(), B, K, M, N, true, false);
    }
    return {gA, gB};
  });
  return y;
}

// y[..., o] = Σ_i x[..., i] w[o, i] + b[o];  gx = g w,  gw = gᵀ x,  gb = Σ_rows g
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  require_cpu("linear", {&x, &w, &b});
  if (w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(1) || (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0))))
    shape_fail("linear", "input " + x.str() + ", weight " + w.str() + (b.defined() ? ", bias " + b.str() : ""));
  int64_t in_f = w.size(1), out_f = w.size(0), rows = x.numel() / in_f;
  Tensor xc = in(x), wc = in(w);
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  Tensor y = Tensor::empty(out_shape);
  if (b.defined()) {  // start from the bias, then accumulate the product
    Tensor bc = in(b);
    parallel_for(0, rows, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) std::copy_n(bc.data(), out_f, y.data() + r * out_f);
    });
  }
  sgemm(false, true, rows, out_f, in_f, 1.f, xc.data(), in_f, wc.data(), in_f, b.defined() ? 1.f : 0.f, y.data(), out_f);
  bool gx_need = x.requires_grad(), gw_need = w.requires_grad(), gb_need = b.defined() && b.requires_grad();
  Shape xs = x.shape();
  autograd::record(y, "linear", {x, w, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = in(g), gx, gw, gb;
    if (gx_need) {
      gx = Tensor::empty(xs);
      sgemm(false, false, rows, in_f, out_f, 1.f, gc.data(), out_f, wc.data(), in_f, 0.f, gx.data(), in_f);
    }
    if (gw_need) {
      gw = Tensor::empty({out_f, in_f});
      sgemm(true, false, out_f, in_f, rows, 1.f, gc.data(), out_f, xc.data(), in_f, 0.f, gw.data(), in_f);
    }
    if (gb_need) {
      gb = Tensor::empty({out_f});
      cpu::sum_mid(gc.data(), gb.data(), 1, rows, out_f);
    }
    return {gx, gw, gb};
  });
  return y;
}

}  // namespace ahmsa
