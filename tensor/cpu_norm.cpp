// BatchNorm2d, channel LayerNorm / LayerNorm, and cross-entropy.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace ahmsa::cpu {

void batch_norm_train_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                              float* var_unbiased, int64_t N, int64_t C, int64_t HW, float eps) {
  const int64_t M = N * HW;
  parallel_for(0, C, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double s = 0, ss = 0;  // two-level sums in double: M can be 50k
      for (int64_t n = 0; n < N; ++n) {
        const float* xp = x + (n * C + c) * HW;
        float ps = 0.f;
        for (int64_t i = 0; i < HW; ++i) ps += xp[i];
        s += ps;
      }
      double mu = s / double(M);
      for (int64_t n = 0; n < N; ++n) {
        const float* xp = x + (n * C + c) * HW;
        float pss = 0.f;
        for (int64_t i = 0; i < HW; ++i) {
          float d = xp[i] - float(mu);
          pss += d * d;
        }
        ss += pss;
      }
      double var = ss / double(M);
      float is = float(1.0 / std::sqrt(var + eps));
      mean[c] = float(mu);
      invstd[c] = is;
      var_unbiased[c] = M > 1 ? float(ss / double(M - 1)) : float(var);
      float scale = (w ? w[c] : 1.f) * is, shift = (b ? b[c] : 0.f) - float(mu) * scale;
      for (int64_t n = 0; n < N; ++n) {
        const float* xp = x + (n * C + c) * HW;
        float* yp = y + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * scale + shift;
      }
    }
  });
}

void batch_norm_eval_forward(const float* x, const float* w, const float* b, const float* rmean, const float* rvar,
                             float* y, int64_t N, int64_t C, int64_t HW, float eps) {
  parallel_for(0, N * C, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t c = t % C;
      float scale = (w ? w[c] : 1.f) / std::sqrt(rvar[c] + eps), shift = (b ? b[c] : 0.f) - rmean[c] * scale;
      const float* xp = x + t * HW;
      float* yp = y + t * HW;
      for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * scale + shift;
    }
  });
}

void batch_norm_backward(const float* x, const float* w, const float* mean, const float* invstd, const float* gy,
                         float* gx, float* gw, float* gb, int64_t N, int64_t C, int64_t HW, bool training) {
  const int64_t M = N * HW;
  parallel_for(0, C, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double sg = 0, sgx = 0;  // Σ gy and Σ gy·x̂
      float mu = mean[c], is = invstd[c];
      for (int64_t n = 0; n < N; ++n) {
        const float* xp = x + (n * C + c) * HW;
        const float* gp = gy + (n * C + c) * HW;
        float a = 0.f, bsum = 0.f;
        for (int64_t i = 0; i < HW; ++i) {
          a += gp[i];
          bsum += gp[i] * (xp[i] - mu);
        }
        sg += a;
        sgx += bsum;
      }
      sgx *= is;
      if (gw) gw[c] = float(sgx);
      if (gb) gb[c] = float(sg);
      if (!gx) continue;
      float wc = w ? w[c] : 1.f;
      for (int64_t n = 0; n < N; ++n) {
        const float* xp = x + (n * C + c) * HW;
        const float* gp = gy + (n * C + c) * HW;
        float* op = gx + (n * C + c) * HW;
        if (training) {
          float k = wc * is / float(M), mg = float(sg), mgx = float(sgx);
          for (int64_t i = 0; i < HW; ++i) {
            float xh = (xp[i] - mu) * is;
            op[i] = k * (float(M) * gp[i] - mg - xh * mgx);
          }
        } else {
          for (int64_t i = 0; i < HW; ++i) op[i] = wc * is * gp[i];
        }
      }
    }
  });
}

// r = (1 − m) r + m batch, the same expression (and float rounding) as PyTorch's running estimate.
void batch_norm_update_running(float* running_mean, float* running_var, const float* mean, const float* var_unbiased,
                               int64_t C, float momentum) {
  for (int64_t c = 0; c < C; ++c) {
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1 - momentum) * running_var[c] + momentum * var_unbiased[c];
  }
}

void batch_norm_eval_stats(const float* rmean, const float* rvar, float* mean, float* invstd, int64_t C, float eps) {
  for (int64_t c = 0; c < C; ++c) {
    mean[c] = rmean[c];
    invstd[c] = 1.f / std::sqrt(rvar[c] + eps);
  }
}

