// The vector plots and report.html a run writes: the page holds the pooled UF1 of metrics.json, one
// row per fold, the settings of config.json and every plot inline (no reference to another file);
// the SVGs carry the confusion counts and the bar values as text.
#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "report_run.h"
#include "train/report.h"
#include "tool_helpers.h"

namespace fs = std::filesystem;
using namespace ahmsa;

namespace {

using ahmsa::testing::slurp;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("report.html gathers the metrics, the folds, the settings and the plots of the run") {
  const fs::path out = fs::temp_directory_path() / "ahmsa_test_report_html";
  train::RunResult r = testing::tiny_run(out);
  REQUIRE(r.complete);
  CHECK(r.report.report_html == (out / "report.html").string());
  const auto metrics = nlohmann::json::parse(slurp(out / "metrics.json"));
  const std::string html = slurp(out / "report.html");
  char uf1[32];
  std::snprintf(uf1, sizeof uf1, "%.4f", metrics["pooled"]["uf1"].get<double>());
  CHECK(html.find(std::string("<b id=\"pooled-uf1\">") + uf1 + "</b>") != std::string::npos);
  // One table row per fold, named as the fold folders are.
  for (const char* fold : {"casme2/sub01", "casme2/sub02", "casme2/sub03", "casme2/sub04"})
    CHECK_MESSAGE(html.find(std::string("<td class=\"l\">") + fold + "</td>") != std::string::npos, fold);
  // Settings from config.json, e.g. the epochs.
  CHECK(html.find("<td class=\"l\">epochs</td><td class=\"l\">6</td>") != std::string::npos);
  // Four inline SVGs and no external asset.
  CHECK(count(html, "<svg xmlns=") == 4);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("href=") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  for (const char* f : {"confusion.svg", "curves.svg", "datasets.svg", "classes.svg"}) {
    CAPTURE(f);
    const std::string svg = slurp(out / f);
    CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
    CHECK(svg.find("</svg>") != std::string::npos);
    CHECK(html.find(svg) != std::string::npos);  // the page holds the same document
  }
  // The confusion SVG prints every count of the pooled matrix in a cell.
  const std::string conf = slurp(out / "confusion.svg");
  std::vector<int64_t> cells;
  std::regex big(">(\\d+)</text>");
  for (std::sregex_iterator it(conf.begin(), conf.end(), big), end; it != end; ++it) cells.push_back(std::stoll((*it)[1]));
  std::vector<int64_t> expect;
  for (auto& row : metrics["pooled"]["confusion"])
    for (auto& v : row) expect.push_back(v.get<int64_t>());
  CHECK(cells == expect);
  // The per-class bars carry each class's F1 as text.
  const std::string classes = slurp(out / "classes.svg");
  for (auto& [name, c] : metrics["pooled"]["per_class"].items()) {
    CAPTURE(name);
    if (!c["f1"].is_number()) continue;
    char v[16];
    std::snprintf(v, sizeof v, ">%.2f</text>", c["f1"].get<double>());
    CHECK(classes.find(v) != std::string::npos);
  }
  fs::remove_all(out);
}

TEST_CASE("html_escape and a bar chart of a missing value") {
  CHECK(train::html_escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;");
  const std::string svg = train::bars_svg("t <1>", {"F1"}, {{"x&y", {std::nan("")}}, {"z", {0.5}}});
  CHECK(svg.find("t &lt;1&gt;") != std::string::npos);
  CHECK(svg.find(">x&amp;y</text>") != std::string::npos);
  CHECK(svg.find(">n/a</text>") != std::string::npos);
  CHECK(svg.find(">0.50</text>") != std::string::npos);
}
