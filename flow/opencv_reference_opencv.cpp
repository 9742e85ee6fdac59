#include "flow/opencv_reference.h"

#include <algorithm>

#include <opencv2/core.hpp>
#include <opencv2/optflow.hpp>
#include <opencv2/video.hpp>

namespace ahmsa::flow::opencv_reference {

static cv::Mat to_u8(const img::Image& im) {
  const img::Image g = img::to_grey(im);
  cv::Mat m(g.height, g.width, CV_8U);
  for (int i = 0; i < g.width * g.height; ++i) m.data[i] = cv::saturate_cast<uchar>(g.data[i]);
  return m;
}

static FlowField from_mat(const cv::Mat& uv) {
  FlowField f(uv.cols, uv.rows);
  for (int y = 0; y < uv.rows; ++y)
    for (int x = 0; x < uv.cols; ++x) {
      const auto v = uv.at<cv::Vec2f>(y, x);
      f.u[size_t(y) * uv.cols + x] = v[0], f.v[size_t(y) * uv.cols + x] = v[1];
    }
  return f;
}

void set_threads(int n) { cv::setNumThreads(n); }

FlowField tvl1(const img::Image& I0, const img::Image& I1, const TVL1Params& p) {
  auto tv = cv::optflow::DualTVL1OpticalFlow::create(p.tau, p.lambda, p.theta, p.scales, p.warps, p.epsilon,
                                                     p.inner_iterations, p.outer_iterations, p.zoom, 0.0,
                                                     std::max(1, p.median_filter));
  cv::Mat uv;
  tv->calc(to_u8(I0), to_u8(I1), uv);
  return from_mat(uv);
}

FlowField farneback(const img::Image& I0, const img::Image& I1, const FarnebackParams& p) {
  cv::Mat uv;
  cv::calcOpticalFlowFarneback(to_u8(I0), to_u8(I1), uv, p.pyr_scale, p.levels, p.winsize, p.iterations, p.poly_n,
                               p.poly_sigma, p.gaussian_window ? cv::OPTFLOW_FARNEBACK_GAUSSIAN : 0);
  return from_mat(uv);
}

}  // namespace ahmsa::flow::opencv_reference
