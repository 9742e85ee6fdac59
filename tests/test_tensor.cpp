// Tensors: creation, views that share storage, copies only when the layout needs them, strided
// reads, shape errors that name the shapes, and the deterministic random numbers and initialisers.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include "autograd/ops.h"
#include "tensor/rng.h"

using namespace ahmsa;

namespace {

Tensor iota(const Shape& s) {  // 0, 1, 2, ... in row-major order
  std::vector<float> v(size_t(shape_numel(s)));
  std::iota(v.begin(), v.end(), 0.f);
  return Tensor::from_vector(s, v);
}

bool same_storage(const Tensor& a, const Tensor& b) { return a.impl().storage == b.impl().storage; }

// Runs fn, expects it to throw E, returns the message.
template <class E, class F>
std::string message_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return "";
}

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s / double(v.size());
}
double std_of(const std::vector<float>& v) {
  double m = mean_of(v), s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}

}  // namespace

TEST_CASE("creation, inspection and shape strings") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.strides() == Shape{3, 1});
  CHECK(z.numel() == 6);
  CHECK(z.dim() == 2);
  CHECK(z.size(-1) == 3);
  CHECK(z.is_contiguous());
  CHECK(z.to_vector() == std::vector<float>(6, 0.f));
  CHECK(Tensor::ones({4}).to_vector() == std::vector<float>(4, 1.f));
  CHECK(Tensor::full({2, 2}, 2.5f).to_vector() == std::vector<float>(4, 2.5f));
  Tensor s = Tensor::scalar(3.f);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.f);
  CHECK(shape_str({2, 3, 28, 28}) == "[2, 3, 28, 28]");
  CHECK(shape_str({}) == "[]");
  CHECK(contiguous_strides({2, 3, 4}) == Shape{12, 4, 1});
  // CPU storage is 64-byte aligned for the vector kernels
  CHECK(reinterpret_cast<uintptr_t>(Tensor::empty({7}).data()) % 64 == 0);

  CHECK(message_of<ShapeError>([] { Tensor::from_vector({2, 3}, {1, 2, 3}); }).find("[2, 3]") != std::string::npos);
  CHECK(message_of<ShapeError>([] { Tensor::zeros({2, -1}); }).find("[2, -1]") != std::string::npos);
  CHECK(message_of<ShapeError>([] { Tensor::zeros({2, 3}).item(); }).find("[2, 3]") != std::string::npos);
  CHECK_THROWS_AS(z.size(2), ShapeError);
  CHECK_THROWS_AS(Tensor().shape(), std::logic_error);
  CHECK(wrap_dim(-1, 3, "t") == 2);
  CHECK(message_of<ShapeError>([] { wrap_dim(3, 3, "myop"); }).find("myop") != std::string::npos);
}

TEST_CASE("views share storage and see writes through the base") {
  Tensor x = iota({2, 3, 4});
  Tensor r = x.reshape({6, 4});
  Tensor p = x.permute({2, 0, 1});
  Tensor t = x.transpose(0, 2);
  Tensor n = x.narrow(1, 1, 2);
  Tensor u = x.unsqueeze(1);
  for (const Tensor* v : {&r, &p, &t, &n, &u}) CHECK(same_storage(*v, x));

  CHECK(r.shape() == Shape{6, 4});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK_FALSE(p.is_contiguous());
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(n.shape() == Shape{2, 2, 4});
  CHECK(n.offset() == 4);
  CHECK_FALSE(n.is_contiguous());
  CHECK(u.shape() == Shape{2, 1, 3, 4});
  CHECK(u.is_contiguous());

  x.data()[13] = 100.f;  // element [1, 0, 1]
  CHECK(r.to_vector()[13] == 100.f);
  CHECK(p.to_vector()[1 * 6 + 1 * 3 + 0] == 100.f);  // p[1, 1, 0] = x[1, 0, 1]
  CHECK(n.to_vector()[8 + 1] != 100.f);              // n[1, 0, 1] = x[1, 1, 1] = 17
  CHECK(n.to_vector()[8 + 1] == 17.f);
  // a size-1 dimension's stride does not matter for contiguity
  CHECK(x.narrow(0, 1, 1).is_contiguous());
  CHECK(x.narrow(0, 1, 1).data() == x.data() + 12);
}

