// IntBuffer: int32 memory on one device (host_alloc or device_alloc), for the integer side data of
// ops — the argmax indices of the max pools and of max, cross-entropy's class ids — so that it lives
// where the kernels that read and write it run. Movable, not copyable; held by shared_ptr in closures.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/device.h"

namespace ahmsa {

class IntBuffer {
 public:
  IntBuffer(int64_t n, Device d) : n_(n), device_(d) {
    const size_t bytes = size_t(n > 0 ? n : 1) * sizeof(int32_t);
    p_ = static_cast<int32_t*>(d == Device::CPU ? host_alloc(bytes) : device_alloc(bytes));
  }
  // A buffer on d holding the values of v.
  static IntBuffer upload(const std::vector<int32_t>& v, Device d) {
    IntBuffer b(int64_t(v.size()), d);
    if (d == Device::CPU)
      std::memcpy(b.p_, v.data(), v.size() * sizeof(int32_t));
    else  // device_copy moves 4-byte words; the bits of an int32 travel unchanged as a float's
      device_copy(reinterpret_cast<float*>(b.p_), d, reinterpret_cast<const float*>(v.data()), Device::CPU, v.size());
    return b;
  }
  // Overwrites the values in place (same size): the memory, and so any captured kernel reading it, stays.
  void assign(const std::vector<int32_t>& v) {
    if (int64_t(v.size()) != n_)
      throw std::invalid_argument("IntBuffer::assign: " + std::to_string(v.size()) + " values for a buffer of " +
                                  std::to_string(n_));
    if (device_ == Device::CPU)
      std::memcpy(p_, v.data(), v.size() * sizeof(int32_t));
    else
      device_copy(reinterpret_cast<float*>(p_), device_, reinterpret_cast<const float*>(v.data()), Device::CPU,
                  v.size());
  }
  std::vector<int32_t> to_vector() const {  // the values, read back to the host
    std::vector<int32_t> v(static_cast<size_t>(n_));
    if (device_ == Device::CPU)
      std::memcpy(v.data(), p_, v.size() * sizeof(int32_t));
    else
      device_copy(reinterpret_cast<float*>(v.data()), Device::CPU, reinterpret_cast<const float*>(p_), device_,
                  v.size());
    return v;
  }
  ~IntBuffer() { release(); }
  IntBuffer(IntBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(o.n_), device_(o.device_) {}
  IntBuffer& operator=(IntBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr), n_ = o.n_, device_ = o.device_;
    }
    return *this;
  }
  IntBuffer(const IntBuffer&) = delete;
  IntBuffer& operator=(const IntBuffer&) = delete;

  int32_t* data() const { return p_; }
  int64_t size() const { return n_; }
  Device device() const { return device_; }

 private:
  void release() {
    if (!p_) return;
    if (device_ == Device::CPU)
      host_free(p_);
    else
      device_free(p_);
    p_ = nullptr;
  }
  int32_t* p_ = nullptr;
  int64_t n_ = 0;
  Device device_ = Device::CPU;
};

static_assert(sizeof(int32_t) == sizeof(float), "IntBuffer moves int32 values with the float copy routine");

}  // namespace ahmsa
