// Classifying with a trained checkpoint: what `ahmsa predict` and the C API (capi/ahmsa.h) share.
// A Classifier holds one AHMSA-Net in eval mode; flow_input() turns an onset/apex pair of face crops
// into the network's input exactly as `ahmsa prepare` stores it in the training cache (TV-L1 or
// Farnebäck flow, optical strain, min-max (u, v, os) image at the model's input size, rounded to 8 bits,
// divided by 255).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "flow/flow.h"
#include "model/ahmsa_net.h"

namespace ahmsa::infer {

// The class names stored in a checkpoint's metadata ("class_names": "a,b,c", written by `ahmsa train`),
// or, when absent or of the wrong length, negative/positive/surprise for 3 classes and class0.. otherwise.
std::vector<std::string> class_names_of(const SafetensorsFile& f, int64_t classes);

class Classifier {
 public:
  // Reads and checks the checkpoint (SafetensorsError naming the file and every bad key otherwise).
  explicit Classifier(const std::string& checkpoint, Device device = Device::CPU);
  ~Classifier();
  const AhmsaConfig& config() const;
  int input_size() const { return int(config().input_size); }
  int num_classes() const { return int(config().classes); }
  const std::vector<std::string>& class_names() const { return names_; }
  // x: [N, 3, S, S] on any device. Logits [N, K] on the CPU; probabilities = softmax over the classes.
  Tensor logits(const Tensor& x);
  Tensor probabilities(const Tensor& x);

 private:
  std::unique_ptr<AhmsaNet> net_;
  std::vector<std::string> names_;
  Device device_;
};

// What the network sees for one pair, and the intermediate results `ahmsa predict --viz` draws.
struct FlowInput {
  flow::FlowField flow;  // onset -> apex, at the crops' size
  img::Image uvos;       // size x size x 3, values in 0..255 (not rounded)
  Tensor x;              // [1, 3, size, size]: round(uvos) / 255, as the cache's 8-bit PNG gives it
};
// onset, apex: grey face crops of one size (the size the cache was prepared at, --crop-size).
FlowInput flow_input(const img::Image& onset, const img::Image& apex, int size, const flow::FlowOptions& options);

// A frame that is already a face crop brought to crop_size x crop_size (area resize when shrinking,
// bilinear when growing), as `ahmsa predict --crop none` does.
img::Image fit_crop(const img::Image& im, int crop_size);

}  // namespace ahmsa::infer
