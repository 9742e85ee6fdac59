// The build without OpenCV: no video decoding (train/video_opencv.cpp has the real one).
#include "train/video.h"

#include <stdexcept>

#ifndef AHMSA_HAVE_OPENCV
namespace ahmsa::train {

bool have_video_reader() { return false; }

img::Image read_video_frame(const std::string& path, int) {
  throw std::runtime_error("cannot read video '" + path +
                           "': this build has no OpenCV (install libopencv-dev and rebuild), or extract the onset and apex "
                           "frames as images and pass them as ONSET APEX");
}

}  // namespace ahmsa::train
#endif
