#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "autograd/ops.h"
#include "train/augment.h"
#include "train/average.h"
#include "train/metrics.h"
#include "train/optim/optim.h"
#include "train/step_graph.h"

namespace ahmsa::train {

void flip_flow_image(float* chw, int size) {
  const int n = size * size;
  for (int c = 0; c < 3; ++c) {
    float* ch = chw + size_t(c) * n;
    for (int y = 0; y < size; ++y) std::reverse(ch + size_t(y) * size, ch + size_t(y + 1) * size);
  }
  // u -> 1 - u, unless the channel is constant (stored as all zeros by the normalisation).
  float lo = chw[0], hi = chw[0];
  for (int i = 1; i < n; ++i) lo = std::min(lo, chw[i]), hi = std::max(hi, chw[i]);
  if (hi > lo)
    for (int i = 0; i < n; ++i) chw[i] = 1.f - chw[i];
}

std::vector<float> class_balanced_weights(const std::vector<int>& labels, int classes) {
  std::vector<int64_t> n(size_t(classes), 0);
  for (int y : labels) n[size_t(y)]++;
  std::vector<float> w(size_t(classes), 1.f);
  for (int c = 0; c < classes; ++c)
    if (n[size_t(c)] > 0) w[size_t(c)] = float(double(labels.size()) / (double(classes) * double(n[size_t(c)])));
  return w;
}

int argmax(const std::vector<float>& p) { return int(std::max_element(p.begin(), p.end()) - p.begin()); }

// A batch [B, 3, S, S] of the given samples, each flipped where flips[i] is set.
static Tensor make_batch(const data::FlowDataset& ds, const std::vector<int>& idx, const std::vector<char>& flips) {
  const int S = ds.samples.at(size_t(idx.at(0))).size;
  const size_t per = size_t(3) * S * S;
  Tensor x = Tensor::empty({int64_t(idx.size()), 3, S, S});
  float* d = x.data();
  for (size_t i = 0; i < idx.size(); ++i) {
    const data::FlowSample& s = ds.samples[size_t(idx[i])];
    if (s.size != S || s.x.size() != per)
      throw std::invalid_argument("clip " + s.subject + "/" + s.clip + ": flow image is " + std::to_string(s.size) + " px (" +
                                  std::to_string(s.x.size()) + " values), the batch expects " + std::to_string(S) + " px");
    std::copy(s.x.begin(), s.x.end(), d + i * per);
    if (!flips.empty() && flips[i]) flip_flow_image(d + i * per, S);
  }
  return x;
}

std::vector<std::vector<float>> predict_proba(AhmsaNet& model, const data::FlowDataset& ds, const std::vector<int>& idx,
                                              int batch) {
  std::vector<std::vector<float>> out;
  if (idx.empty()) return out;
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  for (size_t b = 0; b < idx.size(); b += size_t(batch)) {
    std::vector<int> part(idx.begin() + long(b), idx.begin() + long(std::min(idx.size(), b + size_t(batch))));
    Tensor p = softmax(model.forward(make_batch(ds, part, {}).to(model.device())), 1);
    std::vector<float> v = p.to_vector();
    const size_t K = size_t(p.size(1));
    for (size_t i = 0; i < part.size(); ++i) out.emplace_back(v.begin() + long(i * K), v.begin() + long((i + 1) * K));
  }
  model.train(was_training);
  return out;
}

void recompute_batch_norm(AhmsaNet& model, const data::FlowDataset& ds, const std::vector<int>& idx, int batch, Generator& gen) {
  if (idx.empty()) throw std::invalid_argument("recompute_batch_norm: no training sample");
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.train();
  std::vector<BatchNorm2d*> bns = model.batch_norms();
  std::vector<float> momentum;
  for (BatchNorm2d* bn : bns) {
    momentum.push_back(bn->momentum);
    bn->running_mean.copy_(Tensor::zeros(bn->running_mean.shape(), bn->running_mean.device()));
    bn->running_var.copy_(Tensor::ones(bn->running_var.shape(), bn->running_var.device()));
  }
  // Momentum n_b / (n_1 + ... + n_b) at batch b makes the running statistics the sample-weighted mean of
  // the batches' statistics (PyTorch's update_bn uses the unweighted cumulative mean, momentum None).
  size_t seen = 0;
  for (size_t b = 0; b < idx.size(); b += size_t(batch)) {
    std::vector<int> part(idx.begin() + long(b), idx.begin() + long(std::min(idx.size(), b + size_t(batch))));
    seen += part.size();
    for (BatchNorm2d* bn : bns) bn->momentum = float(double(part.size()) / double(seen));
    model.forward(make_batch(ds, part, {}).to(model.device()), gen);
  }
  for (size_t i = 0; i < bns.size(); ++i) bns[i]->momentum = momentum[i];
  model.train(was_training);
}

// Mean cross-entropy (unweighted) and predictions of a set of samples, for curves and validation.
struct EvalResult {
  double loss = 0;
  std::vector<int> pred;
  std::vector<std::vector<float>> prob;
  Scores scores;
};
static EvalResult evaluate(AhmsaNet& model, const data::FlowDataset& ds, const std::vector<int>& idx, int classes, int batch) {
  EvalResult r;
  if (idx.empty()) return r;
  r.prob = predict_proba(model, ds, idx, batch);
  std::vector<int> truth;
  for (size_t i = 0; i < idx.size(); ++i) {
    r.pred.push_back(argmax(r.prob[i]));
    const int y = ds.samples[size_t(idx[i])].label;
    truth.push_back(y);
    r.loss -= std::log(std::max(r.prob[i][size_t(y)], 1e-12f));
  }
  r.loss /= double(idx.size());
  r.scores = score(confusion_of(truth, r.pred, classes));
  return r;
}

static std::unique_ptr<Optimizer> make_optimizer(const OptimSettings& o, std::vector<Tensor> params) {
  switch (o.optimizer) {
    case OptimizerKind::AdamW: return std::make_unique<AdamW>(std::move(params), o.lr, 0.9f, 0.999f, 1e-8f, o.weight_decay);
    case OptimizerKind::Adam: return std::make_unique<Adam>(std::move(params), o.lr, 0.9f, 0.999f, 1e-8f, o.weight_decay, false);
    case OptimizerKind::Sgd: return std::make_unique<SGD>(std::move(params), o.lr, 0.9f, o.weight_decay, false);
  }
  throw std::logic_error("make_optimizer: unhandled optimizer");
}

static LrSchedule make_schedule(const OptimSettings& o, int epochs, int64_t steps_per_epoch) {
  LrSchedule s;
  s.base_lr = o.lr;
  s.total_steps = std::max<int64_t>(1, int64_t(epochs) * steps_per_epoch);
  switch (o.schedule) {
    case ScheduleKind::Constant: s.kind = LrSchedule::Constant; break;
    case ScheduleKind::OneCycle: s.kind = LrSchedule::OneCycle; break;
    case ScheduleKind::Cosine:
      s.kind = LrSchedule::CosineWarmup;
      s.warmup_steps = std::clamp<int64_t>(int64_t(std::lround(o.warmup_epochs * double(steps_per_epoch))), 0, s.total_steps - 1);
      s.min_lr = o.min_lr;
      break;
  }
  return s;
}

// Copies of the model's parameters and running statistics (for the best validation epoch).
static std::vector<Tensor> snapshot(const AhmsaNet& m) {
  NoGradGuard g;
  std::vector<Tensor> s;
  for (auto& [name, t] : m.state_dict()) s.push_back(t.detach().clone());
  return s;
}
static void restore(AhmsaNet& m, const std::vector<Tensor>& s) {
  auto sd = m.state_dict();
  for (size_t i = 0; i < sd.size(); ++i) sd[i].second.copy_(s[i]);
}

static double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

namespace {

// Everything one fold's training loop works on, set up from the settings and the fold.
struct FoldRun {
  const data::FlowDataset& ds;
  const Fold& fold;
  const FoldSettings& o;
  std::string label;
  int classes = 0;
  // Three independent streams: initialisation, data order + augmentation, dropout.
  Generator init_gen, data_gen, dropout_gen;
  std::shared_ptr<AhmsaNet> model;
  std::unique_ptr<Optimizer> opt;
  LrSchedule sched;
  Tensor class_weights;                  // undefined: unweighted loss
  std::vector<std::vector<int>> by_class;  // training clips of each class (balanced sampling)
  std::vector<int> nonempty_classes;
  int steps_per_epoch = 0;
  int64_t global_step = 0;
  double last_loss = 0;  // of the latest step
  std::unique_ptr<StepGraph> graph;  // the full-batch step as a CUDA graph (o.cuda_graphs on CUDA)

