#include "train/canvas.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <stb/stb_easy_font.h>

#include "train/data/run_folder.h"

namespace ahmsa::train {

const unsigned char kBlack[3] = {0, 0, 0}, kGrey[3] = {150, 150, 150}, kLight[3] = {225, 225, 225}, kWhite[3] = {255, 255, 255};

Canvas::Canvas(int w_, int h_) : w(w_), h(h_), px(size_t(w_) * h_ * 3, 255) {}

void Canvas::set(int x, int y, const unsigned char* c) {
  if (x < 0 || y < 0 || x >= w || y >= h) return;
  unsigned char* p = &px[(size_t(y) * w + x) * 3];
  p[0] = c[0], p[1] = c[1], p[2] = c[2];
}

void Canvas::rect(int x0, int y0, int x1, int y1, const unsigned char* c) {
  for (int y = std::max(0, y0); y < std::min(h, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(w, x1); ++x) set(x, y, c);
}

void Canvas::frame(int x0, int y0, int x1, int y1, const unsigned char* c) {
  rect(x0, y0, x1, y0 + 1, c), rect(x0, y1 - 1, x1, y1, c), rect(x0, y0, x0 + 1, y1, c), rect(x1 - 1, y0, x1, y1, c);
}

void Canvas::line(int x0, int y0, int x1, int y1, const unsigned char* c, int thick) {
  int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
  for (;;) {
    rect(x0 - thick / 2, y0 - thick / 2, x0 - thick / 2 + thick, y0 - thick / 2 + thick, c);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

// Each stb_easy_font glyph is a set of axis-aligned quads on a 1-unit grid.
void Canvas::text(int x, int y, const std::string& s, const unsigned char* c, int scale) {
  static thread_local char vbuf[200000];
  std::string copy = s;
  unsigned char col[4] = {c[0], c[1], c[2], 255};
  int quads = stb_easy_font_print(0, 0, copy.data(), col, vbuf, sizeof vbuf);
  for (int q = 0; q < quads; ++q) {
    const float* v = reinterpret_cast<const float*>(vbuf + q * 4 * 16);  // 4 vertices of 16 bytes: x, y, z, rgba
    float qx0 = v[0], qy0 = v[1], qx1 = v[0], qy1 = v[1];
    for (int k = 1; k < 4; ++k) {
      const float* vk = reinterpret_cast<const float*>(vbuf + q * 4 * 16 + k * 16);
      qx0 = std::min(qx0, vk[0]), qx1 = std::max(qx1, vk[0]), qy0 = std::min(qy0, vk[1]), qy1 = std::max(qy1, vk[1]);
    }
    rect(x + int(qx0 * scale), y + int(qy0 * scale), x + int(qx1 * scale), y + int(qy1 * scale), c);
  }
}

int Canvas::text_width(const std::string& s, int scale) {
  std::string copy = s;
  return stb_easy_font_width(copy.data()) * scale;
}

void Canvas::image(int x, int y, const img::Image& im, int tw, int th, bool smooth) {
  if (im.width <= 0 || im.height <= 0) return;
  for (int j = 0; j < th; ++j)
    for (int i = 0; i < tw; ++i) {
      unsigned char c[3];
      // Sample position in the source, pixel centres aligned.
      const float sx = (i + 0.5f) * im.width / tw - 0.5f, sy = (j + 0.5f) * im.height / th - 0.5f;
      for (int k = 0; k < 3; ++k) {
        const int ch = im.channels == 1 ? 0 : k;
        float v;
        if (smooth) {
          const float cx = std::clamp(sx, 0.f, float(im.width - 1)), cy = std::clamp(sy, 0.f, float(im.height - 1));
          const int x0 = int(cx), y0 = int(cy), x1 = std::min(x0 + 1, im.width - 1), y1 = std::min(y0 + 1, im.height - 1);
          const float fx = cx - x0, fy = cy - y0;
          v = (1 - fy) * ((1 - fx) * im.at(x0, y0, ch) + fx * im.at(x1, y0, ch)) + fy * ((1 - fx) * im.at(x0, y1, ch) + fx * im.at(x1, y1, ch));
        } else {
          v = im.at(std::clamp(int(std::lround(sx)), 0, im.width - 1), std::clamp(int(std::lround(sy)), 0, im.height - 1), ch);
        }
        c[k] = (unsigned char)std::clamp(std::lround(v), 0L, 255L);
      }
      set(x + i, y + j, c);
    }
}

void Canvas::save(const std::string& path) const {
  img::Image im(w, h, 3);
  for (size_t i = 0; i < px.size(); ++i) im.data[i] = px[i];
  const std::string tmp = data::temp_path(path).string();  // private to this process: two may write the report at once
  img::save_png(tmp, im);
  data::commit_file(tmp, path);
}

}  // namespace ahmsa::train
