// TV-L1 optical flow, duality-based (Zach, Pock, Bischof 2007), following the analysis and the
// numerical scheme of Sanchez, Meinhardt-Llopis, Facciolo, "TV-L1 Optical Flow Estimation", IPOL 2013.
//
// Energy: E(u) = sum_x |grad u1| + |grad u2| + lambda |rho(u)|, with the data term linearised around
// the current flow u0 at every warp: rho(u) = I1(x+u0) + grad I1(x+u0) . (u - u0) - I0(x).
// Splitting with an auxiliary field v and coupling (1/2theta)|u - v|^2 gives three alternating steps:
//   1. v = u + TH(u):   pointwise soft thresholding of the linearised data term;
//   2. u = v + theta div p;
//   3. p = (p + tau/theta grad u) / (1 + tau/theta |grad u|)   (projection step of Chambolle's dual)
// The gradient is forward differences (0 on the last column / row) and div its negative adjoint.
// Everything runs coarse to fine on a Gaussian pyramid; I1 and its gradient are warped with cubic
// B-spline interpolation (or, selectable, Keys' bicubic convolution).
#include <algorithm>
#include <cmath>

#include "flow/flow.h"
#include "flow/internal.h"
#include "flow/tvl1_steps.h"

#ifdef AHMSA_FLOW_X86
#include <immintrin.h>
#endif

