// The vector plots (SVG, real text) and the self-contained report.html of a run. Everything is
// inline (SVG, CSS, a few lines of script that mark the page as rendered): the page opens offline.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "train/data/run_folder.h"
#include "train/report.h"

namespace ahmsa::train {

namespace {

std::string num(const char* fmt, double v) {
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}
std::string rgb(const unsigned char* c) { return "rgb(" + std::to_string(c[0]) + "," + std::to_string(c[1]) + "," + std::to_string(c[2]) + ")"; }
std::string score_cell(double v) { return std::isfinite(v) ? num("%.4f", v) : "&ndash;"; }

// An SVG document built as text; coordinates in px, text in the page's sans-serif font.
struct Svg {
  std::string body;
  int w, h;
  Svg(int w_, int h_) : w(w_), h(h_) {}
  void rect(double x, double y, double rw, double rh, const std::string& fill, const std::string& extra = "") {
    body += "<rect x=\"" + num("%.1f", x) + "\" y=\"" + num("%.1f", y) + "\" width=\"" + num("%.1f", rw) + "\" height=\"" +
            num("%.1f", rh) + "\" fill=\"" + fill + "\"" + extra + "/>\n";
  }
  void line(double x0, double y0, double x1, double y1, const std::string& stroke, double width = 1) {
    body += "<line x1=\"" + num("%.1f", x0) + "\" y1=\"" + num("%.1f", y0) + "\" x2=\"" + num("%.1f", x1) + "\" y2=\"" + num("%.1f", y1) +
            "\" stroke=\"" + stroke + "\" stroke-width=\"" + num("%.1f", width) + "\"/>\n";
  }
  // anchor: start | middle | end
  void text(double x, double y, const std::string& s, double size = 13, const std::string& anchor = "start",
            const std::string& fill = "#222", const std::string& extra = "") {
    body += "<text x=\"" + num("%.1f", x) + "\" y=\"" + num("%.1f", y) + "\" font-size=\"" + num("%.0f", size) + "\" text-anchor=\"" + anchor +
            "\" fill=\"" + fill + "\"" + extra + ">" + html_escape(s) + "</text>\n";
  }
  std::string str() const {
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(w) + "\" height=\"" + std::to_string(h) + "\" viewBox=\"0 0 " +
           std::to_string(w) + " " + std::to_string(h) + "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n" +
           "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body + "</svg>\n";
  }
};

const unsigned char kBlue[3] = {31, 119, 180}, kOrange[3] = {255, 127, 14}, kGreen[3] = {44, 160, 44}, kRed[3] = {214, 39, 40};

}  // namespace

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string confusion_svg(const Confusion& m, const std::vector<std::string>& names, const std::string& title) {
  const int K = m.classes, cell = K <= 4 ? 96 : 64, left = 120, top = 70;
  Svg s(std::max(left + K * cell + 30, 500), top + K * cell + 80);
  s.text(10, 22, title, 15, "start", "#222", " font-weight=\"bold\"");
  s.text(left + K * cell / 2.0, top - 12, "predicted", 13, "middle", "#666");
  s.text(14, top + K * cell / 2.0, "truth", 13, "middle", "#666", " transform=\"rotate(-90 14 " + num("%.1f", top + K * cell / 2.0) + ")\"");
  auto name = [&](int k) { return k < int(names.size()) ? names[size_t(k)] : std::to_string(k); };
  for (int t = 0; t < K; ++t) {
    const int64_t row = m.support(t);
    s.text(left - 8, top + t * cell + cell / 2.0 + 5, name(t), 13, "end");
    for (int p = 0; p < K; ++p) {
      const double f = row ? double(m.at(t, p)) / double(row) : 0.0;
      const unsigned char c[3] = {(unsigned char)(255 - 220 * f), (unsigned char)(255 - 170 * f), (unsigned char)(255 - 60 * f)};
      const double x0 = left + p * cell, y0 = top + t * cell;
      s.rect(x0, y0, cell, cell, rgb(c), " stroke=\"#999\" stroke-width=\"1\"");
      const std::string tc = f > 0.55 ? "white" : "#222";
      s.text(x0 + cell / 2.0, y0 + cell / 2.0, std::to_string(m.at(t, p)), 22, "middle", tc);
      s.text(x0 + cell / 2.0, y0 + cell / 2.0 + 22, num("%.0f%%", 100 * f), 13, "middle", tc);
    }
  }
  for (int p = 0; p < K; ++p) s.text(left + p * cell + cell / 2.0, top + K * cell + 20, name(p), 13, "middle");
  s.text(10, top + K * cell + 55,
         "n = " + std::to_string(m.total()) + ", accuracy " + num("%.3f", m.total() ? double(m.correct()) / double(m.total()) : 0.0) +
             "; colour = share of the row (recall on the diagonal)",
         12, "start", "#666");
  return s.str();
}

std::string curves_svg(const std::vector<Panel>& panels, const std::string& x_label) {
  const int pw = 400, ph = 240, ml = 56, mt = 36, mb = 50, gap = 30;
  size_t most = 0;
  for (auto& P : panels) most = std::max(most, P.series.size());
  Svg s(int(panels.size()) * (ml + pw + gap) + 10, mt + ph + mb + 20 * int(most) + 10);
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const Panel& P = panels[pi];
    const double ox = 10 + double(pi) * (ml + pw + gap) + ml, oy = mt;
    double lo = P.y_lo, hi = P.y_hi;
    size_t n = 0;
    for (auto& se : P.series) n = std::max(n, se.y.size());
    if (hi <= lo) {  // from the data, as the PNG does
      lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (auto& se : P.series)
        for (double v : se.y)
          if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      if (!std::isfinite(lo)) lo = 0, hi = 1;
      if (hi - lo < 1e-9) hi = lo + 1;
      lo = std::min(lo, 0.0);
      hi += 0.05 * (hi - lo);
    }
    s.text(ox, 22, P.title, 14, "start", "#222", " font-weight=\"bold\"");
    for (int g = 0; g <= 4; ++g) {
      const double y = oy + ph - g * ph / 4.0;
      s.line(ox, y, ox + pw, y, "#e3e3e3");
      s.text(ox - 6, y + 4, num("%.2f", lo + (hi - lo) * g / 4), 11, "end", "#666");
    }
    s.rect(ox, oy, pw, ph, "none", " stroke=\"#999\"");
    auto X = [&](size_t i) { return ox + (n > 1 ? double(i) * pw / double(n - 1) : pw / 2.0); };
    auto Y = [&](double v) { return oy + ph - (std::clamp(v, lo, hi) - lo) / (hi - lo) * ph; };
    for (size_t i = 0; i < n; i += std::max<size_t>(1, n / 8)) s.text(X(i), oy + ph + 16, std::to_string(i + 1), 11, "middle", "#666");
    s.text(ox + pw / 2.0, oy + ph + 34, x_label, 12, "middle", "#666");
    for (size_t si = 0; si < P.series.size(); ++si) {
      const Series& se = P.series[si];
      const std::string col = rgb(se.rgb);
      std::string pts;  // one polyline per run of finite values; isolated points as dots
      auto flush = [&](size_t count, size_t last) {
        if (count > 1) s.body += "<polyline fill=\"none\" stroke=\"" + col + "\" stroke-width=\"2\" points=\"" + pts + "\"/>\n";
        else if (count == 1)
          s.body += "<circle cx=\"" + num("%.1f", X(last)) + "\" cy=\"" + num("%.1f", Y(se.y[last])) + "\" r=\"3\" fill=\"" + col + "\"/>\n";
        pts.clear();
      };
      size_t count = 0;
      for (size_t i = 0; i < se.y.size(); ++i) {
        if (!std::isfinite(se.y[i])) {
          if (count) flush(count, i - 1);
          count = 0;
          continue;
        }
        pts += num("%.1f", X(i)) + "," + num("%.1f", Y(se.y[i])) + " ";
        ++count;
      }
      if (count) flush(count, se.y.size() - 1);
      const double ly = oy + ph + mb + 20 * double(si);
      s.rect(ox, ly - 6, 22, 4, col);
      s.text(ox + 30, ly, se.label, 12);
    }
  }
  return s.str();
}

