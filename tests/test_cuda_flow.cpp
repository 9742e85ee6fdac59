// The batched TV-L1 CUDA solver (flow/tvl1_cuda.cu) against the CPU. Built twice: against the CUDA
// simulator (tests/cudasim), where its real kernels run on the CPU in three thread orders on a small
// batch, and with nvcc, where it runs on a GPU at full size or says clearly why it cannot.
#include <doctest/doctest.h>

#include <cstdio>

#include "flow/flow.h"
#include "flow/synthetic.h"

using namespace ahmsa;

static const std::string kShared = AHMSA_SHARED_DIR;

#ifdef AHMSA_CUDA_SIM
constexpr int kSize = 32, kPairs = 3;  // the simulator runs each GPU thread as a fiber: keep it small
#else
constexpr int kSize = 128, kPairs = 10;
#endif

struct Batch {
  std::vector<img::Image> I0, I1;
  std::vector<flow::FlowField> truth;
};
// The first kPairs face cases of jesper_2 then the astronaut at kSize x kSize.
static Batch face_batch() {
  Batch b;
  for (const auto& hr : {flow::synth::face_crop(kShared, 0), flow::synth::astronaut_face_crop(kShared, 0)})
    for (const auto& c : flow::synth::face_cases(hr, kSize, 1.0f)) {
      if (int(b.I0.size()) == kPairs) return b;
      b.I0.push_back(c.pair.I0), b.I1.push_back(c.pair.I1), b.truth.push_back(c.pair.truth);
    }
  return b;
}

TEST_CASE("tvl1_batch_cuda matches the CPU, or says clearly why it cannot run") {
  std::string why;
  const Batch b = face_batch();
  if (!flow::tvl1_cuda_available(&why)) {
    std::printf("test_cuda_flow: CUDA case skipped: %s\n", why.c_str());
    CHECK(!why.empty());
    CHECK_THROWS_AS(flow::tvl1_batch_cuda(b.I0, b.I1, flow::TVL1Params::ipol()), flow::FlowError);
    return;
  }
  for (auto preset : {flow::TVL1Params::ipol(), flow::TVL1Params::opencv()}) {
    const auto gpu = flow::tvl1_batch_cuda(b.I0, b.I1, preset);
    REQUIRE(gpu.size() == b.I0.size());
    double worst_mean = 0, aee_gpu = 0, aee_cpu = 0;
    for (size_t i = 0; i < gpu.size(); ++i) {
      const flow::FlowField cpu = flow::tvl1(b.I0[i], b.I1[i], preset);
      worst_mean = std::max(worst_mean, flow::flow_errors(gpu[i], cpu).aee);
      aee_gpu += flow::flow_errors(gpu[i], b.truth[i], 2).aee;
      aee_cpu += flow::flow_errors(cpu, b.truth[i], 2).aee;
    }
    MESSAGE("CUDA vs CPU (" << preset.describe() << "): largest mean difference " << worst_mean
                            << " px; summed AEE " << aee_gpu << " vs " << aee_cpu);
    CHECK(worst_mean < 5e-3);
    CHECK(aee_gpu <= 1.02 * aee_cpu);
    CHECK(aee_gpu >= 0.98 * aee_cpu);
    // Deterministic: the same batch twice gives the same flow.
    const auto again = flow::tvl1_batch_cuda(b.I0, b.I1, preset);
    for (size_t i = 0; i < gpu.size(); ++i) CHECK(flow::flow_errors(gpu[i], again[i]).max_epe == 0.0);
  }
}

TEST_CASE("tvl1_batch_cuda rejects a bad batch naming the pair, before any GPU work") {
  Batch b = face_batch();
  b.I1[1] = img::resize_area(b.I1[1], kSize / 2, kSize / 2);
  CHECK_THROWS_WITH_AS(flow::tvl1_batch_cuda(b.I0, b.I1, flow::TVL1Params::ipol()), doctest::Contains("pair 1"),
                       flow::FlowError);
}
