// The C API (capi/ahmsa.h): PyTorch's logits through ahmsa_classify_image, the pair path equal to the
// C++ one (infer::flow_input + Classifier), class names, every documented error (missing file, a
// directory, truncated and foreign checkpoints, wrong input and output sizes, NULL arguments, values
// out of range) with its status and message, and separate models used from two threads at once.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "capi/ahmsa.h"
#include "infer/classifier.h"
#include "model_fixture.h"

namespace fs = std::filesystem;
using namespace ahmsa;

namespace {

const std::string kTiny = AHMSA_SOURCE_DIR "/tests/fixtures/tiny_model.safetensors";
const std::string kFlowData = AHMSA_SHARED_DIR "/data/flow";

// The model_parity fixture's weights (w/...) as a checkpoint file of their own: a PyTorch export, no
// metadata, so the config comes from the shapes and the class names are the defaults.
std::string parity_checkpoint() {
  const std::string path = "capi_parity.safetensors";
  auto f = read_safetensors(testing::kModelFixture);
  std::vector<std::pair<std::string, Tensor>> w;
  for (auto& [name, e] : f.entries)
    if (name.rfind("w/", 0) == 0) w.emplace_back(name.substr(2), f.tensor(name));
  write_safetensors(path, w);
  return path;
}

ahmsa_model* open_ok(const std::string& path) {
  ahmsa_model* m = nullptr;
  REQUIRE(ahmsa_model_open(path.c_str(), &m) == AHMSA_OK);
  REQUIRE(m != nullptr);
  return m;
}

// The basketball pair as 8-bit grey frames.
struct Pair {
  int w = 0, h = 0;
  std::vector<unsigned char> onset, apex;
};
Pair basketball() {
  Pair p;
  img::Image a = img::load(kFlowData + "/basketball1.png", 1), b = img::load(kFlowData + "/basketball2.png", 1);
  p.w = a.width, p.h = a.height;
  for (float v : a.data) p.onset.push_back((unsigned char)v);
  for (float v : b.data) p.apex.push_back((unsigned char)v);
  return p;
}

// The status and that its message (thread and, when given, model) is exactly `msg`.
void check_error(ahmsa_status got, ahmsa_status want, const std::string& msg, const ahmsa_model* m = nullptr) {
  CHECK(std::string(ahmsa_status_name(got)) == ahmsa_status_name(want));
  CHECK(std::string(ahmsa_last_error()) == msg);
  if (m) CHECK(std::string(ahmsa_model_error(m)) == msg);
}

}  // namespace

TEST_CASE("ahmsa_classify_image gives PyTorch's eval-mode logits and the softmax") {
  auto f = read_safetensors(testing::kModelFixture);
  const std::vector<float> input = f.tensor("input").to_vector(), want = f.tensor("eval/logits").to_vector();
  ahmsa_model* m = open_ok(parity_checkpoint());
  REQUIRE(ahmsa_model_input_size(m) == 28);
  REQUIRE(ahmsa_model_num_classes(m) == 3);
  CHECK(std::string(ahmsa_model_class_name(m, 0)) == "negative");
  CHECK(std::string(ahmsa_model_class_name(m, 2)) == "surprise");
  CHECK(ahmsa_model_class_name(m, 3) == nullptr);
  CHECK(ahmsa_model_class_name(m, -1) == nullptr);
  std::vector<float> got;
  for (int n = 0; n < 4; ++n) {
    float logits[3], prob[3];
    REQUIRE(ahmsa_classify_image(m, input.data() + size_t(n) * 3 * 28 * 28, 28, 28, logits, prob, 3) == AHMSA_OK);
    got.insert(got.end(), logits, logits + 3);
    double z = 0;
    for (float l : logits) z += std::exp(double(l));
    for (int k = 0; k < 3; ++k) CHECK(prob[k] == doctest::Approx(std::exp(double(logits[k])) / z).epsilon(1e-6));
  }
  CHECK(testing::rel_error(got, want) <= 1e-4);
  CHECK(std::string(ahmsa_model_error(m)).empty());
  ahmsa_model_close(m);
}

