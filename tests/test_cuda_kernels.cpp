// The CUDA twins of the CPU kernels (tensor/kernels_cuda.h) against the CPU: elementwise, reductions,
// pooling, loss, memory, dropout, optimiser updates and BatchNorm statistics, on small odd shapes and
// the edge cases (n = 0, size-1 and broadcast dims, strided views, ties and NaNs, overlapping
// windows). Under the simulator (tests/cudasim) every kernel runs on the CPU, in the thread order of
// CUDASIM_ORDER; the same source runs on a GPU.
//
// Where the maths is the same operations in the same order, the results must be equal bit for bit
// (copies, max and argmax, pooling, broadcast arithmetic, the dropout mask); elsewhere within a
// relative error of 1e-5 (different summation trees, library exp/erf, FMA contraction on the GPU).
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "tensor/counter_rng.h"
#include "tensor/cuda_check.h"
#include "tensor/kernels.h"
#include "tensor/kernels_cuda.h"

using namespace ahmsa;

namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// ---- device buffers --------------------------------------------------------------------------------

template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t n_) : n(n_) { REQUIRE(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)) == cudaSuccess); }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) { put(v); }
  Dev(const Dev&) = delete;
  ~Dev() { cudaFree(p); }
  void put(const std::vector<T>& v) {
    REQUIRE(v.size() == n);
    if (n) REQUIRE(cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  std::vector<T> get() const {
    std::vector<T> v(n);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // a kernel fault shows here
    if (n) REQUIRE(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return v;
  }
};

// ---- deterministic data ------------------------------------------------------------------------------

struct Lcg {
  uint64_t s;
  explicit Lcg(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float uniform(float lo, float hi) {  // 24 random bits
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * float(s >> 40) * (1.f / 16777216.f);
  }
  int below(int n) { return int(uniform(0.f, float(n))) % n; }
};

std::vector<float> random(size_t n, float lo, float hi, uint64_t seed) {
  Lcg g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = g.uniform(lo, hi);
  return v;
}

// Values from a few levels, so that maxima tie often.
std::vector<float> levels(size_t n, int count, uint64_t seed) {
  Lcg g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(g.below(count)) - 1.5f;
  return v;
}

// ---- comparisons ------------------------------------------------------------------------------------

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)); }

void check_exact(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!same_bits(got[i], want[i]) && bad++ == 0) first = i;
  INFO(what << ": " << bad << " of " << got.size() << " differ; first at " << first << ": "
            << (bad ? got[first] : 0.f) << " vs " << (bad ? want[first] : 0.f));
  CHECK(bad == 0);
}

void check_exact(const std::vector<int32_t>& got, const std::vector<int32_t>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i] && bad++ == 0) first = i;
  INFO(what << ": " << bad << " of " << got.size() << " indices differ; first at " << first << ": "
            << (bad ? got[first] : 0) << " vs " << (bad ? want[first] : 0));
  CHECK(bad == 0);
}

// |got − want| ≤ rel |want| + abs; NaN only where the reference is NaN.
void check_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what,
                 double rel = 1e-5, double abs = 1e-6) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok = std::isnan(w) ? std::isnan(g) : (std::isinf(w) ? g == w : std::fabs(g - w) <= rel * std::fabs(w) + abs);
    if (!ok && bad++ == 0) first = i;
    if (std::isfinite(g) && std::isfinite(w)) worst = std::max(worst, std::fabs(g - w) / (std::fabs(w) + abs / rel));
  }
  INFO(what << ": " << bad << " of " << got.size() << " outside tolerance (worst relative " << worst
            << "); first at " << first << ": " << (bad ? got[first] : 0.f) << " vs " << (bad ? want[first] : 0.f));
  CHECK(bad == 0);
}

std::string mid_name(const char* op, int64_t o, int64_t r, int64_t i) {
  return std::string(op) + " [" + std::to_string(o) + ", " + std::to_string(r) + ", " + std::to_string(i) + "]";
}


// Built against the real CUDA runtime on a machine without a usable GPU, the tests say why and skip
// (the simulator always has its one device).
bool no_device() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaSuccess && n > 0) return false;
  std::fprintf(stderr, "test_cuda_kernels: no usable CUDA device (%s: %s), skipping\n", cudaGetErrorName(e),
               cudaGetErrorString(e));
  return true;
}

}  // namespace

TEST_SUITE_BEGIN("cuda kernels" * doctest::skip(no_device()));

// ---- elementwise ----------------------------------------------------------------------------------

