#include "train/loso.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "ahmsa_version.h"
#include "train/data/table.h"
#include "train/progress.h"
#include "train/report.h"

namespace fs = std::filesystem;

namespace ahmsa::train {

// ------------------------------------------------------------------ small file helpers

static void write_text_atomic(const fs::path& p, const std::string& text) {
  fs::path tmp = p;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    f.flush();
    if (!f) throw std::runtime_error("cannot write '" + tmp.string() + "'");
  }
  fs::rename(tmp, p);
}

static std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read '" + p.string() + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Value of a top-level "key": ... in our own flat JSON files (string or bare number).
static std::string json_value(const std::string& j, const std::string& key) {
  size_t p = j.find("\"" + key + "\": ");
  if (p == std::string::npos) return "";
  p += key.size() + 4;
  if (j[p] == '"') {
    std::string out;
    for (++p; p < j.size() && j[p] != '"'; ++p) {
      if (j[p] == '\\' && p + 1 < j.size()) ++p, out += j[p] == 'n' ? '\n' : j[p];
      else out += j[p];
    }
    return out;
  }
  size_t e = j.find_first_of(",\n}", p);
  return j.substr(p, e - p);
}

static std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

static std::string csv_cell(const std::string& c) {
  if (c.find_first_of(",\"\n") == std::string::npos) return c;
  std::string o = "\"";
  for (char ch : c) o += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return o + "\"";
}

// ------------------------------------------------------------------ folds and seeds

