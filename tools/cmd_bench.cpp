// `ahmsa bench ops|model|flow|all`: benchmarks live beside their subject (tools/bench_*.cpp)
// and register themselves with AHMSA_BENCH, declaring their options on their own subcommand.
#include <cstdio>

#include "tools/command.h"

namespace ahmsa::cli {

static int bench_main(const Args& args) {
  CLI::App app{"Benchmarks; `ahmsa bench all` runs every one with its defaults.", "ahmsa bench"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs;
  for (auto& b : bench_registry()) {
    CLI::App* sub = app.add_subcommand(b.name, b.summary);
    runs.emplace_back(sub, b.setup(*sub));
  }
  CLI::App* all = app.add_subcommand("all", "every benchmark above, with its defaults");
  parse(app, args);
  if (all->parsed()) {
    int rc = 0;
    for (auto& [sub, run] : runs) {
      std::printf("== bench %s ==\n", sub->get_name().c_str());
      rc |= run();
    }
    return rc;
  }
  for (auto& [sub, run] : runs)
    if (sub->parsed()) return run();
  return 2;
}

AHMSA_COMMAND("bench", "time ops, the model and optical flow (ahmsa bench --help)", bench_main);

}  // namespace ahmsa::cli
