// Reductions, softmax and batched matrix products over (outer, R, inner) views.
#include <algorithm>
#include <cmath>

#include "tensor/gemm.h"
#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa::cpu {

void sum_mid(const float* x, float* y, int64_t outer, int64_t R, int64_t inner) {
  if (outer < num_threads() && inner >= 64 && R * inner >= (1 << 15)) {
    // Few long sums (e.g. a bias gradient: one sum over all rows): split the columns instead.
    parallel_for(0, inner, 32, [&](int64_t lo, int64_t hi) {
      for (int64_t o = 0; o < outer; ++o) {
        float* yo = y + o * inner;
        const float* xo = x + o * R * inner;
        std::fill(yo + lo, yo + hi, 0.f);
        for (int64_t r = 0; r < R; ++r)
          for (int64_t i = lo; i < hi; ++i) yo[i] += xo[r * inner + i];
      }
    });
    return;
  }
  parallel_for(0, outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(R * inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      float* yo = y + o * inner;
      const float* xo = x + o * R * inner;
      if (inner == 1) {
        // Long sums (global pools) accumulate in double for accuracy, in four independent chains
        // (one chain is bound by the latency of the add, four keep the adder busy).
        double acc[4] = {0, 0, 0, 0};
        int64_t r = 0;
        for (; r + 4 <= R; r += 4)
          for (int k = 0; k < 4; ++k) acc[k] += xo[r + k];
        for (; r < R; ++r) acc[0] += xo[r];
        yo[0] = float((acc[0] + acc[1]) + (acc[2] + acc[3]));
        continue;
      }
      std::fill_n(yo, inner, 0.f);
      for (int64_t r = 0; r < R; ++r)
        for (int64_t i = 0; i < inner; ++i) yo[i] += xo[r * inner + i];
    }
  });
}

void max_mid(const float* x, float* y, int32_t* idx, int64_t outer, int64_t R, int64_t inner) {
  parallel_for(0, outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(R * inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      const float* xo = x + o * R * inner;
      float* yo = y + o * inner;
      int32_t* io = idx + o * inner;
      for (int64_t i = 0; i < inner; ++i) {
        yo[i] = xo[i];
        io[i] = 0;
      }
      for (int64_t r = 1; r < R; ++r)
        for (int64_t i = 0; i < inner; ++i)
          if (xo[r * inner + i] > yo[i]) {
            yo[i] = xo[r * inner + i];
            io[i] = int32_t(r);
          }
    }
  });
}

void max_mid_backward(const float* gy, const int32_t* idx, float* gx, int64_t outer, int64_t R, int64_t inner) {
  parallel_for(0, outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(R * inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      float* go = gx + o * R * inner;
      std::fill_n(go, R * inner, 0.f);
      for (int64_t i = 0; i < inner; ++i) go[idx[o * inner + i] * inner + i] = gy[o * inner + i];
    }
  });
}

void softmax_mid(const float* x, float* y, int64_t outer, int64_t R, int64_t inner, bool log) {
  parallel_for(0, outer * inner, std::max<int64_t>(1, 2048 / std::max<int64_t>(R, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t o = t / inner, i = t % inner;
      const float* xp = x + o * R * inner + i;
      float* yp = y + o * R * inner + i;
      float m = xp[0];
      for (int64_t r = 1; r < R; ++r) m = std::max(m, xp[r * inner]);
      float s = 0.f;
      for (int64_t r = 0; r < R; ++r) {
        float e = std::exp(xp[r * inner] - m);
        yp[r * inner] = e;
        s += e;
      }
      if (log) {
        float ls = m + std::log(s);
        for (int64_t r = 0; r < R; ++r) yp[r * inner] = xp[r * inner] - ls;
      } else {
        float inv = 1.f / s;
        for (int64_t r = 0; r < R; ++r) yp[r * inner] *= inv;
      }
    }
  });
}

void softmax_mid_backward(const float* y, const float* gy, float* gx, int64_t outer, int64_t R, int64_t inner,
                          bool log) {
  parallel_for(0, outer * inner, std::max<int64_t>(1, 2048 / std::max<int64_t>(R, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t o = t / inner, i = t % inner, base = o * R * inner + i;
      float s = 0.f;
      if (log) {
        for (int64_t r = 0; r < R; ++r) s += gy[base + r * inner];
        for (int64_t r = 0; r < R; ++r) gx[base + r * inner] = gy[base + r * inner] - std::exp(y[base + r * inner]) * s;
      } else {
        for (int64_t r = 0; r < R; ++r) s += gy[base + r * inner] * y[base + r * inner];
        for (int64_t r = 0; r < R; ++r) gx[base + r * inner] = y[base + r * inner] * (gy[base + r * inner] - s);
      }
    }
  });
}

void bmm(const float* a, const float* c, float* y, int64_t batch, int64_t M, int64_t K, int64_t N, bool ta, bool tc,
         float beta) {
  int64_t lda = ta ? M : K, ldc = tc ? K : N;
  if (batch == 1) return sgemm(ta, tc, M, N, K, 1.f, a, lda, c, ldc, beta, y, N);
  // Many small products (attention): one thread per product.
  parallel_for(0, batch, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b)
      sgemm_serial(ta, tc, M, N, K, 1.f, a + b * M * K, lda, c + b * K * N, ldc, beta, y + b * M * N, N);
  });
}

}  // namespace ahmsa::cpu
