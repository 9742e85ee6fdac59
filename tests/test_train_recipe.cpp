// The small-data training recipe (issue #19): each augmentation does what it says on a test image,
// mixup/CutMix and their soft-target loss, the weight averages against their closed forms, drop-path,
// the BatchNorm recomputation, the averaging inside train_fold, the settings' rules, and the synthetic
// small-data benchmark writer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "autograd/ops.h"
#include "model/ahmsa_net.h"
#include "tiny_corpus.h"
#include "train/augment.h"
#include "train/average.h"
#include "train/data/flow_dataset.h"
#include "train/data/synth_flow.h"
#include "train/settings.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace ahmsa;
using namespace ahmsa::train;

namespace {

constexpr int S = 12;
size_t at(int c, int y, int x) { return size_t(c) * S * S + size_t(y) * S + size_t(x); }

// A test image: background 0.2 with a 0 and a 1 pixel kept inside (so the min-max range survives
// a small move), and a 3×2 marker of distinct values in each channel.
std::vector<float> test_image() {
  std::vector<float> im(size_t(3) * S * S, 0.2f);
  for (int c = 0; c < 3; ++c) {
    im[at(c, 6, 6)] = 0.f;
    im[at(c, 5, 5)] = 1.f;
    for (int y = 4; y < 6; ++y)
      for (int x = 3; x < 6; ++x)
        if (!(y == 5 && x == 5)) im[at(c, y, x)] = 0.3f + 0.1f * float(c) + 0.05f * float(x - 3) + 0.02f * float(y);
  }
  return im;
}

std::vector<float> values(const Tensor& t) { return t.to_vector(); }

}  // namespace

TEST_CASE("translation moves the content by (dx, dy) pixels and keeps it") {
  const std::vector<float> in = test_image();
  std::vector<float> out = in;
  SampleAugment t;
  t.warp = true, t.dx = 2, t.dy = -1;
  warp_flow_image(out.data(), S, t);
  // out(x, y) = in(x − 2, y + 1) wherever that pixel is inside the image.
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < S - 1; ++y)
      for (int x = 2; x < S; ++x) REQUIRE(out[at(c, y, x)] == doctest::Approx(in[at(c, y + 1, x - 2)]).epsilon(1e-6));
  CHECK(out[at(1, 4, 7)] == doctest::Approx(1.f));  // the 1 pixel moved from (5, 5) to (7, 4)
  // Past the border the nearest edge pixel is read: column 0 repeats the input's column 0.
  CHECK(out[at(0, 3, 0)] == doctest::Approx(in[at(0, 4, 0)]));
  // No parameters: the identity.
  std::vector<float> same = in;
  SampleAugment none;
  none.warp = true;
  warp_flow_image(same.data(), S, none);
  for (size_t i = 0; i < in.size(); ++i) REQUIRE(same[i] == doctest::Approx(in[i]).epsilon(1e-6));
}

TEST_CASE("crop-and-resize of a ramp is the ramp again: the renormalisation cancels the scale") {
  // u = x (a uniform horizontal flow gradient), v = y, os constant.
  std::vector<float> im(size_t(3) * S * S, 0.f);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) im[at(0, y, x)] = float(x) / float(S - 1), im[at(1, y, x)] = float(y) / float(S - 1);
  SampleAugment t;
  t.warp = true, t.crop = 0.5f, t.cx = 1.5f, t.cy = -2.f;  // the half-side crop, off centre, enlarged ×2
  warp_flow_image(im.data(), S, t);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      REQUIRE(im[at(0, y, x)] == doctest::Approx(float(x) / float(S - 1)).epsilon(1e-5));
      REQUIRE(im[at(1, y, x)] == doctest::Approx(float(y) / float(S - 1)).epsilon(1e-5));
      REQUIRE(im[at(2, y, x)] == 0.f);  // a constant channel stays 0
    }
}

TEST_CASE("rotation by 90 degrees moves pixel (x, y) to (S-1-y, x); the (u, v) values are carried, not rotated") {
  const std::vector<float> in = test_image();
  std::vector<float> out = in;
  SampleAugment t;
  t.warp = true, t.angle = 3.14159265358979f / 2;
  warp_flow_image(out.data(), S, t);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) REQUIRE(out[at(c, x, S - 1 - y)] == doctest::Approx(in[at(c, y, x)]).epsilon(1e-5));
}

