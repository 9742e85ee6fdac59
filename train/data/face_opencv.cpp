// Face detection with OpenCV's cascade classifier (Viola-Jones); built only when OpenCV is found.
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <map>
#include <memory>

#include "train/data/face.h"
#include "train/data/table.h"

namespace ahmsa::data {

bool have_face_detector() { return true; }

FaceBox detect_face(const img::Image& im, const std::string& cascade_path) {
  // CascadeClassifier::detectMultiScale is not safe to share between threads: one per thread and file.
  thread_local std::map<std::string, std::unique_ptr<cv::CascadeClassifier>> classifiers;
  auto& cc = classifiers[cascade_path];
  if (!cc) {
    cc = std::make_unique<cv::CascadeClassifier>();
    if (!cc->load(cascade_path)) {
      cc.reset();
      throw DataError("cannot load face cascade '" + cascade_path + "'");
    }
  }
  img::Image g = img::to_grey(im);
  cv::Mat m(g.height, g.width, CV_8UC1);
  for (int y = 0; y < g.height; ++y)
    for (int x = 0; x < g.width; ++x) m.at<unsigned char>(y, x) = (unsigned char)std::clamp(g.at(x, y) + 0.5f, 0.f, 255.f);
  cv::equalizeHist(m, m);
  std::vector<cv::Rect> faces;
  int min_side = std::max(24, std::min(g.width, g.height) / 8);
  cc->detectMultiScale(m, faces, 1.1, 4, 0, cv::Size(min_side, min_side));
  FaceBox best;
  for (auto& r : faces)
    if (r.area() > best.w * best.h) best = {r.x, r.y, r.width, r.height};
  return best;
}

}  // namespace ahmsa::data
