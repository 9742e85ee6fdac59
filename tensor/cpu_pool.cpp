// Max pooling and PyTorch-rule adaptive pooling over NCHW planes.
#include <algorithm>
#include <limits>

#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa::cpu {

static inline int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
static inline int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

void max_pool2d_forward(const float* x, float* y, int32_t* idx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, int k, int stride, int pad) {
  parallel_for(0, planes, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* xp = x + p * H * W;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          float m = -std::numeric_limits<float>::infinity();
          int32_t best = -1;
          for (int64_t i = 0; i < k; ++i) {
            int64_t ih = oh * stride - pad + i;
            if (ih < 0 || ih >= H) continue;
            for (int64_t j = 0; j < k; ++j) {
              int64_t iw = ow * stride - pad + j;
              if (iw < 0 || iw >= W) continue;
              float v = xp[ih * W + iw];
              if (best < 0 || v > m) m = v, best = int32_t(ih * W + iw);
            }
          }
          y[(p * OH + oh) * OW + ow] = m;
          idx[(p * OH + oh) * OW + ow] = best;
        }
    }
  });
}

void adaptive_avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                 int64_t OW) {
  // Equal bins (the model's 2x down-sampling): one bin shape for every output, so the inner loops
  // have fixed trip counts. (Precomputing the general loop's bin edges instead measured no faster:
  // the divisions were not the cost.)
  if (H % OH == 0 && W % OW == 0) {
    const int64_t kh = H / OH, kw = W / OW;
    const float area = float(kh * kw);
    parallel_for(0, planes, 8, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const float* xp = x + p * H * W;
        float* yp = y + p * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            const float* b = xp + oh * kh * W + ow * kw;
            float s = 0.f;  // same order as the general loop below: the results are identical
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) s += b[i * W + j];
            yp[oh * OW + ow] = s / area;
          }
      }
    });
    return;
  }
  parallel_for(0, planes, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* xp = x + p * H * W;
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
          float s = 0.f;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) s += xp[ih * W + iw];
          y[(p * OH + oh) * OW + ow] = s / float((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

void adaptive_avg_pool2d_backward(const float* gy, float* gx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW) {
  if (H % OH == 0 && W % OW == 0) {  // equal bins tile the plane: every pixel written once, no zero fill
    const int64_t kh = H / OH, kw = W / OW;
    const float area = float(kh * kw);
    parallel_for(0, planes, 8, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        float* gp = gx + p * H * W;
        const float* gyp = gy + p * OH * OW;
        for (int64_t ih = 0; ih < H; ++ih) {
          const float* grow = gyp + (ih / kh) * OW;
          float* row = gp + ih * W;
          for (int64_t ow = 0; ow < OW; ++ow) {
            const float g = grow[ow] / area;
            for (int64_t j = 0; j < kw; ++j) row[ow * kw + j] = g;
          }
        }
      }
    });
    return;
  }
  parallel_for(0, planes, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      float* gp = gx + p * H * W;
      std::fill_n(gp, H * W, 0.f);
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
          float g = gy[(p * OH + oh) * OW + ow] / float((h1 - h0) * (w1 - w0));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) gp[ih * W + iw] += g;
        }
      }
    }
  });
}

void adaptive_max_pool2d_forward(const float* x, float* y, int32_t* idx, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW) {
  parallel_for(0, planes, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* xp = x + p * H * W;
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
          int32_t best = int32_t(h0 * W + w0);
          float best_v = xp[best];  // kept in a register: reloading xp[best] serialised the loop
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw)
              if (const float v = xp[ih * W + iw]; v > best_v) best_v = v, best = int32_t(ih * W + iw);
          y[(p * OH + oh) * OW + ow] = best_v;
          idx[(p * OH + oh) * OW + ow] = best;
        }
      }
    }
  });
}

void pool_scatter_backward(const float* gy, const int32_t* idx, float* gx, int64_t planes, int64_t HW, int64_t OHW) {
  parallel_for(0, planes, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      float* gp = gx + p * HW;
      std::fill_n(gp, HW, 0.f);
      for (int64_t o = 0; o < OHW; ++o)
        if (idx[p * OHW + o] >= 0) gp[idx[p * OHW + o]] += gy[p * OHW + o];
    }
  });
}

}  // namespace ahmsa::cpu
