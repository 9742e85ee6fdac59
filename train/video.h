// Reading single frames of a video file for `ahmsa predict --video`. Needs OpenCV (video decoding is
// the one thing we do not write ourselves); without it read_video_frame throws a clear error.
#pragma once
#include <string>

#include "flow/image.h"

namespace ahmsa::train {

bool have_video_reader();
// Frame `index` (0-based) of the video as an RGB image; throws std::runtime_error naming the file,
// the index and the frame count when it cannot be read.
img::Image read_video_frame(const std::string& path, int index);

}  // namespace ahmsa::train
