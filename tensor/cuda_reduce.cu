// Reductions and softmax over the middle axis of an (outer, R, inner) view on the GPU: the twins of
// tensor/cpu_reduce.cpp (maths in tensor/kernels.h). bmm (cuBLAS) is with the other matrix products.
//
// Layout of a launch. A block is (tx, ty, tz) threads: tx neighbouring inner columns (coalesced
// loads), ty threads splitting R, and tz such column tiles side by side. Each thread reduces the
// r = y, y + ty, y + 2ty, ... of its column in order; the ty partials of a column are then combined
// in shared memory by a fixed tree (reduce_y). The geometry is a function of the shape only, so a
// shape always gives the same bits. ty = 1 (plenty of outputs, or a short R) is a plain sequential
// loop per output, in the CPU kernel's order.
#include <cmath>

#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

constexpr int kMidMaxThreads = 1024;  // largest block of a reduction (and size of its shared buffer)

struct Mid {
  int64_t outer, R, inner;
  int64_t col_tiles;  // ceil(inner / tx)
  int64_t tiles;      // outer * col_tiles
};

struct MidLaunch {
  Mid m;
  dim3 block;
  unsigned blocks;
};

int pow2_at_least(int64_t v, int cap) {
  int p = 1;
  while (p < cap && p < v) p *= 2;
  return p;
}

MidLaunch mid_launch(int64_t outer, int64_t R, int64_t inner) {
  const int tx = pow2_at_least(inner, 32);
  const int64_t outputs = outer * inner;
  // Split R while each thread keeps at least 8 values and the outputs alone leave the GPU idle.
  int ty = 1;
  while (tx * ty < kMidMaxThreads && int64_t(ty) * 16 <= R && outputs * ty < (int64_t(1) << 17)) ty *= 2;
  const int64_t col_tiles = (inner + tx - 1) / tx, tiles = outer * col_tiles;
  const int tz = pow2_at_least(tiles, std::min(64, std::max(1, kThreads / (tx * ty))));  // blockDim.z <= 64
  MidLaunch l;
  l.m = {outer, R, inner, col_tiles, tiles};
  l.block = dim3(unsigned(tx), unsigned(ty), unsigned(tz));
  l.blocks = unsigned(std::min<int64_t>((tiles + tz - 1) / tz, kMaxBlocks));
  return l;
}

// The (o, i) column of this thread in tile group g; false when the thread has no column (tail).
__device__ inline bool mid_column(const Mid& m, int64_t g, int64_t& o, int64_t& i) {
  const int64_t t = g * blockDim.z + threadIdx.z;
  if (t >= m.tiles) return false;
  o = t / m.col_tiles;
  i = (t % m.col_tiles) * blockDim.x + threadIdx.x;
  return i < m.inner;
}

// Loop over the tile groups of the grid; the condition is the same for every thread of a block,
// so the barriers inside reduce_y are reached by all of them.
#define AHMSA_MID_GROUPS(g, m) for (int64_t g = blockIdx.x; g * blockDim.z < (m).tiles; g += gridDim.x)

// Combines the ty partials of each column with a fixed tree; every thread of the column gets the
// result. sh holds blockDim.x * blockDim.y * blockDim.z values.
template <typename T, typename F>
__device__ inline T reduce_y(T v, T* sh, F combine) {
  if (blockDim.y == 1) return v;
  const unsigned tx = blockDim.x, y = threadIdx.y;
  T* col = sh + threadIdx.z * blockDim.y * tx + threadIdx.x;  // partial y at col[y * tx]
  col[y * tx] = v;
  __syncthreads();
  for (unsigned s = blockDim.y / 2; s > 0; s >>= 1) {
    if (y < s) col[y * tx] = combine(col[y * tx], col[(y + s) * tx]);
    __syncthreads();
  }
  const T r = col[0];
  __syncthreads();  // before sh is written again
  return r;
}

