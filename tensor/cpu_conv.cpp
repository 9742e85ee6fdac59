// 2-D convolution by im2col + GEMM, over chunks of the batch so the column matrix stays in cache.
//
// For a chunk of nb samples the column matrix col[C·k·k, nb·OH·OW] holds, in row (c,i,j) and
// column (n,oh,ow), the input pixel x[n, c, s·oh+i−p, s·ow+j−p] (0 outside the image). Then
//   forward:  Y[O, nb·OH·OW] = W[O, C·k·k] · col
//   backward: gW += gY · colᵀ,  gcol = Wᵀ · gY,  gx = col2im(gcol)
#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/gemm.h"
#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa::cpu {

namespace {

int64_t chunk_samples(const ConvShape& s) {
  int64_t per_sample = s.C * s.k * s.k * s.OH() * s.OW();
  return std::clamp<int64_t>((1 << 20) / std::max<int64_t>(per_sample, 1), 1, s.N);  // ~4 MB of columns
}

void im2col(const ConvShape& s, const float* x, int64_t n0, int64_t nb, float* col) {
  const int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, cols = nb * P;
  parallel_for(0, s.C * s.k * s.k, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      int64_t c = row / (s.k * s.k), i = (row / s.k) % s.k, j = row % s.k;
      float* dst = col + row * cols;
      for (int64_t n = 0; n < nb; ++n) {
        const float* plane = x + ((n0 + n) * s.C + c) * s.H * s.W;
        for (int64_t oh = 0; oh < OH; ++oh) {
          int64_t ih = oh * s.stride - s.pad + i;
          float* d = dst + n * P + oh * OW;
          if (ih < 0 || ih >= s.H) {
            std::fill_n(d, OW, 0.f);
            continue;
          }
          const float* src = plane + ih * s.W;
          if (s.stride == 1) {
            // contiguous run: columns ow with 0 <= ow - pad + j < W
            int64_t lo_ow = std::max<int64_t>(0, s.pad - j), hi_ow = std::min<int64_t>(OW, s.W + s.pad - j);
            // (a plain loop, not memcpy: the runs are 7 to 28 floats, where the call costs more than the copy)
            for (int64_t ow = 0; ow < std::min(lo_ow, OW); ++ow) d[ow] = 0.f;
            const float* from = src - s.pad + j;
            for (int64_t ow = lo_ow; ow < hi_ow; ++ow) d[ow] = from[ow];
            for (int64_t ow = std::max(hi_ow, lo_ow); ow < OW; ++ow) d[ow] = 0.f;
          } else {
            for (int64_t ow = 0; ow < OW; ++ow) {
              int64_t iw = ow * s.stride - s.pad + j;
              d[ow] = (iw >= 0 && iw < s.W) ? src[iw] : 0.f;
            }
          }
        }
      }
    }
  });
}

// gx[n0..n0+nb) = col2im(gcol): every column entry is added back to the pixel it was read from.
void col2im(const ConvShape& s, const float* gcol, int64_t n0, int64_t nb, float* gx) {
  const int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, cols = nb * P;
  // Parallel over (sample, channel) planes so no two threads write the same pixel.
  parallel_for(0, nb * s.C, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t nc = lo; nc < hi; ++nc) {
      int64_t n = nc / s.C, c = nc % s.C;
      float* plane = gx + ((n0 + n) * s.C + c) * s.H * s.W;
      std::fill_n(plane, s.H * s.W, 0.f);
      for (int64_t i = 0; i < s.k; ++i)
        for (int64_t j = 0; j < s.k; ++j) {
          const float* src = gcol + ((c * s.k + i) * s.k + j) * cols + n * P;
          for (int64_t oh = 0; oh < OH; ++oh) {
            int64_t ih = oh * s.stride - s.pad + i;
            if (ih < 0 || ih >= s.H) continue;
            float* row = plane + ih * s.W;
            const float* g = src + oh * OW;
            if (s.stride == 1) {  // the columns with 0 <= ow - pad + j < W, as one straight (vectorised) loop
              const int64_t lo_ow = std::max<int64_t>(0, s.pad - j), hi_ow = std::min<int64_t>(OW, s.W + s.pad - j);
              float* to = row - s.pad + j;
              for (int64_t ow = lo_ow; ow < hi_ow; ++ow) to[ow] += g[ow];
            } else {
              for (int64_t ow = 0; ow < OW; ++ow) {
                int64_t iw = ow * s.stride - s.pad + j;
                if (iw >= 0 && iw < s.W) row[iw] += g[ow];
              }
            }
          }
        }
    }
  });
}

}  // namespace

void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.k * s.k, chunk = chunk_samples(s);
  Scratch col(size_t(CKK * chunk * P)), out(size_t(s.O * chunk * P));
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    int64_t nb = std::min(chunk, s.N - n0);
    im2col(s, x, n0, nb, col.data());
    sgemm(false, false, s.O, nb * P, CKK, 1.f, w, CKK, col.data(), nb * P, 0.f, out.data(), nb * P);
    // out is [O, nb, P]; y is [N, O, P]
    parallel_for(0, nb * s.O, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        int64_t n = t / s.O, o = t % s.O;
        const float* src = out.data() + (o * nb + n) * P;
        float* dst = y + ((n0 + n) * s.O + o) * P;
        float bias = b ? b[o] : 0.f;
        for (int64_t p = 0; p < P; ++p) dst[p] = src[p] + bias;
      }
    });
  }
}

void conv2d_backward(const ConvShape& s, const float* x, const float* w, const float* gy, float* gx, float* gw,
                     float* gb) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.k * s.k, chunk = chunk_samples(s);
  Scratch col(gw ? size_t(CKK * chunk * P) : 0), gyt(size_t(s.O * chunk * P));
  Scratch gcol(gx ? size_t(CKK * chunk * P) : 0);
  if (gb) {
    for (int64_t o = 0; o < s.O; ++o) {
      double acc = 0;
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t p = 0; p < P; ++p) acc += gy[(n * s.O + o) * P + p];
      gb[o] = float(acc);
    }
  }
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    int64_t nb = std::min(chunk, s.N - n0);
    // gy chunk [nb, O, P] -> gyt [O, nb, P]
    parallel_for(0, nb * s.O, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        int64_t n = t / s.O, o = t % s.O;
        std::memcpy(gyt.data() + (o * nb + n) * P, gy + ((n0 + n) * s.O + o) * P, size_t(P) * sizeof(float));
      }
    });
    if (gw) {
      im2col(s, x, n0, nb, col.data());
      sgemm(false, true, s.O, CKK, nb * P, 1.f, gyt.data(), nb * P, col.data(), nb * P, n0 == 0 ? 0.f : 1.f, gw, CKK);
    }
    if (gx) {
      sgemm(true, false, CKK, nb * P, s.O, 1.f, w, CKK, gyt.data(), nb * P, 0.f, gcol.data(), nb * P);
      col2im(s, gcol.data(), n0, nb, gx);
    }
  }
}

}  // namespace ahmsa::cpu
