// Flow utilities: presets and their descriptions, dispatch, optical strain, the (u, v, os) image,
// Middlebury .flo I/O, the colour wheel, error measures, warping, and the shared plane helpers.
#include "flow/flow.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "flow/internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ahmsa::flow {

// ---- presets ------------------------------------------------------------------------------------

TVL1Params TVL1Params::ipol() {
  TVL1Params p;  // the member defaults are the IPOL article's values
  return p;
}

TVL1Params TVL1Params::opencv() {
  TVL1Params p;
  p.zoom = 0.8f;
  p.inner_iterations = 30;
  p.outer_iterations = 10;
  p.median_filter = 5;
  return p;
}

std::string TVL1Params::describe() const {
  char b[320];
  std::snprintf(b, sizeof b,
                "tau=%g lambda=%g theta=%g scales=%d zoom=%g warps=%d epsilon=%g inner=%d outer=%d median=%d "
                "normalize=%d interpolation=%s",
                tau, lambda, theta, scales, zoom, warps, epsilon, inner_iterations, outer_iterations, median_filter,
                int(normalize), interpolation_name(interpolation));
  return b;
}

const char* TVL1Params::interpolation_name(Interpolation i) {
  return i == Interpolation::BSpline ? "bspline" : "bicubic";
}

TVL1Params::Interpolation TVL1Params::interpolation_from_name(const std::string& name) {
  for (auto i : {Interpolation::BSpline, Interpolation::Bicubic})
    if (name == interpolation_name(i)) return i;
  throw FlowError("TV-L1 interpolation must be bspline or bicubic, not '" + name + "'");
}

FarnebackParams FarnebackParams::opencv_defaults() { return FarnebackParams{}; }

FarnebackParams FarnebackParams::opencv_sample() {
  FarnebackParams p;
  p.pyr_scale = 0.5f;
  p.levels = 3;
  p.winsize = 15;
  p.iterations = 3;
  p.poly_n = 5;
  p.poly_sigma = 1.2f;
  return p;
}

std::string FarnebackParams::describe() const {
  char b[256];
  std::snprintf(b, sizeof b, "pyr_scale=%g levels=%d winsize=%d iterations=%d poly_n=%d poly_sigma=%g window=%s",
                pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, gaussian_window ? "gaussian" : "box");
  return b;
}

std::string FlowOptions::describe() const {
  if (method == Method::TVL1) return "method=tvl1 " + tvl1.describe();
  return "method=farneback " + farneback.describe();
}

FlowField compute_flow(const img::Image& onset, const img::Image& apex, const FlowOptions& o) {
  return o.method == Method::TVL1 ? tvl1(onset, apex, o.tvl1) : farneback(onset, apex, o.farneback);
}

// ---- optical strain -----------------------------------------------------------------------------

// d/dx of a plane at (x, y): central difference inside, one-sided at the borders (Central scheme);
// forward difference, backward on the last column (Forward scheme). Same along y.
std::vector<float> optical_strain(const FlowField& f, StrainScheme s) {
  const int W = f.width, H = f.height;
  if (W <= 0 || H <= 0 || f.u.size() != size_t(W) * H || f.v.size() != size_t(W) * H)
    throw FlowError("optical_strain: malformed flow field " + std::to_string(W) + "x" + std::to_string(H));
  auto dx = [&](const std::vector<float>& a, int x, int y) -> float {
    const float* r = a.data() + size_t(y) * W;
    if (W == 1) return 0.f;
    if (s == StrainScheme::Central) {
      if (x == 0) return r[1] - r[0];
      if (x == W - 1) return r[W - 1] - r[W - 2];
      return 0.5f * (r[x + 1] - r[x - 1]);
    }
    return x < W - 1 ? r[x + 1] - r[x] : r[x] - r[x - 1];
  };
  auto dy = [&](const std::vector<float>& a, int x, int y) -> float {
    if (H == 1) return 0.f;
    auto at = [&](int yy) { return a[size_t(yy) * W + x]; };
    if (s == StrainScheme::Central) {
      if (y == 0) return at(1) - at(0);
      if (y == H - 1) return at(H - 1) - at(H - 2);
      return 0.5f * (at(y + 1) - at(y - 1));
    }
    return y < H - 1 ? at(y + 1) - at(y) : at(y) - at(y - 1);
  };
  std::vector<float> os(size_t(W) * H);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      float ux = dx(f.u, x, y), vy = dy(f.v, x, y);
      float shear = dy(f.u, x, y) + dx(f.v, x, y);
      os[size_t(y) * W + x] = std::sqrt(ux * ux + vy * vy + 0.5f * shear * shear);
    }
  return os;
}

