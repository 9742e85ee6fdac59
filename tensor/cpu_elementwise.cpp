// Elementwise kernels: unary maps with their derivatives, broadcast binary ops.
#include <cmath>

#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa::cpu {

static constexpr int64_t kGrain = 1 << 14;

void unary_forward(Unary op, const float* x, float* y, int64_t n) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    switch (op) {
      case Unary::Relu:
        for (int64_t i = lo; i < hi; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
        break;
      case Unary::Gelu:  // x Φ(x)
        for (int64_t i = lo; i < hi; ++i) y[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * float(M_SQRT1_2)));
        break;
      case Unary::Sigmoid:
        for (int64_t i = lo; i < hi; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
        break;
      case Unary::Exp:
        for (int64_t i = lo; i < hi; ++i) y[i] = std::exp(x[i]);
        break;
      case Unary::Log:
        for (int64_t i = lo; i < hi; ++i) y[i] = std::log(x[i]);
        break;
      case Unary::Sqrt:
        for (int64_t i = lo; i < hi; ++i) y[i] = std::sqrt(x[i]);
        break;
      case Unary::Square:
        for (int64_t i = lo; i < hi; ++i) y[i] = x[i] * x[i];
        break;
      case Unary::Neg:
        for (int64_t i = lo; i < hi; ++i) y[i] = -x[i];
        break;
    }
  });
}

void unary_backward(Unary op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    switch (op) {
      case Unary::Relu:
        for (int64_t i = lo; i < hi; ++i) gx[i] = x[i] > 0.f ? gy[i] : 0.f;
        break;
      case Unary::Gelu:  // d/dx xΦ(x) = Φ(x) + x φ(x)
        for (int64_t i = lo; i < hi; ++i) {
          float cdf = 0.5f * (1.f + std::erf(x[i] * float(M_SQRT1_2)));
          float pdf = std::exp(-0.5f * x[i] * x[i]) * 0.3989422804014327f;
          gx[i] = gy[i] * (cdf + x[i] * pdf);
        }
        break;
      case Unary::Sigmoid:  // σ(1 − σ)
        for (int64_t i = lo; i < hi; ++i) gx[i] = gy[i] * y[i] * (1.f - y[i]);
        break;
      case Unary::Exp:
        for (int64_t i = lo; i < hi; ++i) gx[i] = gy[i] * y[i];
        break;
      case Unary::Log:
        for (int64_t i = lo; i < hi; ++i) gx[i] = gy[i] / x[i];
        break;
      case Unary::Sqrt:
        for (int64_t i = lo; i < hi; ++i) gx[i] = gy[i] * 0.5f / y[i];
        break;
      case Unary::Square:
        for (int64_t i = lo; i < hi; ++i) gx[i] = gy[i] * 2.f * x[i];
        break;
      case Unary::Neg:
        for (int64_t i = lo; i < hi; ++i) gx[i] = -gy[i];
        break;
    }
  });
}

template <Binary op>
static inline void binary_row(const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n) {
  auto f = [](float p, float q) {
    if constexpr (op == Binary::Add) return p + q;
    if constexpr (op == Binary::Sub) return p - q;
    if constexpr (op == Binary::Mul) return p * q;
    return p / q;
  };
  if (sa == 1 && sb == 1)
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  else if (sa == 1 && sb == 0) {
    float q = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], q);
  } else if (sa == 0 && sb == 1) {
    float p = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(p, b[i]);
  } else
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i * sa], b[i * sb]);
}

template <Binary op>
static void binary_impl(const float* a, const std::vector<int64_t>& sa, const float* b,
                        const std::vector<int64_t>& sb, float* y, const std::vector<int64_t>& shape) {
  int64_t nd = int64_t(shape.size());
  if (nd == 0) {
    binary_row<op>(a, 1, b, 1, y, 1);
    return;
  }
  int64_t inner = shape[nd - 1], rows = 1;
  for (int64_t i = 0; i < nd - 1; ++i) rows *= shape[i];
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t oa = 0, ob = 0, rem = r;  // offsets of row r in a and b
      for (int64_t d = nd - 2; d >= 0; --d) {
        int64_t id = rem % shape[d];
        rem /= shape[d];
        oa += id * sa[d];
        ob += id * sb[d];
      }
      binary_row<op>(a + oa, sa[nd - 1], b + ob, sb[nd - 1], y + r * inner, inner);
    }
  });
}

void binary_forward(Binary op, const float* a, const std::vector<int64_t>& sa, const float* b,
                    const std::vector<int64_t>& sb, float* y, const std::vector<int64_t>& shape) {
  switch (op) {
    case Binary::Add: return binary_impl<Binary::Add>(a, sa, b, sb, y, shape);
    case Binary::Sub: return binary_impl<Binary::Sub>(a, sa, b, sb, y, shape);
    case Binary::Mul: return binary_impl<Binary::Mul>(a, sa, b, sb, y, shape);
    case Binary::Div: return binary_impl<Binary::Div>(a, sa, b, sb, y, shape);
  }
}

void scalar_forward(Binary op, const float* a, float s, float* y, int64_t n) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    switch (op) {
      case Binary::Add: binary_row<Binary::Add>(a + lo, 1, &s, 0, y + lo, hi - lo); break;
      case Binary::Sub: binary_row<Binary::Sub>(a + lo, 1, &s, 0, y + lo, hi - lo); break;
      case Binary::Mul: binary_row<Binary::Mul>(a + lo, 1, &s, 0, y + lo, hi - lo); break;
      case Binary::Div: binary_row<Binary::Div>(a + lo, 1, &s, 0, y + lo, hi - lo); break;
    }
  });
}

}  // namespace ahmsa::cpu
