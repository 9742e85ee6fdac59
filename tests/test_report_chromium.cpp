// report.html and the SVG plots of a run, rendered by headless Chromium (Debian `chromium`): the
// page loads with no console message (no script error, no failed load), its script marks it as
// rendered with all four plots, and the rendered DOM shows the pooled UF1 of metrics.json; each SVG
// parses as XML on its own. Without Chromium the test says so and exits 77 (CTest: skipped), except
// under CI=true, where it fails (scripts/setup.sh installs Chromium in CI). AHMSA_CHROMIUM=PATH
// names another browser binary.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "report_run.h"
#include "tool_helpers.h"

namespace fs = std::filesystem;

namespace {

using ahmsa::testing::slurp;

// AHMSA_CHROMIUM names the browser when it is elsewhere (empty or missing file: none).
std::string find_chromium() {
  if (const char* env = std::getenv("AHMSA_CHROMIUM")) return ::access(env, X_OK) == 0 ? env : "";
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (::access(c, X_OK) == 0) return c;
  return "";
}

struct Render {
  int status;
  std::string dom, log;
};

// --dump-dom prints the DOM after the load event; console messages go to the log as "CONSOLE".
Render render(const std::string& chromium, const fs::path& page, const fs::path& dir) {
  const fs::path dom = dir / "dom.html", log = dir / "chromium.log", profile = dir / "profile";
  const std::string cmd = chromium + " --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=" + profile.string() +
                          " --enable-logging=stderr --v=0 --dump-dom 'file://" + fs::absolute(page).string() + "' > " + dom.string() +
                          " 2> " + log.string();
  const int st = std::system(cmd.c_str());
  return {st, slurp(dom), slurp(log)};
}

bool has_console_message(const std::string& log) { return log.find(":CONSOLE") != std::string::npos; }

}  // namespace

TEST_CASE("report.html renders in headless Chromium without errors and shows the pooled UF1") {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL("CI=true but headless Chromium is missing (scripts/setup.sh installs the Debian package chromium in CI)");
    std::printf("test_report_chromium: skipped: no chromium here (apt-get install chromium, or CI=true bash scripts/setup.sh)\n");
    std::exit(77);
  }
  const fs::path dir = fs::temp_directory_path() / ("ahmsa_test_chromium_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto r = ahmsa::testing::tiny_run(dir / "run");
  REQUIRE(r.complete);

  // The check can fail: a page with a script error is caught by both the console log and the status mark.
  {
    std::ofstream(dir / "bad.html") << "<html><body><p id=\"status\">static page</p><script>no_such_function();</script></body></html>";
    Render bad = render(chromium, dir / "bad.html", dir);
    REQUIRE(bad.status == 0);
    CHECK(has_console_message(bad.log));
    CHECK(bad.log.find("no_such_function") != std::string::npos);
  }

  Render page = render(chromium, dir / "run" / "report.html", dir);
  REQUIRE(page.status == 0);
  CHECK_MESSAGE(!has_console_message(page.log), page.log);
  CHECK_MESSAGE(page.dom.find("<p class=\"note\" id=\"status\">rendered: 4 plots</p>") != std::string::npos, page.dom.substr(0, 2000));
  const auto metrics = nlohmann::json::parse(slurp(dir / "run" / "metrics.json"));
  char uf1[32];
  std::snprintf(uf1, sizeof uf1, "%.4f", metrics["pooled"]["uf1"].get<double>());
  CHECK(page.dom.find(std::string("id=\"pooled-uf1\">") + uf1 + "<") != std::string::npos);

  // Each SVG alone: Chromium parses it as XML and shows "error on line" in a parsererror element when it is not well formed.
  std::ofstream(dir / "broken.svg") << "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>a & b</text></svg>";
  CHECK(render(chromium, dir / "broken.svg", dir).dom.find("parsererror") != std::string::npos);
  for (const char* f : {"confusion.svg", "curves.svg", "datasets.svg", "classes.svg"}) {
    CAPTURE(f);
    Render svg = render(chromium, dir / "run" / f, dir);
    CHECK(svg.status == 0);
    CHECK(svg.dom.find("parsererror") == std::string::npos);
    CHECK(svg.dom.find("<svg") != std::string::npos);
  }
  fs::remove_all(dir);
}
