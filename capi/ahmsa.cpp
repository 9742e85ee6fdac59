// The C API (capi/ahmsa.h) over infer::Classifier. Each entry point runs its body through guarded():
// every C++ exception becomes a status and a message, recorded for the thread and, when there is one,
// for the model; nothing is thrown across the boundary.
#include "capi/ahmsa.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>

#include "ahmsa_version.h"
#include "autograd/ops.h"
#include "infer/classifier.h"
#include "tensor/parallel.h"

struct ahmsa_model {
  explicit ahmsa_model(const std::string& path) : classifier(path) {}
  ahmsa::infer::Classifier classifier;
  std::string error;
};

namespace {

thread_local std::string t_last_error;

// A failure whose status is known where it is detected.
struct ApiError : std::runtime_error {
  ApiError(ahmsa_status s, const std::string& m) : std::runtime_error(m), status(s) {}
  ahmsa_status status;
};

ahmsa_status fail(ahmsa_model* m, ahmsa_status s, const std::string& msg) {
  t_last_error = msg;
  if (m) m->error = msg;
  return s;
}

// Runs body() and turns what it throws into a status; `model` (may be null) gets the message too.
template <class F>
ahmsa_status guarded(ahmsa_model* model, const char* fn, F&& body) {
  try {
    body();
    if (model) model->error.clear();
    return AHMSA_OK;
  } catch (const ApiError& e) {
    return fail(model, e.status, std::string(fn) + ": " + e.what());
  } catch (const ahmsa::SafetensorsError& e) {
    return fail(model, AHMSA_ERR_CHECKPOINT, std::string(fn) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return fail(model, AHMSA_ERR_OUT_OF_MEMORY, std::string(fn) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(model, AHMSA_ERR_INTERNAL, std::string(fn) + ": " + e.what());
  } catch (...) {
    return fail(model, AHMSA_ERR_INTERNAL, std::string(fn) + ": unknown error");
  }
}

void need(const void* p, const char* name) {
  if (!p) throw ApiError(AHMSA_ERR_NULL_ARGUMENT, std::string("argument '") + name + "' is NULL");
}

std::string size_str(int w, int h) { return std::to_string(w) + "x" + std::to_string(h); }

// Logits and probabilities of x ([1, 3, S, S]) into the caller's arrays.
void classify(ahmsa_model* m, const ahmsa::Tensor& x, float* logits, float* probabilities, int capacity) {
  const int K = m->classifier.num_classes();
  if (capacity < K)
    throw ApiError(AHMSA_ERR_OUTPUT_SIZE, "capacity " + std::to_string(capacity) + " is below the model's " +
                                              std::to_string(K) + " classes");
  ahmsa::Tensor z = m->classifier.logits(x);
  if (logits) std::memcpy(logits, z.data(), sizeof(float) * size_t(K));
  if (probabilities) {
    ahmsa::NoGradGuard ng;
    std::memcpy(probabilities, ahmsa::softmax(z, 1).data(), sizeof(float) * size_t(K));
  }
}

void check_outputs(const float* logits, const float* probabilities) {
  if (!logits && !probabilities) throw ApiError(AHMSA_ERR_NULL_ARGUMENT, "arguments 'logits' and 'probabilities' are both NULL");
}

// A width x height grey frame with rows `stride` bytes apart, as an image of floats 0..255.
ahmsa::img::Image grey_frame(const unsigned char* p, int width, int height, int stride) {
  ahmsa::img::Image im(width, height, 1);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) im.at(x, y) = float(p[size_t(y) * size_t(stride) + size_t(x)]);
  return im;
}

}  // namespace

extern "C" {

const char* ahmsa_version(void) { return AHMSA_VERSION; }

const char* ahmsa_status_name(ahmsa_status s) {
  switch (s) {
    case AHMSA_OK: return "AHMSA_OK";
    case AHMSA_ERR_NULL_ARGUMENT: return "AHMSA_ERR_NULL_ARGUMENT";
    case AHMSA_ERR_FILE: return "AHMSA_ERR_FILE";
    case AHMSA_ERR_CHECKPOINT: return "AHMSA_ERR_CHECKPOINT";
    case AHMSA_ERR_INPUT_SIZE: return "AHMSA_ERR_INPUT_SIZE";
    case AHMSA_ERR_OUTPUT_SIZE: return "AHMSA_ERR_OUTPUT_SIZE";
    case AHMSA_ERR_INVALID_ARGUMENT: return "AHMSA_ERR_INVALID_ARGUMENT";
    case AHMSA_ERR_OUT_OF_MEMORY: return "AHMSA_ERR_OUT_OF_MEMORY";
    case AHMSA_ERR_INTERNAL: return "AHMSA_ERR_INTERNAL";
  }
  return "unknown status";
}

const char* ahmsa_last_error(void) { return t_last_error.c_str(); }

ahmsa_status ahmsa_set_threads(int threads) {
  return guarded(nullptr, "ahmsa_set_threads", [&] {
#ifdef AHMSA_SINGLE_THREAD
    if (threads != 0 && threads != 1)
      throw ApiError(AHMSA_ERR_INVALID_ARGUMENT, "threads " + std::to_string(threads) + ": this build has one thread (AHMSA_THREADS=OFF)");
#else
    if (threads < 0 || threads > 1024)
      throw ApiError(AHMSA_ERR_INVALID_ARGUMENT, "threads " + std::to_string(threads) + " is outside 0..1024");
#endif
    ahmsa::set_num_threads(threads == 0 ? ahmsa::default_num_threads() : threads);
  });
}

ahmsa_status ahmsa_model_open(const char* path, ahmsa_model** out) {
  if (out) *out = nullptr;
  return guarded(nullptr, "ahmsa_model_open", [&] {
    need(out, "out");
    need(path, "path");
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      throw ApiError(AHMSA_ERR_FILE, std::string("'") + path + "' is a directory, not a checkpoint");
    if (std::FILE* f = std::fopen(path, "rb")) {
      std::fclose(f);
    } else {
      throw ApiError(AHMSA_ERR_FILE, std::string("cannot open '") + path + "': " + std::strerror(errno));
    }
    try {
      *out = new ahmsa_model(path);
    } catch (const std::invalid_argument& e) {  // the stored config does not describe a valid model
      throw ApiError(AHMSA_ERR_CHECKPOINT, std::string("'") + path + "': " + e.what());
    }
  });
}

void ahmsa_model_close(ahmsa_model* model) { delete model; }

const char* ahmsa_model_error(const ahmsa_model* model) { return model ? model->error.c_str() : ""; }

int ahmsa_model_input_size(const ahmsa_model* model) { return model ? model->classifier.input_size() : 0; }

int ahmsa_model_num_classes(const ahmsa_model* model) { return model ? model->classifier.num_classes() : 0; }

const char* ahmsa_model_class_name(const ahmsa_model* model, int k) {
  if (!model || k < 0 || k >= model->classifier.num_classes()) return nullptr;
  return model->classifier.class_names()[size_t(k)].c_str();
}

ahmsa_status ahmsa_classify_image(ahmsa_model* model, const float* image, int width, int height, float* logits,
                                  float* probabilities, int capacity) {
  return guarded(model, "ahmsa_classify_image", [&] {
    need(model, "model");
    need(image, "image");
    check_outputs(logits, probabilities);
    const int S = model->classifier.input_size();
    if (width != S || height != S)
      throw ApiError(AHMSA_ERR_INPUT_SIZE, "image is 3x" + size_str(width, height) + " but the model takes 3x" + size_str(S, S));
    ahmsa::Tensor x = ahmsa::Tensor::empty({1, 3, S, S});
    std::memcpy(x.data(), image, sizeof(float) * size_t(3) * size_t(S) * size_t(S));
    classify(model, x, logits, probabilities, capacity);
  });
}

ahmsa_pair_options ahmsa_pair_options_default(void) {
  ahmsa_pair_options o;
  o.crop_size = 128;
  o.method = AHMSA_FLOW_TVL1;
  return o;
}

ahmsa_status ahmsa_classify_pair(ahmsa_model* model, const unsigned char* onset, const unsigned char* apex, int width,
                                 int height, int stride, const ahmsa_pair_options* options, float* logits,
                                 float* probabilities, int capacity) {
  return guarded(model, "ahmsa_classify_pair", [&] {
    need(model, "model");
    need(onset, "onset");
    need(apex, "apex");
    check_outputs(logits, probabilities);
    const ahmsa_pair_options o = options ? *options : ahmsa_pair_options_default();
    if (width < 1 || height < 1 || int64_t(width) * height > ahmsa::img::kMaxPixels)
      throw ApiError(AHMSA_ERR_INPUT_SIZE, "frames of " + size_str(width, height) + ": each side must be at least 1 and the area at most " +
                                               std::to_string(ahmsa::img::kMaxPixels) + " pixels");
    if (stride == 0) stride = width;
    if (stride < width)
      throw ApiError(AHMSA_ERR_INPUT_SIZE, "stride " + std::to_string(stride) + " is below the width " + std::to_string(width));
    if (o.crop_size < 16 || o.crop_size > 8192)
      throw ApiError(AHMSA_ERR_INVALID_ARGUMENT, "crop_size " + std::to_string(o.crop_size) + " is outside 16..8192");
    if (o.method != AHMSA_FLOW_TVL1 && o.method != AHMSA_FLOW_FARNEBACK)
      throw ApiError(AHMSA_ERR_INVALID_ARGUMENT, "method " + std::to_string(o.method) + " is neither AHMSA_FLOW_TVL1 (0) nor AHMSA_FLOW_FARNEBACK (1)");
    const int K = model->classifier.num_classes();
    if (capacity < K)  // before the flow is computed
      throw ApiError(AHMSA_ERR_OUTPUT_SIZE, "capacity " + std::to_string(capacity) + " is below the model's " +
                                                std::to_string(K) + " classes");
    ahmsa::flow::FlowOptions fo;
    if (o.method == AHMSA_FLOW_FARNEBACK) fo.method = ahmsa::flow::Method::Farneback;
    ahmsa::img::Image a0 = ahmsa::infer::fit_crop(grey_frame(onset, width, height, stride), o.crop_size);
    ahmsa::img::Image a1 = ahmsa::infer::fit_crop(grey_frame(apex, width, height, stride), o.crop_size);
    ahmsa::infer::FlowInput in = ahmsa::infer::flow_input(a0, a1, model->classifier.input_size(), fo);
    classify(model, in.x, logits, probabilities, capacity);
  });
}

}  // extern "C"
