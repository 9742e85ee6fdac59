// The batched TV-L1 schedule: pyramid, levels, warps, iterations and per-pair stopping, written once
// for any executor that runs the steps of flow/tvl1_steps.h over a batch. Two executors exist: the
// CPU one in flow/tvl1_batch.cpp (loops; the test reference) and the CUDA one in flow/tvl1_cuda.cu.
//
// An executor provides (pointers are in the executor's memory space):
//   template <class T> T* alloc(size_t n, const char* what)   n zero-filled T, freed with the executor
//   void upload(float* dst, const float* host, size_t n)      and download(float* host, const float* src, size_t n)
//   void zero(float* d, size_t n);  void set_flags(int* d, int n, int v)
//   template <class F> void pixels(int B, int w, int h, const F& f, const char* what)   f(b, x, y), all pixels
//   template <class F> void lines(int B, int n, const F& f, const char* what)          f(b, i), i < n
//   template <class F> void pixel_sums(int B, int w, int h, const F& f, double* out, const char* what)
//                                                  out[b] = sum of the float f(b, x, y) over the pair's pixels
//   template <class F> void pairs(int B, const F& f, const char* what)                  f(b)
//   bool any_set(const int* flags, int B)   may answer true without looking (the GPU looks every few calls)
#pragma once
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "flow/flow.h"
#include "flow/internal.h"
#include "flow/tvl1_steps.h"

