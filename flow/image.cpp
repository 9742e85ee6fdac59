#include "flow/image.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include <cstdlib>
#include <unordered_set>

// stb_image 2.27 asserts on some corrupt JPEGs (stbi__jpeg_huff_decode; an out-of-bounds read with
// NDEBUG; fuzz/regression/image/jpeg_huff_decode_assert). Its STBI_ASSERT throws here instead, and its
// allocations are tracked per load() so that the buffers of an abandoned decode are freed.
namespace ahmsa::img::detail {
struct StbAssert {
  const char* what;
};
thread_local std::unordered_set<void*>* t_stb_live = nullptr;  // set while load() runs
static void* stb_track(void* p) {
  if (p && t_stb_live) t_stb_live->insert(p);
  return p;
}
static void* stb_malloc(size_t n) { return stb_track(std::malloc(n)); }
static void* stb_realloc(void* p, size_t n) {
  void* q = std::realloc(p, n);
  if (q && t_stb_live) t_stb_live->erase(p);
  return stb_track(q);
}
static void stb_free(void* p) {
  if (t_stb_live) t_stb_live->erase(p);
  std::free(p);
}
[[noreturn]] static void stb_assert_failed(const char* what) { throw StbAssert{what}; }
}  // namespace ahmsa::img::detail
#define STBI_MALLOC(sz) ahmsa::img::detail::stb_malloc(sz)
#define STBI_REALLOC(p, newsz) ahmsa::img::detail::stb_realloc(p, newsz)
#define STBI_FREE(p) ahmsa::img::detail::stb_free(p)
#define STBI_ASSERT(x) ((x) ? (void)0 : ahmsa::img::detail::stb_assert_failed(#x))

// Only the formats frames come in: fewer decoders, less to trust with a hostile file.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>  // declarations only: the implementation is flow/stb_write.cpp
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace ahmsa::img {

namespace {

// stb_image 2.27 (Debian 12's libstb-dev) writes past its Huffman tables when a JPEG's DHT segment
// declares more than 256 codes for one table (nothings/stb #1289, fixed upstream after 2.27; found
// here by fuzz/fuzz_image.cpp). This walks the segments as stb does and names such a defect, or
// returns null. Bytes outside segments (entropy-coded data) are skipped, FF 00 and restart markers too.
const char* jpeg_defect(const unsigned char* b, size_t n) {
  // stb takes FF (FF...) D8 as the start: fill bytes may precede SOI (found by fuzzing too).
  size_t p = 0;
  if (n < 2 || b[0] != 0xFF) return nullptr;
  while (p < n && b[p] == 0xFF) ++p;
  if (p >= n || b[p] != 0xD8) return nullptr;  // not a JPEG
  ++p;
  auto at = [&](size_t i) -> unsigned { return i < n ? b[i] : 0u; };  // stb reads 0 past the end
  while (p + 1 < n) {
    if (b[p] != 0xFF || b[p + 1] == 0xFF) {  // data, junk or a fill byte
      ++p;
      continue;
    }
    unsigned m = b[p + 1];
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {  // stuffed byte, TEM, RSTn, SOI
      p += 2;
      continue;
    }
    if (m == 0xD9) return nullptr;  // EOI
    size_t len = (size_t(at(p + 2)) << 8) | at(p + 3);
    if (m == 0xC4) {  // DHT: tables of 1 class/id byte, 16 counts, then the values, while bytes remain
      size_t q = p + 4, end = p + 2 + len;
      while (q < end) {
        unsigned total = 0;
        for (size_t i = 1; i <= 16; ++i) total += at(q + i);
        if (total > 256) return "a JPEG Huffman table with more than 256 codes";
        q += 17 + total;
      }
    }
    p += 2 + len;
  }
  return nullptr;
}

// stb_image 2.27 also grows its PNG data buffer to a chunk's claimed length (up to 1 GB) before
// reading it: a 75-byte file asked for 1.3 GB (found by fuzz/fuzz_image.cpp). Every chunk up to IEND
// must fit in the file.
const char* png_defect(const unsigned char* b, size_t n) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n < 8 || std::memcmp(b, sig, 8) != 0) return nullptr;  // not a PNG
  for (size_t p = 8; p + 8 <= n;) {
    const uint64_t len = uint64_t(b[p]) << 24 | uint64_t(b[p + 1]) << 16 | uint64_t(b[p + 2]) << 8 | b[p + 3];
    if (len + 12 > n - p) return "a PNG chunk longer than the rest of the file";
    if (std::memcmp(b + p + 4, "IEND", 4) == 0) break;
    p += 12 + size_t(len);
  }
  return nullptr;
}

}  // namespace

