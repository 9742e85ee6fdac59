// Device memory for the CUDA backend: a caching allocator so that, after the first training
// step, no step calls cudaMalloc or cudaFree. Blocks are kept per exact rounded size.
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa {

static void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

bool cuda_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why)
      *why = std::string("the CUDA runtime reports ") + cudaGetErrorName(e) + " (error " + std::to_string(int(e)) +
             ": " + cudaGetErrorString(e) + ")";
    cudaGetLastError();  // clear the sticky "no driver" error so later calls report their own
    return false;
  }
  if (n == 0 && why) *why = "the driver reports no CUDA device";
  return n > 0;
}

namespace {
struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  std::map<void*, size_t> sizes;
};
Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: blocks may be freed during static destruction
  return *c;
}
size_t round_up(size_t b) { return b < 512 ? 512 : (b + 511) / 512 * 512; }
}  // namespace

void* device_alloc(size_t bytes) {
  size_t r = round_up(bytes);
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.free_blocks.find(r);
  if (it != c.free_blocks.end()) {
    void* p = it->second;
    c.free_blocks.erase(it);
    return p;
  }
  void* p = nullptr;
  check(cudaMalloc(&p, r), ("cudaMalloc of " + std::to_string(r) + " bytes").c_str());
  c.sizes[p] = r;
  return p;
}

void device_free(void* p) {
  if (!p) return;
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks.emplace(c.sizes.at(p), p);
}

// One fill kernel for the whole backend: cuda::fill (tensor/cuda_memory.cu).
void device_fill(float* p, size_t n, float v) { cuda::fill(p, int64_t(n), v); }

void device_copy(float* dst, Device dd, const float* src, Device sd, size_t n) {
  cudaMemcpyKind kind = dd == Device::CPU ? (sd == Device::CPU ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost)
                                          : (sd == Device::CPU ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice);
  check(cudaMemcpy(dst, src, n * sizeof(float), kind), "cudaMemcpy");
}

}  // namespace ahmsa
