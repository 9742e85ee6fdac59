// Elementwise kernels with special paths. GELU runs through a vectorised erf/exp on AVX2 machines:
// check it over a dense range against the double-precision formula, including the tails and the
// scalar remainder of odd lengths. ReLU must pass NaN through.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"

using namespace ahmsa;

TEST_CASE("gelu and its derivative match the erf formula to 5e-7 absolute") {
  const int64_t n = 40001;  // odd: the last values go through the scalar path
  std::vector<float> xs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) xs[size_t(i)] = -20.f + 40.f * float(i) / float(n - 1);
  Tensor x = Tensor::from_vector({n}, xs).set_requires_grad();
  Tensor y = gelu(x);
  y.backward(Tensor::ones({n}));
  auto yv = y.to_vector(), gv = x.grad().to_vector();
  double worst_y = 0, worst_g = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = xs[size_t(i)], cdf = 0.5 * (1 + std::erf(v / std::sqrt(2.0)));
    double pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
    worst_y = std::max(worst_y, std::abs(yv[size_t(i)] - v * cdf) / std::max(1.0, std::abs(v)));
    worst_g = std::max(worst_g, std::abs(gv[size_t(i)] - (cdf + v * pdf)) / std::max(1.0, std::abs(v)));
  }
  CHECK(worst_y <= 5e-7);
  CHECK(worst_g <= 5e-7);
}

TEST_CASE("relu lets NaN through (as PyTorch does) so a corrupt input reaches the loss check") {
  Tensor x = Tensor::from_vector({4}, {-1.f, std::nanf(""), 0.f, 2.f});
  auto y = relu(x).to_vector();
  CHECK(y[0] == 0.f);
  CHECK(std::isnan(y[1]));
  CHECK(y[2] == 0.f);
  CHECK(y[3] == 2.f);
}
