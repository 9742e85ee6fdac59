// The `ahmsa` command line is a set of subcommands; each tools/cmd_*.cpp registers its own with a
// static AHMSA_COMMAND(...) and main() dispatches on the first argument. Every subcommand parses its
// arguments with CLI11 (typed options, choices checked by the parser, unknown options are errors
// with a suggestion) through cli::parse; the options several commands share are declared once here.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "tensor/tensor.h"

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

// Thrown to end the command with `status` after a message was printed (help: 0, usage error: 2).
struct Exit {
  int status;
};
// An error in the arguments found after parsing (two options that exclude each other, a value that
// needs another): main prints it like a parse error and exits with status 2.
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Parses `args` into `app`'s options. --help prints the help and throws Exit{0}; an unknown or
// misspelt option (on the command line or in a run file), a missing value, a value of the wrong
// type or outside its choices prints the error (with the closest option name when there is one) and
// throws Exit{2}. Nothing has been written when it throws.
void parse(CLI::App& app, const Args& args);

// The closest of `names` to `word` (edit distance at most 2, or a prefix), or "" when none is close.
std::string closest(const std::string& word, const std::vector<std::string>& names);

// ---- choices: an option whose value is one of a fixed set of names -----------------------
// The check for a string option: the value must be one of `names` (the error names them).
CLI::Validator one_of(const std::vector<std::string>& names);

template <class E>
using Choices = std::vector<std::pair<const char*, E>>;
// An option setting the enum `target` from its name; the current value of `target` is the default.
template <class E>
CLI::Option* add_choice(CLI::App& app, const std::string& flag, E& target, const Choices<E>& choices, const std::string& help) {
  std::vector<std::string> names;
  std::string shown, def;
  for (auto& [n, v] : choices) {
    names.push_back(n);
    shown += (shown.empty() ? "" : "|") + std::string(n);
    if (v == target) def = n;
  }
  CLI::Option* o = app.add_option_function<std::string>(
      flag,
      [&target, choices](const std::string& s) {
        for (auto& [n, v] : choices)
          if (s == n) target = v;
      },
      help);
  o->check(one_of(names))->type_name(shown)->default_str(def);
  return o;
}

// ---- options shared by several commands, declared once ------------------------------------
// --threads N (0 = all cores); apply_threads sets it.
CLI::Option* add_threads_option(CLI::App& app, int& threads);
void apply_threads(int threads);

// --device cpu|cuda|auto (train, eval, predict, model forward, bench model).
enum class DeviceChoice { Cpu, Cuda, Auto };
CLI::Option* add_device_option(CLI::App& app, DeviceChoice& choice);
const char* device_choice_name(DeviceChoice choice);
// auto: CUDA when a usable GPU is there and the model can run on it, else the CPU. Prints which on
// stderr. --device cuda without a usable GPU is a UsageError saying why.
Device resolve_device(DeviceChoice choice);

// --model-config KEY=V;... (the architecture; keys as in AhmsaConfig::to_string). Checked by the
// parser: a bad key or value is a usage error.
CLI::Option* add_model_config_option(CLI::App& app, std::string& text, const std::string& help);

// `ahmsa bench <name>` runs one registered benchmark; `ahmsa bench all` runs them all with their
// defaults. setup declares the benchmark's options on its CLI11 subcommand and returns the runner.
struct Bench {
  std::string name;  // "ops", "model", "flow", ...
  std::string summary;
  std::function<std::function<int()>(CLI::App&)> setup;
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
