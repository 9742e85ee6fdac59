#include "train/data/synth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <stb/stb_image_write.h>  // declarations only: the implementation lives in flow/stb_write.cpp

#include "train/data/paths.h"
#include "train/data/table.h"

namespace fs = std::filesystem;

namespace ahmsa::data {

// ---------------------------------------------------------------- RNG

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Rng::Rng(uint64_t seed) {
  for (auto& w : s) w = splitmix64(seed);
}

uint64_t Rng::next() {  // xoshiro256** (Blackman & Vigna 2018)
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
  return result;
}

float Rng::uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }
int Rng::integer(int lo, int hi) { return lo + int(next() % uint64_t(hi - lo + 1)); }
float Rng::normal() {
  float u1 = std::max(uniform(), 1e-7f), u2 = uniform();
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
}

static uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t x = seed ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full);
  return splitmix64(x);
}

// ---------------------------------------------------------------- sampling helpers

// Bilinear sample of channel c at (x, y) in pixel-centre coordinates, edges replicated.
static float sample(const img::Image& im, float x, float y, int c) {
  x = std::clamp(x, 0.f, float(im.width - 1));
  y = std::clamp(y, 0.f, float(im.height - 1));
  int x0 = std::min(int(x), im.width - 2 < 0 ? 0 : im.width - 2), y0 = std::min(int(y), im.height - 2 < 0 ? 0 : im.height - 2);
  int x1 = std::min(x0 + 1, im.width - 1), y1 = std::min(y0 + 1, im.height - 1);
  float fx = x - x0, fy = y - y0;
  float a = im.at(x0, y0, c), b = im.at(x1, y0, c), d = im.at(x0, y1, c), e = im.at(x1, y1, c);
  return (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
}

// The square (cx, cy, side) of `src` resampled to size x size RGB, box-filtered first when shrinking.
static img::Image square_crop(const img::Image& src0, float cx, float cy, float side, int size) {
  img::Image src = src0.channels == 3 ? src0 : img::Image();
  if (src0.channels != 3) {
    src = img::Image(src0.width, src0.height, 3);
    for (int y = 0; y < src0.height; ++y)
      for (int x = 0; x < src0.width; ++x)
        for (int c = 0; c < 3; ++c) src.at(x, y, c) = src0.at(x, y, std::min(c, src0.channels - 1));
  }
  float scale = side / size;  // source pixels per output pixel
  int shrink = std::max(1, int(scale / 1.5f));
  if (shrink > 1) {
    src = img::resize_area(src, std::max(1, src.width / shrink), std::max(1, src.height / shrink));
    float fx = float(src0.width) / src.width, fy = float(src0.height) / src.height;
    cx /= fx, cy /= fy, side /= 0.5f * (fx + fy);
    scale = side / size;
  }
  img::Image out(size, size, 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      float sx = cx + (x + 0.5f - size * 0.5f) * scale - 0.5f, sy = cy + (y + 0.5f - size * 0.5f) * scale - 0.5f;
      for (int c = 0; c < 3; ++c) out.at(x, y, c) = sample(src, sx, sy, c);
    }
  return out;
}

// ---------------------------------------------------------------- face sources

struct AnnotatedFace {
  std::string image;
  float box_w = 0;
  Landmarks lm;
};

static std::string attr(const std::string& tag, const std::string& name) {
  size_t p = tag.find(" " + name + "='");
  char q = '\'';
  if (p == std::string::npos) p = tag.find(" " + name + "=\""), q = '"';
  if (p == std::string::npos) return "";
  p += name.size() + 3;
  return tag.substr(p, tag.find(q, p) - p);
}

// dlib imglab XML: <image file=..><box top left width height><part name='00' x y/>..</box></image>
static std::vector<AnnotatedFace> parse_dlib_xml(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string x = ss.str();
  std::vector<AnnotatedFace> faces;
  std::string image;
  AnnotatedFace cur;
  int parts = 0;
  size_t p = 0;
  // A number attribute of the tag at byte p; a bad one names the file and the byte.
  auto number = [&](const std::string& tag, const std::string& name) {
    const std::string v = attr(tag, name);
    char* end = nullptr;
    float f = std::strtof(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(f))
      throw DataError("'" + path + "': bad " + name + "=\"" + v + "\" at byte " + std::to_string(p));
    return f;
  };
  for (p = x.find('<'); p != std::string::npos; p = x.find('<', p + 1)) {
    size_t e = x.find('>', p);
    if (e == std::string::npos) break;
    std::string tag = x.substr(p, e - p + 1);
    if (tag.rfind("<image ", 0) == 0) image = attr(tag, "file");
    else if (tag.rfind("<box ", 0) == 0) {
      cur = AnnotatedFace();
      cur.image = image;
      cur.box_w = number(tag, "width");
      parts = 0;
    } else if (tag.rfind("<part ", 0) == 0) {
      float i = number(tag, "name");
      if (i >= 0 && i < 68 && i == std::floor(i)) cur.lm[int(i)] = {number(tag, "x"), number(tag, "y")}, ++parts;
    } else if (tag == "</box>" && parts == 68) faces.push_back(cur);
  }
  return faces;
}

// The face square of a landmark set: centred on the landmarks' box (nudged up for the forehead),
// side 1.5 x its larger extent.
static void face_square(const Landmarks& lm, float& cx, float& cy, float& side) {
  float x0 = 1e9f, x1 = -1e9f, y0 = 1e9f, y1 = -1e9f;
  for (auto& p : lm) x0 = std::min(x0, p[0]), x1 = std::max(x1, p[0]), y0 = std::min(y0, p[1]), y1 = std::max(y1, p[1]);
  side = 1.5f * std::max(x1 - x0, y1 - y0);
  cx = 0.5f * (x0 + x1), cy = 0.5f * (y0 + y1) - 0.05f * side;
}

std::vector<FaceSource> load_face_sources(const std::string& faces_dir, int size) {
  struct Candidate {
    FaceSource src;
    float resolution;
  };
  std::vector<Candidate> all;
  std::vector<std::array<double, 2>> mean(68, {0, 0});
  int n_mean = 0, k = 0;
  for (auto xml : {"training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"}) {
    fs::path px = fs::path(faces_dir) / "dlib_voc" / xml;
    if (!fs::exists(px)) continue;
    auto faces = parse_dlib_xml(px.string());
    std::map<std::string, img::Image> cache;
    for (auto& af : faces) {
      fs::path ip = fs::path(faces_dir) / "dlib_voc" / af.image;
      if (!cache.count(af.image)) cache[af.image] = img::load(ip.string(), 3);
      float cx, cy, side;
      face_square(af.lm, cx, cy, side);
      Candidate c;
      c.src.name = "dlib_voc/" + af.image + "#" + std::to_string(k++);
      c.src.face = square_crop(cache[af.image], cx, cy, side, size);
      for (int i = 0; i < 68; ++i) {
        float nx = (af.lm[i][0] - cx) / side + 0.5f, ny = (af.lm[i][1] - cy) / side + 0.5f;
        c.src.landmarks[i] = {nx * size, ny * size};
        mean[i][0] += nx, mean[i][1] += ny;
      }
      ++n_mean;
      c.resolution = af.box_w;
      all.push_back(std::move(c));
    }
  }
  if (n_mean == 0) throw DataError("no landmark-annotated faces under '" + faces_dir + "/dlib_voc'");
  Landmarks mean_lm;
  for (int i = 0; i < 68; ++i) mean_lm[i] = {float(mean[i][0] / n_mean) * size, float(mean[i][1] / n_mean) * size};
  auto add_mean = [&](const std::string& name, const img::Image& im, float cx, float cy, float side, float res) {
    Candidate c;
    c.src.name = name;
    c.src.face = square_crop(im, cx, cy, side, size);
    c.src.landmarks = mean_lm;
    c.src.mean_layout = true;
    c.resolution = res;
    all.push_back(std::move(c));
  };
  // Aligned 150 x 150 chips (dlib's face chips, padding 0.25): the whole chip is the face square.
  fs::path johns = fs::path(faces_dir) / "dlib_johns";
  if (fs::exists(johns)) {
    std::vector<fs::path> people;
    for (auto& d : fs::directory_iterator(johns))
      if (d.is_directory()) people.push_back(d.path());
    std::sort(people.begin(), people.end());
    for (auto& person : people) {
      std::vector<fs::path> files;
      for (auto& f : fs::directory_iterator(person))
        if (f.path().extension() == ".jpg") files.push_back(f.path());
      std::sort(files.begin(), files.end());
      if (files.empty()) continue;
      img::Image im = img::load(files[0].string(), 3);
      add_mean("dlib_johns/" + person.filename().string(), im, im.width * 0.5f, im.height * 0.5f, float(im.width), 100);
    }
  }
  // Photos with a face box (the Haar detections listed in shared/data/README.md).
  struct Boxed {
    const char* file;
    float x, y, w;
  };
  for (auto b : {Boxed{"astronaut.png", 177, 66, 95}, Boxed{"kphotoalbum/jesper_2.jpg", 219, 89, 317},
                 Boxed{"kphotoalbum/anne_helene.jpg", 135, 136, 102}}) {
    fs::path p = fs::path(faces_dir) / b.file;
    if (!fs::exists(p)) continue;
    img::Image im = img::load(p.string(), 3);
    add_mean(b.file, im, b.x + 0.5f * b.w, b.y + 0.5f * b.w + 0.04f * b.w, 1.45f * b.w, b.w);
  }
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) { return a.resolution > b.resolution; });
  std::vector<FaceSource> out;
  for (auto& c : all) out.push_back(std::move(c.src));
  return out;
}