img::Image uvos_image(const FlowField& f, const std::vector<float>& os, int size) {
  if (f.empty() || os.size() != f.u.size())
    throw FlowError("uvos_image: flow " + std::to_string(f.width) + "x" + std::to_string(f.height) +
                    " and strain of " + std::to_string(os.size()) + " values do not match");
  if (size <= 0) throw FlowError("uvos_image: size must be positive, got " + std::to_string(size));
  img::Image uvos(f.width, f.height, 3);
  for (size_t i = 0; i < f.u.size(); ++i) {
    uvos.data[3 * i + 0] = f.u[i];
    uvos.data[3 * i + 1] = f.v[i];
    uvos.data[3 * i + 2] = os[i];
  }
  if (size != f.width || size != f.height) uvos = img::resize_area(uvos, size, size);
  for (int c = 0; c < 3; ++c) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (size_t i = c; i < uvos.data.size(); i += 3) lo = std::min(lo, uvos.data[i]), hi = std::max(hi, uvos.data[i]);
    const float range = hi - lo;
    for (size_t i = c; i < uvos.data.size(); i += 3)
      uvos.data[i] = range > 0 ? 255.f * (uvos.data[i] - lo) / range : 0.f;
  }
  return uvos;
}

// ---- Middlebury .flo ----------------------------------------------------------------------------

static constexpr float kFloMagic = 202021.25f;

