// Subject-independent splits of a dataset: every split keeps all clips of a subject on one side, so
// no face is both trained on and tested. All are deterministic: LOSO depends on nothing but the
// subject ids (folds in sorted subject order), the others only on the seed given.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ahmsa::train {

struct Fold {
  std::string name;                        // "sub01" style: the held-out subject(s), joined with '+'
  std::vector<std::string> test_subjects;  // sorted
  std::vector<int> train, val, test;       // sample indices, ascending
};

// Distinct subject ids in sorted order.
std::vector<std::string> subjects_of(const std::vector<std::string>& sample_subjects);

// Leave-one-subject-out: one fold per distinct subject, in sorted order.
std::vector<Fold> loso_split(const std::vector<std::string>& sample_subjects);
// k folds of whole subjects: subjects shuffled by `seed`, dealt round-robin (fold sizes differ by at
// most one subject). Throws std::invalid_argument when k < 2 or k > number of subjects.
std::vector<Fold> kfold_by_subject(const std::vector<std::string>& sample_subjects, int k, uint64_t seed);
// One train/test split: round(test_fraction × subjects) subjects (at least 1, at most all but one),
// drawn by `seed`, are held out.
Fold single_split(const std::vector<std::string>& sample_subjects, double test_fraction, uint64_t seed);

// Moves round(fraction × training subjects) whole subjects (at least 1, and at least one subject
// stays in training) from fold.train to fold.val, drawn by `seed`. fraction <= 0 leaves val empty.
void draw_validation(Fold& fold, const std::vector<std::string>& sample_subjects, double fraction, uint64_t seed);

}  // namespace ahmsa::train
