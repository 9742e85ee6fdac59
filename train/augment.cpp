#include "train/augment.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ahmsa::train {

namespace {

constexpr float kPi = 3.14159265358979f;

// Each channel min-max normalised to [0, 1]; a constant channel becomes 0 (the cache's rule).
void renormalise(float* chw, int size) {
  const size_t n = size_t(size) * size_t(size);
  for (int c = 0; c < 3; ++c) {
    float* ch = chw + size_t(c) * n;
    const auto [lo, hi] = std::minmax_element(ch, ch + n);
    const float l = *lo, range = *hi - *lo;
    for (size_t i = 0; i < n; ++i) ch[i] = range > 0 ? (ch[i] - l) / range : 0.f;
  }
}

// Gamma(α, 1) in log space: Marsaglia & Tsang (2000) for α ≥ 1; for α < 1, Gamma(α + 1) · U^(1/α).
double log_gamma_draw(double alpha, Generator& gen) {
  double boost = 0;
  if (alpha < 1) {
    double u = std::max(double(gen.uniform()), 1e-300);
    boost = std::log(u) / alpha;
    alpha += 1;
  }
  const double d = alpha - 1.0 / 3.0, c = 1.0 / std::sqrt(9 * d);
  for (;;) {
    double x = gen.normal(), v = 1 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    const double u = std::max(double(gen.uniform()), 1e-300);
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return std::log(d * v) + boost;
  }
}

}  // namespace

SampleAugment draw_augment(const AugmentSettings& a, int size, Generator& gen) {
  SampleAugment t;
  const float S = float(size);
  if (a.translate > 0 && gen.uniform() < a.translate_prob) {
    t.warp = true;
    t.dx = gen.uniform(-a.translate, a.translate) * S;
    t.dy = gen.uniform(-a.translate, a.translate) * S;
  }
  if (a.crop > 0 && gen.uniform() < a.crop_prob) {
    t.warp = true;
    t.crop = gen.uniform(1.f - a.crop, 1.f);
    const float room = (1.f - t.crop) * S / 2;  // the crop stays inside the image
    t.cx = gen.uniform(-room, room);
    t.cy = gen.uniform(-room, room);
  }
  if (a.rotate > 0 && gen.uniform() < a.rotate_prob) {
    t.warp = true;
    t.angle = gen.uniform(-a.rotate, a.rotate) * kPi / 180.f;
  }
  if (a.erase > 0 && gen.uniform() < a.erase_prob) {
    // Random erasing (Zhong et al. 2020): area in [0.02, erase]·S², aspect ratio log-uniform in [0.3, 3.3].
    const float area = gen.uniform(std::min(0.02f, a.erase), a.erase) * S * S;
    const float ratio = std::exp(gen.uniform(std::log(0.3f), std::log(3.3f)));
    t.ew = std::clamp(int(std::lround(std::sqrt(area * ratio))), 1, size);
    t.eh = std::clamp(int(std::lround(std::sqrt(area / ratio))), 1, size);
    t.ex = int(gen.below(uint32_t(size - t.ew + 1)));
    t.ey = int(gen.below(uint32_t(size - t.eh + 1)));
    t.erase = true;
  }
  return t;
}

void warp_flow_image(float* chw, int size, const SampleAugment& t) {
  const size_t n = size_t(size) * size_t(size);
  const std::vector<float> src(chw, chw + 3 * n);
  const float c = 0.5f * float(size - 1), cs = std::cos(t.angle), sn = std::sin(t.angle);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      // q = c + o + s · R(−θ) (p − c − d)
      const float px = float(x) - c - t.dx, py = float(y) - c - t.dy;
      const float qx = c + t.cx + t.crop * (cs * px + sn * py);
      const float qy = c + t.cy + t.crop * (-sn * px + cs * py);
      const float fx = std::clamp(qx, 0.f, float(size - 1)), fy = std::clamp(qy, 0.f, float(size - 1));
      const int last = std::max(size - 2, 0);  // x0 + 1 must stay inside; fx = S − 1 gives x0 = S − 2, ax = 1
      const int x0 = std::min(int(fx), last), y0 = std::min(int(fy), last);
      const int x1 = std::min(x0 + 1, size - 1), y1 = std::min(y0 + 1, size - 1);
      const float ax = fx - float(x0), ay = fy - float(y0);
      for (int ch = 0; ch < 3; ++ch) {
        const float* s = src.data() + size_t(ch) * n;
        auto at = [&](int yy, int xx) { return s[size_t(yy) * size_t(size) + size_t(xx)]; };
        chw[size_t(ch) * n + size_t(y) * size_t(size) + size_t(x)] =
            (1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x1)) + ay * ((1 - ax) * at(y1, x0) + ax * at(y1, x1));
      }
    }
  renormalise(chw, size);
}

void erase_flow_image(float* chw, int size, int x, int y, int w, int h) {
  const size_t n = size_t(size) * size_t(size);
  const int x0 = std::max(x, 0), y0 = std::max(y, 0), x1 = std::min(x + w, size), y1 = std::min(y + h, size);
  for (int ch = 0; ch < 3; ++ch)
    for (int yy = y0; yy < y1; ++yy)
      for (int xx = x0; xx < x1; ++xx) chw[size_t(ch) * n + size_t(yy) * size_t(size) + size_t(xx)] = 0.f;
}

