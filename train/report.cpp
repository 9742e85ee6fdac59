#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

#include "ahmsa_version.h"
#include "flow/image.h"
#include "train/canvas.h"
#include "train/data/run_folder.h"
#include "train/data/table.h"
#include "train/trainer.h"  // EpochStats: the per-epoch rows of a fold's log

namespace ahmsa::train {

// ------------------------------------------------------------------ metrics

MetricsBlock compute_metrics(const data::FlowDataset& ds, const std::vector<int>& samples, const std::vector<int>& preds,
                             int classes) {
  MetricsBlock m;
  m.confusion = Confusion(classes);
  for (size_t i = 0; i < samples.size(); ++i) {
    const data::FlowSample& s = ds.samples.at(size_t(samples[i]));
    m.confusion.add(s.label, preds[i]);
    auto it = m.dataset_confusion.find(s.dataset);
    if (it == m.dataset_confusion.end()) it = m.dataset_confusion.emplace(s.dataset, Confusion(classes)).first;
    it->second.add(s.label, preds[i]);
  }
  m.pooled = score(m.confusion);
  for (auto& [name, c] : m.dataset_confusion) m.per_dataset[name] = score(c);
  return m;
}

nlohmann::ordered_json json_number(double v) {
  if (!std::isfinite(v)) return nullptr;
  return std::round(v * 1e6) / 1e6;
}

nlohmann::ordered_json scores_json(const Scores& s, const Confusion& c, const std::vector<std::string>& names) {
  nlohmann::ordered_json j;
  j["n"] = s.n;
  j["accuracy"] = json_number(s.accuracy);
  j["uf1"] = json_number(s.uf1);
  j["uar"] = json_number(s.uar);
  nlohmann::ordered_json per = nlohmann::ordered_json::object();
  for (size_t k = 0; k < s.per_class.size(); ++k) {
    const ClassScore& p = s.per_class[k];
    per[k < names.size() ? names[k] : std::to_string(k)] = {
        {"support", p.support},
        {"predicted", p.predicted},
        {"f1", p.in_uf1 ? json_number(p.f1) : nullptr},
        {"recall", p.in_uar ? json_number(p.recall) : nullptr},
        {"precision", p.predicted ? json_number(p.precision) : nullptr}};
  }
  j["per_class"] = per;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (int t = 0; t < c.classes; ++t) {
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (int p = 0; p < c.classes; ++p) row.push_back(c.at(t, p));
    rows.push_back(row);
  }
  j["confusion"] = rows;
  return j;
}

nlohmann::ordered_json metrics_block_json(const MetricsBlock& m, const std::vector<std::string>& names) {
  nlohmann::ordered_json j = scores_json(m.pooled, m.confusion, names);
  nlohmann::ordered_json per = nlohmann::ordered_json::object();
  for (auto& [name, s] : m.per_dataset) per[name] = scores_json(s, m.dataset_confusion.at(name), names);
  j["per_dataset"] = per;
  return j;
}

Chance chance_levels(const std::vector<int>& labels, int K) {
  Chance c{};
  std::vector<int64_t> n(size_t(K), 0);
  for (int y : labels) n[size_t(y)]++;
  const double N = double(labels.size());
  const double nmax = double(*std::max_element(n.begin(), n.end()));
  c.uniform_accuracy = c.uniform_uar = 1.0 / K;
  c.majority_accuracy = N > 0 ? nmax / N : 0;
  c.majority_uf1 = N > 0 ? (2 * nmax / (N + nmax)) / K : 0;
  return c;
}

// ------------------------------------------------------------------ drawing (train/canvas.h)

void write_confusion_png(const std::string& path, const Confusion& m, const std::vector<std::string>& names,
                         const std::string& title) {
  const int K = m.classes, cell = K <= 4 ? 110 : 70, left = 170, top = 80;
  Canvas cv(left + K * cell + 40, top + K * cell + 80);
  cv.text(10, 10, title, kBlack, 2);
  cv.text(left, top - 30, "predicted", kGrey, 2);
  cv.text(10, top - 30, "truth", kGrey, 2);
  for (int t = 0; t < K; ++t) {
    const int64_t row = m.support(t);
    std::string tn = t < (int)names.size() ? names[size_t(t)] : std::to_string(t);
    cv.text(10, top + t * cell + cell / 2 - 7, tn.substr(0, 12), kBlack, 2);
    for (int p = 0; p < K; ++p) {
      const double f = row ? double(m.at(t, p)) / double(row) : 0.0;
      // White -> dark blue with the row fraction (recall on the diagonal).
      unsigned char c[3] = {(unsigned char)(255 - 220 * f), (unsigned char)(255 - 170 * f), (unsigned char)(255 - 60 * f)};
      const int x0 = left + p * cell, y0 = top + t * cell;
      cv.rect(x0, y0, x0 + cell, y0 + cell, c);
      cv.frame(x0, y0, x0 + cell + 1, y0 + cell + 1, kGrey);
      const unsigned char* tc = f > 0.55 ? kWhite : kBlack;
      std::string count = std::to_string(m.at(t, p));
      char pct[32];
      std::snprintf(pct, sizeof pct, "%.0f%%", 100 * f);
      cv.text(x0 + (cell - Canvas::text_width(count, 3)) / 2, y0 + cell / 2 - 22, count, tc, 3);
      cv.text(x0 + (cell - Canvas::text_width(pct, 2)) / 2, y0 + cell / 2 + 12, pct, tc, 2);
    }
  }
  for (int p = 0; p < K; ++p) {
    std::string pn = p < (int)names.size() ? names[size_t(p)] : std::to_string(p);
    pn = pn.substr(0, 12);
    cv.text(left + p * cell + (cell - Canvas::text_width(pn, 2)) / 2, top + K * cell + 12, pn, kBlack, 2);
  }
  char foot[128];
  std::snprintf(foot, sizeof foot, "n = %lld, accuracy %.3f", (long long)m.total(), m.total() ? double(m.correct()) / m.total() : 0.0);
  cv.text(10, top + K * cell + 45, foot, kGrey, 2);
  cv.save(path);
}

void write_curves_png(const std::string& path, const std::vector<Panel>& panels, const std::string& x_label) {
  const int pw = 460, ph = 300, ml = 60, mt = 40, mb = 50, legend_h = 20 * 4;
  Canvas cv(int(panels.size()) * (pw + ml + 20) + 10, mt + ph + mb + legend_h);
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const Panel& P = panels[pi];
    const int ox = 10 + int(pi) * (pw + ml + 20) + ml, oy = mt;
    double lo = P.y_lo, hi = P.y_hi;
    size_t n = 0;
    if (hi <= lo) {
      lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (auto& s : P.series)
        for (double v : s.y)
          if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      if (!std::isfinite(lo)) lo = 0, hi = 1;
      if (hi - lo < 1e-9) hi = lo + 1;
      lo = std::min(lo, 0.0);
      hi += 0.05 * (hi - lo);
    }
    for (auto& s : P.series) n = std::max(n, s.y.size());
    cv.text(ox, 10, P.title, kBlack, 2);
    // Grid: 5 horizontal lines with their values.
    for (int g = 0; g <= 4; ++g) {
      int y = oy + ph - g * ph / 4;
      cv.rect(ox, y, ox + pw, y + 1, kLight);
      char b[32];
      std::snprintf(b, sizeof b, "%.2f", lo + (hi - lo) * g / 4);
      cv.text(ox - Canvas::text_width(b, 1) * 2 - 6, y - 6, b, kGrey, 2);
    }
    cv.frame(ox, oy, ox + pw + 1, oy + ph + 1, kGrey);
    auto X = [&](size_t i) { return ox + (n > 1 ? int(double(i) * pw / double(n - 1)) : pw / 2); };
    auto Y = [&](double v) { return oy + ph - int((std::clamp(v, lo, hi) - lo) / (hi - lo) * ph); };
    for (size_t i = 0; i < n; i += std::max<size_t>(1, n / 8)) {
      std::string t = std::to_string(i + 1);
      cv.text(X(i) - Canvas::text_width(t, 2) / 2, oy + ph + 8, t, kGrey, 2);
    }
    cv.text(ox + pw / 2 - Canvas::text_width(x_label, 2) / 2, oy + ph + 28, x_label, kGrey, 2);
    for (size_t si = 0; si < P.series.size(); ++si) {
      const Series& s = P.series[si];
      for (size_t i = 0; i < s.y.size(); ++i) {
        if (!std::isfinite(s.y[i])) continue;
        if (i + 1 < s.y.size() && std::isfinite(s.y[i + 1])) cv.line(X(i), Y(s.y[i]), X(i + 1), Y(s.y[i + 1]), s.rgb, 2);
        else if (s.y.size() == 1 || i == 0 || !std::isfinite(s.y[i - 1])) cv.rect(X(i) - 2, Y(s.y[i]) - 2, X(i) + 3, Y(s.y[i]) + 3, s.rgb);
      }
      const int ly = oy + ph + mb + int(si) * 20;
      cv.rect(ox, ly + 5, ox + 24, ly + 9, s.rgb);
      cv.text(ox + 32, ly, s.label, kBlack, 2);
    }
  }
  cv.save(path);
}

