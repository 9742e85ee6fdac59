// Max pooling and PyTorch-rule adaptive pooling over NCHW planes on the GPU: the twins of
// tensor/cpu_pool.cpp (maths in tensor/kernels.h). One thread per output cell (forward) or per input
// pixel (the adaptive average backward gathers its bins), each looping in the CPU kernel's order, so
// the results are the CPU's bit for bit. The max-pool scatter is one warp per plane, race-free and
// in the CPU's order without atomics.
#include <cmath>

#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

// Output cell i of `out` covers [bin_start, bin_end) of `in` (PyTorch's floor / ceil rule).
__device__ inline int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ inline int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

__global__ void max_pool2d_kernel(const float* __restrict__ x, float* __restrict__ y, int32_t* __restrict__ idx,
                                  int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, int k, int stride,
                                  int pad) {
  AHMSA_GRID_STRIDE_LOOP(t, planes * OH * OW) {
    const int64_t ow = t % OW, oh = (t / OW) % OH, p = t / (OW * OH);
    const float* xp = x + p * H * W;
    float m = -INFINITY;
    int32_t best = -1;  // stays -1 when the window lies in the padding only
    for (int i = 0; i < k; ++i) {
      const int64_t ih = oh * stride - pad + i;
      if (ih < 0 || ih >= H) continue;
      for (int j = 0; j < k; ++j) {
        const int64_t iw = ow * stride - pad + j;
        if (iw < 0 || iw >= W) continue;
        const float v = xp[ih * W + iw];
        if (best < 0 || v > m) m = v, best = int32_t(ih * W + iw);
      }
    }
    y[t] = m;
    idx[t] = best;
  }
}

__global__ void adaptive_avg_pool2d_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t planes,
                                           int64_t H, int64_t W, int64_t OH, int64_t OW) {
  AHMSA_GRID_STRIDE_LOOP(t, planes * OH * OW) {
    const int64_t ow = t % OW, oh = (t / OW) % OH, p = t / (OW * OH);
    const int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
    const int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
    const float* xp = x + p * H * W;
    float s = 0.f;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) s += xp[ih * W + iw];
    y[t] = s / float((h1 - h0) * (w1 - w0));
  }
}

// gx[ih, iw] = Σ over the bins (oh, ow) that contain it of gy[oh, ow] / area, in (oh, ow) order
// from 0 as the CPU kernel accumulates. The bins containing row ih are oh in
// [floor(ih OH / H), ceil((ih + 1) OH / H)) — the same rule with the roles of H and OH swapped;
// each is still checked against its own bounds.
__global__ void adaptive_avg_pool2d_backward_kernel(const float* __restrict__ gy, float* __restrict__ gx,
                                                    int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  AHMSA_GRID_STRIDE_LOOP(t, planes * H * W) {
    const int64_t iw = t % W, ih = (t / W) % H, p = t / (W * H);
    const float* gp = gy + p * OH * OW;
    float s = 0.f;
    for (int64_t oh = bin_start(ih, OH, H); oh < bin_end(ih, OH, H); ++oh) {
      const int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = bin_start(iw, OW, W); ow < bin_end(iw, OW, W); ++ow) {
        const int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
        if (iw < w0 || iw >= w1) continue;
        s += gp[oh * OW + ow] / float((h1 - h0) * (w1 - w0));
      }
    }
    gx[t] = s;
  }
}

__global__ void adaptive_max_pool2d_kernel(const float* __restrict__ x, float* __restrict__ y,
                                           int32_t* __restrict__ idx, int64_t planes, int64_t H, int64_t W,
                                           int64_t OH, int64_t OW) {
  AHMSA_GRID_STRIDE_LOOP(t, planes * OH * OW) {
    const int64_t ow = t % OW, oh = (t / OW) % OH, p = t / (OW * OH);
    const int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
    const int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
    const float* xp = x + p * H * W;
    int32_t best = int32_t(h0 * W + w0);
    float best_v = xp[best];
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw)
        if (const float v = xp[ih * W + iw]; v > best_v) best_v = v, best = int32_t(ih * W + iw);
    y[t] = best_v;
    idx[t] = best;
  }
}

