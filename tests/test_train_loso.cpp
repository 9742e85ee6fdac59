// End to end on a tiny in-memory corpus: LOSO folds trained, every report file written and parsed,
// an interrupted-then-resumed run equal byte for byte to an uninterrupted one, and a NaN loss that
// stops only its own fold.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "flow/image.h"
#include "model/safetensors.h"
#include "tensor/parallel.h"
#include "train/data/table.h"
#include "tiny_corpus.h"
#include "train/loso.h"

namespace fs = std::filesystem;
using namespace ahmsa;
using namespace ahmsa::train;

static RunOptions tiny_options(const std::string& out) {
  RunOptions o;
  o.out_dir = out;
  o.progress = false;
  o.settings.protocol.seed = 3;
  o.settings.fold.model = AhmsaConfig::parse("size=8;stem=8;channels=32,32");
  o.settings.fold.epochs = 10;
  o.settings.fold.batch_size = 6;
  o.settings.fold.optim.lr = 3e-3f;
  o.settings.fold.optim.warmup_epochs = 1;
  return o;
}

static std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

static fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("ahmsa_test_train_" + name);
  fs::remove_all(d);
  return d;
}

TEST_CASE("LOSO end to end: folds, report files, resume equals an uninterrupted run") {
  set_num_threads(2);
  data::FlowDataset ds = testing::tiny_corpus(4, 5);
  fs::path a = fresh_dir("full");
  RunResult r = run_training(ds, tiny_options(a.string()));
  REQUIRE(r.complete);
  CHECK(r.folds == 4);
  CHECK(r.failed == 0);
  CHECK(r.trained == 4);
  // The easy signal is learnt: chance is 1/3.
  MESSAGE("tiny LOSO: accuracy " << r.report.pooled.accuracy << " UF1 " << r.report.pooled.uf1);
  CHECK(r.report.pooled.accuracy >= 0.75);
  CHECK(r.report.pooled.uf1 >= 0.7);
  CHECK(r.report.pooled.n == 24);

  for (const char* f : {"config.json", "metrics.json", "megc_log.txt", "predictions.csv", "confusion.png", "curves.png", "summary.txt"})
    CHECK_MESSAGE(fs::exists(a / f), f);
  for (int i = 1; i <= 4; ++i) {
    fs::path d = a / ("fold_0" + std::to_string(i));
    for (const char* f : {"done.json", "log.csv", "predictions.csv", "model.safetensors"}) CHECK_MESSAGE(fs::exists(d / f), (d / f).string());
    data::Table log = data::read_csv((d / "log.csv").string());
    CHECK(log.size() == 11);  // header + 10 epochs
    data::Table pred = data::read_csv((d / "predictions.csv").string());
    CHECK(pred.size() == 7);  // header + 6 test clips of one subject
    CHECK(pred[0].size() == 9);  // sample,dataset,subject,clip,label,pred,p_negative,p_positive,p_surprise
    // The checkpoint loads back into a model with the stored config, and predicts as the file says.
    SafetensorsFile st = read_safetensors((d / "model.safetensors").string());
    AhmsaConfig cfg = AhmsaNet::config_of(st);
    CHECK(cfg.channels == std::vector<int64_t>{32, 32});
    Generator g(0);
    AhmsaNet net(cfg, g);
    net.load(st);
    std::vector<int> idx;
    for (size_t row = 1; row < pred.size(); ++row) idx.push_back(std::stoi(pred[row][0]));
    auto prob = predict_proba(net, ds, idx);
    for (size_t k = 0; k < idx.size(); ++k) {
      CHECK(argmax(prob[k]) == std::stoi(pred[k + 1][5]));
      CHECK(prob[k][0] == doctest::Approx(std::stod(pred[k + 1][6])).epsilon(1e-4));
    }
    CHECK(st.metadata.at("class_names") == "negative,positive,surprise");
  }
  std::string metrics = slurp(a / "metrics.json");
  CHECK(metrics.find("\"pooled\"") != std::string::npos);
  CHECK(metrics.find("\"fold_averaged_NOT_MEGC\"") != std::string::npos);
  CHECK(metrics.find("\"per_dataset\"") != std::string::npos);
  CHECK(metrics.find("\"casme2\"") != std::string::npos);
  CHECK(metrics.find("TEST_SELECTED") == std::string::npos);  // only on request
  const nlohmann::json mj = nlohmann::json::parse(metrics);
  CHECK(mj["pooled"]["uf1"].get<double>() == doctest::Approx(r.report.pooled.uf1).epsilon(1e-6));
  CHECK(mj["pooled"]["n"].get<int>() == 24);
  CHECK(mj["protocol"] == "loso");
  std::string megc = slurp(a / "megc_log.txt");
  CHECK(megc.rfind("casme2 sub01\n", 0) == 0);
  CHECK(std::count(megc.begin(), megc.end(), '\n') == 4 + 24);
  img::Image cm = img::load((a / "confusion.png").string());
  CHECK(cm.width > 200);
  img::Image cv = img::load((a / "curves.png").string());
  CHECK(cv.width > 400);
  const nlohmann::json cj = nlohmann::json::parse(slurp(a / "config.json"));
  CHECK(cj.contains("version"));
  CHECK(cj["settings"]["epochs"] == 10);
  CHECK(cj["settings"]["lr"] == 0.003);
  CHECK(cj["settings"]["optimizer"] == "adamw");
  CHECK(cj["signature"]["model-config"] == cj["settings"]["model-config"]);
  CHECK_FALSE(cj["signature"].contains("folds"));  // which folds run now is no part of the signature

  // Interrupted run: fold 2 and 4 in one invocation, a half-written fold 1 (no done.json), then resume.
  fs::path b = fresh_dir("resumed");
  RunOptions ob = tiny_options(b.string());
  ob.settings.only_folds = {2, 4};
  RunResult rb = run_training(ds, ob);
  CHECK_FALSE(rb.complete);
  CHECK(rb.trained == 2);
  CHECK_FALSE(fs::exists(b / "metrics.json"));
  fs::create_directories(b / "fold_01");
  std::ofstream(b / "fold_01" / "log.csv") << "epoch,garbage\n1,2\n";
  ob.settings.only_folds.clear();
  RunResult rc = run_training(ds, ob);
  REQUIRE(rc.complete);
  CHECK(rc.resumed == 2);
  CHECK(rc.trained == 2);
  CHECK(slurp(b / "metrics.json") == metrics);
  CHECK(slurp(b / "megc_log.txt") == megc);
  CHECK(slurp(b / "predictions.csv") == slurp(a / "predictions.csv"));
  // A rerun of a finished folder trains nothing and rewrites the same report.
  RunResult rd = run_training(ds, ob);
  CHECK(rd.trained == 0);
  CHECK(rd.resumed == 4);
  CHECK(slurp(b / "metrics.json") == metrics);
  // A fold whose files no longer match its done.json is trained again; an empty done.json too. The
  // report is the same as before: the retrained folds are reproduced from their seeds.
  {
    const fs::path model = b / "fold_02" / "model.safetensors";
    const std::string bytes = slurp(model);
    std::ofstream(model, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
    std::ofstream(b / "fold_03" / "done.json", std::ios::binary | std::ios::trunc);
    RunResult re = run_training(ds, ob);
    REQUIRE(re.complete);
    CHECK(re.resumed == 2);
    CHECK(re.trained == 2);
    CHECK(slurp(b / "metrics.json") == metrics);
    CHECK(slurp(model).size() == bytes.size());
    const nlohmann::json done = nlohmann::json::parse(slurp(b / "fold_03" / "done.json"));
    CHECK(done["files"]["log.csv"]["bytes"].get<size_t>() == fs::file_size(b / "fold_03" / "log.csv"));
    CHECK(done["files"].contains("model.safetensors"));
  }
  // Other settings in the same folder are refused.
  RunOptions other = tiny_options(b.string());
  other.settings.fold.epochs = 7;
  CHECK_THROWS_WITH_AS(run_training(ds, other), doctest::Contains("epochs: there 10, now 7"), std::runtime_error);
  fs::remove_all(a), fs::remove_all(b);
}

TEST_CASE("a non-finite loss stops its fold with a message naming fold, epoch, step, lr and loss; the run goes on") {
  set_num_threads(2);
  data::FlowDataset ds = testing::tiny_corpus(4, 5);
  std::vector<std::string> subj;
  for (auto& s : ds.samples) subj.push_back(s.subject);
  // An exploding learning rate: after the first update the loss is infinite or NaN.
  FoldSettings t = tiny_options("").settings.fold;
  t.optim.lr = 1e30f;
  t.optim.schedule = ScheduleKind::Constant;
  t.epochs = 2;
  t.model.classes = 3;
  FoldOutcome f = train_fold(ds, loso_split(subj)[0], t, 1, "X");
  CHECK(f.failed);
  CHECK(f.failure.find("fold X: loss is") != std::string::npos);
  CHECK(f.failure.find("at epoch 1, step 2/3") != std::string::npos);
  CHECK(f.failure.find("lr 1e+30") != std::string::npos);
  CHECK(f.model == nullptr);

  // In a run every fold fails on its own; each is marked, the report still comes out.
  fs::path d = fresh_dir("nan");
  RunOptions o = tiny_options(d.string());
  o.settings.fold = t;
  RunResult r = run_training(ds, o);
  REQUIRE(r.complete);
  CHECK(r.failed == 4);
  for (int i = 1; i <= 4; ++i) {
    std::string done = slurp(d / ("fold_0" + std::to_string(i)) / "done.json");
    CHECK(done.find("\"status\": \"failed\"") != std::string::npos);
    CHECK(done.find("fold " + std::to_string(i) + "/4 (casme2/sub0" + std::to_string(i) + "): loss is") != std::string::npos);
    CHECK_FALSE(fs::exists(d / ("fold_0" + std::to_string(i)) / "model.safetensors"));
  }
  std::string m = slurp(d / "metrics.json");
  CHECK(m.find("\"folds_failed\": 4") != std::string::npos);
  CHECK(m.find("\"clips_scored\": 0") != std::string::npos);
  CHECK(m.find("\"clips_missing_from_failed_folds\": 24") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("k-fold with validation selection, early stopping and the labelled best-test score") {
  set_num_threads(2);
  data::FlowDataset ds = testing::tiny_corpus(4, 5);
  fs::path d = fresh_dir("kfold");
  RunOptions o = tiny_options(d.string());
  o.settings.protocol.split = Split::Kfold;
  o.settings.protocol.k = 2;
  o.settings.protocol.val_fraction = 0.5;  // one of the two training subjects of each fold validates
  o.settings.fold.select = Selection::Val;
  o.settings.fold.patience = 2;
  o.settings.report_best_test = true;
  RunResult r = run_training(ds, o);
  REQUIRE(r.complete);
  CHECK(r.folds == 2);
  CHECK(r.report.pooled.n == 24);
  for (int i = 1; i <= 2; ++i) {
    std::string done = slurp(d / ("fold_0" + std::to_string(i)) / "done.json");
    CHECK(done.find("\"train\": 6") != std::string::npos);  // 1 subject x 6 clips trains
    CHECK(done.find("\"val\": 6") != std::string::npos);
    CHECK(done.find("\"test\": 12") != std::string::npos);
    const int sel = std::atoi(done.substr(done.find("\"selected_epoch\": ") + 18).c_str());
    const int ran = std::atoi(done.substr(done.find("\"epochs_run\": ") + 14).c_str());
    CHECK(sel >= 1);
    CHECK(sel <= ran);
    CHECK((ran == 10 || ran - sel == 2));  // the whole budget, or stopped 2 epochs after the best
  }
  std::string m = slurp(d / "metrics.json");
  CHECK(m.find("\"best_test_epoch_TEST_SELECTED\"") != std::string::npos);
  CHECK(m.find("TEST-SELECTED, optimistic") != std::string::npos);
  CHECK(slurp(d / "summary.txt").find("TEST-SELECTED") != std::string::npos);
  CHECK(m.find("\"selection\": \"best validation UF1") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("an invalid run is refused before anything is written") {
  data::FlowDataset ds = testing::tiny_corpus(4, 5);
  fs::path d = fresh_dir("invalid");
  auto refused = [&](RunOptions o, const std::string& message) {
    o.out_dir = d.string();
    CHECK_THROWS_WITH_AS(run_training(ds, o), doctest::Contains(message.c_str()), std::invalid_argument);
    CHECK_FALSE(fs::exists(d));
  };
  RunOptions o = tiny_options("");
  o.settings.fold.select = Selection::Val;  // no validation subjects
  refused(o, "--select val needs validation subjects");
  o = tiny_options("");
  o.settings.only_folds = {5};
  refused(o, "--folds: there is no fold 5, this run has 4");
  o = tiny_options("");
  o.settings.protocol.split = Split::Kfold;
  o.settings.protocol.k = 9;
  refused(o, "k = 9");
  o = tiny_options("");
  o.settings.fold.optim.lr = -1;
  refused(o, "--lr: -1 is outside");
  o = tiny_options("");
  o.settings.fold.epochs = 0;
  refused(o, "--epochs: 0 is outside [1, 1e+06]");
}

TEST_CASE("the settings: declared defaults, JSON by name, the run file lists every setting once") {
  RunSettings s;
  CHECK(s.protocol.split == Split::Loso);
  CHECK(s.protocol.k == 5);
  CHECK(s.fold.epochs == 30);
  CHECK(s.fold.batch_size == 32);
  CHECK(s.fold.optim.optimizer == OptimizerKind::AdamW);
  CHECK(s.fold.optim.lr == 1e-3f);
  CHECK(s.fold.flip);
  CHECK(s.fold.select == Selection::Last);
  const nlohmann::ordered_json j = settings_json(s);
  CHECK(j["split"] == "loso");
  CHECK(j["schedule"] == "cosine");
  CHECK(j["lr"] == 0.001);  // the float's shortest decimal, not 0.0010000000474974513
  CHECK(j["min-lr"] == 1e-05);
  CHECK(j.size() == 22 + 1 + 3 + 13);  // + cuda-graphs, the 3 fold-claim settings of #15, the recipe of #19 (8 augmentation, 3 mixing, 2 averaging)
  const nlohmann::ordered_json sig = settings_json(s, Role::Result);
  CHECK_FALSE(sig.contains("folds"));
  CHECK_FALSE(sig.contains("cuda-graphs"));  // the same numbers either way
  CHECK_FALSE(sig.contains("report-best-test"));
  CHECK(sig.size() == 20 + 13);
  resolve_settings(s, false);
  CHECK(s.protocol.val_fraction == 0.0);
  s.fold.select = Selection::Val;
  resolve_settings(s, false);
  CHECK(s.protocol.val_fraction == 0.15);
  const std::string toml = settings_toml(s, {{"cache", "\"c\""}});
  CHECK(toml.find("cache = \"c\"\n") != std::string::npos);
  CHECK(toml.find("select = \"val\"\n") != std::string::npos);
  CHECK(toml.find("val-fraction = 0.15\n") != std::string::npos);
  CHECK(toml.find("# folds = []") != std::string::npos);  // empty list: left out, shown as a comment
  for (auto& [name, v] : j.items())
    if (name != "folds") CHECK_MESSAGE(toml.find("\n" + name + " = ") != std::string::npos, name);
}

TEST_CASE("settings_from_json reads config.json's settings back; report_run names the folds not done, then equals run_training's report") {
  RunSettings s;
  s.fold.epochs = 7, s.fold.optim.lr = 3e-3f, s.fold.select = Selection::Val, s.protocol.seed = 9, s.only_folds = {2, 5};
  s.fold.model = AhmsaConfig::parse("size=8;stem=8;channels=32,32");
  s.fold_from_env = "X", s.claims.timeout_s = 42, s.claims.reclaim = true;
  const RunSettings back = settings_from_json(settings_json(s));
  CHECK(settings_json(back) == settings_json(s));
  CHECK(back.fold.optim.lr == 3e-3f);
  CHECK(back.claims.timeout_s == 42);
  nlohmann::ordered_json bad = settings_json(s);
  bad["select"] = "best";
  CHECK_THROWS_WITH_AS(settings_from_json(bad), doctest::Contains("setting 'select': \"best\" cannot be read back: 'best' is not one of last|val"),
                       std::invalid_argument);
  ::setenv("AHMSA_TEST_TASK", "4", 1);
  RunSettings e;
  e.only_folds = {1};
  e.fold_from_env = "AHMSA_TEST_TASK";
  resolve_settings(e, false);
  CHECK(e.only_folds == std::vector<int>{1, 4});
  ::unsetenv("AHMSA_TEST_TASK");
  CHECK_THROWS_WITH_AS(resolve_settings(e, false), doctest::Contains("the variable is not set"), std::invalid_argument);

  set_num_threads(2);
  data::FlowDataset ds = testing::tiny_corpus(4, 5);
  const fs::path a = fresh_dir("report_run_a"), b = fresh_dir("report_run_b");
  RunOptions oa = tiny_options(a.string());
  REQUIRE(run_training(ds, oa).complete);
  RunOptions ob = tiny_options(b.string());
  ob.settings.only_folds = {1, 3};
  CHECK_FALSE(run_training(ds, ob).complete);
  RunReport partial = report_run(ds, ob.settings, b.string());
  CHECK_FALSE(partial.complete);
  REQUIRE(partial.folds.size() == 4);
  CHECK(partial.folds[0].kind == FoldState::Done);
  CHECK(partial.folds[1].kind == FoldState::NotStarted);
  CHECK(partial.folds[1].detail == "no claim");
  CHECK(std::string(state_name(partial.folds[1].kind)) == "not started");
  CHECK_FALSE(fs::exists(b / "metrics.json"));
  ob.settings.only_folds = {2, 4};
  REQUIRE(run_training(ds, ob).complete);
  fs::remove(b / "metrics.json");
  RunReport full = report_run(ds, settings_from_json(nlohmann::ordered_json::parse(slurp(b / "config.json"))["settings"]), b.string());
  REQUIRE(full.complete);
  CHECK(slurp(b / "metrics.json") == slurp(a / "metrics.json"));
  RunOptions other = tiny_options(b.string());
  other.settings.fold.epochs = 3;
  CHECK_THROWS_WITH_AS(report_run(ds, other.settings, b.string()), doctest::Contains("epochs: there 10, now 3"), std::runtime_error);
  CHECK_THROWS_WITH_AS(report_run(ds, other.settings, (a / "nothing").string()), doctest::Contains("holds no run"), std::runtime_error);
  fs::remove_all(a), fs::remove_all(b);
}
