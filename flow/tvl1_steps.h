// TV-L1 for a batch of equally sized pairs, written as small steps over one pixel (or one line) of
// one pair. The same step functors run on the GPU (flow/tvl1_cuda.cu: one thread per pixel or line)
// and on the CPU (flow/tvl1_batch.cpp: plain loops), so the GPU's algorithm is tested on any machine:
// the CPU run of flow/tvl1_schedule.h must reproduce flow::tvl1 (tests/test_flow_batch.cpp).
//
// The maths is flow/tvl1.cpp's (see the comments there): the single-image solver keeps its own
// row-wise loops because they vectorise on the CPU; these per-pixel steps are the form a GPU wants.
// Layout: a batch of B planes of w x h values is one array, plane b starting at b * w * h.
#pragma once
#include <cmath>
#include <cstddef>

#ifdef __CUDACC__
#define AHMSA_HD __host__ __device__ __forceinline__
#else
#define AHMSA_HD inline
#endif

namespace ahmsa::flow::batch {

template <class T>
AHMSA_HD T clampv(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}
template <class T>
AHMSA_HD T* plane(T* d, int b, int w, int h) {
  return d + size_t(b) * w * h;
}

// ---- interpolation weights and border rules -----------------------------------------------------

// Keys' cubic convolution (a = -0.5) for fractional offset t in [0, 1).
AHMSA_HD void keys_weights(float t, float w[4]) {
  const float a = -0.5f;
  const float t2 = t * t, t3 = t2 * t;
  w[0] = a * (t3 - 2 * t2 + t);
  w[1] = (a + 2) * t3 - (a + 3) * t2 + 1;
  w[2] = -(a + 2) * t3 + (2 * a + 3) * t2 - a * t;
  w[3] = -a * (t3 - t2);
}
// Cubic B-spline beta3 at t + 1, t, t - 1, t - 2.
template <class T>
AHMSA_HD void bspline_weights(T t, T w[4]) {
  const T s = 1 - t, t2 = t * t, t3 = t2 * t, sixth = T(1) / 6;
  w[0] = s * s * s * sixth;
  w[1] = (3 * t3 - 6 * t2 + 4) * sixth;
  w[2] = (-3 * t3 + 3 * t2 + 3 * t + 1) * sixth;
  w[3] = t3 * sixth;
}
// Index i reflected into [0, n) about the first and last samples (period 2n - 2), as the B-spline
// prefilter assumes.
AHMSA_HD int mirror_index(int i, int n) {
  if (i >= 0 && i < n) return i;  // the common case, without the division
  if (n == 1) return 0;
  const int period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// ---- cubic B-spline prefilter of one line ----------------------------------------------------------
// Coefficients c with sum_k c[k] beta3(i - k) = s[i]: the samples filtered by 6 / (z + 4 + 1/z), i.e.
// one causal and one anti-causal first-order recursion with pole z = sqrt(3) - 2 (Unser 1999), on
// the mirror-extended line. The gain 6 per filtered direction is applied by the caller beforehand
// (prefilter_gain), so that a 2-D prefilter is: scale, then every row, then every column.
constexpr double kSplinePole = -0.2679491924311227;  // sqrt(3) - 2
constexpr int kSplineHorizon = 24;                    // |z|^24 < 2e-14: the truncated start sum is exact to float

AHMSA_HD double prefilter_gain(int w, int h) {
  const double z = kSplinePole, gain = (1 - z) * (1 - 1 / z);
  return (w > 1 ? gain : 1.0) * (h > 1 ? gain : 1.0);
}

template <class T>
AHMSA_HD void prefilter_line(T* c, int n, size_t step) {
  if (n < 2) return;
  const double z = kSplinePole;
  const T zt = T(z), end_gain = T(z / (z * z - 1));
  double start;  // causal start value sum_{k >= 0} z^k c_ext[k]
  if (n > kSplineHorizon) {
    double zk = z;
    start = c[0];
    for (int k = 1; k < kSplineHorizon; ++k, zk *= z) start += zk * c[k * step];
  } else {  // exact for the mirrored line of period 2n - 2: one period, geometric tail folded in
    const int period = 2 * n - 2;
    double zk = 1;
    start = 0;
    for (int k = 0; k < period; ++k, zk *= z) start += zk * c[(k < n ? k : period - k) * step];
    start /= 1 - zk;  // zk = z^period here
  }
  c[0] = T(start);
  for (int i = 1; i < n; ++i) c[i * step] += zt * c[(i - 1) * step];
  c[(n - 1) * step] = end_gain * (c[(n - 1) * step] + zt * c[(n - 2) * step]);
  for (int i = n - 2; i >= 0; --i) c[i * step] = zt * (c[(i + 1) * step] - c[i * step]);
}

// ---- pyramid ----------------------------------------------------------------------------------------

// Separable Gaussian blur with a (2r + 1)-tap kernel k, edges replicated; vertical pass then horizontal.
struct BlurVertical {
  const float* src;
  float* dst;
  const float* k;
  int r, w, h;
  AHMSA_HD void operator()(int b, int x, int y) const {
    const float* s = plane(src, b, w, h);
    float o = 0;
    for (int i = -r; i <= r; ++i) o += k[i + r] * s[size_t(clampv(y + i, 0, h - 1)) * w + x];
    plane(dst, b, w, h)[size_t(y) * w + x] = o;
  }
};
struct BlurHorizontal {
  const float* src;
  float* dst;
  const float* k;
  int r, w, h;
  AHMSA_HD void operator()(int b, int x, int y) const {
    const float* s = plane(src, b, w, h) + size_t(y) * w;
    float acc = 0;
    for (int i = 0; i <= 2 * r; ++i) acc += k[i] * s[clampv(x - r + i, 0, w - 1)];
    plane(dst, b, w, h)[size_t(y) * w + x] = acc;
  }
};

// Bilinear resampling sw x sh -> w x h with pixel centres aligned, then multiplied by `scale`
// (1 for images, the size ratio for flow components).
struct Resize {
  const float* src;
  float* dst;
  int sw, sh, w, h;
  float scale;
  AHMSA_HD void operator()(int b, int x, int y) const {
    const float sx = float(sw) / w, sy = float(sh) / h;
    const float fx = clampv((x + 0.5f) * sx - 0.5f, 0.f, float(sw - 1));
    const float fy = clampv((y + 0.5f) * sy - 0.5f, 0.f, float(sh - 1));
    const int x0 = fx < sw - 1 ? int(fx) : sw - 1, y0 = fy < sh - 1 ? int(fy) : sh - 1;
    const int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1, y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
    const float ax = fx - x0, ay = fy - y0;
    const float* s = plane(src, b, sw, sh);
    const float* r0 = s + size_t(y0) * sw;
    const float* r1 = s + size_t(y1) * sw;
    const float a = r0[x0] + ax * (r0[x1] - r0[x0]);
    const float c = r1[x0] + ax * (r1[x1] - r1[x0]);
    float v = a + ay * (c - a);
    if (scale != 1.f) v *= scale;
    plane(dst, b, w, h)[size_t(y) * w + x] = v;
  }
};

// ---- per level --------------------------------------------------------------------------------------

// Central differences (half the one-sided difference at the borders), as flow/tvl1.cpp.
struct CentredGradient {
  const float* I;
  float* Ix;
  float* Iy;
  int w, h;
  AHMSA_HD void operator()(int b, int x, int y) const {
    const float* p = plane(I, b, w, h);
    const float* r = p + size_t(y) * w;
    float gx = 0;
    if (w > 1) {
      if (x == 0) gx = 0.5f * (r[1] - r[0]);
      else if (x == w - 1) gx = 0.5f * (r[w - 1] - r[w - 2]);
      else gx = 0.5f * (r[x + 1] - r[x - 1]);
    }
    const float up = p[size_t(y > 0 ? y - 1 : 0) * w + x], dn = p[size_t(y < h - 1 ? y + 1 : h - 1) * w + x];
    plane(Ix, b, w, h)[size_t(y) * w + x] = gx;
    plane(Iy, b, w, h)[size_t(y) * w + x] = 0.5f * (dn - up);
  }
};

// The B-spline prefilter as three batched steps: scale every value, then each row, then each column.
template <class T>
struct ScaleValues {
  T* d;
  int w, h;
  double factor;
  AHMSA_HD void operator()(int b, int x, int y) const {
    T& v = plane(d, b, w, h)[size_t(y) * w + x];
    v = T(v * factor);
  }
};
template <class T>
struct PrefilterRow {  // line index = y
  T* d;
  int w, h;
  AHMSA_HD void operator()(int b, int y) const { prefilter_line(plane(d, b, w, h) + size_t(y) * w, w, 1); }
};
template <class T>
struct PrefilterColumn {  // line index = x
  T* d;
  int w, h;
  AHMSA_HD void operator()(int b, int x) const { prefilter_line(plane(d, b, w, h) + x, h, size_t(w)); }
};
struct ToDouble {
  const float* src;
  double* dst;
  int w, h;
  AHMSA_HD void operator()(int b, int x, int y) const {
    const size_t i = size_t(b) * w * h + size_t(y) * w + x;
    dst[i] = src[i];
  }
};

// The solver state of one level for all pairs (all arrays B x w x h unless said otherwise).
struct State {
  int w, h;
  const float* I0;
  const double* I1coef;  // B-spline coefficients of I1 (B-spline mode)
  const float* I1;       // the samples of I1 (bicubic mode)
  const float* I1x;      // gradient of I1: spline coefficients (B-spline mode) or samples
  const float* I1y;
  float* gx;      // grad I1(x + u0), 0 outside the image
  float* gy;
  float* rho_c;   // I1(x + u0) - grad I1(x + u0) . u0 - I0(x)
  float* inv_g2;  // 1 / max(|grad I1w|^2, 1e-10)
  float* u1;
  float* u2;
  float* p11;
  float* p12;
  float* p21;
  float* p22;
  const int* active;  // per pair: still iterating in this warp
  float lt, theta, taut;
};

// Re-linearisation at the current flow u0: samples I1 and its gradient at x + u0 (cubic B-spline with
// mirrored indices, or Keys with clamped ones) and stores the constants of the thresholding step.
template <bool kBSpline>
struct Warp {
  State s;
  AHMSA_HD void operator()(int b, int x, int y) const {
    const int W = s.w, H = s.h;
    const size_t i = size_t(b) * W * H + size_t(y) * W + x;
    const size_t base = size_t(b) * W * H;
    const float u = s.u1[i], v = s.u2[i];
    float fx = x + u, fy = y + v;
    const bool outside = fx < -0.5f || fx > W - 0.5f || fy < -0.5f || fy > H - 0.5f;
    fx = clampv(fx, 0.f, float(W - 1));
    fy = clampv(fy, 0.f, float(H - 1));
    const int ix = int(fx) < W - 1 ? int(fx) : W - 1, iy = int(fy) < H - 1 ? int(fy) : H - 1;
    int xs[4];
    double a = 0;  // I1's value: summed in double in B-spline mode (see flow/tvl1.cpp), in float for Keys
    float ax = 0, ay = 0;
    if (kBSpline) {
      double wx[4], wy[4];
      bspline_weights<double>(fx - ix, wx);
      bspline_weights<double>(fy - iy, wy);
      for (int k = 0; k < 4; ++k) xs[k] = mirror_index(ix - 1 + k, W);
      for (int j = 0; j < 4; ++j) {
        const size_t ro = base + size_t(mirror_index(iy - 1 + j, H)) * W;
        double ra = 0;
        float rx = 0, ry = 0;
        for (int k = 0; k < 4; ++k) {
          ra += wx[k] * s.I1coef[ro + xs[k]];
          rx += float(wx[k]) * s.I1x[ro + xs[k]];
          ry += float(wx[k]) * s.I1y[ro + xs[k]];
        }
        a += wy[j] * ra, ax += float(wy[j]) * rx, ay += float(wy[j]) * ry;
      }
    } else {
      float wx[4], wy[4];
      keys_weights(fx - ix, wx);
      keys_weights(fy - iy, wy);
      for (int k = 0; k < 4; ++k) xs[k] = clampv(ix - 1 + k, 0, W - 1);
      float af = 0;
      for (int j = 0; j < 4; ++j) {
        const size_t ro = base + size_t(clampv(iy - 1 + j, 0, H - 1)) * W;
        float ra = 0, rx = 0, ry = 0;
        for (int k = 0; k < 4; ++k) {
          ra += wx[k] * s.I1[ro + xs[k]];
          rx += wx[k] * s.I1x[ro + xs[k]];
          ry += wx[k] * s.I1y[ro + xs[k]];
        }
        af += wy[j] * ra, ax += wy[j] * rx, ay += wy[j] * ry;
      }
      a = af;
    }
    const float gx = outside ? 0.f : ax, gy = outside ? 0.f : ay;
    s.gx[i] = gx, s.gy[i] = gy;
    s.rho_c[i] = float(a) - gx * u - gy * v - s.I0[i];
    const float g2 = gx * gx + gy * gy;
    s.inv_g2[i] = 1.f / (g2 > 1e-10f ? g2 : 1e-10f);
  }
};

// Median of the k x k neighbourhood (edges replicated), k <= kMaxMedian, of pairs still iterating.
constexpr int kMaxMedian = 7;
struct Median {
  const float* src;
  float* dst;
  const int* active;
  int w, h, k;
  AHMSA_HD void operator()(int b, int x, int y) const {
    if (!active[b]) return;
    const float* s = plane(src, b, w, h);
    float v[kMaxMedian * kMaxMedian];
    const int r = k / 2, n = k * k;
    int m = 0;
    for (int dy = -r; dy <= r; ++dy)
      for (int dx = -r; dx <= r; ++dx) v[m++] = s[size_t(clampv(y + dy, 0, h - 1)) * w + clampv(x + dx, 0, w - 1)];
    for (int i = 0; i <= n / 2; ++i) {  // selection up to the middle element
      int lo = i;
      for (int j = i + 1; j < n; ++j)
        if (v[j] < v[lo]) lo = j;
      const float t = v[i];
      v[i] = v[lo], v[lo] = t;
    }
    plane(dst, b, w, h)[size_t(y) * w + x] = v[n / 2];
  }
};
struct CopyActive {
  const float* src;
  float* dst;
  const int* active;
  int w, h;
  AHMSA_HD void operator()(int b, int x, int y) const {
    if (!active[b]) return;
    const size_t i = size_t(b) * w * h + size_t(y) * w + x;
    dst[i] = src[i];
  }
};

// Steps 1 and 2 of an iteration (thresholding, then u = v + theta div p) for one pixel; returns
// |u_new - u|^2, the pixel's share of the stopping test. Reads p before this iteration's dual step.
struct Primal {
  State s;
  AHMSA_HD float operator()(int b, int x, int y) const {
    if (!s.active[b]) return 0.f;
    const int W = s.w;
    const size_t i = size_t(b) * W * s.h + size_t(y) * W + x;
    const float rho = s.rho_c[i] + s.gx[i] * s.u1[i] + s.gy[i] * s.u2[i];
    const float t = clampv(-rho * s.inv_g2[i], -s.lt, s.lt);
    const float p11l = x > 0 ? s.p11[i - 1] : 0.f, p21l = x > 0 ? s.p21[i - 1] : 0.f;
    const float p12u = y > 0 ? s.p12[i - W] : 0.f, p22u = y > 0 ? s.p22[i - W] : 0.f;
    const float div1 = s.p11[i] - p11l + s.p12[i] - p12u;
    const float div2 = s.p21[i] - p21l + s.p22[i] - p22u;
    const float d1 = t * s.gx[i] + s.theta * div1, d2 = t * s.gy[i] + s.theta * div2;
    s.u1[i] += d1, s.u2[i] += d2;
    return d1 * d1 + d2 * d2;
  }
};

// Step 3: p = (p + tau/theta grad u) / (1 + tau/theta |grad u|), forward differences (0 across the
// last column / row; p1 stays 0 on the last column). Reads u after this iteration's primal step.
struct Dual {
  State s;
  AHMSA_HD void operator()(int b, int x, int y) const {
    if (!s.active[b]) return;
    const int W = s.w, H = s.h;
    const size_t i = size_t(b) * W * H + size_t(y) * W + x;
    const float u1y = y < H - 1 ? s.u1[i + W] - s.u1[i] : 0.f, u2y = y < H - 1 ? s.u2[i + W] - s.u2[i] : 0.f;
    const float taut = s.taut;
    if (x < W - 1) {
      const float u1x = s.u1[i + 1] - s.u1[i], u2x = s.u2[i + 1] - s.u2[i];
      const float d1 = 1.f + taut * std::sqrt(u1x * u1x + u1y * u1y);
      const float d2 = 1.f + taut * std::sqrt(u2x * u2x + u2y * u2y);
      s.p11[i] = (s.p11[i] + taut * u1x) / d1;
      s.p12[i] = (s.p12[i] + taut * u1y) / d1;
      s.p21[i] = (s.p21[i] + taut * u2x) / d2;
      s.p22[i] = (s.p22[i] + taut * u2y) / d2;
    } else {
      s.p12[i] = (s.p12[i] + taut * u1y) / (1.f + taut * std::sqrt(u1y * u1y));
      s.p22[i] = (s.p22[i] + taut * u2y) / (1.f + taut * std::sqrt(u2y * u2y));
    }
  }
};

// After an iteration: a pair whose mean squared update fell below epsilon^2 stops for this warp.
struct CheckConverged {
  const double* err;  // per pair: sum over the pixels of |u_new - u|^2
  int* active;
  double eps2N;  // epsilon^2 * w * h
  AHMSA_HD void operator()(int b) const {
    if (active[b] && err[b] < eps2N) active[b] = 0;
  }
};

}  // namespace ahmsa::flow::batch
