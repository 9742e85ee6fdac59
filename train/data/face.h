// Face cropping for `ahmsa prepare`: one square box per clip (found on the onset frame and used for
// onset and apex alike), from OpenCV's frontal-face cascade when OpenCV is built in, or from a box
// file, or none (the datasets' cropped releases and the synthetic corpus are already face crops).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "flow/image.h"
#include "train/data/table.h"  // DataError

namespace ahmsa::data {

struct FaceBox {
  int x = 0, y = 0, w = 0, h = 0;
  bool empty() const { return w <= 0 || h <= 0; }
};

// Box file: CSV rows subject,x,y,w,h (a header line is allowed). Subjects as in the dataset ("sub01",
// "casme2/sub01", "006" ...) - looked up by the Sample's subject id and by its part after the '/'.
std::map<std::string, FaceBox> read_boxes(const std::string& path);
// Grows `face` by `margin` (fraction of its side) on every side, makes it square around its centre,
// and shifts/shrinks it to lie inside a w x h image.
FaceBox square_box(const FaceBox& face, float margin, int image_w, int image_h);
// The box resampled to size x size (area filter when shrinking, bilinear when growing).
img::Image crop_face(const img::Image& im, const FaceBox& box, int size);

// Tiles (any sizes; each scaled to tile x tile) in a grid of `cols` columns, 2 px grey gutters.
img::Image contact_sheet(const std::vector<img::Image>& tiles, int cols, int tile);

// True when this build has the OpenCV face detector.
bool have_face_detector();
// The cascade file: `given` when non-empty (must exist), else shared/data/cascades/
// haarcascade_frontalface_default.xml next to the repository, else /usr/share/opencv4/haarcascades/.
// "" when none is found.
std::string find_cascade(const std::string& given = "");
// Largest frontal face in the image (grey or RGB), or an empty box. Throws DataError when the build
// has no OpenCV or the cascade cannot be loaded. Thread-safe (one classifier per thread).
FaceBox detect_face(const img::Image& im, const std::string& cascade_path);

}  // namespace ahmsa::data
