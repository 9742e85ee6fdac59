// Farneback dense optical flow ("Two-Frame Motion Estimation Based on Polynomial Expansion", SCIA 2003).
//
// Polynomial expansion: around every pixel the image is fitted, by least squares weighted with the
// Gaussian applicability a(x) = g(x) g(y) over a (2n+1)^2 window, by
//   f(p) ~ p^T A p + b^T p + c,   A = [[a_xx, a_xy/2], [a_xy/2, a_yy]],  p = (dx, dy).
// Because the basis {1, x, y, x^2, y^2, xy} is orthogonal under a separable even weight except for
// the {1, x^2, y^2} block, the fit is six separable correlations followed by a tiny 3x3 solve.
//
// Displacement: if f2(p) = f1(p - d) then A2 = A1 and b2 = b1 - 2 A1 d. With a current estimate
// d~ we compare f1 at x with f2 at x + d~: A = (A1(x) + A2(x + d~)) / 2,
//   delta_b = -1/2 (b2(x + d~) - b1(x)) + A d~,   and A d = delta_b.
// Solved in the least-squares sense over a window w: d = (sum w A^T A)^-1 (sum w A^T delta_b).
#include <algorithm>
#include <cmath>

#include "flow/internal.h"
#ifdef AHMSA_FLOW_X86
#include <immintrin.h>
#endif

#include "flow/flow.h"

