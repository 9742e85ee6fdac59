// Tensor: a float32 n-d array that is a view (shape, strides, offset) into shared storage.
//
// Views (reshape of contiguous data, permute, narrow, unsqueeze) share storage and copy nothing.
// Kernels work on contiguous memory: ops call contiguous() first, which copies only when needed.
// The autograd fields (requires_grad, grad, grad_fn) live here too; the tape is in autograd/.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ahmsa {

enum class Device { CPU, CUDA };
const char* device_name(Device d);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 28, 28]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

// A failure whose message names the op and the shapes involved.
struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Raw memory on one device. CPU memory is 64-byte aligned for the vector kernels.
struct Storage {
  float* data = nullptr;
  size_t numel = 0;
  Device device = Device::CPU;
  Storage(size_t n, Device d);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct Node;  // autograd/autograd.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape, strides;
  int64_t offset = 0;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;     // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;        // the op that made this tensor (non-leaf), or null
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (uninitialised, filled, or from host values) ----
  static Tensor empty(const Shape& shape, Device d = Device::CPU);
  static Tensor zeros(const Shape& shape, Device d = Device::CPU);
  static Tensor ones(const Shape& shape, Device d = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device d = Device::CPU);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values, Device d = Device::CPU);
  static Tensor scalar(float v, Device d = Device::CPU) { return from_vector({}, {v}, d); }

  // ---- inspection ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape()); }
  Device device() const { return impl().storage->device; }
  bool is_contiguous() const;
  std::string str() const { return shape_str(shape()); }  // for error messages

  // Pointer to element [0,...,0]; the memory of a contiguous tensor is data()[0..numel).
  float* data() const { return impl().storage->data + impl().offset; }
  std::vector<float> to_vector() const;  // values in logical (row-major) order, any layout/device
  float item() const;                    // the one value of a 1-element tensor

  // ---- copies and devices ----
  Tensor contiguous() const;  // this tensor if already contiguous, else a contiguous copy (differentiable)
  Tensor clone() const;       // always a fresh contiguous copy (differentiable)
  Tensor to(Device d) const;  // contiguous copy on another device, any view (this tensor if already there); no autograd
  void copy_(const Tensor& src);  // in place, same shape; no autograd
  void fill_(float v);            // in place; no autograd

  // ---- differentiable views (autograd/ops_view.cpp) ----
  Tensor reshape(const Shape& s) const;  // one -1 allowed; copies if the layout needs it
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor unsqueeze(int64_t dim) const;

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool r = true);
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor detach() const;  // same storage and view, no history
  // Reverse-mode sweep from this tensor; grad_out defaults to ones for a 1-element tensor.
  void backward(const Tensor& grad_out = Tensor(), bool retain_graph = false) const;

  TensorImpl& impl() const {
    if (!impl_) throw std::logic_error("use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  // Contiguous copy on the same device (or this tensor) without recording autograd history; for kernels.
  Tensor contiguous_nograd() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Normalises a possibly negative dimension index and checks it; `what` names the op for errors.
int64_t wrap_dim(int64_t d, int64_t ndim, const char* what);

}  // namespace ahmsa