std::string bars_svg(const std::string& title, const std::vector<std::string>& series, const std::vector<BarGroup>& groups) {
  static const unsigned char* colours[] = {kBlue, kOrange, kGreen, kRed};
  const int bw = 26, ph = 200, ml = 46, mt = 48, legend = 24;
  const int gw = int(series.size()) * bw + 24;
  Svg s(std::max(ml + int(groups.size()) * gw + 20, 320), mt + ph + 44 + legend);
  s.text(10, 22, title, 15, "start", "#222", " font-weight=\"bold\"");
  for (int g = 0; g <= 4; ++g) {
    const double y = mt + ph - g * ph / 4.0;
    s.line(ml, y, ml + int(groups.size()) * gw, y, "#e3e3e3");
    s.text(ml - 6, y + 4, num("%.2f", g / 4.0), 11, "end", "#666");
  }
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const double gx = ml + double(gi) * gw + 12;
    for (size_t k = 0; k < series.size() && k < groups[gi].values.size(); ++k) {
      const double v = groups[gi].values[k];
      const double x = gx + double(k) * bw;
      if (!std::isfinite(v)) {
        s.text(x + bw / 2.0, mt + ph - 4, "n/a", 9, "middle", "#999");
        continue;
      }
      const double hgt = std::clamp(v, 0.0, 1.0) * ph;
      s.rect(x + 2, mt + ph - hgt, bw - 4, hgt, rgb(colours[k % 4]));
      s.text(x + bw / 2.0, mt + ph - hgt - 4, num("%.2f", v), 10, "middle", "#333");
    }
    s.text(gx + series.size() * bw / 2.0, mt + ph + 18, groups[gi].label, 12, "middle");
  }
  s.line(ml, mt + ph, ml + int(groups.size()) * gw, mt + ph, "#999");
  double lx = ml;
  for (size_t k = 0; k < series.size(); ++k) {
    s.rect(lx, mt + ph + 34, 12, 12, rgb(colours[k % 4]));
    s.text(lx + 16, mt + ph + 45, series[k], 12);
    lx += 30 + 7.5 * double(series[k].size());
  }
  return s.str();
}

