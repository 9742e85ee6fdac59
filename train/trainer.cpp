#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "autograd/ops.h"
#include "train/metrics.h"
#include "train/optim/optim.h"

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
    Tensor p = softmax(model.forward(make_batch(ds, part, {})), 1);
    std::vector<float> v = p.to_vector();
    const size_t K = size_t(p.size(1));
    for (size_t i = 0; i < part.size(); ++i) out.emplace_back(v.begin() + long(i * K), v.begin() + long((i + 1) * K));
  }
  model.train(was_training);
  return out;
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

static std::unique_ptr<Optimizer> make_optimizer(const TrainOptions& o, std::vector<Tensor> params) {
  if (o.optimizer == "adamw") return std::make_unique<AdamW>(std::move(params), o.lr, 0.9f, 0.999f, 1e-8f, o.weight_decay);
  if (o.optimizer == "adam") return std::make_unique<Adam>(std::move(params), o.lr, 0.9f, 0.999f, 1e-8f, o.weight_decay, false);
  if (o.optimizer == "sgd") return std::make_unique<SGD>(std::move(params), o.lr, 0.9f, o.weight_decay, false);
  throw std::invalid_argument("unknown optimizer '" + o.optimizer + "' (adamw, adam, sgd)");
}

static LrSchedule make_schedule(const TrainOptions& o, int64_t steps_per_epoch) {
  const int64_t total = std::max<int64_t>(1, int64_t(o.epochs) * steps_per_epoch);
  LrSchedule s = LrSchedule::parse(o.schedule, o.lr, total);
  if (s.kind == LrSchedule::CosineWarmup) {
    s.warmup_steps = std::clamp<int64_t>(int64_t(std::lround(o.warmup_epochs * double(steps_per_epoch))), 0, total - 1);
    s.min_lr = o.min_lr;
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

FoldOutcome train_fold(const data::FlowDataset& ds, const Fold& fold, const TrainOptions& o, uint64_t fold_seed,
                       const std::string& fold_label, const StepCallback& on_step) {
  const std::string label = fold_label.empty() ? fold.name : fold_label;
  if (fold.train.empty()) throw std::invalid_argument("fold " + label + ": no training sample");
  if (o.epochs < 1 || o.batch_size < 1) throw std::invalid_argument("epochs and batch size must be >= 1");
  if (o.select != "last" && o.select != "val") throw std::invalid_argument("--select: last or val, got '" + o.select + "'");
  if (o.select == "val" && fold.val.empty())
    throw std::invalid_argument("fold " + label + ": selection on validation needs a validation split (--val-fraction)");
  const int K = int(o.model.classes);
  AhmsaConfig cfg = o.model;
  cfg.input_size = ds.samples.at(size_t(fold.train[0])).size;
  cfg.validate();

  // Three independent streams: initialisation, data order + augmentation, dropout.
  Generator init_gen(fold_seed), data_gen(fold_seed ^ 0x9E3779B97F4A7C15ull), dropout_gen(fold_seed ^ 0xD1B54A32D192ED03ull);
  auto model = std::make_shared<AhmsaNet>(cfg, init_gen);
  model->train();
  auto opt = make_optimizer(o, model->parameters());

  std::vector<int> train_labels;
  for (int i : fold.train) train_labels.push_back(ds.samples[size_t(i)].label);
  for (int y : train_labels)
    if (y < 0 || y >= K) throw std::invalid_argument("fold " + label + ": label " + std::to_string(y) + " outside the " + std::to_string(K) + " classes");
  Tensor class_weights;
  if (o.class_balanced_loss) {
    auto w = class_balanced_weights(train_labels, K);
    class_weights = Tensor::from_vector({K}, w);
  }
  std::vector<std::vector<int>> by_class(static_cast<size_t>(K));
  for (int i : fold.train) by_class[size_t(ds.samples[size_t(i)].label)].push_back(i);
  std::vector<int> nonempty_classes;
  for (int c = 0; c < K; ++c)
    if (!by_class[size_t(c)].empty()) nonempty_classes.push_back(c);

  const int64_t n_train = int64_t(fold.train.size());
  const int steps_per_epoch = int((n_train + o.batch_size - 1) / o.batch_size);
  const LrSchedule sched = make_schedule(o, steps_per_epoch);

  FoldOutcome out;
  double best_val = -1;
  int since_best = 0;
  std::vector<Tensor> best_state;
  int64_t global_step = 0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    // This epoch's order: a permutation, or class-balanced draws with replacement.
    std::vector<int> order(fold.train);
    if (o.balanced_sampling) {
      for (auto& s : order) {
        const auto& pool = by_class[size_t(nonempty_classes[data_gen.below(uint32_t(nonempty_classes.size()))])];
        s = pool[data_gen.below(uint32_t(pool.size()))];
      }
    } else {
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[data_gen.below(uint32_t(i))]);
    }
    EpochStats st;
    st.epoch = epoch;
    int64_t correct = 0;
    for (int step = 0; step < steps_per_epoch; ++step) {
      const size_t b0 = size_t(step) * size_t(o.batch_size), b1 = std::min(order.size(), b0 + size_t(o.batch_size));
      std::vector<int> idx(order.begin() + long(b0), order.begin() + long(b1));
      std::vector<char> flips(idx.size(), 0);
      if (o.flip)
        for (auto& f : flips) f = char(data_gen.below(2));
      std::vector<int> y;
      for (int i : idx) y.push_back(ds.samples[size_t(i)].label);
      const float lr = sched.at(global_step);
      opt->set_lr(lr);
      Tensor logits = model->forward(make_batch(ds, idx, flips), dropout_gen);
      Tensor loss = cross_entropy(logits, y, class_weights, o.label_smoothing);
      const double lv = loss.item();
      if (!std::isfinite(lv)) {
        char b[512];
        std::snprintf(b, sizeof b, "fold %s: loss is %s at epoch %d, step %d/%d (global step %lld), lr %.4g; the fold is stopped",
                      label.c_str(), std::isnan(lv) ? "NaN" : "infinite", epoch, step + 1, steps_per_epoch,
                      (long long)global_step + 1, double(lr));
        out.failed = true;
        out.failure = b;
        out.curve.push_back(st);
        return out;
      }
      opt->zero_grad();
      loss.backward();
      opt->step();
      ++global_step;
      std::vector<float> lg = logits.detach().to_vector();
      for (size_t i = 0; i < idx.size(); ++i) {
        std::vector<float> row(lg.begin() + long(i * K), lg.begin() + long((i + 1) * K));
        correct += argmax(row) == y[i];
      }
      st.train_loss += lv * double(idx.size());
      st.lr = lr;
      if (on_step) on_step(epoch, step + 1, steps_per_epoch, lv);
    }
    st.train_loss /= double(n_train);
    st.train_acc = double(correct) / double(n_train);
    if (!fold.val.empty()) {
      EvalResult v = evaluate(*model, ds, fold.val, K, o.eval_batch);
      st.val_loss = v.loss, st.val_uf1 = v.scores.uf1;
    }
    EvalResult te = evaluate(*model, ds, fold.test, K, o.eval_batch);
    if (!fold.test.empty()) st.test_loss = te.loss, st.test_acc = te.scores.accuracy, st.test_uf1 = te.scores.uf1;
    st.test_pred = te.pred;
    st.seconds = seconds_since(t0);
    out.curve.push_back(st);
    if (o.select == "last") {
      if (epoch == o.epochs) out.selected_epoch = epoch, out.pred = te.pred, out.prob = te.prob;
    } else {
      if (st.val_uf1 > best_val) {
        best_val = st.val_uf1, since_best = 0;
        best_state = snapshot(*model);
        out.selected_epoch = epoch, out.pred = te.pred, out.prob = te.prob;
      } else if (o.patience > 0 && ++since_best >= o.patience) {
        break;  // early stop: no validation improvement for `patience` epochs
      }
    }
  }
  if (o.select == "val") restore(*model, best_state);
  model->eval();
  out.model = model;
  return out;
}

}  // namespace ahmsa::train