  FoldRun(const data::FlowDataset& d, const Fold& f, const FoldSettings& s, uint64_t seed, std::string l)
      : ds(d), fold(f), o(s), label(std::move(l)), init_gen(seed), data_gen(seed ^ 0x9E3779B97F4A7C15ull),
        dropout_gen(seed ^ 0xD1B54A32D192ED03ull) {
    classes = int(o.model.classes);
    AhmsaConfig cfg = o.model;
    cfg.input_size = ds.samples.at(size_t(fold.train[0])).size;
    cfg.validate();
    model = std::make_shared<AhmsaNet>(cfg, init_gen);  // initialised on the CPU: the same weights on every device
    model->to(o.device);
    model->train();
    opt = make_optimizer(o.optim, model->parameters());
    std::vector<int> train_labels;
    for (int i : fold.train) train_labels.push_back(ds.samples[size_t(i)].label);
    for (int y : train_labels)
      if (y < 0 || y >= classes)
        throw std::invalid_argument("fold " + label + ": label " + std::to_string(y) + " outside the " + std::to_string(classes) + " classes");
    if (o.class_balanced_loss) class_weights = Tensor::from_vector({classes}, class_balanced_weights(train_labels, classes), o.device);
    by_class.resize(size_t(classes));
    for (int i : fold.train) by_class[size_t(ds.samples[size_t(i)].label)].push_back(i);
    for (int c = 0; c < classes; ++c)
      if (!by_class[size_t(c)].empty()) nonempty_classes.push_back(c);
    steps_per_epoch = int((int64_t(fold.train.size()) + o.batch_size - 1) / o.batch_size);
    sched = make_schedule(o.optim, o.epochs, steps_per_epoch);
  }