// LayerNorm over contiguous rows of C values (the token-major case, inner == 1).
static void norm_rows_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                              int64_t rows, int64_t C, float eps) {
  parallel_for(0, rows, std::max<int64_t>(1, 8192 / C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      float s = 0.f;
      for (int64_t c = 0; c < C; ++c) s += xr[c];
      float mu = s / float(C), ss = 0.f;
      for (int64_t c = 0; c < C; ++c) ss += (xr[c] - mu) * (xr[c] - mu);
      float is = 1.f / std::sqrt(ss / float(C) + eps);
      mean[r] = mu;
      invstd[r] = is;
      for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mu) * is * (w ? w[c] : 1.f) + (b ? b[c] : 0.f);
    }
  });
}

void norm_mid_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                      int64_t outer, int64_t C, int64_t inner, float eps) {
  if (inner == 1) return norm_rows_forward(x, w, b, y, mean, invstd, outer, C, eps);
  parallel_for(0, outer, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> s(static_cast<size_t>(inner)), ss(static_cast<size_t>(inner));
    for (int64_t o = lo; o < hi; ++o) {
      const float* xo = x + o * C * inner;
      float* yo = y + o * C * inner;
      std::fill(s.begin(), s.end(), 0.f);
      std::fill(ss.begin(), ss.end(), 0.f);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < inner; ++i) s[i] += xo[c * inner + i];
      for (int64_t i = 0; i < inner; ++i) s[i] /= float(C);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < inner; ++i) {
          float d = xo[c * inner + i] - s[i];
          ss[i] += d * d;
        }
      for (int64_t i = 0; i < inner; ++i) {
        ss[i] = 1.f / std::sqrt(ss[i] / float(C) + eps);
        mean[o * inner + i] = s[i];
        invstd[o * inner + i] = ss[i];
      }
      for (int64_t c = 0; c < C; ++c) {
        float wc = w ? w[c] : 1.f, bc = b ? b[c] : 0.f;
        for (int64_t i = 0; i < inner; ++i) yo[c * inner + i] = (xo[c * inner + i] - s[i]) * ss[i] * wc + bc;
      }
    }
  });
}

