// Helpers shared by the flow methods (not public API): single-channel float planes, Gaussian blur,
// pyramid resampling, cubic sampling. Everything here is plain loops over contiguous rows.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "flow/flow.h"

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

// Keys' cubic convolution weights (a = -0.5) for fractional offset t in [0, 1).
inline void cubic_weights(float t, float w[4]) {
  const float a = -0.5f;
  float t2 = t * t, t3 = t2 * t;
  w[0] = a * (t3 - 2 * t2 + t);
  w[1] = (a + 2) * t3 - (a + 3) * t2 + 1;
  w[2] = -(a + 2) * t3 + (2 * a + 3) * t2 - a * t;
  w[3] = -a * (t3 - t2);
}

// Cubic B-spline interpolation. bspline_prefilter turns the w x h samples (row-major) into spline
// coefficients in place (mirror-symmetric extension; float or double); then the value at x = i + t,
// t in [0, 1), is sum_k w[k] c[mirror_index(i - 1 + k)] with w = bspline_weights(t), separably in x and y.
template <class T>
void bspline_prefilter(T* data, int w, int h);
template <class T>
inline void bspline_weights(T t, T w[4]) {
  const T s = 1 - t, t2 = t * t, t3 = t2 * t, sixth = T(1) / 6;
  w[0] = s * s * s * sixth;
  w[1] = (3 * t3 - 6 * t2 + 4) * sixth;
  w[2] = (-3 * t3 + 3 * t2 + 3 * t + 1) * sixth;
  w[3] = t3 * sixth;
}
// Index i reflected into [0, n) about the first and last samples (period 2n - 2), as the prefilter assumes.
inline int mirror_index(int i, int n) {
  if (i >= 0 && i < n) return i;  // the common case, without the division
  if (n == 1) return 0;
  const int period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

}  // namespace ahmsa::flow::detail
