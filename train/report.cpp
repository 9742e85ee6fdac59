#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <stb/stb_easy_font.h>

#include "flow/image.h"

namespace ahmsa::train {

// ------------------------------------------------------------------ metrics

MetricsBlock compute_metrics(const data::FlowDataset& ds, const std::vector<int>& samples, const std::vector<int>& preds,
                             int classes) {
  MetricsBlock m;
  m.confusion = Confusion(classes);
  for (size_t i = 0; i < samples.size(); ++i) {
    const data::FlowSample& s = ds.samples.at(size_t(samples[i]));
    m.confusion.add(s.label, preds[i]);
    auto it = m.dataset_confusion.find(s.dataset);
    if (it == m.dataset_confusion.end()) it = m.dataset_confusion.emplace(s.dataset, Confusion(classes)).first;
    it->second.add(s.label, preds[i]);
  }
  m.pooled = score(m.confusion);
  for (auto& [name, c] : m.dataset_confusion) m.per_dataset[name] = score(c);
  return m;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.6f", v);
  return b;
}

std::string scores_json(const Scores& s, const Confusion& c, const std::vector<std::string>& names, int indent) {
  const std::string pad(size_t(indent), ' '), pad2(size_t(indent + 2), ' '), pad4(size_t(indent + 4), ' ');
  std::string j = "{\n";
  j += pad2 + "\"n\": " + std::to_string(s.n) + ",\n";
  j += pad2 + "\"accuracy\": " + json_number(s.accuracy) + ",\n";
  j += pad2 + "\"uf1\": " + json_number(s.uf1) + ",\n";
  j += pad2 + "\"uar\": " + json_number(s.uar) + ",\n";
  j += pad2 + "\"per_class\": {\n";
  for (size_t k = 0; k < s.per_class.size(); ++k) {
    const ClassScore& p = s.per_class[k];
    j += pad4 + "\"" + json_escape(k < names.size() ? names[k] : std::to_string(k)) + "\": {\"support\": " +
         std::to_string(p.support) + ", \"predicted\": " + std::to_string(p.predicted) + ", \"f1\": " +
         (p.in_uf1 ? json_number(p.f1) : "null") + ", \"recall\": " + (p.in_uar ? json_number(p.recall) : "null") +
         ", \"precision\": " + (p.predicted ? json_number(p.precision) : "null") + "}" +
         (k + 1 < s.per_class.size() ? ",\n" : "\n");
  }
  j += pad2 + "},\n";
  j += pad2 + "\"confusion\": [";
  for (int t = 0; t < c.classes; ++t) {
    j += t ? ", [" : "[";
    for (int p = 0; p < c.classes; ++p) j += (p ? ", " : "") + std::to_string(c.at(t, p));
    j += "]";
  }
  j += "]\n" + pad + "}";
  return j;
}

std::string metrics_block_json(const MetricsBlock& m, const std::vector<std::string>& names, int indent) {
  const std::string pad(size_t(indent), ' '), pad2(size_t(indent + 2), ' '), pad4(size_t(indent + 4), ' ');
  std::string j = scores_json(m.pooled, m.confusion, names, indent);
  j.erase(j.size() - 1 - size_t(indent));  // reopen the object: drop "\n<pad>}"
  j.erase(j.size() - 1);
  j += ",\n" + pad2 + "\"per_dataset\": {";
  size_t i = 0;
  for (auto& [name, s] : m.per_dataset) {
    j += (i++ ? ",\n" : "\n") + pad4 + "\"" + json_escape(name) + "\": " + scores_json(s, m.dataset_confusion.at(name), names, indent + 4);
  }
  j += "\n" + pad2 + "}\n" + pad + "}";
  return j;
}

Chance chance_levels(const std::vector<int>& labels, int K) {
  Chance c{};
  std::vector<int64_t> n(size_t(K), 0);
  for (int y : labels) n[size_t(y)]++;
  const double N = double(labels.size());
  const double nmax = double(*std::max_element(n.begin(), n.end()));
  c.uniform_accuracy = c.uniform_uar = 1.0 / K;
  c.majority_accuracy = N > 0 ? nmax / N : 0;
  c.majority_uf1 = N > 0 ? (2 * nmax / (N + nmax)) / K : 0;
  return c;
}

// ------------------------------------------------------------------ drawing

namespace {

struct Canvas {
  int w, h;
  std::vector<unsigned char> px;  // RGB
  Canvas(int w_, int h_) : w(w_), h(h_), px(size_t(w_) * h_ * 3, 255) {}
  void set(int x, int y, const unsigned char* c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    unsigned char* p = &px[(size_t(y) * w + x) * 3];
    p[0] = c[0], p[1] = c[1], p[2] = c[2];
  }
  void rect(int x0, int y0, int x1, int y1, const unsigned char* c) {  // filled, [x0, x1) x [y0, y1)
    for (int y = std::max(0, y0); y < std::min(h, y1); ++y)
      for (int x = std::max(0, x0); x < std::min(w, x1); ++x) set(x, y, c);
  }
  void frame(int x0, int y0, int x1, int y1, const unsigned char* c) {
    rect(x0, y0, x1, y0 + 1, c), rect(x0, y1 - 1, x1, y1, c), rect(x0, y0, x0 + 1, y1, c), rect(x1 - 1, y0, x1, y1, c);
  }
  // Bresenham, `thick` pixels square pen.
  void line(int x0, int y0, int x1, int y1, const unsigned char* c, int thick = 2) {
    int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
      rect(x0 - thick / 2, y0 - thick / 2, x0 - thick / 2 + thick, y0 - thick / 2 + thick, c);
      if (x0 == x1 && y0 == y1) break;
      int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  // stb_easy_font text: each glyph is a set of axis-aligned quads on a 1-unit grid, drawn `scale` px per unit.
  void text(int x, int y, const std::string& s, const unsigned char* c, int scale = 2) {
    static char vbuf[200000];
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
  static int text_width(const std::string& s, int scale = 2) {
    std::string copy = s;
    return stb_easy_font_width(copy.data()) * scale;
  }
  void save(const std::string& path) const {
    img::Image im(w, h, 3);
    for (size_t i = 0; i < px.size(); ++i) im.data[i] = px[i];
    img::save_png(path, im);
  }
};

const unsigned char kBlack[3] = {0, 0, 0}, kGrey[3] = {150, 150, 150}, kLight[3] = {225, 225, 225}, kWhite[3] = {255, 255, 255};

}  // namespace

void write_confusion_png(const std::string& path, const Confusion& m, const std::vector<std::string>& names,
                         const std::string& title) {
  const int K = m.classes, cell = K <= 4 ? 110 : 70, left = 170, top = 80;
  Canvas cv(left + K * cell + 40, top + K * cell + 80);
  cv.text(10, 10, title, kBlack, 2);
  cv.text(left, top - 30, "predicted", kGrey, 2);
  cv.text(10, top - 30, "truth", kGrey, 2);
  for (int t = 0; t < K; ++t) {
    const int64_t row = m.support(t);
    std::string tn = t < (int)names.size() ? names[size_t(t)] : std::to_string(t);
    cv.text(10, top + t * cell + cell / 2 - 7, tn.substr(0, 12), kBlack, 2);
    for (int p = 0; p < K; ++p) {
      const double f = row ? double(m.at(t, p)) / double(row) : 0.0;
      // White -> dark blue with the row fraction (recall on the diagonal).
      unsigned char c[3] = {(unsigned char)(255 - 220 * f), (unsigned char)(255 - 170 * f), (unsigned char)(255 - 60 * f)};
      const int x0 = left + p * cell, y0 = top + t * cell;
      cv.rect(x0, y0, x0 + cell, y0 + cell, c);
      cv.frame(x0, y0, x0 + cell + 1, y0 + cell + 1, kGrey);
      const unsigned char* tc = f > 0.55 ? kWhite : kBlack;
      std::string count = std::to_string(m.at(t, p));
      char pct[32];
      std::snprintf(pct, sizeof pct, "%.0f%%", 100 * f);
      cv.text(x0 + (cell - Canvas::text_width(count, 3)) / 2, y0 + cell / 2 - 22, count, tc, 3);
      cv.text(x0 + (cell - Canvas::text_width(pct, 2)) / 2, y0 + cell / 2 + 12, pct, tc, 2);
    }
  }
  for (int p = 0; p < K; ++p) {
    std::string pn = p < (int)names.size() ? names[size_t(p)] : std::to_string(p);
    pn = pn.substr(0, 12);
    cv.text(left + p * cell + (cell - Canvas::text_width(pn, 2)) / 2, top + K * cell + 12, pn, kBlack, 2);
  }
  char foot[128];
  std::snprintf(foot, sizeof foot, "n = %lld, accuracy %.3f", (long long)m.total(), m.total() ? double(m.correct()) / m.total() : 0.0);
  cv.text(10, top + K * cell + 45, foot, kGrey, 2);
  cv.save(path);
}

void write_curves_png(const std::string& path, const std::vector<Panel>& panels, const std::string& x_label) {
  const int pw = 460, ph = 300, ml = 60, mt = 40, mb = 50, legend_h = 20 * 4;
  Canvas cv(int(panels.size()) * (pw + ml + 20) + 10, mt + ph + mb + legend_h);
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const Panel& P = panels[pi];
    const int ox = 10 + int(pi) * (pw + ml + 20) + ml, oy = mt;
    double lo = P.y_lo, hi = P.y_hi;
    size_t n = 0;
    if (hi <= lo) {
      lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (auto& s : P.series)
        for (double v : s.y)
          if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      if (!std::isfinite(lo)) lo = 0, hi = 1;
      if (hi - lo < 1e-9) hi = lo + 1;
      lo = std::min(lo, 0.0);
      hi += 0.05 * (hi - lo);
    }
    for (auto& s : P.series) n = std::max(n, s.y.size());
    cv.text(ox, 10, P.title, kBlack, 2);
    // Grid: 5 horizontal lines with their values.
    for (int g = 0; g <= 4; ++g) {
      int y = oy + ph - g * ph / 4;
      cv.rect(ox, y, ox + pw, y + 1, kLight);
      char b[32];
      std::snprintf(b, sizeof b, "%.2f", lo + (hi - lo) * g / 4);
      cv.text(ox - Canvas::text_width(b, 1) * 2 - 6, y - 6, b, kGrey, 2);
    }
    cv.frame(ox, oy, ox + pw + 1, oy + ph + 1, kGrey);
    auto X = [&](size_t i) { return ox + (n > 1 ? int(double(i) * pw / double(n - 1)) : pw / 2); };
    auto Y = [&](double v) { return oy + ph - int((std::clamp(v, lo, hi) - lo) / (hi - lo) * ph); };
    for (size_t i = 0; i < n; i += std::max<size_t>(1, n / 8)) {
      std::string t = std::to_string(i + 1);
      cv.text(X(i) - Canvas::text_width(t, 2) / 2, oy + ph + 8, t, kGrey, 2);
    }
    cv.text(ox + pw / 2 - Canvas::text_width(x_label, 2) / 2, oy + ph + 28, x_label, kGrey, 2);
    for (size_t si = 0; si < P.series.size(); ++si) {
      const Series& s = P.series[si];
      for (size_t i = 0; i < s.y.size(); ++i) {
        if (!std::isfinite(s.y[i])) continue;
        if (i + 1 < s.y.size() && std::isfinite(s.y[i + 1])) cv.line(X(i), Y(s.y[i]), X(i + 1), Y(s.y[i + 1]), s.rgb, 2);
        else if (s.y.size() == 1 || i == 0 || !std::isfinite(s.y[i - 1])) cv.rect(X(i) - 2, Y(s.y[i]) - 2, X(i) + 3, Y(s.y[i]) + 3, s.rgb);
      }
      const int ly = oy + ph + mb + int(si) * 20;
      cv.rect(ox, ly + 5, ox + 24, ly + 9, s.rgb);
      cv.text(ox + 32, ly, s.label, kBlack, 2);
    }
  }
  cv.save(path);
}

}  // namespace ahmsa::train