TEST_CASE("to_vector reads strided views in logical order") {
  Tensor x = iota({2, 3, 4});
  // permute: p[i, j, k] = x[j, k, i] = 12 j + 4 k + i
  auto pv = x.permute({2, 0, 1}).to_vector();
  std::vector<float> expect;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) expect.push_back(float(12 * j + 4 * k + i));
  CHECK(pv == expect);
  // narrow in the middle, then transpose the result: a view with an offset and no unit stride
  Tensor v = x.narrow(1, 1, 2).transpose(1, 2);  // [2, 4, 2], v[a, b, c] = x[a, 1 + c, b]
  expect.clear();
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 2; ++c) expect.push_back(float(12 * a + 4 * (1 + c) + b));
  CHECK(v.to_vector() == expect);
  // narrow on the last dim
  CHECK(x.narrow(2, 3, 1).to_vector() == std::vector<float>{3, 7, 11, 15, 19, 23});
  CHECK(x.narrow(2, 0, 0).numel() == 0);
  CHECK(x.narrow(2, 0, 0).to_vector().empty());
  CHECK(message_of<ShapeError>([&] { x.narrow(1, 2, 2); }).find("[2, 3, 4]") != std::string::npos);
}

// Permuted copies as AHMSA-Net's window partition makes them (it reads [N, C, g, w, g, w] as
// [N, g, g, w, w, C]: a strided last dim), with odd sizes, several outer dims and a narrowed source,
// checked element by element against the index formula.
TEST_CASE("to_vector of permuted views equals the element-wise definition") {
  const Shape shape = {2, 5, 3, 11, 3, 9};
  Tensor x = iota(shape);
  const Shape cs = {5 * 3 * 11 * 3 * 9, 3 * 11 * 3 * 9, 11 * 3 * 9, 3 * 9, 9, 1};  // x's strides
  for (const std::vector<int64_t>& perm : {std::vector<int64_t>{0, 2, 4, 3, 5, 1}, std::vector<int64_t>{5, 1, 0, 2, 3, 4},
                                           std::vector<int64_t>{0, 1, 2, 3, 5, 4}}) {
    const auto got = x.permute(perm).to_vector();
    std::vector<float> expect;
    std::vector<int64_t> idx(6, 0);  // multi-index over the permuted shape
    for (int64_t flat = 0; flat < x.numel(); ++flat) {
      int64_t src = 0;
      for (int d = 0; d < 6; ++d) src += idx[d] * cs[perm[d]];
      expect.push_back(float(src));
      for (int d = 5; d >= 0; --d) {
        if (++idx[d] < shape[perm[d]]) break;
        idx[d] = 0;
      }
    }
    INFO("permutation " << perm[0] << perm[1] << perm[2] << perm[3] << perm[4] << perm[5]);
    CHECK(got == expect);
  }
  // a narrowed source (offset, and the contiguous dim not starting at 0)
  Tensor y = iota({4, 13, 10}).narrow(2, 1, 8).narrow(1, 2, 10).permute({0, 2, 1});  // [4, 8, 10]
  std::vector<float> expect;
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 8; ++b)
      for (int c = 0; c < 10; ++c) expect.push_back(float(a * 130 + (2 + c) * 10 + (1 + b)));
  CHECK(y.to_vector() == expect);
}