static Image decode(const std::vector<unsigned char>& bytes, const std::string& path, int want_channels);

Image load(const std::string& path, int want_channels) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw ImageError("cannot read image '" + path + "': it is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ImageError("cannot read image '" + path + "': " + std::strerror(errno));
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  f.seekg(0);
  if (!f || size < 0) throw ImageError("cannot read image '" + path + "': not a regular file");
  if (uint64_t(size) > kMaxImageFileBytes)
    throw ImageError("image '" + path + "' is " + std::to_string(size) + " bytes: more than the limit of " +
                     std::to_string(kMaxImageFileBytes));
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  if (!f.read(reinterpret_cast<char*>(bytes.data()), size)) throw ImageError("cannot read image '" + path + "'");
  // Checked before stb parses anything (stbi_info parses JPEG tables too).
  if (const char* defect = jpeg_defect(bytes.data(), bytes.size()))
    throw ImageError("cannot read image '" + path + "': corrupt JPEG (" + defect + ")");
  if (const char* defect = png_defect(bytes.data(), bytes.size()))
    throw ImageError("cannot read image '" + path + "': corrupt PNG (" + defect + ")");
  // stb's allocations during this load, freed if it is abandoned (an STBI_ASSERT thrown).
  std::unordered_set<void*> live;
  struct Tracking {
    std::unordered_set<void*>& live;
    explicit Tracking(std::unordered_set<void*>& l) : live(l) { detail::t_stb_live = &live; }
    ~Tracking() {
      detail::t_stb_live = nullptr;
      for (void* p : live) std::free(p);
    }
  } tracking(live);
  try {
    return decode(bytes, path, want_channels);
  } catch (const detail::StbAssert& a) {
    throw ImageError("cannot read image '" + path + "': corrupt (stb_image: " + a.what + ")");
  }
}

static Image decode(const std::vector<unsigned char>& bytes, const std::string& path, int want_channels) {
  int w = 0, h = 0, c = 0;
  const int n = int(bytes.size());
  // The size from the header first: a small file can claim a 20000 x 20000 image (11 GB decoded).
  if (stbi_info_from_memory(bytes.data(), n, &w, &h, &c)) {
    if (w <= 0 || h <= 0 || int64_t(w) * h > kMaxPixels)
      throw ImageError("image '" + path + "' is " + std::to_string(w) + "x" + std::to_string(h) +
                       ": more than the limit of " + std::to_string(kMaxPixels) + " pixels");
    // stb pads a short file with zeros: a 121-byte BMP decoded to 33 million pixels (fuzzing).
    if (int64_t(w) * h > int64_t(bytes.size()) * kMaxPixelsPerByte)
      throw ImageError("image '" + path + "' claims " + std::to_string(w) + "x" + std::to_string(h) + " pixels in " +
                       std::to_string(bytes.size()) + " bytes: truncated or corrupt");
  }
  unsigned char* px = stbi_load_from_memory(bytes.data(), n, &w, &h, &c, want_channels);
  if (!px) {
    const char* why = stbi_failure_reason();
    throw ImageError("cannot read image '" + path + "': " + (why ? why : "unknown error"));
  }
  if (w <= 0 || h <= 0) {
    stbi_image_free(px);
    throw ImageError("image '" + path + "' is empty");
  }
  int ch = want_channels ? want_channels : c;
  Image im(w, h, ch);
  for (size_t i = 0; i < im.data.size(); ++i) im.data[i] = px[i];
  stbi_image_free(px);
  return im;
}