FlowField read_flo(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw FlowError("flow file '" + path + "' is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FlowError("cannot open flow file '" + path + "'");
  float magic = 0;
  int32_t w = 0, h = 0;
  in.read(reinterpret_cast<char*>(&magic), 4);
  in.read(reinterpret_cast<char*>(&w), 4);
  in.read(reinterpret_cast<char*>(&h), 4);
  if (!in) throw FlowError("flow file '" + path + "' is truncated (no header)");
  if (magic != kFloMagic) throw FlowError("'" + path + "' is not a .flo file (bad magic number)");
  if (w <= 0 || h <= 0 || int64_t(w) * h > kMaxFloPixels)
    throw FlowError("flow file '" + path + "' has an invalid size " + std::to_string(w) + "x" + std::to_string(h) +
                    " (at most " + std::to_string(kMaxFloPixels) + " vectors)");
  // The header's size must match the file's before anything is allocated for it.
  in.seekg(0, std::ios::end);
  const int64_t have = int64_t(in.tellg()) - 12, want = int64_t(w) * h * 8;
  in.seekg(12);
  if (!in || have < want)
    throw FlowError("flow file '" + path + "' is truncated: expected " + std::to_string(w) + "x" + std::to_string(h) +
                    " vectors (" + std::to_string(want) + " bytes), the file has " + std::to_string(std::max<int64_t>(have, 0)));
  std::vector<float> uv(size_t(w) * h * 2);
  in.read(reinterpret_cast<char*>(uv.data()), std::streamsize(uv.size() * 4));
  if (!in)
    throw FlowError("flow file '" + path + "' is truncated: expected " + std::to_string(w) + "x" + std::to_string(h) +
                    " vectors");
  FlowField f(w, h);
  for (size_t i = 0; i < f.u.size(); ++i) f.u[i] = uv[2 * i], f.v[i] = uv[2 * i + 1];
  return f;
}

void write_flo(const std::string& path, const FlowField& f) {
  if (f.empty() || f.u.size() != size_t(f.width) * f.height || f.v.size() != f.u.size())
    throw FlowError("write_flo: malformed flow field for '" + path + "'");
  std::ofstream out(path, std::ios::binary);
  if (!out) throw FlowError("cannot create flow file '" + path + "'");
  int32_t w = f.width, h = f.height;
  out.write(reinterpret_cast<const char*>(&kFloMagic), 4);
  out.write(reinterpret_cast<const char*>(&w), 4);
  out.write(reinterpret_cast<const char*>(&h), 4);
  std::vector<float> uv(f.u.size() * 2);
  for (size_t i = 0; i < f.u.size(); ++i) uv[2 * i] = f.u[i], uv[2 * i + 1] = f.v[i];
  out.write(reinterpret_cast<const char*>(uv.data()), std::streamsize(uv.size() * 4));
  if (!out) throw FlowError("cannot write flow file '" + path + "'");
}

// ---- colour wheel -------------------------------------------------------------------------------

// The Middlebury wheel has 55 hues in six ramps: red-yellow 15, yellow-green 6, green-cyan 4,
// cyan-blue 11, blue-magenta 13, magenta-red 6 (Baker et al., "A Database and Evaluation Methodology
// for Optical Flow", IJCV 2011).
static std::vector<std::array<float, 3>> color_wheel() {
  const int ramps[6] = {15, 6, 4, 11, 13, 6};
  // Each ramp moves one channel from 0 to 255 or from 255 to 0 while the others are fixed.
  std::vector<std::array<float, 3>> wheel;
  for (int i = 0; i < ramps[0]; ++i) wheel.push_back({255.f, 255.f * i / ramps[0], 0.f});
  for (int i = 0; i < ramps[1]; ++i) wheel.push_back({255.f - 255.f * i / ramps[1], 255.f, 0.f});
  for (int i = 0; i < ramps[2]; ++i) wheel.push_back({0.f, 255.f, 255.f * i / ramps[2]});
  for (int i = 0; i < ramps[3]; ++i) wheel.push_back({0.f, 255.f - 255.f * i / ramps[3], 255.f});
  for (int i = 0; i < ramps[4]; ++i) wheel.push_back({255.f * i / ramps[4], 0.f, 255.f});
  for (int i = 0; i < ramps[5]; ++i) wheel.push_back({255.f, 0.f, 255.f - 255.f * i / ramps[5]});
  return wheel;
}

static bool flow_known(float u, float v) {
  return std::isfinite(u) && std::isfinite(v) && std::fabs(u) < 1e9f && std::fabs(v) < 1e9f;
}

img::Image flow_to_color(const FlowField& f, float max_magnitude) {
  if (f.empty()) throw FlowError("flow_to_color: empty flow field");
  static const auto wheel = color_wheel();
  const int ncols = int(wheel.size());
  float maxrad = max_magnitude;
  if (maxrad <= 0) {
    maxrad = 0;
    for (size_t i = 0; i < f.u.size(); ++i)
      if (flow_known(f.u[i], f.v[i])) maxrad = std::max(maxrad, std::hypot(f.u[i], f.v[i]));
  }
  if (maxrad <= 0) maxrad = 1;
  img::Image out(f.width, f.height, 3);
  for (size_t i = 0; i < f.u.size(); ++i) {
    if (!flow_known(f.u[i], f.v[i])) continue;  // black
    const float u = f.u[i] / maxrad, v = f.v[i] / maxrad;
    const float rad = std::min(1.f, std::hypot(u, v));
    const float a = std::atan2(-v, -u) / float(M_PI);  // -1..1
    const float fk = (a + 1) / 2 * (ncols - 1);
    const int k0 = int(fk), k1 = (k0 + 1) % ncols;
    const float t = fk - k0;
    for (int c = 0; c < 3; ++c) {
      float col = ((1 - t) * wheel[k0][c] + t * wheel[k1][c]) / 255.f;
      col = 1 - rad * (1 - col);  // saturation grows with the magnitude
      out.data[3 * i + c] = 255.f * col;
    }
  }
  return out;
}

// ---- errors -------------------------------------------------------------------------------------

FlowErrors flow_errors(const FlowField& est, const FlowField& gt, int border, float min_truth) {
  if (est.width != gt.width || est.height != gt.height)
    throw FlowError("flow_errors: estimate " + std::to_string(est.width) + "x" + std::to_string(est.height) +
                    " vs ground truth " + std::to_string(gt.width) + "x" + std::to_string(gt.height));
  FlowErrors e;
  double sum_epe = 0, sum_ang = 0;
  for (int y = border; y < gt.height - border; ++y)
    for (int x = border; x < gt.width - border; ++x) {
      const size_t i = size_t(y) * gt.width + x;
      if (!flow_known(gt.u[i], gt.v[i])) continue;
      if (min_truth > 0 && std::hypot(gt.u[i], gt.v[i]) < min_truth) continue;
      const double du = double(est.u[i]) - gt.u[i], dv = double(est.v[i]) - gt.v[i];
      const double epe = std::sqrt(du * du + dv * dv);
      // angle between (u, v, 1) and (u_gt, v_gt, 1)
      const double num = 1.0 + double(est.u[i]) * gt.u[i] + double(est.v[i]) * gt.v[i];
      const double den = std::sqrt(1.0 + double(est.u[i]) * est.u[i] + double(est.v[i]) * est.v[i]) *
                         std::sqrt(1.0 + double(gt.u[i]) * gt.u[i] + double(gt.v[i]) * gt.v[i]);
      const double ang = std::acos(std::clamp(num / den, -1.0, 1.0)) * 180.0 / M_PI;
      sum_epe += epe, sum_ang += ang;
      e.max_epe = std::max(e.max_epe, epe);
      ++e.pixels;
    }
  if (e.pixels) e.aee = sum_epe / e.pixels, e.aae_deg = sum_ang / e.pixels;
  return e;
}

double average_endpoint_error(const FlowField& est, const FlowField& gt, int border) {
  return flow_errors(est, gt, border).aee;
}
double average_angular_error(const FlowField& est, const FlowField& gt, int border) {
  return flow_errors(est, gt, border).aae_deg;
}

// ---- warping ------------------------------------------------------------------------------------

static void check_warp(const img::Image& im, const FlowField& w, const char* fn) {
  if (im.empty() || im.width != w.width || im.height != w.height)
    throw FlowError(std::string(fn) + ": image " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                    " and flow " + std::to_string(w.width) + "x" + std::to_string(w.height) + " differ");
}

img::Image warp_bilinear(const img::Image& im, const FlowField& w) {
  check_warp(im, w, "warp_bilinear");
  const int W = im.width, H = im.height, C = im.channels;
  img::Image out(W, H, C);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = size_t(y) * W + x;
      const float fx = std::clamp(x + w.u[i], 0.f, float(W - 1)), fy = std::clamp(y + w.v[i], 0.f, float(H - 1));
      const int x0 = std::min(int(fx), W - 1), y0 = std::min(int(fy), H - 1);
      const int x1 = std::min(x0 + 1, W - 1), y1 = std::min(y0 + 1, H - 1);
      const float ax = fx - x0, ay = fy - y0;
      for (int c = 0; c < C; ++c)
        out.at(x, y, c) = (1 - ay) * ((1 - ax) * im.at(x0, y0, c) + ax * im.at(x1, y0, c)) +
                          ay * ((1 - ax) * im.at(x0, y1, c) + ax * im.at(x1, y1, c));
    }
  return out;
}