TEST_CASE("contiguous copies only when needed; reshape copies a non-contiguous view") {
  Tensor x = iota({3, 4});
  CHECK(same_storage(x.contiguous(), x));
  Tensor t = x.transpose(0, 1);
  Tensor tc = t.contiguous();
  CHECK_FALSE(same_storage(tc, x));
  CHECK(tc.is_contiguous());
  CHECK(tc.to_vector() == t.to_vector());
  // reshape of a transposed view must copy (no stride pattern expresses it) and keep values
  Tensor r = t.reshape({2, 6});
  CHECK_FALSE(same_storage(r, x));
  CHECK(r.to_vector() == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  Tensor r2 = x.reshape({-1});
  CHECK(same_storage(r2, x));
  CHECK(r2.shape() == Shape{12});
  CHECK(x.reshape({2, -1, 3}).shape() == Shape{2, 2, 3});
  CHECK(message_of<ShapeError>([&] { x.reshape({5, -1}); }).find("[3, 4]") != std::string::npos);
  CHECK(message_of<ShapeError>([&] { x.reshape({5, 3}); }).find("[5, 3]") != std::string::npos);
  CHECK_THROWS_AS(x.reshape({-1, -1}), ShapeError);
  CHECK_THROWS_AS(x.permute({0, 0}), ShapeError);
  CHECK_THROWS_AS(x.permute({0}), ShapeError);

  // clone is always a fresh copy; copy_ reads strided sources; fill_ refuses a strided view
  Tensor c = x.clone();
  CHECK_FALSE(same_storage(c, x));
  c.data()[0] = -1.f;
  CHECK(x.data()[0] == 0.f);
  Tensor dst = Tensor::zeros({4, 3});
  dst.copy_(t);
  CHECK(dst.to_vector() == t.to_vector());
  CHECK_THROWS_AS(dst.copy_(x), ShapeError);
  CHECK_THROWS_AS(t.fill_(1.f), ShapeError);
  // detach shares storage and drops history
  Tensor d = x.detach();
  CHECK(same_storage(d, x));
  CHECK_FALSE(d.requires_grad());
}

TEST_CASE("broadcasting: results, and errors that name the op and both shapes") {
  Tensor a = iota({2, 3, 1});
  Tensor b = Tensor::from_vector({1, 1, 4}, {0, 10, 20, 30});
  Tensor y = add(a, b);
  CHECK(y.shape() == Shape{2, 3, 4});
  CHECK(y.to_vector()[size_t(1 * 12 + 2 * 4 + 3)] == 5.f + 30.f);
  CHECK(mul(Tensor::scalar(2.f), iota({3})).to_vector() == std::vector<float>{0, 2, 4});
  CHECK(sub(iota({3}), iota({2, 3})).shape() == Shape{2, 3});
  // broadcasting a strided view
  Tensor t = iota({3, 2}).transpose(0, 1);  // [2, 3]
  CHECK(add(t, Tensor::from_vector({3}, {100, 200, 300})).to_vector() ==
        std::vector<float>{100, 202, 304, 101, 203, 305});

  std::string m = message_of<ShapeError>([] { add(Tensor::zeros({2, 3}), Tensor::zeros({4})); });
  CHECK(m.find("add") != std::string::npos);
  CHECK(m.find("[2, 3]") != std::string::npos);
  CHECK(m.find("[4]") != std::string::npos);
  m = message_of<ShapeError>([] { mul(Tensor::zeros({5, 2, 3}), Tensor::zeros({4, 1, 3})); });
  CHECK(m.find("mul") != std::string::npos);
  CHECK(m.find("[5, 2, 3]") != std::string::npos);
  CHECK(m.find("[4, 1, 3]") != std::string::npos);
  m = message_of<ShapeError>([] { matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})); });
  CHECK(m.find("matmul") != std::string::npos);
  CHECK(m.find("[2, 3]") != std::string::npos);
  CHECK(m.find("[4, 5]") != std::string::npos);
  m = message_of<ShapeError>([] { conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({4, 2, 3, 3}), Tensor()); });
  CHECK(m.find("[1, 3, 8, 8]") != std::string::npos);
  CHECK(m.find("[4, 2, 3, 3]") != std::string::npos);
}

