// `ahmsa report RUN`: the report of a training run (metrics.json, the MEGC log, predictions, plots,
// summary) built from its fold folders, with the same code the train process that finishes the last
// fold runs (train::report_run), so it is the way to make or remake the report of a run trained by
// many processes (a Slurm job array, GNU parallel): docs/TRAINING.md section 9. The settings and
// the data's location come from RUN/config.json; a fold not done yet is named with its state (not
// started, being trained by HOST pid N, abandoned by a process that is gone, not trusted).
#include <cstdio>
#include <filesystem>

#include "tools/command.h"
#include "train/data/flow_dataset.h"
#include "train/data/run_folder.h"
#include "train/loso.h"

namespace {

using namespace ahmsa;

int cmd_report(const cli::Args& a) {
  CLI::App app{"Builds the report of a training run from its fold folders (what the train process that finishes the last fold "
               "does); names the folds that are not done or failed (docs/TRAINING.md section 9)",
               "ahmsa report"};
  std::string run, cache, folder, csv;
  app.add_option("RUN", run, "the run folder (ahmsa train --out)")->required()->type_name("DIR");
  app.add_option("--cache", cache, "the flow cache, when it is no longer where config.json says")->group("input")->type_name("DIR");
  app.add_option("--flow-folder", folder, "the flow folder, when it is no longer where config.json says")->group("input")->type_name("DIR");
  app.add_option("--csv", csv, "with --flow-folder: the composite CSV")->group("input")->type_name("FILE");
  cli::parse(app, a);
  if (!cache.empty() && !folder.empty()) throw cli::UsageError("give at most one of --cache DIR or --flow-folder DIR --csv FILE");
  if (folder.empty() != csv.empty()) throw cli::UsageError("--flow-folder and --csv go together");

  const std::filesystem::path cfg = std::filesystem::path(run) / "config.json";
  if (!std::filesystem::exists(cfg)) throw std::runtime_error("'" + run + "' holds no run: there is no " + cfg.string());
  const nlohmann::ordered_json rec = data::read_json_file(cfg);
  if (!rec.contains("settings")) throw std::runtime_error("'" + cfg.string() + "' records no settings");
  train::RunSettings s;
  try {
    s = train::settings_from_json(rec["settings"]);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error("'" + cfg.string() + "': " + e.what());
  }
  if (cache.empty() && folder.empty()) {
    const nlohmann::ordered_json src = rec.value("source", nlohmann::ordered_json());
    if (src.contains("cache")) cache = src["cache"].get<std::string>();
    else if (src.contains("flow_folder")) folder = src["flow_folder"].get<std::string>(), csv = src.value("csv", std::string());
    else throw cli::UsageError("'" + cfg.string() + "' does not record where the data is (an older run): give --cache DIR or --flow-folder DIR --csv FILE");
  }
  data::FlowDataset ds = cache.empty() ? data::load_flow_folder(folder, csv) : data::load_flow_cache(cache);
  std::fprintf(stderr, "data: %s\n", ds.source.c_str());

  train::RunReport r = train::report_run(ds, s, run);
  int done = 0;
  std::string not_done, failed;
  for (const auto& f : r.folds) {
    const std::string line = "\n  fold " + std::to_string(f.fold) + " (" + f.name + "): " + train::state_name(f.kind) +
                             (f.detail.empty() ? "" : ": " + f.detail);
    if (f.kind == train::FoldState::Done || f.kind == train::FoldState::Failed) ++done;
    if (f.kind == train::FoldState::Failed) failed += line;
    else if (f.kind != train::FoldState::Done) not_done += line;
  }
  if (!r.complete)
    throw std::runtime_error("the report needs every fold: " + std::to_string(done) + " of " + std::to_string(r.folds.size()) +
                             " are done in " + run + "; not done:" + not_done +
                             "\n(ahmsa train with the same options trains them; it takes over a fold abandoned on this host at once, one "
                             "from another host after --claim-timeout or with --reclaim)");
  std::fputs(data::read_file(r.report.summary_txt).c_str(), stdout);
  if (!failed.empty()) std::printf("failed folds (their clips are not scored):%s\n", failed.c_str());
  std::printf("report: %s\n  metrics:   %s\n  MEGC log:  %s\n  confusion: %s\n  curves:    %s\n", run.c_str(), r.report.metrics_json.c_str(),
              r.report.megc_log.c_str(), r.report.confusion_png.c_str(), r.report.curves_png.c_str());
  return r.report.failed > 0 ? 3 : 0;
}

}  // namespace

AHMSA_COMMAND("report", "the report of a training run from its fold folders (after a run made by many processes)", cmd_report);
