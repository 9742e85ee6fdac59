// Training one fold: mini-batches of (u, v, os) flow images, augmentation (flip, train/augment.h),
// mixup/CutMix, weight averaging (train/average.h), AdamW with a warm-up +
// cosine schedule, class-balanced loss or sampling, a NaN/inf guard, and model selection (the last
// epoch of a fixed budget by default; optionally the best epoch on a validation split of training
// subjects, with early stopping). Everything random is drawn from generators seeded by the fold seed,
// so one fold gives the same result whether it runs alone or inside a whole LOSO run. The settings
// (FoldSettings) are declared in train/settings.h.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/ahmsa_net.h"
#include "train/data/flow_dataset.h"
#include "train/settings.h"
#include "train/splits.h"

namespace ahmsa::train {

// One epoch's numbers. The test columns are for curves only; they never select the reported model
// (the report can show a best-test-epoch score on request, always labelled as such).
struct EpochStats {
  int epoch = 0;  // 1-based
  double lr = 0, train_loss = 0, train_acc = 0;
  double val_loss = -1, val_uf1 = -1;  // -1: no validation split
  double test_loss = -1, test_acc = -1, test_uf1 = -1;
  double seconds = 0;
  std::vector<int> test_pred;  // this epoch's predictions on the test samples (curves, labelled best-test score)
};

struct FoldOutcome {
  bool failed = false;
  std::string failure;                   // fold, epoch, step, lr and loss when the loss went non-finite
  int selected_epoch = 0;                // 1-based; the epoch whose model and predictions are reported
  std::vector<int> pred;                 // per test sample, in fold.test order
  std::vector<std::vector<float>> prob;  // class probabilities, same order
  std::vector<EpochStats> curve;
  std::shared_ptr<AhmsaNet> model;       // the selected model (null when failed)
};

// Called after every optimisation step (also the place to stop a fold: an exception thrown here
// leaves train_fold, nothing of the fold is kept): (epoch 1-based, step within epoch 1-based, steps per epoch, loss).
using StepCallback = std::function<void(int, int, int, double)>;

FoldOutcome train_fold(const data::FlowDataset& ds, const Fold& fold, const FoldSettings& o, uint64_t fold_seed,
                       const std::string& fold_label = "", const StepCallback& on_step = nullptr);

// Softmax probabilities of the model (eval mode) for the given samples, batched.
std::vector<std::vector<float>> predict_proba(AhmsaNet& model, const data::FlowDataset& ds, const std::vector<int>& idx,
                                              int batch = 128);
int argmax(const std::vector<float>& p);

// BatchNorm running statistics recomputed for the model's current weights (e.g. averaged ones): reset,
// then one pass over the samples `idx` (unaugmented, in order, batches of `batch`) in training mode
// without gradients; the result is the sample-weighted mean of the batch statistics. Dropout and
// drop-path act as in training (drawn from gen), as in PyTorch's torch.optim.swa_utils.update_bn.
void recompute_batch_norm(AhmsaNet& model, const data::FlowDataset& ds, const std::vector<int>& idx, int batch, Generator& gen);

// The horizontal mirror of one CHW (u, v, os) image in place. Mirroring x negates the horizontal
// flow: u -> -u. The stored u is min-max normalised, u' = (u - min)/(max - min), and the normalised
// value of -u is (max - u)/(max - min) = 1 - u'. So the flipped image has u' -> 1 - u' (a constant
// channel, stored as 0, stays 0); v is unchanged; the strain magnitude is invariant under the mirror.
void flip_flow_image(float* chw, int size);

// The per-class training weights N / (K n_c) (1 for a class with no training sample).
std::vector<float> class_balanced_weights(const std::vector<int>& labels, int classes);

}  // namespace ahmsa::train
