// The CPU simulator of CUDA (tests/cudasim) catches what a GPU would show only as wrong numbers or
// a hang: planted bugs here must be caught, and correct kernels must give the right result in every
// thread order. Built with tests/cudasim first on the include path (see CMakeLists.txt).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <numeric>
#include <string>
#include <vector>

#include "tensor/cuda_launch.h"

namespace {

using cudasim::Order;

// Runs f once in each thread order and restores the configured one.
template <class F>
void in_every_order(F f) {
  const cudasim::Config saved = cudasim::config();
  for (Order o : {Order::Forward, Order::Reverse, Order::Random}) {
    cudasim::config().order = o;
    CAPTURE(cudasim::order_name(o));
    f(o);
  }
  cudasim::config() = saved;
}

// A quiet scope for cases that fault on purpose; clears the fault at the end.
struct ExpectFault {
  cudasim::Config saved = cudasim::config();
  ExpectFault() { cudasim::config().quiet = true; }
  ~ExpectFault() {
    cudasim::config() = saved;
    cudasim::reset();
  }
};

template <class T>
struct DeviceArray {
  T* p = nullptr;
  size_t n;
  explicit DeviceArray(size_t n_) : n(n_) { REQUIRE(cudaMalloc(&p, n * sizeof(T)) == cudaSuccess); }
  DeviceArray(const std::vector<T>& v) : DeviceArray(v.size()) {
    REQUIRE(cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  ~DeviceArray() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    REQUIRE(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return v;
  }
};

constexpr int kBlock = 256;

// Block sum with a shared-memory tree. `planted_bug` leaves out the barrier after the loads.
__global__ void block_sum(const float* x, float* out, int n, bool planted_bug) {
  __shared__ float s[kBlock];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  s[threadIdx.x] = i < n ? x[i] : 0.f;
  if (!planted_bug) __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (int(threadIdx.x) < stride) s[threadIdx.x] += s[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

// Warp sum by shuffles, then one atomic per warp.
__global__ void warp_sum(const float* x, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = i < n ? x[i] : 0.f;
  for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) atomicAdd(out, v);
}

__global__ void divergent_barrier(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();  // the other threads have returned: a hang or undefined on a GPU
    out[threadIdx.x] = 1.f;
  }
}

__global__ void two_barriers(float* out) {
  if (threadIdx.x % 2)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1.f;
}

__global__ void shuffle_outside_mask(float* out) {
  float v = float(threadIdx.x);
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_down_sync(0x0000ffffu, v, 8);  // lanes 8..15 read 16..23
}

__global__ void shuffles_and_votes(int* out) {
  const int lane = threadIdx.x % 32;
  int v = lane * 10;
  out[threadIdx.x * 5 + 0] = __shfl_sync(0xffffffffu, v, 3);          // lane 3's value
  out[threadIdx.x * 5 + 1] = __shfl_up_sync(0xffffffffu, v, 1);       // lane-1's, lane 0 keeps its own
  out[threadIdx.x * 5 + 2] = __shfl_xor_sync(0xffffffffu, v, 1);      // pairs swap
  out[threadIdx.x * 5 + 3] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));
  out[threadIdx.x * 5 + 4] = __shfl_down_sync(0xffffffffu, v, 4, 8);  // segments of 8
}

__global__ void read_unwritten_shared(float* out) {
  __shared__ float s[64];
  if (threadIdx.x < 32) s[threadIdx.x] = 1.f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];  // threads 32..63 read what nobody wrote
}

