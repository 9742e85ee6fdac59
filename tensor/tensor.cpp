#include "tensor/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "autograd/autograd.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/parallel.h"

namespace ahmsa {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s)
    if (__builtin_mul_overflow(n, d, &n))
      throw ShapeError("shape " + shape_str(s) + " has more elements than a 64-bit count can hold");
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = int64_t(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* what) {
  int64_t w = d < 0 ? d + ndim : d;
  if (w < 0 || w >= std::max<int64_t>(ndim, 1))
    throw ShapeError(std::string(what) + ": dimension " + std::to_string(d) + " out of range for " +
                     std::to_string(ndim) + "-d tensor");
  return w;
}

Storage::Storage(size_t n, Device d) : numel(n), device(d) {
  size_t bytes = std::max<size_t>(n, 1) * sizeof(float);
  if (d == Device::CPU) {
    data = static_cast<float*>(host_alloc(bytes));
  } else {
    data = static_cast<float*>(device_alloc(bytes));
  }
}

Storage::~Storage() {
  if (device == Device::CPU)
    host_free(data);
  else
    device_free(data);
}

static Tensor make(const Shape& shape, Device d) {
  for (auto s : shape)
    if (s < 0) throw ShapeError("negative size in shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)), d);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  return Tensor(impl);
}

Tensor Tensor::empty(const Shape& shape, Device d) { return make(shape, d); }

Tensor Tensor::full(const Shape& shape, float value, Device d) {
  Tensor t = make(shape, d);
  t.fill_(value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, Device d) { return full(shape, 0.f, d); }
Tensor Tensor::ones(const Shape& shape, Device d) { return full(shape, 1.f, d); }

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values, Device d) {
  if (int64_t(values.size()) != shape_numel(shape))
    throw ShapeError("from_vector: " + std::to_string(values.size()) + " values for shape " + shape_str(shape));
  Tensor t = make(shape, Device::CPU);
  std::copy(values.begin(), values.end(), t.data());
  return d == Device::CPU ? t : t.to(d);
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] != 1 && strides()[i] != expect) return false;
    expect *= shape()[i];
  }
  return true;
}

// Copies a strided view into contiguous memory, walking the last dimension innermost.
static void gather_strided(const Tensor& src, float* dst) {
  const auto& sh = src.shape();
  const auto& st = src.strides();
  int64_t nd = src.dim(), n = src.numel();
  if (n == 0) return;
  if (nd == 0) {
    dst[0] = src.data()[0];
    return;
  }
  const float* base = src.data();
  const int64_t inner = sh[nd - 1], istride = st[nd - 1], rows = n / std::max<int64_t>(inner, 1);
  // Rows of the last dimension are independent: threads take contiguous ranges of them.
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> idx(size_t(nd), 0);
    for (int64_t i = nd - 2, rem = lo; i >= 0; --i) {  // multi-index of row `lo`
      idx[size_t(i)] = rem % sh[i];
      rem /= sh[i];
    }
    for (int64_t r = lo; r < hi; ++r) {
      int64_t off = 0;
      for (int64_t i = 0; i < nd - 1; ++i) off += idx[size_t(i)] * st[i];
      const float* p = base + off;
      float* d = dst + r * inner;
      if (istride == 1)
        std::memcpy(d, p, size_t(inner) * sizeof(float));
      else
        for (int64_t j = 0; j < inner; ++j) d[j] = p[j * istride];
      for (int64_t i = nd - 2; i >= 0; --i) {
        if (++idx[size_t(i)] < sh[i]) break;
        idx[size_t(i)] = 0;
      }
    }
  });
}

std::vector<float> Tensor::to_vector() const {
  if (device() != Device::CPU) return to(Device::CPU).to_vector();
  std::vector<float> v(static_cast<size_t>(numel()));
  gather_strided(*this, v.data());
  return v;
}

float Tensor::item() const {
  if (numel() != 1) throw ShapeError("item() on tensor of shape " + str());
  return to_vector()[0];
}

void Tensor::fill_(float v) {
  if (device() != Device::CPU) {
    device_fill(data(), size_t(numel()), v);
    return;
  }
  if (!is_contiguous()) throw ShapeError("fill_ on a non-contiguous view " + str());
  std::fill_n(data(), numel(), v);
}

void Tensor::copy_(const Tensor& src) {
  if (src.shape() != shape()) throw ShapeError("copy_: shape " + src.str() + " into " + str());
  if (!is_contiguous()) throw ShapeError("copy_ into a non-contiguous view " + str());
  if (device() == Device::CPU && src.device() == Device::CPU) {
    gather_strided(src, data());
    return;
  }
  Tensor s = src.device() == Device::CPU ? src.contiguous_nograd_() : src;
  if (!s.is_contiguous()) throw ShapeError("copy_ from a non-contiguous device view " + src.str());
  device_copy(data(), device(), s.data(), s.device(), size_t(numel()));
}

// Contiguous copy without recording history (used by the differentiable ops and by copy_).
Tensor Tensor::contiguous_nograd_() const {
  if (is_contiguous()) return *this;
  if (device() != Device::CPU) throw ShapeError("non-contiguous device tensors need a device copy kernel");
  Tensor out = make(shape(), Device::CPU);
  gather_strided(*this, out.data());
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor src = contiguous_nograd_();
  Tensor out = make(shape(), d);
  device_copy(out.data(), d, src.data(), src.device(), size_t(numel()));
  return out;
}

Tensor& Tensor::set_requires_grad(bool r) {
  if (impl().grad_fn && !r) throw std::logic_error("cannot clear requires_grad of a non-leaf tensor");
  impl().requires_grad = r;
  return *this;
}

Tensor Tensor::detach() const {
  auto impl2 = std::make_shared<TensorImpl>();
  impl2->storage = impl().storage;
  impl2->shape = impl().shape;
  impl2->strides = impl().strides;
  impl2->offset = impl().offset;
  return Tensor(impl2);
}

void Tensor::backward(const Tensor& grad_out, bool retain_graph) const { autograd::backward(*this, grad_out, retain_graph); }

}  // namespace ahmsa
