// A whole evaluation run: the folds of a subject-independent protocol (LOSO by default), one model
// trained from scratch per fold, and the report over the pooled predictions.
//
// Resume: every fold writes fold_NN/{log.csv, predictions.csv, model.safetensors} and then, last and
// atomically, fold_NN/done.json with their sizes and CRC-32s (train/data/run_folder.h). A rerun with
// the same settings skips folds whose done.json vouches for their files and trains the rest (a fold
// whose files do not match is trained again, with a warning). Each fold's seed is derived from the
// run seed and the fold index only, and the report (train/report.h) is always computed from the
// files on disk, so an interrupted and resumed run writes the same metrics.json as an uninterrupted
// one (same thread count; see docs/TRAINING.md).
//
// Several processes (one machine or many sharing the folder, e.g. a Slurm job array) may run on one
// folder at once: each fold is claimed (fold_NN/claim.json, data::FoldClaim) before it is trained, so
// no fold is trained twice; a fold claimed by a live process is left to it, one claimed by a dead
// process is taken over. The process that finds every fold done writes the report (report_run),
// which is also what `ahmsa report` calls.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/data/flow_dataset.h"
#include "train/metrics.h"
#include "train/report.h"
#include "train/settings.h"
#include "train/splits.h"
#include "train/trainer.h"

namespace ahmsa::train {

struct RunOptions {
  RunSettings settings;         // everything that is a setting (train/settings.h)
  std::string out_dir;
  bool progress = true;
  Device device = Device::CPU;  // where the folds train (recorded in config.json, not part of the signature)
  std::string input;            // how the data was given (for config.json)
  std::string command_line;     // for config.json
  nlohmann::ordered_json source;  // for config.json: how `ahmsa report` loads the data again ({"cache": DIR}, ...)
};

struct RunResult {
  int folds = 0, trained = 0, resumed = 0, failed = 0;
  int held = 0;                 // folds this process wanted but left to other processes (claimed by them)
  bool complete = false;        // every fold has a valid done.json: the report was written
  ReportResult report;          // when complete
  double seconds = 0;
};

// The folds of the chosen protocol (validation subjects drawn when val_fraction > 0).
std::vector<Fold> make_folds(const data::FlowDataset& ds, const ProtocolSettings& p);
// Seed of fold `index` (0-based): splitmix64 of the run seed and the index.
uint64_t fold_seed(uint64_t run_seed, int index);

// Validates everything (settings, data, fold numbers) before the first byte is written to out_dir.
// A SIGINT / SIGTERM abandons the fold in progress and throws data::Interrupted.
RunResult run_training(const data::FlowDataset& ds, const RunOptions& o);

// One fold of a run, as its folder says.
struct FoldState {
  enum Kind { Done, Failed, NotStarted, Working, Abandoned, Untrusted };
  int fold = 0;  // 1-based
  std::string name;
  Kind kind = NotStarted;
  std::string detail;  // the failure, the claim (who, since when, heartbeat), why done.json is not trusted
};
const char* state_name(FoldState::Kind k);  // "done", "failed", "not started", "being trained", "abandoned", "not trusted"
std::vector<FoldState> fold_states(const std::string& out_dir, const std::vector<Fold>& folds, const ClaimSettings& claims);

struct RunReport {
  bool complete = false;          // every fold done (ok or failed): the report was written
  std::vector<FoldState> folds;
  ReportResult report;            // when complete
};
// The report of the run in out_dir (metrics.json, MEGC log, predictions, plots, summary), computed
// from the fold folders when every fold is done, else nothing is written and `folds` says which are
// not. Refuses a folder whose config.json was made with other settings or data (the resume guard).
// The same fold files give the same bytes whichever process writes them, and two processes writing
// at once each rename complete files: `ahmsa report` and the train process that finishes the last
// fold both call this.
RunReport report_run(const data::FlowDataset& ds, const RunSettings& s, const std::string& out_dir);

// "tensor hash" of the dataset: FNV-1a over subjects, clips, labels and pixel values (resume guard).
std::string dataset_fingerprint(const data::FlowDataset& ds);

}  // namespace ahmsa::train
