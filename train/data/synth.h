// A synthetic micro-expression corpus in the CASME II on-disk layout (sub01/EP01_01/img{N}.jpg plus a
// coding sheet in CSV), so that it goes through the same reader and preprocessing as real data.
// Faces are real photos (shared/data/faces); motion is a smooth, action-unit-like displacement field
// around landmark groups, rising from onset to apex and falling to offset; distractors are independent
// of the class. docs/DATA.md lists the knobs and the default difficulty.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "flow/image.h"

namespace ahmsa::data {

// Small deterministic RNG (splitmix64 seeding xoshiro256**); no std:: distributions, so the same seed
// gives the same corpus with any standard library.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed);
  uint64_t next();
  float uniform();                       // [0, 1)
  float uniform(float a, float b) { return a + (b - a) * uniform(); }
  int integer(int lo, int hi);           // [lo, hi] inclusive
  float normal();                        // standard normal (Box-Muller)
};

using Landmarks = std::array<std::array<float, 2>, 68>;  // iBUG 68-point scheme, (x, y) in pixels

// A face identity: a square face crop and its 68 landmarks in the crop's pixel frame.
struct FaceSource {
  std::string name;          // "dlib_voc/2008_001322.jpg#2", "dlib_johns/John_Simm", ...
  img::Image face;           // 3 channels, side x side
  Landmarks landmarks;
  bool mean_layout = false;  // landmarks from the mean layout, not annotated
};
// Faces from shared/data/faces (dlib_voc with their landmarks first, largest first; then the aligned
// dlib_johns chips and the other photos with the mean layout). Throws DataError when none is found.
std::vector<FaceSource> load_face_sources(const std::string& faces_dir, int size);

struct SynthOptions {
  std::string out_dir;
  std::string faces_dir;            // default: <repo>/../shared/data/faces (found from the executable or cwd)
  int subjects = 20;
  int clips_per_class = 3;          // clips per subject of the most frequent class
  std::vector<float> balance = {1, 1, 1};  // relative clip counts of negative, positive, surprise
  uint64_t seed = 1;
  float amplitude = 1.0f;           // scales the expression motion (default peak 0.7-1.7 px at 128 px)
  float distractors = 1.0f;         // scales head motion, blinks, lighting change and noise (0 = none)
  int size = 128;                   // frame side in pixels (>= 64)
  int min_frames = 10, max_frames = 30;  // onset..offset length in frames
  std::string format = "jpg";       // "jpg" (quality 95, as CASME II ships) or "png"
  int threads = 0;                  // 0 = hardware concurrency
  bool quiet = false;
};

struct SynthClip {
  std::string subject, filename;    // "01", "EP03_01"
  int cls = 0;                      // 0 negative, 1 positive, 2 surprise
  std::string emotion, action_units;
  int onset = 0, apex = 0, offset = 0;
  float amplitude_px = 0;           // peak displacement of the expression at the apex
  bool blink_at_apex = false;
  Landmarks landmarks;              // in the onset frame
};

struct SynthReport {
  std::vector<SynthClip> clips;
  std::string coding_csv;           // DIR/CASME2-coding-synthetic.csv
  std::string landmarks_csv;        // DIR/synth_landmarks.csv (subject, clip, class, 68 x, 68 y)
  double seconds = 0;
};

SynthReport synthesize_corpus(const SynthOptions& o);

// The expression displacement at the apex of class `cls` (0 negative, 1 positive, 2 surprise) for a
// face with landmarks `lm`, amplitude `amp` px: (dx, dy) per pixel, size x size each. Used by the
// renderer and by the tests that check that motion is where the landmarks say.
void expression_field(int cls, const Landmarks& lm, float amp, int size, std::vector<float>& dx, std::vector<float>& dy);
// Landmark indices each class moves (for tests and docs).
std::vector<int> moved_landmarks(int cls);

}  // namespace ahmsa::data
