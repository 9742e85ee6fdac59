// Elementwise kernels: unary maps with their derivatives, broadcast binary ops.
#include <cmath>

#include "tensor/kernels.h"
#include "tensor/parallel.h"
#include "tensor/simd_math.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ahmsa::cpu {

static constexpr int64_t kGrain = 1 << 14;

// ---- GELU with AVX2: the erf of libm is a scalar call, the hottest elementwise op of a step ----
#if defined(__x86_64__)
// Φ(x) = ½(1 + erf(x/√2)) with erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), and φ(x).
__attribute__((target("avx2,fma"))) static inline void normal_cdf_pdf8(__m256 x, __m256& cdf, __m256& pdf) {
  const __m256 sign_mask = _mm256_set1_ps(-0.f);
  __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
  __m256 az = _mm256_andnot_ps(sign_mask, z);
  __m256 t = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), az, _mm256_set1_ps(1.f)));
  __m256 poly = _mm256_set1_ps(1.061405429f);
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-1.453152027f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
  __m256 e = exp8(_mm256_mul_ps(_mm256_mul_ps(z, z), _mm256_set1_ps(-1.f)));  // e^{−x²/2}
  __m256 erf_abs = _mm256_fnmadd_ps(_mm256_mul_ps(t, poly), e, _mm256_set1_ps(1.f));
  __m256 erf = _mm256_or_ps(erf_abs, _mm256_and_ps(sign_mask, z));
  cdf = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_add_ps(_mm256_set1_ps(1.f), erf));
  pdf = _mm256_mul_ps(e, _mm256_set1_ps(0.3989422804014327f));
}

__attribute__((target("avx2,fma"))) static int64_t gelu_forward_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i), cdf, pdf;
    normal_cdf_pdf8(v, cdf, pdf);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(v, cdf));
  }
  return i;  // the caller finishes the tail
}

__attribute__((target("avx2,fma"))) static int64_t gelu_backward_avx2(const float* x, const float* gy, float* gx,
                                                                       int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i), cdf, pdf;
    normal_cdf_pdf8(v, cdf, pdf);
    _mm256_storeu_ps(gx + i, _mm256_mul_ps(_mm256_loadu_ps(gy + i), _mm256_fmadd_ps(v, pdf, cdf)));
  }
  return i;
}

static const bool g_avx2 = cpu_has_avx2_fma();
#else
static const bool g_avx2 = false;
static int64_t gelu_forward_avx2(const float*, float*, int64_t) { return 0; }
static int64_t gelu_backward_avx2(const float*, const float*, float*, int64_t) { return 0; }
#endif

void unary_forward(Unary op, const float* x_in, float* y_in, int64_t n) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    const float* __restrict x = x_in;  // as in unary_backward
    float* __restrict y = y_in;
    switch (op) {
      case Unary::Relu:  // written so that NaN passes through, as in PyTorch
        for (int64_t i = lo; i < hi; ++i) y[i] = x[i] <= 0.f ? 0.f : x[i];
        break;
      case Unary::Gelu:  // x Φ(x)
        if (g_avx2) lo += gelu_forward_avx2(x + lo, y + lo, hi - lo);
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

void unary_backward(Unary op, const float* x_in, const float* y_in, const float* gy_in, float* gx_in, int64_t n) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    // Local restrict copies: read through the closure's references, every store to gx could alias
    // them, and the loops re-loaded the pointers per element and did not vectorise.
    const float* __restrict x = x_in;
    const float* __restrict y = y_in;
    const float* __restrict gy = gy_in;
    float* __restrict gx = gx_in;
    switch (op) {
      case Unary::Relu:  // gy loaded unconditionally, so that the select vectorises
        for (int64_t i = lo; i < hi; ++i) {
          const float g = gy[i];
          gx[i] = x[i] > 0.f ? g : 0.f;
        }
        break;
      case Unary::Gelu:  // d/dx xΦ(x) = Φ(x) + x φ(x)
        if (g_avx2) lo += gelu_backward_avx2(x + lo, gy + lo, gx + lo, hi - lo);
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

// Drops size-1 dims and merges each dim into the one outside it wherever every operand walks the
// pair as a single dim (outer stride = inner stride x inner size). A [B, C, H, W] + [1, C, 1, 1] add
// becomes [B, C, H*W] with rows of H*W instead of W: rows of 7 to 28 values spent most of their time on
// the per-row index arithmetic.
void coalesce_dims(std::vector<int64_t>& shape, const std::vector<std::vector<int64_t>*>& strides) {
  std::vector<int64_t> s2;
  std::vector<std::vector<int64_t>> st2(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !s2.empty();
    for (size_t k = 0; k < strides.size() && merge; ++k) merge = st2[k].back() == (*strides[k])[d] * shape[d];
    if (merge) s2.back() *= shape[d];
    else s2.push_back(shape[d]);
    for (size_t k = 0; k < strides.size(); ++k) {
      if (merge) st2[k].back() = (*strides[k])[d];
      else st2[k].push_back((*strides[k])[d]);
    }
  }
  shape.swap(s2);
  for (size_t k = 0; k < strides.size(); ++k) strides[k]->swap(st2[k]);
}

void binary_forward(Binary op, const float* a, const std::vector<int64_t>& sa_in, const float* b,
                    const std::vector<int64_t>& sb_in, float* y, const std::vector<int64_t>& shape_in) {
  std::vector<int64_t> shape = shape_in, sa = sa_in, sb = sb_in;
  coalesce_dims(shape, {&sa, &sb});
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