void save_png(const std::string& path, const Image& im) {
  if (im.empty()) throw ImageError("refusing to write empty image to '" + path + "'");
  std::vector<unsigned char> px(im.data.size());
  for (size_t i = 0; i < px.size(); ++i)
    px[i] = (unsigned char)std::clamp(std::lround(im.data[i]), 0L, 255L);
  if (!stbi_write_png(path.c_str(), im.width, im.height, im.channels, px.data(), im.width * im.channels))
    throw ImageError("cannot write PNG '" + path + "'");
}

Image to_grey(const Image& im) {
  if (im.channels == 1) return im;
  Image g(im.width, im.height, 1);
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      if (im.channels >= 3)
        g.at(x, y) = 0.299f * im.at(x, y, 0) + 0.587f * im.at(x, y, 1) + 0.114f * im.at(x, y, 2);
      else
        g.at(x, y) = im.at(x, y, 0);  // grey + alpha
    }
  return g;
}

Image crop(const Image& im, int x0, int y0, int w, int h) {
  if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || x0 + w > im.width || y0 + h > im.height)
    throw ImageError("crop box (" + std::to_string(x0) + "," + std::to_string(y0) + "," + std::to_string(w) + "," +
                     std::to_string(h) + ") outside image " + std::to_string(im.width) + "x" +
                     std::to_string(im.height));
  Image out(w, h, im.channels);
  for (int y = 0; y < h; ++y)
    std::copy_n(&im.data[(size_t(y0 + y) * im.width + x0) * im.channels], size_t(w) * im.channels,
                &out.data[size_t(y) * w * im.channels]);
  return out;
}

Image resize_bilinear(const Image& im, int w, int h) {
  Image out(w, h, im.channels);
  const float sx = float(im.width) / w, sy = float(im.height) / h;
  for (int y = 0; y < h; ++y) {
    float fy = std::max(0.f, (y + 0.5f) * sy - 0.5f);
    int y0 = std::min(int(fy), im.height - 1), y1 = std::min(y0 + 1, im.height - 1);
    float ay = fy - y0;
    for (int x = 0; x < w; ++x) {
      float fx = std::max(0.f, (x + 0.5f) * sx - 0.5f);
      int x0 = std::min(int(fx), im.width - 1), x1 = std::min(x0 + 1, im.width - 1);
      float ax = fx - x0;
      for (int c = 0; c < im.channels; ++c)
        out.at(x, y, c) = (1 - ay) * ((1 - ax) * im.at(x0, y0, c) + ax * im.at(x1, y0, c)) +
                          ay * ((1 - ax) * im.at(x0, y1, c) + ax * im.at(x1, y1, c));
    }
  }
  return out;
}

// Each output pixel averages the input area it covers, with fractional weights at the edges.
Image resize_area(const Image& im, int w, int h) {
  if (w > im.width || h > im.height) return resize_bilinear(im, w, h);
  Image out(w, h, im.channels);
  const double sx = double(im.width) / w, sy = double(im.height) / h;
  for (int y = 0; y < h; ++y) {
    double ya = y * sy, yb = (y + 1) * sy;
    for (int x = 0; x < w; ++x) {
      double xa = x * sx, xb = (x + 1) * sx;
      for (int c = 0; c < im.channels; ++c) {
        double acc = 0;
        for (int iy = int(ya); iy < std::min(int(std::ceil(yb)), im.height); ++iy) {
          double wy = std::min(yb, iy + 1.0) - std::max(ya, double(iy));
          for (int ix = int(xa); ix < std::min(int(std::ceil(xb)), im.width); ++ix) {
            double wx = std::min(xb, ix + 1.0) - std::max(xa, double(ix));
            acc += wx * wy * im.at(ix, iy, c);
          }
        }
        out.at(x, y, c) = float(acc / (sx * sy));
      }
    }
  }
  return out;
}

}  // namespace ahmsa::img
