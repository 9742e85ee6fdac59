// Elementwise ops with broadcasting, and the unary maps.
#include <algorithm>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/backend.h"

namespace ahmsa {
using namespace detail;

// ---- broadcasting: shapes are aligned at the right; a size-1 (or missing) dim stretches ----
static Shape broadcast_shape(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      shape_fail(op, "cannot broadcast " + shape_str(a) + " with " + shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Strides of a contiguous tensor of shape `s` read over the broadcast shape `out` (0 = repeated).
static Shape broadcast_strides(const Shape& s, const Shape& out) {
  Shape st(out.size(), 0), cs = contiguous_strides(s);
  size_t off = out.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i) st[off + i] = s[i] == 1 ? 0 : cs[i];
  return st;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  size_t off = g.shape().size() - shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < g.shape().size(); ++i)
    if (i < off || (shape[i - off] == 1 && g.shape()[i] != 1)) dims.push_back(int64_t(i));
  return sum(g, dims, true).reshape(shape);
}

static Tensor binary(tt::Binary op, const char* name, const Tensor& a, const Tensor& b) {
  const Device dev = same_device(name, {{"a", &a}, {"b", &b}});
  Shape out_shape = broadcast_shape(a.shape(), b.shape(), name);
  Tensor ac = contiguous_input(a), bc = contiguous_input(b);
  Tensor y = Tensor::empty(out_shape, dev);
  tt::binary_forward(dev, op, ac.data(), broadcast_strides(ac.shape(), out_shape), bc.data(),
                     broadcast_strides(bc.shape(), out_shape), y.data(), out_shape);
  if (!autograd::needs_grad({a, b})) return y;
  Shape sa = a.shape(), sb = b.shape();
  bool ga = a.requires_grad(), gb = b.requires_grad();
  autograd::record(y, name, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    switch (op) {
      case tt::Binary::Add: return {ga ? sum_to(g, sa) : Tensor(), gb ? sum_to(g, sb) : Tensor()};
      case tt::Binary::Sub: return {ga ? sum_to(g, sa) : Tensor(), gb ? sum_to(neg(g), sb) : Tensor()};
      case tt::Binary::Mul:  // d(ab) = b da + a db
        return {ga ? sum_to(mul(g, bc), sa) : Tensor(), gb ? sum_to(mul(g, ac), sb) : Tensor()};
      case tt::Binary::Div:  // d(a/b) = da/b − a db/b²
        return {ga ? sum_to(div(g, bc), sa) : Tensor(),
                gb ? sum_to(neg(div(mul(g, ac), mul(bc, bc))), sb) : Tensor()};
    }
    return {};
  });
  return y;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(tt::Binary::Add, "add", a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(tt::Binary::Sub, "sub", a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(tt::Binary::Mul, "mul", a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(tt::Binary::Div, "div", a, b); }

Tensor add(const Tensor& a, float s) {
  const Device dev = a.device();
  Tensor ac = contiguous_input(a), y = Tensor::empty(a.shape(), dev);
  tt::scalar_forward(dev, tt::Binary::Add, ac.data(), s, y.data(), y.numel());
  autograd::record(y, "add_scalar", {a}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return y;
}

Tensor mul(const Tensor& a, float s) {
  const Device dev = a.device();
  Tensor ac = contiguous_input(a), y = Tensor::empty(a.shape(), dev);
  tt::scalar_forward(dev, tt::Binary::Mul, ac.data(), s, y.data(), y.numel());
  autograd::record(y, "mul_scalar", {a}, [s](const Tensor& g) -> std::vector<Tensor> { return {mul(g, s)}; });
  return y;
}

void add_inplace(Tensor& dst, const Tensor& src) {
  if (dst.shape() != src.shape()) shape_fail("add_inplace", "shape " + src.str() + " into " + dst.str());
  const Device dev = same_device("add_inplace", {{"dst", &dst}, {"src", &src}});
  if (!dst.is_contiguous()) shape_fail("add_inplace", "destination is a non-contiguous view " + dst.str());
  Tensor s = contiguous_input(src);
  tt::add_inplace(dev, dst.data(), s.data(), dst.numel());
}

static Tensor unary(tt::Unary op, const char* name, const Tensor& x) {
  const Device dev = x.device();
  Tensor xc = contiguous_input(x), y = Tensor::empty(x.shape(), dev);
  tt::unary_forward(dev, op, xc.data(), y.data(), y.numel());
  if (!autograd::needs_grad({x})) return y;
  Tensor ys = y.detach();
  autograd::record(y, name, {x}, [op, dev, xc, ys](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gx = Tensor::empty(gc.shape(), dev);
    tt::unary_backward(dev, op, xc.data(), ys.data(), gc.data(), gx.data(), gx.numel());
    return {gx};
  });
  return y;
}

Tensor neg(const Tensor& x) { return unary(tt::Unary::Neg, "neg", x); }
Tensor relu(const Tensor& x) { return unary(tt::Unary::Relu, "relu", x); }
Tensor gelu(const Tensor& x) { return unary(tt::Unary::Gelu, "gelu", x); }
Tensor sigmoid(const Tensor& x) { return unary(tt::Unary::Sigmoid, "sigmoid", x); }
Tensor exp(const Tensor& x) { return unary(tt::Unary::Exp, "exp", x); }
Tensor log(const Tensor& x) { return unary(tt::Unary::Log, "log", x); }
Tensor sqrt(const Tensor& x) { return unary(tt::Unary::Sqrt, "sqrt", x); }
Tensor square(const Tensor& x) { return unary(tt::Unary::Square, "square", x); }

}  // namespace ahmsa
