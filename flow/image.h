// Images as the flow module and the data readers see them: float pixels in [0, 255],
// row-major, channels interleaved. Loading and saving go through stb (libstb-dev).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ahmsa::img {

struct ImageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<float> data;  // height * width * channels values

  Image() = default;
  Image(int w, int h, int c, float fill = 0.f) : width(w), height(h), channels(c), data(size_t(w) * h * c, fill) {}
  bool empty() const { return data.empty(); }
  float& at(int x, int y, int c = 0) { return data[(size_t(y) * width + x) * channels + c]; }
  float at(int x, int y, int c = 0) const { return data[(size_t(y) * width + x) * channels + c]; }
};

// The largest image load() decodes: 2^25 pixels (33.5 MP, four times a 4K frame; dataset frames are
// under 2.3 MP). Checked from the file's header before decoding, so memory stays under ~0.7 GB.
constexpr int64_t kMaxPixels = int64_t(1) << 25;
constexpr uint64_t kMaxImageFileBytes = uint64_t(256) << 20;  // 256 MiB: the file is read whole
// No format we read stores more than a few thousand pixels per byte (deflate tops out near 1032:1,
// a JPEG block costs bits); a file claiming more is truncated, and stb would pad it with zeros.
constexpr int64_t kMaxPixelsPerByte = 10000;

// Loads PNG, JPEG or BMP; want_channels 0 keeps the file's own count, 1 gives grey, 3 RGB.
// Throws ImageError naming the file when it is missing, unreadable, corrupt, empty, above kMaxPixels
// or kMaxImageFileBytes, or claims more than kMaxPixelsPerByte pixels per byte of file.
Image load(const std::string& path, int want_channels = 0);
// Writes an 8-bit PNG (values rounded and clamped to [0, 255]); throws ImageError on failure.
void save_png(const std::string& path, const Image& im);

Image to_grey(const Image& im);  // ITU-R BT.601 luma: 0.299 R + 0.587 G + 0.114 B
Image crop(const Image& im, int x, int y, int w, int h);  // the box must lie inside the image
Image resize_bilinear(const Image& im, int w, int h);    // pixel centres aligned (align_corners=false)
Image resize_area(const Image& im, int w, int h);        // exact box averaging, for shrinking

}  // namespace ahmsa::img