img::Image warp_bicubic(const img::Image& im, const FlowField& w) {
  check_warp(im, w, "warp_bicubic");
  const int W = im.width, H = im.height, C = im.channels;
  img::Image out(W, H, C);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = size_t(y) * W + x;
      const float fx = std::clamp(x + w.u[i], 0.f, float(W - 1)), fy = std::clamp(y + w.v[i], 0.f, float(H - 1));
      const int ix = int(fx), iy = int(fy);
      float wx[4], wy[4];
      batch::keys_weights(fx - ix, wx);
      batch::keys_weights(fy - iy, wy);
      for (int c = 0; c < C; ++c) {
        float acc = 0;
        for (int j = 0; j < 4; ++j) {
          const int yy = std::clamp(iy - 1 + j, 0, H - 1);
          float r = 0;
          for (int k = 0; k < 4; ++k) r += wx[k] * im.at(std::clamp(ix - 1 + k, 0, W - 1), yy, c);
          acc += wy[j] * r;
        }
        out.at(x, y, c) = acc;
      }
    }
  return out;
}

FlowField resize_flow(const FlowField& f, int w, int h, bool area) {
  if (f.empty() || w <= 0 || h <= 0) throw FlowError("resize_flow: empty flow or target size");
  img::Image uv(f.width, f.height, 2);
  for (size_t i = 0; i < f.u.size(); ++i) uv.data[2 * i] = f.u[i], uv.data[2 * i + 1] = f.v[i];
  img::Image r = area ? img::resize_area(uv, w, h) : img::resize_bilinear(uv, w, h);
  FlowField out(w, h);
  const float sx = float(w) / f.width, sy = float(h) / f.height;
  for (size_t i = 0; i < out.u.size(); ++i) out.u[i] = r.data[2 * i] * sx, out.v[i] = r.data[2 * i + 1] * sy;
  return out;
}