__global__ void dynamic_tile(const float* x, float* out) {
  AHMSA_DYNAMIC_SHARED(float, tile);
  tile[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  out[threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}

__global__ void scale(float* x, float a, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= a;
}

__global__ void barrier_and_warp_deadlock(float* out) {
  if (threadIdx.x < 16)
    __syncwarp();
  else
    __syncthreads();
  out[threadIdx.x] = 0.f;
}

std::vector<float> ramp(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = float(i % 17) - 8.f + 0.25f * float(i % 3);
  return v;
}
double total(const std::vector<float>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

TEST_CASE("a correct block reduction gives the sum in every thread order") {
  const int n = 1000, blocks = (n + kBlock - 1) / kBlock;
  const std::vector<float> x = ramp(n);
  in_every_order([&](Order) {
    DeviceArray<float> dx(x), dout(static_cast<size_t>(blocks));
    AHMSA_LAUNCH(blocks, kBlock, 0, nullptr, block_sum)(dx.p, dout.p, n, false);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    CHECK(total(dout.get()) == doctest::Approx(total(x)).epsilon(1e-6));
  });
}

TEST_CASE("a missing __syncthreads is caught: the planted bug gives a wrong sum in some order") {
  const int n = 1000, blocks = (n + kBlock - 1) / kBlock;
  const std::vector<float> x = ramp(n);
  int wrong = 0;
  in_every_order([&](Order) {
    DeviceArray<float> dx(x), dout(static_cast<size_t>(blocks));
    AHMSA_LAUNCH(blocks, kBlock, 0, nullptr, block_sum)(dx.p, dout.p, n, true);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    const double got = total(dout.get());
    if (!(std::fabs(got - total(x)) < 1e-3)) ++wrong;  // NaN (unwritten shared memory) counts as wrong
  });
  CHECK(wrong >= 1);
}

TEST_CASE("warp shuffles and atomics") {
  const int n = 300;
  const std::vector<float> x = ramp(n);
  in_every_order([&](Order) {
    DeviceArray<float> dx(x), dout(std::vector<float>{0.f});
    AHMSA_LAUNCH((n + 127) / 128, 128, 0, nullptr, warp_sum)(dx.p, dout.p, n);
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(dout.get()[0] == doctest::Approx(total(x)).epsilon(1e-6));
  });
  DeviceArray<int> out(64 * 5);
  AHMSA_LAUNCH(1, 64, 0, nullptr, shuffles_and_votes)(out.p);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const std::vector<int> r = out.get();
  unsigned ballot = 0;
  for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    CAPTURE(t);
    CHECK(r[size_t(t) * 5 + 0] == 30);
    CHECK(r[size_t(t) * 5 + 1] == (lane == 0 ? 0 : (lane - 1) * 10));
    CHECK(r[size_t(t) * 5 + 2] == (lane ^ 1) * 10);
    CHECK(unsigned(r[size_t(t) * 5 + 3]) == ballot);
    CHECK(r[size_t(t) * 5 + 4] == (lane % 8 + 4 < 8 ? (lane + 4) * 10 : lane * 10));
  }
}

TEST_CASE("a barrier that some threads skip is fatal in strict mode") {
  ExpectFault quiet;
  DeviceArray<float> out(64);
  AHMSA_LAUNCH(1, 64, 0, nullptr, divergent_barrier)(out.p);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudasim::last_fault().find("48 threads exited while 16 wait at __syncthreads()") != std::string::npos);
  CHECK(cudasim::last_fault().find("divergent_barrier") != std::string::npos);
  // the fault is sticky, as on a GPU
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure);
  float* p = nullptr;
  CHECK(cudaMalloc(&p, 4) == cudaErrorLaunchFailure);
}

TEST_CASE("without strict mode, exited threads count as arrived (the behaviour of current GPUs)") {
  ExpectFault quiet;
  cudasim::config().strict = false;
  DeviceArray<float> out(64);
  AHMSA_LAUNCH(1, 64, 0, nullptr, divergent_barrier)(out.p);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(out.get()[15] == 1.f);
}

TEST_CASE("threads at two different __syncthreads, a warp collective against a barrier, a shuffle outside its mask") {
  {
    ExpectFault quiet;
    DeviceArray<float> out(64);
    AHMSA_LAUNCH(1, 64, 0, nullptr, two_barriers)(out.p);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
    CHECK(cudasim::last_fault().find("different __syncthreads()") != std::string::npos);
  }
  {
    ExpectFault quiet;
    DeviceArray<float> out(64);
    AHMSA_LAUNCH(1, 64, 0, nullptr, barrier_and_warp_deadlock)(out.p);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
    CHECK(cudasim::last_fault().find("__syncwarp(mask 0xffffffff)") != std::string::npos);
    CHECK(cudasim::last_fault().find("(deadlock)") != std::string::npos);
  }
  {
    ExpectFault quiet;
    DeviceArray<float> out(32);
    AHMSA_LAUNCH(1, 32, 0, nullptr, shuffle_outside_mask)(out.p);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
    CHECK(cudasim::last_fault().find("outside its mask 0x0000ffff") != std::string::npos);
  }
}

