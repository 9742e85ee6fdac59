// `ahmsa bench ops|model|flow|all`: benchmarks live beside their subject (tools/bench_*.cpp)
// and register themselves with AHMSA_BENCH.
#include <cstdio>

#include "tools/command.h"

namespace ahmsa::cli {

std::vector<Bench>& bench_registry() {
  static std::vector<Bench> benches;
  return benches;
}

static int bench_main(const Args& args) {
  auto& benches = bench_registry();
  if (args.empty() || args[0] == "--help") {
    std::printf("usage: ahmsa bench <name>|all [options]\n\nbenchmarks:\n");
    for (auto& b : benches) std::printf("  %-8s %s\n", b.name.c_str(), b.summary.c_str());
    return args.empty() ? 2 : 0;
  }
  Args rest(args.begin() + 1, args.end());
  if (args[0] == "all") {
    int rc = 0;
    for (auto& b : benches) {
      std::printf("== bench %s ==\n", b.name.c_str());
      rc |= b.run(rest);
    }
    return rc;
  }
  for (auto& b : benches)
    if (b.name == args[0]) return b.run(rest);
  std::fprintf(stderr, "ahmsa bench: unknown benchmark '%s'\n", args[0].c_str());
  return 2;
}

AHMSA_COMMAND("bench", "time ops, the model and optical flow (ahmsa bench --help)", bench_main);

}  // namespace ahmsa::cli
