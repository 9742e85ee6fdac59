// The settings of a training run, each declared once (declare_settings below): its option name,
// type (the member's), default, allowed values or range, help line and whether it changes the results.
// The command line (tools/cmd_train.cpp binds every entry to a CLI11 option), the run file
// (--write-config), config.json, the resume signature and the report are all derived from that list,
// so a setting is added or changed in one place.
//
// The consumers get the narrow part they need: make_folds the ProtocolSettings, train_fold the
// FoldSettings (optimiser and schedule in OptimSettings), the report a ReportSettings.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/ahmsa_net.h"
#include "train/augment.h"

namespace ahmsa::train {

// ---- the modes: enums from the parser on ---------------------------------------------------
enum class Split { Loso, Kfold, Single };
enum class Selection { Last, Val };
enum class OptimizerKind { AdamW, Adam, Sgd };
enum class ScheduleKind { Cosine, Constant, OneCycle };

// The spelling of each value on the command line, in run files and in config.json.
template <class E>
using Choices = std::vector<std::pair<const char*, E>>;
const Choices<Split>& choices(Split);
const Choices<Selection>& choices(Selection);
const Choices<OptimizerKind>& choices(OptimizerKind);
const Choices<ScheduleKind>& choices(ScheduleKind);

template <class E>
const char* name_of(E e) {
  for (auto& [n, v] : choices(E{}))
    if (v == e) return n;
  return "?";
}
// "a|b|c"
template <class E>
std::string choice_list(E) {
  std::string s;
  for (auto& [n, v] : choices(E{})) s += (s.empty() ? "" : "|") + std::string(n);
  return s;
}

// ---- the parts each consumer receives ------------------------------------------------------
struct ProtocolSettings {  // make_folds
  Split split{};
  int k = 0;
  double test_fraction = 0;
  double val_fraction = 0;
  uint64_t seed = 0;
};

struct OptimSettings {  // make_optimizer, make_schedule
  OptimizerKind optimizer{};
  float lr = 0, weight_decay = 0;
  ScheduleKind schedule{};
  float warmup_epochs = 0, min_lr = 0;
};

struct FoldSettings {  // train_fold
  AhmsaConfig model;  // classes and input_size are set from the dataset by run_training
  OptimSettings optim;
  int epochs = 0, batch_size = 0;
  bool class_balanced_loss = false, balanced_sampling = false, flip = false;
  float label_smoothing = 0;
  AugmentSettings augment;  // translation, crop-and-resize, rotation, erasing (train/augment.h)
  MixSettings mix;          // mixup, CutMix
  float ema = 0;            // decay of the exponential moving average of the weights (0: off)
  int swa_epochs = 0;       // average the weights of the last N epochs (0: off)
  Selection select{};
  int patience = 0;
  int eval_batch = 128;  // inference batch for validation and test (no effect on results)
  bool cuda_graphs = true;  // with device CUDA: the full-batch step as one CUDA graph (no effect on results)
  Device device = Device::CPU;  // where the model and its batches live (chosen by --device, not a declared setting)
};

struct ClaimSettings {  // several processes on one run folder (train/data/run_folder.h, FoldClaim)
  double timeout_s = 0;  // a claim from another host silent this long is taken over
  bool reclaim = false;  // take over every claim whose process is not known to be alive, at once
};

struct RunSettings {
  ProtocolSettings protocol;
  FoldSettings fold;
  std::vector<int> only_folds;  // 1-based fold numbers to train in this invocation (empty: all)
  std::string fold_from_env;    // an environment variable holding one more fold number (resolve_settings)
  ClaimSettings claims;
  bool report_best_test = false;
  RunSettings();  // every setting at its declared default
};

// What the report needs.
struct ReportSettings {
  Split split{};
  Selection select{};
  int epochs = 0;
  bool report_best_test = false;
};
ReportSettings report_settings(const RunSettings& s);

// ---- the declaration -----------------------------------------------------------------------
// Result: part of the run's signature (a folder made with another value is not resumed).
// Invocation: what this invocation does (which folds now, an extra report line); recorded, not compared.
enum class Role { Result, Invocation };
struct Range {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool any() const { return lo == -std::numeric_limits<double>::infinity() && hi == std::numeric_limits<double>::infinity(); }
};

// Calls v.section(title) before each group, then v(member, name, default, help, role, range) once per
// setting. Visitors: the defaults (RunSettings()), the CLI binding (tools/), to_json, the run file.
template <class S, class V>
void declare_settings(S& s, V&& v) {
  constexpr Role R = Role::Result;
  v.section("protocol");
  v(s.protocol.split, "split", Split::Loso, "leave-one-subject-out, k folds of subjects, or one train/test split of subjects", R);
  v(s.protocol.k, "k", 5, "folds for --split kfold", R, Range{2, 100000});
  v(s.protocol.test_fraction, "test-fraction", 0.2, "held-out share of subjects for --split split", R, Range{0.001, 0.999});
  v(s.only_folds, "folds", std::vector<int>{}, "train only these folds now (1-based, e.g. 1,2,5); the report is written once all are done",
    Role::Invocation);
  v(s.fold_from_env, "fold-from-env", std::string(),
    "also train the fold whose number is in this environment variable (SLURM_ARRAY_TASK_ID: one fold per array task)",
    Role::Invocation);
  v(s.protocol.seed, "seed", uint64_t(1), "run seed: initialisation, order, augmentation, subject draws (fold seeds derive from it)", R);
  v.section("several processes on one run folder");
  v(s.claims.timeout_s, "claim-timeout", 600.0,
    "seconds without a heartbeat after which a fold claimed from another host is taken over (a claim made on this host is "
    "taken over as soon as its process is gone)",
    Role::Invocation, Range{1, 1e9});
  v(s.claims.reclaim, "reclaim", false,
    "take over at once every unfinished fold claimed by a process not running on this host (after scancel or a lost node)",
    Role::Invocation);
  v.section("model selection");
  v(s.fold.select, "select", Selection::Last, "last epoch of the fixed budget (clean) or best validation UF1", R);
  v(s.protocol.val_fraction, "val-fraction", 0.0,
    "share of each fold's training subjects held out for validation (0 = none; --select val sets 0.15 when not given)", R,
    Range{0, 0.999});
  v(s.fold.patience, "patience", 0, "with --select val: stop after N epochs without improvement (0 = whole budget)", R, Range{0, 1e9});
  v(s.report_best_test, "report-best-test", false,
    "also report the test-selected score (best epoch on the test subject), labelled TEST-SELECTED: optimistic, not a valid estimate",
    Role::Invocation);
  v.section("optimisation");
  v(s.fold.epochs, "epochs", 30, "epochs per fold", R, Range{1, 1e6});
  v(s.fold.batch_size, "batch", 32, "batch size", R, Range{1, 1e6});
  v(s.fold.optim.optimizer, "optimizer", OptimizerKind::AdamW, "adamw, adam, or sgd (momentum 0.9)", R);
  v(s.fold.optim.lr, "lr", 1e-3f, "peak learning rate", R, Range{0, 1e38});
  v(s.fold.optim.weight_decay, "weight-decay", 0.05f, "decoupled for AdamW, L2 otherwise", R, Range{0, 1e38});
  v(s.fold.optim.schedule, "schedule", ScheduleKind::Cosine, "cosine (linear warm-up then cosine), constant, or onecycle", R);
  v(s.fold.optim.warmup_epochs, "warmup", 2.f, "warm-up epochs (cosine)", R, Range{0, 1e6});
  v(s.fold.optim.min_lr, "min-lr", 1e-5f, "final learning rate (cosine)", R, Range{0, 1e38});
  v(s.fold.class_balanced_loss, "balanced-loss", false, "class weights N / (K n_c) over the training fold", R);
  v(s.fold.balanced_sampling, "balanced-sampling", false, "draw batches class-uniformly (with replacement)", R);
  v(s.fold.label_smoothing, "label-smoothing", 0.f, "label smoothing epsilon", R, Range{0, 0.999});
  v(s.fold.flip, "flip", true, "horizontal-flip augmentation (mirrors x and maps u -> 1 - u); --no-flip turns it off", R);
  v(s.fold.cuda_graphs, "cuda-graphs", true,
    "with --device cuda: capture the training step in a CUDA graph and replay it (the same numbers, one launch "
    "a step); --no-cuda-graphs launches kernel by kernel", Role::Invocation);
  v(s.fold.model, "model-config", AhmsaConfig{},
    "model architecture, KEY=V;... (keys as in AhmsaConfig::to_string: size, stem, channels, dropout, ...; "
    "drop_path, default: the full AHMSA-Net)", R);
  v.section("augmentation and weight averaging (docs/TRAINING.md §3)");
  v(s.fold.augment.translate, "translate", 0.f, "random translation by up to this share of the image side in x and y (0 = off)", R,
    Range{0, 0.5});
  v(s.fold.augment.translate_prob, "translate-prob", 0.5f, "probability of a translation per sample and epoch", R, Range{0, 1});
  v(s.fold.augment.crop, "random-crop", 0.f, "random crop of side (1 - U(0, C)) x the image, resized back (0 = off)", R, Range{0, 0.9});
  v(s.fold.augment.crop_prob, "random-crop-prob", 0.5f, "probability of a crop-and-resize per sample and epoch", R, Range{0, 1});
  v(s.fold.augment.rotate, "rotate", 0.f, "random rotation by up to this many degrees; (u, v) are not rotated (0 = off)", R,
    Range{0, 45});
  v(s.fold.augment.rotate_prob, "rotate-prob", 0.5f, "probability of a rotation per sample and epoch", R, Range{0, 1});
  v(s.fold.augment.erase, "erase", 0.f, "random erasing: zero a rectangle of up to this share of the image (0 = off)", R, Range{0, 1});
  v(s.fold.augment.erase_prob, "erase-prob", 0.5f, "probability of an erased rectangle per sample and epoch", R, Range{0, 1});
  v(s.fold.mix.mixup_alpha, "mixup", 0.f, "mixup with lambda ~ Beta(A, A) (0 = off)", R, Range{0, 1e6});
  v(s.fold.mix.cutmix_alpha, "cutmix", 0.f, "CutMix with lambda ~ Beta(A, A) (0 = off; with --mixup each batch picks one)", R, Range{0, 1e6});
  v(s.fold.mix.prob, "mix-prob", 1.f, "probability that a batch is mixed (with --mixup or --cutmix)", R, Range{0, 1});
  v(s.fold.ema, "ema", 0.f, "score and save an exponential moving average of the weights with this decay per step (0 = off)", R,
    Range{0, 0.999999});
  v(s.fold.swa_epochs, "swa-epochs", 0, "score and save the average of the weights after each of the last N epochs (0 = off)", R,
    Range{0, 1e6});
}

// The settings as JSON, enums by name, the model config in its canonical string form.
// role_filter: only the settings of that role (the signature uses Role::Result).
nlohmann::ordered_json settings_json(const RunSettings& s);
nlohmann::ordered_json settings_json(const RunSettings& s, Role role_filter);

// The settings back from settings_json (config.json's "settings"): a setting missing there keeps its
// default; a value of the wrong kind throws std::invalid_argument naming the setting.
RunSettings settings_from_json(const nlohmann::ordered_json& j);

// Cross-setting rules, applied after parsing: --select val without --val-fraction gets 0.15;
// --fold-from-env VAR adds the fold number held by $VAR to --folds (an unset variable or one that is
// not a positive integer throws std::invalid_argument naming it).
void resolve_settings(RunSettings& s, bool val_fraction_given);
// Checks what no single option can: --select val needs validation subjects, ranges the parser does
// not see (tests build RunSettings directly). Throws std::invalid_argument naming the option.
void validate_settings(const RunSettings& s);

// The run file: TOML, one `name = value` per setting with its help as a comment, in declaration
// order. `extra` (already TOML-formatted lines, e.g. the input options) goes first.
std::string settings_toml(const RunSettings& s, const std::vector<std::pair<std::string, std::string>>& extra);

}  // namespace ahmsa::train