namespace ahmsa::flow {

using detail::Plane;

namespace {

// Coefficients of the local quadratic: five planes b_x, b_y, a_xx, a_yy, a_xy/2 (frame 1 is read at
// x), and for frame 2 the same interleaved per pixel in groups of kC floats (5 used, 3 zero) so that
// the bilinear sample of all five at x + d reads four contiguous groups (one AVX register each).
constexpr int kP = 5, kC = 8;
struct PolyExp {
  int w = 0, h = 0;
  std::vector<float> planes;  // kP * h * w
  std::vector<float> c;       // h * w * kC, filled by interleave()
  const float* plane(int i) const { return planes.data() + size_t(i) * w * h; }
  void interleave() {
    const size_t N = size_t(w) * h;
    c.assign(N * kC, 0.f);
    for (int i = 0; i < kP; ++i)
      for (size_t j = 0; j < N; ++j) c[j * kC + i] = planes[i * N + j];
  }
};

// The 1-D kernels of the expansion and the inverse Gram coefficients that turn the six correlations
// into the polynomial coefficients.
struct PolyKernels {
  int n = 0;
  std::vector<float> g, gx, gxx;  // g(i), i g(i), i^2 g(i), i = -n..n, g normalised to sum 1
  float ip = 0, iq = 0, is = 0;   // a_xx = ip r1 + iq rxx + is ryy (a_yy: rxx and ryy swapped)
  float ib = 0, iab = 0;          // b = r_x / m2, a_xy = r_xy / m2^2
};

PolyKernels poly_kernels(int n, float sigma) {
  PolyKernels k;
  const int K = 2 * n + 1;
  k.n = n;
  k.g.resize(K), k.gx.resize(K), k.gxx.resize(K);
  double sum = 0;
  for (int i = -n; i <= n; ++i) sum += k.g[i + n] = std::exp(-i * i / (2.0 * sigma * sigma));
  double m2 = 0, m4 = 0;
  for (int i = -n; i <= n; ++i) {
    k.g[i + n] = float(k.g[i + n] / sum);
    k.gx[i + n] = k.g[i + n] * i;
    k.gxx[i + n] = k.g[i + n] * i * i;
    m2 += double(k.g[i + n]) * i * i;
    m4 += double(k.g[i + n]) * i * i * i * i;
  }
  // Inverse of the Gram block [[1, m2, m2], [m2, m4, m2^2], [m2, m2^2, m4]] acting on (r1, rxx, ryy);
  // only the rows for a_xx and a_yy are needed. By symmetry a_xx = p r1 + q rxx + s ryy.
  const double m22 = m2 * m2;
  const double G[3][3] = {{1, m2, m2}, {m2, m4, m22}, {m2, m22, m4}};
  const double det = G[0][0] * (G[1][1] * G[2][2] - G[1][2] * G[2][1]) -
                     G[0][1] * (G[1][0] * G[2][2] - G[1][2] * G[2][0]) +
                     G[0][2] * (G[1][0] * G[2][1] - G[1][1] * G[2][0]);
  // row 1 of the inverse (cofactors C_{j1} / det)
  k.ip = float(-(G[1][0] * G[2][2] - G[1][2] * G[2][0]) / det);
  k.iq = float((G[0][0] * G[2][2] - G[0][2] * G[2][0]) / det);
  k.is = float(-(G[0][0] * G[2][1] - G[0][1] * G[2][0]) / det);
  k.ib = float(1.0 / m2), k.iab = float(1.0 / m22);
  return k;
}

// Scratch rows of the expansion: three vertical moments (replicate-padded by n on both sides) and the
// six correlations.
struct PolyRows {
  std::vector<float> v0, v1, v2, r1, rx, rxx, ry, rxy, ryy;
  void resize(size_t W, int n) {
    for (auto* v : {&v0, &v1, &v2}) v->assign(W + 2 * n, 0.f);
    for (auto* v : {&r1, &rx, &rxx, &ry, &rxy, &ryy}) v->assign(W, 0.f);
  }
};

// Rows [y_begin, y_end) of the expansion: vertical moments sum_dy g(dy) dy^k f(x, y + dy), k = 0, 1, 2,
// then the horizontal correlations, both as loops over contiguous rows (taps outside, pixels inside).
AHMSA_ALWAYS_INLINE void poly_rows_body(const Plane& f, const PolyKernels& k, PolyExp& P, PolyRows& s, int y_begin,
                                        int y_end) {
  const int W = f.w, H = f.h, n = k.n;
  float* __restrict v0 = s.v0.data();
  float* __restrict v1 = s.v1.data();
  float* __restrict v2 = s.v2.data();
  float* __restrict r1 = s.r1.data();
  float* __restrict rx = s.rx.data();
  float* __restrict rxx = s.rxx.data();
  float* __restrict ry = s.ry.data();
  float* __restrict rxy = s.rxy.data();
  float* __restrict ryy = s.ryy.data();
  // g and i^2 g are even, i g is odd: each tap pair +-i is one sum and one difference.
  for (int y = y_begin; y < y_end; ++y) {
    {
      const float* __restrict r = f.row(y);
      const float g0 = k.g[n];
      for (int x = 0; x < W; ++x) v0[n + x] = g0 * r[x], v1[n + x] = 0.f, v2[n + x] = 0.f;
    }
    for (int i = 1; i <= n; ++i) {
      const float* __restrict up = f.row(std::max(y - i, 0));
      const float* __restrict dn = f.row(std::min(y + i, H - 1));
      const float w0 = k.g[n + i], w1 = k.gx[n + i], w2 = k.gxx[n + i];
      for (int x = 0; x < W; ++x) {
        const float sum = dn[x] + up[x], dif = dn[x] - up[x];
        v0[n + x] += w0 * sum, v1[n + x] += w1 * dif, v2[n + x] += w2 * sum;
      }
    }
    for (int x = 0; x < n; ++x) {
      v0[x] = v0[n], v1[x] = v1[n], v2[x] = v2[n];
      v0[W + n + x] = v0[W + n - 1], v1[W + n + x] = v1[W + n - 1], v2[W + n + x] = v2[W + n - 1];
    }
    {
      const float g0 = k.g[n];
      for (int x = 0; x < W; ++x) {
        r1[x] = g0 * v0[n + x], ry[x] = g0 * v1[n + x], ryy[x] = g0 * v2[n + x];
        rx[x] = rxx[x] = rxy[x] = 0.f;
      }
    }
    for (int i = 1; i <= n; ++i) {
      const float g = k.g[n + i], gx = k.gx[n + i], gxx = k.gxx[n + i];
      const float* __restrict a0 = v0 + n;
      const float* __restrict a1 = v1 + n;
      const float* __restrict a2 = v2 + n;
      for (int x = 0; x < W; ++x) {
        const float s0 = a0[x + i] + a0[x - i], d0 = a0[x + i] - a0[x - i];
        const float s1 = a1[x + i] + a1[x - i], d1 = a1[x + i] - a1[x - i];
        const float s2 = a2[x + i] + a2[x - i];
        r1[x] += g * s0, rx[x] += gx * d0, rxx[x] += gxx * s0;
        ry[x] += g * s1, rxy[x] += gx * d1;
        ryy[x] += g * s2;
      }
    }
    const size_t N = size_t(W) * H, o = size_t(y) * W;
    float* __restrict ob1 = P.planes.data() + o;
    float* __restrict ob2 = ob1 + N;
    float* __restrict oxx = ob1 + 2 * N;
    float* __restrict oyy = ob1 + 3 * N;
    float* __restrict oxy = ob1 + 4 * N;
    for (int x = 0; x < W; ++x) {
      ob1[x] = rx[x] * k.ib;
      ob2[x] = ry[x] * k.ib;
      oxx[x] = k.ip * r1[x] + k.iq * rxx[x] + k.is * ryy[x];
      oyy[x] = k.ip * r1[x] + k.is * rxx[x] + k.iq * ryy[x];
      oxy[x] = 0.5f * rxy[x] * k.iab;
    }
  }
}
void poly_rows_sse2(const Plane& f, const PolyKernels& k, PolyExp& P, PolyRows& s, int y0, int y1) {
  poly_rows_body(f, k, P, s, y0, y1);
}
AHMSA_TARGET_AVX2 void poly_rows_avx2(const Plane& f, const PolyKernels& k, PolyExp& P, PolyRows& s, int y0, int y1) {
  poly_rows_body(f, k, P, s, y0, y1);
}

void poly_expansion(const Plane& f, const PolyKernels& k, PolyExp& P, int nt) {
  P.w = f.w, P.h = f.h;
  P.planes.resize(size_t(kP) * f.w * f.h);
  const bool avx2 = detail::cpu_has_avx2_fma();
#pragma omp parallel num_threads(nt)
  {
    PolyRows s;
    s.resize(f.w, k.n);
#pragma omp for schedule(static)
    for (int y = 0; y < f.h; ++y) avx2 ? poly_rows_avx2(f, k, P, s, y, y + 1) : poly_rows_sse2(f, k, P, s, y, y + 1);
  }
}

// The five planes of the normal equations, G = sum w A^T A and h = sum w A^T delta_b, in the order
// G11, G12, G22, h1, h2; before averaging (M) and as the per-row vertical sums (V).
constexpr int kM = 5;

// Step 1 of an iteration, rows [y_begin, y_end): A and delta_b with frame 2's coefficients sampled
// bilinearly at x + d, then the products of the normal equations into M (kM planes of W x H).
// Pixels x >= x_begin of each row (the AVX2 kernel does the first multiple of 8 itself).
AHMSA_ALWAYS_INLINE void update_matrices_body(const PolyExp& P0, const PolyExp& P1, const float* __restrict U,
                                              const float* __restrict V, float* __restrict M, int y_begin, int y_end,
                                              int x_begin = 0) {
  const int W = P0.w, H = P0.h;
  const size_t N = size_t(W) * H;
  const int xmax = W >= 2 ? W - 2 : 0, ymax = H >= 2 ? H - 2 : 0;
  const size_t dx1 = W >= 2 ? kC : 0, dy1 = H >= 2 ? size_t(W) * kC : 0;  // offsets of the +1 neighbours
  const float* __restrict c1 = P1.c.data();
  const float* __restrict p0 = P0.planes.data();
  for (int y = y_begin; y < y_end; ++y) {
    const size_t o = size_t(y) * W;
    for (int x = x_begin; x < W; ++x) {
      const float dx = U[o + x], dy = V[o + x];
      const float fx = std::clamp(x + dx, 0.f, float(W - 1)), fy = std::clamp(y + dy, 0.f, float(H - 1));
      const int x0 = std::min(int(fx), xmax), y0 = std::min(int(fy), ymax);
      const float ax = fx - x0, ay = fy - y0;
      const float* __restrict q = c1 + (size_t(y0) * W + x0) * kC;
      float s[kC];
      for (int c = 0; c < kC; ++c) {
        const float a = q[c] + ax * (q[dx1 + c] - q[c]);
        const float b = q[dy1 + c] + ax * (q[dy1 + dx1 + c] - q[dy1 + c]);
        s[c] = a + ay * (b - a);
      }
      const size_t i = o + x;
      const float a11 = 0.5f * (p0[2 * N + i] + s[2]);
      const float a22 = 0.5f * (p0[3 * N + i] + s[3]);
      const float a12 = 0.5f * (p0[4 * N + i] + s[4]);
      const float e1 = -0.5f * (s[0] - p0[i]) + a11 * dx + a12 * dy;
      const float e2 = -0.5f * (s[1] - p0[N + i]) + a12 * dx + a22 * dy;
      M[0 * N + o + x] = a11 * a11 + a12 * a12;
      M[1 * N + o + x] = a12 * (a11 + a22);
      M[2 * N + o + x] = a12 * a12 + a22 * a22;
      M[3 * N + o + x] = a11 * e1 + a12 * e2;
      M[4 * N + o + x] = a12 * e1 + a22 * e2;
    }
  }
}

// d = G^-1 h per pixel of one row from the window-averaged planes (g: kM rows of W, already scaled).
// A small ridge keeps flat regions (G ~ 0) at d ~ 0 instead of noise.
AHMSA_ALWAYS_INLINE void solve_row(const float* __restrict g, int W, float* __restrict u, float* __restrict v) {
  const float *g11 = g, *g12 = g + W, *g22 = g + 2 * W, *h1 = g + 3 * W, *h2 = g + 4 * W;
  for (int x = 0; x < W; ++x) {
    const float idet = 1.f / (g11[x] * g22[x] - g12[x] * g12[x] + 1e-3f);
    u[x] = (g22[x] * h1[x] - g12[x] * h2[x]) * idet;
    v[x] = (g11[x] * h2[x] - g12[x] * h1[x]) * idet;
  }
}

// a[x] = s[x] + ... + s[x + K - 1] for x < W (s holds W + K - 1 values) in about log2 K passes instead
// of K - 1: sums of 1, 2, 4, ... consecutive values are built by doubling, and the blocks of K's binary
// digits are added side by side (K = 13 = 1 + 4 + 8: s[x] + b4[x + 1] + b8[x + 5]). Scratch t0, t1:
// W + K - 1 floats each.
AHMSA_ALWAYS_INLINE void horizontal_box_sum(const float* __restrict s, int W, int K, float* __restrict a,
                                            float* __restrict t0, float* __restrict t1) {
  const int n = W + K - 1;  // values in s
  for (int x = 0; x < W; ++x) a[x] = 0.f;
  const float* blk = s;  // blk[x] = sum of `len` values from x, valid for x <= n - len
  int len = 1, offset = 0;
  float* next = t0;
  while (len <= K) {
    if (K & len) {
      for (int x = 0; x < W; ++x) a[x] += blk[x + offset];
      offset += len;
    }
    if (2 * len > K) break;
    for (int x = 0; x <= n - 2 * len; ++x) next[x] = blk[x] + blk[x + len];
    blk = next;
    next = next == t0 ? t1 : t0;
    len *= 2;
  }
}

// Step 2 for the box window, rows [y_begin, y_end): vertical running sums of M (restarted at y_begin),
// then per row horizontal sums of 2r + 1 taps on the replicate-padded row, then the 2x2 solve into
// U, V. Scratch: vs ((kM + 2) * (W + 2r)), avg (kM * W).
AHMSA_ALWAYS_INLINE void box_solve_body(const float* __restrict M, int W, int H, int r, float* __restrict vs,
                                        float* __restrict avg, float* __restrict U, float* __restrict V, int y_begin,
                                        int y_end) {
  const size_t N = size_t(W) * H;
  const int Wp = W + 2 * r, K = 2 * r + 1;
  const float inv_area = 1.f / float(K * K);
  float* __restrict blocks = vs + size_t(kM) * Wp;  // two scratch rows for horizontal_box_sum
  for (int q = 0; q < kM; ++q) {  // window of row y_begin
    float* __restrict s = vs + size_t(q) * Wp + r;
    for (int x = 0; x < W; ++x) s[x] = 0.f;
    for (int i = -r; i <= r; ++i) {
      const float* __restrict m = M + q * N + size_t(std::clamp(y_begin + i, 0, H - 1)) * W;
      for (int x = 0; x < W; ++x) s[x] += m[x];
    }
  }
  for (int y = y_begin; y < y_end; ++y) {
    const size_t add = size_t(std::min(y + r, H - 1)) * W, sub = size_t(std::max(y - r - 1, 0)) * W;
    for (int q = 0; q < kM; ++q) {
      float* __restrict s = vs + size_t(q) * Wp;
      if (y > y_begin) {  // slide the window down one row
        const float* __restrict ma = M + q * N + add;
        const float* __restrict ms = M + q * N + sub;
        for (int x = 0; x < W; ++x) s[r + x] += ma[x] - ms[x];
      }
      for (int x = 0; x < r; ++x) s[x] = s[r], s[W + r + x] = s[W + r - 1];
      horizontal_box_sum(s, W, K, avg + size_t(q) * W, blocks, blocks + Wp);
      float* __restrict a = avg + size_t(q) * W;
      for (int x = 0; x < W; ++x) a[x] *= inv_area;
    }
    solve_row(avg, W, U + size_t(y) * W, V + size_t(y) * W);
  }
}

// Step 2 for the Gaussian window, rows [y_begin, y_end): separable weighted sums with replicated
// edges. Scratch: vs (kM * (W + 2r), padded), avg (kM * W).
AHMSA_ALWAYS_INLINE void gauss_solve_body(const float* __restrict M, int W, int H, const std::vector<float>& k,
                                          float* __restrict vs, float* __restrict avg, float* __restrict U,
                                          float* __restrict V, int y_begin, int y_end) {
  const size_t N = size_t(W) * H;
  const int r = int(k.size()) / 2, Wp = W + 2 * r;
  for (int y = y_begin; y < y_end; ++y) {
    for (int q = 0; q < kM; ++q) {
      float* __restrict s = vs + size_t(q) * Wp;
      for (int x = 0; x < W; ++x) s[r + x] = 0.f;
      for (int i = -r; i <= r; ++i) {
        const float* __restrict m = M + q * N + size_t(std::clamp(y + i, 0, H - 1)) * W;
        const float kw = k[i + r];
        for (int x = 0; x < W; ++x) s[r + x] += kw * m[x];
      }
      for (int x = 0; x < r; ++x) s[x] = s[r], s[W + r + x] = s[W + r - 1];
      float* __restrict a = avg + size_t(q) * W;
      for (int x = 0; x < W; ++x) a[x] = 0.f;
      for (int i = 0; i <= 2 * r; ++i) {
        const float kw = k[i];
        for (int x = 0; x < W; ++x) a[x] += kw * s[x + i];
      }
    }
    solve_row(avg, W, U + size_t(y) * W, V + size_t(y) * W);
  }
}

#ifdef AHMSA_FLOW_X86
// The same maths as update_matrices_body four pixels at a time with SSE2 only (the baseline x86-64
// build, for CPUs without AVX2): per pixel a bilinear sample of coefficients 0-3 as one 4-float vector
// (coefficient 4 in scalar), a 4x4 transpose, and the rest across pixels. No FMA, and the operations
// in the scalar body's order, so the result is the same to the bit.
void update_matrices_sse2(const PolyExp& P0, const PolyExp& P1, const float* U, const float* V, float* M,
                          int y_begin, int y_end) {
  const int W = P0.w, H = P0.h, W4 = W & ~3;
  const size_t N = size_t(W) * H;
  const int xmax = W >= 2 ? W - 2 : 0, ymax = H >= 2 ? H - 2 : 0;
  const size_t dx1 = W >= 2 ? kC : 0, dy1 = H >= 2 ? size_t(W) * kC : 0;
  const float* c1 = P1.c.data();
  const float* p0 = P0.planes.data();
  const __m128 half = _mm_set1_ps(0.5f);
  alignas(16) float s4[4];
  for (int y = y_begin; y < y_end; ++y) {
    const size_t o = size_t(y) * W;
    for (int x = 0; x < W4; x += 4) {
      __m128 smp[4];
      for (int j = 0; j < 4; ++j) {
        const float dx = U[o + x + j], dy = V[o + x + j];
        const float fx = std::clamp(x + j + dx, 0.f, float(W - 1)), fy = std::clamp(y + dy, 0.f, float(H - 1));
        const int x0 = std::min(int(fx), xmax), y0 = std::min(int(fy), ymax);
        const float ax = fx - x0, ay = fy - y0;
        const float* q = c1 + (size_t(y0) * W + x0) * kC;
        const __m128 vax = _mm_set1_ps(ax), vay = _mm_set1_ps(ay);
        const __m128 q00 = _mm_loadu_ps(q), q01 = _mm_loadu_ps(q + dx1);
        const __m128 q10 = _mm_loadu_ps(q + dy1), q11 = _mm_loadu_ps(q + dy1 + dx1);
        const __m128 a = _mm_add_ps(q00, _mm_mul_ps(vax, _mm_sub_ps(q01, q00)));
        const __m128 b = _mm_add_ps(q10, _mm_mul_ps(vax, _mm_sub_ps(q11, q10)));
        smp[j] = _mm_add_ps(a, _mm_mul_ps(vay, _mm_sub_ps(b, a)));
        const float a4 = q[4] + ax * (q[dx1 + 4] - q[4]);
        const float b4 = q[dy1 + 4] + ax * (q[dy1 + dx1 + 4] - q[dy1 + 4]);
        s4[j] = a4 + ay * (b4 - a4);
      }
      _MM_TRANSPOSE4_PS(smp[0], smp[1], smp[2], smp[3]);  // smp[c] = coefficient c of the 4 pixels
      const size_t i = o + x;
      const __m128 dx = _mm_loadu_ps(U + i), dy = _mm_loadu_ps(V + i);
      const __m128 a11 = _mm_mul_ps(half, _mm_add_ps(_mm_loadu_ps(p0 + 2 * N + i), smp[2]));
      const __m128 a22 = _mm_mul_ps(half, _mm_add_ps(_mm_loadu_ps(p0 + 3 * N + i), smp[3]));
      const __m128 a12 = _mm_mul_ps(half, _mm_add_ps(_mm_loadu_ps(p0 + 4 * N + i), _mm_load_ps(s4)));
      // e = -1/2 (b2(x + d) - b1(x)) + A d
      const __m128 db1 = _mm_mul_ps(half, _mm_sub_ps(_mm_loadu_ps(p0 + i), smp[0]));
      const __m128 db2 = _mm_mul_ps(half, _mm_sub_ps(_mm_loadu_ps(p0 + N + i), smp[1]));
      const __m128 e1 = _mm_add_ps(_mm_add_ps(db1, _mm_mul_ps(a11, dx)), _mm_mul_ps(a12, dy));
      const __m128 e2 = _mm_add_ps(_mm_add_ps(db2, _mm_mul_ps(a12, dx)), _mm_mul_ps(a22, dy));
      _mm_storeu_ps(M + i, _mm_add_ps(_mm_mul_ps(a11, a11), _mm_mul_ps(a12, a12)));
      _mm_storeu_ps(M + N + i, _mm_mul_ps(a12, _mm_add_ps(a11, a22)));
      _mm_storeu_ps(M + 2 * N + i, _mm_add_ps(_mm_mul_ps(a12, a12), _mm_mul_ps(a22, a22)));
      _mm_storeu_ps(M + 3 * N + i, _mm_add_ps(_mm_mul_ps(a11, e1), _mm_mul_ps(a12, e2)));
      _mm_storeu_ps(M + 4 * N + i, _mm_add_ps(_mm_mul_ps(a12, e1), _mm_mul_ps(a22, e2)));
    }
    if (W4 < W) update_matrices_body(P0, P1, U, V, M, y, y + 1, W4);
  }
}
// 8x8 transpose of the rows r[0..7]; only the first kP outputs are needed.
AHMSA_TARGET_AVX2 static inline void transpose8_first5(const __m256 r[8], __m256 out[kP]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  out[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  out[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  out[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  out[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  out[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
}

// The same maths as update_matrices_body, eight pixels at a time: per pixel one bilinear sample of
// the interleaved coefficient group (four 8-float loads), then an 8x8 transpose so that the rest runs
// across pixels.
AHMSA_TARGET_AVX2 void update_matrices_avx2(const PolyExp& P0, const PolyExp& P1, const float* U, const float* V,
                                            float* M, int y_begin, int y_end) {
  const int W = P0.w, H = P0.h, W8 = W & ~7;
  const size_t N = size_t(W) * H;
  const int xmax = W >= 2 ? W - 2 : 0, ymax = H >= 2 ? H - 2 : 0;
  const int dx1 = W >= 2 ? kC : 0, dy1 = H >= 2 ? W * kC : 0;
  const float* c1 = P1.c.data();
  const float* p0 = P0.planes.data();
  const __m256 zero = _mm256_setzero_ps(), wmax = _mm256_set1_ps(float(W - 1)), half = _mm256_set1_ps(0.5f);
  const __m256i ixmax = _mm256_set1_epi32(xmax), iwk = _mm256_set1_epi32(W * kC), ik = _mm256_set1_epi32(kC);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  alignas(32) float AX[8], AY[8];
  alignas(32) int OFF[8];
  for (int y = y_begin; y < y_end; ++y) {
    const size_t o = size_t(y) * W;
    const __m256 yf = _mm256_set1_ps(float(y)), hmax = _mm256_set1_ps(float(H - 1));
    const __m256i iymax = _mm256_set1_epi32(ymax);
    for (int x = 0; x < W8; x += 8) {
      const __m256 dx = _mm256_loadu_ps(U + o + x), dy = _mm256_loadu_ps(V + o + x);
      const __m256 xf = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_set1_epi32(x), lane));
      const __m256 fx = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(xf, dx), zero), wmax);
      const __m256 fy = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(yf, dy), zero), hmax);
      const __m256i x0 = _mm256_min_epi32(_mm256_cvttps_epi32(fx), ixmax);
      const __m256i y0 = _mm256_min_epi32(_mm256_cvttps_epi32(fy), iymax);
      _mm256_store_ps(AX, _mm256_sub_ps(fx, _mm256_cvtepi32_ps(x0)));
      _mm256_store_ps(AY, _mm256_sub_ps(fy, _mm256_cvtepi32_ps(y0)));
      _mm256_store_si256(reinterpret_cast<__m256i*>(OFF),
                         _mm256_add_epi32(_mm256_mullo_epi32(y0, iwk), _mm256_mullo_epi32(x0, ik)));
      __m256 smp[8];
      for (int j = 0; j < 8; ++j) {
        const float* q = c1 + OFF[j];
        const __m256 q00 = _mm256_loadu_ps(q), q01 = _mm256_loadu_ps(q + dx1);
        const __m256 q10 = _mm256_loadu_ps(q + dy1), q11 = _mm256_loadu_ps(q + dy1 + dx1);
        const __m256 ax = _mm256_broadcast_ss(AX + j), ay = _mm256_broadcast_ss(AY + j);
        const __m256 a = _mm256_fmadd_ps(ax, _mm256_sub_ps(q01, q00), q00);
        const __m256 b = _mm256_fmadd_ps(ax, _mm256_sub_ps(q11, q10), q10);
        smp[j] = _mm256_fmadd_ps(ay, _mm256_sub_ps(b, a), a);
      }
      __m256 s[kP];
      transpose8_first5(smp, s);
      const size_t i = o + x;
      const __m256 a11 = _mm256_mul_ps(half, _mm256_add_ps(_mm256_loadu_ps(p0 + 2 * N + i), s[2]));
      const __m256 a22 = _mm256_mul_ps(half, _mm256_add_ps(_mm256_loadu_ps(p0 + 3 * N + i), s[3]));
      const __m256 a12 = _mm256_mul_ps(half, _mm256_add_ps(_mm256_loadu_ps(p0 + 4 * N + i), s[4]));
      // e = -1/2 (b2(x + d) - b1(x)) + A d
      const __m256 db1 = _mm256_mul_ps(half, _mm256_sub_ps(_mm256_loadu_ps(p0 + i), s[0]));
      const __m256 db2 = _mm256_mul_ps(half, _mm256_sub_ps(_mm256_loadu_ps(p0 + N + i), s[1]));
      const __m256 e1 = _mm256_fmadd_ps(a12, dy, _mm256_fmadd_ps(a11, dx, db1));
      const __m256 e2 = _mm256_fmadd_ps(a22, dy, _mm256_fmadd_ps(a12, dx, db2));
      _mm256_storeu_ps(M + i, _mm256_fmadd_ps(a12, a12, _mm256_mul_ps(a11, a11)));
      _mm256_storeu_ps(M + N + i, _mm256_mul_ps(a12, _mm256_add_ps(a11, a22)));
      _mm256_storeu_ps(M + 2 * N + i, _mm256_fmadd_ps(a22, a22, _mm256_mul_ps(a12, a12)));
      _mm256_storeu_ps(M + 3 * N + i, _mm256_fmadd_ps(a12, e2, _mm256_mul_ps(a11, e1)));
      _mm256_storeu_ps(M + 4 * N + i, _mm256_fmadd_ps(a22, e2, _mm256_mul_ps(a12, e1)));
    }
    if (W8 < W) update_matrices_body(P0, P1, U, V, M, y, y + 1, W8);
  }
}
#else  // not x86: both names run the portable body
void update_matrices_sse2(const PolyExp& P0, const PolyExp& P1, const float* U, const float* V, float* M, int y0,
                          int y1) {
  update_matrices_body(P0, P1, U, V, M, y0, y1);
}
void update_matrices_avx2(const PolyExp& P0, const PolyExp& P1, const float* U, const float* V, float* M, int y0,
                          int y1) {
  update_matrices_body(P0, P1, U, V, M, y0, y1);
}
#endif
void box_solve_sse2(const float* M, int W, int H, int r, float* vs, float* avg, float* U, float* V, int y0, int y1) {
  box_solve_body(M, W, H, r, vs, avg, U, V, y0, y1);
}
AHMSA_TARGET_AVX2 void box_solve_avx2(const float* M, int W, int H, int r, float* vs, float* avg, float* U, float* V,
                                      int y0, int y1) {
  box_solve_body(M, W, H, r, vs, avg, U, V, y0, y1);
}
void gauss_solve_sse2(const float* M, int W, int H, const std::vector<float>& k, float* vs, float* avg, float* U,
                      float* V, int y0, int y1) {
  gauss_solve_body(M, W, H, k, vs, avg, U, V, y0, y1);
}
AHMSA_TARGET_AVX2 void gauss_solve_avx2(const float* M, int W, int H, const std::vector<float>& k, float* vs,
                                        float* avg, float* U, float* V, int y0, int y1) {
  gauss_solve_body(M, W, H, k, vs, avg, U, V, y0, y1);
}

// Rows per block of the window step. The vertical running sums restart at every block, so the block
// size depends only on the image size, never on the thread count: results are the same for any number
// of threads. Small levels (single-threaded anyway) are one block.
int window_block_rows(int W, int H) { return size_t(W) * H >= size_t(detail::kMinParallelPixels) ? 64 : H; }

// All iterations at one level. u, v hold the initial flow on entry and the result on exit; M is the
// kM-plane scratch of the normal equations (reused across levels).
void farneback_level(const PolyExp& P0, const PolyExp& P1, Plane& u, Plane& v, const FarnebackParams& p,
                     std::vector<float>& M, int nt) {
  const int W = u.w, H = u.h, r = p.winsize / 2;
  M.resize(size_t(kM) * W * H);
  std::vector<float> gk;  // Gaussian window weights, sigma 0.3 (r - 1) + 0.8 (OpenCV's rule for a size)
  if (p.gaussian_window && r > 0) {
    const float sigma = 0.3f * (r - 1) + 0.8f;
    float sum = 0;
    gk.resize(2 * r + 1);
    for (int i = -r; i <= r; ++i) sum += gk[i + r] = std::exp(-0.5f * i * i / (sigma * sigma));
    for (auto& w : gk) w /= sum;
  }
  const int block = window_block_rows(W, H), nblocks = (H + block - 1) / block;
  const bool avx2 = detail::cpu_has_avx2_fma();
  float* U = u.d.data();
  float* V = v.d.data();
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> vs(size_t(kM + 2) * (W + 2 * r)), avg(size_t(kM) * W);
    for (int it = 0; it < p.iterations; ++it) {
#pragma omp for schedule(static)
      for (int y = 0; y < H; ++y)
        avx2 ? update_matrices_avx2(P0, P1, U, V, M.data(), y, y + 1)
             : update_matrices_sse2(P0, P1, U, V, M.data(), y, y + 1);
      // (implicit barrier: every row of M is ready; U, V are only written below)
#pragma omp for schedule(static)
      for (int b = 0; b < nblocks; ++b) {
        const int y0 = b * block, y1 = std::min(H, y0 + block);
        if (!gk.empty())
          avx2 ? gauss_solve_avx2(M.data(), W, H, gk, vs.data(), avg.data(), U, V, y0, y1)
               : gauss_solve_sse2(M.data(), W, H, gk, vs.data(), avg.data(), U, V, y0, y1);
        else
          avx2 ? box_solve_avx2(M.data(), W, H, r, vs.data(), avg.data(), U, V, y0, y1)
               : box_solve_sse2(M.data(), W, H, r, vs.data(), avg.data(), U, V, y0, y1);
      }
    }
  }
}

}  // namespace