TEST_CASE("shared memory starts as NaN in every block; dynamic shared memory works and has the GPU's limit") {
  DeviceArray<float> out(64);
  AHMSA_LAUNCH(1, 64, 0, nullptr, read_unwritten_shared)(out.p);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const std::vector<float> r = out.get();
  CHECK(r[0] == 1.f);
  CHECK(std::isnan(r[40]));

  std::vector<float> x(96);
  std::iota(x.begin(), x.end(), 0.f);
  DeviceArray<float> dx(x), dy(96);
  AHMSA_LAUNCH(1, 96, 96 * sizeof(float), nullptr, dynamic_tile)(dx.p, dy.p);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  CHECK(dy.get()[0] == 95.f);
  CHECK(dy.get()[95] == 0.f);

  ExpectFault quiet;
  AHMSA_LAUNCH(1, 96, 48 * 1024 + 4, nullptr, dynamic_tile)(dx.p, dy.p);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(cudaGetLastError() == cudaSuccess);  // a launch error is reported once, not sticky
  REQUIRE(cudaFuncSetAttribute(dynamic_tile, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) == cudaSuccess);
  AHMSA_LAUNCH(1, 96, 48 * 1024 + 4, nullptr, dynamic_tile)(dx.p, dy.p);
  CHECK(cudaGetLastError() == cudaSuccess);
}

TEST_CASE("launch configurations the GPU refuses are refused") {
  ExpectFault quiet;
  DeviceArray<float> x(4096);
  AHMSA_LAUNCH(1, 1025, 0, nullptr, scale)(x.p, 2.f, 4096);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  AHMSA_LAUNCH(1, dim3(32, 32, 2), 0, nullptr, scale)(x.p, 2.f, 4096);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  AHMSA_LAUNCH(dim3(1, 70000), 32, 0, nullptr, scale)(x.p, 2.f, 4096);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  AHMSA_LAUNCH(0, 32, 0, nullptr, scale)(x.p, 2.f, 4096);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  AHMSA_LAUNCH(4, 1024, 0, nullptr, scale)(x.p, 2.f, 4096);
  CHECK(cudaGetLastError() == cudaSuccess);
}

TEST_CASE("host pointers given to kernels and copies in the wrong direction are errors") {
  std::vector<float> host(16, 1.f);
  {
    ExpectFault quiet;
    AHMSA_LAUNCH(1, 16, 0, nullptr, scale)(host.data(), 2.f, 16);
    CHECK(cudaGetLastError() == cudaErrorIllegalAddress);
    CHECK(cudasim::last_fault().find("argument 0") != std::string::npos);
    CHECK(cudasim::last_fault().find("not device memory") != std::string::npos);
    CHECK(host[0] == 1.f);  // the kernel did not run
  }
  {
    ExpectFault quiet;
    DeviceArray<float> d(16);
    CHECK(cudaMemcpy(host.data(), d.p, 64, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(d.p, host.data(), 64, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(d.p, host.data(), 68, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);  // past the end
    CHECK(cudaMemcpy(d.p, host.data(), 64, cudaMemcpyHostToDevice) == cudaSuccess);
  }
}

TEST_CASE("fresh device memory reads as NaN, not zero") {
  DeviceArray<float> d(8);
  for (float v : d.get()) CHECK(std::isnan(v));
}

TEST_CASE("host code that dereferences a device pointer is stopped with a message (protect mode)") {
  if (!cudasim::config().protect) {
    MESSAGE("protect mode is off in this build (a sanitizer tracks device memory instead)");
    return;
  }
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    signal(SIGABRT, SIG_DFL);  // the simulator's abort, not the test framework's crash report

    float* d = nullptr;
    cudaMalloc(&d, 64);
    volatile float v = d[3];  // a host read of device memory: faults on a GPU machine too
    (void)v;
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  for (ssize_t k; (k = read(fds[0], buf, sizeof buf)) > 0;) err.append(buf, size_t(k));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT));
  CHECK(err.find("host code touched device memory") != std::string::npos);
}

TEST_CASE("a captured stream replays as a graph") {
  std::vector<float> x(100, 1.f);
  DeviceArray<float> d(x);
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
  REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  AHMSA_LAUNCH(1, 128, 0, s, scale)(d.p, 2.f, 100);
  AHMSA_LAUNCH(1, 128, 0, s, scale)(d.p, 3.f, 100);
  cudaGraph_t g = nullptr;
  REQUIRE(cudaStreamEndCapture(s, &g) == cudaSuccess);
  CHECK(d.get()[0] == 1.f);  // capture only records: nothing ran yet
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, g, 0) == cudaSuccess);
  REQUIRE(cudaGraphLaunch(exec, s) == cudaSuccess);
  REQUIRE(cudaGraphLaunch(exec, s) == cudaSuccess);
  CHECK(d.get()[99] == 36.f);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(g);
  cudaStreamDestroy(s);
}

