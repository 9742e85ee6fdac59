// OpenCV's optical flow run with our parameters on the same 8-bit-rounded frames: the cross-check
// used by tests/test_flow_opencv.cpp and `ahmsa bench flow`. Only in builds with OpenCV
// (flow/opencv_reference_opencv.cpp); flow/ itself never needs it.
#pragma once
#ifdef AHMSA_HAVE_OPENCV
#include "flow/flow.h"

namespace ahmsa::flow::opencv_reference {

void set_threads(int n);  // cv::setNumThreads
// cv::optflow::DualTVL1OpticalFlow with p's tau, lambda, theta, scales, warps, epsilon, inner and
// outer iterations, zoom (scale step) and median filter.
FlowField tvl1(const img::Image& I0, const img::Image& I1, const TVL1Params& p);
// cv::calcOpticalFlowFarneback with p's parameters (Gaussian window flag from p.gaussian_window).
FlowField farneback(const img::Image& I0, const img::Image& I1, const FarnebackParams& p);

}  // namespace ahmsa::flow::opencv_reference
#endif