TEST_CASE("ahmsa_classify_pair equals the C++ pipeline of ahmsa predict, and reads the stored class names") {
  Pair p = basketball();
  ahmsa_model* m = open_ok(kTiny);
  CHECK(std::string(ahmsa_model_class_name(m, 1)) == "positive");
  ahmsa_pair_options o = ahmsa_pair_options_default();
  CHECK(o.crop_size == 128);
  CHECK(o.method == AHMSA_FLOW_TVL1);
  o.crop_size = 64;
  float logits[3], prob[3];
  REQUIRE(ahmsa_classify_pair(m, p.onset.data(), p.apex.data(), p.w, p.h, 0, &o, logits, prob, 3) == AHMSA_OK);

  infer::Classifier c(kTiny);
  img::Image a = infer::fit_crop(img::load(kFlowData + "/basketball1.png", 1), 64);
  img::Image b = infer::fit_crop(img::load(kFlowData + "/basketball2.png", 1), 64);
  std::vector<float> want = c.logits(infer::flow_input(a, b, 28, flow::FlowOptions{}).x).to_vector();
  for (int k = 0; k < 3; ++k) CHECK(logits[k] == want[size_t(k)]);

  // A stride wider than the row reads the same pixels; Farnebäck gives other logits.
  std::vector<unsigned char> o2(size_t(p.w + 3) * p.h), a2(o2.size());
  for (int y = 0; y < p.h; ++y) {
    std::memcpy(&o2[size_t(y) * (p.w + 3)], &p.onset[size_t(y) * p.w], size_t(p.w));
    std::memcpy(&a2[size_t(y) * (p.w + 3)], &p.apex[size_t(y) * p.w], size_t(p.w));
  }
  float strided[3];
  REQUIRE(ahmsa_classify_pair(m, o2.data(), a2.data(), p.w, p.h, p.w + 3, &o, strided, nullptr, 3) == AHMSA_OK);
  for (int k = 0; k < 3; ++k) CHECK(strided[k] == logits[k]);
  o.method = AHMSA_FLOW_FARNEBACK;
  float fb[3];
  REQUIRE(ahmsa_classify_pair(m, p.onset.data(), p.apex.data(), p.w, p.h, 0, &o, fb, nullptr, 3) == AHMSA_OK);
  CHECK((fb[0] != logits[0] || fb[1] != logits[1] || fb[2] != logits[2]));
  ahmsa_model_close(m);
}

