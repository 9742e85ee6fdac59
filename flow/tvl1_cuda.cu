// Batched TV-L1 on an NVIDIA GPU: the schedule of flow/tvl1_schedule.h with an executor that
// launches one kernel per step over the whole batch (one thread per pixel, or per line for the
// B-spline prefilter). The step code is shared with the CPU emulation that tests it
// (tests/test_flow_batch.cpp); what is specific here is only memory, launches and reductions.
//
// Sums for the stopping test are deterministic: a fixed tree per block of 256 pixels, then the block
// partials of each pair added in order by one thread, so the same batch gives the same flow run to run.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "flow/flow.h"
#include "flow/internal.h"
#include "flow/tvl1_schedule.h"
#include "tensor/cuda_launch.h"  // the launch spelling shared with the simulator (a header only)

namespace ahmsa::flow {

namespace {

template <class F>
__global__ void pixels_kernel(F f, int w, int h) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) f(int(blockIdx.z), x, y);
}

template <class F>
__global__ void lines_kernel(F f, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) f(int(blockIdx.y), i);
}

template <class F>
__global__ void pairs_kernel(F f, int B) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b < B) f(b);
}

constexpr int kSumBlock = 256;

// partial[b * gridDim.x + block] = sum of f over the block's pixels of pair b (fixed tree order).
template <class F>
__global__ void pixel_partials_kernel(F f, int w, int h, float* partial) {
  __shared__ float s[kSumBlock];
  const int b = blockIdx.y;
  const int i = blockIdx.x * kSumBlock + threadIdx.x;
  s[threadIdx.x] = i < w * h ? f(b, i % w, i / w) : 0.f;
  __syncthreads();
  for (int stride = kSumBlock / 2; stride > 0; stride /= 2) {
    if (int(threadIdx.x) < stride) s[threadIdx.x] += s[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[size_t(b) * gridDim.x + blockIdx.x] = s[0];
}

__global__ void finish_sums_kernel(const float* partial, int blocks, double* out, int B) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= B) return;
  double total = 0;
  for (int k = 0; k < blocks; ++k) total += partial[size_t(b) * blocks + k];
  out[b] = total;
}

__global__ void probe_kernel(int* flag) { *flag = 1; }

[[noreturn]] void fail(cudaError_t e, const std::string& what) {
  throw FlowError("tvl1_batch_cuda: " + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}
void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) fail(e, what);
}
std::string shape(int B, int w, int h) {
  return std::to_string(B) + " x " + std::to_string(h) + " x " + std::to_string(w);
}

// The executor of flow/tvl1_schedule.h on the current CUDA device.
struct CudaExecutor {
  std::vector<void*> owned;
  float* partial = nullptr;  // block partials of pixel_sums, sized on first use for the finest level
  size_t partial_size = 0;
  int polls = 0;
  std::vector<int> host_flags;

