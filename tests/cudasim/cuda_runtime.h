// cudasim's stand-in for the CUDA runtime API: the calls the project makes, with the GPU's checks.
// Device memory is host memory (see cudasim.h); streams and events are synchronous; a stream being
// captured records its launches and async copies into a graph that cudaGraphLaunch replays.
#pragma once
#include "cudasim.h"

namespace cudasim::detail {
// Every call first reports a sticky fault, as the runtime does after a kernel fault.
inline bool faulted(cudaError_t& e) {
  if (sticky_error() != cudaSuccess) {
    e = set_error(sticky_error());
    return true;
  }
  return false;
}
// While a stream is captured, synchronous copies are an error (they would wait for the capture).
inline bool capturing_anywhere() { return !captures().empty(); }
}  // namespace cudasim::detail

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
  }
  return "cudaErrorUnknown";
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return cudaGetErrorName(e);
  }
}

inline cudaError_t cudaGetLastError() {
  auto& e = cudasim::detail::errors();
  cudaError_t r = e.last;
  e.last = e.sticky;  // a sticky fault is reported again; a launch error only once
  return r;
}
inline cudaError_t cudaPeekAtLastError() { return cudasim::detail::errors().last; }

inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) { return cudasim::detail::set_error(d == 0 ? cudaSuccess : cudaErrorInvalidDevice); }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d != 0) return cudasim::detail::set_error(cudaErrorInvalidDevice);
  *p = {};
  std::snprintf(p->name, sizeof p->name, "cudasim (CPU simulator)");
  p->totalGlobalMem = size_t(64) << 30;
  p->sharedMemPerBlock = 48 << 10;
  p->maxThreadsPerBlock = 1024;
  p->multiProcessorCount = 1;
  p->major = 9;
  p->minor = 0;
  p->warpSize = 32;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
  cudaError_t e = cudaSuccess;
  cudasim::detail::faulted(e);
  return e;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *total = size_t(64) << 30;
  *free_bytes = *total - cudasim::device_bytes_in_use();
  return cudaSuccess;
}

// ---- memory ----
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(cudasim::detail::big_lock());
  cudaError_t e;
  if (cudasim::detail::faulted(e)) return e;
  if (cudasim::detail::strict_capture_running()) return cudasim::detail::set_error(cudaErrorStreamCaptureUnsupported);
  *p = cudasim::detail::device_malloc(bytes);
  return *p ? cudaSuccess : cudasim::detail::set_error(cudaErrorMemoryAllocation);
}
template <class T>
inline cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  std::lock_guard<std::recursive_mutex> lock(cudasim::detail::big_lock());
  if (!p) return cudaSuccess;
  if (!cudasim::detail::device_free(p)) return cudasim::detail::set_error(cudaErrorInvalidDevicePointer);
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = std::malloc(std::max<size_t>(bytes, 1));
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}

namespace cudasim::detail {
// Checks that the pointers of a copy live where `kind` says, with the whole range inside a block.
inline cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* what) {
  const bool dst_dev = is_device_pointer(dst, bytes), src_dev = is_device_pointer(src, bytes);
  const bool want_dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault) return cudaSuccess;
  std::string why;
  if (want_dst_dev && !dst_dev) why = "the destination is not (wholly) device memory";
  else if (!want_dst_dev && is_device_pointer(dst)) why = "the destination is device memory";
  else if (want_src_dev && !src_dev) why = "the source is not (wholly) device memory";
  else if (!want_src_dev && is_device_pointer(src)) why = "the source is device memory";
  if (why.empty()) return cudaSuccess;
  if (!config().quiet)
    std::fprintf(stderr, "cudasim: %s of %zu bytes refused: %s\n", what, bytes, why.c_str());
  return cudaErrorInvalidValue;
}
}  // namespace cudasim::detail

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t stream = nullptr) {
  std::lock_guard<std::recursive_mutex> lock(cudasim::detail::big_lock());
  cudaError_t e;
  if (cudasim::detail::faulted(e)) return e;
  if (bytes == 0) return cudaSuccess;
  if ((e = cudasim::detail::check_copy(dst, src, bytes, kind, "cudaMemcpy")) != cudaSuccess)
    return cudasim::detail::set_error(e);
  auto work = [dst, src, bytes] {
    cudasim::detail::DeviceAccess open;
    std::memmove(dst, src, bytes);
  };
  return cudasim::detail::submit(stream, work);
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudasim::detail::capturing_anywhere()) return cudasim::detail::set_error(cudaErrorStreamCaptureUnsupported);
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream = nullptr) {
  std::lock_guard<std::recursive_mutex> lock(cudasim::detail::big_lock());
  cudaError_t e;
  if (cudasim::detail::faulted(e)) return e;
  if (bytes == 0) return cudaSuccess;
  if (!cudasim::is_device_pointer(p, bytes)) {
    if (!cudasim::config().quiet)
      std::fprintf(stderr, "cudasim: cudaMemset of %zu bytes refused: not (wholly) device memory\n", bytes);
    return cudasim::detail::set_error(cudaErrorInvalidValue);
  }
  auto work = [p, value, bytes] {
    cudasim::detail::DeviceAccess open;
    std::memset(p, value, bytes);
  };
  return cudasim::detail::submit(stream, work);
}
inline cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (cudasim::detail::capturing_anywhere()) return cudasim::detail::set_error(cudaErrorStreamCaptureUnsupported);
  return cudaMemsetAsync(p, value, bytes, nullptr);
}