struct AddF {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MaxF {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// ---- sum ---------------------------------------------------------------------------------------

__global__ void sum_mid_kernel(const float* __restrict__ x, float* __restrict__ y, Mid m) {
  __shared__ float sh[kMidMaxThreads];
  AHMSA_MID_GROUPS(g, m) {
    int64_t o = 0, i = 0;
    const bool active = mid_column(m, g, o, i);
    float acc = 0.f;
    if (active) {
      const float* xp = x + o * m.R * m.inner + i;
      for (int64_t r = threadIdx.y; r < m.R; r += blockDim.y) acc += xp[r * m.inner];
    }
    acc = reduce_y(acc, sh, AddF{});
    if (active && threadIdx.y == 0) y[o * m.inner + i] = acc;
  }
}

// ---- max and argmax ------------------------------------------------------------------------------
// The CPU rule: start from r = 0 and take x[r] when it is greater (first index on ties). So a NaN at
// r = 0 is the result, and a NaN anywhere else is never taken. A partial is empty (i < 0) when all
// its values were NaNs it may not take.

struct ArgMax {
  float v;
  int32_t i;
};

struct ArgMaxF {
  __device__ ArgMax operator()(ArgMax a, ArgMax b) const {  // a covers lower y than b
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    if (a.v != a.v) return a;  // NaN at r = 0
    if (b.v != b.v) return b;
    return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
  }
};

__global__ void max_mid_kernel(const float* __restrict__ x, float* __restrict__ y, int32_t* __restrict__ idx,
                               Mid m) {
  __shared__ ArgMax sh[kMidMaxThreads];
  AHMSA_MID_GROUPS(g, m) {
    int64_t o = 0, i = 0;
    const bool active = mid_column(m, g, o, i);
    ArgMax best{0.f, -1};
    if (active) {
      const float* xp = x + o * m.R * m.inner + i;
      for (int64_t r = threadIdx.y; r < m.R; r += blockDim.y) {
        const float v = xp[r * m.inner];
        if (r == 0 || (best.i < 0 && v == v) || v > best.v) best = {v, int32_t(r)};
      }
    }
    best = reduce_y(best, sh, ArgMaxF{});
    if (active && threadIdx.y == 0) {
      y[o * m.inner + i] = best.v;
      idx[o * m.inner + i] = best.i;
    }
  }
}

// ---- softmax ------------------------------------------------------------------------------------
// m = max_r x (a NaN anywhere makes the whole column NaN through the sum, as on the CPU),
// s = Σ exp(x − m); y = exp(x − m) / s, or log: y = x − (m + log s).

__global__ void softmax_mid_kernel(const float* __restrict__ x, float* __restrict__ y, Mid m, bool log) {
  __shared__ float sh[kMidMaxThreads];
  AHMSA_MID_GROUPS(g, m) {
    int64_t o = 0, i = 0;
    const bool active = mid_column(m, g, o, i);
    const int64_t base = active ? o * m.R * m.inner + i : 0;
    const float* xp = x + base;
    float mx = -INFINITY;
    if (active)
      for (int64_t r = threadIdx.y; r < m.R; r += blockDim.y) mx = fmaxf(mx, xp[r * m.inner]);
    mx = reduce_y(mx, sh, MaxF{});
    float s = 0.f;
    if (active)
      for (int64_t r = threadIdx.y; r < m.R; r += blockDim.y) s += expf(xp[r * m.inner] - mx);
    s = reduce_y(s, sh, AddF{});
    if (!active) continue;
    float* yp = y + base;
    if (log) {
      const float ls = mx + logf(s);
      for (int64_t r = threadIdx.y; r < m.R; r += blockDim.y) yp[r * m.inner] = xp[r * m.inner] - ls;
    } else {
      const float inv = 1.f / s;
      for (int64_t r = threadIdx.y; r < m.R; r += blockDim.y) yp[r * m.inner] = expf(xp[r * m.inner] - mx) * inv;
    }
  }
}

// softmax: gx = y (gy − Σ gy y);  log_softmax: gx = gy − exp(y) Σ gy
__global__ void softmax_mid_backward_kernel(const float* __restrict__ y, const float* __restrict__ gy,
                                            float* __restrict__ gx, Mid m, bool log) {
  __shared__ float sh[kMidMaxThreads];
  AHMSA_MID_GROUPS(g, m) {
    int64_t o = 0, i = 0;
    const bool active = mid_column(m, g, o, i);
    const int64_t base = active ? o * m.R * m.inner + i : 0;
    const float *yp = y + base, *gp = gy + base;
    float s = 0.f;
    if (active)
      for (int64_t r = threadIdx.y; r < m.R; r += blockDim.y)
        s += log ? gp[r * m.inner] : gp[r * m.inner] * yp[r * m.inner];
    s = reduce_y(s, sh, AddF{});
    if (!active) continue;
    float* gxp = gx + base;
    for (int64_t r = threadIdx.y; r < m.R; r += blockDim.y) {
      const int64_t k = r * m.inner;
      gxp[k] = log ? gp[k] - expf(yp[k]) * s : yp[k] * (gp[k] - s);
    }
  }
}

// gx[o, r, i] = (r == idx[o, i]) ? gy[o, i] : 0: one thread per element of gx, so no separate clear
// and no two threads writing one place.
__global__ void max_mid_backward_kernel(const float* __restrict__ gy, const int32_t* __restrict__ idx,
                                        float* __restrict__ gx, int64_t outer, int64_t R, int64_t inner) {
  AHMSA_GRID_STRIDE_LOOP(t, outer * R * inner) {
    const int64_t i = t % inner, r = (t / inner) % R, o = t / (inner * R);
    gx[t] = idx[o * inner + i] == r ? gy[o * inner + i] : 0.f;
  }
}

std::string mid_str(const char* op, int64_t outer, int64_t R, int64_t inner) {
  return std::string(op) + " on [outer, R, inner] = " + shape_str({outer, R, inner});
}

}  // namespace

void sum_mid(const float* x, float* y, int64_t outer, int64_t R, int64_t inner) {
  if (outer * inner <= 0) return;
  const MidLaunch l = mid_launch(outer, R, inner);
  AHMSA_LAUNCH(l.blocks, l.block, 0, stream(), sum_mid_kernel)(x, y, l.m);
  check_launch_of([&] { return mid_str("sum_mid", outer, R, inner); });
}

void max_mid(const float* x, float* y, int32_t* idx, int64_t outer, int64_t R, int64_t inner) {
  if (outer * inner <= 0 || R <= 0) return;
  const MidLaunch l = mid_launch(outer, R, inner);
  AHMSA_LAUNCH(l.blocks, l.block, 0, stream(), max_mid_kernel)(x, y, idx, l.m);
  check_launch_of([&] { return mid_str("max_mid", outer, R, inner); });
}

void max_mid_backward(const float* gy, const int32_t* idx, float* gx, int64_t outer, int64_t R, int64_t inner) {
  const int64_t n = outer * R * inner;
  if (n <= 0) return;
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), max_mid_backward_kernel)(gy, idx, gx, outer, R, inner);
  check_launch_of([&] { return mid_str("max_mid_backward", outer, R, inner); });
}

void softmax_mid(const float* x, float* y, int64_t outer, int64_t R, int64_t inner, bool log) {
  if (outer * R * inner <= 0) return;
  const MidLaunch l = mid_launch(outer, R, inner);
  AHMSA_LAUNCH(l.blocks, l.block, 0, stream(), softmax_mid_kernel)(x, y, l.m, log);
  check_launch_of([&] { return mid_str(log ? "log_softmax_mid" : "softmax_mid", outer, R, inner); });
}

void softmax_mid_backward(const float* y, const float* gy, float* gx, int64_t outer, int64_t R, int64_t inner,
                          bool log) {
  if (outer * R * inner <= 0) return;
  const MidLaunch l = mid_launch(outer, R, inner);
  AHMSA_LAUNCH(l.blocks, l.block, 0, stream(), softmax_mid_backward_kernel)(y, gy, gx, l.m, log);
  check_launch_of([&] { return mid_str(log ? "log_softmax_mid_backward" : "softmax_mid_backward", outer, R, inner); });
}

}  // namespace ahmsa::cuda