// ---------------------------------------------------------------- expression motion

struct ControlPoint {
  std::array<float, 2> at;
  float dx, dy;  // in units of the amplitude
};

static std::array<float, 2> mid(const Landmarks& lm, int a, int b, float t = 0.5f) {
  return {lm[a][0] * (1 - t) + lm[b][0] * t, lm[a][1] * (1 - t) + lm[b][1] * t};
}

// Action-unit-like control points per class (image coordinates: x right, y down; the subject's right
// side is the image's left). Directions have length <= 1, so the peak displacement ~ the amplitude.
static std::vector<ControlPoint> control_points(int cls, const Landmarks& lm) {
  std::vector<ControlPoint> cp;
  auto add = [&](int i, float dx, float dy) { cp.push_back({lm[i], dx, dy}); };
  if (cls == 1) {  // positive: AU12 lip corners up and out, AU6 cheek raise, lower lids pushed up
    add(48, -0.55f, -0.8f), add(54, 0.55f, -0.8f), add(49, -0.25f, -0.5f), add(53, 0.25f, -0.5f);
    cp.push_back({mid(lm, 41, 48, 0.45f), 0.f, -0.65f});
    cp.push_back({mid(lm, 46, 54, 0.45f), 0.f, -0.65f});
    add(40, 0.f, -0.35f), add(41, 0.f, -0.35f), add(46, 0.f, -0.35f), add(47, 0.f, -0.35f);
  } else if (cls == 0) {  // negative: AU4 brows lowered and drawn together, AU9 nose wrinkle, AU15 corners down
    add(21, 0.55f, 0.75f), add(22, -0.55f, 0.75f), add(20, 0.3f, 0.55f), add(23, -0.3f, 0.55f);
    add(31, 0.f, -0.6f), add(35, 0.f, -0.6f), add(29, 0.f, -0.3f);
    add(48, 0.1f, 0.85f), add(54, -0.1f, 0.85f);
  } else {  // surprise: AU1+2 brows raised, AU5 upper lids raised, AU26 jaw drop
    for (int i = 17; i <= 26; ++i) add(i, 0.f, -1.0f);
    add(37, 0.f, -0.5f), add(38, 0.f, -0.5f), add(43, 0.f, -0.5f), add(44, 0.f, -0.5f);
    add(57, 0.f, 0.9f), add(8, 0.f, 1.0f), add(7, 0.f, 0.9f), add(9, 0.f, 0.9f), add(66, 0.f, 0.8f);
  }
  return cp;
}

