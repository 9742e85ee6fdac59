// The memory, scatter, BatchNorm-statistics, dropout, loss and optimiser kernels of tensor/kernels.h,
// called through the dispatch layer (tt::, on the CPU) and compared with straightforward loops.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "autograd/ops.h"
#include "tensor/backend.h"
#include "tensor/buffer.h"
#include "tensor/counter_rng.h"
#include "tensor/rng.h"

using namespace ahmsa;

namespace {

const Device cpu_dev = Device::CPU;

std::vector<float> random_values(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Generator g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = g.uniform(lo, hi);
  return v;
}

}  // namespace

TEST_CASE("strided_copy of odd, permuted, narrowed 6-d views equals the index formula") {
  // A base [3,5,2,7,4,3] permuted to (4,0,5,2,1,3), then narrowed on two dims: no two neighbours fold.
  const Shape base{3, 5, 2, 7, 4, 3};
  std::vector<float> values(size_t(shape_numel(base)));
  std::iota(values.begin(), values.end(), 0.f);
  Tensor t = Tensor::from_vector(base, values);
  Tensor v = t.permute({4, 0, 5, 2, 1, 3}).narrow(1, 1, 2).narrow(5, 2, 4);  // [4,2,3,2,5,4]
  REQUIRE(v.shape() == Shape{4, 2, 3, 2, 5, 4});
  REQUIRE_FALSE(v.is_contiguous());
  tt::StridedView view = tt::strided_view(v);
  CHECK(view.ndim == 6);
  std::vector<float> got(size_t(v.numel()), -1.f);
  tt::strided_copy(cpu_dev, v.data(), view, got.data());
  // Element (i0..i5) of the view is base[i1+1, i4, i3, i5+2, i0, i2] (the permutation, then the offsets).
  const Shape bs = contiguous_strides(base);
  size_t k = 0, wrong = 0;
  for (int64_t i0 = 0; i0 < 4; ++i0)
    for (int64_t i1 = 0; i1 < 2; ++i1)
      for (int64_t i2 = 0; i2 < 3; ++i2)
        for (int64_t i3 = 0; i3 < 2; ++i3)
          for (int64_t i4 = 0; i4 < 5; ++i4)
            for (int64_t i5 = 0; i5 < 4; ++i5, ++k) {
              int64_t flat = (i1 + 1) * bs[0] + i4 * bs[1] + i3 * bs[2] + (i5 + 2) * bs[3] + i0 * bs[4] + i2 * bs[5];
              wrong += got[k] != values[size_t(flat)];
            }
  CHECK(k == got.size());
  CHECK(wrong == 0);
  // Tensor-level copies go the same way, and keep the values.
  CHECK(v.contiguous_nograd().to_vector() == got);
  CHECK(v.to(Device::CPU).to_vector() == got);
}

TEST_CASE("strided_view folds dimensions that step through memory as one") {
  Tensor t = Tensor::zeros({2, 3, 4, 5});
  tt::StridedView full = tt::strided_view(t);
  CHECK(full.ndim == 1);
  CHECK(full.shape[0] == 120);
  tt::StridedView part = tt::strided_view(t.narrow(2, 1, 2));  // rows of 2·5 inside rows of 4·5
  CHECK(part.ndim == 2);
  CHECK(part.shape[0] == 6);
  CHECK(part.shape[1] == 10);
  CHECK(part.strides[0] == 20);
  // More than kMaxDims dimensions is fine when they fold, an error naming the view when they do not.
  Tensor deep = Tensor::zeros({1, 2, 1, 2, 1, 2, 1, 2, 1, 2});
  CHECK(tt::strided_view(deep).ndim == 1);
  Tensor twisted = Tensor::zeros({2, 2, 2, 2, 2, 2, 2, 2, 2}).permute({8, 7, 6, 5, 4, 3, 2, 1, 0});
  CHECK_THROWS_WITH_AS(tt::strided_view(twisted), doctest::Contains("folds to 9 dimensions"), ShapeError);
}

TEST_CASE("fill and add_inplace") {
  std::vector<float> y(70001, 3.f);
  tt::fill(cpu_dev, y.data(), int64_t(y.size()) - 1, -2.5f);
  CHECK(y.front() == -2.5f);
  CHECK(y[y.size() - 2] == -2.5f);
  CHECK(y.back() == 3.f);  // n elements only
  std::vector<float> dst = random_values(50003, 1), src = random_values(50003, 2), want(dst.size());
  for (size_t i = 0; i < dst.size(); ++i) want[i] = dst[i] + src[i];
  tt::add_inplace(cpu_dev, dst.data(), src.data(), int64_t(dst.size()));
  CHECK(dst == want);
}