TEST_CASE("random erasing zeroes the patch in every channel and nothing else") {
  const std::vector<float> in = test_image();
  std::vector<float> out = in;
  erase_flow_image(out.data(), S, 2, 3, 4, 5);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        const bool inside = x >= 2 && x < 6 && y >= 3 && y < 8;
        REQUIRE(out[at(c, y, x)] == (inside ? 0.f : in[at(c, y, x)]));
      }
  // Clipped to the image.
  std::vector<float> edge = in;
  erase_flow_image(edge.data(), S, S - 2, -3, 10, 5);
  CHECK(edge[at(0, 1, S - 1)] == 0.f);
  CHECK(edge[at(0, 2, S - 3)] == in[at(0, 2, S - 3)]);
}

TEST_CASE("augmentation draws: off draws nothing; each drawn sample stays within its bounds") {
  AugmentSettings off;
  Generator a(5), b(5);
  for (int i = 0; i < 10; ++i) {
    SampleAugment t = draw_augment(off, S, a);
    CHECK(!t.warp);
    CHECK(!t.erase);
  }
  CHECK(a.next_u64() == b.next_u64());  // the data-order stream is untouched
  AugmentSettings on;
  on.translate = 0.25f, on.translate_prob = 0.5f, on.crop = 0.3f, on.crop_prob = 0.5f, on.rotate = 10, on.rotate_prob = 0.5f,
  on.erase = 0.2f, on.erase_prob = 0.5f;
  int warps = 0, erases = 0;
  for (int i = 0; i < 2000; ++i) {
    SampleAugment t = draw_augment(on, S, a);
    warps += t.warp, erases += t.erase;
    REQUIRE(std::abs(t.dx) <= 0.25f * S);
    REQUIRE(t.crop >= 0.7f);
    REQUIRE(t.crop <= 1.f);
    REQUIRE(std::abs(t.cx) <= (1 - t.crop) * S / 2 + 1e-5f);
    REQUIRE(std::abs(t.angle) <= 10 * 3.1416f / 180);
    if (t.erase) {
      REQUIRE(t.ex >= 0);
      REQUIRE(t.ex + t.ew <= S);
      REQUIRE(t.ey + t.eh <= S);
      REQUIRE(float(t.ew * t.eh) <= 0.2f * S * S * 1.6f);  // rounding of each side
    }
  }
  CHECK(warps == doctest::Approx(2000 * (1 - 0.125)).epsilon(0.05));  // some of three ½ draws
  CHECK(erases == doctest::Approx(1000).epsilon(0.1));
  // Deterministic: the same seed gives the same draws.
  Generator c(9), d(9);
  SampleAugment x = draw_augment(on, S, c), y = draw_augment(on, S, d);
  CHECK(x.dx == y.dx);
  CHECK(x.angle == y.angle);
  CHECK(x.ex == y.ex);
}

TEST_CASE("Beta(alpha, alpha) draws: moments, and alpha -> 0 gives 0 or 1") {
  Generator g(11);
  for (float alpha : {0.4f, 2.f}) {
    double m = 0, q = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const double l = sample_beta(alpha, g);
      REQUIRE(l >= 0);
      REQUIRE(l <= 1);
      m += l, q += l * l;
    }
    m /= n, q = q / n - m * m;
    CHECK(m == doctest::Approx(0.5).epsilon(0.02));
    CHECK(q == doctest::Approx(1.0 / (4 * (2 * alpha + 1))).epsilon(0.05));  // Var = 1 / (4 (2α + 1))
  }
  int zeros = 0, ones = 0;
  for (int i = 0; i < 1000; ++i) {
    const float l = sample_beta(1e-6f, g);
    REQUIRE((l < 1e-6f || l > 1 - 1e-6f));
    (l < 0.5f ? zeros : ones)++;
  }
  CHECK(zeros > 400);
  CHECK(ones > 400);
  CHECK_THROWS_AS(sample_beta(0.f, g), std::invalid_argument);
}