TEST_CASE("RNG: same seed same stream, fixed reference values, sane moments") {
  // Reference values: splitmix64-seeded xoshiro256**, computed independently (Python, 64-bit ints).
  Generator g0(0);
  CHECK(g0.next_u64() == 0x99ec5f36cb75f2b4ull);
  CHECK(g0.next_u64() == 0xbf6e1f784956452aull);
  CHECK(g0.next_u64() == 0x1a5f849d4933e6e0ull);
  Generator g1(12345);
  CHECK(g1.next_u64() == 0xbe6a36374160d49bull);

  Generator a(42), b(42), c(43);
  bool all_same = true, any_diff_c = false;
  for (int i = 0; i < 1000; ++i) {
    uint64_t va = a.next_u64();
    all_same &= va == b.next_u64();
    any_diff_c |= va != c.next_u64();
  }
  CHECK(all_same);
  CHECK(any_diff_c);
  // manual_seed restarts the stream, including the cached Box-Muller spare
  Generator d(7);
  float n0 = d.normal(), n1 = d.normal();
  d.normal();  // leaves a spare behind
  d.manual_seed(7);
  CHECK(d.normal() == n0);
  CHECK(d.normal() == n1);

  // 1e5 draws: standard errors are 0.003 (normal mean), 0.0022 (normal std), 0.0009 (uniform mean);
  // the bounds below are ≥ 4 standard errors.
  const int n = 100000;
  Generator g(2024);
  std::vector<float> normals(n), uniforms(n);
  for (auto& v : normals) v = g.normal();
  for (auto& v : uniforms) v = g.uniform();
  CHECK(std::fabs(mean_of(normals)) < 0.013);
  CHECK(std::fabs(std_of(normals) - 1.0) < 0.01);
  CHECK(std::fabs(mean_of(uniforms) - 0.5) < 0.004);
  CHECK(std::fabs(std_of(uniforms) - std::sqrt(1.0 / 12)) < 0.003);
  CHECK(*std::min_element(uniforms.begin(), uniforms.end()) >= 0.f);
  CHECK(*std::max_element(uniforms.begin(), uniforms.end()) < 1.f);
  // the tails exist but are not absurd: P(|z| > 3) = 0.27 %
  int beyond3 = int(std::count_if(normals.begin(), normals.end(), [](float z) { return std::fabs(z) > 3.f; }));
  CHECK(beyond3 > 170);
  CHECK(beyond3 < 370);
  // below(n): in range, every value hit, roughly uniform
  std::vector<int> hist(8, 0);  // hist[7] counts out-of-range draws
  for (int i = 0; i < 70000; ++i) hist[std::min<uint32_t>(g.below(7), 7)]++;
  CHECK(hist[7] == 0);
  hist.pop_back();
  for (int h : hist) CHECK(std::abs(h - 10000) < 500);
}