namespace ahmsa::flow {

using detail::Plane;

namespace {

struct Level {
  Plane I0, I1;
};

// Per-warp constants and the iteration state, as pointers to whole planes (W x H, row-major).
struct Fields {
  int W = 0, H = 0;
  const float* gx;      // I1x warped: grad I1(x + u0), 0 outside the image
  const float* gy;
  const float* rho_c;   // I1(x + u0) - grad I1(x + u0) . u0 - I0(x): rho(u) = rho_c + grad I1w . u
  const float* inv_g2;  // 1 / max(|grad I1w|^2, 1e-10)
  float* u1;            // flow
  float* u2;
  float* p11;           // dual variables p1 = (p11, p12) of u1 and p2 = (p21, p22) of u2
  float* p12;
  float* p21;
  float* p22;
  const float* zero_row;  // W zeros: the p12 / p22 "row -1"
  float lt, theta, taut;  // lambda theta, theta, tau / theta
};

// Steps 1 and 2 for row y: v = u + TH(u), then u = v + theta div p with div the backward differences
// of p (p1 = 0 on the last column and p2 = 0 on the last row, which the dual step keeps). Reads p on
// rows y and y - 1 (before their dual step), writes u on row y. Returns sum |u_new - u|^2 over the row.
AHMSA_ALWAYS_INLINE float primal_row(const Fields& F, int y) {
  const int W = F.W;
  const size_t o0 = size_t(y) * W;
  const float* __restrict p11r = F.p11 + o0;
  const float* __restrict p21r = F.p21 + o0;
  const float* __restrict p12r = F.p12 + o0;
  const float* __restrict p22r = F.p22 + o0;
  const float* __restrict p12u = y > 0 ? p12r - W : F.zero_row;
  const float* __restrict p22u = y > 0 ? p22r - W : F.zero_row;
  const float* __restrict gxr = F.gx + o0;
  const float* __restrict gyr = F.gy + o0;
  const float* __restrict rcr = F.rho_c + o0;
  const float* __restrict igr = F.inv_g2 + o0;
  float* __restrict u1r = F.u1 + o0;
  float* __restrict u2r = F.u2 + o0;
  const float lt = F.lt, theta = F.theta;
  float err = 0;
  {  // x = 0: no left neighbour of p1
    const float rho = rcr[0] + gxr[0] * u1r[0] + gyr[0] * u2r[0];
    const float t = std::clamp(-rho * igr[0], -lt, lt);
    const float div1 = p11r[0] + p12r[0] - p12u[0];
    const float div2 = p21r[0] + p22r[0] - p22u[0];
    const float d1 = t * gxr[0] + theta * div1, d2 = t * gyr[0] + theta * div2;
    err += d1 * d1 + d2 * d2;
    u1r[0] += d1, u2r[0] += d2;
  }
  for (int x = 1; x < W; ++x) {
    const float rho = rcr[x] + gxr[x] * u1r[x] + gyr[x] * u2r[x];
    // TH: v = u - rho grad/|grad|^2 clipped to a step of lambda theta |grad| either way.
    const float t = std::clamp(-rho * igr[x], -lt, lt);
    const float div1 = p11r[x] - p11r[x - 1] + p12r[x] - p12u[x];
    const float div2 = p21r[x] - p21r[x - 1] + p22r[x] - p22u[x];
    const float d1 = t * gxr[x] + theta * div1, d2 = t * gyr[x] + theta * div2;
    err += d1 * d1 + d2 * d2;
    u1r[x] += d1, u2r[x] += d2;
  }
  return err;
}

// sqrt of n values in place, vectorised (std::sqrt in a loop is not, because of errno). Not
// always-inline: the AVX2 one is called only from AVX2 code, where it can be inlined.
void sqrt_in_place_sse2(float* __restrict a, int n) {
  int x = 0;
#ifdef AHMSA_FLOW_X86
  for (; x + 4 <= n; x += 4) _mm_storeu_ps(a + x, _mm_sqrt_ps(_mm_loadu_ps(a + x)));
#endif
  for (; x < n; ++x) a[x] = std::sqrt(a[x]);
}
#ifdef AHMSA_FLOW_X86
AHMSA_TARGET_AVX2 void sqrt_in_place_avx2(float* __restrict a, int n) {
  int x = 0;
  for (; x + 8 <= n; x += 8) _mm256_storeu_ps(a + x, _mm256_sqrt_ps(_mm256_loadu_ps(a + x)));
  for (; x + 4 <= n; x += 4) _mm_storeu_ps(a + x, _mm_sqrt_ps(_mm_loadu_ps(a + x)));
  for (; x < n; ++x) a[x] = std::sqrt(a[x]);
}
#else
void sqrt_in_place_avx2(float* a, int n) { sqrt_in_place_sse2(a, n); }
#endif

// Step 3 for row y: p = (p + tau/theta grad u) / (1 + tau/theta |grad u|) with grad the forward
// differences (0 across the last column / row). Reads u on rows y and y + 1 (after their primal step).
// Scratch: ng (2 W).
AHMSA_ALWAYS_INLINE void dual_row(const Fields& F, int y, float* __restrict ng, bool avx2) {
  const int W = F.W, H = F.H;
  const size_t o0 = size_t(y) * W;
  const float* __restrict u1r = F.u1 + o0;
  const float* __restrict u2r = F.u2 + o0;
  const float* __restrict u1d = y < H - 1 ? u1r + W : u1r;  // last row: grad_y = 0
  const float* __restrict u2d = y < H - 1 ? u2r + W : u2r;
  float* __restrict p11r = F.p11 + o0;
  float* __restrict p12r = F.p12 + o0;
  float* __restrict p21r = F.p21 + o0;
  float* __restrict p22r = F.p22 + o0;
  float* __restrict ng1 = ng;
  float* __restrict ng2 = ng + W;
  const float taut = F.taut;
  for (int x = 0; x < W - 1; ++x) {
    const float u1x = u1r[x + 1] - u1r[x], u1y = u1d[x] - u1r[x];
    const float u2x = u2r[x + 1] - u2r[x], u2y = u2d[x] - u2r[x];
    ng1[x] = u1x * u1x + u1y * u1y;
    ng2[x] = u2x * u2x + u2y * u2y;
  }
  {  // last column: grad_x = 0
    const float u1y = u1d[W - 1] - u1r[W - 1], u2y = u2d[W - 1] - u2r[W - 1];
    ng1[W - 1] = u1y * u1y, ng2[W - 1] = u2y * u2y;
  }
  avx2 ? sqrt_in_place_avx2(ng, 2 * W) : sqrt_in_place_sse2(ng, 2 * W);
  for (int x = 0; x < W - 1; ++x) {
    const float u1x = u1r[x + 1] - u1r[x], u1y = u1d[x] - u1r[x];
    const float u2x = u2r[x + 1] - u2r[x], u2y = u2d[x] - u2r[x];
    const float d1 = 1.f + taut * ng1[x], d2 = 1.f + taut * ng2[x];
    p11r[x] = (p11r[x] + taut * u1x) / d1;
    p12r[x] = (p12r[x] + taut * u1y) / d1;
    p21r[x] = (p21r[x] + taut * u2x) / d2;
    p22r[x] = (p22r[x] + taut * u2y) / d2;
  }
  const int x = W - 1;  // p1 stays 0 on the last column
  p12r[x] = (p12r[x] + taut * (u1d[x] - u1r[x])) / (1.f + taut * ng1[x]);
  p22r[x] = (p22r[x] + taut * (u2d[x] - u2r[x])) / (1.f + taut * ng2[x]);
}

// One whole iteration in a single sweep (one thread): u on row y, then p on row y - 1, whose inputs
// (u on rows y - 1 and y) are now final, while p on row y - 1 is no longer needed by any later primal
// row. Same arithmetic as the two-sweep form. Returns sum |u_new - u|^2, accumulated row by row.
AHMSA_ALWAYS_INLINE double iteration_body(const Fields& F, float* ng, bool avx2) {
  double err = 0;
  for (int y = 0; y < F.H; ++y) {
    err += primal_row(F, y);
    if (y > 0) dual_row(F, y - 1, ng, avx2);
  }
  dual_row(F, F.H - 1, ng, avx2);
  return err;
}
double iteration_sse2(const Fields& F, float* ng) { return iteration_body(F, ng, false); }
AHMSA_TARGET_AVX2 double iteration_avx2(const Fields& F, float* ng) { return iteration_body(F, ng, true); }
// Row kernels for the multi-threaded two-sweep form (large levels).
float primal_sse2(const Fields& F, int y) { return primal_row(F, y); }
AHMSA_TARGET_AVX2 float primal_avx2(const Fields& F, int y) { return primal_row(F, y); }
void dual_sse2(const Fields& F, int y, float* ng) { dual_row(F, y, ng, false); }
AHMSA_TARGET_AVX2 void dual_avx2(const Fields& F, int y, float* ng) { dual_row(F, y, ng, true); }

// One pyramid level: `warps` re-linearisations, each iterated to convergence. u1/u2 hold the initial
// flow on entry and the result on exit.
void tvl1_level(const Level& L, Plane& u1, Plane& u2, Plane* dual, const TVL1Params& p, int nt) {
  const int W = L.I0.w, H = L.I0.h;
  const size_t N = size_t(W) * H;
  Plane I1x(W, H), I1y(W, H);
  const batch::CentredGradient gradient{L.I1.d.data(), I1x.d.data(), I1y.d.data(), W, H};
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) gradient(0, x, y);
  // For the B-spline the warp samples spline coefficients. I1's are kept in double: in float, the
  // spline would miss the samples by ~1e-5 grey levels, and in flat areas TV-L1 turns that residual
  // into visible flow (identical 64 px frames gave up to 0.6 px); in double, the value at u = 0
  // rounds back to exactly I1. The gradient only sets the slope of the linearisation: float is enough.
  const bool bspline = p.interpolation == TVL1Params::Interpolation::BSpline;
  std::vector<double> I1coef;
  if (bspline) {
    I1coef.assign(L.I1.d.begin(), L.I1.d.end());
    detail::bspline_prefilter(I1coef.data(), W, H);
    detail::bspline_prefilter(I1x.d.data(), W, H);
    detail::bspline_prefilter(I1y.d.data(), W, H);
  }