TEST_CASE("mixup: the blend and its soft targets; with alpha -> 0 it is no mixup") {
  Generator g(3);
  Tensor x = Tensor::empty({4, 3, S, S});
  uniform_(x, 0.f, 1.f, g);
  const std::vector<float> orig = values(x);
  const std::vector<int> y = {0, 2, 1, 2};
  const size_t per = size_t(3) * S * S;
  MixSettings ms;
  ms.mixup_alpha = 1e-6f;
  for (int trial = 0; trial < 20; ++trial) {
    Tensor xb = x.clone();
    MixPlan p = draw_mix(ms, 4, S, g);
    REQUIRE(p.kind == MixPlan::Mixup);
    apply_mix(xb, p);
    const std::vector<float> v = values(xb), q = mixed_targets(y, 3, p);
    for (size_t i = 0; i < 4; ++i) {
      // Each row is one of the original rows, whole, and its target that row's one-hot label.
      const size_t src = p.lambda > 0.5f ? i : size_t(p.partner[i]);
      for (size_t k = 0; k < per; ++k) REQUIRE(v[i * per + k] == doctest::Approx(orig[src * per + k]).epsilon(1e-5));
      for (int c = 0; c < 3; ++c) REQUIRE(q[i * 3 + size_t(c)] == doctest::Approx(c == y[src] ? 1.f : 0.f).epsilon(1e-5));
    }
  }
  // A given λ: x_i = λ x_i + (1 − λ) x_partner(i), targets λ e_y(i) + (1 − λ) e_y(partner(i)).
  MixPlan p;
  p.kind = MixPlan::Mixup, p.lambda = 0.3f, p.partner = {1, 0, 3, 2};
  Tensor xb = x.clone();
  apply_mix(xb, p);
  const std::vector<float> v = values(xb), q = mixed_targets(y, 3, p);
  CHECK(v[5] == doctest::Approx(0.3f * orig[5] + 0.7f * orig[per + 5]));
  CHECK(v[3 * per + 7] == doctest::Approx(0.3f * orig[3 * per + 7] + 0.7f * orig[2 * per + 7]));
  CHECK(q == std::vector<float>{0.3f, 0, 0.7f, 0.7f, 0, 0.3f, 0, 0.3f, 0.7f, 0, 0.7f, 0.3f});
  // Off, or a probability of 0: nothing is drawn.
  Generator a(1), b(1);
  CHECK(draw_mix(MixSettings{}, 4, S, a).kind == MixPlan::None);
  ms.prob = 0.f;
  CHECK(draw_mix(ms, 4, S, a).kind == MixPlan::None);
  b.uniform();  // the probability draw
  CHECK(a.next_u64() == b.next_u64());
}

TEST_CASE("CutMix pastes the partner's box and sets lambda to the exact share left") {
  Generator g(8);
  Tensor x = Tensor::empty({3, 3, S, S});
  uniform_(x, 0.f, 1.f, g);
  const std::vector<float> orig = values(x);
  MixSettings ms;
  ms.cutmix_alpha = 1.f;
  for (int trial = 0; trial < 10; ++trial) {
    MixPlan p = draw_mix(ms, 3, S, g);
    REQUIRE(p.kind == MixPlan::CutMix);
    CHECK(p.lambda == doctest::Approx(1.f - float(p.bw * p.bh) / float(S * S)));
    Tensor xb = x.clone();
    apply_mix(xb, p);
    const std::vector<float> v = values(xb);
    for (int i = 0; i < 3; ++i)
      for (int c = 0; c < 3; ++c)
        for (int yy = 0; yy < S; ++yy)
          for (int xx = 0; xx < S; ++xx) {
            const bool box = xx >= p.bx && xx < p.bx + p.bw && yy >= p.by && yy < p.by + p.bh;
            const int src = box ? p.partner[size_t(i)] : i;
            REQUIRE(v[size_t(i) * 3 * S * S + at(c, yy, xx)] == orig[size_t(src) * 3 * S * S + at(c, yy, xx)]);
          }
  }
}