TEST_CASE("initialisers: uniform/normal/trunc_normal, kaiming and xavier bounds") {
  Generator g(1);
  Tensor u = Tensor::empty({20000});
  uniform_(u, -2.f, 3.f, g);
  auto uv = u.to_vector();
  CHECK(*std::min_element(uv.begin(), uv.end()) >= -2.f);
  CHECK(*std::max_element(uv.begin(), uv.end()) < 3.f);
  CHECK(std::fabs(mean_of(uv) - 0.5) < 0.05);

  Tensor nrm = Tensor::empty({20000});
  normal_(nrm, 1.f, 0.5f, g);
  CHECK(std::fabs(mean_of(nrm.to_vector()) - 1.0) < 0.015);
  CHECK(std::fabs(std_of(nrm.to_vector()) - 0.5) < 0.01);

  // trunc_normal_ (bounds are absolute): N(0, 1) cut at ±2 has variance
  // 1 − 2·2·φ(2)/(Φ(2) − Φ(−2)) = 0.7737, and every value lies inside.
  Tensor tn = Tensor::empty({50000});
  trunc_normal_(tn, 0.f, 1.f, -2.f, 2.f, g);
  auto tv = tn.to_vector();
  CHECK(*std::min_element(tv.begin(), tv.end()) >= -2.f);
  CHECK(*std::max_element(tv.begin(), tv.end()) <= 2.f);
  CHECK(std::fabs(mean_of(tv)) < 0.02);
  CHECK(std::fabs(std_of(tv) * std_of(tv) - 0.7737) < 0.015);
  // the ViT-style use: std 0.02 within [−2, 2] is effectively untruncated
  Tensor tn2 = Tensor::empty({20000});
  trunc_normal_(tn2, 0.f, 0.02f, -2.f, 2.f, g);
  CHECK(std::fabs(std_of(tn2.to_vector()) - 0.02) < 0.0005);
  // an asymmetric window
  Tensor tn3 = Tensor::empty({5000});
  trunc_normal_(tn3, 0.5f, 1.f, 0.f, 1.f, g);
  auto t3 = tn3.to_vector();
  CHECK(*std::min_element(t3.begin(), t3.end()) >= 0.f);
  CHECK(*std::max_element(t3.begin(), t3.end()) <= 1.f);

  // fans: conv weight [out, in, kh, kw]
  Tensor w = Tensor::empty({64, 32, 3, 3});
  CHECK(fan_in(w) == 288);
  CHECK(fan_out(w) == 576);
  CHECK_THROWS_AS(fan_in(Tensor::empty({5})), ShapeError);

  // kaiming_uniform_(a = √5): U(±1/√fan_in); the extremes come close to the bound
  kaiming_uniform_default_(w, g);
  auto wv = w.to_vector();
  float bound = 1.f / std::sqrt(288.f);
  float wmax = 0;
  for (float v : wv) wmax = std::max(wmax, std::fabs(v));
  CHECK(wmax <= bound);
  CHECK(wmax > 0.99f * bound);
  CHECK(std::fabs(std_of(wv) - bound / std::sqrt(3.0)) < 0.02 * bound);

  // kaiming_normal_: std √(2 / fan_in)
  Tensor wk = Tensor::empty({128, 64, 3, 3});
  kaiming_normal_(wk, g);
  CHECK(std::fabs(std_of(wk.to_vector()) / std::sqrt(2.0 / 576) - 1.0) < 0.02);
  CHECK(std::fabs(mean_of(wk.to_vector())) < 0.02 * std::sqrt(2.0 / 576));  // 5 standard errors

  // xavier_uniform_: U(±√(6 / (fan_in + fan_out))) for a Linear weight [out, in]
  Tensor wx = Tensor::empty({200, 300});
  xavier_uniform_(wx, g);
  float xb = std::sqrt(6.f / 500.f);
  float xmax = 0;
  for (float v : wx.to_vector()) xmax = std::max(xmax, std::fabs(v));
  CHECK(xmax <= xb);
  CHECK(xmax > 0.99f * xb);
  CHECK(std::fabs(std_of(wx.to_vector()) - xb / std::sqrt(3.0)) < 0.02 * xb);

  // initialisers want contiguous CPU tensors
  Tensor view = Tensor::zeros({4, 4}).transpose(0, 1);
  CHECK_THROWS_AS(uniform_(view, 0.f, 1.f, g), ShapeError);
  // the same seed initialises identically
  Generator ga(5), gb(5);
  Tensor wa = Tensor::empty({8, 3, 3, 3}), wb = Tensor::empty({8, 3, 3, 3});
  kaiming_uniform_default_(wa, ga);
  kaiming_uniform_default_(wb, gb);
  CHECK(wa.to_vector() == wb.to_vector());
}

TEST_CASE("shape_numel refuses a shape whose element count overflows 64 bits, naming it") {
  CHECK(shape_numel({}) == 1);
  CHECK(shape_numel({0, int64_t(1) << 62, 8}) == 0);  // a zero extent: no overflow
  CHECK(shape_numel({int64_t(1) << 31, int64_t(1) << 31}) == int64_t(1) << 62);
  // 2^62 * 3 * 28 * 28 wraps (to a small positive count) with unchecked multiplication
  const Shape big = {int64_t(1) << 62, 3, 28, 28};
  try {
    shape_numel(big);
    FAIL("accepted an overflowing shape");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) == "shape [4611686018427387904, 3, 28, 28] has more elements than a 64-bit count can hold");
  }
  CHECK_THROWS_AS(Tensor::empty({int64_t(1) << 40, int64_t(1) << 40}), ShapeError);
}