TEST_CASE("work left on the legacy stream during a capture invalidates it, as on a GPU") {
  cudasim::reset();
  std::vector<float> x(100, 1.f);
  DeviceArray<float> d(x);
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);  // blocking: synchronises with the legacy stream
  REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  cudaStreamCaptureStatus status{};
  REQUIRE(cudaStreamIsCapturing(s, &status) == cudaSuccess);
  CHECK(status == cudaStreamCaptureStatusActive);
  AHMSA_LAUNCH(1, 128, 0, s, scale)(d.p, 2.f, 100);
  AHMSA_LAUNCH(1, 128, 0, nullptr, scale)(d.p, 3.f, 100);  // the mistake: the legacy stream
  CHECK(cudaGetLastError() == cudaErrorStreamCaptureImplicit);
  REQUIRE(cudaStreamIsCapturing(s, &status) == cudaSuccess);
  CHECK(status == cudaStreamCaptureStatusInvalidated);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 64) == cudaErrorStreamCaptureUnsupported);  // unsafe in a thread-local capture
  cudaGraph_t g = nullptr;
  CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated);
  CHECK(g == nullptr);
  CHECK(cudaGetLastError() == cudaErrorStreamCaptureInvalidated);  // reported once
  CHECK(d.get()[0] == 1.f);  // neither launch ran
  // A relaxed capture may allocate; a non-blocking stream's capture ignores the legacy stream.
  cudaStream_t nb = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaStreamBeginCapture(nb, cudaStreamCaptureModeRelaxed) == cudaSuccess);
  REQUIRE(cudaMalloc(&p, 64) == cudaSuccess);
  AHMSA_LAUNCH(1, 128, 0, nullptr, scale)(d.p, 3.f, 100);  // runs now, outside the capture
  CHECK(cudaGetLastError() == cudaSuccess);
  REQUIRE(cudaStreamEndCapture(nb, &g) == cudaSuccess);
  CHECK(d.get()[0] == 3.f);
  cudaGraphDestroy(g);
  cudaFree(p);
  cudaStreamDestroy(nb);
  cudaStreamDestroy(s);
}

// ---- the cuBLAS double ------------------------------------------------------------------------
namespace {
// Row-major reference: Y[M,N] = A[M,K] B[K,N]
std::vector<float> matmul_rows(const std::vector<float>& A, const std::vector<float>& B, int M, int K, int N) {
  std::vector<float> Y(size_t(M) * N, 0.f);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0;
      for (int p = 0; p < K; ++p) s += double(A[size_t(i) * K + p]) * B[size_t(p) * N + j];
      Y[size_t(i) * N + j] = float(s);
    }
  return Y;
}
}  // namespace

