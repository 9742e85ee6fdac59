// `ahmsa train`: subject-independent evaluation of AHMSA-Net on a flow cache (LOSO by default), with a
// resumable output folder and a report. Protocol, defaults and outputs: docs/TRAINING.md.
//
// The training settings are not declared here: each is bound to its option by walking the one
// declaration in train/settings.h (BindSettings below); this file adds the input and invocation
// options (data, --out, --threads, --device, --quiet, the run files).
#include <cstdio>
#include <deque>
#include <filesystem>
#include <type_traits>

#include "tensor/parallel.h"
#include "tools/command.h"
#include "train/data/flow_dataset.h"
#include "train/data/run_folder.h"
#include "train/loso.h"

namespace {

using namespace ahmsa;

// Binds each declared setting to a CLI11 option: enums as choices, bools as --name / --no-name flags,
// numbers with their range checked by the parser, the model config checked by AhmsaConfig::parse.
struct BindSettings {
  CLI::App& app;
  std::string group;
  std::deque<std::string> text;  // storage of the options parsed from text after the parse
  std::vector<std::function<void()>> after_parse;

  void section(const char* title) { group = title; }

  template <class T>
  void operator()(T& member, const char* name, const T& def, const char* help, train::Role, train::Range range = {}) {
    const std::string flag = std::string("--") + name;
    CLI::Option* o = nullptr;
    if constexpr (std::is_enum_v<T>) {
      o = cli::add_choice(app, flag, member, train::choices(T{}), help);
    } else if constexpr (std::is_same_v<T, bool>) {
      o = app.add_flag(def ? flag + ",!--no-" + name : flag, member, help);
      if (def) o->default_str("true");
    } else if constexpr (std::is_same_v<T, AhmsaConfig>) {
      std::string& s = text.emplace_back();
      o = cli::add_model_config_option(app, s, help)->default_str(member.to_string());
      after_parse.push_back([&member, &s] {
        if (!s.empty()) member = AhmsaConfig::parse(s);
      });
    } else if constexpr (std::is_same_v<T, std::vector<int>>) {
      o = app.add_option(flag, member, help)->delimiter(',')->type_name("N,N,...");
    } else {
      o = app.add_option(flag, member, help)->capture_default_str();
      if (!range.any()) {
        if constexpr (std::is_integral_v<T>) o->check(CLI::Range(T(range.lo), T(range.hi)));
        else o->check(CLI::Range(range.lo, range.hi));
      }
    }
    o->group(group);
  }
};

int cmd_train(const cli::Args& a) {
  CLI::App app{"LOSO / k-fold training and evaluation of AHMSA-Net on a flow cache, with a resumable --out folder and a report "
               "(docs/TRAINING.md)",
               "ahmsa train"};
  app.set_config("--config", "", "run file (TOML or INI, as --write-config writes it); options also given on the command line win")
      ->type_name("FILE")
      ->group("run file");
  app.allow_config_extras(CLI::config_extras_mode::error);
  std::string cache, folder, csv, out, write_config;
  int threads = 0;
  bool quiet = false;
  cli::DeviceChoice device = cli::DeviceChoice::Auto;
  app.add_option("--cache", cache, "flow cache written by `ahmsa prepare`")->group("input")->type_name("DIR");
  app.add_option("--flow-folder", folder, "pre-computed (u, v, os) 28x28 PNGs (flat or <subject>/{u_train,u_test}/<label>/)")
      ->group("input")
      ->type_name("DIR");
  app.add_option("--csv", csv, "with --flow-folder: the MEGC2019 composite CSV (db,subject,clip,label)")->group("input")->type_name("FILE");
  app.add_option("--out", out, "output folder (required); rerunning with the same settings resumes it")->group("input")->type_name("DIR");
  train::RunSettings s;
  BindSettings bind{app, {}, {}, {}};
  train::declare_settings(s, bind);
  cli::add_threads_option(app, threads)->group("other");
  cli::add_device_option(app, device)->group("other");
  app.add_flag("--quiet", quiet, "no progress bar or per-fold lines")->group("other");
  app.add_option("--write-config", write_config, "write these options to a run file (TOML) and exit without training")
      ->type_name("FILE")
      ->group("run file")
      ->configurable(false);
  cli::parse(app, a);
  for (auto& f : bind.after_parse) f();

  // Checks across options, before anything is read or written.
  if (out.empty() && write_config.empty()) throw cli::UsageError("--out DIR is required (ahmsa train --help)");
  if (cache.empty() == folder.empty()) throw cli::UsageError("give exactly one of --cache DIR or --flow-folder DIR --csv FILE");
  if (!folder.empty() && csv.empty()) throw cli::UsageError("--flow-folder needs --csv FILE (the composite CSV)");
  if (folder.empty() && !csv.empty()) throw cli::UsageError("--csv goes with --flow-folder (a flow cache has its own manifest)");
  try {
    train::resolve_settings(s, app.get_option("--val-fraction")->count() > 0);
    train::validate_settings(s);
  } catch (const std::invalid_argument& e) {
    throw cli::UsageError(e.what());
  }
  const Device dev = cli::resolve_device(device);

  if (!write_config.empty()) {
    auto str = [](const std::string& v) { return nlohmann::json(v).dump(); };
    std::vector<std::pair<std::string, std::string>> inputs;
    if (!cache.empty()) inputs.emplace_back("cache", str(cache));
    if (!folder.empty()) inputs.emplace_back("flow-folder", str(folder)), inputs.emplace_back("csv", str(csv));
    if (!out.empty()) inputs.emplace_back("out", str(out));
    inputs.emplace_back("threads", std::to_string(threads));
    inputs.emplace_back("device", str(cli::device_choice_name(device)));
    inputs.emplace_back("quiet", quiet ? "true" : "false");
    data::write_file_atomic(write_config, train::settings_toml(s, inputs));
    std::printf("train: wrote the run file %s; run it with: ahmsa train --config %s\n", write_config.c_str(), write_config.c_str());
    return 0;
  }

  cli::apply_threads(threads);
  train::RunOptions o;
  o.settings = s;
  o.out_dir = out;
  o.progress = !quiet;
  o.device = dev;
  o.command_line = "ahmsa train";
  for (auto& w : a) o.command_line += " " + w;
  data::FlowDataset ds = cache.empty() ? data::load_flow_folder(folder, csv) : data::load_flow_cache(cache);
  o.input = cache.empty() ? "flow folder " + folder + " with " + csv : "flow cache " + cache;
  auto abs = [](const std::string& p) { return std::filesystem::absolute(p).lexically_normal().string(); };
  o.source = cache.empty() ? nlohmann::ordered_json{{"flow_folder", abs(folder)}, {"csv", abs(csv)}} : nlohmann::ordered_json{{"cache", abs(cache)}};
  std::fprintf(stderr, "data: %s\n", ds.source.c_str());
  const auto& f = s.fold;
  std::fprintf(stderr, "model: %s; %d epochs, batch %d, %s lr %g (%s), weight decay %g; %d threads\n", f.model.to_string().c_str(),
               f.epochs, f.batch_size, train::name_of(f.optim.optimizer), double(f.optim.lr), train::name_of(f.optim.schedule),
               double(f.optim.weight_decay), num_threads());
  train::RunResult r = train::run_training(ds, o);
  if (!r.complete) {
    std::printf("train: %d folds trained now, %d done before%s; the report is written when all %d folds are done (rerun to continue; "
                "ahmsa report %s lists the folds not done)\n",
                r.trained, r.resumed, r.held ? (", " + std::to_string(r.held) + " left to other processes").c_str() : "", r.folds,
                o.out_dir.c_str());
    return 0;
  }
  std::fputs(data::read_file(r.report.summary_txt).c_str(), stdout);
  std::printf("report: %s\n  metrics:   %s\n  MEGC log:  %s\n  confusion: %s\n  curves:    %s\n  per fold:  %s/fold_NN/ (log.csv, predictions.csv, model.safetensors, done.json)\n",
              o.out_dir.c_str(), r.report.metrics_json.c_str(), r.report.megc_log.c_str(), r.report.confusion_png.c_str(),
              r.report.curves_png.c_str(), o.out_dir.c_str());
  std::printf("time: %.1f s (%d folds trained now, %d resumed or done by other processes)\n", r.seconds, r.trained, r.resumed);
  return r.failed > 0 ? 3 : 0;
}

}  // namespace

AHMSA_COMMAND("train", "LOSO / k-fold training and evaluation of AHMSA-Net on a flow cache, with a report", cmd_train);