// ---- streams, events, graphs ----
inline cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new cudasim::Stream;
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  *s = new cudasim::Stream;
  (*s)->blocking = !(flags & cudaStreamNonBlocking);
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaDeviceSynchronize(); }
inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new cudasim::Event;
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  e->recorded = true;
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaDeviceSynchronize(); }
// Simulated time means nothing: elapsed time is reported as 0 ms.
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!a->recorded || !b->recorded) return cudasim::detail::set_error(cudaErrorInvalidResourceHandle);
  *ms = 0.f;
  return cudaSuccess;
}
inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  if (!s) return cudasim::detail::set_error(cudaErrorStreamCaptureUnsupported);  // not the legacy stream
  auto& st = cudasim::detail::stream_of(s);
  if (st.capturing) return cudasim::detail::set_error(cudaErrorStreamCaptureUnsupported);
  st.capturing = true;
  st.invalidated = false;
  st.mode = mode;
  st.captured.clear();
  cudasim::detail::captures().push_back(&st);
  return cudaSuccess;
}
// Ends the capture; an invalidated capture gives no graph and cudaErrorStreamCaptureInvalidated.
inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  auto& st = cudasim::detail::stream_of(s);
  if (!st.capturing) return cudasim::detail::set_error(cudaErrorStreamCaptureInvalidated);
  st.capturing = false;
  auto& list = cudasim::detail::captures();
  list.erase(std::find(list.begin(), list.end(), &st));
  *g = nullptr;
  std::vector<std::function<void()>> work = std::move(st.captured);
  st.captured.clear();
  if (st.invalidated) return cudasim::detail::set_error(cudaErrorStreamCaptureInvalidated);
  *g = new cudasim::Graph{std::move(work)};
  return cudaSuccess;
}
inline cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  const auto& st = cudasim::detail::stream_of(s);
  *status = !st.capturing ? cudaStreamCaptureStatusNone
                          : st.invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t g, unsigned long long = 0) {
  *exec = new cudasim::Graph{g->work};
  return cudaSuccess;
}
namespace cudasim {
namespace detail {
inline uint64_t& graph_launch_count() {
  static uint64_t n = 0;
  return n;
}
}  // namespace detail
// cudaGraphLaunch calls so far (a test can tell a replayed step from an eager one).
inline uint64_t graph_launches() { return detail::graph_launch_count(); }
}  // namespace cudasim
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
  cudaError_t e;
  if (cudasim::detail::faulted(e)) return e;
  ++cudasim::detail::graph_launch_count();
  for (auto& w : exec->work) w();
  return cudasim::sticky_error();
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t g) {
  delete g;
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}

template <class... P>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > 227 * 1024)
    return cudasim::detail::set_error(cudaErrorInvalidValue);
  cudasim::detail::func_attributes()[reinterpret_cast<const void*>(kernel)].max_dynamic_shared = size_t(value);
  return cudaSuccess;
}
