// 2-D convolution on the GPU (the twin of tensor/cpu_conv.cpp): im2col + cuBLAS, over chunks of the
// batch so the column matrix stays within a fixed budget of device memory.
//
// The column entry (n, row = (c,i,j), p = (oh,ow)) holds x[n, c, s·oh+i−pad, s·ow+j−pad] (0 outside).
//   forward:  y[n] [O,P] = W [O,CKK] · col[n] [CKK,P]              (strided-batched; W shared, stride 0)
//   backward: gW = gyt [O, nb·P] · colᵀ [nb·P, CKK]                 (gyt: the chunk of gy, channel-major;
//                                                                    one GEMM per chunk, summed over chunks)
//             gcol[n] [CKK,P] = Wᵀ · gy[n] [O,P],  gx = col2im(gcol) (each pixel gathers its entries)
//             gb[o] = Σ_{n,p} gy[n,o,p]                              (one block per channel, fixed order)
// The forward wants the columns sample-major ([nb, CKK, P]) so the GEMM writes y in NCHW directly; the
// weight gradient wants them row-major over the chunk ([CKK, nb·P]) so one GEMM sums over the samples.
// A 1×1 convolution with stride 1 and no padding needs no columns at all: col[n] is x[n] itself.
// Every reduction is a gather in a fixed order (no atomics), so results are the same run to run.
#include <algorithm>

#include "tensor/cuda_blas.h"
#include "tensor/cuda_check.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

constexpr int64_t kColumnBudget = int64_t(1) << 25;  // floats of column matrix per chunk (128 MiB)

int64_t chunk_samples(const ConvShape& s) {
  const int64_t per_sample = std::max<int64_t>(s.C * s.k * s.k * s.OH() * s.OW(), 1);
  return std::clamp<int64_t>(kColumnBudget / per_sample, 1, std::max<int64_t>(s.N, 1));
}

bool is_pointwise(const ConvShape& s) { return s.k == 1 && s.stride == 1 && s.pad == 0; }

std::string describe(const char* part, const ConvShape& s) {
  return std::string(part) + " on x " + shape_str({s.N, s.C, s.H, s.W}) + ", w " + shape_str({s.O, s.C, s.k, s.k}) +
         ", stride " + std::to_string(s.stride) + ", pad " + std::to_string(s.pad);
}

// The geometry the kernels need, by value.
struct Geometry {
  int64_t C, H, W, k, stride, pad, OH, OW;
  explicit Geometry(const ConvShape& s)
      : C(s.C), H(s.H), W(s.W), k(s.k), stride(s.stride), pad(s.pad), OH(s.OH()), OW(s.OW()) {}
};

// Columns of samples n0..n0+nb; sample_major: col[n][row][p], else col[row][n][p]. A thread takes
// one output pixel p of one (n, c) and writes its k·k rows: for each row the threads of a block write
// consecutive p (coalesced) and, with stride 1, read consecutive input pixels.
__global__ void im2col_kernel(const float* x, float* col, Geometry g, int64_t n0, int64_t nb, bool sample_major) {
  const int64_t P = g.OH * g.OW, KK = g.k * g.k, CKK = g.C * KK;
  AHMSA_FOR_PLANES(c, g.C, n, nb) {
    const float* plane = x + ((n0 + n) * g.C + c) * g.H * g.W;
    AHMSA_FOR_PIXELS(p, P) {
      const int64_t oh = p / g.OW, ow = p - oh * g.OW;
      for (int64_t i = 0; i < g.k; ++i) {
        const int64_t ih = oh * g.stride - g.pad + i;
        const bool row_in = ih >= 0 && ih < g.H;
        for (int64_t j = 0; j < g.k; ++j) {
          const int64_t iw = ow * g.stride - g.pad + j, row = c * KK + i * g.k + j;
          const int64_t at = (sample_major ? n * CKK + row : row * nb + n) * P + p;
          col[at] = (row_in && iw >= 0 && iw < g.W) ? plane[ih * g.W + iw] : 0.f;
        }
      }
    }
  }
}

