#include "flow/synthetic.h"

#include <algorithm>
#include <cmath>

namespace ahmsa::flow::synth {

FlowField translation(int w, int h, float dx, float dy) {
  FlowField f(w, h);
  std::fill(f.u.begin(), f.u.end(), dx);
  std::fill(f.v.begin(), f.v.end(), dy);
  return f;
}

FlowField rotation(int w, int h, float angle_deg) {
  FlowField f(w, h);
  const float a = angle_deg * float(M_PI) / 180.f, c = std::cos(a), s = std::sin(a);
  const float cx = 0.5f * (w - 1), cy = 0.5f * (h - 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float px = x - cx, py = y - cy;
      f.u[size_t(y) * w + x] = c * px - s * py - px;
      f.v[size_t(y) * w + x] = s * px + c * py - py;
    }
  return f;
}

FlowField zoom(int w, int h, float scale) {
  FlowField f(w, h);
  const float cx = 0.5f * (w - 1), cy = 0.5f * (h - 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      f.u[size_t(y) * w + x] = (scale - 1) * (x - cx);
      f.v[size_t(y) * w + x] = (scale - 1) * (y - cy);
    }
  return f;
}

FlowField gaussian_bump(int w, int h, float cx, float cy, float sigma, float du, float dv) {
  FlowField f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float g = std::exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2 * sigma * sigma));
      f.u[size_t(y) * w + x] = du * g;
      f.v[size_t(y) * w + x] = dv * g;
    }
  return f;
}

FlowField sheared_patch(int w, int h, float cx, float cy, float r, float shear) {
  FlowField f(w, h);
  // window: 1 inside |x - c| < r (both axes), falling off as a Gaussian of sigma r/3 outside
  auto win = [&](float d) {
    d = std::fabs(d) - r;
    return d <= 0 ? 1.f : std::exp(-d * d / (2 * (r / 3) * (r / 3)));
  };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) f.u[size_t(y) * w + x] = shear * (y - cy) * win(x - cx) * win(y - cy);
  return f;
}

FlowField add(const FlowField& a, const FlowField& b) {
  if (a.width != b.width || a.height != b.height) throw FlowError("synth::add: flow sizes differ");
  FlowField f = a;
  for (size_t i = 0; i < f.u.size(); ++i) f.u[i] += b.u[i], f.v[i] += b.v[i];
  return f;
}

namespace {
// Deterministic standard normal numbers: 64-bit LCG (Knuth's MMIX constants) + Box-Muller.
struct Normal {
  uint64_t s;
  explicit Normal(uint64_t seed) : s(seed * 2862933555777941757ULL + 3037000493ULL) {}
  double uniform() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double(s >> 11) + 0.5) / 9007199254740992.0;  // (0, 1)
  }
  float operator()() {
    const double r = std::sqrt(-2 * std::log(uniform())), t = 2 * M_PI * uniform();
    return float(r * std::cos(t));
  }
};
}  // namespace

// Noise, then rounding to 8 bits as a camera would (and so every method sees the same frames).
static void add_noise(Pair& p, float noise_sigma, uint64_t seed) {
  Normal n(seed);
  for (auto* im : {&p.I0, &p.I1})
    for (auto& v : im->data) v = std::clamp(std::round(v + (noise_sigma > 0 ? noise_sigma * n() : 0.f)), 0.f, 255.f);
}

Pair make_pair(const img::Image& frame, const FlowField& motion, float noise_sigma, uint64_t seed) {
  Pair p;
  p.I1 = img::to_grey(frame);
  p.I0 = warp_bicubic(p.I1, motion);
  p.truth = motion;
  add_noise(p, noise_sigma, seed);
  return p;
}

Pair make_pair_hr(const img::Image& hr, const FlowField& motion, int size, float noise_sigma, uint64_t seed) {
  if (motion.width != size || motion.height != size)
    throw FlowError("make_pair_hr: motion must be " + std::to_string(size) + "x" + std::to_string(size));
  const img::Image grey = img::to_grey(hr);
  Pair p;
  p.I1 = img::resize_area(grey, size, size);
  p.I0 = img::resize_area(warp_bicubic(grey, resize_flow(motion, grey.width, grey.height)), size, size);
  p.truth = motion;
  add_noise(p, noise_sigma, seed);
  return p;
}

img::Image face_crop(const std::string& shared_dir, int size) {
  img::Image im = img::crop(img::load(shared_dir + "/data/faces/kphotoalbum/jesper_2.jpg", 1), 219, 89, 317, 317);
  return size > 0 ? img::resize_area(im, size, size) : im;
}

img::Image astronaut_face_crop(const std::string& shared_dir, int size) {
  img::Image im = img::crop(img::load(shared_dir + "/data/faces/astronaut.png", 1), 148, 40, 156, 156);
  return size > 0 ? img::resize_area(im, size, size) : im;
}

std::vector<Case> face_cases(const img::Image& hr, int size, float noise_sigma) {
  const int w = size, h = size;
  const float s = float(size) / 128.f;  // the cases are designed at 128 x 128
  std::vector<Case> cases;
  uint64_t seed = 1;
  auto push = [&](const std::string& name, bool sub, const FlowField& m) {
    cases.push_back({name, sub, make_pair_hr(hr, m, size, noise_sigma, seed++)});
  };
  // Micro-expression-like local motions, 0.1 - 2 px.
  push("brow_raise_0.5px", true, gaussian_bump(w, h, 44 * s, 40 * s, 10 * s, 0.f, -0.5f));
  push("lip_corners_0.3px", true,
       add(gaussian_bump(w, h, 46 * s, 98 * s, 8 * s, -0.3f, -0.15f), gaussian_bump(w, h, 84 * s, 98 * s, 8 * s, 0.3f, -0.15f)));
  push("tiny_bump_0.1px", true, gaussian_bump(w, h, 64 * s, 70 * s, 12 * s, 0.08f, -0.06f));
  push("bump_2px", true, gaussian_bump(w, h, 80 * s, 45 * s, 12 * s, 1.2f, -1.6f));
  push("sheared_patch_0.4px", true, sheared_patch(w, h, 64 * s, 44 * s, 12 * s, 0.03f));
  // Global motions (head movement).
  push("translate_0.3px", false, translation(w, h, 0.3f, -0.2f));
  push("rotate_1deg", false, rotation(w, h, 1.0f));
  push("zoom_1.02", false, zoom(w, h, 1.02f));
  return cases;
}

}  // namespace ahmsa::flow::synth
