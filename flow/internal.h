// Helpers shared by the flow methods (not public API): single-channel float planes, Gaussian blur,
// pyramid resampling, cubic sampling. Everything here is plain loops over contiguous rows.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "flow/flow.h"
#include "flow/tvl1_steps.h"

namespace ahmsa::flow::detail {

struct Plane {
  int w = 0, h = 0;
  std::vector<float> d;  // h * w, row-major
  Plane() = default;
  Plane(int w_, int h_, float fill = 0.f) : w(w_), h(h_), d(size_t(w_) * h_, fill) {}
  float* row(int y) { return d.data() + size_t(y) * w; }
  const float* row(int y) const { return d.data() + size_t(y) * w; }
};

// Grey plane of an image (any channel count), with a clear error when empty.
Plane grey_plane(const img::Image& im, const char* what);
// Throws FlowError when the two frames are empty or differ in size.
void check_pair(const img::Image& I0, const img::Image& I1, const char* method);
// Separable Gaussian blur, kernel radius ceil(3 sigma), edge replicate. sigma <= 0: copy.
Plane gaussian_blur(const Plane& src, float sigma, int threads);
// Bilinear resampling to w x h with pixel centres aligned (align_corners = false).
Plane resize_plane(const Plane& src, int w, int h);
// Pyramid level sizes: round(size * zoom^k).
inline int level_size(int full, float zoom, int k) { return std::max(1, int(std::lround(full * std::pow(zoom, k)))); }
// Below this many pixels a level runs on one thread: TV-L1 needs 2-3 barriers per iteration and at
// 128x128 (the face-crop size) the barrier cost, and far worse the stalls when the cores are shared
// with other processes, outweigh the work. Batches of pairs should be parallelised over pairs.
constexpr int kMinParallelPixels = 256 * 256;
// OpenMP thread count for a "threads" parameter (0 = the default).
int thread_count(int threads);

// Median filter of rows [y_begin, y_end) of src (W x H, edges replicated) into dst; buf is scratch.
// Callable from inside an OpenMP parallel region (it starts no threads).
void median_rows(const float* src, float* dst, int W, int H, int k, int y_begin, int y_end, std::vector<float>& buf);

// ---- SIMD dispatch ------------------------------------------------------------------------------
// The build targets generic x86-64 (SSE2). Hot loops are written once as an always-inline body; a
// wrapper compiled with AHMSA_TARGET_AVX2 inlines it as AVX2 + FMA code and a plain wrapper as SSE2
// code, and the caller picks one at run time with cpu_has_avx2_fma(). The two differ only by FMA
// rounding (about 1e-7 relative), never in the maths.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define AHMSA_FLOW_X86 1
#define AHMSA_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define AHMSA_TARGET_AVX2
#endif
#if defined(__GNUC__)
#define AHMSA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define AHMSA_ALWAYS_INLINE inline
#endif
// True when the CPU has AVX2 and FMA and AHMSA_FLOW_NO_AVX2 is not set in the environment (the
// switch lets the tests and benches run the SSE2 path on an AVX2 machine). Evaluated once.
bool cpu_has_avx2_fma();

// The interpolation weights (Keys, B-spline) and mirror_index live in flow/tvl1_steps.h (host and
// device), namespace batch. This turns the w x h samples (row-major) into cubic B-spline coefficients
// in place (mirror-symmetric extension; float or double): then the value at i + t, t in [0, 1), is
// sum_k batch::bspline_weights(t)[k] c[batch::mirror_index(i - 1 + k)], separably in x and y.
template <class T>
void bspline_prefilter(T* data, int w, int h) {
  const double gain = batch::prefilter_gain(w, h);
  for (size_t i = 0; i < size_t(w) * h; ++i) data[i] = T(data[i] * gain);
  for (int y = 0; y < h; ++y) batch::prefilter_line(data + size_t(y) * w, w, 1);
  for (int x = 0; x < w; ++x) batch::prefilter_line(data + x, h, size_t(w));
}
// The Gaussian kernel of gaussian_blur: radius max(1, ceil(3 sigma)), 2r + 1 taps summing to 1.
std::vector<float> gaussian_kernel(float sigma);

// What tvl1() and the batched solvers do before the pyramid. tvl1_check_params throws FlowError
// (naming `who`) on parameters out of range; tvl1_frames makes the grey planes of both frames, checked
// for size, and stretches them jointly to 0..255 when p.normalize is set; batch_frames does that for
// every pair of a batch and also checks that there are as many second frames as first and that all
// pairs have one size (errors name the pair); batch_check does those checks without making planes.
void tvl1_check_params(const TVL1Params& p, const char* who);
void tvl1_frames(const img::Image& I0, const img::Image& I1, const TVL1Params& p, Plane& P0, Plane& P1, const char* who);
void batch_check(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1, const TVL1Params& p,
                 const char* who);
void batch_frames(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1, const TVL1Params& p,
                  std::vector<Plane>& P0, std::vector<Plane>& P1, const char* who);
// Pyramid levels actually used for a w x h image: p.scales, capped so the coarsest diagonal stays
// about 16 px (as IPOL); and the sigma of the anti-aliasing blur before each downsampling.
int tvl1_levels(int w, int h, const TVL1Params& p);
inline float tvl1_pyramid_sigma(const TVL1Params& p) { return 0.6f * std::sqrt(1.f / (p.zoom * p.zoom) - 1.f); }

}  // namespace ahmsa::flow::detail
