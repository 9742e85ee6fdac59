// docs/TUTORIAL.md cannot rot: its `sh` blocks, run in order by bash (set -euo pipefail) in an empty
// folder with the built `ahmsa` first on PATH, all succeed; every picture it shows (img/NAME) is
// committed under docs/img/ and is a file the commands wrote; every line reference into
// model/ahmsa_net.cpp points at the line that defines the function it names.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "tool_helpers.h"

namespace fs = std::filesystem;

namespace {

using ahmsa::testing::slurp;

const fs::path kSource = AHMSA_SOURCE_DIR;

std::vector<std::string> sh_blocks(const std::string& md) {
  std::vector<std::string> blocks;
  std::istringstream in(md);
  std::string line, cur;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```sh") inside = true, cur.clear();
    else if (inside && line == "```") inside = false, blocks.push_back(cur);
    else if (inside) cur += line + "\n";
  }
  CHECK_FALSE(inside);  // an unclosed block
  return blocks;
}

}  // namespace

TEST_CASE("every command of docs/TUTORIAL.md runs, and writes the pictures it shows") {
  const std::string md = slurp(kSource / "docs" / "TUTORIAL.md");
  REQUIRE(!md.empty());
  const std::vector<std::string> blocks = sh_blocks(md);
  CHECK(blocks.size() >= 8);
  const fs::path dir = fs::temp_directory_path() / ("ahmsa_test_tutorial_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string script = "set -euo pipefail\n";
  for (size_t i = 0; i < blocks.size(); ++i) script += "echo '== tutorial block " + std::to_string(i + 1) + "'\n" + blocks[i];
  std::ofstream(dir / "tutorial.sh") << script;
  const std::string tool_dir = fs::path(AHMSA_TOOL).parent_path().string();
  const std::string cmd = "cd '" + dir.string() + "' && PATH='" + tool_dir + "':\"$PATH\" AHMSA_SHARED_DIR='" + AHMSA_SHARED_DIR +
                          "' bash tutorial.sh > out.txt 2> err.txt";
  const int st = std::system(cmd.c_str());
  const std::string out = slurp(dir / "out.txt"), err = slurp(dir / "err.txt");
  const std::string both = "stdout:\n" + out + "\nstderr:\n" + err;
  REQUIRE_MESSAGE(WIFEXITED(st), both);
  REQUIRE_MESSAGE(WEXITSTATUS(st) == 0, both);
  CHECK(out.find("== tutorial block " + std::to_string(blocks.size())) != std::string::npos);
  CHECK(out.find("pooled (MEGC):   UF1 ") != std::string::npos);
  CHECK(out.find("TEST-SELECTED") != std::string::npos);
  CHECK(out.find("prediction: ") != std::string::npos);

  // Pictures: committed, and produced by the commands (same file name somewhere in the folder).
  std::set<std::string> written;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) written.insert(e.path().filename().string());
  const std::regex img("\\]\\(img/([A-Za-z0-9_.-]+)\\)");
  int pictures = 0;
  for (std::sregex_iterator it(md.begin(), md.end(), img), end; it != end; ++it, ++pictures) {
    const std::string name = (*it)[1];
    CAPTURE(name);
    CHECK(fs::is_regular_file(kSource / "docs" / "img" / name));
    CHECK(written.count(name) == 1);
  }
  CHECK(pictures >= 4);

  // Line references: `Name` ... [model/ahmsa_net.cpp:N](../model/ahmsa_net.cpp#LN), line N defines Name.
  std::vector<std::string> lines;
  {
    std::istringstream in(slurp(kSource / "model" / "ahmsa_net.cpp"));
    std::string l;
    while (std::getline(in, l)) lines.push_back(l);
  }
  const std::regex ref("`([A-Za-z_:]+)`[,\\s(]*\\[model/ahmsa_net\\.cpp:(\\d+)\\]\\(\\.\\./model/ahmsa_net\\.cpp#L(\\d+)\\)");
  int refs = 0;
  for (std::sregex_iterator it(md.begin(), md.end(), ref), end; it != end; ++it, ++refs) {
    const std::string name = (*it)[1];
    const size_t n = std::stoul((*it)[2]);
    CAPTURE(name);
    CAPTURE(n);
    CHECK((*it)[2] == (*it)[3]);
    REQUIRE(n >= 1);
    REQUIRE(n <= lines.size());
    CHECK(lines[n - 1].find(name + "(") != std::string::npos);
  }
  CHECK(refs >= 5);
  fs::remove_all(dir);
}
