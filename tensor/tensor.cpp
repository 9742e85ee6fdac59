#include "tensor/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tensor/device.h"

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

// Gathers the (possibly strided) view src into contiguous memory dst on src's device.
static void gather_strided(const Tensor& src, float* dst) {
  if (src.numel() == 0) return;
  tt::strided_copy(src.device(), src.data(), tt::strided_view(src), dst);
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
  if (!is_contiguous()) throw ShapeError("fill_ on a non-contiguous view " + str());
  tt::fill(device(), data(), numel(), v);
}

// Within one device a strided source is gathered by the device's kernel; across devices the
// source is made contiguous on its own device first, then the bytes are transferred.
void Tensor::copy_(const Tensor& src) {
  if (src.shape() != shape()) throw ShapeError("copy_: shape " + src.str() + " into " + str());
  if (!is_contiguous()) throw ShapeError("copy_ into a non-contiguous view " + str());
  if (device() == src.device()) {
    gather_strided(src, data());
    return;
  }
  Tensor s = src.contiguous_nograd();
  device_copy(data(), device(), s.data(), s.device(), size_t(numel()));
}

// Contiguous copy without recording history (used by the differentiable ops and by copy_).
Tensor Tensor::contiguous_nograd() const {
  if (is_contiguous()) return *this;
  Tensor out = make(shape(), device());
  gather_strided(*this, out.data());
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor out = make(shape(), d);
  out.copy_(*this);
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

}  // namespace ahmsa
