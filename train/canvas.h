// A small RGB raster for the pictures the tools write (confusion.png, curves.png, explain.png):
// filled rectangles, lines, images scaled in, and text in stb_easy_font's bitmap font. Saved as a
// PNG atomically (written beside, then renamed), as every file of a run.
#pragma once
#include <string>
#include <vector>

#include "flow/image.h"

namespace ahmsa::train {

struct Canvas {
  int w, h;
  std::vector<unsigned char> px;  // RGB, row-major
  Canvas(int w, int h);
  void set(int x, int y, const unsigned char* c);
  void rect(int x0, int y0, int x1, int y1, const unsigned char* c);   // filled, [x0, x1) x [y0, y1)
  void frame(int x0, int y0, int x1, int y1, const unsigned char* c);  // 1 px outline of the same box
  void line(int x0, int y0, int x1, int y1, const unsigned char* c, int thick = 2);  // Bresenham, square pen
  // stb_easy_font text, `scale` px per font unit (a capital is 7 units high); y is the top of the line.
  void text(int x, int y, const std::string& s, const unsigned char* c, int scale = 2);
  static int text_width(const std::string& s, int scale = 2);
  // `im` (grey or RGB, values 0..255) scaled to w x h at (x, y): bilinear when `smooth`, else nearest.
  void image(int x, int y, const img::Image& im, int w, int h, bool smooth = false);
  void save(const std::string& path) const;
};

extern const unsigned char kBlack[3], kGrey[3], kLight[3], kWhite[3];

}  // namespace ahmsa::train
