// Batched TV-L1: the CPU batch equals flow::tvl1 pair by pair; the GPU solver's schedule and steps,
// run on the CPU (tvl1_batch_emulated), reproduce flow::tvl1 with both interpolations and both presets
// (bit for bit on the SSE2 path, to FMA rounding on the AVX2 one). The CUDA solver itself is tested in
// tests/test_cuda_flow.cpp (in the simulator on every run, and on a GPU when there is one).
#include <doctest/doctest.h>

#include <cstdio>

#include "flow/flow.h"
#include "flow/internal.h"
#include "flow/synthetic.h"

using namespace ahmsa;

static const std::string kShared = AHMSA_SHARED_DIR;

struct Batch {
  std::vector<img::Image> I0, I1;
  std::vector<flow::FlowField> truth;
};
// The 8 face cases of jesper_2 at `size`, plus the astronaut's brow and bump cases.
static Batch face_batch(int size) {
  Batch b;
  for (const auto& hr : {flow::synth::face_crop(kShared, 0), flow::synth::astronaut_face_crop(kShared, 0)}) {
    const auto cases = flow::synth::face_cases(hr, size, 1.0f);
    for (size_t i = 0; i < cases.size(); ++i) {
      if (b.I0.size() >= 8 && i != 0 && i != 3) continue;
      b.I0.push_back(cases[i].pair.I0), b.I1.push_back(cases[i].pair.I1), b.truth.push_back(cases[i].pair.truth);
    }
  }
  return b;
}

// Largest and mean endpoint difference between two flows.
static std::pair<double, double> difference(const flow::FlowField& a, const flow::FlowField& b) {
  const auto e = flow::flow_errors(a, b);
  return {e.max_epe, e.aee};
}

TEST_CASE("tvl1_batch (CPU) equals flow::tvl1 on every pair; bad batches name the pair") {
  const Batch b = face_batch(64);
  auto p = flow::TVL1Params::opencv();
  p.threads = 2;
  const auto out = flow::tvl1_batch(b.I0, b.I1, p);
  REQUIRE(out.size() == b.I0.size());
  auto one = p;
  one.threads = 1;
  for (size_t i = 0; i < out.size(); ++i) CHECK(difference(out[i], flow::tvl1(b.I0[i], b.I1[i], one)).first == 0.0);

  std::vector<img::Image> I0 = b.I0, I1 = b.I1;
  I1[3] = img::resize_area(I1[3], 32, 32);
  CHECK_THROWS_WITH_AS(flow::tvl1_batch(I0, I1, p), doctest::Contains("pair 3"), flow::FlowError);
  I1 = b.I1;
  I0[5] = img::resize_area(I0[5], 32, 32), I1[5] = img::resize_area(I1[5], 32, 32);
  CHECK_THROWS_WITH_AS(flow::tvl1_batch_emulated(I0, I1, p), doctest::Contains("pair 5"), flow::FlowError);
  I1.pop_back();
  CHECK_THROWS_AS(flow::tvl1_batch(b.I0, I1, p), flow::FlowError);
  CHECK(flow::tvl1_batch({}, {}, p).empty());
}

TEST_CASE("the GPU solver's schedule, run on the CPU, reproduces flow::tvl1 (both presets, both interpolations)") {
  const Batch b = face_batch(64);
  const bool exact = !flow::detail::cpu_has_avx2_fma();  // flow::tvl1 uses FMA on the AVX2 path
  for (auto preset : {flow::TVL1Params::ipol(), flow::TVL1Params::opencv()})
    for (auto interp : {flow::TVL1Params::Interpolation::BSpline, flow::TVL1Params::Interpolation::Bicubic}) {
      flow::TVL1Params p = preset;
      p.interpolation = interp;
      p.threads = 1;
      const auto emu = flow::tvl1_batch_emulated(b.I0, b.I1, p);
      REQUIRE(emu.size() == b.I0.size());
      double worst_max = 0, worst_mean = 0, aee_emu = 0, aee_ref = 0;
      for (size_t i = 0; i < emu.size(); ++i) {
        const flow::FlowField ref = flow::tvl1(b.I0[i], b.I1[i], p);
        const auto [mx, mean] = difference(emu[i], ref);
        worst_max = std::max(worst_max, mx), worst_mean = std::max(worst_mean, mean);
        aee_emu += flow::flow_errors(emu[i], b.truth[i], 2).aee;
        aee_ref += flow::flow_errors(ref, b.truth[i], 2).aee;
      }
      MESSAGE(p.describe() << ": emulated vs tvl1 largest difference " << worst_max << " px, mean " << worst_mean
                           << "; summed AEE " << aee_emu << " vs " << aee_ref);
      if (exact) CHECK(worst_max == 0.0);
      CHECK(worst_mean < 2e-3);  // FMA rounding can move a stopping decision by one iteration
      CHECK(aee_emu <= 1.02 * aee_ref);
      CHECK(aee_emu >= 0.98 * aee_ref);
    }
}
