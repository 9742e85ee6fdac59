// The fused multi-head attention op against the same maths composed from primitive ops
// (reshape/permute, matmul, softmax), forward and backward, and against finite differences.
#include <doctest/doctest.h>

#include <cmath>

#include "op_registry.h"

using namespace ahmsa;
using ahmsa::testing::rel_error;

// softmax(q kᵀ / sqrt d) v per sequence and head, with the primitive ops.
static Tensor composed_attention(const Tensor& qkv, int64_t heads) {
  int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, d = C / heads;
  Tensor t = qkv.reshape({B, T, 3, heads, d}).permute({2, 0, 3, 1, 4}).reshape({3, B * heads, T, d});
  Tensor q = t.narrow(0, 0, 1).reshape({B * heads, T, d});
  Tensor k = t.narrow(0, 1, 1).reshape({B * heads, T, d});
  Tensor v = t.narrow(0, 2, 1).reshape({B * heads, T, d});
  Tensor p = softmax(matmul(q, k.transpose(1, 2)) * (1.f / std::sqrt(float(d))), -1);
  return matmul(p, v).reshape({B, heads, T, d}).permute({0, 2, 1, 3}).reshape({B, T, C});
}

TEST_CASE("multi_head_attention equals the composed ops, forward and backward") {
  Generator gen(11);
  struct Case { int64_t B, T, heads, d; };
  for (Case c : {Case{2, 5, 2, 4}, Case{3, 49, 2, 32}, Case{1, 16, 8, 32}, Case{4, 1, 1, 3}}) {
    CAPTURE(c.T);
    Tensor x = Tensor::empty({c.B, c.T, 3 * c.heads * c.d});
    normal_(x, 0.f, 1.f, gen);
    Tensor g = Tensor::empty({c.B, c.T, c.heads * c.d});
    normal_(g, 0.f, 1.f, gen);
    Tensor a = x.clone().detach().set_requires_grad(), b = x.clone().detach().set_requires_grad();
    Tensor ya = multi_head_attention(a, c.heads), yb = composed_attention(b, c.heads);
    CHECK(rel_error(ya.to_vector(), yb.to_vector()) <= 1e-5);
    ya.backward(g);
    yb.backward(g);
    CHECK(rel_error(a.grad().to_vector(), b.grad().to_vector()) <= 1e-5);
  }
}

TEST_CASE("multi_head_attention gradient against central differences") {
  Generator gen(12);
  Tensor x = Tensor::empty({2, 6, 3 * 2 * 4});
  normal_(x, 0.f, 1.f, gen);
  Tensor g = Tensor::empty({2, 6, 8});
  normal_(g, 0.f, 1.f, gen);
  x.set_requires_grad();
  multi_head_attention(x, 2).backward(g);
  auto analytic = x.grad().to_vector();
  auto loss = [&](const Tensor& xx) {  // Σ out ⊙ g in double
    NoGradGuard ng;
    auto o = multi_head_attention(xx, 2).to_vector();
    auto gv = g.to_vector();
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += double(o[i]) * gv[i];
    return s;
  };
  const float h = 1e-2f;
  double worst = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    Tensor xp = x.detach().clone(), xm = x.detach().clone();
    xp.data()[i] += h;
    xm.data()[i] -= h;
    double numeric = (loss(xp) - loss(xm)) / (2 * h);
    worst = std::max(worst, std::abs(numeric - analytic[size_t(i)]) / std::max(1.0, std::abs(numeric)));
  }
  CHECK(worst <= 5e-3);  // float32 forward, h = 1e-2: truncation and rounding stay well under this
}

TEST_CASE("multi_head_attention refuses shapes that do not split into heads") {
  Tensor x = Tensor::zeros({2, 5, 10});
  CHECK_THROWS_WITH_AS(multi_head_attention(x, 3), doctest::Contains("multi_head_attention"), ShapeError);
}
