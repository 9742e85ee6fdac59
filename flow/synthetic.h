// Frame pairs with known motion, for the accuracy tests and `ahmsa bench flow`: global translation,
// rotation and zoom, and the small local motions of micro-expressions (Gaussian bumps, sheared
// patches), applied to a real image, with optional Gaussian noise.
#pragma once
#include <cstdint>
#include <string>

#include "flow/flow.h"

namespace ahmsa::flow::synth {

FlowField translation(int w, int h, float dx, float dy);
// Rotation by angle_deg (counter-clockwise in image coordinates) about the image centre.
FlowField rotation(int w, int h, float angle_deg);
// Zoom by `scale` about the image centre (scale > 1: points move outwards).
FlowField zoom(int w, int h, float scale);
// A Gaussian bump of displacement: (du, dv) * exp(-|x - c|^2 / (2 sigma^2)).
FlowField gaussian_bump(int w, int h, float cx, float cy, float sigma, float du, float dv);
// A sheared patch: u = shear * (y - cy) inside a smooth (Gaussian-edged) window of half-size r.
FlowField sheared_patch(int w, int h, float cx, float cy, float r, float shear);
// Sum of two fields of the same size.
FlowField add(const FlowField& a, const FlowField& b);

struct Pair {
  img::Image I0, I1;  // grey, float 0..255
  FlowField truth;    // I0(x) = I1(x + truth(x)) before noise
};
// I1 = frame (grey); I0 = I1 sampled at x + motion(x) (bicubic), so the flow from I0 to I1 is exactly
// `motion`. Then both frames get independent Gaussian noise of std noise_sigma (grey levels),
// from a fixed-seed generator (Box-Muller on a 64-bit LCG, identical on every platform), and are
// rounded to integers in 0..255 like 8-bit camera frames.
Pair make_pair(const img::Image& frame, const FlowField& motion, float noise_sigma, uint64_t seed);

// The grey face of jesper_2.jpg: its Haar face box (219, 89, 317 x 317), area-resized to `size`
// (0: the full 317 x 317 crop). `shared_dir` is the shared/ folder (AHMSA_SHARED_DIR in tests).
img::Image face_crop(const std::string& shared_dir, int size = 128);
// A second face for checks that should not hinge on one photo: astronaut.png (Eileen Collins, NASA,
// public domain), grey, box (148, 40, 156 x 156): its Haar box (177, 66, 95 x 95) enlarged to take in hair
// and chin; same `size` rule.
img::Image astronaut_face_crop(const std::string& shared_dir, int size = 128);

// Like make_pair, but rendered the way a camera sees a small motion: the motion (given at size x size)
// is applied to the high-resolution frame `hr` and both frames are then area-resized to size x size,
// so that I0 and I1 get the same anti-aliasing (a bicubic warp at the final size would blur I0 only).
Pair make_pair_hr(const img::Image& hr, const FlowField& motion, int size, float noise_sigma, uint64_t seed);

// A named test case on a face crop: motion and noise as used by the tests, bench and docs.
struct Case {
  std::string name;
  bool subpixel = false;  // a local micro-motion of at most 2 px (the <= 0.05 px AEE target applies)
  Pair pair;
};
// The standard cases (documented in docs/FLOW.md), rendered from the high-resolution face `hr`
// (face_crop(dir, 0)) at size x size with noise of std noise_sigma grey levels.
std::vector<Case> face_cases(const img::Image& hr, int size = 128, float noise_sigma = 1.0f);

}  // namespace ahmsa::flow::synth
