#include "train/data/paths.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace fs = std::filesystem;

namespace ahmsa::data {

std::string find_shared_path(const std::string& rel) {
  std::error_code ec;
  if (const char* env = std::getenv("AHMSA_SHARED_DIR")) {
    fs::path p = fs::path(env) / rel;
    if (fs::exists(p, ec)) return p.string();
  }
  std::vector<fs::path> starts;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  starts.push_back(fs::current_path(ec));
  for (auto dir : starts) {
    for (int up = 0; up < 8 && !dir.empty(); ++up) {
      for (auto cand : {dir / "shared" / rel, dir / ".." / "shared" / rel}) {
        if (fs::exists(cand, ec)) return fs::weakly_canonical(cand, ec).string();
      }
      if (dir == dir.parent_path()) break;
      dir = dir.parent_path();
    }
  }
  return "";
}

}  // namespace ahmsa::data
