// The CUDA kernels of the matrix-product families (tensor/cuda_gemm.cu, cuda_conv.cu,
// cuda_attention.cu, cuda_norm.cu) against their CPU twins (tensor/kernels.h), on small odd shapes:
// bmm in every transpose combination and with beta, conv2d with stride 1/2, pad 0/1, k 1/3/5 and
// every gradient optional, multi-head attention, BatchNorm train/eval and norm_mid with inner = 1
// and inner > 1. In CI this runs under the CUDA simulator (tests/cudasim); on a GPU it runs for real.
//
// Tolerance: relative error ‖cuda − cpu‖ / ‖cpu‖ ≤ 1e-4 per output (fp32 on both sides; the two
// differ only in summation order). Outputs the kernel must write are first filled with garbage on
// the device, so an element left unwritten, or added to instead of written, fails.
//
// Built twice (CMakeLists.txt): for the simulator, and with nvcc for a real GPU; without a usable GPU
// the nvcc build checks only that a kernel call fails with a clear error, and says so.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tensor/cuda_check.h"
#include "tensor/device.h"
#include "tensor/kernels.h"
#include "tensor/kernels_cuda.h"
#include "tensor/rng.h"
#include "tests/op_registry.h"

using namespace ahmsa;
using ahmsa::testing::rel_error;