// ---- median filter ------------------------------------------------------------------------------
// A k x k median as a sorting network applied to whole rows at once (every comparator is a min and a
// max over contiguous arrays, which the compiler vectorises). The network is Batcher's odd-even merge
// sort for the next power of two, with the padding wires fixed at -inf / +inf resolved at build time
// and the comparators that cannot reach the median wire removed.

namespace {
struct MedianNetwork {
  int n_in = 0;                          // k*k real inputs
  std::vector<std::pair<int, int>> ops;  // (lo wire, hi wire) on slots 0..n_in-1
  int out = 0;                           // slot that holds the median
};

MedianNetwork build_median_network(int n_in) {
  int n = 1;
  while (n < n_in) n <<= 1;
  std::vector<std::pair<int, int>> full;  // Batcher odd-even merge sort, iterative form
  for (int p = 1; p < n; p <<= 1)
    for (int k = p; k >= 1; k >>= 1)
      for (int j = k % p; j + k < n; j += 2 * k)
        for (int i = 0; i < std::min(k, n - j - k); ++i)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) full.push_back({i + j, i + j + k});
  // Padding: the first `lo_pad` wires hold -inf, the last `hi_pad` +inf; real inputs between.
  const int pad = n - n_in, lo_pad = pad / 2, hi_pad = pad - lo_pad;
  (void)hi_pad;
  // kind: 0 = -inf, 1 = real slot, 2 = +inf. slot[w] = which value slot wire w currently holds.
  std::vector<int> kind(n), slot(n, -1);
  for (int w = 0; w < n; ++w) {
    if (w < lo_pad) kind[w] = 0;
    else if (w < lo_pad + n_in) kind[w] = 1, slot[w] = w - lo_pad;
    else kind[w] = 2;
  }
  std::vector<std::pair<int, int>> ops;  // on slots
  for (auto [a, b] : full) {
    // After the comparator wire a holds min, wire b holds max.
    if (kind[a] == 1 && kind[b] == 1) {
      ops.push_back({slot[a], slot[b]});
      continue;
    }
    if (kind[a] == 0 || kind[b] == 2) continue;  // already ordered
    std::swap(kind[a], kind[b]);                 // a was larger: the values trade wires
    std::swap(slot[a], slot[b]);
  }
  const int median_wire = lo_pad + n_in / 2;
  MedianNetwork net;
  net.n_in = n_in;
  net.out = slot[median_wire];
  // Backward pruning: keep a comparator only if one of its slots is needed afterwards.
  std::vector<char> needed(n_in, 0);
  needed[net.out] = 1;
  std::vector<std::pair<int, int>> kept;
  for (int i = int(ops.size()) - 1; i >= 0; --i) {
    auto [a, b] = ops[i];
    if (needed[a] || needed[b]) {
      kept.push_back(ops[i]);
      needed[a] = needed[b] = 1;
    }
  }
  net.ops.assign(kept.rbegin(), kept.rend());
  return net;
}
}  // namespace