namespace ahmsa::flow::batch {

// Runs TV-L1 on B pairs of w x h grey planes (already checked and normalised by the caller).
template <class Exec>
std::vector<FlowField> run_tvl1(Exec& ex, const std::vector<detail::Plane>& I0, const std::vector<detail::Plane>& I1,
                                const TVL1Params& p) {
  const int B = int(I0.size());
  if (B == 0) return {};
  const int W = I0[0].w, H = I0[0].h;
  const size_t N = size_t(W) * H;
  if (p.median_filter > kMaxMedian)
    throw FlowError("tvl1 batch: median filter " + std::to_string(p.median_filter) + " > " +
                    std::to_string(kMaxMedian) + " is not supported");

  // Level sizes and where each level's planes start in the pyramid arrays.
  const int scales = detail::tvl1_levels(W, H, p);
  std::vector<int> lw(scales), lh(scales);
  std::vector<size_t> offset(scales + 1, 0);
  for (int s = 0; s < scales; ++s) {
    lw[s] = s == 0 ? W : detail::level_size(W, p.zoom, s);
    lh[s] = s == 0 ? H : detail::level_size(H, p.zoom, s);
    offset[s + 1] = offset[s] + size_t(B) * lw[s] * lh[s];
  }

  // Pyramids: level 0 uploaded, the others blurred (vertical, horizontal) and resampled.
  float* pyr0 = ex.template alloc<float>(offset[scales], "pyramid of frame 0");
  float* pyr1 = ex.template alloc<float>(offset[scales], "pyramid of frame 1");
  {
    std::vector<float> host(size_t(B) * N);
    for (int b = 0; b < B; ++b) std::copy(I0[b].d.begin(), I0[b].d.end(), host.begin() + size_t(b) * N);
    ex.upload(pyr0, host.data(), host.size());
    for (int b = 0; b < B; ++b) std::copy(I1[b].d.begin(), I1[b].d.end(), host.begin() + size_t(b) * N);
    ex.upload(pyr1, host.data(), host.size());
  }
  float* tmp = ex.template alloc<float>(size_t(B) * N, "scratch plane");
  float* tmp2 = ex.template alloc<float>(size_t(B) * N, "scratch plane");
  if (scales > 1) {
    const std::vector<float> k = detail::gaussian_kernel(detail::tvl1_pyramid_sigma(p));
    const int r = int(k.size()) / 2;
    float* kernel = ex.template alloc<float>(k.size(), "Gaussian kernel");
    ex.upload(kernel, k.data(), k.size());
    for (int s = 1; s < scales; ++s)
      for (float* pyr : {pyr0, pyr1}) {
        const int sw = lw[s - 1], sh = lh[s - 1];
        ex.pixels(B, sw, sh, BlurVertical{pyr + offset[s - 1], tmp, kernel, r, sw, sh}, "pyramid blur (vertical)");
        ex.pixels(B, sw, sh, BlurHorizontal{tmp, tmp2, kernel, r, sw, sh}, "pyramid blur (horizontal)");
        ex.pixels(B, lw[s], lh[s], Resize{tmp2, pyr + offset[s], sw, sh, lw[s], lh[s], 1.f}, "pyramid resample");
      }
  }

  // Solver state, sized for the finest level and reused by the coarser ones.
  const bool bspline = p.interpolation == TVL1Params::Interpolation::BSpline;
  float* u1 = ex.template alloc<float>(size_t(B) * N, "flow u1");
  float* u2 = ex.template alloc<float>(size_t(B) * N, "flow u2");
  float* dual[4];
  for (auto& q : dual) q = ex.template alloc<float>(size_t(B) * N, "dual variable");
  float* I1x = ex.template alloc<float>(size_t(B) * N, "gradient of frame 1");
  float* I1y = ex.template alloc<float>(size_t(B) * N, "gradient of frame 1");
  double* I1coef = bspline ? ex.template alloc<double>(size_t(B) * N, "B-spline coefficients") : nullptr;
  float* gx = ex.template alloc<float>(size_t(B) * N, "warped gradient");
  float* gy = ex.template alloc<float>(size_t(B) * N, "warped gradient");
  float* rho_c = ex.template alloc<float>(size_t(B) * N, "data term constant");
  float* inv_g2 = ex.template alloc<float>(size_t(B) * N, "data term weight");
  double* err = ex.template alloc<double>(size_t(B), "update sums");
  int* active = ex.template alloc<int>(size_t(B), "active flags");

  const int inner = std::max(1, p.inner_iterations), outer = std::max(1, p.outer_iterations);
  for (int s = scales - 1; s >= 0; --s) {
    const int w = lw[s], h = lh[s];
    const size_t n = size_t(B) * w * h;
    const float* L0 = pyr0 + offset[s];
    const float* L1 = pyr1 + offset[s];
    if (s < scales - 1) {  // upsample the coarser flow and rescale the vectors; duals restart at 0
      const int cw = lw[s + 1], ch = lh[s + 1];
      ex.pixels(B, w, h, Resize{u1, tmp, cw, ch, w, h, float(w) / cw}, "flow upsampling");
      ex.pixels(B, w, h, Resize{u2, tmp2, cw, ch, w, h, float(h) / ch}, "flow upsampling");
      std::swap(u1, tmp);
      std::swap(u2, tmp2);
    }
    for (float* q : dual) ex.zero(q, n);

    ex.pixels(B, w, h, CentredGradient{L1, I1x, I1y, w, h}, "gradient");
    if (bspline) {
      const double gain = prefilter_gain(w, h);
      ex.pixels(B, w, h, ToDouble{L1, I1coef, w, h}, "B-spline prefilter");
      ex.pixels(B, w, h, ScaleValues<double>{I1coef, w, h, gain}, "B-spline prefilter");
      ex.lines(B, h, PrefilterRow<double>{I1coef, w, h}, "B-spline prefilter (rows)");
      ex.lines(B, w, PrefilterColumn<double>{I1coef, w, h}, "B-spline prefilter (columns)");
      for (float* g : {I1x, I1y}) {
        ex.pixels(B, w, h, ScaleValues<float>{g, w, h, gain}, "B-spline prefilter");
        ex.lines(B, h, PrefilterRow<float>{g, w, h}, "B-spline prefilter (rows)");
        ex.lines(B, w, PrefilterColumn<float>{g, w, h}, "B-spline prefilter (columns)");
      }
    }

    State st{};
    st.w = w, st.h = h;
    st.I0 = L0, st.I1 = L1, st.I1coef = I1coef, st.I1x = I1x, st.I1y = I1y;
    st.gx = gx, st.gy = gy, st.rho_c = rho_c, st.inv_g2 = inv_g2;
    st.u1 = u1, st.u2 = u2;
    st.p11 = dual[0], st.p12 = dual[1], st.p21 = dual[2], st.p22 = dual[3];
    st.active = active;
    st.lt = p.lambda * p.theta, st.theta = p.theta, st.taut = p.tau / p.theta;
    const double eps2N = double(p.epsilon) * p.epsilon * double(size_t(w) * h);

    for (int warp = 0; warp < p.warps; ++warp) {
      ex.set_flags(active, B, 1);
      if (bspline) ex.pixels(B, w, h, Warp<true>{st}, "warp (B-spline)");
      else ex.pixels(B, w, h, Warp<false>{st}, "warp (bicubic)");
      for (int o = 0; o < outer && ex.any_set(active, B); ++o) {
        if (p.median_filter > 1)  // OpenCV's scheme: a median on u before every block of iterations
          for (float* u : {u1, u2}) {
            ex.pixels(B, w, h, CopyActive{u, tmp, active, w, h}, "median filter");
            ex.pixels(B, w, h, Median{tmp, u, active, w, h, p.median_filter}, "median filter");
          }
        for (int it = 0; it < inner; ++it) {
          ex.pixel_sums(B, w, h, Primal{st}, err, "primal step");
          ex.pixels(B, w, h, Dual{st}, "dual step");
          ex.pairs(B, CheckConverged{err, active, eps2N}, "convergence test");
          if (!ex.any_set(active, B)) break;
        }
      }
    }
  }

  std::vector<FlowField> out(B, FlowField(W, H));
  for (int b = 0; b < B; ++b) {
    ex.download(out[b].u.data(), u1 + size_t(b) * N, N);
    ex.download(out[b].v.data(), u2 + size_t(b) * N, N);
  }
  return out;
}

}  // namespace ahmsa::flow::batch