TEST_CASE("soft-target cross-entropy: the formula, one-hot rows equal cross_entropy, gradients") {
  Tensor z = Tensor::from_vector({2, 3}, {1.f, -0.5f, 2.f, 0.f, 0.3f, -1.f});
  z.set_requires_grad(true);
  Tensor q = Tensor::from_vector({2, 3}, {0.3f, 0.f, 0.7f, 0.f, 1.f, 0.f});
  Tensor loss = cross_entropy_soft(z, q);
  // By hand: −Σ q log softmax, averaged over the 2 rows.
  auto logsm = [](std::vector<double> r) {
    double m = *std::max_element(r.begin(), r.end()), s = 0;
    for (double v : r) s += std::exp(v - m);
    for (double& v : r) v = v - m - std::log(s);
    return r;
  };
  auto a = logsm({1, -0.5, 2}), b = logsm({0, 0.3, -1});
  const double want = (-(0.3 * a[0] + 0.7 * a[2]) - b[1]) / 2;
  CHECK(loss.item() == doctest::Approx(want).epsilon(1e-6));
  loss.backward();
  const std::vector<float> gz = z.grad().to_vector();
  CHECK(gz[0] == doctest::Approx((std::exp(a[0]) - 0.3) / 2).epsilon(1e-5));
  CHECK(gz[4] == doctest::Approx((std::exp(b[1]) - 1.0) / 2).epsilon(1e-5));
  // One-hot targets, with and without label smoothing: the hard-target op's loss and gradient.
  for (float eps : {0.f, 0.1f}) {
    Tensor z1 = Tensor::from_vector({3, 4}, {0.1f, 2.f, -1.f, 0.5f, 1.f, 1.f, 0.f, -2.f, 0.3f, 0.2f, 0.1f, 3.f});
    Tensor z2 = z1.clone();
    z1.set_requires_grad(true), z2.set_requires_grad(true);
    const std::vector<int> t = {1, 2, 3};
    Tensor oh = Tensor::from_vector({3, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
    Tensor hard = cross_entropy(z1, t, Tensor(), eps), soft = cross_entropy_soft(z2, oh, Tensor(), eps);
    CHECK(soft.item() == doctest::Approx(hard.item()).epsilon(1e-6));
    hard.backward(), soft.backward();
    const std::vector<float> g1 = z1.grad().to_vector(), g2 = z2.grad().to_vector();
    for (size_t i = 0; i < g1.size(); ++i) CHECK(g2[i] == doctest::Approx(g1[i]).epsilon(1e-6));
  }
  CHECK_THROWS_AS(cross_entropy_soft(z, Tensor::zeros({2, 2})), ShapeError);
}

TEST_CASE("EMA after k steps equals the closed form; SWA of snapshots is their mean") {
  const float d = 0.9f;
  std::vector<float> p0 = {1.f, -2.f, 0.5f};
  Tensor p = Tensor::from_vector({3}, p0);
  WeightAverage ema;
  ema.start({p});
  std::vector<std::vector<float>> seen = {p0};
  for (int k = 1; k <= 5; ++k) {
    std::vector<float> pk = {float(k), float(k * k) * 0.1f, -float(k)};
    p.copy_(Tensor::from_vector({3}, pk));
    seen.push_back(pk);
    ema.ema_update({p}, d);
  }
  CHECK(ema.count() == 5);
  const std::vector<float> got = ema.values()[0].to_vector();
  for (size_t j = 0; j < 3; ++j) {
    double want = std::pow(double(d), 5) * seen[0][j];  // d^k p_0 + (1 − d) Σ_i d^(k−i) p_i
    for (int i = 1; i <= 5; ++i) want += (1 - double(d)) * std::pow(double(d), 5 - i) * seen[size_t(i)][j];
    CHECK(got[j] == doctest::Approx(want).epsilon(1e-5));
  }
  // SWA of identical snapshots is the snapshot; of distinct ones their mean.
  WeightAverage swa;
  Tensor w = Tensor::from_vector({2, 2}, {0.25f, -1.5f, 3.f, 7.f});
  for (int i = 0; i < 4; ++i) swa.add_snapshot({w});
  CHECK(swa.values()[0].to_vector() == w.to_vector());
  WeightAverage mean;
  for (float s : {1.f, 2.f, 6.f}) mean.add_snapshot({Tensor::full({2}, s)});
  CHECK(mean.values()[0].to_vector()[0] == doctest::Approx(3.f));
  Tensor target = Tensor::zeros({2});
  mean.copy_to({target});
  CHECK(target.to_vector() == std::vector<float>{3.f, 3.f});
  CHECK_THROWS_AS(mean.add_snapshot({Tensor::zeros({3})}), std::invalid_argument);
}

TEST_CASE("drop_path: per sample, 0 or scaled by 1/(1-p); identity in eval and at 0; the model at 0 is the spec's") {
  Generator g(4);
  Tensor x = Tensor::ones({2000, 3, 2});
  Tensor y = drop_path(x, 0.25f, true, g);
  const std::vector<float> v = y.to_vector();
  int dropped = 0;
  for (size_t n = 0; n < 2000; ++n) {
    const float first = v[n * 6];
    REQUIRE((first == 0.f || first == doctest::Approx(1 / 0.75f)));
    for (size_t k = 1; k < 6; ++k) REQUIRE(v[n * 6 + k] == first);  // the whole sample together
    dropped += first == 0.f;
  }
  CHECK(dropped == doctest::Approx(500).epsilon(0.15));
  CHECK(values(drop_path(x, 0.25f, false, g)) == values(x));
  CHECK(values(drop_path(x, 0.f, true, g)) == values(x));

  // Same initialisation with and without drop-path (it adds no parameters); eval outputs equal;
  // training outputs equal at drop_path 0 and differ at 0.5.
  AhmsaConfig base = AhmsaConfig::parse("size=8;stem=8;channels=32,32;dropout=0");
  AhmsaConfig dp = base;
  dp.drop_path = 0.5f;
  CHECK(base.to_string().find("drop_path") == std::string::npos);
  CHECK(AhmsaConfig::parse(dp.to_string()).drop_path == 0.5f);
  Generator i1(7), i2(7);
  AhmsaNet a(base, i1), b(dp, i2);
  auto sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) REQUIRE(values(sa[i].second) == values(sb[i].second));
  Tensor in = Tensor::empty({4, 3, 8, 8});
  uniform_(in, 0.f, 1.f, g);
  a.eval(), b.eval();
  CHECK(values(a.forward(in)) == values(b.forward(in)));
  a.train(), b.train();
  Generator i3(7);
  AhmsaNet a2(base, i3);
  a2.train();
  Generator d1(1), d2(1), d3(1);
  CHECK(values(a.forward(in, d1)) == values(a2.forward(in, d2)));
  CHECK(values(a.forward(in, d1)) != values(b.forward(in, d3)));
  dp.drop_path = 1.f;
  CHECK_THROWS_AS(dp.validate(), std::invalid_argument);
}

TEST_CASE("recompute_batch_norm: independent of the old statistics and of how the samples are batched") {
  data::FlowDataset ds = testing::tiny_corpus(2, 5);
  std::vector<int> idx(ds.samples.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int(i);
  AhmsaConfig cfg = AhmsaConfig::parse("size=8;stem=8;channels=32,32;dropout=0");
  Generator init(2), gen(0);
  AhmsaNet m(cfg, init);
  m.batch_norms()[0]->running_mean.copy_(Tensor::full({8}, 5.f));  // stale statistics
  recompute_batch_norm(m, ds, idx, int(idx.size()), gen);
  const std::vector<float> one_batch = values(m.batch_norms()[0]->running_mean);
  const std::vector<float> var_one = values(m.batch_norms()[0]->running_var);
  m.batch_norms()[0]->running_mean.copy_(Tensor::full({8}, -3.f));
  recompute_batch_norm(m, ds, idx, int(idx.size()) / 2, gen);  // two equal halves
  const std::vector<float> halves = values(m.batch_norms()[0]->running_mean);
  // The stem's input does not depend on any BatchNorm: the mean of the halves' means is the whole mean.
  for (size_t c = 0; c < 8; ++c) CHECK(halves[c] == doctest::Approx(one_batch[c]).epsilon(1e-4));
  CHECK(one_batch != std::vector<float>(8, 5.f));
  for (float v : var_one) CHECK(v > 0.f);
  CHECK(m.batch_norms()[0]->momentum == 0.1f);  // restored
  CHECK(m.batch_norms().size() == 3);           // stem + one per level
}

TEST_CASE("train_fold: SWA over the last epoch is the trained weights; EMA and mixing runs are deterministic") {
  data::FlowDataset ds = testing::tiny_corpus(3, 6);
  Fold fold;
  fold.name = "t";
  for (size_t i = 0; i < ds.samples.size(); ++i) (ds.samples[i].subject == "casme2/sub03" ? fold.test : fold.train).push_back(int(i));
  FoldSettings o = RunSettings().fold;
  o.model = AhmsaConfig::parse("size=8;stem=8;channels=32,32;classes=3");
  o.epochs = 3, o.batch_size = 4;
  FoldOutcome plain = train_fold(ds, fold, o, 42);
  o.swa_epochs = 1;
  FoldOutcome swa = train_fold(ds, fold, o, 42);
  auto pa = plain.model->named_parameters(), pb = swa.model->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) REQUIRE(values(pa[i].second) == values(pb[i].second));
  CHECK(swa.selected_epoch == 3);
  CHECK(swa.pred.size() == fold.test.size());
  // Only the BatchNorm statistics were recomputed.
  CHECK(values(plain.model->batch_norms()[0]->running_mean) != values(swa.model->batch_norms()[0]->running_mean));
  o.swa_epochs = 0, o.ema = 0.9f, o.mix.mixup_alpha = 0.4f, o.mix.cutmix_alpha = 1.f, o.augment.translate = 0.2f,
  o.augment.erase = 0.2f, o.augment.rotate = 10, o.augment.crop = 0.2f, o.model.drop_path = 0.2f;
  FoldOutcome r1 = train_fold(ds, fold, o, 42), r2 = train_fold(ds, fold, o, 42);
  CHECK(r1.prob == r2.prob);
  CHECK(values(r1.model->parameters()[0]) == values(r2.model->parameters()[0]));
  CHECK(values(r1.model->parameters()[0]) != values(plain.model->parameters()[0]));
}

TEST_CASE("settings: the recipe's defaults are off, and the averaging rules") {
  RunSettings s;
  CHECK(!s.fold.augment.any());
  CHECK(!s.fold.mix.any());
  CHECK(s.fold.ema == 0.f);
  CHECK(s.fold.swa_epochs == 0);
  CHECK(s.fold.model.drop_path == 0.f);
  CHECK(s.fold.augment.translate_prob == 0.5f);
  CHECK(s.fold.mix.prob == 1.f);
  validate_settings(s);
  s.fold.ema = 0.99f, s.fold.swa_epochs = 3;
  CHECK_THROWS_WITH_AS(validate_settings(s), doctest::Contains("--ema and --swa-epochs"), std::invalid_argument);
  s.fold.ema = 0, s.fold.swa_epochs = 31;
  CHECK_THROWS_WITH_AS(validate_settings(s), doctest::Contains("more than --epochs"), std::invalid_argument);
  s.fold.swa_epochs = 0, s.fold.augment.rotate = 50;
  CHECK_THROWS_WITH_AS(validate_settings(s), doctest::Contains("--rotate"), std::invalid_argument);
  const auto j = settings_json(RunSettings());
  CHECK(j.at("mixup") == 0.0);
  CHECK(j.at("swa-epochs") == 0);
}

TEST_CASE("the small-data benchmark: a flow cache with the composite's shape, deterministic") {
  const fs::path dir = fs::temp_directory_path() / "ahmsa_test_small_data";
  fs::remove_all(dir);
  data::SmallDataOptions o;
  o.out_dir = dir.string();
  o.subjects = 14;
  const data::SmallDataReport r = data::write_small_data_benchmark(o);
  data::FlowDataset ds = data::load_flow_cache(dir.string());
  CHECK(int(ds.samples.size()) == r.clips);
  CHECK(r.per_class[0] > r.per_class[1]);  // negative the largest class, as in the composite
  CHECK(r.per_class[0] > r.per_class[2]);
  CHECK(r.per_class[0] + r.per_class[1] + r.per_class[2] == r.clips);
  CHECK(r.clips >= 14 * 2);
  std::set<std::string> subjects, datasets;
  for (auto& s : ds.samples) {
    subjects.insert(s.subject), datasets.insert(s.dataset);
    REQUIRE(s.size == 16);
    for (int c = 0; c < 3; ++c) {  // each channel min-max normalised
      auto b = s.x.begin() + c * 256, e = b + 256;
      REQUIRE(*std::min_element(b, e) == 0.f);
      REQUIRE(*std::max_element(b, e) == 1.f);
    }
  }
  CHECK(subjects.size() == 14);
  CHECK(datasets == std::set<std::string>{"casme2", "samm", "smic"});
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  const std::string first = slurp(dir / "manifest.csv"), png = slurp(dir / "flows" / "samm_02_c01.png");
  data::write_small_data_benchmark(o);
  CHECK(slurp(dir / "manifest.csv") == first);
  CHECK(slurp(dir / "flows" / "samm_02_c01.png") == png);
  o.subjects = 2;
  CHECK_THROWS_AS(data::write_small_data_benchmark(o), std::invalid_argument);
  fs::remove_all(dir);
}
