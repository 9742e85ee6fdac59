// Optimisers and LR schedules against PyTorch (tests/fixtures/optim.safetensors, written by
// tools/reference/make_optim_fixture.py in float64).
//
// Problem: x [8,5], y [8,3], W [3,5], b [3]; loss = mean((x Wᵀ + b − y)²), built from our ops.
// Each optimiser takes 5 full-batch steps from W0, b0; after every step W and b must match
// PyTorch's to 1e-5 relative (elementwise: |ours − torch| ≤ 1e-5 · max(|torch|, 0.1), the floor
// covering entries that pass near zero). Hyper-parameters are read from the fixture's metadata.
#include <doctest/doctest.h>

#include <cmath>

#include "model/safetensors.h"
#include "op_registry.h"
#include "train/optim/optim.h"

using namespace ahmsa;
using ahmsa::testing::Args;
using ahmsa::testing::getf;
using ahmsa::testing::geti;
using ahmsa::testing::parse_args;

namespace {

const SafetensorsFile& fixture() {
  static SafetensorsFile f = read_safetensors(AHMSA_SOURCE_DIR "/tests/fixtures/optim.safetensors");
  return f;
}

Tensor mse_loss(const Tensor& x, const Tensor& y, const Tensor& W, const Tensor& b) {
  return mean(square(sub(linear(x, W, b), y)));
}

// max over elements of |a − b| / max(|b|, floor)
double max_rel(const std::vector<float>& a, const std::vector<float>& b, double floor = 0.1) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])) / std::max(std::fabs(double(b[i])), floor));
  return worst;
}

std::unique_ptr<Optimizer> make_optimizer(const Args& h, std::vector<Tensor> params) {
  const std::string cls = h.at("class");
  if (cls == "SGD") {
    REQUIRE(getf(h, "dampening") == 0.f);  // ours has no dampening
    return std::make_unique<SGD>(params, getf(h, "lr"), getf(h, "momentum"), getf(h, "weight_decay"),
                                 geti(h, "nesterov") != 0);
  }
  REQUIRE(geti(h, "amsgrad") == 0);
  if (cls == "AdamW")
    return std::make_unique<AdamW>(params, getf(h, "lr"), getf(h, "beta1"), getf(h, "beta2"), getf(h, "eps"),
                                   getf(h, "weight_decay"));
  REQUIRE(cls == "Adam");
  return std::make_unique<Adam>(params, getf(h, "lr"), getf(h, "beta1"), getf(h, "beta2"), getf(h, "eps"),
                                getf(h, "weight_decay"), geti(h, "decoupled") != 0);
}

}  // namespace

TEST_CASE("the loss and its gradient at the start match PyTorch") {
  auto& f = fixture();
  Tensor W = f.tensor("W0").set_requires_grad(true), b = f.tensor("b0").set_requires_grad(true);
  Tensor loss = mse_loss(f.tensor("x"), f.tensor("y"), W, b);
  CHECK(loss.item() == doctest::Approx(f.tensor("loss0").item()).epsilon(1e-6));
  loss.backward();
  CHECK(max_rel(W.grad().to_vector(), f.tensor("gradW0").to_vector(), 1e-3) < 1e-5);
  CHECK(max_rel(b.grad().to_vector(), f.tensor("gradb0").to_vector(), 1e-3) < 1e-5);
}

TEST_CASE("AdamW, Adam and SGD follow PyTorch's parameters for 5 steps to 1e-5") {
  auto& f = fixture();
  const Tensor x = f.tensor("x"), y = f.tensor("y");
  for (std::string name : {"adamw", "adam", "sgd"}) {
    CAPTURE(name);
    Args h = parse_args(f.metadata.at(name));
    Tensor W = f.tensor("W0").set_requires_grad(true), b = f.tensor("b0").set_requires_grad(true);
    auto opt = make_optimizer(h, {W, b});
    CHECK(opt->lr() == getf(h, "lr"));
    double worst = 0;
    for (int step = 1; step <= 5; ++step) {
      CAPTURE(step);
      opt->zero_grad();
      mse_loss(x, y, W, b).backward();
      opt->step();
      CHECK(opt->steps() == step);
      std::string k = name + "/";
      double eW = max_rel(W.to_vector(), f.tensor(k + "W_step" + std::to_string(step)).to_vector());
      double eb = max_rel(b.to_vector(), f.tensor(k + "b_step" + std::to_string(step)).to_vector());
      CHECK(eW <= 1e-5);
      CHECK(eb <= 1e-5);
      worst = std::max({worst, eW, eb});
    }
    MESSAGE(name << ": worst relative parameter error over 5 steps " << worst);
    // the steps did move the parameters (the comparison is not vacuous)
    CHECK(max_rel(W.to_vector(), f.tensor("W0").to_vector()) > 1e-2);
  }
}

