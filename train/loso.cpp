#include "train/loso.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "ahmsa_version.h"
#include "train/data/run_folder.h"
#include "train/progress.h"

namespace fs = std::filesystem;

namespace ahmsa::train {

// ------------------------------------------------------------------ folds and seeds

uint64_t fold_seed(uint64_t run_seed, int index) {
  // splitmix64 finaliser of (seed, index): folds get unrelated streams, each a function of its index only.
  uint64_t z = run_seed + 0x9E3779B97F4A7C15ull * uint64_t(index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<Fold> make_folds(const data::FlowDataset& ds, const ProtocolSettings& p) {
  std::vector<std::string> subj;
  for (auto& s : ds.samples) subj.push_back(s.subject);
  std::vector<Fold> folds;
  switch (p.split) {
    case Split::Loso: folds = loso_split(subj); break;
    case Split::Kfold: folds = kfold_by_subject(subj, p.k, p.seed); break;
    case Split::Single: folds = {single_split(subj, p.test_fraction, p.seed)}; break;
  }
  for (size_t i = 0; i < folds.size(); ++i) draw_validation(folds[i], subj, p.val_fraction, fold_seed(p.seed, int(i)) ^ 0x5A5A5A5Aull);
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

// Everything that changes the results: the settings declared as Role::Result and the data. A folder
// made with another signature is not resumed.
static nlohmann::ordered_json signature(const data::FlowDataset& ds, const RunSettings& s) {
  nlohmann::ordered_json j = settings_json(s, Role::Result);
  j["data"] = std::to_string(ds.samples.size()) + " clips, fingerprint " + dataset_fingerprint(ds);
  return j;
}

// ------------------------------------------------------------------ one fold's files

static const std::vector<std::string> kFoldFiles = {"log.csv", "predictions.csv", "model.safetensors"};

static void write_fold_files(const fs::path& dir, const data::FlowDataset& ds, const Fold& fold, int index, const FoldOutcome& r,
                             const RunSettings& s, double seconds, const nlohmann::ordered_json& trained_by) {
  fs::create_directories(dir);
  const auto& names = ds.class_names;
  {  // per-epoch log
    std::string t = "epoch,lr,train_loss,train_acc,val_loss,val_uf1,test_loss,test_acc,test_uf1,seconds,test_pred\n";
    for (auto& e : r.curve) {
      std::string preds;
      for (size_t i = 0; i < e.test_pred.size(); ++i) preds += (i ? " " : "") + std::to_string(e.test_pred[i]);
      t += std::to_string(e.epoch) + "," + format_number("%.6g", e.lr) + "," + format_number("%.6f", e.train_loss) + "," + format_number("%.6f", e.train_acc) + "," +
           format_number("%.6f", e.val_loss) + "," + format_number("%.6f", e.val_uf1) + "," + format_number("%.6f", e.test_loss) + "," + format_number("%.6f", e.test_acc) +
           "," + format_number("%.6f", e.test_uf1) + "," + format_number("%.2f", e.seconds) + "," + preds + "\n";
    }
    data::write_file_atomic(dir / "log.csv", t);
  }
  std::vector<std::string> vouched = {"log.csv"};
  if (!r.failed) {
    std::string t = "sample,dataset,subject,clip,label,pred";
    for (auto& n : names) t += ",p_" + n;
    t += "\n";
    for (size_t i = 0; i < fold.test.size(); ++i) {
      const auto& smp = ds.samples[size_t(fold.test[i])];
      t += std::to_string(fold.test[i]) + "," + csv_cell(smp.dataset) + "," + csv_cell(smp.subject) + "," + csv_cell(smp.clip) + "," +
           std::to_string(smp.label) + "," + std::to_string(r.pred[i]);
      for (float p : r.prob[i]) t += "," + format_number("%.6f", p);
      t += "\n";
    }
    data::write_file_atomic(dir / "predictions.csv", t);
    std::string class_list;
    for (size_t i = 0; i < names.size(); ++i) class_list += (i ? "," : "") + names[i];
    const fs::path model = dir / "model.safetensors", tmp = data::temp_path(model);
    r.model->save(tmp.string(), {{"fold", fold.name}, {"class_names", class_list}, {"selected_epoch", std::to_string(r.selected_epoch)},
                                 {"selection", name_of(s.fold.select)}, {"fold_seed", std::to_string(fold_seed(s.protocol.seed, index))},
                                 {"data", ds.source}, {"ahmsa_version", AHMSA_VERSION}});
    data::commit_file(tmp, model);
    vouched = kFoldFiles;
  }
  std::string test_subjects;
  for (size_t i = 0; i < fold.test_subjects.size(); ++i) test_subjects += (i ? "+" : "") + fold.test_subjects[i];
  nlohmann::ordered_json j;
  j["fold"] = index + 1;
  j["name"] = fold.name;
  j["status"] = r.failed ? "failed" : "ok";
  j["failure"] = r.failure;
  j["selected_epoch"] = r.selected_epoch;
  j["epochs_run"] = r.curve.size();
  j["train"] = fold.train.size();
  j["val"] = fold.val.size();
  j["test"] = fold.test.size();
  j["seconds"] = std::round(seconds * 10) / 10;
  j["version"] = AHMSA_VERSION;
  j["trained_by"] = trained_by;
  data::write_done(dir, j, vouched);  // last: a valid done.json means the fold is complete
}

// ------------------------------------------------------------------ the run


static bool wanted(const std::vector<int>& only, int i) { return only.empty() || std::count(only.begin(), only.end(), i + 1) > 0; }

// Validates the settings against the data and fills in what the data decides (classes, input size);
// returns the folds. Throws before anything is written.
static std::vector<Fold> prepare_run(const data::FlowDataset& ds, RunSettings& s) {
  if (ds.samples.empty()) throw std::invalid_argument("no clips to train on");
  if (ds.class_names.empty()) throw std::invalid_argument("dataset '" + ds.source + "' has no class names");
  validate_settings(s);
  s.fold.model.classes = int64_t(ds.class_names.size());
  s.fold.model.input_size = ds.samples[0].size;
  s.fold.model.validate();
  std::vector<Fold> folds = make_folds(ds, s.protocol);
  for (int f : s.only_folds)
    if (f > int(folds.size()))
      throw std::invalid_argument("--folds: there is no fold " + std::to_string(f) + ", this run has " + std::to_string(folds.size()));
  for (size_t i = 0; i < folds.size(); ++i)
    if (folds[i].train.empty()) throw std::invalid_argument("fold " + std::to_string(i + 1) + " (" + folds[i].name + ") has no training clip");
  return folds;
}

static fs::path fold_dir(const fs::path& out, size_t i, size_t n) { return out / data::fold_dir_name(int(i), int(n)); }
static fs::path claim_path(const fs::path& dir) { return dir / "claim.json"; }

const char* state_name(FoldState::Kind k) {
  switch (k) {
    case FoldState::Done: return "done";
    case FoldState::Failed: return "failed";
    case FoldState::NotStarted: return "not started";
    case FoldState::Working: return "being trained";
    case FoldState::Abandoned: return "abandoned";
    case FoldState::Untrusted: return "not trusted";
  }
  return "?";
}

std::vector<FoldState> fold_states(const std::string& out_dir, const std::vector<Fold>& folds, const ClaimSettings& claims) {
  std::vector<FoldState> st;
  const data::ClaimPolicy policy{claims.timeout_s, false};
  for (size_t i = 0; i < folds.size(); ++i) {
    const fs::path dir = fold_dir(out_dir, i, folds.size());
    FoldState f;
    f.fold = int(i) + 1, f.name = folds[i].name;
    data::DoneState d = data::read_done(dir);
    if (d.kind == data::DoneState::Valid) {
      f.kind = d.record.value("status", std::string()) == "failed" ? FoldState::Failed : FoldState::Done;
      f.detail = d.record.value("failure", std::string());
    } else if (d.kind == data::DoneState::Invalid) {
      f.kind = FoldState::Untrusted, f.detail = d.reason;
    } else {
      data::ClaimVerdict v = data::judge_claim(claim_path(dir), policy);
      switch (v.kind) {
        case data::ClaimVerdict::Free: f.kind = FoldState::NotStarted, f.detail = "no claim"; break;
        case data::ClaimVerdict::Live: f.kind = FoldState::Working, f.detail = "claimed by " + v.why; break;
        case data::ClaimVerdict::Dead: f.kind = FoldState::Abandoned, f.detail = "claimed by " + v.why; break;
        case data::ClaimVerdict::Finished: f.kind = FoldState::Untrusted, f.detail = v.why + ", but " + dir.string() + "/done.json is missing"; break;
      }
    }
    st.push_back(f);
  }
  return st;
}

static RunReport report_from_folds(const data::FlowDataset& ds, const std::vector<Fold>& folds, const RunSettings& s, const fs::path& out) {
  RunReport r;
  r.folds = fold_states(out.string(), folds, s.claims);
  r.complete = std::all_of(r.folds.begin(), r.folds.end(), [](const FoldState& f) { return f.kind == FoldState::Done || f.kind == FoldState::Failed; });
  if (r.complete) r.report = write_report(ds, folds, out.string(), report_settings(s));
  return r;
}

RunReport report_run(const data::FlowDataset& ds, const RunSettings& settings, const std::string& out_dir) {
  RunSettings s = settings;
  const std::vector<Fold> folds = prepare_run(ds, s);
  const fs::path cfg = fs::path(out_dir) / "config.json";
  if (!data::check_resume(cfg, signature(ds, s), "--out"))
    throw std::runtime_error("'" + out_dir + "' holds no run: there is no " + cfg.string());
  return report_from_folds(ds, folds, s, out_dir);
}

namespace {
// Thrown from the step callback when another process took this fold's claim over.
struct ClaimLost : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace

RunResult run_training(const data::FlowDataset& ds, const RunOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  // Everything is checked before the first byte is written.
  RunSettings s = o.settings;
  if (o.out_dir.empty()) throw std::invalid_argument("no output folder (--out)");
  s.fold.device = o.device;
  const std::vector<Fold> folds = prepare_run(ds, s);
  const fs::path out(o.out_dir);
  const nlohmann::ordered_json sig = signature(ds, s);
  const fs::path cfg_path = out / "config.json";

  // Resume guard: the folder either is new or was made with exactly these settings and data. Of
  // processes starting on a new folder at once, one creates config.json; the others check theirs.
  if (data::check_resume(cfg_path, sig, "--out")) {
    const std::string there = data::read_json_file(cfg_path).value("version", std::string());
    if (there != AHMSA_VERSION)
      std::fprintf(stderr, "warning: %s was started by ahmsa %s, this is %s: finished folds are kept\n", o.out_dir.c_str(), there.c_str(),
                   AHMSA_VERSION);
  } else {
    fs::create_directories(out);
    RunRecord rec{sig, settings_json(s), o.command_line, o.input, ds.source, device_name(o.device), ds.samples.size(), folds.size(), o.source};
    if (!data::create_file_exclusive(cfg_path, config_json(rec))) data::check_resume(cfg_path, sig, "--out");
  }

  RunResult res;
  res.folds = int(folds.size());
  std::vector<int> todo;
  std::vector<bool> untrusted(folds.size(), false);
  for (size_t i = 0; i < folds.size(); ++i) {
    data::DoneState d = data::read_done(fold_dir(out, i, folds.size()));
    if (d.kind == data::DoneState::Valid) {
      ++res.resumed;
      continue;
    }
    if (d.kind == data::DoneState::Invalid) {
      std::fprintf(stderr, "warning: fold %zu (%s) is not trusted and is trained again: %s\n", i + 1, folds[i].name.c_str(), d.reason.c_str());
      untrusted[i] = true;
    }
    if (wanted(s.only_folds, int(i))) todo.push_back(int(i));
  }
  int64_t total_steps = 0;
  for (int i : todo)
    total_steps += int64_t(s.fold.epochs) * ((int64_t(folds[size_t(i)].train.size()) + s.fold.batch_size - 1) / s.fold.batch_size);
  Progress bar(std::max<int64_t>(total_steps, 1), o.progress);
  if (res.resumed)
    bar.line("resuming " + o.out_dir + ": " + std::to_string(res.resumed) + " of " + std::to_string(folds.size()) + " folds already done");

  data::StopOnSignal stop_guard;
  const data::ClaimPolicy policy{s.claims.timeout_s, s.claims.reclaim};
  for (int i : todo) {
    const Fold& fold = folds[size_t(i)];
    const fs::path dir = fold_dir(out, size_t(i), folds.size());
    const std::string label = std::to_string(i + 1) + "/" + std::to_string(folds.size()) + " (" + fold.name + ")";
    // Claim the fold; a fold another live process holds is left to it.
    fs::create_directories(dir);
    nlohmann::ordered_json what;
    what["fold"] = i + 1, what["name"] = fold.name;
    data::FoldClaim::Attempt at = data::FoldClaim::acquire(claim_path(dir), what, policy, untrusted[size_t(i)]);
    if (!at.claim && at.held.kind == data::ClaimVerdict::Finished) {
      if (data::read_done(dir).kind == data::DoneState::Valid) {  // finished by another process since the scan
        ++res.resumed;
        continue;
      }
      at = data::FoldClaim::acquire(claim_path(dir), what, policy, true);  // "finished", but its files are gone
    }
    if (!at.claim) {
      ++res.held;
      bar.line("fold " + label + ": left to " + at.held.why);
      continue;
    }
    if (!at.took_over.empty()) bar.line("fold " + label + ": taking over the claim of " + at.took_over);
    if (!untrusted[size_t(i)] && data::read_done(dir).kind == data::DoneState::Valid) {  // done by another process since the scan
      ++res.resumed;
      continue;  // (the claim is released)
    }
    // A half-written or untrusted fold from an earlier attempt: start it again from scratch (the
    // claim files stay).
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind("claim.json", 0) != 0) fs::remove_all(e.path());
    auto tf = std::chrono::steady_clock::now();
    FoldOutcome r;
    try {
      r = train_fold(ds, fold, s.fold, fold_seed(s.protocol.seed, i), label, [&](int ep, int st, int steps, double loss) {
        if (int sig = data::stop_signal()) {
          bar.finish();
          throw data::Interrupted(sig, "interrupted by " + std::string(data::signal_name(sig)) + " in fold " + label + ", epoch " +
                                           std::to_string(ep) + ": that fold was abandoned, " + std::to_string(res.resumed + res.trained) +
                                           " of " + std::to_string(folds.size()) + " folds are done in " + o.out_dir +
                                           "; rerun the same command to resume");
        }
        if (at.claim->lost()) throw ClaimLost("fold " + label + ": another process took over its claim (this one was thought dead); left to it");
        bar.step(i + 1, int(folds.size()), fold.name, ep, s.fold.epochs, st, steps, loss);
      });
    } catch (const ClaimLost& e) {
      ++res.held;
      bar.line(e.what());
      continue;
    }
    if (!at.claim->still_ours()) {
      ++res.held;
      bar.line("fold " + label + ": another process took over its claim (this one was thought dead); its results are not written");
      continue;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - tf).count();
    nlohmann::ordered_json by;
    for (const char* k : {"host", "pid", "started", "slurm_job"})
      if (at.claim->record().contains(k)) by[k] = at.claim->record()[k];
    write_fold_files(dir, ds, fold, i, r, s, secs, by);
    at.claim->finish({{"status", r.failed ? "failed" : "ok"}});
    ++res.trained;
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

  // The process that finds every fold done writes the report (another may be writing the same one).
  // A fold without done.json means no report: that is found without reading every fold's files.
  bool all_present = true;
  for (size_t i = 0; i < folds.size() && all_present; ++i) all_present = fs::exists(fold_dir(out, i, folds.size()) / "done.json");
  RunReport rep;
  if (all_present) rep = report_from_folds(ds, folds, s, out);
  if (rep.complete) {
    res.report = rep.report;
    res.failed = res.report.failed;
    res.complete = true;
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace ahmsa::train
