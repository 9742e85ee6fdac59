#include "infer/classifier.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "autograd/ops.h"

namespace ahmsa::infer {

std::vector<std::string> class_names_of(const SafetensorsFile& f, int64_t classes) {
  std::vector<std::string> names;
  if (auto it = f.metadata.find("class_names"); it != f.metadata.end()) {
    std::stringstream ss(it->second);
    for (std::string w; std::getline(ss, w, ',');) names.push_back(w);
  }
  if (int64_t(names.size()) == classes) return names;
  names.clear();
  for (int64_t k = 0; k < classes; ++k)
    names.push_back(classes == 3 ? std::vector<std::string>{"negative", "positive", "surprise"}[size_t(k)]
                                 : "class" + std::to_string(k));
  return names;
}

Classifier::Classifier(const std::string& checkpoint, Device device) : device_(device) {
  SafetensorsFile st = read_safetensors(checkpoint);
  AhmsaConfig cfg = AhmsaNet::config_of(st);
  Generator init(0);  // every value is then replaced by the checkpoint's
  net_ = std::make_unique<AhmsaNet>(cfg, init);
  net_->load(st, device);
  net_->eval();
  names_ = class_names_of(st, cfg.classes);
}

Classifier::~Classifier() = default;

const AhmsaConfig& Classifier::config() const { return net_->config(); }

Tensor Classifier::logits(const Tensor& x) {
  NoGradGuard ng;
  return net_->forward(x.to(device_)).to(Device::CPU);
}

Tensor Classifier::probabilities(const Tensor& x) {
  NoGradGuard ng;
  return softmax(net_->forward(x.to(device_)), 1).to(Device::CPU);
}

FlowInput flow_input(const img::Image& onset, const img::Image& apex, int size, const flow::FlowOptions& options) {
  FlowInput in;
  in.flow = flow::compute_flow(onset, apex, options);
  std::vector<float> os = flow::optical_strain(in.flow, flow::StrainScheme::Central);
  in.uvos = flow::uvos_image(in.flow, os, size);
  // The cache stores the image as an 8-bit PNG: round the same way, then x = value / 255.
  in.x = Tensor::empty({1, 3, size, size});
  float* x = in.x.data();
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < size * size; ++i)
      x[size_t(c) * size * size + i] = std::clamp(std::round(in.uvos.data[size_t(i) * 3 + c]), 0.f, 255.f) / 255.f;
  return in;
}

img::Image fit_crop(const img::Image& im, int crop_size) {
  if (im.width == crop_size && im.height == crop_size) return im;
  return im.width > crop_size ? img::resize_area(im, crop_size, crop_size) : img::resize_bilinear(im, crop_size, crop_size);
}

}  // namespace ahmsa::infer
