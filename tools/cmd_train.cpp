// `ahmsa train`: subject-independent evaluation of AHMSA-Net on a flow cache (LOSO by default), with a
// resumable output folder and a report. Protocol, defaults and outputs: docs/TRAINING.md.
#include <cstdio>
#include <sstream>
#include <thread>

#include "tensor/parallel.h"
#include "tools/command.h"
#include "train/data/flow_dataset.h"
#include "train/loso.h"

namespace {

using namespace ahmsa;

const char* kTrainHelp =
    "usage: ahmsa train (--cache DIR | --flow-folder DIR --csv FILE) --out DIR [options]\n"
    "input:\n"
    "  --cache DIR            flow cache written by `ahmsa prepare`\n"
    "  --flow-folder DIR      pre-computed (u, v, os) 28x28 PNGs (flat or <subject>/{u_train,u_test}/<label>/)\n"
    "  --csv FILE             with --flow-folder: the MEGC2019 composite CSV (db,subject,clip,label)\n"
    "  --out DIR              output folder (required); rerunning with the same settings resumes it\n"
    "protocol:\n"
    "  --split loso|kfold|split  leave-one-subject-out, k folds of subjects, or one train/test split (default loso)\n"
    "  --k 5                  folds for --split kfold\n"
    "  --test-fraction 0.2    held-out share of subjects for --split split\n"
    "  --folds LIST           train only these folds now (1-based, e.g. 1,2,5); the report is written once all are done\n"
    "  --seed 1               run seed: initialisation, order, augmentation, subject draws (fold seeds derive from it)\n"
    "model selection:\n"
    "  --select last|val      last epoch of the fixed budget (default, clean) or best validation UF1\n"
    "  --val-fraction 0       share of each fold's training subjects held out for validation (0 = none;\n"
    "                         --select val sets 0.15 when not given)\n"
    "  --patience 0           with --select val: stop after N epochs without improvement (0 = whole budget)\n"
    "  --report-best-test     also report the test-selected score (best epoch on the test subject), labelled\n"
    "                         TEST-SELECTED: optimistic, not a valid estimate\n"
    "optimisation:\n"
    "  --epochs 30            epochs per fold\n"
    "  --batch 32             batch size\n"
    "  --optimizer adamw      adamw | adam | sgd (momentum 0.9)\n"
    "  --lr 0.001             peak learning rate\n"
    "  --weight-decay 0.05    decoupled for AdamW, L2 otherwise\n"
    "  --schedule cosine      cosine (linear warm-up then cosine) | constant | onecycle\n"
    "  --warmup 2             warm-up epochs (cosine)\n"
    "  --min-lr 1e-5          final learning rate (cosine)\n"
    "  --balanced-loss        class weights N / (K n_c) over the training fold\n"
    "  --balanced-sampling    draw batches class-uniformly (with replacement)\n"
    "  --label-smoothing 0    label smoothing epsilon\n"
    "  --no-flip              no horizontal-flip augmentation (flip mirrors x and maps u -> 1 - u)\n"
    "  --config KEY=V;...     model config (keys as in AhmsaConfig::to_string: size, stem, channels, dropout, ...;\n"
    "                         default: the full AHMSA-Net, stem=32;channels=64,128,256)\n"
    "other:\n"
    "  --threads N            CPU threads (default: all cores)\n"
    "  --quiet                no progress bar or per-fold lines\n";

std::vector<int> parse_int_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string w;
  while (std::getline(ss, w, ','))
    if (!w.empty()) v.push_back(std::stoi(w));
  return v;
}