// gx for samples n0..n0+nb from sample-major gcol [nb, CKK, P]: each input pixel sums, in (i, j)
// order, the column entries that were read from it (no two threads write one pixel: no atomics).
__global__ void col2im_kernel(const float* gcol, float* gx, Geometry g, int64_t n0, int64_t nb) {
  const int64_t P = g.OH * g.OW, KK = g.k * g.k, HW = g.H * g.W;
  AHMSA_FOR_PLANES(c, g.C, n, nb) {
    const float* src = gcol + (n * g.C + c) * KK * P;
    float* plane = gx + ((n0 + n) * g.C + c) * HW;
    AHMSA_FOR_PIXELS(t, HW) {
      const int64_t h = t / g.W, w = t - h * g.W;
      float acc = 0.f;
      for (int64_t i = 0; i < g.k; ++i) {
        const int64_t th = h + g.pad - i;  // = oh · stride when pixel row h was read for kernel row i
        if (th < 0) break;                 // th only falls with i
        if (th % g.stride != 0 || th / g.stride >= g.OH) continue;
        for (int64_t j = 0; j < g.k; ++j) {
          const int64_t tw = w + g.pad - j;
          if (tw < 0) break;
          if (tw % g.stride != 0 || tw / g.stride >= g.OW) continue;
          acc += src[(i * g.k + j) * P + (th / g.stride) * g.OW + tw / g.stride];
        }
      }
      plane[t] = acc;
    }
  }
}

// y[n, o, p] += b[o] over y [N, O, P]
__global__ void bias_add_kernel(float* y, const float* b, int64_t N, int64_t O, int64_t P) {
  AHMSA_FOR_PLANES(o, O, n, N) {
    float* plane = y + (n * O + o) * P;
    const float bias = b[o];
    AHMSA_FOR_PIXELS(p, P) plane[p] += bias;
  }
}

// gyt [O, nb, P] = gy[n0..n0+nb) [nb, O, P]
__global__ void gather_channel_major_kernel(const float* gy, float* gyt, int64_t O, int64_t P, int64_t n0,
                                            int64_t nb) {
  AHMSA_FOR_PLANES(o, O, n, nb) {
    const float* src = gy + ((n0 + n) * O + o) * P;
    float* dst = gyt + (o * nb + n) * P;
    AHMSA_FOR_PIXELS(p, P) dst[p] = src[p];
  }
}

// gb[o] = Σ_{n,p} gy[n, o, p]: block o; thread t sums elements t, t + kThreads, ... of the (n, p)
// grid, then a fixed tree.
__global__ void bias_grad_kernel(const float* gy, float* gb, int64_t N, int64_t O, int64_t P) {
  __shared__ double part[kThreads];
  const int64_t o = blockIdx.x;
  double acc = 0;
  for (GridWalk e(threadIdx.x, kThreads, P); e.r < N; e.next()) acc += gy[(e.r * O + o) * P + e.c];
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) gb[o] = float(part[0]);
}

void im2col(const ConvShape& s, const float* x, float* col, int64_t n0, int64_t nb, bool sample_major,
            const char* op) {
  const int64_t P = s.OH() * s.OW();
  if (nb * s.C * P == 0 || s.k == 0) return;
  AHMSA_LAUNCH(plane_grid(P, s.C, nb, kThreads), kThreads, 0, stream(), im2col_kernel)(x, col, Geometry(s), n0, nb,
                                                                                        sample_major);
  check_launch_of([&] { return describe(op, s) + " (im2col)"; });
}

}  // namespace

void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.k * s.k, total = s.N * s.O * P;
  if (total == 0) return;
  const bool pointwise = is_pointwise(s);
  const int64_t chunk = pointwise ? s.N : chunk_samples(s);
  DeviceScratch col(pointwise ? 0 : size_t(chunk * CKK * P));
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, s.N - n0);
    const float* cols = x + n0 * s.C * s.H * s.W;
    if (!pointwise) {
      im2col(s, x, col.data(), n0, nb, true, "conv2d_forward");
      cols = col.data();
    }
    gemm(false, false, s.O, P, CKK, 1.f, w, CKK, 0, cols, P, CKK * P, 0.f, y + n0 * s.O * P, P, s.O * P, nb,
         [&] { return describe("conv2d_forward (W · col)", s); });
  }
  if (b) {
    AHMSA_LAUNCH(plane_grid(P, s.O, s.N, kThreads), kThreads, 0, stream(), bias_add_kernel)(y, b, s.N, s.O, P);
    check_launch_of([&] { return describe("conv2d_forward (bias)", s); });
  }
}