TEST_CASE("unary_forward / unary_backward: every map and its derivative match the CPU") {
  using U = cpu::Unary;
  const std::pair<U, const char*> ops[] = {{U::Relu, "relu"}, {U::Gelu, "gelu"},     {U::Sigmoid, "sigmoid"},
                                           {U::Exp, "exp"},   {U::Log, "log"},       {U::Sqrt, "sqrt"},
                                           {U::Square, "square"}, {U::Neg, "neg"}};
  for (int64_t n : {0, 1, 37, 1029}) {
    for (auto [op, name] : ops) {
      CAPTURE(name);
      CAPTURE(n);
      const bool positive = op == U::Log || op == U::Sqrt;
      std::vector<float> x = random(sz(n), positive ? 0.05f : -4.f, 4.f, 11 + uint64_t(n));
      if (op == U::Relu && n > 2) x[1] = std::numeric_limits<float>::quiet_NaN(), x[2] = 0.f;  // NaN passes
      const std::vector<float> gy = random(sz(n), -1.f, 1.f, 12 + uint64_t(n));
      std::vector<float> y(sz(n), -7.f), gx(sz(n), -7.f);
      cpu::unary_forward(op, x.data(), y.data(), n);
      cpu::unary_backward(op, x.data(), y.data(), gy.data(), gx.data(), n);

      Dev<float> dx(x), dy(std::vector<float>(sz(n), -7.f)), dgy(gy), dgx(std::vector<float>(sz(n), -7.f));
      cuda::unary_forward(op, dx.p, dy.p, n);
      check_close(dy.get(), y, std::string(name) + " forward", 1e-5, 1e-6);
      dy.put(y);  // the backward reads the CPU's y, so that only the derivative is compared
      cuda::unary_backward(op, dx.p, dy.p, dgy.p, dgx.p, n);
      check_close(dgx.get(), gx, std::string(name) + " backward", 1e-5, 1e-6);
    }
  }
}

namespace {
// The number of elements an operand of `shape` with `strides` spans.
size_t span(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return 0;
    last += (shape[d] - 1) * strides[d];
  }
  return sz(last + 1);
}
}  // namespace

TEST_CASE("binary_forward: broadcast and strided operands give the CPU's values bit for bit") {
  struct Case {
    const char* name;
    std::vector<int64_t> shape, sa, sb;
  };
  const Case cases[] = {
      {"same shape", {3, 5, 7}, {35, 7, 1}, {35, 7, 1}},
      {"per-channel bias [2,3,4,5] + [1,3,1,1]", {2, 3, 4, 5}, {60, 20, 5, 1}, {0, 1, 0, 0}},
      {"scalar b", {4, 9}, {9, 1}, {0, 0}},
      {"a broadcast along rows", {6, 5}, {0, 1}, {5, 1}},
      {"transposed a", {5, 3}, {1, 5}, {3, 1}},
      {"outer product [7,1] x [1,6]", {7, 6}, {1, 0}, {0, 1}},
      {"size-1 dims", {1, 4, 1, 3}, {12, 3, 3, 1}, {0, 1, 0, 0}},
      {"0-d", {}, {}, {}},
      {"empty", {3, 0, 2}, {0, 2, 1}, {0, 2, 1}},
      {"strided rows (a view with a gap)", {4, 3}, {5, 1}, {3, 1}},
  };
  using B = cpu::Binary;
  for (const Case& c : cases) {
    for (auto [op, name] : {std::pair{B::Add, "add"}, {B::Sub, "sub"}, {B::Mul, "mul"}, {B::Div, "div"}}) {
      CAPTURE(c.name);
      CAPTURE(name);
      int64_t n = 1;
      for (int64_t d : c.shape) n *= d;
      const std::vector<float> a = random(std::max<size_t>(span(c.shape, c.sa), 1), -2.f, 2.f, 21);
      const std::vector<float> b = random(std::max<size_t>(span(c.shape, c.sb), 1), 0.5f, 2.f, 22);
      std::vector<float> y(sz(n), -7.f);
      cpu::binary_forward(op, a.data(), c.sa, b.data(), c.sb, y.data(), c.shape);
      Dev<float> da(a), db(b), dy(std::vector<float>(sz(n), -7.f));
      cuda::binary_forward(op, da.p, c.sa, db.p, c.sb, dy.p, c.shape);
      check_exact(dy.get(), y, std::string("binary ") + name + " " + c.name);
    }
  }
}

TEST_CASE("scalar_forward matches the CPU bit for bit") {
  using B = cpu::Binary;
  for (int64_t n : {0, 1, 300}) {
    const std::vector<float> a = random(sz(n), -3.f, 3.f, 31);
    for (auto op : {B::Add, B::Sub, B::Mul, B::Div}) {
      std::vector<float> y(sz(n));
      cpu::scalar_forward(op, a.data(), 0.37f, y.data(), n);
      Dev<float> da(a), dy(sz(n));
      cuda::scalar_forward(op, da.p, 0.37f, dy.p, n);
      check_exact(dy.get(), y, "scalar op " + std::to_string(int(op)) + " n " + std::to_string(n));
    }
  }
}

