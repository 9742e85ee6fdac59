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
// Everything runs coarse to fine on a Gaussian pyramid with bicubic warping of I1 and its gradient.
#include <algorithm>
#include <cmath>

#include "flow/flow.h"
#include "flow/internal.h"

namespace ahmsa::flow {

using detail::Plane;

namespace {

// Central differences of an image (half the one-sided difference at the borders, i.e. edge replicate).
void centred_gradient(const Plane& I, Plane& Ix, Plane& Iy) {
  const int W = I.w, H = I.h;
  Ix = Plane(W, H), Iy = Plane(W, H);
  for (int y = 0; y < H; ++y) {
    const float* r = I.row(y);
    const float* up = I.row(std::max(y - 1, 0));
    const float* dn = I.row(std::min(y + 1, H - 1));
    float *gx = Ix.row(y), *gy = Iy.row(y);
    if (W > 1) {
      gx[0] = 0.5f * (r[1] - r[0]);
      gx[W - 1] = 0.5f * (r[W - 1] - r[W - 2]);
    }
    for (int x = 1; x < W - 1; ++x) gx[x] = 0.5f * (r[x + 1] - r[x - 1]);
    for (int x = 0; x < W; ++x) gy[x] = 0.5f * (dn[x] - up[x]);
  }
}

// Samples I1, I1x, I1y at x + u with Keys' cubic convolution. Where x + u leaves the image (by more
// than half a pixel) the gradient is set to 0, which removes the data term there (as IPOL does).
void warp_three(const Plane& I1, const Plane& I1x, const Plane& I1y, const float* u1, const float* u2, float* I1w,
                float* I1wx, float* I1wy, int y_begin, int y_end) {
  const int W = I1.w, H = I1.h;
  for (int y = y_begin; y < y_end; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = size_t(y) * W + x;
      float fx = x + u1[i], fy = y + u2[i];
      const bool outside = fx < -0.5f || fx > W - 0.5f || fy < -0.5f || fy > H - 0.5f;
      fx = std::clamp(fx, 0.f, float(W - 1));
      fy = std::clamp(fy, 0.f, float(H - 1));
      const int ix = std::min(int(fx), W - 1), iy = std::min(int(fy), H - 1);
      float wx[4], wy[4];
      detail::cubic_weights(fx - ix, wx);
      detail::cubic_weights(fy - iy, wy);
      int xs[4];
      for (int k = 0; k < 4; ++k) xs[k] = std::clamp(ix - 1 + k, 0, W - 1);
      float a = 0, ax = 0, ay = 0;
      for (int j = 0; j < 4; ++j) {
        const size_t ro = size_t(std::clamp(iy - 1 + j, 0, H - 1)) * W;
        float ra = 0, rx = 0, ry = 0;
        for (int k = 0; k < 4; ++k) {
          ra += wx[k] * I1.d[ro + xs[k]];
          rx += wx[k] * I1x.d[ro + xs[k]];
          ry += wx[k] * I1y.d[ro + xs[k]];
        }
        a += wy[j] * ra, ax += wy[j] * rx, ay += wy[j] * ry;
      }
      I1w[i] = a;
      I1wx[i] = outside ? 0.f : ax;
      I1wy[i] = outside ? 0.f : ay;
    }
}

struct Level {
  Plane I0, I1;
};

// One pyramid level: `warps` re-linearisations, each iterated to convergence. u1/u2 hold the initial
// flow on entry and the result on exit.
void tvl1_level(const Level& L, Plane& u1, Plane& u2, Plane* dual, const TVL1Params& p, int nt) {
  const int W = L.I0.w, H = L.I0.h;
  const size_t N = size_t(W) * H;
  Plane I1x, I1y;
  centred_gradient(L.I1, I1x, I1y);

  // Per-warp constants of the thresholding step and the iteration state.
  std::vector<float> I1w(N), gx(N), gy(N), rho_c(N), inv_g2(N);
  // Dual variables: 0 at the start of every level, as in IPOL (carrying them over from the coarser
  // level, as OpenCV does, measured slightly worse on the face cases).
  std::vector<float>& p11 = dual[0].d;
  std::vector<float>& p12 = dual[1].d;
  std::vector<float>& p21 = dual[2].d;
  std::vector<float>& p22 = dual[3].d;
  for (int y = 0; y < H; ++y) p11[size_t(y) * W + W - 1] = p21[size_t(y) * W + W - 1] = 0.f;  // boundary
  for (int x = 0; x < W; ++x) p12[size_t(H - 1) * W + x] = p22[size_t(H - 1) * W + x] = 0.f;
  std::vector<float> med_src(p.median_filter > 1 ? N : 0);
  std::vector<float> zero_row(W, 0.f);

  const float lt = p.lambda * p.theta;  // threshold of the data term
  const float taut = p.tau / p.theta;
  const float theta = p.theta;
  const float eps2 = p.epsilon * p.epsilon;
  const int inner = std::max(1, p.inner_iterations), outer = std::max(1, p.outer_iterations);
  float* U1 = u1.d.data();
  float* U2 = u2.d.data();
  const float* I0 = L.I0.d.data();

  double err_sum = 0;  // shared by the threads: reduction target
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> med_buf;
    for (int warp = 0; warp < p.warps; ++warp) {
#pragma omp for schedule(static)
      for (int y = 0; y < H; ++y) {
        warp_three(L.I1, I1x, I1y, U1, U2, I1w.data(), gx.data(), gy.data(), y, y + 1);
        for (size_t i = size_t(y) * W; i < size_t(y + 1) * W; ++i) {
          rho_c[i] = I1w[i] - gx[i] * U1[i] - gy[i] * U2[i] - I0[i];
          inv_g2[i] = 1.f / std::max(gx[i] * gx[i] + gy[i] * gy[i], 1e-10f);
        }
      }
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
#pragma omp single
          err_sum = 0;
          // Steps 1 and 2: threshold, then u = v + theta div p (div = backward differences of p, with
          // p1 = 0 on the last column and p2 = 0 on the last row, which the dual step keeps).
#pragma omp for schedule(static) reduction(+ : err_sum)
          for (int y = 0; y < H; ++y) {
            const size_t o0 = size_t(y) * W;
            const float* __restrict p11r = p11.data() + o0;
            const float* __restrict p21r = p21.data() + o0;
            const float* __restrict p12r = p12.data() + o0;
            const float* __restrict p22r = p22.data() + o0;
            const float* __restrict p12u = y > 0 ? p12.data() + o0 - W : zero_row.data();
            const float* __restrict p22u = y > 0 ? p22.data() + o0 - W : zero_row.data();
            const float* __restrict gxr = gx.data() + o0;
            const float* __restrict gyr = gy.data() + o0;
            const float* __restrict rcr = rho_c.data() + o0;
            const float* __restrict igr = inv_g2.data() + o0;
            float* __restrict u1r = U1 + o0;
            float* __restrict u2r = U2 + o0;
            float err = 0;
            for (int x = 0; x < W; ++x) {
              const float rho = rcr[x] + gxr[x] * u1r[x] + gyr[x] * u2r[x];
              // TH: v = u - rho grad/|grad|^2 clipped to a step of lambda theta |grad| either way.
              const float t = std::clamp(-rho * igr[x], -lt, lt);
              const float p11l = x > 0 ? p11r[x - 1] : 0.f;
              const float p21l = x > 0 ? p21r[x - 1] : 0.f;
              const float div1 = p11r[x] - p11l + p12r[x] - p12u[x];
              const float div2 = p21r[x] - p21l + p22r[x] - p22u[x];
              const float n1 = u1r[x] + t * gxr[x] + theta * div1;
              const float n2 = u2r[x] + t * gyr[x] + theta * div2;
              const float d1 = n1 - u1r[x], d2 = n2 - u2r[x];
              err += d1 * d1 + d2 * d2;
              u1r[x] = n1, u2r[x] = n2;
            }
            err_sum += err;
          }
          const bool stop = err_sum < eps2 * double(N);  // read by every thread before the next barrier
          // Step 3: dual ascent with the projection onto |p| <= 1 (semi-implicit form).
#pragma omp for schedule(static)
          for (int y = 0; y < H; ++y) {
            const size_t o0 = size_t(y) * W;
            const float* __restrict u1r = U1 + o0;
            const float* __restrict u2r = U2 + o0;
            const float* __restrict u1d = y < H - 1 ? u1r + W : u1r;  // last row: grad_y = 0
            const float* __restrict u2d = y < H - 1 ? u2r + W : u2r;
            float* __restrict p11r = p11.data() + o0;
            float* __restrict p12r = p12.data() + o0;
            float* __restrict p21r = p21.data() + o0;
            float* __restrict p22r = p22.data() + o0;
            for (int x = 0; x < W - 1; ++x) {
              const float u1x = u1r[x + 1] - u1r[x], u1y = u1d[x] - u1r[x];
              const float u2x = u2r[x + 1] - u2r[x], u2y = u2d[x] - u2r[x];
              const float ng1 = 1.f + taut * std::sqrt(u1x * u1x + u1y * u1y);
              const float ng2 = 1.f + taut * std::sqrt(u2x * u2x + u2y * u2y);
              p11r[x] = (p11r[x] + taut * u1x) / ng1;
              p12r[x] = (p12r[x] + taut * u1y) / ng1;
              p21r[x] = (p21r[x] + taut * u2x) / ng2;
              p22r[x] = (p22r[x] + taut * u2y) / ng2;
            }
            const int x = W - 1;  // last column: grad_x = 0, p1 stays 0
            const float u1y = u1d[x] - u1r[x], u2y = u2d[x] - u2r[x];
            p12r[x] = (p12r[x] + taut * u1y) / (1.f + taut * std::fabs(u1y));
            p22r[x] = (p22r[x] + taut * u2y) / (1.f + taut * std::fabs(u2y));
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

FlowField tvl1(const img::Image& I0_in, const img::Image& I1_in, const TVL1Params& p) {
  detail::check_pair(I0_in, I1_in, "tvl1");
  if (!(p.tau > 0) || !(p.lambda > 0) || !(p.theta > 0) || !(p.zoom > 0 && p.zoom < 1) || p.scales < 1 ||
      p.warps < 1 || (p.median_filter > 1 && p.median_filter % 2 == 0))
    throw FlowError("tvl1: invalid parameters (" + p.describe() + ")");
  Plane I0 = detail::grey_plane(I0_in, "tvl1 frame 0"), I1 = detail::grey_plane(I1_in, "tvl1 frame 1");
  const int W = I0.w, H = I0.h;
  const int nt = detail::thread_count(p.threads);

  if (p.normalize) {  // joint min-max stretch to 0..255, so lambda means the same for any contrast
    float lo = I0.d[0], hi = I0.d[0];
    for (float v : I0.d) lo = std::min(lo, v), hi = std::max(hi, v);
    for (float v : I1.d) lo = std::min(lo, v), hi = std::max(hi, v);
    if (hi > lo) {
      for (auto& v : I0.d) v = 255.f * (v - lo) / (hi - lo);
      for (auto& v : I1.d) v = 255.f * (v - lo) / (hi - lo);
    }
  }

  // As IPOL: no more levels than keep the coarsest diagonal at about 16 px.
  int scales = p.scales;
  const double max_levels = 1 + std::log(std::hypot(double(W), double(H)) / 16.0) / std::log(1.0 / p.zoom);
  scales = std::max(1, std::min(scales, int(max_levels)));

  // Pyramid: blur with sigma 0.6 sqrt(1/zoom^2 - 1) (IPOL's anti-aliasing), then resample.
  const float sigma = 0.6f * std::sqrt(1.f / (p.zoom * p.zoom) - 1.f);
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