  // Per-warp constants of the thresholding step.
  std::vector<float> gx(N), gy(N), rho_c(N), inv_g2(N);
  // Dual variables: 0 at the start of every level, as in IPOL (carrying them over from the coarser
  // level, as OpenCV does, measured slightly worse on the face cases).
  std::vector<float> med_src(p.median_filter > 1 ? N : 0);
  std::vector<float> zero_row(W, 0.f);

  Fields F;
  F.W = W, F.H = H;
  F.gx = gx.data(), F.gy = gy.data(), F.rho_c = rho_c.data(), F.inv_g2 = inv_g2.data();
  F.u1 = u1.d.data(), F.u2 = u2.d.data();
  F.p11 = dual[0].d.data(), F.p12 = dual[1].d.data(), F.p21 = dual[2].d.data(), F.p22 = dual[3].d.data();
  F.zero_row = zero_row.data();
  F.lt = p.lambda * p.theta;  // threshold of the data term
  F.theta = p.theta;
  F.taut = p.tau / p.theta;
  for (int y = 0; y < H; ++y) F.p11[size_t(y) * W + W - 1] = F.p21[size_t(y) * W + W - 1] = 0.f;  // boundary
  for (int x = 0; x < W; ++x) F.p12[size_t(H - 1) * W + x] = F.p22[size_t(H - 1) * W + x] = 0.f;

