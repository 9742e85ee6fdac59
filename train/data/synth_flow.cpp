#include "train/data/synth_flow.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "flow/image.h"
#include "train/data/run_folder.h"
#include "train/data/synth.h"

namespace fs = std::filesystem;

namespace ahmsa::data {

namespace {

constexpr float kPi = 3.14159265358979f;

// A Gaussian blob of displacement (du, dv) at (x, y) with width s, in face coordinates [0, 1]².
struct Blob {
  float x, y, s, du, dv;
};

struct DatasetLook {
  const char* name;
  const char* subject_fmt;  // the id style of the real dataset
  float ratio[3];           // the dataset's share of negative, positive, surprise in the composite
  float noise;              // per-pixel noise on u and v, relative to the class amplitude
  int downsample;           // rendered at size / downsample, then enlarged (lower resolution)
  float head;               // head-motion amplitude
};
// Composite class counts per dataset: CASME II 88/32/25, SAMM 91/26/15, SMIC 70/51/43 (250/109/83 in all).
const DatasetLook kLooks[3] = {{"casme2", "casme2/sub%02d", {88, 32, 25}, 0.30f, 1, 0.6f},
                               {"samm", "samm/%03d", {91, 26, 15}, 0.20f, 1, 1.0f},
                               {"smic", "smic/s%d", {70, 51, 43}, 0.50f, 2, 0.8f}};

// The class motion (before the subject's transform), amplitude 1: negative lowers and draws the brows
// together, positive pulls the lip corners out and up, surprise raises the brows and drops the jaw.
std::vector<Blob> class_blobs(int cls) {
  switch (cls) {
    case 0: return {{0.35f, 0.30f, 0.09f, 0.6f, 0.8f}, {0.65f, 0.30f, 0.09f, -0.6f, 0.8f}};
    case 1: return {{0.33f, 0.72f, 0.09f, -0.7f, -0.7f}, {0.67f, 0.72f, 0.09f, 0.7f, -0.7f}};
    default: return {{0.35f, 0.28f, 0.09f, 0.f, -1.f}, {0.65f, 0.28f, 0.09f, 0.f, -1.f}, {0.5f, 0.85f, 0.10f, 0.f, 0.7f}};
  }
}

void add_blobs(const std::vector<Blob>& blobs, int R, std::vector<float>& u, std::vector<float>& v) {
  for (const Blob& b : blobs)
    for (int y = 0; y < R; ++y)
      for (int x = 0; x < R; ++x) {
        const float fx = (float(x) + 0.5f) / float(R) - b.x, fy = (float(y) + 0.5f) / float(R) - b.y;
        const float g = std::exp(-(fx * fx + fy * fy) / (2 * b.s * b.s));
        u[size_t(y) * size_t(R) + size_t(x)] += g * b.du;
        v[size_t(y) * size_t(R) + size_t(x)] += g * b.dv;
      }
}

// Bilinear enlargement of an R×R field to S×S (pixel centres aligned).
std::vector<float> enlarge(const std::vector<float>& f, int R, int S) {
  if (R == S) return f;
  std::vector<float> out(size_t(S) * size_t(S));
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const float sx = std::clamp((float(x) + 0.5f) * float(R) / float(S) - 0.5f, 0.f, float(R - 1));
      const float sy = std::clamp((float(y) + 0.5f) * float(R) / float(S) - 0.5f, 0.f, float(R - 1));
      const int x0 = std::min(int(sx), R - 2 < 0 ? 0 : R - 2), y0 = std::min(int(sy), R - 2 < 0 ? 0 : R - 2);
      const int x1 = std::min(x0 + 1, R - 1), y1 = std::min(y0 + 1, R - 1);
      const float ax = sx - float(x0), ay = sy - float(y0);
      auto at = [&](int yy, int xx) { return f[size_t(yy) * size_t(R) + size_t(xx)]; };
      out[size_t(y) * size_t(S) + size_t(x)] =
          (1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x1)) + ay * ((1 - ax) * at(y1, x0) + ax * at(y1, x1));
    }
  return out;
}