TEST_CASE("optimiser mechanics: zero_grad, parameters without a gradient, bad parameters") {
  Tensor a = Tensor::from_vector({2}, {1.f, -1.f}).set_requires_grad(true);
  Tensor frozen = Tensor::from_vector({1}, {5.f}).set_requires_grad(true);
  AdamW opt({a, frozen}, 0.1f, 0.9f, 0.999f, 1e-8f, 0.f);
  sum(mul(a, 3.f)).backward();
  opt.step();
  // first Adam step moves every coordinate by lr · sign(g) (m̂ = g, v̂ = g²)
  CHECK(a.to_vector()[0] == doctest::Approx(0.9f).epsilon(1e-6));
  CHECK(a.to_vector()[1] == doctest::Approx(-1.1f).epsilon(1e-6));
  CHECK(frozen.to_vector()[0] == 5.f);  // no gradient: skipped, not decayed
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  opt.set_lr(0.5f);
  CHECK(opt.lr() == 0.5f);

  // SGD with Nesterov momentum, by hand: g = 2 each step, lr 0.1, μ 0.5, no decay
  // step 1: v = 2, d = g + μ v = 3, θ = 1 − 0.3 = 0.7; step 2: v = 0.5·2 + 2 = 3, d = 2 + 1.5 = 3.5, θ = 0.35
  Tensor t = Tensor::from_vector({1}, {1.f}).set_requires_grad(true);
  SGD nesterov({t}, 0.1f, 0.5f, 0.f, true);
  for (int i = 0; i < 2; ++i) {
    nesterov.zero_grad();
    sum(mul(t, 2.f)).backward();
    nesterov.step();
  }
  CHECK(t.item() == doctest::Approx(0.35f).epsilon(1e-6));
  // plain SGD, no momentum: θ −= lr (g + λθ)
  Tensor p = Tensor::from_vector({1}, {2.f}).set_requires_grad(true);
  SGD plain({p}, 0.1f, 0.f, 0.5f);
  sum(p).backward();
  plain.step();
  CHECK(p.item() == doctest::Approx(2.f - 0.1f * (1.f + 0.5f * 2.f)).epsilon(1e-6));

  CHECK_THROWS_AS(SGD({Tensor::zeros({3, 2}).transpose(0, 1)}, 0.1f), ShapeError);
}

TEST_CASE("LR schedules match the fixture's cosine-with-warmup and PyTorch's OneCycleLR") {
  auto& f = fixture();
  // cosine_warmup: lr(t) = base·t/W for t < W, then base·½(1 + cos(π (t − W)/(T − W)))
  Args c = parse_args(f.metadata.at("sched/cosine_warmup"));
  REQUIRE(c.at("kind") == "linear_warmup_cosine");
  LrSchedule cos;
  cos.kind = LrSchedule::CosineWarmup;
  cos.base_lr = getf(c, "base");
  cos.warmup_steps = geti(c, "warmup");
  cos.total_steps = geti(c, "total");
  cos.min_lr = getf(c, "min_lr");
  auto ref = f.tensor("sched/cosine_warmup").to_vector();
  REQUIRE(int64_t(ref.size()) == cos.total_steps);
  double worst = 0;
  for (int64_t t = 0; t < cos.total_steps; ++t) {
    CAPTURE(t);
    CHECK(std::fabs(cos.at(t) - ref[size_t(t)]) <= 1e-6 * std::max(std::fabs(ref[size_t(t)]), 1e-6f));
    worst = std::max(worst, std::fabs(double(cos.at(t)) - ref[size_t(t)]) / cos.base_lr);
  }
  CHECK(cos.at(0) == 0.f);
  CHECK(cos.at(cos.warmup_steps) == doctest::Approx(cos.base_lr));
  MESSAGE("cosine_warmup: worst |ours − torch| / base " << worst);

  // OneCycleLR (cos annealing, two phases): initial max/div, up to max at pct·T − 1, down to initial/final_div
  Args o = parse_args(f.metadata.at("sched/onecycle"));
  REQUIRE(o.at("anneal_strategy") == "cos");
  REQUIRE(geti(o, "three_phase") == 0);
  LrSchedule one;
  one.kind = LrSchedule::OneCycle;
  one.base_lr = getf(o, "max_lr");
  one.total_steps = geti(o, "total_steps");
  one.pct_start = getf(o, "pct_start");
  one.div_factor = getf(o, "div_factor");
  one.final_div_factor = getf(o, "final_div_factor");
  auto ref1 = f.tensor("sched/onecycle").to_vector();
  REQUIRE(int64_t(ref1.size()) == one.total_steps);
  worst = 0;
  for (int64_t t = 0; t < one.total_steps; ++t) {
    CAPTURE(t);
    CHECK(std::fabs(one.at(t) - ref1[size_t(t)]) <= 1e-5 * ref1[size_t(t)]);
    worst = std::max(worst, std::fabs(double(one.at(t)) - ref1[size_t(t)]) / ref1[size_t(t)]);
  }
  CHECK(one.at(29) == doctest::Approx(one.base_lr));
  MESSAGE("onecycle: worst relative error " << worst);

  // parse(): names and defaults
  CHECK(LrSchedule::parse("constant", 0.1f, 10).at(7) == 0.1f);
  LrSchedule pc = LrSchedule::parse("cosine", 1e-3f, 200);
  CHECK(pc.kind == LrSchedule::CosineWarmup);
  CHECK(pc.warmup_steps == 10);
  CHECK(pc.at(199) < 1e-6f);
  CHECK(LrSchedule::parse("onecycle", 1e-2f, 100).at(0) == doctest::Approx(1e-2f / 25.f));
  CHECK_THROWS_AS(LrSchedule::parse("linear", 1e-3f, 10), std::invalid_argument);
  // steps past the end are clamped to the last value
  CHECK(one.at(1000) == one.at(one.total_steps - 1));
}