std::string report_html(const ReportPage& p) {
  const auto& M = p.metrics;
  const auto& pooled = M["pooled"];
  auto j_num = [](const nlohmann::ordered_json& v) { return v.is_number() ? v.get<double>() : std::nan(""); };
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + html_escape(p.title) + "</title>\n";
  h += "<style>\n"
       "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}\n"
       "h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\n"
       "table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
       "th{background:#f3f3f3}td.l,th.l{text-align:left}tr.main td{font-weight:bold;background:#eef4fb}\n"
       "tr.warn td{color:#a33}.key{font-size:20px;margin:10px 0}.key b{font-size:28px}.note{color:#666;font-size:12px}\n"
       "#settings td.l{max-width:760px;overflow-wrap:anywhere}\n"
       ".plots{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}svg{max-width:100%;height:auto}\n"
       "</style>\n</head>\n<body>\n";
  h += "<h1>" + html_escape(p.title) + "</h1>\n";
  h += "<div class=\"note\">" + html_escape(M.value("protocol", std::string())) + "; selection: " + html_escape(M.value("selection", std::string())) +
       "; version " + html_escape(M.value("version", std::string())) + "</div>\n";
  h += "<p class=\"key\">pooled UF1 <b id=\"pooled-uf1\">" + score_cell(j_num(pooled["uf1"])) + "</b> &nbsp; UAR <b id=\"pooled-uar\">" +
       score_cell(j_num(pooled["uar"])) + "</b> &nbsp; accuracy <b id=\"pooled-accuracy\">" + score_cell(j_num(pooled["accuracy"])) + "</b></p>\n";
  h += "<p class=\"note\">" + std::to_string(M.value("clips_scored", 0)) + " of " + std::to_string(M.value("clips", 0)) + " clips scored, " +
       std::to_string(M.value("folds", 0)) + " folds (" + std::to_string(M.value("folds_failed", 0)) +
       " failed). Pooled = one confusion matrix over the held-out predictions of every fold: the MEGC metric.</p>\n";

  // Metrics: pooled, per dataset, then the variants that are not the MEGC metric.
  h += "<h2>Metrics</h2>\n<table id=\"metrics\">\n<tr><th class=\"l\">scores</th><th>n</th><th>UF1</th><th>UAR</th><th>accuracy</th></tr>\n";
  auto row = [&](const std::string& cls, const std::string& label, const nlohmann::ordered_json& b) {
    h += "<tr class=\"" + cls + "\"><td class=\"l\">" + html_escape(label) + "</td><td>" + (b.contains("n") ? b["n"].dump() : "") + "</td><td>" +
         score_cell(j_num(b.value("uf1", nlohmann::ordered_json()))) + "</td><td>" + score_cell(j_num(b.value("uar", nlohmann::ordered_json()))) +
         "</td><td>" + score_cell(j_num(b.value("accuracy", nlohmann::ordered_json()))) + "</td></tr>\n";
  };
  row("main", "pooled (MEGC)", pooled);
  for (auto& [name, b] : pooled["per_dataset"].items()) row("dataset", "  " + name, b);
  if (M.contains("fold_averaged_NOT_MEGC")) row("", "fold-averaged (not the MEGC metric)", M["fold_averaged_NOT_MEGC"]);
  if (M.contains("chance")) {
    const auto& c = M["chance"];
    nlohmann::ordered_json u = {{"uar", c["uniform_guess_uar"]}, {"accuracy", c["uniform_guess_accuracy"]}};
    nlohmann::ordered_json mj = {{"uf1", c["majority_class_uf1"]}, {"accuracy", c["majority_class_accuracy"]}};
    row("", "chance: uniform guess", u);
    row("", "chance: always the majority class", mj);
  }
  if (M.contains("best_test_epoch_TEST_SELECTED"))
    row("warn", "TEST-SELECTED (best test epoch per fold; optimistic, not a valid estimate)", M["best_test_epoch_TEST_SELECTED"]["scores"]);
  h += "</table>\n";

  h += "<h2>Per class (pooled)</h2>\n<table id=\"classes\">\n<tr><th class=\"l\">class</th><th>support</th><th>predicted</th><th>F1</th><th>recall</th>"
       "<th>precision</th></tr>\n";
  for (auto& [name, c] : pooled["per_class"].items())
    h += "<tr><td class=\"l\">" + html_escape(name) + "</td><td>" + c["support"].dump() + "</td><td>" + c["predicted"].dump() + "</td><td>" +
         score_cell(j_num(c["f1"])) + "</td><td>" + score_cell(j_num(c["recall"])) + "</td><td>" + score_cell(j_num(c["precision"])) + "</td></tr>\n";
  h += "</table>\n";

  h += "<h2>Plots</h2>\n<div class=\"plots\">\n";
  for (const auto& svg : p.svgs) h += "<figure id=\"plot-" + svg.first + "\">\n" + svg.second + "</figure>\n";
  h += "</div>\n";

  h += "<h2>Folds</h2>\n<table id=\"folds\">\n<tr><th>fold</th><th class=\"l\">held out</th><th>clips</th><th>UF1</th><th>UAR</th><th>accuracy</th>"
       "<th>selected epoch</th><th class=\"l\">status</th></tr>\n";
  for (const auto& f : p.folds) {
    h += std::string("<tr") + (f.failed ? " class=\"warn\"" : "") + "><td>" + std::to_string(f.fold) + "</td><td class=\"l\">" + html_escape(f.name) +
         "</td><td>" + std::to_string(f.clips) + "</td>";
    if (f.failed) h += "<td>&ndash;</td><td>&ndash;</td><td>&ndash;</td><td>&ndash;</td><td class=\"l\">failed: " + html_escape(f.failure) + "</td></tr>\n";
    else
      h += "<td>" + score_cell(f.scores.uf1) + "</td><td>" + score_cell(f.scores.uar) + "</td><td>" + score_cell(f.scores.accuracy) + "</td><td>" +
           std::to_string(f.selected_epoch) + "</td><td class=\"l\">done</td></tr>\n";
  }
  h += "</table>\n<p class=\"note\">Per-fold scores are for reading only: a held-out subject often lacks a class, so the per-fold UF1 is noisy; "
       "the pooled row above is the metric.</p>\n";

  h += "<h2>Settings</h2>\n<table id=\"settings\">\n";
  if (p.config.is_object()) {
    for (const char* k : {"command", "input", "data", "device", "version", "clips", "folds"})
      if (p.config.contains(k))
        h += "<tr><td class=\"l\">" + std::string(k) + "</td><td class=\"l\">" +
             html_escape(p.config[k].is_string() ? p.config[k].get<std::string>() : p.config[k].dump()) + "</td></tr>\n";
    if (p.config.contains("settings") && p.config["settings"].is_object())
      for (auto& [k, v] : p.config["settings"].items())
        h += "<tr><td class=\"l\">" + html_escape(k) + "</td><td class=\"l\">" + html_escape(v.is_string() ? v.get<std::string>() : v.dump()) + "</td></tr>\n";
  } else {
    h += "<tr><td class=\"l\">config.json</td><td class=\"l\">not found in the run folder</td></tr>\n";
  }
  h += "</table>\n";
  // Marks the page as rendered (a test reads the mark in headless Chromium); any script error clears it.
  h += "<p class=\"note\" id=\"status\">static page</p>\n"
       "<script>\n"
       "window.addEventListener('error', function (e) { document.getElementById('status').textContent = 'script error: ' + e.message; });\n"
       "window.addEventListener('load', function () {\n"
       "  var n = document.querySelectorAll('figure svg').length;\n"
       "  document.getElementById('status').textContent = 'rendered: ' + n + ' plots';\n"
       "});\n"
       "</script>\n</body>\n</html>\n";
  return h;
}

std::vector<std::string> write_report_pages(const std::string& out_dir, const ReportPage& p) {
  namespace fs = std::filesystem;
  std::vector<std::string> written;
  for (const auto& [name, svg] : p.svgs) {
    const fs::path f = fs::path(out_dir) / (name + ".svg");
    data::write_file_atomic(f, svg);
    written.push_back(f.string());
  }
  const fs::path html = fs::path(out_dir) / "report.html";
  data::write_file_atomic(html, report_html(p));
  written.push_back(html.string());
  return written;
}

}  // namespace ahmsa::train