namespace {

constexpr double kTol = 1e-4;
constexpr float kGarbage = 12345.f;

std::vector<float> random_vec(size_t n, Generator& g, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v(n);
  for (auto& x : v) x = g.uniform(lo, hi);
  return v;
}

// A device copy of a host vector (or n garbage floats), freed at scope exit.
class DeviceVec {
 public:
  explicit DeviceVec(const std::vector<float>& h) : n_(h.size()) {
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n_, 1) * sizeof(float)) == cudaSuccess);
    REQUIRE(cudaMemcpy(p_, h.data(), n_ * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  static DeviceVec garbage(size_t n) { return DeviceVec(std::vector<float>(n, kGarbage)); }
  DeviceVec(DeviceVec&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; }
  DeviceVec(const DeviceVec&) = delete;
  ~DeviceVec() {
    if (p_) cudaFree(p_);
  }
  float* get() const { return p_; }
  std::vector<float> host() const {
    std::vector<float> h(n_);
    REQUIRE(cudaMemcpy(h.data(), p_, n_ * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
    return h;
  }

 private:
  float* p_ = nullptr;
  size_t n_;
};

float* ptr(const DeviceVec* d) { return d ? d->get() : nullptr; }
const float* ptr(const std::vector<float>* h) { return h ? h->data() : nullptr; }

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  const double e = rel_error(got, want);
  INFO(what << ": relative error " << e);
  CHECK(e <= kTol);
}

// Whether a GPU (or the simulator) is there to run the cases; says once why not.
bool have_device() {
  static const bool ok = [] {
    const bool yes = cuda_available();
    if (!yes) std::printf("test_cuda_kernels_gemm: no usable CUDA device: the kernel cases are skipped\n");
    return yes;
  }();
  return ok;
}

}  // namespace

TEST_CASE("without a usable GPU a kernel call is a clear error naming the op and shapes") {
  if (have_device()) return;  // the cases below run instead
  // (a kernel that needs no scratch memory and no cuBLAS handle, so the launch itself is what fails)
  const float* none = nullptr;
  CHECK_THROWS_WITH_AS(cuda::batch_norm_eval_forward(none, none, none, none, none, nullptr, 2, 3, 4, 1.f),
                       doctest::Contains("batch_norm_eval_forward on x [2, 3, HW 4]: cudaError"), cuda::CudaError);
}

// ---- bmm -------------------------------------------------------------------------------------------

TEST_CASE("cuda::bmm matches cpu::bmm for every transpose, beta and batch") {
  if (!have_device()) return;
  Generator g(11);
  for (int64_t batch : {1, 3})
    for (bool ta : {false, true})
      for (bool tc : {false, true})
        for (float beta : {0.f, 0.5f}) {
          const int64_t M = 5, K = 7, N = 3;
          auto a = random_vec(size_t(batch * M * K), g), c = random_vec(size_t(batch * K * N), g);
          auto y0 = random_vec(size_t(batch * M * N), g);
          std::vector<float> want = y0;
          cpu::bmm(a.data(), c.data(), want.data(), batch, M, K, N, ta, tc, beta);
          DeviceVec da(a), dc(c), dy(y0);
          cuda::bmm(da.get(), dc.get(), dy.get(), batch, M, K, N, ta, tc, beta);
          expect_close(dy.host(), want,
                       "bmm batch " + std::to_string(batch) + " ta " + std::to_string(ta) + " tc " +
                           std::to_string(tc) + " beta " + std::to_string(beta));
        }
}

TEST_CASE("cuda::bmm with an empty product writes beta·y and zero sizes launch nothing") {
  if (!have_device()) return;
  Generator g(12);
  auto y0 = random_vec(6, g);
  DeviceVec a = DeviceVec::garbage(1), c = DeviceVec::garbage(1), dy(y0);
  cuda::bmm(a.get(), c.get(), dy.get(), 2, 1, 0, 3, false, false, 0.f);  // K = 0: y = 0
  for (float v : dy.host()) CHECK(v == 0.f);
  cuda::bmm(a.get(), c.get(), dy.get(), 0, 5, 7, 3);  // no batch: y untouched
  cuda::bmm(a.get(), c.get(), dy.get(), 3, 0, 7, 3);
  for (float v : dy.host()) CHECK(v == 0.f);
}

TEST_CASE("cuda::bmm beyond cuBLAS's 32-bit sizes is a clear error naming the op and shapes") {
  if (!have_device()) return;
  DeviceVec a = DeviceVec::garbage(1), c = DeviceVec::garbage(1), y = DeviceVec::garbage(1);
  const int64_t M = int64_t(1) << 31;  // rejected before any memory is touched
  CHECK_THROWS_WITH_AS(cuda::bmm(a.get(), c.get(), y.get(), 1, M, 1, 1),
                       doctest::Contains("bmm on a [1, 2147483648, 1], c [1, 1, 1]"), cuda::CudaError);
  CHECK_THROWS_WITH_AS(cuda::bmm(a.get(), c.get(), y.get(), 1, M, 1, 1), doctest::Contains("32-bit limits"),
                       cuda::CudaError);
}

// ---- conv2d ----------------------------------------------------------------------------------------

namespace {

struct ConvData {
  cpu::ConvShape s;
  std::vector<float> x, w, b, gy;
};

ConvData conv_data(const cpu::ConvShape& s, Generator& g) {
  ConvData d{s, {}, {}, {}, {}};
  d.x = random_vec(size_t(s.N * s.C * s.H * s.W), g);
  d.w = random_vec(size_t(s.O * s.C * s.k * s.k), g);
  d.b = random_vec(size_t(s.O), g);
  d.gy = random_vec(size_t(s.N * s.O * s.OH() * s.OW()), g);
  return d;
}

std::string conv_name(const cpu::ConvShape& s) {
  return "conv k " + std::to_string(s.k) + " stride " + std::to_string(s.stride) + " pad " + std::to_string(s.pad);
}

// Backward with the chosen gradients (the others null) against the CPU.
void check_conv_backward(const ConvData& d, bool want_gx, bool want_gw, bool want_gb) {
  const auto& s = d.s;
  std::vector<float> gx(d.x.size()), gw(d.w.size()), gb(d.b.size());
  cpu::conv2d_backward(s, d.x.data(), d.w.data(), d.gy.data(), want_gx ? gx.data() : nullptr,
                       want_gw ? gw.data() : nullptr, want_gb ? gb.data() : nullptr);
  DeviceVec dx(d.x), dw(d.w), dgy(d.gy);
  DeviceVec dgx = DeviceVec::garbage(gx.size()), dgw = DeviceVec::garbage(gw.size()),
            dgb = DeviceVec::garbage(gb.size());
  cuda::conv2d_backward(s, dx.get(), dw.get(), dgy.get(), want_gx ? dgx.get() : nullptr,
                        want_gw ? dgw.get() : nullptr, want_gb ? dgb.get() : nullptr);
  const std::string name = conv_name(s);
  if (want_gx) expect_close(dgx.host(), gx, name + " gx");
  if (want_gw) expect_close(dgw.host(), gw, name + " gw");
  if (want_gb) expect_close(dgb.host(), gb, name + " gb");
  // A null gradient is not written: its garbage stays.
  if (!want_gx)
    for (float v : dgx.host()) REQUIRE(v == kGarbage);
  if (!want_gw)
    for (float v : dgw.host()) REQUIRE(v == kGarbage);
  if (!want_gb)
    for (float v : dgb.host()) REQUIRE(v == kGarbage);
}

}  // namespace

TEST_CASE("cuda::conv2d forward and backward match the CPU for k 1/3/5, stride 1/2, pad 0/1") {
  if (!have_device()) return;
  Generator g(21);
  for (int64_t k : {1, 3, 5})
    for (int64_t stride : {1, 2})
      for (int64_t pad : {0, 1}) {
        const cpu::ConvShape s{2, 3, 7, 6, 4, k, stride, pad};
        const ConvData d = conv_data(s, g);
        for (bool bias : {true, false}) {
          std::vector<float> y(d.gy.size());
          cpu::conv2d_forward(s, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data());
          DeviceVec dx(d.x), dw(d.w), db(d.b), dy = DeviceVec::garbage(y.size());
          cuda::conv2d_forward(s, dx.get(), dw.get(), bias ? db.get() : nullptr, dy.get());
          expect_close(dy.host(), y, conv_name(s) + (bias ? " forward" : " forward without bias"));
        }
        check_conv_backward(d, true, true, true);
      }
}

TEST_CASE("cuda::conv2d_backward computes only the gradients asked for") {
  if (!have_device()) return;
  Generator g(22);
  for (const cpu::ConvShape& s : {cpu::ConvShape{3, 2, 5, 7, 3, 3, 2, 1}, cpu::ConvShape{2, 4, 4, 5, 3, 1, 1, 0}})
    for (int mask = 0; mask < 8; ++mask) check_conv_backward(conv_data(s, g), mask & 1, mask & 2, mask & 4);
}

TEST_CASE("cuda::conv2d on the 2 → 1 spatial-attention shape (k 7, pad 3)") {
  if (!have_device()) return;
  Generator g(23);
  const cpu::ConvShape s{2, 2, 9, 8, 1, 7, 1, 3};
  const ConvData d = conv_data(s, g);
  std::vector<float> y(d.gy.size());
  cpu::conv2d_forward(s, d.x.data(), d.w.data(), d.b.data(), y.data());
  DeviceVec dx(d.x), dw(d.w), db(d.b), dy = DeviceVec::garbage(y.size());
  cuda::conv2d_forward(s, dx.get(), dw.get(), db.get(), dy.get());
  expect_close(dy.host(), y, "spatial conv forward");
  check_conv_backward(d, true, true, true);
}

TEST_CASE("cuda::conv2d_backward over an empty batch writes zero weight and bias gradients") {
  if (!have_device()) return;
  const cpu::ConvShape s{0, 3, 5, 5, 2, 3, 1, 1};
  DeviceVec x = DeviceVec::garbage(1), w = DeviceVec::garbage(2 * 3 * 9), gy = DeviceVec::garbage(1);
  DeviceVec gw = DeviceVec::garbage(2 * 3 * 9), gb = DeviceVec::garbage(2);
  cuda::conv2d_forward(s, x.get(), w.get(), nullptr, gy.get());  // nothing to compute
  cuda::conv2d_backward(s, x.get(), w.get(), gy.get(), nullptr, gw.get(), gb.get());
  for (float v : gw.host()) CHECK(v == 0.f);
  for (float v : gb.host()) CHECK(v == 0.f);
}

// ---- attention ---------------------------------------------------------------------------------------

TEST_CASE("cuda::attention forward (out, P) and backward match the CPU") {
  if (!have_device()) return;
  Generator g(31);
  struct Case {
    int64_t B, T, heads, d;
  };
  for (const Case& c : {Case{2, 9, 2, 3}, Case{3, 5, 1, 4}, Case{1, 9, 2, 8}}) {
    const int64_t C = c.heads * c.d;
    auto qkv = random_vec(size_t(c.B * c.T * 3 * C), g, -2.f, 2.f), gout = random_vec(size_t(c.B * c.T * C), g);
    std::vector<float> out(size_t(c.B * c.T * C)), P(size_t(c.B * c.heads * c.T * c.T)), gqkv(qkv.size());
    cpu::attention_forward(qkv.data(), out.data(), P.data(), c.B, c.T, c.heads, c.d);
    cpu::attention_backward(qkv.data(), P.data(), gout.data(), gqkv.data(), c.B, c.T, c.heads, c.d);
    DeviceVec dqkv(qkv), dgout(gout), dout = DeviceVec::garbage(out.size()), dP = DeviceVec::garbage(P.size()),
        dgqkv = DeviceVec::garbage(gqkv.size());
    cuda::attention_forward(dqkv.get(), dout.get(), dP.get(), c.B, c.T, c.heads, c.d);
    const std::string name = "attention B " + std::to_string(c.B) + " T " + std::to_string(c.T) + " heads " +
                             std::to_string(c.heads) + " d " + std::to_string(c.d);
    expect_close(dout.host(), out, name + " out");
    expect_close(dP.host(), P, name + " P");
    cuda::attention_backward(dqkv.get(), dP.get(), dgout.get(), dgqkv.get(), c.B, c.T, c.heads, c.d);
    expect_close(dgqkv.host(), gqkv, name + " gqkv");
  }
}

// ---- BatchNorm -------------------------------------------------------------------------------------

TEST_CASE("cuda::batch_norm train/eval forward and backward match the CPU") {
  if (!have_device()) return;
  Generator g(41);
  struct Case {
    int64_t N, C, HW;
    bool affine;
  };
  const float eps = 1e-5f;
  for (const Case& c : {Case{3, 4, 5, true}, Case{2, 3, 1, true}, Case{5, 2, 37, false}, Case{1, 3, 300, true}}) {
    const size_t n = size_t(c.N * c.C * c.HW), C = size_t(c.C);
    const auto x = random_vec(n, g, -1.f, 3.f), gy = random_vec(n, g), w = random_vec(C, g, 0.5f, 1.5f),
               b = random_vec(C, g), rmean = random_vec(C, g), rvar = random_vec(C, g, 0.2f, 2.f);
    const std::vector<float>* wp = c.affine ? &w : nullptr;
    const std::vector<float>* bp = c.affine ? &b : nullptr;
    const std::string name = "batch_norm [" + std::to_string(c.N) + ", " + std::to_string(c.C) + ", HW " +
                             std::to_string(c.HW) + "]" + (c.affine ? "" : " without affine");
    DeviceVec dx(x), dgy(gy), dw(w), db(b), drmean(rmean), drvar(rvar);
    DeviceVec* dwp = c.affine ? &dw : nullptr;
    DeviceVec* dbp = c.affine ? &db : nullptr;

    std::vector<float> y(n), mean(C), invstd(C), var(C);
    cpu::batch_norm_train_forward(x.data(), ptr(wp), ptr(bp), y.data(), mean.data(), invstd.data(), var.data(), c.N,
                                  c.C, c.HW, eps);
    DeviceVec dy = DeviceVec::garbage(n), dmean = DeviceVec::garbage(C), dinvstd = DeviceVec::garbage(C),
              dvar = DeviceVec::garbage(C);
    cuda::batch_norm_train_forward(dx.get(), ptr(dwp), ptr(dbp), dy.get(), dmean.get(), dinvstd.get(), dvar.get(), c.N,
                                   c.C, c.HW, eps);
    expect_close(dy.host(), y, name + " train y");
    expect_close(dmean.host(), mean, name + " mean");
    expect_close(dinvstd.host(), invstd, name + " invstd");
    expect_close(dvar.host(), var, name + " unbiased variance");

    std::vector<float> ye(n);
    cpu::batch_norm_eval_forward(x.data(), ptr(wp), ptr(bp), rmean.data(), rvar.data(), ye.data(), c.N, c.C, c.HW,
                                 eps);
    DeviceVec dye = DeviceVec::garbage(n);
    cuda::batch_norm_eval_forward(dx.get(), ptr(dwp), ptr(dbp), drmean.get(), drvar.get(), dye.get(), c.N, c.C, c.HW,
                                  eps);
    expect_close(dye.host(), ye, name + " eval y");

    for (bool training : {true, false}) {
      std::vector<float> gx(n), gw(C), gb(C);
      cpu::batch_norm_backward(x.data(), ptr(wp), mean.data(), invstd.data(), gy.data(), gx.data(), gw.data(),
                               gb.data(), c.N, c.C, c.HW, training);
      DeviceVec dgx = DeviceVec::garbage(n), dgw = DeviceVec::garbage(C), dgb = DeviceVec::garbage(C);
      cuda::batch_norm_backward(dx.get(), ptr(dwp), dmean.get(), dinvstd.get(), dgy.get(), dgx.get(), dgw.get(),
                                dgb.get(), c.N, c.C, c.HW, training);
      const std::string mode = training ? " backward (training)" : " backward (eval)";
      expect_close(dgx.host(), gx, name + mode + " gx");
      expect_close(dgw.host(), gw, name + mode + " gw");
      expect_close(dgb.host(), gb, name + mode + " gb");
    }
  }
}

TEST_CASE("cuda::batch_norm_backward with null gradients writes only the others") {
  if (!have_device()) return;
  Generator g(42);
  const int64_t N = 2, C = 3, HW = 4;
  const size_t n = size_t(N * C * HW);
  const auto x = random_vec(n, g), gy = random_vec(n, g), mean = random_vec(3, g), invstd = random_vec(3, g, 0.5f, 2.f);
  std::vector<float> gx(n), gw(3), gb(3);
  cpu::batch_norm_backward(x.data(), nullptr, mean.data(), invstd.data(), gy.data(), gx.data(), gw.data(), gb.data(),
                           N, C, HW, true);
  DeviceVec dx(x), dgy(gy), dmean(mean), dinvstd(invstd), dgx = DeviceVec::garbage(n);
  cuda::batch_norm_backward(dx.get(), nullptr, dmean.get(), dinvstd.get(), dgy.get(), dgx.get(), nullptr, nullptr, N,
                            C, HW, true);
  expect_close(dgx.host(), gx, "batch_norm backward gx alone");
  DeviceVec dgw = DeviceVec::garbage(3), dgb = DeviceVec::garbage(3);
  cuda::batch_norm_backward(dx.get(), nullptr, dmean.get(), dinvstd.get(), dgy.get(), nullptr, dgw.get(), dgb.get(), N,
                            C, HW, true);
  expect_close(dgw.host(), gw, "batch_norm backward gw without gx");
  expect_close(dgb.host(), gb, "batch_norm backward gb without gx");
}

// ---- norm_mid (channel LayerNorm, LayerNorm) -----------------------------------------------------------

TEST_CASE("cuda::norm_mid forward and backward match the CPU for inner = 1 and inner > 1") {
  if (!have_device()) return;
  Generator g(51);
  struct Case {
    int64_t outer, C, inner;
    bool affine;
  };
  const float eps = 1e-6f;
  // The last two have more groups than one partial-sum chunk (4096), so the ordered sum of chunks runs.
  for (const Case& c : {Case{5, 7, 1, true}, Case{3, 5, 6, true}, Case{4, 40, 1, false}, Case{2, 3, 9, false},
                        Case{4100, 3, 1, true}, Case{70, 3, 64, true}}) {
    const size_t n = size_t(c.outer * c.C * c.inner), groups = size_t(c.outer * c.inner), C = size_t(c.C);
    const auto x = random_vec(n, g, -1.f, 2.f), gy = random_vec(n, g), w = random_vec(C, g, 0.5f, 1.5f),
               b = random_vec(C, g);
    const std::vector<float>* wp = c.affine ? &w : nullptr;
    const std::vector<float>* bp = c.affine ? &b : nullptr;
    const std::string name = "norm_mid (outer, C, inner) [" + std::to_string(c.outer) + ", " + std::to_string(c.C) +
                             ", " + std::to_string(c.inner) + "]" + (c.affine ? "" : " without affine");
    DeviceVec dx(x), dgy(gy), dw(w), db(b);
    DeviceVec* dwp = c.affine ? &dw : nullptr;
    DeviceVec* dbp = c.affine ? &db : nullptr;

    std::vector<float> y(n), mean(groups), invstd(groups);
    cpu::norm_mid_forward(x.data(), ptr(wp), ptr(bp), y.data(), mean.data(), invstd.data(), c.outer, c.C, c.inner,
                          eps);
    DeviceVec dy = DeviceVec::garbage(n), dmean = DeviceVec::garbage(groups), dinvstd = DeviceVec::garbage(groups);
    cuda::norm_mid_forward(dx.get(), ptr(dwp), ptr(dbp), dy.get(), dmean.get(), dinvstd.get(), c.outer, c.C, c.inner,
                           eps);
    expect_close(dy.host(), y, name + " y");
    expect_close(dmean.host(), mean, name + " mean");
    expect_close(dinvstd.host(), invstd, name + " invstd");

    std::vector<float> gx(n), gw(C), gb(C);
    cpu::norm_mid_backward(x.data(), ptr(wp), mean.data(), invstd.data(), gy.data(), gx.data(), gw.data(), gb.data(),
                           c.outer, c.C, c.inner);
    DeviceVec dgx = DeviceVec::garbage(n), dgw = DeviceVec::garbage(C), dgb = DeviceVec::garbage(C);
    cuda::norm_mid_backward(dx.get(), ptr(dwp), dmean.get(), dinvstd.get(), dgy.get(), dgx.get(), dgw.get(), dgb.get(),
                            c.outer, c.C, c.inner);
    expect_close(dgx.host(), gx, name + " gx");
    expect_close(dgw.host(), gw, name + " gw");
    expect_close(dgb.host(), gb, name + " gb");

    // Null parameter gradients: gx alone, and the parameter gradients alone.
    DeviceVec dgx2 = DeviceVec::garbage(n);
    cuda::norm_mid_backward(dx.get(), ptr(dwp), dmean.get(), dinvstd.get(), dgy.get(), dgx2.get(), nullptr, nullptr,
                            c.outer, c.C, c.inner);
    expect_close(dgx2.host(), gx, name + " gx without gw, gb");
    DeviceVec dgw2 = DeviceVec::garbage(C), dgb2 = DeviceVec::garbage(C);
    cuda::norm_mid_backward(dx.get(), ptr(dwp), dmean.get(), dinvstd.get(), dgy.get(), nullptr, dgw2.get(), dgb2.get(),
                            c.outer, c.C, c.inner);
    expect_close(dgw2.host(), gw, name + " gw without gx");
    expect_close(dgb2.host(), gb, name + " gb without gx");
  }
}