void norm_mid_backward(const float* x, const float* w, const float* mean, const float* invstd, const float* gy,
                       float* gx, float* gw, float* gb, int64_t outer, int64_t C, int64_t inner) {
  // Parameter gradients: per-thread partial sums, added at the end (deterministic order).
  int nt = std::max(1, num_threads());
  std::vector<float> pw(size_t(nt * C), 0.f), pb(size_t(nt * C), 0.f);
  parallel_for(0, nt, 1, [&](int64_t tlo, int64_t thi) {
    for (int64_t t = tlo; t < thi; ++t) {
      std::vector<float> a(static_cast<size_t>(inner)), bsum(static_cast<size_t>(inner));
      int64_t o0 = outer * t / nt, o1 = outer * (t + 1) / nt;
      if (inner == 1) {  // rows of C contiguous values
        float* tw = pw.data() + t * C;
        float* tb = pb.data() + t * C;
        for (int64_t r = o0; r < o1; ++r) {
          const float* xr = x + r * C;
          const float* gr = gy + r * C;
          float mu = mean[r], is = invstd[r], sa = 0.f, sb = 0.f;
          for (int64_t c = 0; c < C; ++c) {
            float xh = (xr[c] - mu) * is, gw_c = (w ? w[c] : 1.f) * gr[c];
            tw[c] += gr[c] * xh;
            tb[c] += gr[c];
            sa += gw_c;
            sb += gw_c * xh;
          }
          if (!gx) continue;
          float* gxr = gx + r * C;
          float ma = sa / float(C), mb = sb / float(C);
          for (int64_t c = 0; c < C; ++c) {
            float xh = (xr[c] - mu) * is;
            gxr[c] = is * ((w ? w[c] : 1.f) * gr[c] - ma - xh * mb);
          }
        }
        continue;
      }
      for (int64_t o = o0; o < o1; ++o) {
        const float* xo = x + o * C * inner;
        const float* go = gy + o * C * inner;
        const float* mu = mean + o * inner;
        const float* is = invstd + o * inner;
        std::fill(a.begin(), a.end(), 0.f);
        std::fill(bsum.begin(), bsum.end(), 0.f);
        for (int64_t c = 0; c < C; ++c) {
          float wc = w ? w[c] : 1.f;
          float accw = 0.f, accb = 0.f;
          for (int64_t i = 0; i < inner; ++i) {
            float xh = (xo[c * inner + i] - mu[i]) * is[i], g = go[c * inner + i];
            accw += g * xh;
            accb += g;
            a[i] += wc * g;             // Σ ĝ
            bsum[i] += wc * g * xh;     // Σ ĝ x̂
          }
          pw[t * C + c] += accw;
          pb[t * C + c] += accb;
        }
        if (!gx) continue;
        float* gxo = gx + o * C * inner;
        for (int64_t c = 0; c < C; ++c) {
          float wc = w ? w[c] : 1.f;
          for (int64_t i = 0; i < inner; ++i) {
            float xh = (xo[c * inner + i] - mu[i]) * is[i];
            gxo[c * inner + i] = is[i] * (wc * go[c * inner + i] - (a[i] + xh * bsum[i]) / float(C));
          }
        }
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    float sw = 0.f, sb = 0.f;
    for (int t = 0; t < nt; ++t) sw += pw[t * C + c], sb += pb[t * C + c];
    if (gw) gw[c] = sw;
    if (gb) gb[c] = sb;
  }
}

void cross_entropy(const float* logits, const int32_t* targets, const float* wc, int64_t N, int64_t K, float eps,
                   float* loss, float* dlogits) {
  double total = 0, norm = 0;
  std::vector<float> p(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    const float* z = logits + n * K;
    int t = targets[n];
    float m = *std::max_element(z, z + K), s = 0.f;
    for (int64_t k = 0; k < K; ++k) s += std::exp(z[k] - m);
    float lse = m + std::log(s);
    double ln = 0;
    for (int64_t k = 0; k < K; ++k) {
      float q = (k == t ? 1.f - eps : 0.f) + eps / float(K);
      float w = wc ? wc[k] : 1.f;
      ln += -double(w) * q * (z[k] - lse);
    }
    total += ln;
    norm += wc ? wc[t] : 1.f;
  }
  // ∂l_n/∂z_k = (Σ_j w_j q_j) p_k − w_k q_k, all divided by the normaliser
  for (int64_t n = 0; n < N && dlogits; ++n) {
    const float* z = logits + n * K;
    int t = targets[n];
    float m = *std::max_element(z, z + K), s = 0.f;
    for (int64_t k = 0; k < K; ++k) s += (p[k] = std::exp(z[k] - m));
    float wq = 0.f;
    for (int64_t k = 0; k < K; ++k) wq += (wc ? wc[k] : 1.f) * ((k == t ? 1.f - eps : 0.f) + eps / float(K));
    for (int64_t k = 0; k < K; ++k) {
      float q = (k == t ? 1.f - eps : 0.f) + eps / float(K);
      dlogits[n * K + k] = float((wq * p[k] / s - (wc ? wc[k] : 1.f) * q) / norm);
    }
  }
  loss[0] = float(total / norm);
}

void cross_entropy_soft(const float* logits, const float* targets, const float* wc, int64_t N, int64_t K, float eps,
                        float* loss, float* dlogits) {
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* z = logits + n * K;
    const float* t = targets + n * K;
    float m = *std::max_element(z, z + K), s = 0.f;
    for (int64_t k = 0; k < K; ++k) s += std::exp(z[k] - m);
    const float lse = m + std::log(s);
    double ln = 0;
    float wq = 0.f;
    for (int64_t k = 0; k < K; ++k) {
      const float q = (1.f - eps) * t[k] + eps / float(K), w = wc ? wc[k] : 1.f;
      ln += -double(w) * q * (z[k] - lse);
      wq += w * q;
    }
    total += ln;
    // ∂l_n/∂z_k = (Σ_j w_j q_j) p_k − w_k q_k, divided by N
    for (int64_t k = 0; k < K && dlogits; ++k) {
      const float q = (1.f - eps) * t[k] + eps / float(K), w = wc ? wc[k] : 1.f;
      dlogits[n * K + k] = float((wq * (std::exp(z[k] - m) / s) - w * q) / double(N));
    }
  }
  loss[0] = float(total / double(N));
}

}  // namespace ahmsa::cpu
