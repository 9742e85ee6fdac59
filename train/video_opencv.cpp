// Video frames through OpenCV's VideoCapture (compiled only when OpenCV is found).
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <stdexcept>

#include "train/video.h"

namespace ahmsa::train {

bool have_video_reader() { return true; }

img::Image read_video_frame(const std::string& path, int index) {
  cv::VideoCapture cap(path);
  if (!cap.isOpened()) throw std::runtime_error("cannot open video '" + path + "'");
  const int count = int(cap.get(cv::CAP_PROP_FRAME_COUNT));
  if (index < 0 || (count > 0 && index >= count))
    throw std::runtime_error("video '" + path + "' has " + std::to_string(count) + " frames; frame " + std::to_string(index) +
                             " does not exist (frames are 0-based)");
  // Seeking is unreliable in some codecs: read forward from the start.
  cv::Mat frame;
  for (int i = 0; i <= index; ++i)
    if (!cap.read(frame) || frame.empty())
      throw std::runtime_error("video '" + path + "': could not decode frame " + std::to_string(i) + " (wanted " + std::to_string(index) + ")");
  cv::Mat rgb;
  if (frame.channels() == 1) cv::cvtColor(frame, rgb, cv::COLOR_GRAY2RGB);
  else cv::cvtColor(frame, rgb, cv::COLOR_BGR2RGB);
  img::Image im(rgb.cols, rgb.rows, 3);
  for (int y = 0; y < rgb.rows; ++y) {
    const unsigned char* row = rgb.ptr<unsigned char>(y);
    for (int x = 0; x < rgb.cols * 3; ++x) im.data[size_t(y) * rgb.cols * 3 + x] = row[x];
  }
  return im;
}

}  // namespace ahmsa::train