// ---- reductions over the middle axis ------------------------------------------------------------------

namespace {
// (outer, R, inner) covering each launch geometry: one thread per output, R split over a block
// (inner = 1 and inner > 32), several column tiles per block (up to the 64 of blockDim.z, and more
// tiles than one block holds), and R = 1.
const int64_t kMidShapes[][3] = {{3, 5, 7},  {2, 1000, 1}, {1, 300, 70}, {50, 3, 1},  {1, 1, 1},  {7, 33, 2},
                                 {4, 200, 3}, {5, 17, 40},  {1, 4096, 1}, {300, 3, 1}, {70, 5, 2}};
}  // namespace

TEST_CASE("sum_mid matches the CPU on every launch geometry, R = 0 gives zeros, empty outputs are left alone") {
  for (auto& s : kMidShapes) {
    const int64_t o = s[0], R = s[1], i = s[2];
    const std::vector<float> x = random(sz(o * R * i), 0.5f, 1.5f, uint64_t(o * 1000 + R));
    std::vector<float> y(sz(o * i));
    cpu::sum_mid(x.data(), y.data(), o, R, i);
    Dev<float> dx(x), dy(sz(o * i));
    cuda::sum_mid(dx.p, dy.p, o, R, i);
    check_close(dy.get(), y, mid_name("sum_mid", o, R, i));
  }
  Dev<float> dx(sz(1)), dy(std::vector<float>(12, -1.f));
  cuda::sum_mid(dx.p, dy.p, 4, 0, 3);
  check_exact(dy.get(), std::vector<float>(12, 0.f), "sum_mid with R = 0");
  Dev<float> dz(std::vector<float>{5.f});
  cuda::sum_mid(dx.p, dz.p, 0, 5, 3);
  cuda::sum_mid(dx.p, dz.p, 2, 5, 0);
  CHECK(dz.get()[0] == 5.f);
}

TEST_CASE("max_mid: values and argmax are the CPU's, first index on ties, NaN only when it is at r = 0") {
  for (auto& s : kMidShapes) {
    const int64_t o = s[0], R = s[1], i = s[2];
    CAPTURE(mid_name("max_mid", o, R, i));
    std::vector<float> x = levels(sz(o * R * i), 3, uint64_t(o + R + i));
    // NaNs: at r = 0 of column 0 (the result is NaN, index 0), and later in column 1 (ignored).
    const float nan = std::numeric_limits<float>::quiet_NaN();
    x[0] = nan;
    if (i > 1 && R > 2) x[sz(2 * i + 1)] = nan;
    if (i == 1 && o > 1 && R > 2) x[sz(R + 2)] = nan;
    std::vector<float> y(sz(o * i));
    std::vector<int32_t> idx(sz(o * i));
    cpu::max_mid(x.data(), y.data(), idx.data(), o, R, i);
    Dev<float> dx(x), dy(sz(o * i));
    Dev<int32_t> didx(sz(o * i));
    cuda::max_mid(dx.p, dy.p, didx.p, o, R, i);
    check_exact(dy.get(), y, "max");
    check_exact(didx.get(), idx, "argmax");
  }
}

TEST_CASE("max_mid_backward routes each gradient to its argmax and writes zeros elsewhere") {
  for (auto& s : kMidShapes) {
    const int64_t o = s[0], R = s[1], i = s[2];
    const std::vector<float> gy = random(sz(o * i), -1.f, 1.f, 41);
    std::vector<int32_t> idx(sz(o * i));
    Lcg g(42);
    for (auto& v : idx) v = g.below(int(R));
    std::vector<float> gx(sz(o * R * i));
    cpu::max_mid_backward(gy.data(), idx.data(), gx.data(), o, R, i);
    Dev<float> dgy(gy), dgx(sz(o * R * i));
    Dev<int32_t> didx(idx);
    cuda::max_mid_backward(dgy.p, didx.p, dgx.p, o, R, i);
    check_exact(dgx.get(), gx, mid_name("max_mid_backward", o, R, i));
  }
}

