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

#include "flow/flow.h"
#include "flow/internal.h"

namespace ahmsa::flow {

using detail::Plane;

namespace {

struct PolyExp {  // coefficient planes of the local quadratic
  Plane b1, b2;   // b_x, b_y
  Plane axx, ayy, axy_half;
};

PolyExp poly_expansion(const Plane& f, int n, float sigma, int nt) {
  const int W = f.w, H = f.h, K = 2 * n + 1;
  std::vector<float> g(K), gx(K), gxx(K);
  double sum = 0;
  for (int i = -n; i <= n; ++i) sum += g[i + n] = std::exp(-i * i / (2.0 * sigma * sigma));
  double m2 = 0, m4 = 0;
  for (int i = -n; i <= n; ++i) {
    g[i + n] = float(g[i + n] / sum);
    gx[i + n] = g[i + n] * i;
    gxx[i + n] = g[i + n] * i * i;
    m2 += double(g[i + n]) * i * i;
    m4 += double(g[i + n]) * i * i * i * i;
  }
  // Inverse of the Gram block [[1, m2, m2], [m2, m4, m2^2], [m2, m2^2, m4]] acting on (r1, rxx, ryy);
  // only the rows for a_xx and a_yy are needed. By symmetry a_xx = p r1 + q rxx + s ryy.
  const double m22 = m2 * m2;
  const double G[3][3] = {{1, m2, m2}, {m2, m4, m22}, {m2, m22, m4}};
  const double det = G[0][0] * (G[1][1] * G[2][2] - G[1][2] * G[2][1]) -
                     G[0][1] * (G[1][0] * G[2][2] - G[1][2] * G[2][0]) +
                     G[0][2] * (G[1][0] * G[2][1] - G[1][1] * G[2][0]);
  // row 1 of the inverse (cofactors C_{j1} / det)
  const float ip = float(-(G[1][0] * G[2][2] - G[1][2] * G[2][0]) / det);
  const float iq = float((G[0][0] * G[2][2] - G[0][2] * G[2][0]) / det);
  const float is = float(-(G[0][0] * G[2][1] - G[0][1] * G[2][0]) / det);
  const float ib = float(1.0 / m2), iab = float(1.0 / m22);

  PolyExp P{Plane(W, H), Plane(W, H), Plane(W, H), Plane(W, H), Plane(W, H)};
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> v0(W + 2 * n), v1(W + 2 * n), v2(W + 2 * n);
#pragma omp for schedule(static)
    for (int y = 0; y < H; ++y) {
      // vertical moments: sum_dy g(dy) dy^k f(x, y + dy), k = 0, 1, 2, on a replicate-padded row
      std::fill(v0.begin(), v0.end(), 0.f), std::fill(v1.begin(), v1.end(), 0.f), std::fill(v2.begin(), v2.end(), 0.f);
      for (int dy = -n; dy <= n; ++dy) {
        const float* r = f.row(std::clamp(y + dy, 0, H - 1));
        const float w0 = g[dy + n], w1 = gx[dy + n], w2 = gxx[dy + n];
        for (int x = 0; x < W; ++x) {
          v0[x + n] += w0 * r[x], v1[x + n] += w1 * r[x], v2[x + n] += w2 * r[x];
        }
      }
      for (int x = 0; x < n; ++x) {
        v0[x] = v0[n], v1[x] = v1[n], v2[x] = v2[n];
        v0[W + n + x] = v0[W + n - 1], v1[W + n + x] = v1[W + n - 1], v2[W + n + x] = v2[W + n - 1];
      }
      float *ob1 = P.b1.row(y), *ob2 = P.b2.row(y), *oxx = P.axx.row(y), *oyy = P.ayy.row(y), *oxy = P.axy_half.row(y);
      for (int x = 0; x < W; ++x) {
        float r1 = 0, rx = 0, rxx = 0, ry = 0, rxy = 0, ryy = 0;
        for (int k = 0; k < K; ++k) {
          const float a0 = v0[x + k], a1 = v1[x + k], a2 = v2[x + k];
          r1 += g[k] * a0, rx += gx[k] * a0, rxx += gxx[k] * a0;
          ry += g[k] * a1, rxy += gx[k] * a1;
          ryy += g[k] * a2;
        }
        ob1[x] = rx * ib;
        ob2[x] = ry * ib;
        oxx[x] = ip * r1 + iq * rxx + is * ryy;
        oyy[x] = ip * r1 + is * rxx + iq * ryy;
        oxy[x] = 0.5f * rxy * iab;
      }
    }
  }
  return P;
}

// Box (running sum) or Gaussian average of the five planes of the normal equations, in place.
void window_average(std::vector<Plane>& M, int winsize, bool gaussian, int nt) {
  const int r = winsize / 2;
  if (r <= 0) return;
  std::vector<float> k(2 * r + 1, 1.f / (2 * r + 1));
  if (gaussian) {
    const float sigma = 0.3f * (r - 1) + 0.8f;
    float s = 0;
    for (int i = -r; i <= r; ++i) s += k[i + r] = std::exp(-0.5f * i * i / (sigma * sigma));
    for (auto& v : k) v /= s;
  }
  for (Plane& P : M) {
    const int W = P.w, H = P.h;
    Plane tmp(W, H);
#pragma omp parallel num_threads(nt)
    {
      std::vector<float> pad(W + 2 * r);
#pragma omp for schedule(static)
      for (int y = 0; y < H; ++y) {
        float* o = tmp.row(y);
        std::fill_n(o, W, 0.f);
        for (int i = -r; i <= r; ++i) {
          const float* s = P.row(std::clamp(y + i, 0, H - 1));
          const float kw = k[i + r];
          for (int x = 0; x < W; ++x) o[x] += kw * s[x];
        }
      }
#pragma omp for schedule(static)
      for (int y = 0; y < H; ++y) {
        const float* s = tmp.row(y);
        for (int x = 0; x < W + 2 * r; ++x) pad[x] = s[std::clamp(x - r, 0, W - 1)];
        float* o = P.row(y);
        for (int x = 0; x < W; ++x) {
          float acc = 0;
          for (int i = 0; i <= 2 * r; ++i) acc += k[i] * pad[x + i];
          o[x] = acc;
        }
      }
    }
  }
}

// One Farneback iteration at one level: build the normal equations with the current flow, average
// them over the window and solve the 2x2 systems.
void farneback_iteration(const PolyExp& P0, const PolyExp& P1, Plane& u, Plane& v, const FarnebackParams& p, int nt) {
  const int W = u.w, H = u.h;
  std::vector<Plane> M(5, Plane(W, H));  // G11, G12, G22, h1, h2
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = size_t(y) * W + x;
      const float dx = u.d[i], dy = v.d[i];
      // bilinear sample of frame 2's coefficients at x + d
      const float fx = std::clamp(x + dx, 0.f, float(W - 1)), fy = std::clamp(y + dy, 0.f, float(H - 1));
      const int x0 = std::min(int(fx), W - 2 >= 0 ? W - 2 : 0), y0 = std::min(int(fy), H - 2 >= 0 ? H - 2 : 0);
      const int x1 = std::min(x0 + 1, W - 1), y1 = std::min(y0 + 1, H - 1);
      const float ax = fx - x0, ay = fy - y0;
      auto sample = [&](const Plane& Q) {
        const float a = Q.d[size_t(y0) * W + x0] + ax * (Q.d[size_t(y0) * W + x1] - Q.d[size_t(y0) * W + x0]);
        const float b = Q.d[size_t(y1) * W + x0] + ax * (Q.d[size_t(y1) * W + x1] - Q.d[size_t(y1) * W + x0]);
        return a + ay * (b - a);
      };
      const float a11 = 0.5f * (P0.axx.d[i] + sample(P1.axx));
      const float a22 = 0.5f * (P0.ayy.d[i] + sample(P1.ayy));
      const float a12 = 0.5f * (P0.axy_half.d[i] + sample(P1.axy_half));
      const float e1 = -0.5f * (sample(P1.b1) - P0.b1.d[i]) + a11 * dx + a12 * dy;
      const float e2 = -0.5f * (sample(P1.b2) - P0.b2.d[i]) + a12 * dx + a22 * dy;
      M[0].d[i] = a11 * a11 + a12 * a12;
      M[1].d[i] = a12 * (a11 + a22);
      M[2].d[i] = a12 * a12 + a22 * a22;
      M[3].d[i] = a11 * e1 + a12 * e2;
      M[4].d[i] = a12 * e1 + a22 * e2;
    }
  window_average(M, p.winsize, p.gaussian_window, nt);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = size_t(y) * W + x;
      const float g11 = M[0].d[i], g12 = M[1].d[i], g22 = M[2].d[i], h1 = M[3].d[i], h2 = M[4].d[i];
      // small ridge so that flat regions (G ~ 0) give d ~ 0 instead of noise
      const float idet = 1.f / (g11 * g22 - g12 * g12 + 1e-3f);
      u.d[i] = (g22 * h1 - g12 * h2) * idet;
      v.d[i] = (g11 * h2 - g12 * h1) * idet;
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
    const PolyExp P0 = poly_expansion(J0, p.poly_n, p.poly_sigma, lnt);
    const PolyExp P1 = poly_expansion(J1, p.poly_n, p.poly_sigma, lnt);
    for (int it = 0; it < p.iterations; ++it) farneback_iteration(P0, P1, u, v, p, lnt);
  }
  FlowField f(W, H);
  f.u = std::move(u.d);
  f.v = std::move(v.d);
  return f;
}

}  // namespace ahmsa::flow
