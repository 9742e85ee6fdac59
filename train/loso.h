// A whole evaluation run: the folds of a subject-independent protocol (LOSO by default), one model
// trained from scratch per fold, and the report over the pooled predictions.
//
// Resume: every fold writes fold_NN/{log.csv, predictions.csv, model.safetensors} and then, last and
// atomically, fold_NN/done.json. A rerun with the same settings skips folds that have done.json and
// trains the rest. Each fold's seed is derived from the run seed and the fold index only, and the
// report is always computed from the files on disk, so an interrupted and resumed run writes the
// same metrics.json as an uninterrupted one (same thread count; see docs/TRAINING.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/data/flow_dataset.h"
#include "train/metrics.h"
#include "train/splits.h"
#include "train/trainer.h"

namespace ahmsa::train {

struct RunOptions {
  TrainOptions train;
  std::string out_dir;
  std::string split = "loso";   // loso | kfold | split
  int kfold = 5;                // kfold
  double test_fraction = 0.2;   // split
  double val_fraction = 0.0;    // > 0: validation subjects drawn from each fold's training subjects
  uint64_t seed = 1;
  std::vector<int> only_folds;  // 1-based fold numbers to train in this invocation (empty: all)
  bool report_best_test = false;  // add the test-selected ("best test epoch") score, labelled as such
  bool progress = true;
  std::string input;            // how the data was given (for config.json)
  std::string command_line;     // for config.json
};

struct RunResult {
  int folds = 0, trained = 0, resumed = 0, failed = 0;
  bool complete = false;        // every fold has done.json: the report was written
  Scores pooled;
  std::string metrics_json, megc_log, confusion_png, curves_png, predictions_csv, summary_txt;
  double seconds = 0;
};

// The folds of the chosen protocol (validation subjects drawn when val_fraction > 0).
std::vector<Fold> make_folds(const data::FlowDataset& ds, const RunOptions& o);
// Seed of fold `index` (0-based): splitmix64 of the run seed and the index.
uint64_t fold_seed(uint64_t run_seed, int index);

RunResult run_training(const data::FlowDataset& ds, const RunOptions& o);

// Writes metrics.json, megc_log.txt, predictions.csv, confusion.png, curves.png and summary.txt from
// the fold folders under out_dir (all folds must be done). Used by run_training.
RunResult write_report(const data::FlowDataset& ds, const std::vector<Fold>& folds, const RunOptions& o);

// "tensor hash" of the dataset: FNV-1a over subjects, clips, labels and pixel values (resume guard).
std::string dataset_fingerprint(const data::FlowDataset& ds);

}  // namespace ahmsa::train