  const double eps2N = double(p.epsilon) * p.epsilon * double(N);
  const int inner = std::max(1, p.inner_iterations), outer = std::max(1, p.outer_iterations);
  const bool avx2 = detail::cpu_has_avx2_fma();
  float* U1 = F.u1;
  float* U2 = F.u2;
  // The re-linearisation step, shared with the batched solver (flow/tvl1_steps.h) as a batch of one.
  batch::State st{};
  st.w = W, st.h = H;
  st.I0 = L.I0.d.data(), st.I1 = L.I1.d.data(), st.I1coef = I1coef.data();
  st.I1x = I1x.d.data(), st.I1y = I1y.d.data();
  st.gx = gx.data(), st.gy = gy.data(), st.rho_c = rho_c.data(), st.inv_g2 = inv_g2.data();
  st.u1 = U1, st.u2 = U2;
  const batch::Warp<true> warp_bspline{st};
  const batch::Warp<false> warp_keys{st};

  double err_sum = 0;  // shared by the threads: reduction target
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> med_buf, ng(2 * size_t(W));
    for (int warp = 0; warp < p.warps; ++warp) {
#pragma omp for schedule(static)
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) bspline ? warp_bspline(0, x, y) : warp_keys(0, x, y);
      bool converged = false;
      for (int o = 0; o < outer && !converged; ++o) {
        if (p.median_filter > 1) {  // OpenCV's scheme: a median on u before every block of iterations
#pragma omp for schedule(static)
          for (int y = 0; y < H; ++y) std::copy_n(U1 + size_t(y) * W, W, med_src.data() + size_t(y) * W);
#pragma omp for schedule(static)
          for (int y = 0; y < H; ++y) detail::median_rows(med_src.data(), U1, W, H, p.median_filter, y, y + 1, med_buf);
#pragma omp for schedule(static)
          for (int y = 0; y < H; ++y) std::copy_n(U2 + size_t(y) * W, W, med_src.data() + size_t(y) * W);
#pragma omp for schedule(static)
          for (int y = 0; y < H; ++y) detail::median_rows(med_src.data(), U2, W, H, p.median_filter, y, y + 1, med_buf);
        }
        for (int it = 0; it < inner; ++it) {
          bool stop;
          if (nt == 1) {  // the common case (levels below kMinParallelPixels): one fused sweep
            stop = (avx2 ? iteration_avx2(F, ng.data()) : iteration_sse2(F, ng.data())) < eps2N;
          } else {
#pragma omp single
            err_sum = 0;
#pragma omp for schedule(static) reduction(+ : err_sum)
            for (int y = 0; y < H; ++y) err_sum += avx2 ? primal_avx2(F, y) : primal_sse2(F, y);
            stop = err_sum < eps2N;  // read by every thread before the next barrier
#pragma omp for schedule(static)
            for (int y = 0; y < H; ++y) avx2 ? dual_avx2(F, y, ng.data()) : dual_sse2(F, y, ng.data());
          }
          if (stop) {
            converged = true;
            break;
          }
        }
      }
    }
  }
}

}  // namespace

