// The synthetic corpus: determinism for a seed, the CASME II layout read back by the CASME II reader,
// and that the expression motion is where the landmarks say.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "flow/flow.h"
#include "tests/test_data_helpers.h"
#include "train/data/datasets.h"
#include "train/data/synth.h"

using namespace ahmsa;
using namespace ahmsa::data;
namespace fs = std::filesystem;

static SynthOptions tiny(const fs::path& out, uint64_t seed) {
  SynthOptions o;
  o.out_dir = out.string();
  o.faces_dir = std::string(AHMSA_SHARED_DIR) + "/data/faces";
  o.subjects = 3, o.clips_per_class = 1, o.seed = seed, o.size = 96, o.min_frames = 10, o.max_frames = 12;
  o.threads = 2;
  return o;
}

static std::string bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST_CASE("synth: the same seed gives identical bytes, another seed does not") {
  auto root = testdata::temp_dir("synth_det");
  auto a = synthesize_corpus(tiny(root / "a", 7));
  auto b = synthesize_corpus(tiny(root / "b", 7));
  auto c = synthesize_corpus(tiny(root / "c", 8));
  REQUIRE(a.clips.size() == 9);
  CHECK(bytes(a.coding_csv) == bytes(b.coding_csv));
  CHECK(bytes(a.landmarks_csv) == bytes(b.landmarks_csv));
  int files = 0, same_as_c = 0;
  for (auto it = fs::recursive_directory_iterator(root / "a"); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file() || it->path().extension() != ".jpg") continue;
    auto rel = fs::relative(it->path(), root / "a");
    REQUIRE(fs::exists(root / "b" / rel));
    CHECK(bytes(it->path()) == bytes(root / "b" / rel));
    ++files;
    if (fs::exists(root / "c" / rel) && bytes(it->path()) == bytes(root / "c" / rel)) ++same_as_c;
  }
  CHECK(files >= 9 * 10);
  CHECK(same_as_c == 0);
  CHECK(bytes(a.coding_csv) != bytes(c.coding_csv));
}

TEST_CASE("synth: the corpus reads back through the CASME II reader with the composite classes") {
  auto root = testdata::temp_dir("synth_read");
  auto o = tiny(root, 3);
  o.balance = {2, 1, 1};
  o.clips_per_class = 2;
  auto rep = synthesize_corpus(o);
  // balance 2:1:1 with 2 clips for the largest class -> 2, 1, 1 per subject
  REQUIRE(rep.clips.size() == 3 * 4);
  SampleList l = read_casme2(root.string(), rep.coding_csv, Protocol::Composite3);
  REQUIRE(l.samples.size() == rep.clips.size());
  CHECK(l.report.skipped.empty());
  int per_class[3] = {0, 0, 0};
  for (size_t i = 0; i < l.samples.size(); ++i) {
    const Sample& s = l.samples[i];
    const SynthClip& c = rep.clips[i];
    CHECK(s.clip == c.filename);
    CHECK(s.label == c.cls);
    CHECK(s.onset == c.onset);
    CHECK(s.apex == c.apex);
    CHECK(s.offset == c.offset);
    CHECK(c.offset - c.onset + 1 >= 10);
    CHECK(c.offset - c.onset + 1 <= 12);
    CHECK(c.onset < c.apex);
    CHECK(c.apex < c.offset);
    CHECK(c.amplitude_px >= 0.2f);
    CHECK(c.amplitude_px <= 2.0f);
    per_class[s.label]++;
  }
  CHECK(per_class[0] == 6);
  CHECK(per_class[1] == 3);
  CHECK(per_class[2] == 3);
  img::Image f = img::load(l.samples[0].onset_path);
  CHECK(f.width == 96);
  CHECK(f.channels == 3);
}

// Fraction of |d|^2 within `radius` of the class's moved landmarks.
static double energy_near(const std::vector<float>& dx, const std::vector<float>& dy, int size, const Landmarks& lm,
                          const std::vector<int>& moved, float radius, int border) {
  double near = 0, all = 0;
  for (int y = border; y < size - border; ++y)
    for (int x = border; x < size - border; ++x) {
      double e = double(dx[y * size + x]) * dx[y * size + x] + double(dy[y * size + x]) * dy[y * size + x];
      all += e;
      for (int i : moved)
        if (std::hypot(x + 0.5f - lm[i][0], y + 0.5f - lm[i][1]) < radius) {
          near += e;
          break;
        }
    }
  return all > 0 ? near / all : 0;
}

