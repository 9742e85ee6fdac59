// Metrics against confusion matrices computed by hand, subject splits, flip augmentation and
// class weights.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "train/metrics.h"
#include "train/report.h"
#include "train/splits.h"
#include "train/trainer.h"

using namespace ahmsa;
using namespace ahmsa::train;

TEST_CASE("metrics: a 3-class confusion matrix by hand") {
  // truth 0 0 0 0 1 1 2 / pred 0 0 0 1 1 0 0  ->  rows (truth) [3 1 0] [1 1 0] [1 0 0]
  Confusion m = confusion_of({0, 0, 0, 0, 1, 1, 2}, {0, 0, 0, 1, 1, 0, 0}, 3);
  CHECK(m.at(0, 0) == 3);
  CHECK(m.at(0, 1) == 1);
  CHECK(m.at(1, 0) == 1);
  CHECK(m.at(2, 0) == 1);
  CHECK(m.support(0) == 4);
  CHECK(m.predicted(0) == 5);
  Scores s = score(m);
  // F1: 2*3/(6+2+1) = 2/3, 2*1/(2+1+1) = 1/2, 0/(0+0+1) = 0  ->  UF1 = 7/18
  CHECK(s.per_class[0].f1 == doctest::Approx(2.0 / 3).epsilon(1e-12));
  CHECK(s.per_class[1].f1 == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(s.per_class[2].f1 == doctest::Approx(0.0));
  CHECK(s.uf1 == doctest::Approx(7.0 / 18).epsilon(1e-12));
  // recall 3/4, 1/2, 0 -> UAR 5/12; accuracy 4/7
  CHECK(s.uar == doctest::Approx(5.0 / 12).epsilon(1e-12));
  CHECK(s.accuracy == doctest::Approx(4.0 / 7).epsilon(1e-12));
  CHECK(s.per_class[0].precision == doctest::Approx(3.0 / 5).epsilon(1e-12));
  CHECK(s.n == 7);
}

TEST_CASE("metrics: a class absent from truth and predictions is left out of UF1 and UAR") {
  // K = 3 but class 2 never occurs: rows [1 1 0] [0 2 0] [0 0 0]
  Scores s = score(confusion_of({0, 0, 1, 1}, {0, 1, 1, 1}, 3));
  CHECK_FALSE(s.per_class[2].in_uf1);
  CHECK_FALSE(s.per_class[2].in_uar);
  CHECK(s.uf1 == doctest::Approx((2.0 / 3 + 0.8) / 2).epsilon(1e-12));  // F1 = 2/3 and 4/5 over 2 classes
  CHECK(s.uar == doctest::Approx(0.75).epsilon(1e-12));                 // recall 1/2 and 1
  CHECK(s.accuracy == doctest::Approx(0.75).epsilon(1e-12));
}

TEST_CASE("metrics: a class predicted but absent from the truth counts as F1 = 0, not in UAR") {
  Scores s = score(confusion_of({0, 0, 1, 1}, {0, 2, 1, 1}, 3));
  CHECK(s.per_class[2].in_uf1);
  CHECK_FALSE(s.per_class[2].in_uar);
  CHECK(s.uf1 == doctest::Approx((2.0 / 3 + 1.0 + 0.0) / 3).epsilon(1e-12));
  CHECK(s.uar == doctest::Approx(0.75).epsilon(1e-12));
}

TEST_CASE("metrics: pooled differs from fold-averaged") {
  // Fold A: truth 0 0 1 1 pred 0 1 1 1 (UF1 11/15); fold B: truth 2 2 pred 2 0 (F1 c2 = 2/3, c0 = 0 -> UF1 1/3)
  Scores a = score(confusion_of({0, 0, 1, 1}, {0, 1, 1, 1}, 3));
  Scores b = score(confusion_of({2, 2}, {2, 0}, 3));
  CHECK(b.uf1 == doctest::Approx(1.0 / 3).epsilon(1e-12));
  FoldAverage avg = fold_average({a, b, Scores{}});  // an empty fold is skipped
  CHECK(avg.folds == 2);
  CHECK(avg.uf1 == doctest::Approx((11.0 / 15 + 1.0 / 3) / 2).epsilon(1e-12));
  // Pooled: rows [1 1 0] [0 2 0] [1 0 1]: F1 = 2/(2+1+1) = .5, 4/(4+1) = .8, 2/(2+0+1) = 2/3
  Scores pooled = score(confusion_of({0, 0, 1, 1, 2, 2}, {0, 1, 1, 1, 2, 0}, 3));
  CHECK(pooled.uf1 == doctest::Approx((0.5 + 0.8 + 2.0 / 3) / 3).epsilon(1e-12));
  CHECK(pooled.uar == doctest::Approx((0.5 + 1.0 + 0.5) / 3).epsilon(1e-12));
}

TEST_CASE("metrics: per-dataset subsets and out-of-range ids") {
  data::FlowDataset ds;
  ds.class_names = {"negative", "positive", "surprise"};
  const char* dbs[] = {"casme2", "casme2", "samm", "samm"};
  int labels[] = {0, 1, 2, 2};
  for (int i = 0; i < 4; ++i) {
    data::FlowSample s;
    s.dataset = dbs[i], s.subject = std::string(dbs[i]) + "/x", s.clip = "c" + std::to_string(i), s.label = labels[i];
    ds.samples.push_back(s);
  }
  MetricsBlock m = compute_metrics(ds, {0, 1, 2, 3}, {0, 0, 2, 1}, 3);
  CHECK(m.pooled.accuracy == doctest::Approx(0.5));
  REQUIRE(m.per_dataset.count("casme2") == 1);
  CHECK(m.per_dataset["casme2"].accuracy == doctest::Approx(0.5));
  CHECK(m.per_dataset["casme2"].uf1 == doctest::Approx((2.0 / 3 + 0.0) / 2).epsilon(1e-12));  // c0 F1 2/3, c1 F1 0
  CHECK(m.per_dataset["samm"].uar == doctest::Approx(0.5));  // only class 2 in truth: recall 1/2
  Confusion c(3);
  CHECK_THROWS_AS(c.add(3, 0), std::out_of_range);
  CHECK_THROWS_AS(confusion_of({0, 1}, {0}, 3), std::invalid_argument);
  Chance ch = chance_levels({0, 0, 1, 2}, 3);
  CHECK(ch.uniform_accuracy == doctest::Approx(1.0 / 3));
  CHECK(ch.majority_accuracy == doctest::Approx(0.5));
  CHECK(ch.majority_uf1 == doctest::Approx((2.0 * 2 / (4 + 2)) / 3));
}

static std::vector<std::string> subjects_list() { return {"b", "a", "b", "c", "a", "d", "e", "c"}; }

TEST_CASE("splits: LOSO holds out each subject once, in sorted order") {
  auto f = loso_split(subjects_list());
  REQUIRE(f.size() == 5);
  CHECK(f[0].name == "a");
  CHECK(f[0].test == std::vector<int>{1, 4});
  CHECK(f[0].train == std::vector<int>{0, 2, 3, 5, 6, 7});
  CHECK(f[2].test == std::vector<int>{3, 7});
  std::multiset<int> all;
  for (auto& fold : f) all.insert(fold.test.begin(), fold.test.end());
  CHECK(all.size() == 8);
  CHECK(std::set<int>(all.begin(), all.end()).size() == 8);
}

TEST_CASE("splits: k-fold and single split keep subjects whole and are deterministic") {
  auto s = subjects_list();
  auto f1 = kfold_by_subject(s, 2, 7), f2 = kfold_by_subject(s, 2, 7);
  REQUIRE(f1.size() == 2);
  CHECK(f1[0].test == f2[0].test);
  CHECK(f1[0].test_subjects.size() + f1[1].test_subjects.size() == 5);
  CHECK(f1[0].test.size() + f1[1].test.size() == 8);
  for (auto& fold : f1)
    for (int i : fold.test)
      for (int j : fold.train) CHECK(s[size_t(i)] != s[size_t(j)]);
  CHECK_THROWS_AS(kfold_by_subject(s, 1, 0), std::invalid_argument);
  CHECK_THROWS_AS(kfold_by_subject(s, 6, 0), std::invalid_argument);
  Fold sp = single_split(s, 0.2, 3);
  CHECK(sp.test_subjects.size() == 1);
  CHECK(sp.test.size() + sp.train.size() == 8);
  Fold v = loso_split(s)[0];
  draw_validation(v, s, 0.25, 11);
  CHECK(v.val.size() >= 1);
  std::set<std::string> vs, ts;
  for (int i : v.val) vs.insert(s[size_t(i)]);
  for (int i : v.train) ts.insert(s[size_t(i)]);
  CHECK(vs.size() == 1);  // round(0.25 x 4 training subjects)
  for (auto& x : vs) CHECK(ts.count(x) == 0);
  CHECK(vs.count("a") == 0);  // never the test subject
  CHECK(v.val.size() + v.train.size() == 6);
}

TEST_CASE("flip: mirrors columns, u -> 1 - u, v and strain unchanged, constant u stays 0") {
  const int S = 3;
  std::vector<float> x(27);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 9; ++i) x[size_t(c * 9 + i)] = (c == 0 ? 0.1f : 0.2f) * float(i % 3) + 0.05f * float(i / 3) + float(c);
  for (int i = 0; i < 9; ++i) x[size_t(i)] = float(i) / 8.f;  // u in [0, 1]
  std::vector<float> y = x;
  flip_flow_image(y.data(), S);
  for (int r = 0; r < 3; ++r)
    for (int col = 0; col < 3; ++col) {
      CHECK(y[size_t(r * 3 + col)] == doctest::Approx(1.f - x[size_t(r * 3 + (2 - col))]));
      CHECK(y[size_t(9 + r * 3 + col)] == x[size_t(9 + r * 3 + (2 - col))]);
      CHECK(y[size_t(18 + r * 3 + col)] == x[size_t(18 + r * 3 + (2 - col))]);
    }
  std::vector<float> z(27, 0.f);
  flip_flow_image(z.data(), S);
  CHECK(z[0] == 0.f);
  CHECK(z[4] == 0.f);
  flip_flow_image(y.data(), S);  // an involution
  for (size_t i = 0; i < 27; ++i) CHECK(y[i] == doctest::Approx(x[i]));
}

TEST_CASE("class-balanced weights N / (K n_c)") {
  auto w = class_balanced_weights({0, 0, 0, 1}, 3);
  CHECK(w[0] == doctest::Approx(4.0 / 9));
  CHECK(w[1] == doctest::Approx(4.0 / 3));
  CHECK(w[2] == doctest::Approx(1.0));  // no sample: neutral
}
