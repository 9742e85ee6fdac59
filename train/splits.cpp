#include "train/splits.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "tensor/rng.h"

namespace ahmsa::train {

std::vector<std::string> subjects_of(const std::vector<std::string>& sample_subjects) {
  std::set<std::string> s(sample_subjects.begin(), sample_subjects.end());
  return {s.begin(), s.end()};
}

// A fold holding out the given subjects: the test indices are theirs, every other index trains.
static Fold make_fold(const std::vector<std::string>& sample_subjects, std::vector<std::string> held_out) {
  std::sort(held_out.begin(), held_out.end());
  Fold f;
  f.test_subjects = held_out;
  for (size_t i = 0; i < held_out.size(); ++i) f.name += (i ? "+" : "") + held_out[i];
  std::set<std::string> out(held_out.begin(), held_out.end());
  for (size_t i = 0; i < sample_subjects.size(); ++i) (out.count(sample_subjects[i]) ? f.test : f.train).push_back(int(i));
  return f;
}

// Fisher-Yates with the project's explicit generator (the same order on every platform).
static void shuffle(std::vector<std::string>& v, uint64_t seed) {
  Generator g(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[g.below(uint32_t(i))]);
}

std::vector<Fold> loso_split(const std::vector<std::string>& sample_subjects) {
  std::vector<Fold> folds;
  for (const std::string& s : subjects_of(sample_subjects)) folds.push_back(make_fold(sample_subjects, {s}));
  return folds;
}

std::vector<Fold> kfold_by_subject(const std::vector<std::string>& sample_subjects, int k, uint64_t seed) {
  std::vector<std::string> subs = subjects_of(sample_subjects);
  if (k < 2 || k > int(subs.size()))
    throw std::invalid_argument("k-fold by subject: k = " + std::to_string(k) + " but there are " +
                                std::to_string(subs.size()) + " subjects (need 2 <= k <= subjects)");
  shuffle(subs, seed);
  std::vector<std::vector<std::string>> groups(static_cast<size_t>(k));
  for (size_t i = 0; i < subs.size(); ++i) groups[i % size_t(k)].push_back(subs[i]);
  std::vector<Fold> folds;
  for (auto& g : groups) folds.push_back(make_fold(sample_subjects, g));
  return folds;
}

static int count_of(double fraction, int n, int lo, int hi) {
  int c = int(std::lround(fraction * n));
  return std::clamp(c, lo, hi);
}

Fold single_split(const std::vector<std::string>& sample_subjects, double test_fraction, uint64_t seed) {
  std::vector<std::string> subs = subjects_of(sample_subjects);
  if (subs.size() < 2) throw std::invalid_argument("a train/test split needs at least 2 subjects, got " + std::to_string(subs.size()));
  shuffle(subs, seed);
  int n_test = count_of(test_fraction, int(subs.size()), 1, int(subs.size()) - 1);
  return make_fold(sample_subjects, std::vector<std::string>(subs.begin(), subs.begin() + n_test));
}

void draw_validation(Fold& fold, const std::vector<std::string>& sample_subjects, double fraction, uint64_t seed) {
  fold.val.clear();
  if (fraction <= 0) return;
  std::vector<std::string> train_sample_subjects;
  for (int i : fold.train) train_sample_subjects.push_back(sample_subjects[size_t(i)]);
  std::vector<std::string> subs = subjects_of(train_sample_subjects);
  if (subs.size() < 2)
    throw std::invalid_argument("fold " + fold.name + ": a validation split needs at least 2 training subjects");
  shuffle(subs, seed);
  int n_val = count_of(fraction, int(subs.size()), 1, int(subs.size()) - 1);
  std::set<std::string> val(subs.begin(), subs.begin() + n_val);
  std::vector<int> train;
  for (int i : fold.train) (val.count(sample_subjects[size_t(i)]) ? fold.val : train).push_back(i);
  fold.train = train;
}

}  // namespace ahmsa::train