std::vector<int> moved_landmarks(int cls) {
  if (cls == 1) return {48, 54, 49, 53, 40, 41, 46, 47};
  if (cls == 0) return {21, 22, 20, 23, 31, 35, 29, 48, 54};
  std::vector<int> v;
  for (int i = 17; i <= 26; ++i) v.push_back(i);
  for (int i : {37, 38, 43, 44, 57, 8, 7, 9, 66}) v.push_back(i);
  return v;
}

static float face_width(const Landmarks& lm) { return std::hypot(lm[16][0] - lm[0][0], lm[16][1] - lm[0][1]); }

// Gaussian-weighted control points: D(x) = sum_k w_k(x) d_k / max(1, sum_k w_k(x)),
// w_k = exp(-|x - p_k|^2 / (2 sigma^2)), sigma = 0.11 face width. The normalisation keeps
// overlapping points of one group from adding up beyond the amplitude.
static void control_field(const std::vector<ControlPoint>& cp, float sigma, float amp, int size, std::vector<float>& dx,
                          std::vector<float>& dy) {
  dx.assign(size_t(size) * size, 0.f), dy.assign(size_t(size) * size, 0.f);
  float inv = 1.f / (2 * sigma * sigma);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      float sw = 0, sx = 0, sy = 0;
      for (auto& c : cp) {
        float ex = x + 0.5f - c.at[0], ey = y + 0.5f - c.at[1];
        float w = std::exp(-(ex * ex + ey * ey) * inv);
        sw += w, sx += w * c.dx, sy += w * c.dy;
      }
      float n = std::max(1.f, sw);
      dx[size_t(y) * size + x] = amp * sx / n, dy[size_t(y) * size + x] = amp * sy / n;
    }
}

