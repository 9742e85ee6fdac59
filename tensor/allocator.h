// Host memory for tensors and kernel scratch: 64-byte aligned blocks kept in per-size free lists
// after use, so a training step, which asks for the same sizes every time, reuses warm pages
// instead of mapping fresh ones (each fresh mapping costs page faults and the kernel's zeroing).
#pragma once
#include <cstddef>

namespace ahmsa {

void* host_alloc(size_t bytes);  // uninitialised, 64-byte aligned; throws std::bad_alloc
void host_free(void* p);
size_t host_cached_bytes();      // held in the free lists now
void host_release_cache();       // gives every cached block back to the system

// An uninitialised float buffer from the same cache, for the lifetime of a kernel call.
class Scratch {
 public:
  explicit Scratch(size_t n) : p_(n ? static_cast<float*>(host_alloc(n * sizeof(float))) : nullptr) {}
  ~Scratch() { host_free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* data() const { return p_; }

 private:
  float* p_;
};

}  // namespace ahmsa