TEST_CASE("softmax_mid and log_softmax forward and backward match the CPU") {
  for (bool log : {false, true}) {
    for (auto& s : kMidShapes) {
      const int64_t o = s[0], R = s[1], i = s[2], n = o * R * i;
      const std::string name = mid_name(log ? "log_softmax" : "softmax", o, R, i);
      const std::vector<float> x = random(sz(n), -6.f, 6.f, uint64_t(n) + 3);
      const std::vector<float> gy = random(sz(n), -1.f, 1.f, uint64_t(n) + 4);
      std::vector<float> y(sz(n)), gx(sz(n));
      cpu::softmax_mid(x.data(), y.data(), o, R, i, log);
      cpu::softmax_mid_backward(y.data(), gy.data(), gx.data(), o, R, i, log);
      Dev<float> dx(x), dy(sz(n)), dgy(gy), dgx(sz(n));
      cuda::softmax_mid(dx.p, dy.p, o, R, i, log);
      check_close(dy.get(), y, name + " forward", 1e-5, 1e-7);
      dy.put(y);
      cuda::softmax_mid_backward(dy.p, dgy.p, dgx.p, o, R, i, log);
      check_close(dgx.get(), gx, name + " backward", 1e-5, 1e-6);
    }
  }
}

// ---- pooling ----------------------------------------------------------------------------------------

TEST_CASE("max_pool2d_forward and pool_scatter_backward (overlapping windows) match the CPU bit for bit") {
  struct Case {
    int64_t planes, H, W;
    int k, stride, pad;
  };
  for (Case c : {Case{3, 7, 9, 3, 2, 1}, Case{5, 8, 6, 2, 2, 0}, Case{6, 9, 7, 3, 1, 1}, Case{1, 1, 1, 1, 1, 0}}) {
    const int64_t OH = (c.H + 2 * c.pad - c.k) / c.stride + 1, OW = (c.W + 2 * c.pad - c.k) / c.stride + 1;
    const std::string name = "max_pool2d planes " + std::to_string(c.planes) + " " + std::to_string(c.H) + "x" +
                             std::to_string(c.W) + " k" + std::to_string(c.k) + " s" + std::to_string(c.stride) +
                             " p" + std::to_string(c.pad);
    const std::vector<float> x = levels(sz(c.planes * c.H * c.W), 4, uint64_t(c.H * c.W));  // ties
    std::vector<float> y(sz(c.planes * OH * OW));
    std::vector<int32_t> idx(y.size());
    cpu::max_pool2d_forward(x.data(), y.data(), idx.data(), c.planes, c.H, c.W, OH, OW, c.k, c.stride, c.pad);
    Dev<float> dx(x), dy(y.size());
    Dev<int32_t> didx(y.size());
    cuda::max_pool2d_forward(dx.p, dy.p, didx.p, c.planes, c.H, c.W, OH, OW, c.k, c.stride, c.pad);
    check_exact(dy.get(), y, name);
    check_exact(didx.get(), idx, name + " argmax");

    // The scatter: several outputs share an argmax where windows overlap; an index of -1 is skipped.
    std::vector<int32_t> sidx = idx;
    if (sidx.size() > 3) sidx[3] = -1;
    const std::vector<float> gy = random(y.size(), -1.f, 1.f, 51);
    std::vector<float> gx(x.size());
    cpu::pool_scatter_backward(gy.data(), sidx.data(), gx.data(), c.planes, c.H * c.W, OH * OW);
    Dev<float> dgy(gy), dgx(std::vector<float>(x.size(), -7.f));
    Dev<int32_t> dsidx(sidx);
    cuda::pool_scatter_backward(dgy.p, dsidx.p, dgx.p, c.planes, c.H * c.W, OH * OW);
    check_exact(dgx.get(), gx, name + " scatter backward");
  }
}

TEST_CASE("pool_scatter_backward: many outputs onto few pixels, over several groups of 32, in the CPU's order") {
  const int64_t planes = 9, HW = 5, OHW = 100;  // 9 planes: three blocks of four warps, the last one short
  std::vector<int32_t> idx(sz(planes * OHW));
  Lcg g(61);
  for (auto& v : idx) v = g.below(int(HW) + 1) - 1;  // -1 .. HW-1
  const std::vector<float> gy = random(idx.size(), -1.f, 1.f, 62);
  std::vector<float> gx(sz(planes * HW));
  cpu::pool_scatter_backward(gy.data(), idx.data(), gx.data(), planes, HW, OHW);
  Dev<float> dgy(gy), dgx(sz(planes * HW));
  Dev<int32_t> didx(idx);
  cuda::pool_scatter_backward(dgy.p, didx.p, dgx.p, planes, HW, OHW);
  check_exact(dgx.get(), gx, "pool_scatter_backward");
}