TEST_CASE("max_mid_backward routes each gradient to its argmax and zeroes the rest") {
  const int64_t outer = 3, R = 7, inner = 5;
  std::vector<float> x = random_values(size_t(outer * R * inner), 3);
  std::vector<float> y(size_t(outer * inner)), gy = random_values(size_t(outer * inner), 4);
  std::vector<int32_t> idx(size_t(outer * inner));
  tt::max_mid(cpu_dev, x.data(), y.data(), idx.data(), outer, R, inner);
  std::vector<float> gx(x.size(), 99.f);
  tt::max_mid_backward(cpu_dev, gy.data(), idx.data(), gx.data(), outer, R, inner);
  size_t routed = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;  // the reference argmax (first on ties)
      for (int64_t r = 1; r < R; ++r)
        if (x[size_t((o * R + r) * inner + i)] > x[size_t((o * R + best) * inner + i)]) best = r;
      CHECK(idx[size_t(o * inner + i)] == best);
      for (int64_t r = 0; r < R; ++r) {
        float want = r == best ? gy[size_t(o * inner + i)] : 0.f;
        routed += gx[size_t((o * R + r) * inner + i)] == want;
      }
    }
  CHECK(routed == gx.size());
}

TEST_CASE("BatchNorm running statistics and eval statistics") {
  const int64_t C = 6;
  const float m = 0.1f, eps = 1e-5f;
  std::vector<float> rm = random_values(C, 5), rv = random_values(C, 6, 0.5f, 2.f);
  std::vector<float> mean = random_values(C, 7), var = random_values(C, 8, 0.1f, 3.f);
  std::vector<float> want_m(C), want_v(C);
  for (int64_t c = 0; c < C; ++c) {
    want_m[c] = (1 - m) * rm[c] + m * mean[c];
    want_v[c] = (1 - m) * rv[c] + m * var[c];
  }
  tt::batch_norm_update_running(cpu_dev, rm.data(), rv.data(), mean.data(), var.data(), C, m);
  CHECK(rm == want_m);
  CHECK(rv == want_v);
  std::vector<float> em(C), is(C);
  tt::batch_norm_eval_stats(cpu_dev, rm.data(), rv.data(), em.data(), is.data(), C, eps);
  for (int64_t c = 0; c < C; ++c) {
    CHECK(em[c] == rm[c]);
    CHECK(is[c] == doctest::Approx(1.0 / std::sqrt(double(rv[c]) + eps)).epsilon(1e-6));
  }
}

TEST_CASE("BatchNorm in training updates the running statistics with the unbiased batch variance") {
  const int64_t N = 3, C = 2, H = 2, W = 3;
  std::vector<float> xv = random_values(size_t(N * C * H * W), 9, -2.f, 2.f);
  Tensor x = Tensor::from_vector({N, C, H, W}, xv);
  Tensor w = Tensor::ones({C}), b = Tensor::zeros({C});
  Tensor rm = Tensor::from_vector({C}, {0.5f, -1.f}), rv = Tensor::from_vector({C}, {2.f, 1.f});
  std::vector<float> rm0 = rm.to_vector(), rv0 = rv.to_vector();
  batch_norm2d(x, w, b, rm, rv, true, 0.1f, 1e-5f);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    const double M = double(N * H * W);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < H * W; ++i) s += xv[size_t((n * C + c) * H * W + i)];
    double mu = s / M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < H * W; ++i) ss += std::pow(xv[size_t((n * C + c) * H * W + i)] - mu, 2);
    CHECK(rm.to_vector()[c] == doctest::Approx(0.9 * rm0[c] + 0.1 * mu).epsilon(1e-6));
    CHECK(rv.to_vector()[c] == doctest::Approx(0.9 * rv0[c] + 0.1 * ss / (M - 1)).epsilon(1e-6));
  }
}