uint64_t fold_seed(uint64_t run_seed, int index) {
  // splitmix64 finaliser of (seed, index): folds get unrelated streams, each a function of its index only.
  uint64_t z = run_seed + 0x9E3779B97F4A7C15ull * uint64_t(index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<Fold> make_folds(const data::FlowDataset& ds, const RunOptions& o) {
  std::vector<std::string> subj;
  for (auto& s : ds.samples) subj.push_back(s.subject);
  std::vector<Fold> folds;
  if (o.split == "loso") folds = loso_split(subj);
  else if (o.split == "kfold") folds = kfold_by_subject(subj, o.kfold, o.seed);
  else if (o.split == "split") folds = {single_split(subj, o.test_fraction, o.seed)};
  else throw std::invalid_argument("unknown --split '" + o.split + "' (loso, kfold, split)");
  for (size_t i = 0; i < folds.size(); ++i) draw_validation(folds[i], subj, o.val_fraction, fold_seed(o.seed, int(i)) ^ 0x5A5A5A5Aull);
  return folds;
}

std::string dataset_fingerprint(const data::FlowDataset& ds) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (auto& s : ds.samples) {
    mix(s.subject.data(), s.subject.size()), mix(s.clip.data(), s.clip.size()), mix(&s.label, sizeof s.label);
    mix(s.x.data(), s.x.size() * sizeof(float));
  }
  char b[32];
  std::snprintf(b, sizeof b, "%016llx", (unsigned long long)h);
  return b;
}

// Everything that changes the results; a folder made with another signature is not resumed.
static std::string signature(const data::FlowDataset& ds, const RunOptions& o) {
  const TrainOptions& t = o.train;
  std::ostringstream s;
  s << "split=" << o.split;
  if (o.split == "kfold") s << "; k=" << o.kfold;
  if (o.split == "split") s << "; test_fraction=" << o.test_fraction;
  s << "; val_fraction=" << o.val_fraction << "; seed=" << o.seed << "; model=" << t.model.to_string() << "; optimizer=" << t.optimizer
    << "; lr=" << t.lr << "; weight_decay=" << t.weight_decay << "; schedule=" << t.schedule;
  if (t.schedule == "cosine") s << "; warmup_epochs=" << t.warmup_epochs << "; min_lr=" << t.min_lr;
  s << "; epochs=" << t.epochs << "; batch=" << t.batch_size << "; class_balanced_loss=" << t.class_balanced_loss
    << "; balanced_sampling=" << t.balanced_sampling << "; label_smoothing=" << t.label_smoothing << "; flip=" << t.flip
    << "; select=" << t.select << "; patience=" << t.patience << "; data=" << ds.samples.size() << " clips, fingerprint "
    << dataset_fingerprint(ds);
  return s.str();
}

static std::string fold_dir_name(int i, int n) {
  char b[32];
  std::snprintf(b, sizeof b, n > 99 ? "fold_%03d" : "fold_%02d", i + 1);
  return b;
}

// ------------------------------------------------------------------ one fold's files

static void write_fold_files(const fs::path& dir, const data::FlowDataset& ds, const Fold& fold, int index,
                             const FoldOutcome& r, const RunOptions& o, double seconds) {
  fs::create_directories(dir);
  const auto& names = ds.class_names;
  {  // per-epoch log
    std::string t = "epoch,lr,train_loss,train_acc,val_loss,val_uf1,test_loss,test_acc,test_uf1,seconds,test_pred\n";
    for (auto& e : r.curve) {
      std::string preds;
      for (size_t i = 0; i < e.test_pred.size(); ++i) preds += (i ? " " : "") + std::to_string(e.test_pred[i]);
      t += std::to_string(e.epoch) + "," + fmt("%.6g", e.lr) + "," + fmt("%.6f", e.train_loss) + "," + fmt("%.6f", e.train_acc) + "," +
           fmt("%.6f", e.val_loss) + "," + fmt("%.6f", e.val_uf1) + "," + fmt("%.6f", e.test_loss) + "," + fmt("%.6f", e.test_acc) +
           "," + fmt("%.6f", e.test_uf1) + "," + fmt("%.2f", e.seconds) + "," + preds + "\n";
    }
    write_text_atomic(dir / "log.csv", t);
  }
  if (!r.failed) {
    std::string t = "sample,dataset,subject,clip,label,pred";
    for (auto& n : names) t += ",p_" + n;
    t += "\n";
    for (size_t i = 0; i < fold.test.size(); ++i) {
      const auto& s = ds.samples[size_t(fold.test[i])];
      t += std::to_string(fold.test[i]) + "," + csv_cell(s.dataset) + "," + csv_cell(s.subject) + "," + csv_cell(s.clip) + "," +
           std::to_string(s.label) + "," + std::to_string(r.pred[i]);
      for (float p : r.prob[i]) t += "," + fmt("%.6f", p);
      t += "\n";
    }
    write_text_atomic(dir / "predictions.csv", t);
    std::string class_list;
    for (size_t i = 0; i < names.size(); ++i) class_list += (i ? "," : "") + names[i];
    r.model->save((dir / "model.safetensors").string(),
                  {{"fold", fold.name}, {"class_names", class_list}, {"selected_epoch", std::to_string(r.selected_epoch)},
                   {"selection", o.train.select}, {"fold_seed", std::to_string(fold_seed(o.seed, index))},
                   {"data", ds.source}, {"ahmsa_version", AHMSA_VERSION}});
  }
  std::string test_subjects;
  for (size_t i = 0; i < fold.test_subjects.size(); ++i) test_subjects += (i ? "+" : "") + fold.test_subjects[i];
  std::string j = "{\n";
  j += "  \"fold\": " + std::to_string(index + 1) + ",\n";
  j += "  \"name\": \"" + json_escape(fold.name) + "\",\n";
  j += "  \"status\": \"" + std::string(r.failed ? "failed" : "ok") + "\",\n";
  j += "  \"failure\": \"" + json_escape(r.failure) + "\",\n";
  j += "  \"selected_epoch\": " + std::to_string(r.selected_epoch) + ",\n";
  j += "  \"epochs_run\": " + std::to_string(r.curve.size()) + ",\n";
  j += "  \"train\": " + std::to_string(fold.train.size()) + ",\n";
  j += "  \"val\": " + std::to_string(fold.val.size()) + ",\n";
  j += "  \"test\": " + std::to_string(fold.test.size()) + ",\n";
  j += "  \"seconds\": " + fmt("%.1f", seconds) + ",\n";
  j += "  \"version\": \"" + json_escape(AHMSA_VERSION) + "\"\n}\n";
  write_text_atomic(dir / "done.json", j);  // last: its presence means the fold is complete
}

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

static FoldFiles read_fold_files(const fs::path& dir, const Fold& fold, int index) {
  FoldFiles f;
  f.index = index;
  f.name = fold.name;
  std::string done = read_text(dir / "done.json");
  f.failed = json_value(done, "status") == "failed";
  f.failure = json_value(done, "failure");
  f.selected_epoch = std::atoi(json_value(done, "selected_epoch").c_str());
  if (json_value(done, "name") != fold.name)
    throw std::runtime_error(dir.string() + "/done.json is for fold '" + json_value(done, "name") + "', expected '" + fold.name +
                             "' (another dataset in the same --out?)");
  data::Table log = data::read_csv((dir / "log.csv").string());
  for (size_t r = 1; r < log.size(); ++r) {
    auto& row = log[r];
    if (row.size() < 11) continue;
    EpochStats e;
    e.epoch = std::atoi(row[0].c_str());
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
    data::Table pr = data::read_csv((dir / "predictions.csv").string());
    for (size_t r = 1; r < pr.size(); ++r) {
      if (pr[r].size() < 6) continue;
      f.samples.push_back(std::atoi(pr[r][0].c_str()));
      f.preds.push_back(std::atoi(pr[r][5].c_str()));
    }
    if (f.samples != fold.test)
      throw std::runtime_error(dir.string() + "/predictions.csv does not list the test clips of fold " + fold.name);
  }
  return f;
}

// ------------------------------------------------------------------ the report

static std::string config_json(const data::FlowDataset& ds, const RunOptions& o, const std::vector<Fold>& folds) {
  const TrainOptions& t = o.train;
  std::string j = "{\n";
  auto kv = [&](const std::string& k, const std::string& v, bool quote = true) {
    j += "  \"" + k + "\": " + (quote ? "\"" + json_escape(v) + "\"" : v) + ",\n";
  };
  kv("signature", signature(ds, o));
  kv("version", AHMSA_VERSION);
  kv("command", o.command_line);
  kv("input", o.input);
  kv("data", ds.source);
  kv("clips", std::to_string(ds.samples.size()), false);
  kv("split", o.split);
  kv("folds", std::to_string(folds.size()), false);
  kv("seed", std::to_string(o.seed), false);
  kv("val_fraction", fmt("%g", o.val_fraction), false);
  kv("model", t.model.to_string());
  kv("optimizer", t.optimizer);
  kv("lr", fmt("%g", t.lr), false);
  kv("weight_decay", fmt("%g", t.weight_decay), false);
  kv("schedule", t.schedule);
  kv("warmup_epochs", fmt("%g", t.warmup_epochs), false);
  kv("min_lr", fmt("%g", t.min_lr), false);
  kv("epochs", std::to_string(t.epochs), false);
  kv("batch_size", std::to_string(t.batch_size), false);
  kv("class_balanced_loss", t.class_balanced_loss ? "true" : "false", false);
  kv("balanced_sampling", t.balanced_sampling ? "true" : "false", false);
  kv("label_smoothing", fmt("%g", t.label_smoothing), false);
  kv("flip", t.flip ? "true" : "false", false);
  kv("select", t.select);
  j += "  \"patience\": " + std::to_string(t.patience) + "\n}\n";
  return j;
}

RunResult write_report(const data::FlowDataset& ds, const std::vector<Fold>& folds, const RunOptions& o) {
  const fs::path out(o.out_dir);
  const int K = int(ds.class_names.size());
  const auto& names = ds.class_names;
  RunResult res;
  res.folds = int(folds.size());
  std::vector<FoldFiles> ff;
  for (size_t i = 0; i < folds.size(); ++i)
    ff.push_back(read_fold_files(out / fold_dir_name(int(i), int(folds.size())), folds[i], int(i)));

  // Pooled predictions (the MEGC metric), fold-level scores, and the MEGC log.
  std::vector<int> samples, preds;
  std::vector<Scores> fold_scores;
  std::string megc, failed_list;
  int missing = 0;
  for (auto& f : ff) {
    if (f.failed) {
      ++res.failed, missing += int(folds[size_t(f.index)].test.size());
      failed_list += std::string(failed_list.empty() ? "" : ",\n") + "    {\"fold\": " + std::to_string(f.index + 1) + ", \"name\": \"" +
                     json_escape(f.name) + "\", \"reason\": \"" + json_escape(f.failure) + "\"}";
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

  // Optional: the test-selected score (per fold, the epoch with the best test accuracy, earliest on ties).
  std::string best_json;
  Scores best_scores;
  if (o.report_best_test) {
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
    best_json = "  \"best_test_epoch_TEST_SELECTED\": {\n    \"label\": \"TEST-SELECTED, optimistic: per fold the epoch with the best "
                "accuracy on its own test subject; not a valid estimate of generalisation\",\n    \"scores\": " +
                metrics_block_json(b, names, 4) + "\n  },\n";
  }

  // metrics.json: no timings and no paths, so equal results give equal bytes.
  std::string j = "{\n";
  j += "  \"protocol\": \"" + json_escape(o.split) + "\",\n";
  j += "  \"selection\": \"" +
       std::string(o.train.select == "last" ? "last epoch of a fixed budget (" + std::to_string(o.train.epochs) + " epochs)"
                                            : "best validation UF1 on training subjects held out per fold") + "\",\n";
  j += "  \"folds\": " + std::to_string(folds.size()) + ",\n";
  j += "  \"folds_failed\": " + std::to_string(res.failed) + ",\n";
  j += "  \"failed\": [" + (failed_list.empty() ? std::string() : "\n" + failed_list + "\n  ") + "],\n";
  j += "  \"clips\": " + std::to_string(ds.samples.size()) + ",\n";
  j += "  \"clips_scored\": " + std::to_string(samples.size()) + ",\n";
  j += "  \"clips_missing_from_failed_folds\": " + std::to_string(missing) + ",\n";
  j += "  \"classes\": [";
  for (size_t i = 0; i < names.size(); ++i) j += (i ? ", \"" : "\"") + json_escape(names[i]) + "\"";
  j += "],\n";
  j += "  \"chance\": {\"uniform_guess_accuracy\": " + json_number(ch.uniform_accuracy) + ", \"uniform_guess_uar\": " +
       json_number(ch.uniform_uar) + ", \"majority_class_accuracy\": " + json_number(ch.majority_accuracy) +
       ", \"majority_class_uf1\": " + json_number(ch.majority_uf1) + "},\n";
  j += "  \"pooled\": " + metrics_block_json(pooled, names, 2) + ",\n";
  j += "  \"fold_averaged_NOT_MEGC\": {\"note\": \"plain mean over folds of per-fold scores (classes missing from a fold "
       "excluded as in metrics.h); the MEGC metric is 'pooled'\", \"folds\": " + std::to_string(avg.folds) +
       ", \"accuracy\": " + json_number(avg.accuracy) + ", \"uf1\": " + json_number(avg.uf1) + ", \"uar\": " + json_number(avg.uar) + "},\n";
  j += best_json;
  j += "  \"per_epoch_pooled_test_uf1_for_curves_only\": [";
  for (size_t e = 0; e < E; ++e) j += (e ? ", " : "") + json_number(te_uf1[e]);
  j += "],\n";
  j += "  \"version\": \"" + json_escape(AHMSA_VERSION) + "\"\n}\n";
  res.metrics_json = (out / "metrics.json").string();
  write_text_atomic(res.metrics_json, j);

  res.megc_log = (out / "megc_log.txt").string();
  write_text_atomic(res.megc_log, megc);

  {
    std::string t = "fold,sample,dataset,subject,clip,label,pred\n";
    for (auto& f : ff)
      for (size_t i = 0; i < f.samples.size(); ++i) {
        const auto& s = ds.samples[size_t(f.samples[i])];
        t += std::to_string(f.index + 1) + "," + std::to_string(f.samples[i]) + "," + csv_cell(s.dataset) + "," + csv_cell(s.subject) +
             "," + csv_cell(s.clip) + "," + std::to_string(s.label) + "," + std::to_string(f.preds[i]) + "\n";
      }
    res.predictions_csv = (out / "predictions.csv").string();
    write_text_atomic(res.predictions_csv, t);
  }

  char title[160];
  std::snprintf(title, sizeof title, "%s pooled: UF1 %.3f  UAR %.3f  acc %.3f", o.split.c_str(), pooled.pooled.uf1, pooled.pooled.uar,
                pooled.pooled.accuracy);
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

  {  // summary.txt: what the console prints at the end
    std::string t;
    t += "ahmsa train " + o.split + ": " + std::to_string(folds.size()) + " folds (" + std::to_string(res.failed) + " failed), " +
         std::to_string(samples.size()) + " of " + std::to_string(ds.samples.size()) + " clips scored\n";
    t += "selection: " + std::string(o.train.select == "last" ? "last epoch of the fixed budget" : "best validation epoch") + "\n";
    t += "pooled (MEGC):   UF1 " + fmt("%.4f", pooled.pooled.uf1) + "  UAR " + fmt("%.4f", pooled.pooled.uar) + "  accuracy " +
         fmt("%.4f", pooled.pooled.accuracy) + "\n";
    for (auto& [name, s] : pooled.per_dataset)
      t += "  " + name + std::string(name.size() < 14 ? 14 - name.size() : 1, ' ') + "UF1 " + fmt("%.4f", s.uf1) + "  UAR " +
           fmt("%.4f", s.uar) + "  accuracy " + fmt("%.4f", s.accuracy) + "  (n " + std::to_string(s.n) + ")\n";
    t += "per class:";
    for (int k = 0; k < K; ++k)
      t += " " + names[size_t(k)] + " F1 " + fmt("%.3f", pooled.pooled.per_class[size_t(k)].f1) + " recall " +
           fmt("%.3f", pooled.pooled.per_class[size_t(k)].recall) + (k + 1 < K ? ";" : "");
    t += "\nfold-averaged (not the MEGC metric): UF1 " + fmt("%.4f", avg.uf1) + "  UAR " + fmt("%.4f", avg.uar) + "  accuracy " +
         fmt("%.4f", avg.accuracy) + "\n";
    t += "chance: uniform guess accuracy = UAR = " + fmt("%.3f", ch.uniform_accuracy) + " (UF1 about the same for balanced classes); "
         "always the majority class: accuracy " + fmt("%.3f", ch.majority_accuracy) + ", UF1 " + fmt("%.3f", ch.majority_uf1) + "\n";
    if (o.report_best_test)
      t += "TEST-SELECTED (best test epoch per fold, optimistic, not a valid estimate): UF1 " + fmt("%.4f", best_scores.uf1) + "  UAR " +
           fmt("%.4f", best_scores.uar) + "  accuracy " + fmt("%.4f", best_scores.accuracy) + "\n";
    res.summary_txt = (out / "summary.txt").string();
    write_text_atomic(res.summary_txt, t);
  }
  res.complete = true;
  return res;
}

// ------------------------------------------------------------------ the run

RunResult run_training(const data::FlowDataset& ds, const RunOptions& o0) {
  auto t0 = std::chrono::steady_clock::now();
  RunOptions o = o0;
  if (ds.samples.empty()) throw std::invalid_argument("no clips to train on");
  if (o.out_dir.empty()) throw std::invalid_argument("no output folder (--out)");
  if (ds.class_names.empty()) throw std::invalid_argument("dataset '" + ds.source + "' has no class names");
  o.train.model.classes = int64_t(ds.class_names.size());
  o.train.model.input_size = ds.samples[0].size;
  o.train.model.validate();
  const std::vector<Fold> folds = make_folds(ds, o);
  const fs::path out(o.out_dir);
  fs::create_directories(out);

  // Resume guard: the folder either is new or was made with exactly these settings and data.
  const std::string sig = signature(ds, o);
  const fs::path cfg_path = out / "config.json";
  if (fs::exists(cfg_path)) {
    std::string old = read_text(cfg_path);
    if (json_value(old, "signature") != sig)
      throw std::runtime_error("'" + o.out_dir + "' holds a run with other settings or data:\n  there: " + json_value(old, "signature") +
                               "\n  now:   " + sig + "\nuse another --out (or delete the folder) to start afresh");
    if (json_value(old, "version") != AHMSA_VERSION)
      std::fprintf(stderr, "warning: %s was started by ahmsa %s, this is %s: finished folds are kept\n", o.out_dir.c_str(),
                   json_value(old, "version").c_str(), AHMSA_VERSION);
  } else {
    write_text_atomic(cfg_path, config_json(ds, o, folds));
  }

  RunResult res;
  res.folds = int(folds.size());
  std::vector<int> todo;
  for (size_t i = 0; i < folds.size(); ++i) {
    if (fs::exists(out / fold_dir_name(int(i), int(folds.size())) / "done.json")) {
      ++res.resumed;
      continue;
    }
    if (!o.only_folds.empty() && std::find(o.only_folds.begin(), o.only_folds.end(), int(i) + 1) == o.only_folds.end()) continue;
    todo.push_back(int(i));
  }
  int64_t total_steps = 0;
  for (int i : todo)
    total_steps += int64_t(o.train.epochs) * ((int64_t(folds[size_t(i)].train.size()) + o.train.batch_size - 1) / o.train.batch_size);
  Progress bar(std::max<int64_t>(total_steps, 1), o.progress);
  if (res.resumed) bar.line("resuming " + o.out_dir + ": " + std::to_string(res.resumed) + " of " + std::to_string(folds.size()) +
                            " folds already done");

  int done_now = 0;
  for (int i : todo) {
    const Fold& fold = folds[size_t(i)];
    const fs::path dir = out / fold_dir_name(i, int(folds.size()));
    // A half-written fold from an interrupted run: start it again from scratch.
    if (fs::exists(dir)) fs::remove_all(dir);
    auto tf = std::chrono::steady_clock::now();
    const std::string label = std::to_string(i + 1) + "/" + std::to_string(folds.size()) + " (" + fold.name + ")";
    FoldOutcome r = train_fold(ds, fold, o.train, fold_seed(o.seed, i), label, [&](int ep, int st, int steps, double loss) {
      bar.step(i + 1, int(folds.size()), fold.name, ep, o.train.epochs, st, steps, loss);
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - tf).count();
    write_fold_files(dir, ds, fold, i, r, o, secs);
    ++done_now;
    if (r.failed) {
      ++res.failed;
      bar.line("FAILED " + r.failure + " (fold marked failed, the run goes on)");
    } else {
      int correct = 0;
      for (size_t k = 0; k < fold.test.size(); ++k) correct += r.pred[k] == ds.samples[size_t(fold.test[k])].label;
      const EpochStats& last = r.curve.back();
      char b[320];
      std::snprintf(b, sizeof b, "fold %*d/%zu %-16s train %3zu test %2zu | epoch %d: train loss %.3f acc %.2f | test %d/%zu correct | %.1f s",
                    folds.size() > 99 ? 3 : 2, i + 1, folds.size(), fold.name.c_str(), fold.train.size(), fold.test.size(),
                    r.selected_epoch, last.train_loss, last.train_acc, correct, fold.test.size(), secs);
      bar.line(b);
    }
  }
  bar.finish();
  res.trained = done_now;

  int finished = 0;
  for (size_t i = 0; i < folds.size(); ++i)
    finished += fs::exists(out / fold_dir_name(int(i), int(folds.size())) / "done.json");
  if (finished == int(folds.size())) {
    RunResult rep = write_report(ds, folds, o);
    rep.trained = res.trained, rep.resumed = res.resumed;
    res = rep;
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace ahmsa::train
