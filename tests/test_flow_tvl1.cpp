// TV-L1 accuracy against known motion: Middlebury grove3 (second frame synthesised from its ground
// truth) and the sub-pixel face cases of flow/synthetic.h. Bounds are about 1.5x what was measured
// (docs/FLOW.md); each check also asserts that a flow of zeros would fail it.
#include <doctest/doctest.h>

#include <cstdio>

#include "flow/flow.h"
#include "flow/synthetic.h"

using namespace ahmsa;

static const std::string kShared = AHMSA_SHARED_DIR;

// grove3 at quarter size: frame 0 = grove3(x + w(x)) (bicubic), frame 1 = grove3, so the flow 0 -> 1 is w.
struct Grove {
  img::Image I0, I1;
  flow::FlowField gt;
};
static Grove grove_half() {
  Grove g;
  img::Image full = img::load(kShared + "/data/flow/grove3.png", 1);
  g.gt = flow::resize_flow(flow::read_flo(kShared + "/data/flow/grove3.flo"), 160, 120, /*area=*/true);
  g.I1 = img::resize_area(full, 160, 120);
  g.I0 = flow::warp_bicubic(g.I1, g.gt);
  return g;
}

TEST_CASE("tvl1 on grove3 (160x120, synthetic 2nd frame): AEE and angular error, both presets") {
  Grove g = grove_half();
  flow::FlowField zero(160, 120);
  const auto ez = flow::flow_errors(zero, g.gt, 8);
  struct Run {
    const char* name;
    flow::TVL1Params p;
    double aee_max, aae_max;
  };
  for (const Run& r : {Run{"ipol", flow::TVL1Params::ipol(), 0.40, 7.5}, Run{"opencv", flow::TVL1Params::opencv(), 0.40, 7.5}}) {
    const auto& [name, p, aee_max, aae_max] = r;
    const auto e = flow::flow_errors(flow::tvl1(g.I0, g.I1, p), g.gt, 8);
    MESSAGE(std::string(name) << ": AEE " << e.aee << " px, AAE " << e.aae_deg << " deg (zero flow: " << ez.aee << ", "
                 << ez.aae_deg << ")");
    CHECK(e.aee < aee_max);
    CHECK(e.aae_deg < aae_max);
    CHECK(ez.aee > aee_max);  // the bound is meaningful
    CHECK(ez.aae_deg > aae_max);
  }
}

TEST_CASE("tvl1 (IPOL preset) on face crops with sub-pixel local and small global motions") {
  const img::Image hr = flow::synth::face_crop(kShared, 0);
  const auto cases = flow::synth::face_cases(hr, 128, 1.0f);
  REQUIRE(cases.size() == 8);
  for (const auto& c : cases) {
    const flow::FlowField f = flow::tvl1(c.pair.I0, c.pair.I1, flow::TVL1Params::ipol());
    const flow::FlowField zero(128, 128);
    const double all = flow::flow_errors(f, c.pair.truth, 4).aee;
    // Local motions: the error on the moving region (|truth| >= 0.05 px) says more than the image mean.
    const float region = c.subpixel ? 0.05f : 0.f;
    const double moving = flow::flow_errors(f, c.pair.truth, 0, region).aee;
    const double moving_zero = flow::flow_errors(zero, c.pair.truth, 0, region).aee;
    MESSAGE(c.name << ": AEE " << all << " px, moving region " << moving << " px (zero flow " << moving_zero << ")");
    if (c.subpixel) {
      CHECK(all <= 0.05);  // the sub-pixel target (interior AEE)
      CHECK(moving <= 0.12);
      CHECK(moving <= 0.45 * moving_zero);  // zero flow fails this by construction
    } else {
      CHECK(all <= 0.1);
      CHECK(moving <= 0.12);
      CHECK(moving_zero > 0.3);
    }
  }
}

TEST_CASE("tvl1 (OpenCV preset, median filter) on two face cases; threads do not change the result") {
  const img::Image hr = flow::synth::face_crop(kShared, 0);
  const auto cases = flow::synth::face_cases(hr, 64, 1.0f);
  for (int i : {0, 5}) {
    const auto& c = cases[i];
    flow::TVL1Params p = flow::TVL1Params::opencv();
    const flow::FlowField f = flow::tvl1(c.pair.I0, c.pair.I1, p);
    p.threads = 1;
    const flow::FlowField f1 = flow::tvl1(c.pair.I0, c.pair.I1, p);
    const double e = flow::flow_errors(f, c.pair.truth, 0, c.subpixel ? 0.05f : 0.f).aee;
    const double ez = flow::flow_errors(flow::FlowField(64, 64), c.pair.truth, 0, c.subpixel ? 0.05f : 0.f).aee;
    MESSAGE(c.name << " (64 px, opencv preset): moving-region AEE " << e << " (zero " << ez << ")");
    CHECK(e <= 0.4 * ez);
    CHECK(flow::average_endpoint_error(f, f1) < 1e-4);  // row-parallel loops: same maths in any order
  }
}

TEST_CASE("tvl1: identical frames give (nearly) zero flow; colour input is converted to grey") {
  img::Image rgb = img::resize_area(img::load(kShared + "/data/faces/astronaut.png", 3), 64, 64);
  const flow::FlowField f = flow::tvl1(rgb, rgb, flow::TVL1Params::ipol());
  CHECK(f.width == 64);
  CHECK(flow::average_endpoint_error(f, flow::FlowField(64, 64)) < 1e-6);
}
