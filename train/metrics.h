// Recognition metrics of the MEGC protocol: a confusion matrix over class ids, and from it
// accuracy, UF1 (unweighted F1, the mean of per-class F1) and UAR (unweighted average recall).
//
//   F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)      recall_c = TP_c / N_c      N_c = TP_c + FN_c
//
// Classes that are missing: a class with neither samples nor predictions has F1 = 0/0; it is left
// out of the UF1 mean (MEGC convention: the official scripts skip a class whose count is zero).
// A class predicted but absent from the truth has F1 = 0 and counts in UF1 (the predictions were
// wrong); its recall is undefined and it is left out of the UAR mean. With pooled LOSO predictions
// over the composite every class is present and these conventions do not matter; they matter for
// the per-fold ("fold-averaged") variants, where a held-out subject often lacks a class.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ahmsa::train {

struct Confusion {
  int classes = 0;
  std::vector<int64_t> counts;  // counts[truth * classes + predicted]

  explicit Confusion(int k = 0) : classes(k), counts(size_t(k) * k, 0) {}
  void add(int truth, int predicted);  // throws std::out_of_range naming the ids when outside [0, K)
  int64_t at(int truth, int predicted) const { return counts[size_t(truth) * classes + predicted]; }
  int64_t total() const;
  int64_t correct() const;
  int64_t support(int c) const;    // N_c: samples whose truth is c (row sum)
  int64_t predicted(int c) const;  // predictions of c (column sum)
};

Confusion confusion_of(const std::vector<int>& truth, const std::vector<int>& predicted, int classes);

struct ClassScore {
  int64_t support = 0, predicted = 0, tp = 0;
  double f1 = 0, recall = 0, precision = 0;
  bool in_uf1 = false;  // present in truth or predictions
  bool in_uar = false;  // present in truth
};

struct Scores {
  int64_t n = 0;
  double accuracy = 0, uf1 = 0, uar = 0;  // 0 when n == 0
  std::vector<ClassScore> per_class;
};

Scores score(const Confusion& m);

// Fold-averaged variants: the plain mean over folds of each fold's accuracy / UF1 / UAR (folds with
// no test sample are skipped). Not the MEGC metric; reported beside it, labelled as such.
struct FoldAverage {
  int folds = 0;
  double accuracy = 0, uf1 = 0, uar = 0;
};
FoldAverage fold_average(const std::vector<Scores>& per_fold);

}  // namespace ahmsa::train
