#include "train/metrics.h"

#include <stdexcept>

namespace ahmsa::train {

void Confusion::add(int truth, int pred) {
  if (truth < 0 || truth >= classes || pred < 0 || pred >= classes)
    throw std::out_of_range("confusion matrix of " + std::to_string(classes) + " classes: truth " + std::to_string(truth) +
                            ", prediction " + std::to_string(pred) + " out of range");
  counts[size_t(truth) * classes + pred]++;
}

int64_t Confusion::total() const {
  int64_t s = 0;
  for (int64_t c : counts) s += c;
  return s;
}

int64_t Confusion::correct() const {
  int64_t s = 0;
  for (int c = 0; c < classes; ++c) s += at(c, c);
  return s;
}

int64_t Confusion::support(int c) const {
  int64_t s = 0;
  for (int p = 0; p < classes; ++p) s += at(c, p);
  return s;
}

int64_t Confusion::predicted(int c) const {
  int64_t s = 0;
  for (int t = 0; t < classes; ++t) s += at(t, c);
  return s;
}

Confusion confusion_of(const std::vector<int>& truth, const std::vector<int>& predicted, int classes) {
  if (truth.size() != predicted.size())
    throw std::invalid_argument("confusion_of: " + std::to_string(truth.size()) + " labels but " +
                                std::to_string(predicted.size()) + " predictions");
  Confusion m(classes);
  for (size_t i = 0; i < truth.size(); ++i) m.add(truth[i], predicted[i]);
  return m;
}

Scores score(const Confusion& m) {
  Scores s;
  s.n = m.total();
  s.per_class.resize(size_t(m.classes));
  int n_f1 = 0, n_rec = 0;
  for (int c = 0; c < m.classes; ++c) {
    ClassScore& k = s.per_class[size_t(c)];
    k.tp = m.at(c, c), k.support = m.support(c), k.predicted = m.predicted(c);
    const int64_t fn = k.support - k.tp, fp = k.predicted - k.tp;
    k.in_uf1 = k.support > 0 || k.predicted > 0;
    k.in_uar = k.support > 0;
    if (k.in_uf1) k.f1 = 2.0 * k.tp / double(2 * k.tp + fp + fn), s.uf1 += k.f1, ++n_f1;
    if (k.in_uar) k.recall = double(k.tp) / double(k.support), s.uar += k.recall, ++n_rec;
    if (k.predicted > 0) k.precision = double(k.tp) / double(k.predicted);
  }
  if (n_f1) s.uf1 /= n_f1;
  if (n_rec) s.uar /= n_rec;
  if (s.n) s.accuracy = double(m.correct()) / double(s.n);
  return s;
}

FoldAverage fold_average(const std::vector<Scores>& per_fold) {
  FoldAverage a;
  for (const Scores& s : per_fold) {
    if (s.n == 0) continue;
    a.accuracy += s.accuracy, a.uf1 += s.uf1, a.uar += s.uar, ++a.folds;
  }
  if (a.folds) a.accuracy /= a.folds, a.uf1 /= a.folds, a.uar /= a.folds;
  return a;
}

}  // namespace ahmsa::train
