// Farneback accuracy on known motion (face crops of flow/synthetic.h and a grove3 crop). Bounds are
// about 1.5x the measured errors (docs/FLOW.md); each also asserts that a flow of zeros fails.
#include <doctest/doctest.h>

#include "flow/flow.h"
#include "flow/synthetic.h"

using namespace ahmsa;

static const std::string kShared = AHMSA_SHARED_DIR;

TEST_CASE("farneback (OpenCV defaults) on face crops with sub-pixel and small global motions") {
  const img::Image hr = flow::synth::face_crop(kShared, 0);
  const auto cases = flow::synth::face_cases(hr, 128, 1.0f);
  for (const auto& c : cases) {
    const flow::FlowField f = flow::farneback(c.pair.I0, c.pair.I1, flow::FarnebackParams::opencv_defaults());
    const float region = c.subpixel ? 0.05f : 0.f;
    const double moving = flow::flow_errors(f, c.pair.truth, 0, region).aee;
    const double zero = flow::flow_errors(flow::FlowField(128, 128), c.pair.truth, 0, region).aee;
    MESSAGE(c.name << ": moving-region AEE " << moving << " px (zero flow " << zero << ")");
    CHECK(moving <= 0.3);
    CHECK(moving <= 0.6 * zero);
  }
}

TEST_CASE("farneback: translation of 1.5 px on a grove3 crop, both presets, Gaussian window") {
  img::Image g = img::crop(img::load(kShared + "/data/flow/grove3.png", 1), 200, 150, 160, 120);
  auto pair = flow::synth::make_pair(g, flow::synth::translation(160, 120, 1.5f, -0.75f), 0.5f, 3);
  flow::FarnebackParams gauss = flow::FarnebackParams::opencv_defaults();
  gauss.gaussian_window = true;
  for (const auto& p : {flow::FarnebackParams::opencv_defaults(), flow::FarnebackParams::opencv_sample(), gauss}) {
    const double e = flow::flow_errors(flow::farneback(pair.I0, pair.I1, p), pair.truth, 10).aee;
    MESSAGE(p.describe() << ": AEE " << e);
    CHECK(e < 0.1);  // zero flow: 1.68
  }
}

TEST_CASE("farneback: identical frames give zero flow; threads do not change the result") {
  img::Image a = img::resize_area(img::load(kShared + "/data/faces/astronaut.png", 3), 64, 64);
  CHECK(flow::average_endpoint_error(flow::farneback(a, a, flow::FarnebackParams::opencv_defaults()),
                                     flow::FlowField(64, 64)) < 1e-6);
  const img::Image hr = flow::synth::face_crop(kShared, 0);
  const auto c = flow::synth::face_cases(hr, 96, 1.0f)[0];
  flow::FarnebackParams p = flow::FarnebackParams::opencv_defaults();
  const auto f = flow::farneback(c.pair.I0, c.pair.I1, p);
  p.threads = 1;
  CHECK(flow::average_endpoint_error(f, flow::farneback(c.pair.I0, c.pair.I1, p)) < 1e-6);
}