int cmd_train(const cli::Args& a) {
  using cli::has_flag;
  using cli::option;
  using cli::option_double;
  using cli::option_int;
  using cli::option_u64;
  if (has_flag(a, "--help")) {
    std::printf("%s", kTrainHelp);
    return 0;
  }
  train::RunOptions o;
  std::string cache = option(a, "--cache"), folder = option(a, "--flow-folder"), csv = option(a, "--csv");
  o.out_dir = option(a, "--out");
  if (o.out_dir.empty()) throw std::invalid_argument("--out DIR is required (ahmsa train --help)");
  if (cache.empty() == folder.empty()) throw std::invalid_argument("give exactly one of --cache DIR or --flow-folder DIR --csv FILE");
  if (!folder.empty() && csv.empty()) throw std::invalid_argument("--flow-folder needs --csv FILE (the composite CSV)");
  const int threads = option_int(a, "--threads", 0);
  set_num_threads(threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency())));

  o.split = option(a, "--split", "loso");
  o.kfold = option_int(a, "--k", 5);
  o.test_fraction = option_double(a, "--test-fraction", 0.2);
  o.only_folds = parse_int_list(option(a, "--folds", ""));
  o.seed = option_u64(a, "--seed", 1);
  o.report_best_test = has_flag(a, "--report-best-test");
  o.progress = !has_flag(a, "--quiet");
  train::TrainOptions& t = o.train;
  t.select = option(a, "--select", "last");
  o.val_fraction = option_double(a, "--val-fraction", t.select == "val" ? 0.15 : 0.0);
  t.patience = option_int(a, "--patience", 0);
  t.epochs = option_int(a, "--epochs", 30);
  t.batch_size = option_int(a, "--batch", 32);
  t.optimizer = option(a, "--optimizer", "adamw");
  t.lr = option_double(a, "--lr", 0.001);
  t.weight_decay = option_double(a, "--weight-decay", 0.05);
  t.schedule = option(a, "--schedule", "cosine");
  t.warmup_epochs = option_double(a, "--warmup", 2);
  t.min_lr = option_double(a, "--min-lr", 1e-5);
  t.class_balanced_loss = has_flag(a, "--balanced-loss");
  t.balanced_sampling = has_flag(a, "--balanced-sampling");
  t.label_smoothing = option_double(a, "--label-smoothing", 0);
  t.flip = !has_flag(a, "--no-flip");
  t.model = AhmsaConfig::parse(option(a, "--config", ""));
  o.command_line = "ahmsa train";
  for (auto& s : a) o.command_line += " " + s;

  data::FlowDataset ds = cache.empty() ? data::load_flow_folder(folder, csv) : data::load_flow_cache(cache);
  o.input = cache.empty() ? "flow folder " + folder + " with " + csv : "flow cache " + cache;
  std::fprintf(stderr, "data: %s\n", ds.source.c_str());
  std::fprintf(stderr, "model: %s; %d epochs, batch %d, %s lr %g (%s), weight decay %g; %d threads\n", t.model.to_string().c_str(),
               t.epochs, t.batch_size, t.optimizer.c_str(), double(t.lr), t.schedule.c_str(), double(t.weight_decay), num_threads());
  train::RunResult r = train::run_training(ds, o);
  if (!r.complete) {
    std::printf("train: %d folds trained now, %d done before; the report is written when all %d folds are done (rerun to continue)\n",
                r.trained, r.resumed, r.folds);
    return 0;
  }
  std::FILE* f = std::fopen(r.summary_txt.c_str(), "r");
  if (f) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, f)) std::fputs(buf, stdout);
    std::fclose(f);
  }
  std::printf("report: %s\n  metrics:   %s\n  MEGC log:  %s\n  confusion: %s\n  curves:    %s\n  per fold:  %s/fold_NN/ (log.csv, predictions.csv, model.safetensors)\n",
              o.out_dir.c_str(), r.metrics_json.c_str(), r.megc_log.c_str(), r.confusion_png.c_str(), r.curves_png.c_str(), o.out_dir.c_str());
  std::printf("time: %.1f s (%d folds trained now, %d resumed)\n", r.seconds, r.trained, r.resumed);
  return r.failed > 0 ? 3 : 0;
}

}  // namespace

AHMSA_COMMAND("train", "LOSO / k-fold training and evaluation of AHMSA-Net on a flow cache, with a report", cmd_train);