  // This epoch's order: a permutation, or class-balanced draws with replacement.
  std::vector<int> epoch_order() {
    std::vector<int> order(fold.train);
    if (o.balanced_sampling) {
      for (auto& s : order) {
        const auto& pool = by_class[size_t(nonempty_classes[data_gen.below(uint32_t(nonempty_classes.size()))])];
        s = pool[data_gen.below(uint32_t(pool.size()))];
      }
    } else {
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[data_gen.below(uint32_t(i))]);
    }
    return order;
  }

  // One optimisation step on the clips `idx`: adds to the epoch's loss sum and correct count. Returns
  // the failure message when the loss is not finite (an eager step then updates nothing; a replayed
  // graph has updated: see train/step_graph.h), else "".
  std::string step(const std::vector<int>& idx, int epoch, int step_in_epoch, EpochStats& st, int64_t& correct) {
    std::vector<char> flips(idx.size(), 0);
    if (o.flip)
      for (auto& f : flips) f = char(data_gen.below(2));
    std::vector<int> y;
    for (int i : idx) y.push_back(ds.samples[size_t(i)].label);
    const float lr = sched.at(global_step);
    // The batch is built and augmented on the CPU, then uploaded (augmentations off: no draws, as before).
    Tensor batch = make_batch(ds, idx, flips);
    const int S = int(batch.size(2));
    if (o.augment.any()) {
      std::vector<SampleAugment> aug;
      for (size_t i = 0; i < idx.size(); ++i) aug.push_back(draw_augment(o.augment, S, data_gen));
      augment_batch(batch, aug);
    }
    const MixPlan mix = draw_mix(o.mix, int(idx.size()), S, data_gen);
    apply_mix(batch, mix);
    // The graph is captured at the second full-size step (the first runs eagerly), after which every
    // full-size step with class-id targets replays it; a shorter last batch, and a mixed batch (soft
    // targets), run eagerly.
    if (o.cuda_graphs && o.device != Device::CPU && int(idx.size()) == o.batch_size && opt->steps() > 0 &&
        mix.kind == MixPlan::None) {
      if (!graph) graph = std::make_unique<StepGraph>(*model, *opt, dropout_gen, class_weights, o.label_smoothing);
      StepGraph::Result r = graph->run(batch, y, lr);
      return finish_step(r.loss, r.logits, y, lr, epoch, step_in_epoch, st, correct);
    }
    opt->set_lr(lr);
    Tensor logits = model->forward(batch.to(o.device), dropout_gen);
    Tensor loss = mix.kind == MixPlan::None
                      ? cross_entropy(logits, y, class_weights, o.label_smoothing)
                      : cross_entropy_soft(logits, Tensor::from_vector({int64_t(idx.size()), classes}, mixed_targets(y, classes, mix), o.device),
                                           class_weights, o.label_smoothing);
    const double lv = loss.item();
    if (!std::isfinite(lv)) return finish_step(lv, {}, y, lr, epoch, step_in_epoch, st, correct);
    opt->zero_grad();
    loss.backward();
    opt->step();
    return finish_step(lv, logits.detach().to_vector(), y, lr, epoch, step_in_epoch, st, correct);
  }

