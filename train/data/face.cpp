#include "train/data/face.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "train/data/paths.h"
#include "train/data/table.h"

namespace fs = std::filesystem;

namespace ahmsa::data {

std::map<std::string, FaceBox> read_boxes(const std::string& path) {
  std::map<std::string, FaceBox> out;
  Table t = read_csv(path);
  for (size_t r = 0; r < t.size(); ++r) {
    auto& row = t[r];
    if (blank_row(row)) continue;
    if (row.size() < 5) throw DataError("box file '" + path + "' line " + std::to_string(r + 1) + ": expected subject,x,y,w,h");
    char* end = nullptr;
    long x = std::strtol(row[1].c_str(), &end, 10);
    if (end == row[1].c_str()) {
      if (r == 0) continue;  // header
      throw DataError("box file '" + path + "' line " + std::to_string(r + 1) + ": x is not a number");
    }
    FaceBox b{int(x), std::atoi(row[2].c_str()), std::atoi(row[3].c_str()), std::atoi(row[4].c_str())};
    if (b.empty()) throw DataError("box file '" + path + "' line " + std::to_string(r + 1) + ": empty box");
    out[row[0]] = b;
  }
  return out;
}

FaceBox square_box(const FaceBox& f, float margin, int W, int H) {
  float cx = f.x + 0.5f * f.w, cy = f.y + 0.5f * f.h;
  float side = std::max(f.w, f.h) * (1.f + 2.f * margin);
  int s = std::min({int(std::lround(side)), W, H});
  int x = std::clamp(int(std::lround(cx - 0.5f * s)), 0, W - s), y = std::clamp(int(std::lround(cy - 0.5f * s)), 0, H - s);
  return {x, y, s, s};
}

img::Image crop_face(const img::Image& im, const FaceBox& b, int size) {
  if (b.empty() || b.x < 0 || b.y < 0 || b.x + b.w > im.width || b.y + b.h > im.height)
    throw DataError("face box (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.w) + "," +
                    std::to_string(b.h) + ") is outside the " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                    " image");
  img::Image c = img::crop(im, b.x, b.y, b.w, b.h);
  if (c.width == size && c.height == size) return c;
  return c.width > size ? img::resize_area(c, size, size) : img::resize_bilinear(c, size, size);
}

img::Image contact_sheet(const std::vector<img::Image>& tiles, int cols, int tile) {
  const int gap = 2;
  int n = (int)tiles.size(), rows = std::max(1, (n + cols - 1) / cols);
  img::Image sheet(cols * (tile + gap) + gap, rows * (tile + gap) + gap, 3, 96.f);
  for (int i = 0; i < n; ++i) {
    img::Image t = tiles[i];
    if (t.empty()) continue;
    if (t.width != tile || t.height != tile)
      t = t.width > tile ? img::resize_area(t, tile, tile) : img::resize_bilinear(t, tile, tile);
    int ox = gap + (i % cols) * (tile + gap), oy = gap + (i / cols) * (tile + gap);
    for (int y = 0; y < tile; ++y)
      for (int x = 0; x < tile; ++x)
        for (int c = 0; c < 3; ++c) sheet.at(ox + x, oy + y, c) = t.at(x, y, std::min(c, t.channels - 1));
  }
  return sheet;
}

std::string find_cascade(const std::string& given) {
  if (!given.empty()) {
    if (!fs::exists(given)) throw DataError("cascade file '" + given + "' not found");
    return given;
  }
  std::string s = find_shared_path("data/cascades/haarcascade_frontalface_default.xml");
  if (!s.empty()) return s;
  for (auto p : {"/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
                 "/usr/share/opencv/haarcascades/haarcascade_frontalface_default.xml",
                 "/usr/local/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"})
    if (fs::exists(p)) return p;
  return "";
}

#ifndef AHMSA_HAVE_OPENCV
bool have_face_detector() { return false; }
FaceBox detect_face(const img::Image&, const std::string&) {
  throw DataError("this build has no OpenCV: face detection is unavailable (use a cropped release or --boxes FILE)");
}
#endif

}  // namespace ahmsa::data
