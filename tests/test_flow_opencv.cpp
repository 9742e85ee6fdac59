// Cross-check against OpenCV (built only when OpenCV is found): our TV-L1 and Farneback vs
// cv::optflow::DualTVL1OpticalFlow and cv::calcOpticalFlowFarneback with the same parameters on the
// same 8-bit frames. Target of the issue: our TV-L1 AEE <= OpenCV's on every case.
#include <doctest/doctest.h>

#include <cmath>

#include "flow/flow.h"
#include "flow/opencv_reference.h"
#include "flow/synthetic.h"

using namespace ahmsa;

static const std::string kShared = AHMSA_SHARED_DIR;

using flow::opencv_reference::set_threads;

// Measured (docs/FLOW.md, B-spline warping): ours is 5-24% lower on every face case of both faces
// and 4% lower on grove3, so no slack is given.
TEST_CASE("TV-L1, OpenCV preset: our AEE <= OpenCV's on every face case (two faces) and on grove3") {
  set_threads(2);
  const auto p = flow::TVL1Params::opencv();
  for (const auto& [face, hr] : {std::pair{std::string("jesper_2"), flow::synth::face_crop(kShared, 0)},
                                 std::pair{std::string("astronaut"), flow::synth::astronaut_face_crop(kShared, 0)}}) {
    for (const auto& c : flow::synth::face_cases(hr, 128, 1.0f)) {
      const auto ours = flow::tvl1(c.pair.I0, c.pair.I1, p);
      const auto theirs = flow::opencv_reference::tvl1(c.pair.I0, c.pair.I1, p);
      const double eo = flow::flow_errors(ours, c.pair.truth, 4).aee;
      const double et = flow::flow_errors(theirs, c.pair.truth, 4).aee;
      MESSAGE(face << " " << c.name << ": AEE ours " << eo << " opencv " << et);
      CHECK(eo <= et);
      CHECK(et > 0.01);  // OpenCV did produce a flow: a zero flow scores far worse than this on these cases
    }
  }
  img::Image g = img::resize_area(img::load(kShared + "/data/flow/grove3.png", 1), 160, 120);
  const auto gt = flow::resize_flow(flow::read_flo(kShared + "/data/flow/grove3.flo"), 160, 120, true);
  img::Image g0 = flow::warp_bicubic(g, gt);
  for (auto& v : g0.data) v = std::round(v);
  for (auto& v : g.data) v = std::round(v);
  const double eo = flow::flow_errors(flow::tvl1(g0, g, p), gt, 8).aee;
  const double et = flow::flow_errors(flow::opencv_reference::tvl1(g0, g, p), gt, 8).aee;
  MESSAGE("grove3 160x120: AEE ours " << eo << " opencv " << et);
  CHECK(eo <= et);
}

TEST_CASE("Farneback: same parameters give an AEE within 25% of OpenCV's (or better) on the face cases") {
  set_threads(2);
  const img::Image hr = flow::synth::face_crop(kShared, 0);
  const auto p = flow::FarnebackParams::opencv_defaults();
  for (const auto& c : flow::synth::face_cases(hr, 128, 1.0f)) {
    const double eo = flow::flow_errors(flow::farneback(c.pair.I0, c.pair.I1, p), c.pair.truth, 4).aee;
    const double et =
        flow::flow_errors(flow::opencv_reference::farneback(c.pair.I0, c.pair.I1, p), c.pair.truth, 4).aee;
    MESSAGE(c.name << ": AEE ours " << eo << " opencv " << et);
    CHECK(eo <= 1.25 * et);
  }
}