  // After a step: a non-finite loss stops the fold (the message says where); else the step's loss and
  // correct count join the epoch's.
  std::string finish_step(double lv, const std::vector<float>& lg, const std::vector<int>& y, float lr, int epoch,
                          int step_in_epoch, EpochStats& st, int64_t& correct) {
    last_loss = lv;
    if (!std::isfinite(lv)) {
      char b[512];
      std::snprintf(b, sizeof b, "fold %s: loss is %s at epoch %d, step %d/%d (global step %lld), lr %.4g; the fold is stopped",
                    label.c_str(), std::isnan(lv) ? "NaN" : "infinite", epoch, step_in_epoch, steps_per_epoch,
                    (long long)global_step + 1, double(lr));
      return b;
    }
    ++global_step;
    for (size_t i = 0; i < y.size(); ++i) {
      std::vector<float> row(lg.begin() + long(i * size_t(classes)), lg.begin() + long((i + 1) * size_t(classes)));
      correct += argmax(row) == y[i];
    }
    st.train_loss += lv * double(y.size());
    st.lr = lr;
    return "";
  }
};

// Model selection: the last epoch, or the best validation UF1 with early stopping.
class Selector {
 public:
  explicit Selector(const FoldSettings& o) : o_(o) {}
  // After each epoch; false: stop training now (early stop).
  bool after_epoch(const EpochStats& st, const EvalResult& test, AhmsaNet& model, FoldOutcome& out) {
    if (o_.select == Selection::Last) {
      if (st.epoch == o_.epochs) keep(st.epoch, test, out);
      return true;
    }
    if (st.val_uf1 > best_val_) {
      best_val_ = st.val_uf1, since_best_ = 0;
      best_state_ = snapshot(model);
      keep(st.epoch, test, out);
      return true;
    }
    return !(o_.patience > 0 && ++since_best_ >= o_.patience);
  }
  // The selected weights back into the model.
  void finish(AhmsaNet& model) const {
    if (o_.select == Selection::Val) restore(model, best_state_);
  }