TEST_CASE("synth: the expression field is concentrated at the class's landmark groups") {
  auto faces = load_face_sources(std::string(AHMSA_SHARED_DIR) + "/data/faces", 128);
  REQUIRE(faces.size() >= 20);
  CHECK_FALSE(faces[1].mean_layout);  // dlib_voc faces carry their own landmarks
  const Landmarks& lm = faces[1].landmarks;
  float fw = std::hypot(lm[16][0] - lm[0][0], lm[16][1] - lm[0][1]);
  for (int cls = 0; cls < 3; ++cls) {
    std::vector<float> dx, dy;
    expression_field(cls, lm, 1.0f, 128, dx, dy);
    float peak = 0;
    for (size_t i = 0; i < dx.size(); ++i) peak = std::max(peak, std::hypot(dx[i], dy[i]));
    CHECK(peak > 0.6f);
    CHECK(peak <= 1.01f);  // the normalised sum keeps the peak at the amplitude
    CAPTURE(cls);
    CHECK(energy_near(dx, dy, 128, lm, moved_landmarks(cls), 0.25f * fw, 0) > 0.9);
  }
  // Directions: positive lifts the lip corners, negative lowers the inner brows, surprise raises brows.
  std::vector<float> dx, dy;
  auto at = [&](int i) { return size_t(int(lm[i][1])) * 128 + int(lm[i][0]); };
  expression_field(1, lm, 1.0f, 128, dx, dy);
  CHECK(dy[at(48)] < -0.4f);
  CHECK(dx[at(48)] < -0.2f);
  CHECK(dx[at(54)] > 0.2f);
  expression_field(0, lm, 1.0f, 128, dx, dy);
  CHECK(dy[at(21)] > 0.3f);
  CHECK(dx[at(21)] > 0.1f);  // drawn together (the two inner brows partly cancel: 0.1, not 0.55)
  CHECK(dx[at(22)] < -0.1f);
  expression_field(2, lm, 1.0f, 128, dx, dy);
  CHECK(dy[at(19)] < -0.6f);
  CHECK(dy[at(8)] > 0.6f);
}

TEST_CASE("synth: onset->apex flow of rendered clips lies at the moved landmarks") {
  auto root = testdata::temp_dir("synth_flow");
  auto o = tiny(root, 11);
  o.distractors = 0.f;  // no head motion, blinks, lighting or noise: only the expression moves
  o.format = "png";
  o.amplitude = 1.5f;
  auto rep = synthesize_corpus(o);
  SampleList l = read_casme2(root.string(), rep.coding_csv);
  REQUIRE(l.samples.size() == rep.clips.size());
  flow::FlowOptions fo;
  fo.method = flow::Method::Farneback;  // fast enough for a test; TV-L1 is exercised by test_data_cache
  for (size_t i = 0; i < l.samples.size(); ++i) {
    const SynthClip& c = rep.clips[i];
    img::Image a = img::to_grey(img::load(l.samples[i].onset_path)), b = img::to_grey(img::load(l.samples[i].apex_path));
    flow::FlowField f = flow::compute_flow(a, b, fo);
    float fw = std::hypot(c.landmarks[16][0] - c.landmarks[0][0], c.landmarks[16][1] - c.landmarks[0][1]);
    double frac = energy_near(f.u, f.v, 96, c.landmarks, moved_landmarks(c.cls), 0.3f * fw, 4);
    CAPTURE(c.filename);
    CAPTURE(c.cls);
    CHECK(frac > 0.6);
  }
}

TEST_CASE("synth: a landmark file with a bad number names the file and the byte") {
  auto dir = testdata::temp_dir("synth_badxml");
  // once a bare std::invalid_argument("stof") with no file named
  testdata::write_text(dir / "dlib_voc" / "training_with_face_landmarks.xml",
                       "<dataset><images><image file='a.jpg'>\n<box top='1' left='2' width='wide' height='3'>"
                       "</box></image></images></dataset>");
  try {
    load_face_sources(dir.string(), 64);
    FAIL("accepted the file");
  } catch (const DataError& e) {
    std::string m = e.what();
    CHECK(m.find("training_with_face_landmarks.xml': bad width=\"wide\" at byte 38") != std::string::npos);
  }
}