TEST_CASE("adaptive pools (PyTorch bins: equal, uneven, overlapping, up-sampling, global) match the CPU bit for bit") {
  const int64_t shapes[][4] = {{7, 5, 3, 2}, {8, 6, 4, 3}, {5, 5, 7, 7}, {4, 4, 1, 1}, {9, 2, 4, 3}, {1, 1, 1, 1}};
  const int64_t planes = 3;
  for (auto& s : shapes) {
    const int64_t H = s[0], W = s[1], OH = s[2], OW = s[3];
    const std::string name = "adaptive " + std::to_string(H) + "x" + std::to_string(W) + " -> " +
                             std::to_string(OH) + "x" + std::to_string(OW);
    const std::vector<float> x = levels(sz(planes * H * W), 5, uint64_t(H * 10 + W));
    std::vector<float> y(sz(planes * OH * OW)), ym(y.size());
    std::vector<int32_t> idx(y.size());
    cpu::adaptive_avg_pool2d_forward(x.data(), y.data(), planes, H, W, OH, OW);
    cpu::adaptive_max_pool2d_forward(x.data(), ym.data(), idx.data(), planes, H, W, OH, OW);
    Dev<float> dx(x), dy(y.size()), dym(y.size());
    Dev<int32_t> didx(y.size());
    cuda::adaptive_avg_pool2d_forward(dx.p, dy.p, planes, H, W, OH, OW);
    cuda::adaptive_max_pool2d_forward(dx.p, dym.p, didx.p, planes, H, W, OH, OW);
    check_exact(dy.get(), y, name + " avg forward");
    check_exact(dym.get(), ym, name + " max forward");
    check_exact(didx.get(), idx, name + " max argmax");

    const std::vector<float> gy = random(y.size(), -1.f, 1.f, 71);
    std::vector<float> gx(x.size());
    cpu::adaptive_avg_pool2d_backward(gy.data(), gx.data(), planes, H, W, OH, OW);
    Dev<float> dgy(gy), dgx(std::vector<float>(x.size(), -7.f));
    cuda::adaptive_avg_pool2d_backward(dgy.p, dgx.p, planes, H, W, OH, OW);
    check_exact(dgx.get(), gx, name + " avg backward");
  }
  Dev<float> dx(sz(1)), dy(std::vector<float>{3.f});
  cuda::adaptive_avg_pool2d_forward(dx.p, dy.p, 0, 4, 4, 2, 2);  // no planes: nothing to do
  CHECK(dy.get()[0] == 3.f);
}

// ---- loss -------------------------------------------------------------------------------------------

TEST_CASE("cross_entropy: loss and dlogits with class weights and label smoothing, over more rows than threads") {
  struct Case {
    int64_t N, K;
    bool weighted;
    float eps;
  };
  for (Case c : {Case{5, 3, true, 0.1f}, Case{300, 7, false, 0.f}, Case{1, 1, false, 0.f}, Case{64, 5, true, 0.f},
                 Case{33, 4, false, 0.2f}}) {
    CAPTURE(c.N);
    CAPTURE(c.K);
    const std::vector<float> z = random(sz(c.N * c.K), -5.f, 5.f, uint64_t(c.N * c.K));
    std::vector<int32_t> t(sz(c.N));
    Lcg g(81);
    for (auto& v : t) v = g.below(int(c.K));
    const std::vector<float> wc = c.weighted ? random(sz(c.K), 0.2f, 2.f, 82) : std::vector<float>{};
    float loss = 0.f;
    std::vector<float> dl(z.size());
    cpu::cross_entropy(z.data(), t.data(), c.weighted ? wc.data() : nullptr, c.N, c.K, c.eps, &loss, dl.data());

    Dev<float> dz(z), dloss(sz(1)), ddl(z.size()), dwc(wc);
    Dev<int32_t> dt(t);
    cuda::cross_entropy(dz.p, dt.p, c.weighted ? dwc.p : nullptr, c.N, c.K, c.eps, dloss.p, ddl.p);
    check_close(dloss.get(), {loss}, "cross_entropy loss", 1e-5, 1e-7);
    check_close(ddl.get(), dl, "cross_entropy dlogits", 1e-5, 1e-7);
    // Without dlogits only the loss is written; the same bits again.
    Dev<float> dloss2(sz(1));
    cuda::cross_entropy(dz.p, dt.p, c.weighted ? dwc.p : nullptr, c.N, c.K, c.eps, dloss2.p, nullptr);
    check_exact(dloss2.get(), dloss.get(), "cross_entropy loss without dlogits");
  }
  // No rows: the loss is 0/0, NaN, as the CPU kernel gives (and nothing else is written).
  Dev<float> dz(sz(1)), dloss(std::vector<float>{1.f});
  Dev<int32_t> dt(sz(1));
  cuda::cross_entropy(dz.p, dt.p, nullptr, 0, 3, 0.f, dloss.p, nullptr);
  CHECK(std::isnan(dloss.get()[0]));
  float cpu_loss = 1.f;
  cpu::cross_entropy(nullptr, nullptr, nullptr, 0, 3, 0.f, &cpu_loss, nullptr);
  CHECK(std::isnan(cpu_loss));
}