namespace detail {
const MedianNetwork& median_network(int k) {
  static thread_local int cached_k = 0;
  static thread_local MedianNetwork net;
  if (cached_k != k) net = build_median_network(k * k), cached_k = k;
  return net;
}

// The compare-exchange loops run over whole rows; the AVX2 build of the same body does 8 per step.
AHMSA_ALWAYS_INLINE void median_rows_body(const MedianNetwork& net, const float* src, float* dst, int W, int H, int k,
                                          int y_begin, int y_end, std::vector<float>& buf) {
  const int r = k / 2, n = k * k;
  buf.resize(size_t(n) * W);
  for (int y = y_begin; y < y_end; ++y) {
    // slot (dy, dx) holds the row of neighbours at that offset, edges replicated
    for (int dy = -r; dy <= r; ++dy) {
      const float* srow = src + size_t(std::clamp(y + dy, 0, H - 1)) * W;
      for (int dx = -r; dx <= r; ++dx) {
        float* b = buf.data() + size_t((dy + r) * k + dx + r) * W;
        const int xa = std::max(0, -dx), xb = std::min(W, W - dx);
        for (int x = 0; x < xa; ++x) b[x] = srow[std::clamp(x + dx, 0, W - 1)];
        for (int x = xa; x < xb; ++x) b[x] = srow[x + dx];
        for (int x = std::max(xa, xb); x < W; ++x) b[x] = srow[std::clamp(x + dx, 0, W - 1)];
      }
    }
    for (auto [a, b] : net.ops) {
      float* __restrict pa = buf.data() + size_t(a) * W;
      float* __restrict pb = buf.data() + size_t(b) * W;
      for (int x = 0; x < W; ++x) {
        const float lo = std::min(pa[x], pb[x]), hi = std::max(pa[x], pb[x]);
        pa[x] = lo, pb[x] = hi;
      }
    }
    std::copy_n(buf.data() + size_t(net.out) * W, W, dst + size_t(y) * W);
  }
}
static void median_rows_sse2(const MedianNetwork& net, const float* src, float* dst, int W, int H, int k, int y0,
                             int y1, std::vector<float>& buf) {
  median_rows_body(net, src, dst, W, H, k, y0, y1, buf);
}
AHMSA_TARGET_AVX2 static void median_rows_avx2(const MedianNetwork& net, const float* src, float* dst, int W, int H,
                                               int k, int y0, int y1, std::vector<float>& buf) {
  median_rows_body(net, src, dst, W, H, k, y0, y1, buf);
}

void median_rows(const float* src, float* dst, int W, int H, int k, int y_begin, int y_end, std::vector<float>& buf) {
  const MedianNetwork& net = median_network(k);
  cpu_has_avx2_fma() ? median_rows_avx2(net, src, dst, W, H, k, y_begin, y_end, buf)
                     : median_rows_sse2(net, src, dst, W, H, k, y_begin, y_end, buf);
}
}  // namespace detail

void median_filter(std::vector<float>& plane, int W, int H, int k) {
  if (k <= 1) return;
  if (k % 2 == 0) throw FlowError("median_filter: size must be odd, got " + std::to_string(k));
  if (plane.size() != size_t(W) * H) throw FlowError("median_filter: plane size does not match");
  const std::vector<float> src = plane;
  std::vector<float> buf;
  detail::median_rows(src.data(), plane.data(), W, H, k, 0, H, buf);
}

// ---- shared plane helpers -----------------------------------------------------------------------