namespace detail {

void tvl1_check_params(const TVL1Params& p, const char* who) {
  if (!(p.tau > 0) || !(p.lambda > 0) || !(p.theta > 0) || !(p.zoom > 0 && p.zoom < 1) || p.scales < 1 ||
      p.warps < 1 || (p.median_filter > 1 && p.median_filter % 2 == 0))
    throw FlowError(std::string(who) + ": invalid parameters (" + p.describe() + ")");
}

void tvl1_frames(const img::Image& I0_in, const img::Image& I1_in, const TVL1Params& p, Plane& I0, Plane& I1,
                 const char* who) {
  check_pair(I0_in, I1_in, who);
  I0 = grey_plane(I0_in, "tvl1 frame 0"), I1 = grey_plane(I1_in, "tvl1 frame 1");
  if (p.normalize) {  // joint min-max stretch to 0..255, so lambda means the same for any contrast
    float lo = I0.d[0], hi = I0.d[0];
    for (float v : I0.d) lo = std::min(lo, v), hi = std::max(hi, v);
    for (float v : I1.d) lo = std::min(lo, v), hi = std::max(hi, v);
    if (hi > lo) {
      for (auto& v : I0.d) v = 255.f * (v - lo) / (hi - lo);
      for (auto& v : I1.d) v = 255.f * (v - lo) / (hi - lo);
    }
  }
}

int tvl1_levels(int W, int H, const TVL1Params& p) {
  const double max_levels = 1 + std::log(std::hypot(double(W), double(H)) / 16.0) / std::log(1.0 / p.zoom);
  return std::max(1, std::min(p.scales, int(max_levels)));
}

}  // namespace detail

FlowField tvl1(const img::Image& I0_in, const img::Image& I1_in, const TVL1Params& p) {
  detail::tvl1_check_params(p, "tvl1");
  Plane I0, I1;
  detail::tvl1_frames(I0_in, I1_in, p, I0, I1, "tvl1");
  const int W = I0.w, H = I0.h;
  const int nt = detail::thread_count(p.threads);
  const int scales = detail::tvl1_levels(W, H, p);

  // Pyramid: blur with sigma 0.6 sqrt(1/zoom^2 - 1) (IPOL's anti-aliasing), then resample.
  const float sigma = detail::tvl1_pyramid_sigma(p);
  std::vector<Level> pyr(scales);
  pyr[0].I0 = std::move(I0), pyr[0].I1 = std::move(I1);
  for (int s = 1; s < scales; ++s) {
    const int w = detail::level_size(W, p.zoom, s), h = detail::level_size(H, p.zoom, s);
    pyr[s].I0 = detail::resize_plane(detail::gaussian_blur(pyr[s - 1].I0, sigma, p.threads), w, h);
    pyr[s].I1 = detail::resize_plane(detail::gaussian_blur(pyr[s - 1].I1, sigma, p.threads), w, h);
  }

  Plane u1(pyr[scales - 1].I0.w, pyr[scales - 1].I0.h), u2 = u1;
  Plane dual[4] = {u1, u1, u1, u1};
  for (int s = scales - 1; s >= 0; --s) {
    const Level& L = pyr[s];
    if (u1.w != L.I0.w || u1.h != L.I0.h) {  // upsample the coarser flow and rescale the vectors
      const float sx = float(L.I0.w) / u1.w, sy = float(L.I0.h) / u1.h;
      u1 = detail::resize_plane(u1, L.I0.w, L.I0.h);
      u2 = detail::resize_plane(u2, L.I0.w, L.I0.h);
      for (auto& v : u1.d) v *= sx;
      for (auto& v : u2.d) v *= sy;
      for (auto& q : dual) q = Plane(L.I0.w, L.I0.h);
    }
    tvl1_level(L, u1, u2, dual, p, L.I0.w * L.I0.h >= detail::kMinParallelPixels ? nt : 1);
  }
  FlowField f(W, H);
  f.u = std::move(u1.d);
  f.v = std::move(u2.d);
  return f;
}

}  // namespace ahmsa::flow