void conv2d_backward(const ConvShape& s, const float* x, const float* w, const float* gy, float* gx, float* gw,
                     float* gb) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.k * s.k;
  if (s.N * P == 0) {  // the parameter gradients are sums over nothing
    if (gw)
      check(cudaMemsetAsync(gw, 0, size_t(s.O * CKK) * sizeof(float), stream()),
            describe("conv2d_backward (gw = 0)", s));
    if (gb)
      check(cudaMemsetAsync(gb, 0, size_t(s.O) * sizeof(float), stream()), describe("conv2d_backward (gb = 0)", s));
  } else if (gb && s.O > 0) {
    AHMSA_LAUNCH(unsigned(s.O), kThreads, 0, stream(), bias_grad_kernel)(gy, gb, s.N, s.O, P);
    check_launch_of([&] { return describe("conv2d_backward (bias gradient)", s); });
  }
  if ((!gx && !gw) || s.N == 0 || P == 0) {
    if (gx && s.N * s.C * s.H * s.W > 0)  // no output pixels: nothing flows back
      check(cudaMemsetAsync(gx, 0, size_t(s.N * s.C * s.H * s.W) * sizeof(float), stream()),
            describe("conv2d_backward (zero input gradient)", s));
    return;
  }
  const bool pointwise = is_pointwise(s);
  const int64_t chunk = chunk_samples(s);
  DeviceScratch col(gw ? size_t(chunk * CKK * P) : 0), gyt(gw ? size_t(s.O * chunk * P) : 0);
  DeviceScratch gcol(gx && !pointwise ? size_t(chunk * CKK * P) : 0);
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, s.N - n0);
    if (gw) {
      AHMSA_LAUNCH(plane_grid(P, s.O, nb, kThreads), kThreads, 0, stream(), gather_channel_major_kernel)(
          gy, gyt.data(), s.O, P, n0, nb);
      check_launch_of([&] { return describe("conv2d_backward (gy to channel-major)", s); });
      im2col(s, x, col.data(), n0, nb, false, "conv2d_backward");
      gemm(false, true, s.O, CKK, nb * P, 1.f, gyt.data(), nb * P, 0, col.data(), nb * P, 0, n0 == 0 ? 0.f : 1.f, gw,
           CKK, 0, 1, [&] { return describe("conv2d_backward (gW = gy · colᵀ)", s); });
    }
    if (gx) {
      const float* gyn = gy + n0 * s.O * P;
      float* gxn = gx + n0 * s.C * s.H * s.W;
      if (pointwise) {  // gx[n] = Wᵀ gy[n]
        gemm(true, false, s.C, P, s.O, 1.f, w, CKK, 0, gyn, P, s.O * P, 0.f, gxn, P, s.C * P, nb,
             [&] { return describe("conv2d_backward (gx = Wᵀ · gy)", s); });
        continue;
      }
      gemm(true, false, CKK, P, s.O, 1.f, w, CKK, 0, gyn, P, s.O * P, 0.f, gcol.data(), P, CKK * P, nb,
           [&] { return describe("conv2d_backward (gcol = Wᵀ · gy)", s); });
      if (s.C * s.H * s.W == 0) continue;
      AHMSA_LAUNCH(plane_grid(s.H * s.W, s.C, nb, kThreads), kThreads, 0, stream(), col2im_kernel)(gcol.data(), gx,
                                                                                                  Geometry(s), n0, nb);
      check_launch_of([&] { return describe("conv2d_backward (col2im)", s); });
    }
  }
}

}  // namespace ahmsa::cuda