  ~CudaExecutor() {
    for (void* p : owned) cudaFree(p);
  }
  template <class T>
  T* alloc(size_t n, const char* what) {
    void* p = nullptr;
    const size_t bytes = sizeof(T) * std::max<size_t>(n, 1);
    check(cudaMalloc(&p, bytes), std::string("cudaMalloc of ") + std::to_string(bytes) + " bytes for " + what);
    owned.push_back(p);
    check(cudaMemset(p, 0, bytes), std::string("cudaMemset of ") + what);
    return static_cast<T*>(p);
  }
  void upload(float* dst, const float* src, size_t n) {
    check(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice), "upload of the frames");
  }
  void download(float* dst, const float* src, size_t n) {
    check(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost), "download of the flow");
  }
  void zero(float* d, size_t n) { check(cudaMemsetAsync(d, 0, n * sizeof(float)), "zeroing the dual variables"); }
  void set_flags(int* d, int n, int v) {
    host_flags.assign(n, v);
    check(cudaMemcpy(d, host_flags.data(), n * sizeof(int), cudaMemcpyHostToDevice), "setting the active flags");
  }
  template <class F>
  void pixels(int B, int w, int h, const F& f, const char* what) {
    const dim3 block(32, 8), grid((w + 31) / 32, (h + 7) / 8, B);
    AHMSA_LAUNCH(grid, block, 0, nullptr, pixels_kernel<F>)(f, w, h);
    check(cudaGetLastError(), std::string(what) + " on " + shape(B, w, h));
  }
  template <class F>
  void lines(int B, int n, const F& f, const char* what) {
    AHMSA_LAUNCH(dim3((n + 127) / 128, B), 128, 0, nullptr, lines_kernel<F>)(f, n);
    check(cudaGetLastError(), std::string(what) + " over " + std::to_string(B) + " x " + std::to_string(n) + " lines");
  }
  template <class F>
  void pixel_sums(int B, int w, int h, const F& f, double* out, const char* what) {
    const int blocks = (w * h + kSumBlock - 1) / kSumBlock;
    if (size_t(B) * blocks > partial_size) {
      partial_size = size_t(B) * blocks;
      partial = alloc<float>(partial_size, "block partial sums");
    }
    AHMSA_LAUNCH(dim3(blocks, B), kSumBlock, 0, nullptr, pixel_partials_kernel<F>)(f, w, h, partial);
    check(cudaGetLastError(), std::string(what) + " on " + shape(B, w, h));
    AHMSA_LAUNCH((B + 127) / 128, 128, 0, nullptr, finish_sums_kernel)(partial, blocks, out, B);
    check(cudaGetLastError(), std::string(what) + " (sum per pair)");
  }
  template <class F>
  void pairs(int B, const F& f, const char* what) {
    AHMSA_LAUNCH((B + 127) / 128, 128, 0, nullptr, pairs_kernel<F>)(f, B);
    check(cudaGetLastError(), std::string(what) + " over " + std::to_string(B) + " pairs");
  }
  // Reading the flags waits for the GPU, so it is done on every 8th call only: a pair that has
  // stopped costs nothing meanwhile (its threads return at once), the batch just launches a few more.
  bool any_set(const int* flags, int B) {
    if (++polls % 8 != 0) return true;
    host_flags.resize(B);
    check(cudaMemcpy(host_flags.data(), flags, B * sizeof(int), cudaMemcpyDeviceToHost),
          "reading the active flags (an earlier kernel may have failed)");
    for (int v : host_flags)
      if (v) return true;
    return false;
  }
};

}  // namespace

namespace {
// Whether this process can run the kernels, found once (a device query, then a one-thread probe
// kernel, which also catches a GPU this build has no code for).
struct CudaProbe {
  bool ok = false;
  std::string why;
  CudaProbe() {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      why = e != cudaSuccess ? std::string("no usable GPU: ") + cudaGetErrorString(e) : "no CUDA device";
      cudaGetLastError();  // clear the sticky error state for later callers
      return;
    }
    int* flag = nullptr;
    e = cudaMalloc(&flag, sizeof(int));
    if (e == cudaSuccess) {
      AHMSA_LAUNCH(1, 1, 0, nullptr, probe_kernel)(flag);
      e = cudaGetLastError();
      if (e == cudaSuccess) e = cudaDeviceSynchronize();
      cudaFree(flag);
    }
    if (e != cudaSuccess) {
      why = std::string("the GPU cannot run this build's kernels (built for sm_80 and sm_90): ") +
            cudaGetErrorString(e);
      cudaGetLastError();
      return;
    }
    ok = true;
  }
};
}  // namespace

bool tvl1_cuda_available(std::string* why) {
  static const CudaProbe probe;
  if (!probe.ok && why) *why = probe.why;
  return probe.ok;
}

std::vector<FlowField> tvl1_batch_cuda(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1,
                                       const TVL1Params& p) {
  std::vector<detail::Plane> P0, P1;
  detail::batch_frames(I0, I1, p, P0, P1, "tvl1_batch_cuda");
  if (std::string why; !tvl1_cuda_available(&why)) throw FlowError("tvl1_batch_cuda: " + why);
  CudaExecutor ex;
  std::vector<FlowField> out = batch::run_tvl1(ex, P0, P1, p);
  check(cudaDeviceSynchronize(), "finishing the batch");
  return out;
}

}  // namespace ahmsa::flow
