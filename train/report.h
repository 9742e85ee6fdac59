// What a run writes for people and for other tools: config.json (the run's record and resume
// signature), metrics as JSON (pooled, per dataset, per class, fold-averaged variants labelled as
// such), the MEGC challenge log, two pictures drawn by hand (confusion-matrix heat map with counts;
// loss and UF1 curves; text by stb_easy_font), the same and per-dataset / per-class bars as SVG
// (train/report_html.cpp), and report.html gathering them. write_report assembles them from the
// fold folders on disk.
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

// ---- vector plots and the HTML page (train/report_html.cpp) ----
std::string html_escape(const std::string& s);  // & < > " as entities
std::string confusion_svg(const Confusion& m, const std::vector<std::string>& class_names, const std::string& title);
std::string curves_svg(const std::vector<Panel>& panels, const std::string& x_label);
// Grouped bars on a 0..1 axis: one group per label, one bar per series (NaN: "n/a").
struct BarGroup {
  std::string label;
  std::vector<double> values;
};
std::string bars_svg(const std::string& title, const std::vector<std::string>& series, const std::vector<BarGroup>& groups);
struct FoldRow {
  int fold = 0;  // 1-based
  std::string name;
  int64_t clips = 0;
  bool failed = false;
  std::string failure;
  int selected_epoch = 0;
  Scores scores;
};
// What report.html shows: metrics.json and config.json as written, the SVG plots and the folds.
struct ReportPage {
  std::string title;
  nlohmann::ordered_json metrics, config;  // config: null when the run folder has no config.json
  std::vector<std::pair<std::string, std::string>> svgs;  // file stem -> SVG document, in page order
  std::vector<FoldRow> folds;
};
std::string report_html(const ReportPage& p);
// Writes <stem>.svg for every plot and report.html (every plot inline: no external file) in out_dir;
// returns the paths written.
std::vector<std::string> write_report_pages(const std::string& out_dir, const ReportPage& p);

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
  std::string metrics_json, megc_log, confusion_png, curves_png, predictions_csv, summary_txt, report_html;
};
// Writes metrics.json, megc_log.txt, predictions.csv, confusion.png, curves.png, summary.txt, the
// SVG plots (confusion, curves, datasets, classes) and report.html in `out` from its fold folders
// (every fold done) and its config.json.
ReportResult write_report(const data::FlowDataset& ds, const std::vector<Fold>& folds, const std::string& out,
                          const ReportSettings& r);

}  // namespace ahmsa::train
