// Face detection through OpenCV's cascade (built only with OpenCV) and the contact sheet.
#include <doctest/doctest.h>

#include <algorithm>

#include "train/data/face.h"

using namespace ahmsa;
using namespace ahmsa::data;

static double iou(const FaceBox& a, const FaceBox& b) {
  int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y), x1 = std::min(a.x + a.w, b.x + b.w), y1 = std::min(a.y + a.h, b.y + b.h);
  double inter = std::max(0, x1 - x0) * double(std::max(0, y1 - y0));
  return inter / (double(a.w) * a.h + double(b.w) * b.h - inter);
}

TEST_CASE("face detection: the Haar cascade finds the astronaut's face, crops are square") {
  REQUIRE(have_face_detector());
  std::string cascade = std::string(AHMSA_SHARED_DIR) + "/data/cascades/haarcascade_frontalface_default.xml";
  CHECK(find_cascade(cascade) == cascade);
  CHECK_THROWS_AS(find_cascade("/nonexistent/cascade.xml"), DataError);
  img::Image im = img::load(std::string(AHMSA_SHARED_DIR) + "/data/faces/astronaut.png");
  FaceBox f = detect_face(im, cascade);
  CAPTURE(f.x);
  CAPTURE(f.y);
  CAPTURE(f.w);
  // shared/data/README.md: OpenCV's detector at its defaults gives (177, 66, 95, 95).
  CHECK(iou(f, {177, 66, 95, 95}) > 0.6);
  FaceBox sq = square_box(f, 0.2f, im.width, im.height);
  CHECK(sq.w == sq.h);
  CHECK(sq.w == doctest::Approx(f.w * 1.4).epsilon(0.03));
  img::Image crop = crop_face(im, sq, 128);
  CHECK(crop.width == 128);
  CHECK(crop.height == 128);
  // A face-free image gives an empty box, not a throw.
  img::Image flat(200, 200, 1, 128.f);
  CHECK(detect_face(flat, cascade).empty());
  CHECK_THROWS_AS(detect_face(im, "/nonexistent.xml"), DataError);
  img::Image sheet = contact_sheet({crop, crop, crop}, 2, 64);
  CHECK(sheet.width == 2 * 66 + 2);
  CHECK(sheet.height == 2 * 66 + 2);
}