namespace detail {

bool cpu_has_avx2_fma() {
  static const bool yes = [] {
    if (const char* off = std::getenv("AHMSA_FLOW_NO_AVX2"); off && *off && std::strcmp(off, "0") != 0) return false;
#ifdef AHMSA_FLOW_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
  }();
  return yes;
}

int thread_count(int threads) {
#ifdef _OPENMP
  return threads > 0 ? threads : omp_get_max_threads();
#else
  return 1;
#endif
}

void check_pair(const img::Image& I0, const img::Image& I1, const char* method) {
  if (I0.empty() || I1.empty())
    throw FlowError(std::string(method) + ": empty frame (" + std::to_string(I0.width) + "x" +
                    std::to_string(I0.height) + " and " + std::to_string(I1.width) + "x" + std::to_string(I1.height) +
                    ")");
  if (I0.width != I1.width || I0.height != I1.height)
    throw FlowError(std::string(method) + ": frame sizes differ: " + std::to_string(I0.width) + "x" +
                    std::to_string(I0.height) + " vs " + std::to_string(I1.width) + "x" + std::to_string(I1.height));
  if (I0.data.size() != size_t(I0.width) * I0.height * I0.channels ||
      I1.data.size() != size_t(I1.width) * I1.height * I1.channels)
    throw FlowError(std::string(method) + ": frame data does not match its width x height x channels");
}

Plane grey_plane(const img::Image& im, const char* what) {
  if (im.empty()) throw FlowError(std::string(what) + ": empty image");
  img::Image g = img::to_grey(im);
  Plane p(g.width, g.height);
  p.d = std::move(g.data);
  return p;
}

std::vector<float> gaussian_kernel(float sigma) {
  const int r = std::max(1, int(std::ceil(3 * sigma)));
  std::vector<float> k(2 * r + 1);
  float sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-0.5f * i * i / (sigma * sigma));
  for (auto& v : k) v /= sum;
  return k;
}

Plane gaussian_blur(const Plane& src, float sigma, int threads) {
  if (sigma <= 0) return src;
  const std::vector<float> k = gaussian_kernel(sigma);
  const int r = int(k.size()) / 2;
  const int W = src.w, H = src.h;
  Plane tmp(W, H), out(W, H);
  const int nt = W * H >= kMinParallelPixels ? thread_count(threads) : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int y = 0; y < H; ++y) {  // vertical pass
    float* o = tmp.row(y);
    std::fill_n(o, W, 0.f);
    for (int i = -r; i <= r; ++i) {
      const float* s = src.row(std::clamp(y + i, 0, H - 1));
      const float kw = k[i + r];
      for (int x = 0; x < W; ++x) o[x] += kw * s[x];
    }
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int y = 0; y < H; ++y) {  // horizontal pass on a replicate-padded row
    std::vector<float> pad(W + 2 * r);
    const float* s = tmp.row(y);
    for (int x = 0; x < W + 2 * r; ++x) pad[x] = s[std::clamp(x - r, 0, W - 1)];
    float* o = out.row(y);
    for (int x = 0; x < W; ++x) {
      float acc = 0;
      for (int i = 0; i <= 2 * r; ++i) acc += k[i] * pad[x + i];
      o[x] = acc;
    }
  }
  return out;
}

Plane resize_plane(const Plane& src, int w, int h) {
  if (w == src.w && h == src.h) return src;
  Plane out(w, h);
  const float sx = float(src.w) / w, sy = float(src.h) / h;
  std::vector<int> x0(w), x1(w);
  std::vector<float> ax(w);
  for (int x = 0; x < w; ++x) {
    const float fx = std::clamp((x + 0.5f) * sx - 0.5f, 0.f, float(src.w - 1));
    x0[x] = std::min(int(fx), src.w - 1), x1[x] = std::min(x0[x] + 1, src.w - 1), ax[x] = fx - x0[x];
  }
  for (int y = 0; y < h; ++y) {
    const float fy = std::clamp((y + 0.5f) * sy - 0.5f, 0.f, float(src.h - 1));
    const int y0 = std::min(int(fy), src.h - 1), y1 = std::min(y0 + 1, src.h - 1);
    const float ay = fy - y0;
    const float *r0 = src.row(y0), *r1 = src.row(y1);
    float* o = out.row(y);
    for (int x = 0; x < w; ++x) {
      const float a = r0[x0[x]] + ax[x] * (r0[x1[x]] - r0[x0[x]]);
      const float b = r1[x0[x]] + ax[x] * (r1[x1[x]] - r1[x0[x]]);
      o[x] = a + ay * (b - a);
    }
  }
  return out;
}


}  // namespace detail
}  // namespace ahmsa::flow