TEST_CASE("opening: a missing file, a directory, truncated and foreign checkpoints, NULL arguments") {
  ahmsa_model* m = reinterpret_cast<ahmsa_model*>(&m);  // overwritten with NULL on failure
  check_error(ahmsa_model_open("no/such/model.safetensors", &m), AHMSA_ERR_FILE,
              "ahmsa_model_open: cannot open 'no/such/model.safetensors': No such file or directory");
  CHECK(m == nullptr);
  fs::create_directories("capi_dir.safetensors");
  check_error(ahmsa_model_open("capi_dir.safetensors", &m), AHMSA_ERR_FILE,
              "ahmsa_model_open: 'capi_dir.safetensors' is a directory, not a checkpoint");

  // The tiny checkpoint cut after its header: the first tensor's bytes are missing.
  std::ifstream in(kTiny, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  std::ofstream("capi_truncated.safetensors", std::ios::binary).write(bytes.data(), std::streamsize(8 + header + 100));
  CHECK(ahmsa_model_open("capi_truncated.safetensors", &m) == AHMSA_ERR_CHECKPOINT);
  CHECK(m == nullptr);
  const std::string trunc = ahmsa_last_error();
  CHECK(trunc.rfind("ahmsa_model_open: 'capi_truncated.safetensors' is truncated: tensor '", 0) == 0);
  std::ofstream("capi_short.safetensors", std::ios::binary).write(bytes.data(), 5);
  check_error(ahmsa_model_open("capi_short.safetensors", &m), AHMSA_ERR_CHECKPOINT,
              "ahmsa_model_open: 'capi_short.safetensors' is truncated: 5 bytes");

  // A valid safetensors file that is not a model.
  const std::string optim = AHMSA_SOURCE_DIR "/tests/fixtures/optim.safetensors";
  CHECK(ahmsa_model_open(optim.c_str(), &m) == AHMSA_ERR_CHECKPOINT);
  CHECK(std::string(ahmsa_last_error()).find("not an AHMSA-Net checkpoint") != std::string::npos);

  check_error(ahmsa_model_open(nullptr, &m), AHMSA_ERR_NULL_ARGUMENT, "ahmsa_model_open: argument 'path' is NULL");
  CHECK(m == nullptr);
  check_error(ahmsa_model_open(kTiny.c_str(), nullptr), AHMSA_ERR_NULL_ARGUMENT, "ahmsa_model_open: argument 'out' is NULL");
  ahmsa_model_close(nullptr);  // allowed
  CHECK(ahmsa_model_input_size(nullptr) == 0);
  CHECK(ahmsa_model_num_classes(nullptr) == 0);
  CHECK(ahmsa_model_class_name(nullptr, 0) == nullptr);
  CHECK(std::string(ahmsa_model_error(nullptr)).empty());
}

TEST_CASE("classifying: wrong sizes, NULL arguments and values out of range name the problem; the model still works") {
  ahmsa_model* m = open_ok(kTiny);
  std::vector<float> x(3 * 32 * 32, 0.5f);
  float logits[3], prob[3];
  check_error(ahmsa_classify_image(m, x.data(), 32, 32, logits, prob, 3), AHMSA_ERR_INPUT_SIZE,
              "ahmsa_classify_image: image is 3x32x32 but the model takes 3x28x28", m);
  check_error(ahmsa_classify_image(m, x.data(), 28, 28, logits, prob, 2), AHMSA_ERR_OUTPUT_SIZE,
              "ahmsa_classify_image: capacity 2 is below the model's 3 classes", m);
  check_error(ahmsa_classify_image(m, nullptr, 28, 28, logits, prob, 3), AHMSA_ERR_NULL_ARGUMENT,
              "ahmsa_classify_image: argument 'image' is NULL", m);
  check_error(ahmsa_classify_image(m, x.data(), 28, 28, nullptr, nullptr, 3), AHMSA_ERR_NULL_ARGUMENT,
              "ahmsa_classify_image: arguments 'logits' and 'probabilities' are both NULL", m);
  check_error(ahmsa_classify_image(nullptr, x.data(), 28, 28, logits, prob, 3), AHMSA_ERR_NULL_ARGUMENT,
              "ahmsa_classify_image: argument 'model' is NULL");

  std::vector<unsigned char> f0(64 * 48, 10), f1(64 * 48, 20);
  ahmsa_pair_options o = ahmsa_pair_options_default();
  check_error(ahmsa_classify_pair(m, nullptr, f1.data(), 64, 48, 0, &o, logits, prob, 3), AHMSA_ERR_NULL_ARGUMENT,
              "ahmsa_classify_pair: argument 'onset' is NULL", m);
  check_error(ahmsa_classify_pair(m, f0.data(), nullptr, 64, 48, 0, &o, logits, prob, 3), AHMSA_ERR_NULL_ARGUMENT,
              "ahmsa_classify_pair: argument 'apex' is NULL", m);
  check_error(ahmsa_classify_pair(m, f0.data(), f1.data(), 0, 48, 0, &o, logits, prob, 3), AHMSA_ERR_INPUT_SIZE,
              "ahmsa_classify_pair: frames of 0x48: each side must be at least 1 and the area at most 33554432 pixels", m);
  check_error(ahmsa_classify_pair(m, f0.data(), f1.data(), 64, 48, 32, &o, logits, prob, 3), AHMSA_ERR_INPUT_SIZE,
              "ahmsa_classify_pair: stride 32 is below the width 64", m);
  check_error(ahmsa_classify_pair(m, f0.data(), f1.data(), 64, 48, 0, &o, logits, prob, 1), AHMSA_ERR_OUTPUT_SIZE,
              "ahmsa_classify_pair: capacity 1 is below the model's 3 classes", m);
  o.crop_size = 8;
  check_error(ahmsa_classify_pair(m, f0.data(), f1.data(), 64, 48, 0, &o, logits, prob, 3), AHMSA_ERR_INVALID_ARGUMENT,
              "ahmsa_classify_pair: crop_size 8 is outside 16..8192", m);
  o = ahmsa_pair_options_default();
  o.method = 7;
  check_error(ahmsa_classify_pair(m, f0.data(), f1.data(), 64, 48, 0, &o, logits, prob, 3), AHMSA_ERR_INVALID_ARGUMENT,
              "ahmsa_classify_pair: method 7 is neither AHMSA_FLOW_TVL1 (0) nor AHMSA_FLOW_FARNEBACK (1)", m);
  check_error(ahmsa_set_threads(-1), AHMSA_ERR_INVALID_ARGUMENT, "ahmsa_set_threads: threads -1 is outside 0..1024");

  // After all that the model classifies, and a success clears its message (not the thread's).
  std::vector<float> ok(3 * 28 * 28, 0.25f);
  CHECK(ahmsa_classify_image(m, ok.data(), 28, 28, logits, nullptr, 3) == AHMSA_OK);
  CHECK(std::string(ahmsa_model_error(m)).empty());
  CHECK(std::string(ahmsa_last_error()) == "ahmsa_set_threads: threads -1 is outside 0..1024");
  CHECK(ahmsa_classify_pair(m, f0.data(), f1.data(), 64, 48, 0, nullptr, nullptr, prob, 3) == AHMSA_OK);
  CHECK(prob[0] + prob[1] + prob[2] == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(std::string(ahmsa_status_name(AHMSA_ERR_CHECKPOINT)) == "AHMSA_ERR_CHECKPOINT");
  CHECK(std::string(ahmsa_version()).size() > 0);
  ahmsa_model_close(m);
}

TEST_CASE("separate models in two threads at once give the results of one thread") {
  Pair p = basketball();
  ahmsa_pair_options o = ahmsa_pair_options_default();
  o.crop_size = 48;
  std::vector<float> image(3 * 28 * 28);
  for (size_t i = 0; i < image.size(); ++i) image[i] = float((i * 37) % 256) / 255.f;
  auto run = [&](ahmsa_model* m, float* out) {  // out[0..2] the pair's logits, out[3..5] the image's
    for (int rep = 0; rep < 3; ++rep) {
      if (ahmsa_classify_pair(m, p.onset.data(), p.apex.data(), p.w, p.h, 0, &o, out, nullptr, 3) != AHMSA_OK) out[0] = NAN;
      if (ahmsa_classify_image(m, image.data(), 28, 28, out + 3, nullptr, 3) != AHMSA_OK) out[3] = NAN;
    }
  };
  ahmsa_model* a = open_ok(kTiny);
  ahmsa_model* b = open_ok(kTiny);
  float alone[6], ra[6], rb[6];
  run(a, alone);
  std::thread ta(run, a, ra), tb(run, b, rb);
  ta.join();
  tb.join();
  for (int k = 0; k < 6; ++k) {
    CHECK(ra[k] == doctest::Approx(alone[k]).epsilon(1e-6));
    CHECK(rb[k] == doctest::Approx(alone[k]).epsilon(1e-6));
  }
  ahmsa_model_close(a);
  ahmsa_model_close(b);
}
