// What a run writes for people and for other tools: metrics as JSON (pooled, per dataset, per class,
// fold-averaged variants labelled as such), the MEGC challenge log, and two pictures drawn by hand
// (confusion-matrix heat map with counts; loss and UF1 curves), text by stb_easy_font.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "train/data/flow_dataset.h"
#include "train/data/table.h"
#include "train/metrics.h"

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
// Numbers printed with fixed precision so that equal results give byte-identical files.
std::string metrics_block_json(const MetricsBlock& m, const std::vector<std::string>& class_names, int indent);
std::string scores_json(const Scores& s, const Confusion& c, const std::vector<std::string>& class_names, int indent);
using data::json_escape;  // train/data/table.h
std::string json_number(double v);  // "%.6f", or null for non-finite

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

}  // namespace ahmsa::train