TEST_CASE("dropout_mask: a pure function of seed and offset, with the drop rate p") {
  const int64_t n = 100000;
  const float p = 0.3f, scale = 1.f / (1.f - p);
  std::vector<float> a(n), b(n), c(n);
  tt::dropout_mask(cpu_dev, a.data(), n, p, 42, 1000);
  tt::dropout_mask(cpu_dev, b.data(), n, p, 42, 1000);
  CHECK(a == b);  // same seed and offset: the same mask
  tt::dropout_mask(cpu_dev, c.data(), n, p, 43, 1000);
  CHECK(a != c);  // another seed: another mask
  int64_t zeros = 0, bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    zeros += a[i] == 0.f;
    bad += a[i] != 0.f && a[i] != scale;
    bad += a[i] != (counter_uniform(42, uint64_t(1000 + i)) < p ? 0.f : scale);  // the documented rule
  }
  CHECK(bad == 0);
  // Binomial(n, p): the standard deviation of the fraction is sqrt(p(1-p)/n) = 0.00145; allow 5 of them.
  const double frac = double(zeros) / double(n);
  MESSAGE("fraction of zeros " << frac << " for p = " << p);
  CHECK(std::abs(frac - p) < 5 * std::sqrt(p * (1 - p) / double(n)));
  // Two calls at consecutive offsets equal one long call.
  std::vector<float> head(40000), tail(60000);
  tt::dropout_mask(cpu_dev, head.data(), 40000, p, 42, 1000);
  tt::dropout_mask(cpu_dev, tail.data(), 60000, p, 42, 1000 + 40000);
  head.insert(head.end(), tail.begin(), tail.end());
  CHECK(head == a);
}

TEST_CASE("dropout draws consecutive counter blocks from the generator") {
  Tensor x = Tensor::ones({10, 10});
  Generator g1(7), g2(7);
  Tensor first = dropout(x, 0.5f, true, g1), second = dropout(x, 0.5f, true, g1);
  auto b1 = g2.counter_block(100), b2 = g2.counter_block(100);
  CHECK(b1.seed == 7);
  CHECK(b1.offset == 0);
  CHECK(b2.offset == 100);
  std::vector<float> m1(100), m2(100);
  tt::dropout_mask(cpu_dev, m1.data(), 100, 0.5f, b1.seed, b1.offset);
  tt::dropout_mask(cpu_dev, m2.data(), 100, 0.5f, b2.seed, b2.offset);
  CHECK(first.to_vector() == m1);  // x is ones: the output is the mask
  CHECK(second.to_vector() == m2);
  CHECK(m1 != m2);
  g2.manual_seed(7);  // reseeding restarts the counter stream
  CHECK(g2.counter_block(5).offset == 0);
}

TEST_CASE("cross_entropy writes the loss into memory; int32 targets") {
  const int64_t N = 4, K = 3;
  std::vector<float> z = random_values(size_t(N * K), 10, -3.f, 3.f), wc = {0.5f, 2.f, 1.f};
  std::vector<int32_t> t = {2, 0, 1, 1};
  for (float eps : {0.f, 0.1f}) {
    CAPTURE(eps);
    float loss = -1.f;
    std::vector<float> dz(size_t(N * K));
    tt::cross_entropy(cpu_dev, z.data(), t.data(), wc.data(), N, K, eps, &loss, dz.data());
    double total = 0, norm = 0;
    std::vector<double> want_dz(dz.size());
    for (int64_t n = 0; n < N; ++n) {
      double mx = -1e30, s = 0, wq = 0;
      for (int64_t k = 0; k < K; ++k) mx = std::max(mx, double(z[size_t(n * K + k)]));
      for (int64_t k = 0; k < K; ++k) s += std::exp(z[size_t(n * K + k)] - mx);
      for (int64_t k = 0; k < K; ++k) {
        double q = (k == t[n] ? 1 - eps : 0) + eps / K;
        total -= wc[k] * q * (z[size_t(n * K + k)] - mx - std::log(s));
        wq += wc[k] * q;
      }
      for (int64_t k = 0; k < K; ++k) {  // ∂l_n/∂z_k = (Σ_j w_j q_j) p_k − w_k q_k
        double q = (k == t[n] ? 1 - eps : 0) + eps / K, pk = std::exp(z[size_t(n * K + k)] - mx) / s;
        want_dz[size_t(n * K + k)] = wq * pk - wc[k] * q;
      }
      norm += wc[size_t(t[n])];
    }
    CHECK(loss == doctest::Approx(total / norm).epsilon(1e-5));
    for (size_t i = 0; i < dz.size(); ++i) CHECK(dz[i] == doctest::Approx(want_dz[i] / norm).epsilon(1e-5));
  }
}