TEST_CASE("cuBLAS double: a row-major product done right, and the classic mistakes caught") {
  const int M = 5, K = 7, N = 3;
  std::vector<float> A = ramp(M * K), B = ramp(K * N + 5);
  B.resize(size_t(K) * N);
  const std::vector<float> want = matmul_rows(A, B, M, K, N);
  DeviceArray<float> dA(A), dB(B), dY(static_cast<size_t>(M) * N);
  cublasHandle_t h = nullptr;
  REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
  const float one = 1.f, zero = 0.f;
  // Row-major Y = A B is column-major Yᵀ = Bᵀ Aᵀ: m = N, n = M, k = K, B first with ld N, A with ld K.
  REQUIRE(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, dB.p, N, dA.p, K, &zero, dY.p, N) ==
          CUBLAS_STATUS_SUCCESS);
  const std::vector<float> got = dY.get();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));

  ExpectFault quiet;
  // The row-major operands passed as if column-major with their row lengths: lda = K < m = M.
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &one, dA.p, K, dB.p, N, &zero, dY.p, M) ==
        CUBLAS_STATUS_INVALID_VALUE);
  // Operands swapped with consistent leading dimensions: reads past the end of B's allocation.
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &one, dB.p, M, dA.p, K, &zero, dY.p, M) ==
        CUBLAS_STATUS_EXECUTION_FAILED);
  CHECK(cudasim::last_fault().find("operand A") != std::string::npos);
  cudasim::reset();
  // A transposed flag on the wrong operand with the sizes of the right call: wrong numbers, or refused.
  const cublasStatus_t s =
      cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, dB.p, N, dA.p, K, &zero, dY.p, N);
  if (s == CUBLAS_STATUS_SUCCESS) {
    const std::vector<float> bad = dY.get();
    bool differs = false;
    for (size_t i = 0; i < bad.size(); ++i) differs = differs || std::fabs(bad[i] - want[i]) > 1e-3f;
    CHECK(differs);
  } else {
    CHECK(s == CUBLAS_STATUS_INVALID_VALUE);
  }
  std::vector<float> host(16);
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, host.data(), 2, dA.p, 2, &zero, dY.p, 2) ==
        CUBLAS_STATUS_EXECUTION_FAILED);
  cudasim::reset();
  CHECK(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA.p, 2, dA.p, 2, &zero, dY.p, 2) ==
        CUBLAS_STATUS_NOT_INITIALIZED);
  cublasDestroy(h);
}

TEST_CASE("cuBLAS double: strided batches, transposes and beta") {
  const int M = 4, K = 3, N = 5, batch = 3;
  std::vector<float> A = ramp(batch * M * K), B = ramp(batch * K * N + 1), C0 = ramp(batch * M * N + 2);
  B.resize(size_t(batch) * K * N);
  C0.resize(size_t(batch) * M * N);
  DeviceArray<float> dA(A), dB(B), dC(C0);
  cublasHandle_t h = nullptr;
  REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
  const float alpha = 0.5f, beta = 2.f;
  // Row-major Cb = alpha Ab Bbᵀᵀ... here: Cb[M,N] = alpha Ab[M,K] Bb[K,N] + beta Cb, via column-major Cᵀ = Bᵀ Aᵀ.
  REQUIRE(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &alpha, dB.p, N, K * N, dA.p, K, M * K,
                                    &beta, dC.p, N, M * N, batch) == CUBLAS_STATUS_SUCCESS);
  const std::vector<float> got = dC.get();
  for (int b = 0; b < batch; ++b) {
    std::vector<float> Ab(A.begin() + b * M * K, A.begin() + (b + 1) * M * K);
    std::vector<float> Bb(B.begin() + b * K * N, B.begin() + (b + 1) * K * N);
    const std::vector<float> p = matmul_rows(Ab, Bb, M, K, N);
    for (int i = 0; i < M * N; ++i)
      CHECK(got[size_t(b * M * N + i)] == doctest::Approx(alpha * p[size_t(i)] + beta * C0[size_t(b * M * N + i)]).epsilon(1e-5));
  }
  // Aᵀ stored: row-major At[K,M]; Y = Atᵀ B  ->  column-major Yᵀ = Bᵀ At with op(At) = T... as cuBLAS sees it
  // At row-major [K,M] is column-major M x K with ld M; we need op = T on it to get Aᵀᵀ... checked by values:
  std::vector<float> At(size_t(K) * M);
  for (int i = 0; i < M; ++i)
    for (int p = 0; p < K; ++p) At[size_t(p) * M + i] = A[size_t(i) * K + p];
  DeviceArray<float> dAt(At), dY(static_cast<size_t>(M) * N);
  const float one = 1.f, zero = 0.f;
  REQUIRE(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, N, M, K, &one, dB.p, N, dAt.p, M, &zero, dY.p, N) ==
          CUBLAS_STATUS_SUCCESS);
  std::vector<float> A0(A.begin(), A.begin() + M * K), B0(B.begin(), B.begin() + K * N);
  const std::vector<float> want = matmul_rows(A0, B0, M, K, N);
  const std::vector<float> y = dY.get();
  for (int i = 0; i < M * N; ++i) CHECK(y[size_t(i)] == doctest::Approx(want[size_t(i)]).epsilon(1e-6));
  cublasDestroy(h);
}
