// What the tests that drive the built `ahmsa` binary (AHMSA_TOOL) share: reading a file whole, running
// the tool with its output in files, and a tiny hand-made flow cache to train on.
#pragma once
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "flow/image.h"

namespace ahmsa::testing {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

#ifdef AHMSA_TOOL
// Starts `ahmsa args...` with stdout and stderr going to files; returns the child's pid.
inline pid_t spawn_tool(const std::vector<std::string>& args, const std::filesystem::path& out,
                        const std::filesystem::path& err) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1), ::dup2(e, 2);
    std::vector<char*> argv = {const_cast<char*>(AHMSA_TOOL)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(AHMSA_TOOL, argv.data());
    ::_exit(127);
  }
  return pid;
}

// The exit status, or 128 + the signal that ended the process.
inline int wait_status(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct ToolResult {
  int status;
  std::string out, err;
};

// Runs `ahmsa args...` to the end, its output in dir/name.out and dir/name.err.
inline ToolResult run_tool_in(const std::filesystem::path& dir, const std::string& name,
                              const std::vector<std::string>& args) {
  const std::filesystem::path out = dir / (name + ".out"), err = dir / (name + ".err");
  const int status = wait_status(spawn_tool(args, out, err));
  return {status, slurp(out), slurp(err)};
}
#endif

// 4 subjects x 3 classes x 2 clips of 8x8 (u, v, os) images: class c has a bright square in channel c.
// Written in the flow-cache layout `ahmsa prepare` makes (manifest.json + manifest.csv).
inline void tiny_flow_cache(const std::filesystem::path& dir, const std::string& source) {
  std::filesystem::create_directories(dir / "flows");
  std::string csv = "dataset,subject,clip,label,file\n";
  uint32_t rng = 12345;
  auto noise = [&] { return float((rng = rng * 1664525u + 1013904223u) >> 24); };
  for (int subj = 1; subj <= 4; ++subj)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 2; ++k) {
        img::Image im(8, 8, 3);
        for (int y = 0; y < 8; ++y)
          for (int x = 0; x < 8; ++x)
            for (int ch = 0; ch < 3; ++ch)
              im.at(x, y, ch) = (ch == c && x >= 2 && x < 6 && y >= 2 && y < 6) ? 200 + noise() / 5 : noise() / 3;
        const std::string clip = "EP0" + std::to_string(c) + "_0" + std::to_string(k);
        const std::string file = "flows/sub0" + std::to_string(subj) + "_" + clip + ".png";
        img::save_png((dir / file).string(), im);
        csv += "casme2,casme2/sub0" + std::to_string(subj) + "," + clip + "," + std::to_string(c) + "," + file + "\n";
      }
  std::ofstream(dir / "manifest.csv") << csv;
  std::ofstream(dir / "manifest.json") << "{\n  \"source\": \"" << source << "\",\n  \"signature\": \"hand-made\",\n"
                                       << "  \"class_names\": [\"negative\", \"positive\", \"surprise\"]\n}\n";
}

}  // namespace ahmsa::testing
