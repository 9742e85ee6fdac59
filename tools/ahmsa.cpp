// ahmsa: micro-expression recognition from pixels to UF1. `ahmsa --help` lists the subcommands.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "tools/command.h"

namespace ahmsa::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

bool has_flag(const Args& a, const std::string& flag) { return std::find(a.begin(), a.end(), flag) != a.end(); }

std::string option(const Args& a, const std::string& flag, const std::string& fallback) {
  auto it = std::find(a.begin(), a.end(), flag);
  if (it == a.end()) return fallback;
  if (it + 1 == a.end()) throw std::invalid_argument("option " + flag + " needs a value");
  return *(it + 1);
}

// Parses all of `text` with `parse` (a std::sto* function), or throws naming the flag.
template <class T, class F>
static T parse_number(const std::string& flag, const std::string& text, F parse) {
  size_t used = 0;
  try {
    T v = T(parse(text, &used));
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("option " + flag + " needs a number, got '" + text + "'");
}

int option_int(const Args& a, const std::string& flag, int fallback) {
  std::string v = option(a, flag);
  return v.empty() ? fallback : parse_number<int>(flag, v, [](const std::string& t, size_t* n) { return std::stoi(t, n); });
}

uint64_t option_u64(const Args& a, const std::string& flag, uint64_t fallback) {
  std::string v = option(a, flag);
  return v.empty() ? fallback
                   : parse_number<uint64_t>(flag, v, [](const std::string& t, size_t* n) { return std::stoull(t, n); });
}

double option_double(const Args& a, const std::string& flag, double fallback) {
  std::string v = option(a, flag);
  return v.empty() ? fallback : parse_number<double>(flag, v, [](const std::string& t, size_t* n) { return std::stod(t, n); });
}

Args positionals(const Args& a, const std::vector<std::string>& valued) {
  Args out;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() > 1 && a[i][0] == '-' && !(a[i][1] >= '0' && a[i][1] <= '9')) {
      if (std::find(valued.begin(), valued.end(), a[i]) != valued.end()) ++i;
      continue;
    }
    out.push_back(a[i]);
  }
  return out;
}

}  // namespace ahmsa::cli

static void usage() {
  auto cmds = ahmsa::cli::registry();
  std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::printf("usage: ahmsa <command> [options]   (ahmsa <command> --help for its options)\n\ncommands:\n");
  for (auto& c : cmds) std::printf("  %-10s %s\n", c.name.c_str(), c.summary.c_str());
}

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    usage();
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
  ahmsa::cli::Args args(argv + 2, argv + argc);
  for (auto& c : ahmsa::cli::registry())
    if (c.name == name) {
      try {
        return c.run(args);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "ahmsa %s: error: %s\n", name.c_str(), e.what());
        return 1;
      }
    }
  std::fprintf(stderr, "ahmsa: unknown command '%s'\n\n", name.c_str());
  usage();
  return 2;
}