void expression_field(int cls, const Landmarks& lm, float amp, int size, std::vector<float>& dx, std::vector<float>& dy) {
  control_field(control_points(cls, lm), 0.11f * face_width(lm), amp, size, dx, dy);
}

// ---------------------------------------------------------------- subjects and clips

struct Subject {
  img::Image neutral;  // size x size x 3, 0..255
  Landmarks lm;
};

// A subject from a source face: a random similarity transform (scale, small rotation, shift), a skin
// tone gain and tint, and a fixed fine texture (pores) that moves with the face and gives the flow
// something to track on smooth upsampled faces.
static Subject make_subject(const FaceSource& src, int size, Rng& rng) {
  Subject s;
  float zoom = rng.uniform(0.92f, 1.08f), angle = rng.uniform(-4.f, 4.f) * 3.14159265f / 180.f;
  float tx = rng.uniform(-3.f, 3.f), ty = rng.uniform(-3.f, 3.f);
  float gain = rng.uniform(0.8f, 1.15f), tint[3];
  for (float& t : tint) t = rng.uniform(0.94f, 1.06f);
  float c = size * 0.5f, ca = std::cos(angle), sa = std::sin(angle);
  // forward: p' = c + zoom R (p - c) + t ; backward for sampling.
  s.neutral = img::Image(size, size, 3);
  std::vector<float> texture(size_t(size) * size);
  for (auto& t : texture) t = rng.normal();
  // two passes of a 3x3 box blur: texture correlated over ~2 px
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<float> b(texture.size());
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        float acc = 0;
        int n = 0;
        for (int j = -1; j <= 1; ++j)
          for (int i = -1; i <= 1; ++i) {
            int xx = x + i, yy = y + j;
            if (xx >= 0 && yy >= 0 && xx < size && yy < size) acc += texture[size_t(yy) * size + xx], ++n;
          }
        b[size_t(y) * size + x] = acc / n;
      }
    texture.swap(b);
  }
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      float px = x + 0.5f - c - tx, py = y + 0.5f - c - ty;
      float sx = (ca * px + sa * py) / zoom + c - 0.5f, sy = (-sa * px + ca * py) / zoom + c - 0.5f;
      float tex = 9.f * texture[size_t(y) * size + x];
      for (int ch = 0; ch < 3; ++ch)
        s.neutral.at(x, y, ch) = std::clamp(sample(src.face, sx, sy, ch) * gain * tint[ch] + tex, 0.f, 255.f);
    }
  for (int i = 0; i < 68; ++i) {
    float px = src.landmarks[i][0] - c, py = src.landmarks[i][1] - c;
    s.lm[i] = {c + zoom * (ca * px - sa * py) + tx, c + zoom * (sa * px + ca * py) + ty};
  }
  return s;
}