// Optical strain magnitude sqrt(u_x² + v_y² + ½(u_y + v_x)²), central differences (one-sided at the border).
std::vector<float> strain(const std::vector<float>& u, const std::vector<float>& v, int S) {
  auto d = [&](const std::vector<float>& f, int x, int y, bool dx) {
    const int xa = dx ? std::max(x - 1, 0) : x, xb = dx ? std::min(x + 1, S - 1) : x;
    const int ya = dx ? y : std::max(y - 1, 0), yb = dx ? y : std::min(y + 1, S - 1);
    const float span = float(dx ? xb - xa : yb - ya);
    return span > 0 ? (f[size_t(yb) * size_t(S) + size_t(xb)] - f[size_t(ya) * size_t(S) + size_t(xa)]) / span : 0.f;
  };
  std::vector<float> os(size_t(S) * size_t(S));
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const float ux = d(u, x, y, true), uy = d(u, x, y, false), vx = d(v, x, y, true), vy = d(v, x, y, false);
      os[size_t(y) * size_t(S) + size_t(x)] = std::sqrt(ux * ux + vy * vy + 0.5f * (uy + vx) * (uy + vx));
    }
  return os;
}

// Min-max normalised to 8 bits, as the cache stores a channel (a constant channel becomes 0).
void put_channel(img::Image& im, int c, const std::vector<float>& f) {
  const auto [lo, hi] = std::minmax_element(f.begin(), f.end());
  const float range = *hi - *lo;
  for (size_t i = 0; i < f.size(); ++i) {
    const float n = range > 0 ? (f[i] - *lo) / range : 0.f;
    im.data[i * 3 + size_t(c)] = std::round(n * 255.f);
  }
}

}  // namespace

