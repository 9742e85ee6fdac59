// ahmsa: micro-expression recognition from pixels to UF1. `ahmsa --help` lists the subcommands.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "model/ahmsa_net.h"
#include "tensor/device.h"
#include "tensor/parallel.h"
#include "tools/command.h"
#include "train/data/run_folder.h"

namespace ahmsa::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

std::vector<Bench>& bench_registry() {
  static std::vector<Bench> benches;
  return benches;
}

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = 3;
  for (const auto& n : names) {
    size_t d = edit_distance(word, n);
    if (d > 0 && n.size() > word.size() && n.compare(0, word.size(), word) == 0 && word.size() >= 3) d = std::min<size_t>(d, 1);
    if (d < best_d) best_d = d, best = n;
  }
  return best;
}

// Every long option name of `app` and its subcommands, without the dashes.
static void option_names(const CLI::App& app, std::vector<std::string>& out) {
  for (const CLI::Option* o : app.get_options())
    for (const auto& n : o->get_lnames()) out.push_back(n);
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) option_names(*s, out);
}

static std::string command_name(const CLI::App& app) {
  std::string n = app.get_name();
  for (const CLI::App* p = app.get_parent(); p; p = p->get_parent()) n = p->get_name() + " " + n;
  return n;
}

[[noreturn]] static void usage_error(const CLI::App& app, const std::string& msg) {
  std::fprintf(stderr, "%s: error: %s\n(%s --help lists the options)\n", command_name(app).c_str(), msg.c_str(), command_name(app).c_str());
  throw Exit{2};
}

static void collect_extras(CLI::App& app) {
  app.allow_extras(true);
  for (CLI::App* s : app.get_subcommands([](CLI::App*) { return true; })) collect_extras(*s);
}

void parse(CLI::App& app, const Args& args) {
  collect_extras(app);
  std::vector<std::string> names;
  option_names(app, names);
  // A misspelt long option is named before CLI11 parses: otherwise its value could be taken for a
  // positional argument, or a required option reported missing, and the real mistake hidden.
  for (const auto& x : args) {
    if (x == "--") break;
    if (x.size() < 3 || x.compare(0, 2, "--") != 0) continue;
    const std::string word = x.substr(2, x.find('=') == std::string::npos ? std::string::npos : x.find('=') - 2);
    if (std::find(names.begin(), names.end(), word) != names.end()) continue;
    const std::string near = closest(word, names);
    usage_error(app, "unknown option --" + word + (near.empty() ? "" : " (did you mean --" + near + "?)"));
  }
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    throw Exit{0};
  } catch (const CLI::ConfigError& e) {
    // CLI11 says "INI was not able to parse NAME" for a key of the run file that is no option.
    const std::string msg = e.what(), lead = "INI was not able to parse ";
    if (msg.rfind(lead, 0) == 0) {
      const std::string key = msg.substr(lead.size()), near = closest(key, names);
      usage_error(app, "run file: unknown setting '" + key + "'" + (near.empty() ? "" : " (did you mean '" + near + "'?)"));
    }
    usage_error(app, msg);
  } catch (const CLI::FileError& e) {
    const std::string msg = e.what();
    usage_error(app, msg + (msg.find('=') != std::string::npos
                                ? " (--config names a run file; the model architecture KEY=V;... is --model-config)"
                                : ""));
  } catch (const CLI::ParseError& e) {
    usage_error(app, e.what());
  }
  // Unknown options were collected (allow_extras) so that each can be named with a suggestion.
  const std::vector<std::string> extra = app.remaining(true);
  if (!extra.empty()) {
    std::string msg;
    for (const auto& x : extra) {
      if (x.size() > 1 && x[0] == '-') {
        std::string word = x.substr(x.find_first_not_of('-'));
        word = word.substr(0, word.find('='));
        const std::string near = closest(word, names);
        msg = "unknown option " + x + (near.empty() ? "" : " (did you mean --" + near + "?)");
        break;
      }
      if (msg.empty()) msg = "unexpected argument '" + x + "'";
    }
    usage_error(app, msg);
  }
}

CLI::Validator one_of(const std::vector<std::string>& names) {
  return CLI::Validator(
      [names](std::string& s) -> std::string {
        if (std::find(names.begin(), names.end(), s) != names.end()) return "";
        std::string list;
        for (size_t i = 0; i < names.size(); ++i) list += (i ? ", " : "") + names[i];
        return "'" + s + "' is not one of " + list;
      },
      "");
}

CLI::Option* add_threads_option(CLI::App& app, int& threads) {
  return app.add_option("--threads", threads, "CPU threads (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
}

void apply_threads(int threads) { set_num_threads(threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()))); }

static const Choices<DeviceChoice> kDevices = {{"cpu", DeviceChoice::Cpu}, {"cuda", DeviceChoice::Cuda}, {"auto", DeviceChoice::Auto}};

CLI::Option* add_device_option(CLI::App& app, DeviceChoice& choice) {
  return add_choice(app, "--device", choice, kDevices, "where the model runs: cpu, cuda, or auto (cuda when a usable GPU is there)");
}

const char* device_choice_name(DeviceChoice choice) {
  for (auto& [n, v] : kDevices)
    if (v == choice) return n;
  return "?";
}

Device resolve_device(DeviceChoice choice) {
  std::string why;
  const bool gpu = cuda_available(&why);
  if (choice == DeviceChoice::Cpu) {
    std::fprintf(stderr, "device: cpu\n");
    return Device::CPU;
  }
  if (choice == DeviceChoice::Auto) {
    if (gpu) {
      std::fprintf(stderr, "device: cuda (auto: a usable GPU was found)\n");
      return Device::CUDA;
    }
    std::fprintf(stderr, "device: cpu (auto: no usable CUDA GPU: %s)\n", why.c_str());
    return Device::CPU;
  }
  if (!gpu)
    throw UsageError("--device cuda: no usable CUDA GPU: " + why + "; use --device cpu or --device auto");
  std::fprintf(stderr, "device: cuda\n");
  return Device::CUDA;
}

CLI::Option* add_model_config_option(CLI::App& app, std::string& text, const std::string& help) {
  return app.add_option("--model-config", text, help)->type_name("KEY=V;...")->check(CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          AhmsaConfig::parse(s).validate();
          return "";
        } catch (const std::exception& e) {
          return e.what();
        }
      },
      ""));
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
      } catch (const ahmsa::cli::Exit& e) {
        return e.status;
      } catch (const ahmsa::cli::UsageError& e) {
        std::fprintf(stderr, "ahmsa %s: error: %s\n", name.c_str(), e.what());
        return 2;
      } catch (const ahmsa::data::Interrupted& e) {
        std::fprintf(stderr, "ahmsa %s: %s\n", name.c_str(), e.what());
        return e.exit_status();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "ahmsa %s: error: %s\n", name.c_str(), e.what());
        return 1;
      }
    }
  std::vector<std::string> names;
  for (auto& c : ahmsa::cli::registry()) names.push_back(c.name);
  const std::string near = ahmsa::cli::closest(name, names);
  std::fprintf(stderr, "ahmsa: unknown command '%s'%s\n\n", name.c_str(), near.empty() ? "" : (" (did you mean " + near + "?)").c_str());
  usage();
  return 2;
}
