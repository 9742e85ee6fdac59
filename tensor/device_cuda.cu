// Device memory for the CUDA backend: a caching allocator so that, after the first training
// step, no step calls cudaMalloc or cudaFree (blocks are kept per exact rounded size), its private
// pools for CUDA graphs, and the graphs themselves (tensor/device_graph.h).
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/cuda_check.h"
#include "tensor/device.h"
#include "tensor/device_graph.h"
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

namespace device_memory {  // named: DeviceGraph::Impl holds a Pool
// A private pool: the blocks one graph's captures allocated. `open` while the graph lives; after that
// its blocks go back to the shared cache as they are freed.
struct Pool {
  std::multimap<size_t, void*> free_blocks;
  bool open = true;
};
struct Block {
  size_t size;
  std::shared_ptr<Pool> pool;  // null: the shared cache
};
struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block, of the shared cache
  std::map<void*, Block> blocks;             // every block ever allocated
};
Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: blocks may be freed during static destruction
  return *c;
}
size_t round_up(size_t b) { return b < 512 ? 512 : (b + 511) / 512 * 512; }
// The pool this thread's allocations come from (set while it captures a graph), else null.
std::shared_ptr<Pool>& thread_pool() {
  thread_local std::shared_ptr<Pool> p;
  return p;
}
}  // namespace device_memory
using namespace device_memory;

void* device_alloc(size_t bytes) {
  const size_t r = round_up(bytes);
  auto& c = cache();
  const std::shared_ptr<Pool>& pool = thread_pool();
  std::lock_guard<std::mutex> lock(c.mu);
  auto& free_blocks = pool ? pool->free_blocks : c.free_blocks;
  auto it = free_blocks.find(r);
  if (it != free_blocks.end()) {
    void* p = it->second;
    free_blocks.erase(it);
    return p;
  }
  void* p = nullptr;
  check(cudaMalloc(&p, r), ("cudaMalloc of " + std::to_string(r) + " bytes").c_str());
  c.blocks[p] = {r, pool};
  return p;
}

void device_free(void* p) {
  if (!p) return;
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  Block& b = c.blocks.at(p);
  if (b.pool && !b.pool->open) b.pool.reset();  // its graph is gone: the block joins the shared cache
  (b.pool ? b.pool->free_blocks : c.free_blocks).emplace(b.size, p);
}

// One fill kernel for the whole backend: cuda::fill (tensor/cuda_memory.cu).
void device_fill(float* p, size_t n, float v) { cuda::fill(p, int64_t(n), v); }

// Device to device: queued on the backend's stream (so it can be captured); to or from the host: a
// synchronous copy (which a capture refuses, as it should: the data would not be there yet).
void device_copy(float* dst, Device dd, const float* src, Device sd, size_t n) {
  if (dd != Device::CPU && sd != Device::CPU) {
    check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, cuda::stream()),
          "cudaMemcpyAsync (device to device)");
    return;
  }
  cudaMemcpyKind kind = dd == Device::CPU ? (sd == Device::CPU ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost)
                                          : cudaMemcpyHostToDevice;
  check(cudaMemcpy(dst, src, n * sizeof(float), kind), "cudaMemcpy");
}

// ---- CUDA graphs ----------------------------------------------------------------------------------
struct DeviceGraph::Impl {
  cudaStream_t stream = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::shared_ptr<Pool> pool = std::make_shared<Pool>();
};

DeviceGraph::DeviceGraph() : impl_(std::make_unique<Impl>()) {}

DeviceGraph::~DeviceGraph() {
  if (impl_->exec) cudaGraphExecDestroy(impl_->exec);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  impl_->pool->open = false;  // blocks still held by tensors join the shared cache when freed
  for (auto& [size, p] : impl_->pool->free_blocks) {
    c.blocks.at(p).pool.reset();
    c.free_blocks.emplace(size, p);
  }
  impl_->pool->free_blocks.clear();
}

bool DeviceGraph::supported() { return true; }
bool DeviceGraph::captured() const { return impl_->exec != nullptr; }

void DeviceGraph::capture(const std::function<void()>& body) {
  if (impl_->exec) throw std::logic_error("DeviceGraph::capture: already captured");
  // A blocking stream: work left on the legacy stream during the capture is an error, not a race.
  if (!impl_->stream) check(cudaStreamCreate(&impl_->stream), "cudaStreamCreate (for a CUDA graph)");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (before a CUDA graph capture)");
  // Relaxed: the pool's first allocations (cudaMalloc) happen during the capture; they are not
  // stream work, and the pool keeps them for the graph.
  check(cudaStreamBeginCapture(impl_->stream, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
  cudaStream_t previous_stream = cuda::current_stream();
  std::shared_ptr<Pool> previous_pool = thread_pool();
  cuda::current_stream() = impl_->stream;
  thread_pool() = impl_->pool;
  auto restore = [&] {
    cuda::current_stream() = previous_stream;
    thread_pool() = previous_pool;
  };
  cudaGraph_t graph = nullptr;
  try {
    body();
  } catch (...) {
    restore();
    cudaStreamEndCapture(impl_->stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  restore();
  const cudaError_t end = cudaStreamEndCapture(impl_->stream, &graph);
  if (end != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    check(end, "capturing a CUDA graph (some work of the captured step went to the legacy stream or waited "
               "for the device; the step must only queue device work)");
  }
  const cudaError_t inst = cudaGraphInstantiate(&impl_->exec, graph, 0);
  cudaGraphDestroy(graph);
  if (inst != cudaSuccess) impl_->exec = nullptr;
  check(inst, "cudaGraphInstantiate");
}

void DeviceGraph::replay() {
  if (!impl_->exec) throw std::logic_error("DeviceGraph::replay: nothing captured");
  check(cudaGraphLaunch(impl_->exec, impl_->stream), "cudaGraphLaunch (the captured training step)");
  check(cudaStreamSynchronize(impl_->stream), "running the captured training step");
}

}  // namespace ahmsa