// gx = 0, then gx[idx[o]] += gy[o] for o in order (idx < 0: no input, skipped). Overlapping windows
// send several outputs to one pixel, so a thread per output would race. One warp per plane instead:
// it clears the plane, then takes the outputs 32 at a time; in each group of lanes with the same
// target the lowest lane adds the group's gradients in lane order. That is the CPU's sum in the
// CPU's order, with no atomics.
constexpr int kScatterWarps = 4;  // planes per block

__global__ void pool_scatter_kernel(const float* __restrict__ gy, const int32_t* __restrict__ idx, float* gx,
                                    int64_t planes, int64_t HW, int64_t OHW) {
  const int lane = int(threadIdx.x) % 32;
  for (int64_t p = int64_t(blockIdx.x) * kScatterWarps + threadIdx.x / 32; p < planes;
       p += int64_t(gridDim.x) * kScatterWarps) {
    float* gp = gx + p * HW;
    for (int64_t j = lane; j < HW; j += 32) gp[j] = 0.f;
    __syncwarp();
    for (int64_t o0 = 0; o0 < OHW; o0 += 32) {
      const int64_t o = o0 + lane;
      const int32_t target = o < OHW ? idx[p * OHW + o] : -1;
      const float g = o < OHW ? gy[p * OHW + o] : 0.f;
      float s = target >= 0 ? gp[target] : 0.f;  // the sum of the earlier groups
      bool leader = target >= 0;
      for (int l = 0; l < 32; ++l) {  // every lane reads every lane's (target, g), lowest lane first
        const int32_t tl = __shfl_sync(0xffffffffu, target, l);
        const float gl = __shfl_sync(0xffffffffu, g, l);
        if (tl == target) {
          if (l < lane) leader = false;
          s += gl;
        }
      }
      if (leader) gp[target] = s;
      __syncwarp();
    }
  }
}

std::string pool_str(const char* op, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  return std::string(op) + " on planes " + std::to_string(planes) + ", " + shape_str({H, W}) + " -> " +
         shape_str({OH, OW});
}

}  // namespace

void max_pool2d_forward(const float* x, float* y, int32_t* idx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, int k, int stride, int pad) {
  const int64_t n = planes * OH * OW;
  if (n <= 0) return;
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), max_pool2d_kernel)(x, y, idx, planes, H, W, OH, OW, k, stride,
                                                                       pad);
  check_launch_of([&] {
    return pool_str("max_pool2d_forward", planes, H, W, OH, OW) + " (k " + std::to_string(k) + ", stride " +
           std::to_string(stride) + ", pad " + std::to_string(pad) + ")";
  });
}

void adaptive_avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                 int64_t OW) {
  const int64_t n = planes * OH * OW;
  if (n <= 0) return;
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), adaptive_avg_pool2d_kernel)(x, y, planes, H, W, OH, OW);
  check_launch_of([&] { return pool_str("adaptive_avg_pool2d_forward", planes, H, W, OH, OW); });
}

void adaptive_avg_pool2d_backward(const float* gy, float* gx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW) {
  const int64_t n = planes * H * W;
  if (n <= 0) return;
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), adaptive_avg_pool2d_backward_kernel)(gy, gx, planes, H, W, OH,
                                                                                         OW);
  check_launch_of([&] { return pool_str("adaptive_avg_pool2d_backward", planes, H, W, OH, OW); });
}

void adaptive_max_pool2d_forward(const float* x, float* y, int32_t* idx, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW) {
  const int64_t n = planes * OH * OW;
  if (n <= 0) return;
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), adaptive_max_pool2d_kernel)(x, y, idx, planes, H, W, OH, OW);
  check_launch_of([&] { return pool_str("adaptive_max_pool2d_forward", planes, H, W, OH, OW); });
}

void pool_scatter_backward(const float* gy, const int32_t* idx, float* gx, int64_t planes, int64_t HW, int64_t OHW) {
  if (planes * HW <= 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((planes + kScatterWarps - 1) / kScatterWarps, kMaxBlocks));
  AHMSA_LAUNCH(blocks, 32 * kScatterWarps, 0, stream(), pool_scatter_kernel)(gy, idx, gx, planes, HW, OHW);
  check_launch_of([&] {
    return "pool_scatter_backward on planes " + std::to_string(planes) + ", " + std::to_string(HW) + " pixels <- " +
           std::to_string(OHW) + " outputs";
  });
}

}  // namespace ahmsa::cuda
