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

// Keys' cubic convolution weights (a = -0.5) for fractional offset t in [0, 1).
inline void cubic_weights(float t, float w[4]) {
  const float a = -0.5f;
  float t2 = t * t, t3 = t2 * t;
  w[0] = a * (t3 - 2 * t2 + t);
  w[1] = (a + 2) * t3 - (a + 3) * t2 + 1;
  w[2] = -(a + 2) * t3 + (2 * a + 3) * t2 - a * t;
  w[3] = -a * (t3 - t2);
}

}  // namespace ahmsa::flow::detail