static const char* class_emotion(int cls, int k) {
  if (cls == 1) return "happiness";
  if (cls == 2) return "surprise";
  return k % 2 ? "repression" : "disgust";
}
static const char* class_aus(int cls, int k) {
  if (cls == 1) return "6+12";
  if (cls == 2) return "1+2+5+26";
  return k % 2 ? "4+15" : "4+9+15";
}

static float smoothstep(float t) {
  t = std::clamp(t, 0.f, 1.f);
  return t * t * (3 - 2 * t);
}

struct ClipPlan {
  int subject = 0, index = 0, cls = 0;
  SynthClip meta;
};

// Renders one clip: frame t samples the subject's neutral face at
//   y = R_t^{-1}(x) - p(t) E(y) - b(t) B(y)
// (backward warping, bilinear), where E is the class field, p the onset->apex->offset profile,
// B the blink field, R_t the small rigid head motion; then lighting gain and sensor noise.
static void render_clip(const SynthOptions& o, const Subject& subj, ClipPlan& plan, uint64_t seed) {
  Rng rng(seed);
  const int size = o.size;
  const float d = o.distractors;
  SynthClip& m = plan.meta;
  int frames = rng.integer(o.min_frames, o.max_frames);
  int apex_idx = std::clamp(int(std::lround(rng.uniform(0.35f, 0.6f) * (frames - 1))), 1, frames - 2);
  m.onset = rng.integer(20, 180);
  m.apex = m.onset + apex_idx;
  m.offset = m.onset + frames - 1;
  float scale_px = size / 128.f;
  m.amplitude_px = rng.uniform(0.7f, 1.7f) * o.amplitude * scale_px;
  // Per-clip variation of the action: each control point's strength varies by +-25 %.
  auto cps = control_points(plan.cls, subj.lm);
  for (auto& c : cps) {
    float f = rng.uniform(0.75f, 1.25f);
    c.dx *= f, c.dy *= f;
  }
  std::vector<float> ex, ey;
  control_field(cps, 0.11f * face_width(subj.lm), m.amplitude_px, size, ex, ey);
  // Blink: upper lids move down by up to ~2 px over 4 frames, at a random time.
  bool blink = rng.uniform() < 0.35f * d;
  int blink_start = rng.integer(0, std::max(0, frames - 4));
  std::vector<float> bx, by;
  {
    std::vector<ControlPoint> lids;
    for (int i : {37, 38, 43, 44}) lids.push_back({subj.lm[i], 0.f, 1.f});
    control_field(lids, 0.06f * face_width(subj.lm), 2.0f * scale_px * std::min(d, 1.5f), size, bx, by);
  }
  m.blink_at_apex = blink && apex_idx >= blink_start && apex_idx < blink_start + 4;
  // Rigid head motion: start pose, then a smooth drift to an end pose (rotation about the face centre).
  float c = size * 0.5f;
  float rot0 = rng.normal() * 0.5f * d, rot1 = rot0 + rng.normal() * 0.25f * d;  // degrees
  float tx0 = rng.normal() * 1.0f * d, ty0 = rng.normal() * 1.0f * d;
  float tx1 = tx0 + rng.normal() * 0.4f * d * scale_px, ty1 = ty0 + rng.normal() * 0.4f * d * scale_px;
  float sc1 = 1.f + rng.normal() * 0.003f * d;
  // Lighting: global gain drift and a left-right gradient change over the clip.
  float gain1 = rng.normal() * 0.03f * d, grad1 = rng.normal() * 0.04f * d;
  float noise = 1.5f * d;
  // Landmarks as seen in the onset frame (rigid start pose applied).
  {
    float a = rot0 * 3.14159265f / 180.f, ca = std::cos(a), sa = std::sin(a);
    for (int i = 0; i < 68; ++i) {
      float px = subj.lm[i][0] - c, py = subj.lm[i][1] - c;
      m.landmarks[i] = {c + ca * px - sa * py + tx0, c + sa * px + ca * py + ty0};
    }
  }
  fs::path dir = fs::path(o.out_dir) / ("sub" + m.subject) / m.filename;
  fs::create_directories(dir);
  std::vector<unsigned char> px(size_t(size) * size * 3);
  for (int t = 0; t < frames; ++t) {
    float tt = float(t) / (frames - 1);
    float p = t <= apex_idx ? smoothstep(float(t) / apex_idx) : 1.f - smoothstep(float(t - apex_idx) / (frames - 1 - apex_idx));
    float b = 0;
    if (blink && t >= blink_start && t < blink_start + 4) b = std::sin(3.14159265f * (t - blink_start + 0.5f) / 4.f);
    float drift = smoothstep(tt);
    float rot = (rot0 + (rot1 - rot0) * drift) * 3.14159265f / 180.f, sc = 1.f + (sc1 - 1.f) * drift;
    float txx = tx0 + (tx1 - tx0) * drift + rng.normal() * 0.03f * d, tyy = ty0 + (ty1 - ty0) * drift + rng.normal() * 0.03f * d;
    float ca = std::cos(rot), sa = std::sin(rot);
    float gain = 1.f + gain1 * tt;
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        // inverse rigid: q = R^-1 (x - c - t) / sc + c
        float qx0 = x + 0.5f - c - txx, qy0 = y + 0.5f - c - tyy;
        float qx = (ca * qx0 + sa * qy0) / sc + c, qy = (-sa * qx0 + ca * qy0) / sc + c;
        int ix = std::clamp(int(qx), 0, size - 1), iy = std::clamp(int(qy), 0, size - 1);
        size_t k = size_t(iy) * size + ix;
        float sx = qx - p * ex[k] - b * bx[k] - 0.5f, sy = qy - p * ey[k] - b * by[k] - 0.5f;
        float light = gain * (1.f + grad1 * tt * (float(x) / size - 0.5f));
        float n = noise > 0 ? noise * rng.normal() : 0.f;
        for (int ch = 0; ch < 3; ++ch) {
          float v = sample(subj.neutral, sx, sy, ch) * light + n;
          px[(size_t(y) * size + x) * 3 + ch] = (unsigned char)std::clamp(std::lround(v), 0L, 255L);
        }
      }
    std::string file = (dir / ("img" + std::to_string(m.onset + t) + "." + o.format)).string();
    int ok = o.format == "png" ? stbi_write_png(file.c_str(), size, size, 3, px.data(), size * 3)
                               : stbi_write_jpg(file.c_str(), size, size, 3, px.data(), 95);
    if (!ok) throw DataError("cannot write frame '" + file + "'");
  }
}