TEST_CASE("IntBuffer holds int32 values on a device") {
  IntBuffer b = IntBuffer::upload({3, -1, 7, 2147483647}, Device::CPU);
  CHECK(b.size() == 4);
  CHECK(b.device() == Device::CPU);
  CHECK(b.to_vector() == std::vector<int32_t>{3, -1, 7, 2147483647});
  IntBuffer moved = std::move(b);
  CHECK(b.data() == nullptr);
  CHECK(moved.to_vector()[2] == 7);
}

// The loops the optimisers ran before the update became one kernel call (train/optim/optim.cpp).
TEST_CASE("sgd_update and adam_update over a ParamList equal the per-parameter loops") {
  std::vector<float> a0 = random_values(37, 11), b0 = random_values(5, 12), c0 = random_values(9, 13);
  std::vector<float> ga = random_values(37, 14), gc = random_values(9, 15);
  auto list = [&](std::vector<float>& a, std::vector<float>& b, std::vector<float>& c) {
    tt::ParamList p;
    p.theta = {a.data(), b.data(), c.data()};
    p.grad = {ga.data(), nullptr, gc.data()};  // b has no gradient: skipped
    p.numel = {37, 5, 9};
    p.offset = {0, 37, 42};
    return p;
  };
  const std::vector<std::vector<float>*> grads = {&ga, nullptr, &gc};
  SUBCASE("SGD with momentum, weight decay and Nesterov, three steps") {
    for (bool nesterov : {false, true}) {
      std::vector<float> a = a0, b = b0, c = c0, ra = a0, rb = b0, rc = c0, v(51, 0.f), rv(51, 0.f);
      const float lr = 0.05f, mu = 0.9f, wd = 0.01f;
      for (int t = 1; t <= 3; ++t) {
        tt::sgd_update(cpu_dev, list(a, b, c), v.data(), lr, mu, wd, nesterov, t == 1);
        std::vector<float>* ref[3] = {&ra, &rb, &rc};
        const int64_t off[3] = {0, 37, 42};
        for (int k = 0; k < 3; ++k) {
          if (!grads[size_t(k)]) continue;
          std::vector<float>& th = *ref[k];
          for (size_t j = 0; j < th.size(); ++j) {
            float d = (*grads[size_t(k)])[j] + wd * th[j];
            float& vj = rv[size_t(off[k]) + j];
            vj = t == 1 ? d : mu * vj + d;
            d = nesterov ? d + mu * vj : vj;
            th[j] -= lr * d;
          }
        }
      }
      CHECK(a == ra);
      CHECK(b == b0);
      CHECK(c == rc);
      CHECK(v == rv);
    }
  }
  SUBCASE("Adam and AdamW, three steps") {
    for (bool decoupled : {false, true}) {
      std::vector<float> a = a0, b = b0, c = c0, ra = a0, rc = c0, m(51, 0.f), v(51, 0.f), rm(51, 0.f), rv(51, 0.f);
      const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
      for (int64_t t = 1; t <= 3; ++t) {
        tt::adam_update(cpu_dev, list(a, b, c), m.data(), v.data(), lr, b1, b2, eps, wd, decoupled, t);
        const float bc1 = 1.f - std::pow(b1, float(t)), bc2 = 1.f - std::pow(b2, float(t));
        const float step = lr / bc1, bc2s = std::sqrt(bc2);
        std::vector<float>* ref[3] = {&ra, nullptr, &rc};
        const int64_t off[3] = {0, 37, 42};
        for (int k = 0; k < 3; ++k) {
          if (!grads[size_t(k)]) continue;
          std::vector<float>& th = *ref[k];
          for (size_t j = 0; j < th.size(); ++j) {
            float g = (*grads[size_t(k)])[j];
            if (decoupled)
              th[j] *= 1.f - lr * wd;
            else
              g += wd * th[j];
            float& mj = rm[size_t(off[k]) + j];
            float& vj = rv[size_t(off[k]) + j];
            mj = b1 * mj + (1.f - b1) * g;
            vj = b2 * vj + (1.f - b2) * g * g;
            th[j] -= step * mj / (std::sqrt(vj) / bc2s + eps);
          }
        }
      }
      CHECK(a == ra);
      CHECK(b == b0);
      CHECK(c == rc);
      CHECK(m == rm);
      CHECK(v == rv);
    }
  }
}
