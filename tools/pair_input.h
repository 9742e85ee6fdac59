// One onset/apex pair (two images, or two frames of a video) through the preprocessing of `ahmsa
// prepare`: face crop, flow, optical strain, the (u, v, os) image at the model's input size rounded
// to 8 bits as the cache stores it. Shared by `ahmsa predict` and `ahmsa explain`, with its options.
#pragma once
#include <string>
#include <vector>

#include "flow/flow.h"
#include "flow/image.h"
#include "tools/command.h"

namespace ahmsa::cli {

struct PairOptions {
  std::vector<std::string> frames;  // ONSET APEX images
  std::string video;                // or a video with frame indices
  int onset_index = -1, apex_index = -1;
  enum class Crop { Auto, Detect, None } crop = Crop::Auto;
  std::string cascade;
  float margin = 0.1f;
  int crop_size = 128;
  std::string method = "tvl1";
  bool given() const { return !frames.empty() || !video.empty(); }
};

// Declares ONSET APEX, --video/--onset/--apex, --crop, --cascade, --margin, --crop-size, --method.
void add_pair_options(CLI::App& app, PairOptions& o);
// After parsing: the frames xor the video, with its indices; UsageError otherwise.
void check_pair_options(const PairOptions& o);

struct PairInput {
  std::string what;            // "a.png -> b.png" or "v.avi frames 3 -> 9"
  img::Image onset, apex;      // grey face crops, crop_size x crop_size
  flow::FlowField flow;        // onset -> apex, in px of the crop
  img::Image uvos;             // S x S x 3, 0..255, not rounded
  std::vector<float> x;        // 3 x S x S CHW in [0, 1]: round(uvos) / 255, as the cache gives it
};
// Throws naming the files when a frame cannot be read, the sizes differ or no face is found.
PairInput load_pair(const PairOptions& o, int input_size);

}  // namespace ahmsa::cli
