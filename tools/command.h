// The `ahmsa` command line is a set of subcommands; each tools/cmd_*.cpp registers its own
// with a static AHMSA_COMMAND(...) and main() dispatches on the first argument.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ahmsa::cli {

using Args = std::vector<std::string>;  // the arguments after the subcommand's name

struct Command {
  std::string name;     // e.g. "flow", "train", "bench"
  std::string summary;  // one line for `ahmsa --help`
  std::function<int(const Args&)> run;
};

std::vector<Command>& registry();

struct Registrar {
  Registrar(Command c) { registry().push_back(std::move(c)); }
};

// Small helpers shared by the subcommands' argument parsing.
bool has_flag(const Args& a, const std::string& flag);
// Value after `flag` (e.g. "--size" "28"), or `fallback` when absent; throws when the value is missing.
std::string option(const Args& a, const std::string& flag, const std::string& fallback = "");
// Numeric option values, parsed whole: a missing or malformed number ("3x", "abc") throws an
// error that names the flag and the text given.
int option_int(const Args& a, const std::string& flag, int fallback);
uint64_t option_u64(const Args& a, const std::string& flag, uint64_t fallback);
double option_double(const Args& a, const std::string& flag, double fallback);
// Arguments that are neither flags nor flag values; `valued` lists the flags that take a value.
Args positionals(const Args& a, const std::vector<std::string>& valued);

// `ahmsa bench <name>` runs one registered benchmark; `ahmsa bench all` runs them all.
struct Bench {
  std::string name;     // "ops", "model", "flow", ...
  std::string summary;
  std::function<int(const Args&)> run;
};
std::vector<Bench>& bench_registry();
struct BenchRegistrar {
  BenchRegistrar(Bench b) { bench_registry().push_back(std::move(b)); }
};

}  // namespace ahmsa::cli

#define AHMSA_CONCAT2(a, b) a##b
#define AHMSA_CONCAT(a, b) AHMSA_CONCAT2(a, b)
#define AHMSA_COMMAND(name, summary, fn) \
  static ::ahmsa::cli::Registrar AHMSA_CONCAT(ahmsa_cmd_, __LINE__)({name, summary, fn})
#define AHMSA_BENCH(name, summary, fn) \
  static ::ahmsa::cli::BenchRegistrar AHMSA_CONCAT(ahmsa_bench_, __LINE__)({name, summary, fn})