SmallDataReport write_small_data_benchmark(const SmallDataOptions& o) {
  if (o.out_dir.empty()) throw std::invalid_argument("synth --preset small-data: --out is required");
  if (o.subjects < 3) throw std::invalid_argument("synth --preset small-data: at least 3 subjects (one per dataset), got " +
                                                  std::to_string(o.subjects));
  if (o.size < 8) throw std::invalid_argument("synth --preset small-data: image size " + std::to_string(o.size) + " below 8");
  const int S = o.size;
  fs::create_directories(fs::path(o.out_dir) / "flows");
  Rng rng(o.seed * 0x9E3779B97F4A7C15ull + 17);
  SmallDataReport rep;
  std::string csv = "dataset,subject,clip,label,file\n";
  // 5 : 5 : 4 subjects over the three datasets (the composite has 24 : 28 : 16).
  int counts[3] = {(o.subjects * 5 + 13) / 14, 0, 0};
  counts[2] = std::max(1, o.subjects * 4 / 14);
  counts[1] = o.subjects - counts[0] - counts[2];
  for (int d = 0; d < 3; ++d) {
    const DatasetLook& look = kLooks[d];
    const int R = S / look.downsample;
    for (int sj = 0; sj < counts[d]; ++sj) {
      char sid[64];
      std::snprintf(sid, sizeof sid, look.subject_fmt, sj + 1);
      // The subject: face placement, expressivity, a personal rotation of the motion directions, a skew
      // of the class mix, and its own motion (blobs at random places, present in every clip).
      const float ox = rng.uniform(-0.05f, 0.05f), oy = rng.uniform(-0.05f, 0.05f), sc = rng.uniform(0.9f, 1.1f);
      const float expressive = rng.uniform(0.4f, 1.2f), phi = rng.uniform(-35.f, 35.f) * kPi / 180.f;
      float mix[3], total = 0;
      for (int c = 0; c < 3; ++c) total += (mix[c] = look.ratio[c] * rng.uniform(0.3f, 1.7f));
      std::vector<Blob> style;
      for (int k = 0; k < 3; ++k) {
        const float a = o.style * rng.uniform(0.6f, 1.0f), t = rng.uniform(0.f, 2 * kPi);
        style.push_back({rng.uniform(0.15f, 0.85f), rng.uniform(0.15f, 0.85f), rng.uniform(0.08f, 0.16f), a * std::cos(t), a * std::sin(t)});
      }
      const int lo = 2, hi = std::max(lo, int(std::lround(2 * o.clips_per_subject)) - lo);
      const int clips = rng.integer(lo, hi);
      for (int k = 0; k < clips; ++k) {
        float r = rng.uniform(0.f, total);
        int cls = 0;
        while (cls < 2 && r >= mix[cls]) r -= mix[cls++];
        std::vector<float> u(size_t(R) * size_t(R), 0.f), v(u.size(), 0.f);
        // The class motion, placed on the subject's face and turned by its rotation and a clip jitter.
        const float amp = o.signal * expressive * rng.uniform(0.6f, 1.4f);
        const float turn = phi + rng.uniform(-15.f, 15.f) * kPi / 180.f, ct = std::cos(turn), st = std::sin(turn);
        std::vector<Blob> motion;
        for (Blob b : class_blobs(cls)) {
          b.x = 0.5f + ox + sc * (b.x - 0.5f), b.y = 0.5f + oy + sc * (b.y - 0.5f), b.s *= sc;
          const float du = amp * (ct * b.du - st * b.dv), dv = amp * (st * b.du + ct * b.dv);
          b.du = du, b.dv = dv;
          motion.push_back(b);
        }
        for (Blob b : style) {
          const float j = rng.uniform(0.7f, 1.3f);
          b.du *= j, b.dv *= j;
          motion.push_back(b);
        }
        if (rng.uniform() < 0.3f) {  // a blink: both eyes move down, in any class
          const float a = rng.uniform(0.5f, 1.5f);
          motion.push_back({0.35f + ox, 0.40f + oy, 0.06f, 0.f, a});
          motion.push_back({0.65f + ox, 0.40f + oy, 0.06f, 0.f, a});
        }
        add_blobs(motion, R, u, v);
        // Head motion: a small rotation and zoom about the centre (a pure shift would be normalised away).
        const float rot = look.head * rng.normal(), zoom = look.head * rng.normal();
        for (int y = 0; y < R; ++y)
          for (int x = 0; x < R; ++x) {
            const float fx = (float(x) + 0.5f) / float(R) - 0.5f, fy = (float(y) + 0.5f) / float(R) - 0.5f;
            u[size_t(y) * size_t(R) + size_t(x)] += -rot * fy + zoom * fx + look.noise * rng.normal();
            v[size_t(y) * size_t(R) + size_t(x)] += rot * fx + zoom * fy + look.noise * rng.normal();
          }
        u = enlarge(u, R, S), v = enlarge(v, R, S);
        img::Image im(S, S, 3);
        put_channel(im, 0, u);
        put_channel(im, 1, v);
        put_channel(im, 2, strain(u, v, S));
        char clip[32], file[160];
        std::snprintf(clip, sizeof clip, "c%02d", k + 1);
        std::snprintf(file, sizeof file, "flows/%s_%02d_%s.png", look.name, sj + 1, clip);
        img::save_png((fs::path(o.out_dir) / file).string(), im);
        csv += std::string(look.name) + "," + sid + "," + clip + "," + std::to_string(cls) + "," + file + "\n";
        rep.clips++, rep.per_class[cls]++, rep.per_dataset[d]++;
      }
    }
  }
  char json[1024];
  std::snprintf(json, sizeof json,
                "{\n  \"class_names\": [\"negative\", \"positive\", \"surprise\"],\n  \"source\": \"synthetic small-data "
                "benchmark (ahmsa synth --preset small-data): subjects %d, size %d, clips per subject %g, signal %g, style %g, "
                "seed %llu\",\n  \"signature\": \"synth-small-data-v1\"\n}\n",
                o.subjects, o.size, double(o.clips_per_subject), double(o.signal), double(o.style), (unsigned long long)o.seed);
  write_file_atomic(fs::path(o.out_dir) / "manifest.csv", csv);
  write_file_atomic(fs::path(o.out_dir) / "manifest.json", json);
  return rep;
}

}  // namespace ahmsa::data
