// AhmsaTrace: what a traced forward records is what the forward used (the multi-scale attention's
// output equals z + (z ⊙ ca) ⊙ m with the recorded ca and m; a = sigmoid(mix)), tracing changes no
// logit, ablated parts record nothing, and the input gradient `ahmsa explain` turns into a saliency
// map agrees with finite differences of the logit.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "model/ahmsa_net.h"

using namespace ahmsa;

namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  int64_t count = 1;
  for (auto d : shape) count *= d;
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = g.uniform(-1.f, 1.f);
  return Tensor::from_vector(shape, v);
}
Tensor random_input(int64_t n, int64_t s, uint64_t seed) { return random_tensor({n, 3, s, s}, seed); }

}  // namespace

TEST_CASE("a traced forward gives the same logits and records a, ca, m and each level's output") {
  Generator init(7);
  AhmsaNet net(AhmsaConfig::parse("size=8;stem=8;channels=32,64"), init);
  // Non-zero mix so that a = sigmoid(mix) is not the initial 0.5 everywhere.
  for (auto& [name, t] : net.named_parameters())
    if (name.find(".down.mix") != std::string::npos) {
      std::vector<float> v(size_t(t.numel()));
      for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * float(i) - 1.f;
      t.copy_(Tensor::from_vector(t.shape(), v));
    }
  net.eval();
  NoGradGuard ng;
  Tensor x = random_input(2, 8, 1);
  const std::vector<float> plain = net.forward(x).to_vector();
  AhmsaTrace tr;
  const std::vector<float> traced = net.forward(x, &tr).to_vector();
  REQUIRE(plain.size() == traced.size());
  for (size_t i = 0; i < plain.size(); ++i) CHECK(plain[i] == traced[i]);
  CHECK(tr.logits.to_vector() == traced);
  REQUIRE(tr.levels.size() == 2);
  const int64_t C[2] = {32, 64}, Cin[2] = {8, 32}, s[2] = {4, 2};
  for (int l = 0; l < 2; ++l) {
    CAPTURE(l);
    const auto& lv = tr.levels[size_t(l)];
    REQUIRE(lv.mix_a.defined());
    CHECK(lv.mix_a.shape() == Shape{Cin[l]});
    const std::vector<float> a = lv.mix_a.to_vector();
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(1.0 / (1.0 + std::exp(-(0.1 * double(i) - 1.0)))).epsilon(1e-6));
    CHECK(lv.channel.shape() == Shape{2, C[l]});
    CHECK(lv.spatial.shape() == Shape{2, 1, s[l], s[l]});
    CHECK(lv.output.shape() == Shape{2, C[l], s[l], s[l]});
    for (float v : lv.channel.to_vector()) CHECK((v > 0.f && v < 1.f));
    const std::vector<float> m = lv.spatial.to_vector();
    for (float v : m) CHECK((v > 0.f && v < 1.f));
    // The mask depends on the sample: the two samples' masks differ.
    bool differ = false;
    for (size_t i = 0; i < m.size() / 2; ++i) differ |= m[i] != m[i + m.size() / 2];
    CHECK(differ);
  }
}

TEST_CASE("the recorded ca and m are the ones the multi-scale attention applied: out = z + (z * ca) * m") {
  Generator g(3);
  MultiScaleAttention msa(16, 4, {3, 5}, true, true, g);
  Tensor z = random_tensor({2, 16, 6, 6}, 9);
  NoGradGuard ng;
  AhmsaTrace::Level t;
  const std::vector<float> out = msa.forward(z, &t).to_vector();
  REQUIRE(t.channel.shape() == Shape{2, 16});
  REQUIRE(t.spatial.shape() == Shape{2, 1, 6, 6});
  const std::vector<float> zv = z.to_vector(), ca = t.channel.to_vector(), m = t.spatial.to_vector();
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 16; ++c)
      for (int i = 0; i < 36; ++i) {
        const size_t k = size_t((n * 16 + c) * 36 + i);
        const float expect = zv[k] + zv[k] * ca[size_t(n * 16 + c)] * m[size_t(n * 36 + i)];
        CHECK(out[k] == doctest::Approx(expect).epsilon(1e-5));
      }
}

TEST_CASE("ablated parts record nothing") {
  Generator init(2);
  AhmsaConfig c = AhmsaConfig::parse("size=8;stem=8;channels=32,32;adaptive_down=0;channel_attention=0;spatial_attention=0");
  AhmsaNet net(c, init);
  net.eval();
  NoGradGuard ng;
  AhmsaTrace tr;
  net.forward(random_input(1, 8, 4), &tr);
  REQUIRE(tr.levels.size() == 2);
  for (auto& lv : tr.levels) {
    CHECK_FALSE(lv.mix_a.defined());
    CHECK_FALSE(lv.channel.defined());
    CHECK_FALSE(lv.spatial.defined());
    CHECK(lv.output.defined());
  }
}

TEST_CASE("the input gradient of a logit (the saliency of `ahmsa explain`) matches finite differences") {
  Generator init(11);
  AhmsaNet net(AhmsaConfig::parse("size=8;stem=8;channels=32,32"), init);
  net.eval();
  Tensor x = random_input(1, 8, 5);
  x.set_requires_grad(true);
  const int k = 1;
  sum(net.forward(x).narrow(1, k, 1)).backward();
  const std::vector<float> grad = x.grad().to_vector(), x0 = x.detach().to_vector();
  auto logit = [&](const std::vector<float>& v) {
    NoGradGuard ng;
    return double(net.forward(Tensor::from_vector({1, 3, 8, 8}, v)).to_vector()[k]);
  };
  int checked = 0;
  for (size_t i : {size_t(9), size_t(64 + 27), size_t(128 + 45), size_t(100)}) {
    CAPTURE(i);
    const double h = 2e-3;  // small enough to stay on one side of the ReLU / max kinks here
    std::vector<float> p = x0, q = x0;
    p[i] += float(h), q[i] -= float(h);
    const double fd = (logit(p) - logit(q)) / (2 * h);
    CHECK(std::fabs(double(grad[i]) - fd) <= 0.05 * std::fabs(fd) + 2e-5);
    ++checked;
  }
  CHECK(checked == 4);
}
