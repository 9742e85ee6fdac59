// Stand-ins used when the CUDA backend is not compiled in.
#ifndef AHMSA_HAVE_CUDA
#include <cstring>
#include <stdexcept>

#include "tensor/device.h"
#include "tensor/device_graph.h"

namespace ahmsa {

static void no_cuda() { throw std::runtime_error("this build has no CUDA backend (nvcc was not found at configure time)"); }

bool cuda_available(std::string* why) {
  if (why) *why = "this build has no CUDA backend (nvcc was not found at configure time)";
  return false;
}
void* device_alloc(size_t) { no_cuda(); return nullptr; }
void device_free(void* p) { if (p) no_cuda(); }
void device_fill(float*, size_t, float) { no_cuda(); }
void device_copy(float* dst, Device dd, const float* src, Device sd, size_t n) {
  if (dd == Device::CPU && sd == Device::CPU) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  no_cuda();
}

struct DeviceGraph::Impl {};
DeviceGraph::DeviceGraph() = default;
DeviceGraph::~DeviceGraph() = default;
bool DeviceGraph::supported() { return false; }
void DeviceGraph::capture(const std::function<void()>&) { no_cuda(); }
bool DeviceGraph::captured() const { return false; }
void DeviceGraph::replay() { no_cuda(); }

}  // namespace ahmsa
#endif
