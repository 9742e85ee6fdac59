// Reductions (sum, mean, max) and softmax / log-softmax along a dimension.
#include <algorithm>
#include <numeric>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/backend.h"
#include "tensor/buffer.h"

namespace ahmsa {
using namespace detail;

// A stride-0 view of g repeated to `shape` (g has shape's rank, with 1 where it repeats), copied.
static Tensor broadcast_copy(const Tensor& g, const Shape& shape) {
  Tensor gc = contiguous_input(g);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = gc.impl().storage;
  impl->offset = gc.offset();
  impl->shape = shape;
  impl->strides = contiguous_strides(gc.shape());
  for (size_t i = 0; i < shape.size(); ++i)
    if (gc.shape()[i] == 1) impl->strides[i] = 0;
  return Tensor(impl).contiguous_nograd();
}

// Splits x's shape around dims [d0, d1] into (outer, R, inner).
static void split3(const Shape& s, int64_t d0, int64_t d1, int64_t& outer, int64_t& R, int64_t& inner) {
  outer = R = inner = 1;
  for (int64_t i = 0; i < int64_t(s.size()); ++i) (i < d0 ? outer : i <= d1 ? R : inner) *= s[i];
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const Device dev = x.device();
  int64_t nd = x.dim();
  std::vector<int64_t> dims;
  for (auto d : dims_in) dims.push_back(wrap_dim(d, nd, "sum"));
  if (dims.empty()) {  // all dimensions
    dims.resize(size_t(nd));
    std::iota(dims.begin(), dims.end(), 0);
  }
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  Shape keep_shape = x.shape(), out_shape;
  for (auto d : dims) keep_shape[d] = 1;
  for (int64_t i = 0; i < nd; ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) out_shape.push_back(x.shape()[i]);
  if (keepdim) out_shape = keep_shape;

  Tensor y = Tensor::empty(out_shape, dev);
  int64_t outer, R, inner;
  bool range = nd == 0 || dims.back() - dims.front() + 1 == int64_t(dims.size());
  if (range && nd > 0) {
    split3(x.shape(), dims.front(), dims.back(), outer, R, inner);
    tt::sum_mid(dev, contiguous_input(x).data(), y.data(), outer, R, inner);
  } else if (nd == 0) {  // the sum of one value
    tt::sum_mid(dev, x.data(), y.data(), 1, 1, 1);
  } else {  // move reduced dims to the end
    std::vector<int64_t> order;
    for (int64_t i = 0; i < nd; ++i)
      if (!std::binary_search(dims.begin(), dims.end(), i)) order.push_back(i);
    order.insert(order.end(), dims.begin(), dims.end());
    Tensor xp = x.detach().permute(order).contiguous_nograd();
    split3(xp.shape(), nd - int64_t(dims.size()), nd - 1, outer, R, inner);
    tt::sum_mid(dev, xp.data(), y.data(), outer, R, inner);
  }
  Shape xs = x.shape();
  autograd::record(y, "sum", {x}, [xs, keep_shape](const Tensor& g) -> std::vector<Tensor> {
    return {broadcast_copy(g.reshape(keep_shape), xs)};
  });
  return y;
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  int64_t count = 1;
  if (dims.empty())
    count = x.numel();
  else {
    std::vector<int64_t> w;
    for (auto d : dims) w.push_back(wrap_dim(d, x.dim(), "mean"));
    std::sort(w.begin(), w.end());
    w.erase(std::unique(w.begin(), w.end()), w.end());
    for (auto d : w) count *= x.shape()[d];
  }
  return mul(sum(x, dims, keepdim), 1.f / float(std::max<int64_t>(count, 1)));
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  const Device dev = x.device();
  int64_t d = wrap_dim(dim, x.dim(), "max"), outer, R, inner;
  split3(x.shape(), d, d, outer, R, inner);
  Shape keep_shape = x.shape(), out_shape = x.shape();
  keep_shape[d] = 1;
  out_shape.erase(out_shape.begin() + d);
  Tensor y = Tensor::empty(keepdim ? keep_shape : out_shape, dev);
  auto idx = std::make_shared<IntBuffer>(outer * inner, dev);
  tt::max_mid(dev, contiguous_input(x).data(), y.data(), idx->data(), outer, R, inner);
  Shape xs = x.shape();
  autograd::record(y, "max", {x}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gx = Tensor::empty(xs, dev);
    tt::max_mid_backward(dev, gc.data(), idx->data(), gx.data(), outer, R, inner);
    return {gx};
  });
  return y;
}

static Tensor softmax_impl(const Tensor& x, int64_t dim, bool log, const char* name) {
  const Device dev = x.device();
  int64_t d = wrap_dim(dim, x.dim(), name), outer, R, inner;
  split3(x.shape(), d, d, outer, R, inner);
  Tensor y = Tensor::empty(x.shape(), dev);
  tt::softmax_mid(dev, contiguous_input(x).data(), y.data(), outer, R, inner, log);
  if (!autograd::needs_grad({x})) return y;
  Tensor ys = y.detach();
  autograd::record(y, name, {x}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gx = Tensor::empty(ys.shape(), dev);
    tt::softmax_mid_backward(dev, ys.data(), gc.data(), gx.data(), outer, R, inner, log);
    return {gx};
  });
  return y;
}

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true, "log_softmax"); }

}  // namespace ahmsa
