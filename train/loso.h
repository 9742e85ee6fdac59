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
};

struct RunResult {
  int folds = 0, trained = 0, resumed = 0, failed = 0;
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

// "tensor hash" of the dataset: FNV-1a over subjects, clips, labels and pixel values (resume guard).
std::string dataset_fingerprint(const data::FlowDataset& ds);

}  // namespace ahmsa::train
