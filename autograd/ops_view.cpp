// Views (reshape, permute, narrow, unsqueeze), copies (contiguous, clone) and concatenation.
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/backend.h"

namespace ahmsa {
using namespace detail;

static Tensor make_view(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.impl().storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  return Tensor(impl);
}

Tensor Tensor::reshape(const Shape& s) const {
  Shape shape = s;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw ShapeError("reshape: more than one -1 in " + shape_str(s));
      infer = int64_t(i);
    } else
      known *= shape[i];
  }
  if (infer >= 0) {
    if (known == 0 || numel() % known) throw ShapeError("reshape: cannot infer -1 in " + shape_str(s) + " for " + str());
    shape[infer] = numel() / known;
  }
  if (shape_numel(shape) != numel()) throw ShapeError("reshape: " + str() + " has " + std::to_string(numel()) +
                                                      " elements, " + shape_str(s) + " needs " +
                                                      std::to_string(shape_numel(shape)));
  if (shape == this->shape()) return *this;
  Tensor src = contiguous();  // records a copy only when the layout needs it
  Tensor y = make_view(src, shape, contiguous_strides(shape), src.offset());
  Shape orig = this->shape();
  autograd::record(y, "reshape", {src}, [orig](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(orig)}; });
  return y;
}

Tensor Tensor::permute(const std::vector<int64_t>& order) const {
  if (int64_t(order.size()) != dim()) throw ShapeError("permute: order of length " + std::to_string(order.size()) +
                                                       " for " + str());
  Shape sh(order.size()), st(order.size());
  std::vector<int64_t> inverse(order.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) {
    int64_t d = wrap_dim(order[i], dim(), "permute");
    if (inverse[d] >= 0) throw ShapeError("permute: dimension repeated in order for " + str());
    inverse[d] = int64_t(i);
    sh[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor y = make_view(*this, sh, st, offset());
  autograd::record(y, "permute", {*this},
                   [inverse](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inverse)}; });
  return y;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> order(static_cast<size_t>(dim()));
  for (int64_t i = 0; i < dim(); ++i) order[i] = i;
  std::swap(order[wrap_dim(a, dim(), "transpose")], order[wrap_dim(b, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  if (start < 0 || length < 0 || start + length > shape()[d])
    throw ShapeError("narrow: [" + std::to_string(start) + ", " + std::to_string(start + length) + ") of dim " +
                     std::to_string(d) + " of " + str());
  Shape sh = shape();
  sh[d] = length;
  Tensor y = make_view(*this, sh, strides(), offset() + start * strides()[d]);
  // The gradient is g between zeros: the concatenation of zeros before, g, and zeros after along d.
  Shape full = shape();
  const Device dev = device();
  autograd::record(y, "narrow", {*this}, [=](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> parts;
    Shape before = full, after = full;
    before[d] = start;
    after[d] = full[d] - start - length;
    if (start > 0) parts.push_back(Tensor::zeros(before, dev));
    parts.push_back(g);
    if (after[d] > 0) parts.push_back(Tensor::zeros(after, dev));
    return {parts.size() == 1 ? g : cat(parts, d)};
  });
  return y;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = d < 0 ? d + dim() + 1 : d;
  if (d < 0 || d > dim()) throw ShapeError("unsqueeze: dimension out of range for " + str());
  Shape sh = shape();
  sh.insert(sh.begin() + d, 1);
  return reshape(sh);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor y = contiguous_nograd();
  autograd::record(y, "contiguous", {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return y;
}

Tensor Tensor::clone() const {
  Tensor y = Tensor::empty(shape(), device());
  y.copy_(*this);
  autograd::record(y, "clone", {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return y;
}

// Each input's block of the output: contiguous along dim 0 (outer == 1); for a later dim the blocks
// interleave row by row, and the copy kernel writes only contiguous memory, so the inputs are first
// gathered into a (Σ len, outer, inner) layout, where each is one contiguous block, and that is then
// permuted back in one more copy: #inputs + 1 kernel calls whatever the batch size.
Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) throw ShapeError("cat: no tensors");
  int64_t d = wrap_dim(dim, xs[0].dim(), "cat");
  const Device dev = xs[0].device();
  Shape out = xs[0].shape();
  out[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    if (x.device() != dev)
      throw std::runtime_error("cat: inputs on different devices: tensor 0 on " + std::string(device_name(dev)) +
                               ", tensor " + std::to_string(i) + " on " + device_name(x.device()));
    Shape a = x.shape(), b = xs[0].shape();
    a[d] = b[d] = 0;
    if (a != b) throw ShapeError("cat: shapes " + xs[0].str() + " and " + x.str() + " differ outside dim " +
                                 std::to_string(d));
    out[d] += x.shape()[d];
  }
  Tensor y = Tensor::empty(out, dev);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= out[i];
  for (int64_t i = d + 1; i < int64_t(out.size()); ++i) inner *= out[i];
  Tensor blocks = outer == 1 ? y : Tensor::empty({out[d], outer, inner}, dev);  // where the inputs go
  std::vector<int64_t> sizes;
  int64_t at = 0;
  for (auto& x : xs) {
    int64_t len = x.shape()[d];
    Tensor src = contiguous_input(x).detach().reshape({outer, len, inner}).permute({1, 0, 2});
    if (len * outer * inner > 0)
      tt::strided_copy(dev, src.data(), tt::strided_view(src), blocks.data() + at * outer * inner);
    sizes.push_back(len);
    at += len;
  }
  if (outer > 1 && y.numel() > 0) {
    Tensor back = blocks.permute({1, 0, 2});
    tt::strided_copy(dev, back.data(), tt::strided_view(back), y.data());
  }
  autograd::record(y, "cat", xs, [d, sizes](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> gs;
    int64_t start = 0;
    for (auto len : sizes) {
      gs.push_back(g.narrow(d, start, len).contiguous_nograd());
      start += len;
    }
    return gs;
  });
  return y;
}

}  // namespace ahmsa
