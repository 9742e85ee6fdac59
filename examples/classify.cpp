// The C++ side of ahmsa::infer: a checkpoint and an onset/apex pair of face crops (any size) to class
// probabilities, as `ahmsa predict --crop none` and the C example's pair mode compute them.
//   classify_cpp MODEL.safetensors ONSET.png APEX.png [CROP_SIZE]
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "flow/image.h"
#include "infer/classifier.h"

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors ONSET.png APEX.png [CROP_SIZE]\n", argv[0]);
    return 2;
  }
  try {
    using namespace ahmsa;
    const int crop = argc == 5 ? std::atoi(argv[4]) : 128;
    infer::Classifier model(argv[1]);
    img::Image onset = infer::fit_crop(img::to_grey(img::load(argv[2])), crop);
    img::Image apex = infer::fit_crop(img::to_grey(img::load(argv[3])), crop);
    infer::FlowInput in = infer::flow_input(onset, apex, model.input_size(), flow::FlowOptions{});
    std::vector<float> p = model.probabilities(in.x).to_vector();
    for (size_t k = 0; k < p.size(); ++k) std::printf("  %-12s %.4f\n", model.class_names()[k].c_str(), p[k]);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify_cpp: %s\n", e.what());
    return 1;
  }
}