TEST_CASE("cross_entropy_soft: loss and dlogits against the CPU twin; one-hot rows equal cross_entropy") {
  struct Case {
    int64_t N, K;
    bool weighted;
    float eps;
  };
  for (Case c : {Case{5, 3, true, 0.1f}, Case{300, 7, false, 0.f}, Case{1, 1, false, 0.f}, Case{33, 4, true, 0.2f}}) {
    CAPTURE(c.N);
    CAPTURE(c.K);
    const std::vector<float> z = random(sz(c.N * c.K), -5.f, 5.f, uint64_t(c.N * c.K) + 3);
    std::vector<float> q = random(sz(c.N * c.K), 0.f, 1.f, uint64_t(c.N) + 5);  // rows need not sum to 1
    const std::vector<float> wc = c.weighted ? random(sz(c.K), 0.2f, 2.f, 83) : std::vector<float>{};
    float loss = 0.f;
    std::vector<float> dl(z.size());
    cpu::cross_entropy_soft(z.data(), q.data(), c.weighted ? wc.data() : nullptr, c.N, c.K, c.eps, &loss, dl.data());
    Dev<float> dz(z), dq(q), dloss(sz(1)), ddl(z.size()), dwc(wc);
    cuda::cross_entropy_soft(dz.p, dq.p, c.weighted ? dwc.p : nullptr, c.N, c.K, c.eps, dloss.p, ddl.p);
    check_close(dloss.get(), {loss}, "cross_entropy_soft loss", 1e-5, 1e-7);
    check_close(ddl.get(), dl, "cross_entropy_soft dlogits", 1e-5, 1e-7);
    // One-hot rows, no class weights: the hard-target kernel's numbers.
    std::vector<int32_t> t(sz(c.N));
    Lcg g(84);
    for (auto& v : t) v = g.below(int(c.K));
    std::fill(q.begin(), q.end(), 0.f);
    for (int64_t n = 0; n < c.N; ++n) q[sz(n * c.K + t[sz(n)])] = 1.f;
    float hard = 0.f, soft = 0.f;
    std::vector<float> dh(z.size()), ds(z.size());
    cpu::cross_entropy(z.data(), t.data(), nullptr, c.N, c.K, c.eps, &hard, dh.data());
    cpu::cross_entropy_soft(z.data(), q.data(), nullptr, c.N, c.K, c.eps, &soft, ds.data());
    check_close({soft}, {hard}, "one-hot soft loss", 1e-6, 1e-7);
    check_close(ds, dh, "one-hot soft dlogits", 1e-6, 1e-7);
  }
}

// ---- memory -------------------------------------------------------------------------------------------

TEST_CASE("fill and add_inplace: exact, and n = 0 leaves memory alone") {
  for (int64_t n : {0, 1, 1000, 4099}) {
    Dev<float> y(std::vector<float>(sz(n) + 1, -1.f));
    cuda::fill(y.p, n, 2.5f);
    std::vector<float> want(sz(n) + 1, -1.f);  // one past the end is untouched
    cpu::fill(want.data(), n, 2.5f);
    check_exact(y.get(), want, "fill " + std::to_string(n));

    const std::vector<float> a = random(sz(n), -1.f, 1.f, 91), b = random(sz(n), -1.f, 1.f, 92);
    std::vector<float> sum = a;
    cpu::add_inplace(sum.data(), b.data(), n);
    Dev<float> da(a), db(b);
    cuda::add_inplace(da.p, db.p, n);
    check_exact(da.get(), sum, "add_inplace " + std::to_string(n));
  }
}