SynthReport synthesize_corpus(const SynthOptions& o0) {
  auto t0 = std::chrono::steady_clock::now();
  SynthOptions o = o0;
  if (o.out_dir.empty()) throw DataError("synth: no output folder given");
  if (o.size < 64) throw DataError("synth: frame size " + std::to_string(o.size) + " is below 64");
  if (o.subjects < 1 || o.subjects > 99) throw DataError("synth: --subjects must be 1..99");
  if (o.balance.size() != 3) throw DataError("synth: --balance needs 3 weights (negative, positive, surprise)");
  if (o.format != "jpg" && o.format != "png") throw DataError("synth: format must be jpg or png");
  if (o.min_frames < 5 || o.max_frames < o.min_frames) throw DataError("synth: need 5 <= min_frames <= max_frames");
  if (o.faces_dir.empty()) o.faces_dir = find_shared_path("data/faces");
  if (o.faces_dir.empty()) throw DataError("synth: cannot find shared/data/faces; give --faces DIR");
  auto sources = load_face_sources(o.faces_dir, o.size);
  float wmax = *std::max_element(o.balance.begin(), o.balance.end());
  if (wmax <= 0) throw DataError("synth: --balance weights must not all be 0");
  int per_class[3];
  for (int k = 0; k < 3; ++k) per_class[k] = std::max(0, int(std::lround(o.clips_per_class * o.balance[k] / wmax)));
  fs::create_directories(o.out_dir);

  std::vector<Subject> subjects;
  std::vector<ClipPlan> plans;
  for (int s = 0; s < o.subjects; ++s) {
    Rng srng(mix_seed(o.seed, 1000 + s, 0));
    subjects.push_back(make_subject(sources[s % sources.size()], o.size, srng));
    std::vector<int> classes;
    for (int k = 0; k < 3; ++k)
      for (int i = 0; i < per_class[k]; ++i) classes.push_back(k);
    for (size_t i = classes.size(); i > 1; --i) std::swap(classes[i - 1], classes[srng.integer(0, int(i) - 1)]);
    int count[3] = {0, 0, 0};
    for (size_t i = 0; i < classes.size(); ++i) {
      ClipPlan p;
      p.subject = s, p.index = int(i), p.cls = classes[i];
      char sub[16], fn[32];
      std::snprintf(sub, sizeof sub, "%02d", s + 1);
      std::snprintf(fn, sizeof fn, "EP%02d_%02d", int(i) + 1, 1 + (s + int(i)) % 7);
      p.meta.subject = sub, p.meta.filename = fn, p.meta.cls = p.cls;
      p.meta.emotion = class_emotion(p.cls, count[p.cls]);
      p.meta.action_units = class_aus(p.cls, count[p.cls]);
      ++count[p.cls];
      plans.push_back(p);
    }
  }
  int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  std::string error;
  auto worker = [&] {
    for (size_t i; (i = next++) < plans.size();) {
      try {
        render_clip(o, subjects[plans[i].subject], plans[i], mix_seed(o.seed, plans[i].subject + 1, plans[i].index + 1));
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g(err_mu);
        error = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (!error.empty()) throw DataError(error);

  SynthReport rep;
  Table coding = {{"Subject", "Filename", "Unnamed: 2", "OnsetFrame", "ApexFrame", "OffsetFrame", "Unnamed: 6",
                   "Action Units", "Estimated Emotion"}};
  Table lms;
  {
    std::vector<std::string> h = {"subject", "clip", "class", "amplitude_px", "blink_at_apex"};
    for (int i = 0; i < 68; ++i) h.push_back("x" + std::to_string(i));
    for (int i = 0; i < 68; ++i) h.push_back("y" + std::to_string(i));
    lms.push_back(h);
  }
  for (auto& p : plans) {
    auto& m = p.meta;
    coding.push_back({m.subject, m.filename, "", std::to_string(m.onset), std::to_string(m.apex), std::to_string(m.offset), "",
                      m.action_units, m.emotion});
    std::vector<std::string> r = {"sub" + m.subject, m.filename, std::to_string(m.cls)};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", m.amplitude_px);
    r.push_back(buf);
    r.push_back(m.blink_at_apex ? "1" : "0");
    for (int k = 0; k < 2; ++k)
      for (int i = 0; i < 68; ++i) {
        std::snprintf(buf, sizeof buf, "%.2f", m.landmarks[i][k]);
        r.push_back(buf);
      }
    lms.push_back(r);
    rep.clips.push_back(m);
  }
  rep.coding_csv = (fs::path(o.out_dir) / "CASME2-coding-synthetic.csv").string();
  rep.landmarks_csv = (fs::path(o.out_dir) / "synth_landmarks.csv").string();
  write_csv(rep.coding_csv, coding);
  write_csv(rep.landmarks_csv, lms);
  {
    std::ofstream f(fs::path(o.out_dir) / "synth_parameters.json");
    f << "{\n  \"generator\": \"ahmsa synth\",\n  \"seed\": " << o.seed << ",\n  \"subjects\": " << o.subjects
      << ",\n  \"clips_per_class\": " << o.clips_per_class << ",\n  \"balance\": [" << o.balance[0] << ", " << o.balance[1]
      << ", " << o.balance[2] << "],\n  \"amplitude\": " << o.amplitude << ",\n  \"distractors\": " << o.distractors
      << ",\n  \"size\": " << o.size << ",\n  \"frames\": [" << o.min_frames << ", " << o.max_frames << "],\n  \"format\": \""
      << o.format << "\",\n  \"classes\": [\"negative (disgust, repression)\", \"positive (happiness)\", \"surprise\"],\n"
      << "  \"faces\": [";
    for (int s = 0; s < o.subjects; ++s) f << (s ? ", " : "") << "\"" << sources[s % sources.size()].name << "\"";
    f << "]\n}\n";
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace ahmsa::data
