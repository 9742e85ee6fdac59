// What a run writes for people and for other tools: config.json (the run's record and resume
// signature), metrics as JSON (pooled, per dataset, per class, fold-averaged variants labelled as
// such), the MEGC challenge log, and two pictures drawn by hand (confusion-matrix heat map with
// counts; loss and UF1 curves), text by stb_easy_font. write_report assembles them from the fold
// folders on disk.
#pragma once
#include <map>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/data/flow_dataset.h"
#include "train/data/table.h"
#include "train/metrics.h"
#include "train/settings.h"
#include "train/splits.h"

namespace ahmsa::train {

// Pooled scores of a set of predictions and the same on each dataset's subset.
struct MetricsBlock {
  Confusion confusion;
  Scores pooled;
  std::map<std::string, Confusion> dataset_confusion;
  std::map<std::string, Scores> per_dataset;
};
MetricsBlock compute_metrics(const data::FlowDataset& ds, const std::vector<int>& samples, const std::vector<int>& preds,
                             int classes);

// JSON of one block: {"n", "accuracy", "uf1", "uar", "per_class": {...}, "confusion": [[..]], "per_dataset": {..}}.
// Scores are rounded to 6 decimals (json_number) so that equal results give byte-identical files.
nlohmann::ordered_json metrics_block_json(const MetricsBlock& m, const std::vector<std::string>& class_names);
nlohmann::ordered_json scores_json(const Scores& s, const Confusion& c, const std::vector<std::string>& class_names);
nlohmann::ordered_json json_number(double v);  // rounded to 6 decimals, or null for non-finite

// The chance levels of a label distribution: a uniform random guess has expected accuracy and UAR
// 1/K; its expected UF1 is close to 1/K for balanced classes. Majority-class guessing gives
// accuracy n_max/N, UAR 1/K and UF1 = (2 n_max / (N + n_max)) / K.
struct Chance {
  double uniform_accuracy, uniform_uar, majority_accuracy, majority_uf1;
};
Chance chance_levels(const std::vector<int>& labels, int classes);

// Heat map (row-normalised colour, counts and row percentages printed in the cells), rows = truth.
void write_confusion_png(const std::string& path, const Confusion& m, const std::vector<std::string>& class_names,
                         const std::string& title);

// One line series for a plot: y per x (x = epoch 1..n); NaN values are gaps.
struct Series {
  std::string label;
  std::vector<double> y;
  unsigned char rgb[3];
};
// Panels side by side, each with its own y range (lo, hi) and series.
struct Panel {
  std::string title;
  double y_lo = 0, y_hi = 1;  // y_hi <= y_lo: taken from the data
  std::vector<Series> series;
};
void write_curves_png(const std::string& path, const std::vector<Panel>& panels, const std::string& x_label);

// ---- the run's files ----
// config.json: the run's record; `signature` is what a resumed run must match (data::check_resume).
struct RunRecord {
  nlohmann::ordered_json signature;
  nlohmann::ordered_json settings;  // every setting, as declared (train/settings.h)
  std::string command, input, data, device;
  size_t clips = 0, folds = 0;
  nlohmann::ordered_json source;  // how to load the data again (`ahmsa report`): {"cache": DIR} or {"flow_folder", "csv"}
};
// Text cells of the CSV files a run writes (fold logs, predictions): a number printf-formatted, and a
// string quoted when it holds a comma, quote or newline.
std::string format_number(const char* printf_format, double v);
std::string csv_cell(const std::string& c);

std::string config_json(const RunRecord& r);

struct ReportResult {
  int failed = 0;  // folds marked failed
  Scores pooled;
  std::string metrics_json, megc_log, confusion_png, curves_png, predictions_csv, summary_txt;
};
// Writes metrics.json, megc_log.txt, predictions.csv, confusion.png, curves.png and summary.txt in
// `out` from its fold folders (every fold done).
ReportResult write_report(const data::FlowDataset& ds, const std::vector<Fold>& folds, const std::string& out,
                          const ReportSettings& r);

}  // namespace ahmsa::train