 private:
  static void keep(int epoch, const EvalResult& test, FoldOutcome& out) {
    out.selected_epoch = epoch, out.pred = test.pred, out.prob = test.prob;
  }
  const FoldSettings& o_;
  double best_val_ = -1;
  int since_best_ = 0;
  std::vector<Tensor> best_state_;
};

}  // namespace

FoldOutcome train_fold(const data::FlowDataset& ds, const Fold& fold, const FoldSettings& o, uint64_t fold_seed,
                       const std::string& fold_label, const StepCallback& on_step) {
  const std::string label = fold_label.empty() ? fold.name : fold_label;
  if (fold.train.empty()) throw std::invalid_argument("fold " + label + ": no training sample");
  if (o.epochs < 1 || o.batch_size < 1) throw std::invalid_argument("epochs and batch size must be >= 1");
  if (o.select == Selection::Val && fold.val.empty())
    throw std::invalid_argument("fold " + label + ": selection on validation needs a validation split (--val-fraction)");
  FoldRun run(ds, fold, o, fold_seed, label);
  Selector selector(o);
  FoldOutcome out;
  WeightAverage average;  // --ema / --swa-epochs: the weights that are scored and saved
  if (o.ema > 0) average.start(run.model->parameters());
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    const std::vector<int> order = run.epoch_order();
    EpochStats st;
    st.epoch = epoch;
    int64_t correct = 0;
    for (int step = 0; step < run.steps_per_epoch; ++step) {
      const size_t b0 = size_t(step) * size_t(o.batch_size), b1 = std::min(order.size(), b0 + size_t(o.batch_size));
      const std::vector<int> idx(order.begin() + long(b0), order.begin() + long(b1));
      if (std::string failure = run.step(idx, epoch, step + 1, st, correct); !failure.empty()) {
        out.failed = true;
        out.failure = failure;
        out.curve.push_back(st);
        return out;
      }
      if (o.ema > 0) average.ema_update(run.model->parameters(), o.ema);
      if (on_step) on_step(epoch, step + 1, run.steps_per_epoch, run.last_loss);
    }
    if (o.swa_epochs > 0 && epoch > o.epochs - o.swa_epochs) average.add_snapshot(run.model->parameters());
    st.train_loss /= double(fold.train.size());
    st.train_acc = double(correct) / double(fold.train.size());
    if (!fold.val.empty()) {
      EvalResult v = evaluate(*run.model, ds, fold.val, run.classes, o.eval_batch);
      st.val_loss = v.loss, st.val_uf1 = v.scores.uf1;
    }
    EvalResult te = evaluate(*run.model, ds, fold.test, run.classes, o.eval_batch);
    if (!fold.test.empty()) st.test_loss = te.loss, st.test_acc = te.scores.accuracy, st.test_uf1 = te.scores.uf1;
    st.test_pred = te.pred;
    st.seconds = seconds_since(t0);
    out.curve.push_back(st);
    if (!selector.after_epoch(st, te, *run.model, out)) break;  // early stop: no validation improvement for `patience` epochs
  }
  selector.finish(*run.model);
  if (!average.empty()) {
    // The averaged weights, BatchNorm statistics recomputed for them on the training clips, are what is
    // scored and saved (the curves above are those of the weights being trained).
    average.copy_to(run.model->parameters());
    recompute_batch_norm(*run.model, ds, fold.train, o.batch_size, run.dropout_gen);
    EvalResult te = evaluate(*run.model, ds, fold.test, run.classes, o.eval_batch);
    out.selected_epoch = int(out.curve.size()), out.pred = te.pred, out.prob = te.prob;
  }
  run.model->eval();
  out.model = run.model;
  return out;
}

}  // namespace ahmsa::train