// ------------------------------------------------------------------ the run's files

namespace fs = std::filesystem;

std::string format_number(const char* printf_format, double v) {
  char b[64];
  std::snprintf(b, sizeof b, printf_format, v);
  return b;
}

std::string csv_cell(const std::string& c) {
  if (c.find_first_of(",\"\n") == std::string::npos) return c;
  std::string o = "\"";
  for (char ch : c) o += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return o + "\"";
}

std::string config_json(const RunRecord& r) {
  nlohmann::ordered_json j;
  j["signature"] = r.signature;
  j["version"] = AHMSA_VERSION;
  j["command"] = r.command;
  j["input"] = r.input;
  if (!r.source.is_null()) j["source"] = r.source;
  j["data"] = r.data;
  j["device"] = r.device;
  j["clips"] = r.clips;
  j["folds"] = r.folds;
  j["settings"] = r.settings;
  return j.dump(2) + "\n";
}

namespace {

// What the report needs from one finished fold, read back from its files.
struct FoldFiles {
  int index = 0;
  std::string name;
  bool failed = false;
  std::string failure;
  int selected_epoch = 0;
  std::vector<int> samples, preds;
  std::vector<EpochStats> curve;
};

int to_int(const std::string& cell, const fs::path& file, size_t row) {
  try {
    size_t used = 0;
    int v = std::stoi(cell, &used);
    if (used == cell.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::runtime_error("'" + file.string() + "' row " + std::to_string(row) + ": '" + cell + "' is not an integer");
}

FoldFiles read_fold_files(const fs::path& dir, const Fold& fold, int index) {
  FoldFiles f;
  f.index = index;
  f.name = fold.name;
  const nlohmann::ordered_json done = data::read_json_file(dir / "done.json");
  if (done.value("name", std::string()) != fold.name)
    throw std::runtime_error("'" + (dir / "done.json").string() + "' is for fold '" + done.value("name", std::string()) +
                             "', this run's fold " + std::to_string(index + 1) + " is '" + fold.name + "'");
  f.failed = done.value("status", std::string()) == "failed";
  f.failure = done.value("failure", std::string());
  f.selected_epoch = done.value("selected_epoch", 0);
  const fs::path log_path = dir / "log.csv";
  data::Table log = data::read_csv(log_path.string());
  for (size_t r = 1; r < log.size(); ++r) {
    auto& row = log[r];
    if (row.size() < 11) throw std::runtime_error("'" + log_path.string() + "' row " + std::to_string(r + 1) + " has " +
                                                  std::to_string(row.size()) + " columns, expected 11");
    EpochStats e;
    e.epoch = to_int(row[0], log_path, r + 1);
    e.lr = std::atof(row[1].c_str()), e.train_loss = std::atof(row[2].c_str()), e.train_acc = std::atof(row[3].c_str());
    e.val_loss = std::atof(row[4].c_str()), e.val_uf1 = std::atof(row[5].c_str());
    e.test_loss = std::atof(row[6].c_str()), e.test_acc = std::atof(row[7].c_str()), e.test_uf1 = std::atof(row[8].c_str());
    e.seconds = std::atof(row[9].c_str());
    std::stringstream ss(row[10]);
    int p;
    while (ss >> p) e.test_pred.push_back(p);
    f.curve.push_back(e);
  }
  if (!f.failed) {
    const fs::path pred_path = dir / "predictions.csv";
    data::Table pr = data::read_csv(pred_path.string());
    for (size_t r = 1; r < pr.size(); ++r) {
      if (pr[r].size() < 6) throw std::runtime_error("'" + pred_path.string() + "' row " + std::to_string(r + 1) + " is short");
      f.samples.push_back(to_int(pr[r][0], pred_path, r + 1));
      f.preds.push_back(to_int(pr[r][5], pred_path, r + 1));
    }
    if (f.samples != fold.test)
      throw std::runtime_error("'" + pred_path.string() + "' does not list the test clips of fold " + fold.name);
  }
  return f;
}

const char* split_title(Split s) { return name_of(s); }

}  // namespace

ReportResult write_report(const data::FlowDataset& ds, const std::vector<Fold>& folds, const std::string& out_dir,
                          const ReportSettings& rs) {
  const fs::path out(out_dir);
  const int K = int(ds.class_names.size());
  const auto& names = ds.class_names;
  ReportResult res;
  std::vector<FoldFiles> ff;
  for (size_t i = 0; i < folds.size(); ++i)
    ff.push_back(read_fold_files(out / data::fold_dir_name(int(i), int(folds.size())), folds[i], int(i)));

  // Pooled predictions (the MEGC metric), fold-level scores, and the MEGC log.
  std::vector<int> samples, preds;
  std::vector<Scores> fold_scores;
  std::string megc;
  nlohmann::ordered_json failed_list = nlohmann::ordered_json::array();
  int missing = 0;
  for (auto& f : ff) {
    if (f.failed) {
      ++res.failed, missing += int(folds[size_t(f.index)].test.size());
      failed_list.push_back({{"fold", f.index + 1}, {"name", f.name}, {"reason", f.failure}});
      continue;
    }
    samples.insert(samples.end(), f.samples.begin(), f.samples.end());
    preds.insert(preds.end(), f.preds.begin(), f.preds.end());
    std::vector<int> truth;
    for (int s : f.samples) truth.push_back(ds.samples[size_t(s)].label);
    fold_scores.push_back(score(confusion_of(truth, f.preds, K)));
    // MEGC log: "<db> <subject>" then "<clip> <gt> <pred>" per clip.
    for (const auto& subj : folds[size_t(f.index)].test_subjects) {
      std::string db, raw = subj;
      if (auto p = subj.find('/'); p != std::string::npos) db = subj.substr(0, p), raw = subj.substr(p + 1);
      bool header = false;
      for (size_t i = 0; i < f.samples.size(); ++i) {
        const auto& s = ds.samples[size_t(f.samples[i])];
        if (s.subject != subj) continue;
        if (!header) megc += (db.empty() ? s.dataset : db) + " " + raw + "\n", header = true;
        megc += s.clip + " " + std::to_string(s.label) + " " + std::to_string(f.preds[i]) + "\n";
      }
    }
  }
  MetricsBlock pooled = compute_metrics(ds, samples, preds, K);
  res.pooled = pooled.pooled;
  FoldAverage avg = fold_average(fold_scores);
  std::vector<int> all_labels;
  for (auto& s : ds.samples) all_labels.push_back(s.label);
  Chance ch = chance_levels(all_labels, K);

  // Curves: mean over folds of train/test loss per epoch; test UF1 of each epoch pooled over folds.
  size_t E = 0;
  for (auto& f : ff) E = std::max(E, f.curve.size());
  const double nan = std::nan("");
  std::vector<double> tr_loss(E, nan), te_loss(E, nan), va_loss(E, nan), tr_acc(E, nan), te_uf1(E, nan), va_uf1(E, nan);
  bool have_val = false;
  for (size_t e = 0; e < E; ++e) {
    double a = 0, b = 0, c = 0, d = 0, g = 0;
    int n = 0, nv = 0;
    std::vector<int> es, ep;
    for (auto& f : ff) {
      if (e >= f.curve.size() || (f.failed && e + 1 == f.curve.size())) continue;
      const auto& st = f.curve[e];
      a += st.train_loss, b += st.test_loss, d += st.train_acc, ++n;
      if (st.val_uf1 >= 0) c += st.val_loss, g += st.val_uf1, ++nv;
      const auto& test = folds[size_t(f.index)].test;
      if (st.test_pred.size() == test.size()) es.insert(es.end(), test.begin(), test.end()), ep.insert(ep.end(), st.test_pred.begin(), st.test_pred.end());
    }
    if (n) tr_loss[e] = a / n, te_loss[e] = b / n, tr_acc[e] = d / n;
    if (nv) va_loss[e] = c / nv, va_uf1[e] = g / nv, have_val = true;
    if (!es.empty()) te_uf1[e] = compute_metrics(ds, es, ep, K).pooled.uf1;
  }

  // metrics.json: no timings and no paths, so equal results give equal bytes.
  nlohmann::ordered_json j;
  j["protocol"] = split_title(rs.split);
  j["selection"] = rs.select == Selection::Last ? "last epoch of a fixed budget (" + std::to_string(rs.epochs) + " epochs)"
                                                : std::string("best validation UF1 on training subjects held out per fold");
  j["folds"] = folds.size();
  j["folds_failed"] = res.failed;
  j["failed"] = failed_list;
  j["clips"] = ds.samples.size();
  j["clips_scored"] = samples.size();
  j["clips_missing_from_failed_folds"] = missing;
  j["classes"] = names;
  j["chance"] = {{"uniform_guess_accuracy", json_number(ch.uniform_accuracy)},
                 {"uniform_guess_uar", json_number(ch.uniform_uar)},
                 {"majority_class_accuracy", json_number(ch.majority_accuracy)},
                 {"majority_class_uf1", json_number(ch.majority_uf1)}};
  j["pooled"] = metrics_block_json(pooled, names);
  j["fold_averaged_NOT_MEGC"] = {
      {"note", "plain mean over folds of per-fold scores (classes missing from a fold excluded as in metrics.h); the MEGC metric is 'pooled'"},
      {"folds", avg.folds},
      {"accuracy", json_number(avg.accuracy)},
      {"uf1", json_number(avg.uf1)},
      {"uar", json_number(avg.uar)}};
  // Optional: the test-selected score (per fold, the epoch with the best test accuracy, earliest on ties).
  Scores best_scores;
  if (rs.report_best_test) {
    std::vector<int> bs, bp;
    for (auto& f : ff) {
      if (f.failed) continue;
      const auto& test = folds[size_t(f.index)].test;
      double best = -1;
      const std::vector<int>* pick = nullptr;
      for (auto& st : f.curve)
        if (st.test_pred.size() == test.size() && st.test_acc > best) best = st.test_acc, pick = &st.test_pred;
      if (pick) bs.insert(bs.end(), test.begin(), test.end()), bp.insert(bp.end(), pick->begin(), pick->end());
    }
    MetricsBlock b = compute_metrics(ds, bs, bp, K);
    best_scores = b.pooled;
    j["best_test_epoch_TEST_SELECTED"] = {
        {"label", "TEST-SELECTED, optimistic: per fold the epoch with the best accuracy on its own test subject; not a valid "
                  "estimate of generalisation"},
        {"scores", metrics_block_json(b, names)}};
  }
  nlohmann::ordered_json curve = nlohmann::ordered_json::array();
  for (size_t e = 0; e < E; ++e) curve.push_back(json_number(te_uf1[e]));
  j["per_epoch_pooled_test_uf1_for_curves_only"] = curve;
  j["version"] = AHMSA_VERSION;
  res.metrics_json = (out / "metrics.json").string();
  data::write_file_atomic(res.metrics_json, j.dump(2) + "\n");

  res.megc_log = (out / "megc_log.txt").string();
  data::write_file_atomic(res.megc_log, megc);

  {
    std::string t = "fold,sample,dataset,subject,clip,label,pred\n";
    for (auto& f : ff)
      for (size_t i = 0; i < f.samples.size(); ++i) {
        const auto& s = ds.samples[size_t(f.samples[i])];
        t += std::to_string(f.index + 1) + "," + std::to_string(f.samples[i]) + "," + csv_cell(s.dataset) + "," + csv_cell(s.subject) +
             "," + csv_cell(s.clip) + "," + std::to_string(s.label) + "," + std::to_string(f.preds[i]) + "\n";
      }
    res.predictions_csv = (out / "predictions.csv").string();
    data::write_file_atomic(res.predictions_csv, t);
  }

  char title[160];
  std::snprintf(title, sizeof title, "%s pooled: UF1 %.3f  UAR %.3f  acc %.3f", split_title(rs.split), pooled.pooled.uf1,
                pooled.pooled.uar, pooled.pooled.accuracy);
  res.confusion_png = (out / "confusion.png").string();
  write_confusion_png(res.confusion_png, pooled.confusion, names, title);

  std::vector<Panel> panels(2);
  panels[0].title = "loss (mean over folds)";
  panels[0].y_hi = -1;
  panels[0].series.push_back({"train", tr_loss, {31, 119, 180}});
  panels[0].series.push_back({"test subject (not used to select)", te_loss, {214, 39, 40}});
  if (have_val) panels[0].series.push_back({"validation subjects", va_loss, {44, 160, 44}});
  panels[1].title = "UF1 / accuracy";
  panels[1].series.push_back({"test UF1, pooled per epoch", te_uf1, {214, 39, 40}});
  panels[1].series.push_back({"train accuracy (mean)", tr_acc, {31, 119, 180}});
  if (have_val) panels[1].series.push_back({"validation UF1 (mean)", va_uf1, {44, 160, 44}});
  res.curves_png = (out / "curves.png").string();
  write_curves_png(res.curves_png, panels, "epoch");

  {  // The same plots as SVG, the per-dataset and per-class bars, and report.html gathering everything.
    ReportPage page;
    page.title = "ahmsa train: " + std::string(split_title(rs.split)) + ", " + std::to_string(folds.size()) + " folds";
    page.metrics = j;
    if (fs::exists(out / "config.json")) page.config = data::read_json_file(out / "config.json");
    page.svgs.push_back({"confusion", confusion_svg(pooled.confusion, names, title)});
    page.svgs.push_back({"curves", curves_svg(panels, "epoch")});
    std::vector<BarGroup> by_dataset = {{"pooled", {pooled.pooled.uf1, pooled.pooled.uar, pooled.pooled.accuracy}}};
    for (auto& [name, s] : pooled.per_dataset) by_dataset.push_back({name, {s.uf1, s.uar, s.accuracy}});
    page.svgs.push_back({"datasets", bars_svg("per dataset (pooled predictions)", {"UF1", "UAR", "accuracy"}, by_dataset)});
    std::vector<BarGroup> by_class;
    for (int k = 0; k < K; ++k) {
      const ClassScore& c = pooled.pooled.per_class[size_t(k)];
      by_class.push_back({names[size_t(k)], {c.in_uf1 ? c.f1 : nan, c.in_uar ? c.recall : nan, c.predicted ? c.precision : nan}});
    }
    page.svgs.push_back({"classes", bars_svg("per class (pooled predictions)", {"F1", "recall", "precision"}, by_class)});
    size_t scored = 0;
    for (auto& f : ff) {
      FoldRow r;
      r.fold = f.index + 1, r.name = f.name, r.clips = int64_t(folds[size_t(f.index)].test.size());
      r.failed = f.failed, r.failure = f.failure, r.selected_epoch = f.selected_epoch;
      if (!f.failed) r.scores = fold_scores[scored++];
      page.folds.push_back(r);
    }
    res.report_html = write_report_pages(out.string(), page).back();
  }

  {  // summary.txt: what the console prints at the end
    std::string t;
    t += "ahmsa train " + std::string(split_title(rs.split)) + ": " + std::to_string(folds.size()) + " folds (" +
         std::to_string(res.failed) + " failed), " + std::to_string(samples.size()) + " of " + std::to_string(ds.samples.size()) +
         " clips scored\n";
    t += "selection: " + std::string(rs.select == Selection::Last ? "last epoch of the fixed budget" : "best validation epoch") + "\n";
    t += "pooled (MEGC):   UF1 " + format_number("%.4f", pooled.pooled.uf1) + "  UAR " + format_number("%.4f", pooled.pooled.uar) + "  accuracy " +
         format_number("%.4f", pooled.pooled.accuracy) + "\n";
    for (auto& [name, s] : pooled.per_dataset)
      t += "  " + name + std::string(name.size() < 14 ? 14 - name.size() : 1, ' ') + "UF1 " + format_number("%.4f", s.uf1) + "  UAR " +
           format_number("%.4f", s.uar) + "  accuracy " + format_number("%.4f", s.accuracy) + "  (n " + std::to_string(s.n) + ")\n";
    t += "per class:";
    for (int k = 0; k < K; ++k)
      t += " " + names[size_t(k)] + " F1 " + format_number("%.3f", pooled.pooled.per_class[size_t(k)].f1) + " recall " +
           format_number("%.3f", pooled.pooled.per_class[size_t(k)].recall) + (k + 1 < K ? ";" : "");
    t += "\nfold-averaged (not the MEGC metric): UF1 " + format_number("%.4f", avg.uf1) + "  UAR " + format_number("%.4f", avg.uar) + "  accuracy " +
         format_number("%.4f", avg.accuracy) + "\n";
    t += "chance: uniform guess accuracy = UAR = " + format_number("%.3f", ch.uniform_accuracy) + " (UF1 about the same for balanced classes); "
         "always the majority class: accuracy " + format_number("%.3f", ch.majority_accuracy) + ", UF1 " + format_number("%.3f", ch.majority_uf1) + "\n";
    if (rs.report_best_test)
      t += "TEST-SELECTED (best test epoch per fold, optimistic, not a valid estimate): UF1 " + format_number("%.4f", best_scores.uf1) + "  UAR " +
           format_number("%.4f", best_scores.uar) + "  accuracy " + format_number("%.4f", best_scores.accuracy) + "\n";
    res.summary_txt = (out / "summary.txt").string();
    data::write_file_atomic(res.summary_txt, t);
  }
  return res;
}

}  // namespace ahmsa::train