static void check_batch(const Tensor& x, const char* what) {
  if (x.device() != Device::CPU || x.dim() != 4 || x.size(1) != 3 || x.size(2) != x.size(3) || !x.is_contiguous())
    throw std::invalid_argument(std::string(what) + ": expected a contiguous CPU batch [B, 3, S, S], got " + x.str());
}

void augment_batch(Tensor& x, const std::vector<SampleAugment>& aug) {
  check_batch(x, "augment_batch");
  if (int64_t(aug.size()) != x.size(0))
    throw std::invalid_argument("augment_batch: " + std::to_string(aug.size()) + " plans for a batch " + x.str());
  const int S = int(x.size(2));
  const size_t per = size_t(3) * size_t(S) * size_t(S);
  for (size_t i = 0; i < aug.size(); ++i) {
    float* img = x.data() + i * per;
    if (aug[i].warp) warp_flow_image(img, S, aug[i]);
    if (aug[i].erase) erase_flow_image(img, S, aug[i].ex, aug[i].ey, aug[i].ew, aug[i].eh);
  }
}

float sample_beta(float alpha, Generator& gen) {
  if (!(alpha > 0)) throw std::invalid_argument("sample_beta: alpha " + std::to_string(alpha) + " must be positive");
  const double lx = log_gamma_draw(alpha, gen), ly = log_gamma_draw(alpha, gen);
  return float(1.0 / (1.0 + std::exp(ly - lx)));  // X / (X + Y)
}

MixPlan draw_mix(const MixSettings& m, int batch, int size, Generator& gen) {
  MixPlan p;
  if (!m.any() || batch < 2) return p;
  if (gen.uniform() >= m.prob) return p;
  const bool cutmix = m.cutmix_alpha > 0 && (m.mixup_alpha <= 0 || gen.below(2) == 1);
  p.kind = cutmix ? MixPlan::CutMix : MixPlan::Mixup;
  p.lambda = sample_beta(cutmix ? m.cutmix_alpha : m.mixup_alpha, gen);
  p.partner.resize(size_t(batch));
  for (int i = 0; i < batch; ++i) p.partner[size_t(i)] = i;
  for (size_t i = p.partner.size(); i > 1; --i) std::swap(p.partner[i - 1], p.partner[gen.below(uint32_t(i))]);
  if (cutmix) {
    // A box of side S·sqrt(1 − λ) (area share 1 − λ) at a uniform centre, clipped to the image.
    const float side = float(size) * std::sqrt(1.f - p.lambda);
    const int cx = int(gen.below(uint32_t(size))), cy = int(gen.below(uint32_t(size)));
    const int x0 = std::clamp(int(std::lround(float(cx) - side / 2)), 0, size), x1 = std::clamp(int(std::lround(float(cx) + side / 2)), 0, size);
    const int y0 = std::clamp(int(std::lround(float(cy) - side / 2)), 0, size), y1 = std::clamp(int(std::lround(float(cy) + side / 2)), 0, size);
    p.bx = x0, p.by = y0, p.bw = x1 - x0, p.bh = y1 - y0;
    p.lambda = 1.f - float(p.bw * p.bh) / float(size * size);
  }
  return p;
}

void apply_mix(Tensor& x, const MixPlan& p) {
  if (p.kind == MixPlan::None) return;
  check_batch(x, "apply_mix");
  const int64_t B = x.size(0);
  const int S = int(x.size(2));
  if (int64_t(p.partner.size()) != B) throw std::invalid_argument("apply_mix: a partner list of " + std::to_string(p.partner.size()) + " for " + x.str());
  const size_t per = size_t(3) * size_t(S) * size_t(S), n = size_t(S) * size_t(S);
  const std::vector<float> src = x.to_vector();
  float* d = x.data();
  for (int64_t i = 0; i < B; ++i) {
    const float* a = src.data() + size_t(i) * per;
    const float* b = src.data() + size_t(p.partner[size_t(i)]) * per;
    float* o = d + size_t(i) * per;
    if (p.kind == MixPlan::Mixup) {
      for (size_t k = 0; k < per; ++k) o[k] = p.lambda * a[k] + (1.f - p.lambda) * b[k];
    } else {
      for (int ch = 0; ch < 3; ++ch)
        for (int y = p.by; y < p.by + p.bh; ++y)
          for (int xx = p.bx; xx < p.bx + p.bw; ++xx) {
            const size_t k = size_t(ch) * n + size_t(y) * size_t(S) + size_t(xx);
            o[k] = b[k];
          }
    }
  }
}

std::vector<float> mixed_targets(const std::vector<int>& y, int classes, const MixPlan& p) {
  std::vector<float> q(y.size() * size_t(classes), 0.f);
  for (size_t i = 0; i < y.size(); ++i) {
    q[i * size_t(classes) + size_t(y[i])] += p.kind == MixPlan::None ? 1.f : p.lambda;
    if (p.kind != MixPlan::None) q[i * size_t(classes) + size_t(y[size_t(p.partner[i])])] += 1.f - p.lambda;
  }
  return q;
}

}  // namespace ahmsa::train
