// `ahmsa predict`: one onset/apex pair (two images, or two frames of a video) through the same
// preprocessing as `ahmsa prepare` (face crop, TV-L1 flow, optical strain, min-max (u, v, os) image
// rounded to 8 bits as the cache stores it) and a trained checkpoint: class probabilities.
#include <algorithm>
#include <cstdio>

#include "flow/flow.h"
#include "flow/image.h"
#include "infer/classifier.h"
#include "tensor/parallel.h"
#include "tools/command.h"
#include "tools/pair_input.h"
#include "train/data/face.h"

namespace {

using namespace ahmsa;

// A 1-channel float image (any range) stretched to 0..255 grey RGB, scaled up to `tile` by nearest neighbour.
img::Image channel_tile(const img::Image& uvos, int c) {
  img::Image g(uvos.width, uvos.height, 3);
  for (int y = 0; y < uvos.height; ++y)
    for (int x = 0; x < uvos.width; ++x)
      for (int k = 0; k < 3; ++k) g.at(x, y, k) = uvos.at(x, y, c);
  return g;
}

int cmd_predict(const cli::Args& a) {
  CLI::App app{"Class probabilities of one onset/apex pair (two images, or two frames of a video) through the same\n"
               "preprocessing as `ahmsa prepare` (face crop, flow, optical strain, 8-bit (u, v, os) image) and a checkpoint.",
               "ahmsa predict"};
  std::string model_path, viz;
  cli::PairOptions pair;
  int threads = 0;
  cli::DeviceChoice device = cli::DeviceChoice::Auto;
  app.add_option("--model", model_path, "checkpoint written by `ahmsa train` (fold_NN/model.safetensors) or a PyTorch export")
      ->required()
      ->type_name("FILE");
  cli::add_pair_options(app, pair);
  app.add_option("--viz", viz, "write the onset and apex crops, the flow (colour wheel) and the u, v, os input channels")->type_name("FILE.png");
  cli::add_threads_option(app, threads);
  cli::add_device_option(app, device);
  cli::parse(app, a);
  cli::check_pair_options(pair);
  if (!pair.given()) throw cli::UsageError("give ONSET and APEX images (or --video V --onset I --apex J)");
  const Device dev = cli::resolve_device(device);
  cli::apply_threads(threads);

  infer::Classifier model(model_path, dev);
  const int S = model.input_size();
  const cli::PairInput in = cli::load_pair(pair, S);
  const std::string& what = in.what;
  const std::vector<float> p = model.probabilities(Tensor::from_vector({1, 3, S, S}, in.x)).to_vector();
  const std::vector<std::string>& names = model.class_names();
  const size_t best = size_t(std::max_element(p.begin(), p.end()) - p.begin());
  std::printf("%s\n", what.c_str());
  for (size_t k = 0; k < p.size(); ++k) std::printf("  %-12s %.4f%s\n", names[k].c_str(), p[k], k == best ? "  <-" : "");
  std::printf("prediction: %s\n", names[best].c_str());

  if (!viz.empty()) {
    auto rgb = [](const img::Image& g) {
      img::Image o(g.width, g.height, 3);
      for (size_t i = 0; i < g.data.size(); ++i)
        for (int k = 0; k < 3; ++k) o.data[i * 3 + k] = g.data[i];
      return o;
    };
    std::vector<img::Image> tiles = {rgb(in.onset), rgb(in.apex), flow::flow_to_color(in.flow), channel_tile(in.uvos, 0),
                                     channel_tile(in.uvos, 1), channel_tile(in.uvos, 2)};
    img::save_png(viz, data::contact_sheet(tiles, 6, pair.crop_size));
    std::printf("picture: %s (onset, apex, flow colour wheel, u, v, optical strain)\n", viz.c_str());
  }
  return 0;
}

}  // namespace

AHMSA_COMMAND("predict", "class probabilities of one onset/apex pair with a trained checkpoint", cmd_predict);