FlowField farneback(const img::Image& I0_in, const img::Image& I1_in, const FarnebackParams& p) {
  detail::check_pair(I0_in, I1_in, "farneback");
  if (!(p.pyr_scale > 0 && p.pyr_scale < 1) || p.levels < 1 || p.winsize < 1 || p.iterations < 1 || p.poly_n < 1 ||
      !(p.poly_sigma > 0))
    throw FlowError("farneback: invalid parameters (" + p.describe() + ")");
  const Plane I0 = detail::grey_plane(I0_in, "farneback frame 0"), I1 = detail::grey_plane(I1_in, "farneback frame 1");
  const int W = I0.w, H = I0.h, nt = detail::thread_count(p.threads);

  // Levels whose smaller side would drop below 32 px are skipped (too little support for the window).
  int levels = 1;
  for (int k = 1; k < p.levels; ++k) {
    if (std::min(detail::level_size(W, p.pyr_scale, k), detail::level_size(H, p.pyr_scale, k)) < 32) break;
    levels = k + 1;
  }
  const PolyKernels kernels = poly_kernels(p.poly_n, p.poly_sigma);
  PolyExp P0, P1;
  std::vector<float> M;
  Plane u, v;
  for (int k = levels - 1; k >= 0; --k) {
    const int w = detail::level_size(W, p.pyr_scale, k), h = detail::level_size(H, p.pyr_scale, k);
    const float scale = std::pow(p.pyr_scale, float(k));
    // Each level is made from the full image: Gaussian blur of sigma (1/scale - 1) / 2, then resample.
    const float sigma = (1.f / scale - 1.f) * 0.5f;
    const Plane J0 = detail::resize_plane(detail::gaussian_blur(I0, sigma, p.threads), w, h);
    const Plane J1 = detail::resize_plane(detail::gaussian_blur(I1, sigma, p.threads), w, h);
    if (u.d.empty()) {
      u = Plane(w, h), v = Plane(w, h);
    } else {
      const float sx = float(w) / u.w, sy = float(h) / u.h;
      u = detail::resize_plane(u, w, h), v = detail::resize_plane(v, w, h);
      for (auto& a : u.d) a *= sx;
      for (auto& a : v.d) a *= sy;
    }
    const int lnt = w * h >= detail::kMinParallelPixels ? nt : 1;
    poly_expansion(J0, kernels, P0, lnt);
    poly_expansion(J1, kernels, P1, lnt);
    P1.interleave();
    farneback_level(P0, P1, u, v, p, M, lnt);
  }
  FlowField f(W, H);
  f.u = std::move(u.d);
  f.v = std::move(v.d);
  return f;
}

}  // namespace ahmsa::flow