TEST_CASE("strided_copy gathers permuted, broadcast, 0-d and empty views exactly") {
  struct Case {
    const char* name;
    std::vector<int64_t> shape, strides;
  };
  const Case cases[] = {
      {"permuted [4,3,5] of a [5,4,3]", {4, 3, 5}, {3, 1, 12}},
      {"broadcast (stride 0) [3,4]", {3, 4}, {0, 1}},
      {"every other column", {6, 4}, {8, 2}},
      {"0-d", {}, {}},
      {"empty", {3, 0}, {1, 1}},
      {"8 dims", {2, 1, 3, 2, 1, 2, 3, 2}, {144, 72, 24, 12, 12, 6, 2, 1}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    cpu::StridedView v;
    v.ndim = int(c.shape.size());
    int64_t n = 1;
    for (int d = 0; d < v.ndim; ++d) v.shape[d] = c.shape[sz(d)], v.strides[d] = c.strides[sz(d)], n *= v.shape[d];
    const std::vector<float> src = random(std::max<size_t>(span(c.shape, c.strides), 1) + 3, -1.f, 1.f, 101);
    std::vector<float> want(sz(n) + 1, -7.f);
    cpu::strided_copy(src.data(), v, want.data());
    Dev<float> dsrc(src), ddst(std::vector<float>(sz(n) + 1, -7.f));
    cuda::strided_copy(dsrc.p, v, ddst.p);
    check_exact(ddst.get(), want, c.name);
  }
}

// ---- dropout --------------------------------------------------------------------------------------------

TEST_CASE("dropout_mask is the counter-based stream bit for bit, at any offset") {
  for (auto [n, p, offset] : {std::tuple<int64_t, float, uint64_t>{1000, 0.3f, 0}, {777, 0.5f, 123456789},
                              {5, 0.f, 7}, {0, 0.3f, 0}, {4100, 0.9f, (uint64_t(1) << 40) + 5}}) {
    const uint64_t seed = 20260101;
    std::vector<float> want(sz(n)), formula(sz(n));
    cpu::dropout_mask(want.data(), n, p, seed, offset);
    const float scale = 1.f / (1.f - p);  // and the CPU kernel is the formula of kernels.h
    for (int64_t i = 0; i < n; ++i) formula[sz(i)] = counter_uniform(seed, offset + uint64_t(i)) < p ? 0.f : scale;
    check_exact(want, formula, "cpu::dropout_mask");
    Dev<float> m(sz(n));
    cuda::dropout_mask(m.p, n, p, seed, offset);
    const std::vector<float> got = m.get();
    check_exact(got, want, "dropout_mask n " + std::to_string(n));
    if (n >= 1000) {  // and it is a mask of about the right density
      int64_t zeros = 0;
      for (float v : got) zeros += v == 0.f;
      CHECK(double(zeros) / double(n) == doctest::Approx(p).epsilon(0.15));
    }
  }
}

// ---- optimisers -----------------------------------------------------------------------------------------

namespace {
// Three parameters of odd sizes, the middle one without a gradient (skipped), state slabs with a gap.
struct Params {
  std::vector<int64_t> numel{37, 5, 301}, offset{0, 40, 50};
  int64_t slab = 351;
  std::vector<std::vector<float>> theta, grad;
  explicit Params(uint64_t seed) {
    for (size_t k = 0; k < numel.size(); ++k) {
      theta.push_back(random(sz(numel[k]), -1.f, 1.f, seed + k));
      grad.push_back(random(sz(numel[k]), -0.5f, 0.5f, seed + 10 + k));
    }
  }
};

// The ParamList of the host copies, for the CPU kernels.
cpu::ParamList host_list(Params& p) {
  cpu::ParamList l;
  for (size_t k = 0; k < p.numel.size(); ++k) {
    l.theta.push_back(p.theta[k].data());
    l.grad.push_back(k == 1 ? nullptr : p.grad[k].data());
    l.numel.push_back(p.numel[k]);
    l.offset.push_back(p.offset[k]);
  }
  return l;
}

// The device copy of a Params (gradients re-drawn per step by the caller).
struct DevParams {
  std::vector<std::unique_ptr<Dev<float>>> theta, grad;
  cpu::ParamList list;
  explicit DevParams(const Params& p) {
    for (size_t k = 0; k < p.numel.size(); ++k) {
      theta.push_back(std::make_unique<Dev<float>>(p.theta[k]));
      grad.push_back(std::make_unique<Dev<float>>(p.grad[k]));
      list.theta.push_back(theta[k]->p);
      list.grad.push_back(k == 1 ? nullptr : grad[k]->p);
      list.numel.push_back(p.numel[k]);
      list.offset.push_back(p.offset[k]);
    }
  }
};
}  // namespace

TEST_CASE("sgd_update: plain, momentum and Nesterov, three steps, over every parameter in one launch") {
  for (auto [momentum, nesterov, wd] : {std::tuple{0.f, false, 0.f}, {0.9f, false, 1e-3f}, {0.9f, true, 1e-2f}}) {
    CAPTURE(momentum);
    CAPTURE(nesterov);
    Params p(111);
    DevParams d(p);
    std::vector<float> v(sz(p.slab), 0.f);
    Dev<float> dv(v);
    const float lr = 0.05f;
    for (int step = 1; step <= 3; ++step) {
      for (size_t k = 0; k < p.numel.size(); ++k) {  // new gradients each step
        p.grad[k] = random(sz(p.numel[k]), -0.5f, 0.5f, uint64_t(step * 100) + k);
        d.grad[k]->put(p.grad[k]);
      }
      cpu::sgd_update(host_list(p), momentum != 0.f ? v.data() : nullptr, lr, momentum, wd, nesterov, step == 1);
      cuda::sgd_update(d.list, momentum != 0.f ? dv.p : nullptr, lr, momentum, wd, nesterov, step == 1);
    }
    for (size_t k = 0; k < p.numel.size(); ++k)
      check_close(d.theta[k]->get(), p.theta[k], "sgd theta " + std::to_string(k), 1e-6, 1e-7);
    if (momentum != 0.f) check_close(dv.get(), v, "sgd momentum", 1e-6, 1e-7);
  }
}

TEST_CASE("adam_update: Adam and AdamW, three steps, in the CPU's float arithmetic") {
  for (bool decoupled : {false, true}) {
    CAPTURE(decoupled);
    Params p(222);
    DevParams d(p);
    std::vector<float> m(sz(p.slab), 0.f), v(sz(p.slab), 0.f);
    Dev<float> dm(m), dv(v);
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.05f;
    for (int64_t t = 1; t <= 3; ++t) {
      for (size_t k = 0; k < p.numel.size(); ++k) {
        p.grad[k] = random(sz(p.numel[k]), -0.5f, 0.5f, uint64_t(t * 100) + k);
        d.grad[k]->put(p.grad[k]);
      }
      cpu::adam_update(host_list(p), m.data(), v.data(), lr, b1, b2, eps, wd, decoupled, t);
      cuda::adam_update(d.list, dm.p, dv.p, lr, b1, b2, eps, wd, decoupled, t);
    }
    for (size_t k = 0; k < p.numel.size(); ++k)
      check_close(d.theta[k]->get(), p.theta[k], "adam theta " + std::to_string(k), 1e-6, 1e-7);
    check_close(dm.get(), m, "adam m", 1e-5, 1e-8);
    check_close(dv.get(), v, "adam v", 1e-5, 1e-10);
  }
  // A list with no gradients launches nothing.
  cpu::ParamList none;
  none.theta = {nullptr};
  none.grad = {nullptr};
  none.numel = {10};
  none.offset = {0};
  cuda::adam_update(none, nullptr, nullptr, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.f, true, 1);
  CHECK(cudaGetLastError() == cudaSuccess);
}

// ---- BatchNorm statistics ---------------------------------------------------------------------------------

TEST_CASE("batch_norm_update_running and batch_norm_eval_stats match the CPU") {
  for (int64_t C : {0, 1, 67}) {
    const std::vector<float> rm = random(sz(C), -1.f, 1.f, 121), rv = random(sz(C), 0.1f, 2.f, 122);
    const std::vector<float> mean = random(sz(C), -1.f, 1.f, 123), var = random(sz(C), 0.1f, 2.f, 124);
    const float momentum = 0.1f, eps = 1e-5f;
    std::vector<float> want_m = rm, want_v = rv, want_mean(sz(C)), want_inv(sz(C));
    cpu::batch_norm_eval_stats(rm.data(), rv.data(), want_mean.data(), want_inv.data(), C, eps);
    cpu::batch_norm_update_running(want_m.data(), want_v.data(), mean.data(), var.data(), C, momentum);
    Dev<float> drm(rm), drv(rv), dmean(mean), dvar(var), omean(sz(C)), oinv(sz(C));
    cuda::batch_norm_eval_stats(drm.p, drv.p, omean.p, oinv.p, C, eps);
    check_exact(omean.get(), want_mean, "eval mean");
    check_exact(oinv.get(), want_inv, "eval invstd");  // IEEE division and square root on both
    cuda::batch_norm_update_running(drm.p, drv.p, dmean.p, dvar.p, C, momentum);
    check_close(drm.get(), want_m, "running mean", 1e-6, 1e-7);
    check_close(drv.get(), want_v, "running var", 1e-6, 1e-7);
  }
}

TEST_SUITE_END();

#ifdef CUDASIM
// A launch the device refuses (here: the simulator's check of a host pointer, which a GPU reports as
// an illegal address) throws CudaError naming the kernel, its shapes and the CUDA error.
TEST_CASE("a failed launch is a CudaError that names the kernel, the shapes and the CUDA error") {
  const cudasim::Config saved = cudasim::config();
  cudasim::config().quiet = true;
  std::vector<float> host(12);
  std::string message;
  try {
    cuda::sum_mid(host.data(), host.data(), 3, 2, 2);
  } catch (const cuda::CudaError& e) {
    message = e.what();
  }
  cudasim::config() = saved;
  cudasim::reset();  // the fault is sticky, as on a GPU
  CHECK(message.find("sum_mid on [outer, R, inner] = [3, 2, 2]") != std::string::npos);
  CHECK(message.find("cudaErrorIllegalAddress") != std::string::npos);
}
#endif
