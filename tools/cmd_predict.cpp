// `ahmsa predict`: one onset/apex pair (two images, or two frames of a video) through the same
// preprocessing as `ahmsa prepare` (face crop, TV-L1 flow, optical strain, min-max (u, v, os) image
// rounded to 8 bits as the cache stores it) and a trained checkpoint: class probabilities.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "autograd/ops.h"
#include "flow/flow.h"
#include "flow/image.h"
#include "model/ahmsa_net.h"
#include "tensor/parallel.h"
#include "tools/command.h"
#include "train/data/face.h"
#include "train/video.h"

namespace {

using namespace ahmsa;

const char* kPredictHelp =
    "usage: ahmsa predict --model M.safetensors ONSET APEX [options]\n"
    "       ahmsa predict --model M.safetensors --video V --onset I --apex J [options]   (needs OpenCV)\n"
    "  --model FILE         checkpoint written by `ahmsa train` (fold_NN/model.safetensors) or a PyTorch export\n"
    "  ONSET APEX           onset and apex frames (any image format stb reads)\n"
    "  --video FILE         a video; --onset I --apex J are 0-based frame indices\n"
    "  --crop detect|none   face crop: OpenCV Haar cascade on the onset frame (default when available), or the whole\n"
    "                       frame (default without OpenCV; right for already-cropped faces)\n"
    "  --cascade FILE       cascade for --crop detect (default: shared/data/cascades/haarcascade_frontalface_default.xml)\n"
    "  --margin 0.1         box growth per side for --crop detect\n"
    "  --crop-size 128      side the flow is computed at (use the value the training cache was prepared with)\n"
    "  --method tvl1        tvl1 (IPOL preset) | farneback (OpenCV defaults): as the training cache\n"
    "  --viz FILE.png       write the onset and apex crops, the flow (colour wheel) and the u, v, os input channels\n"
    "  --threads N          CPU threads (default: all)\n";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string w;
  while (std::getline(ss, w, ',')) v.push_back(w);
  return v;
}

// A 1-channel float image (any range) stretched to 0..255 grey RGB, scaled up to `tile` by nearest neighbour.
img::Image channel_tile(const img::Image& uvos, int c) {
  img::Image g(uvos.width, uvos.height, 3);
  for (int y = 0; y < uvos.height; ++y)
    for (int x = 0; x < uvos.width; ++x)
      for (int k = 0; k < 3; ++k) g.at(x, y, k) = uvos.at(x, y, c);
  return g;
}

int cmd_predict(const cli::Args& a) {
  using cli::has_flag;
  using cli::option;
  using cli::option_double;
  using cli::option_int;
  using cli::option_u64;
  if (has_flag(a, "--help")) {
    std::printf("%s", kPredictHelp);
    return 0;
  }
  const std::string model_path = option(a, "--model");
  if (model_path.empty()) throw std::invalid_argument("--model FILE is required (ahmsa predict --help)");
  if (int t = option_int(a, "--threads", 0); t > 0) set_num_threads(t);
  const cli::Args pos = cli::positionals(a, {"--model", "--video", "--onset", "--apex", "--crop", "--cascade", "--margin",
                                             "--crop-size", "--method", "--viz", "--threads"});
  img::Image onset, apex;
  std::string what;
  if (const std::string video = option(a, "--video"); !video.empty()) {
    const std::string i = option(a, "--onset"), j = option(a, "--apex");
    if (i.empty() || j.empty()) throw std::invalid_argument("--video needs --onset I and --apex J (0-based frame indices)");
    onset = train::read_video_frame(video, std::stoi(i));
    apex = train::read_video_frame(video, std::stoi(j));
    what = video + " frames " + i + " -> " + j;
  } else {
    if (pos.size() != 2) throw std::invalid_argument("give ONSET and APEX images (or --video V --onset I --apex J)");
    onset = img::load(pos[0]);
    apex = img::load(pos[1]);
    what = pos[0] + " -> " + pos[1];
  }
  onset = img::to_grey(onset), apex = img::to_grey(apex);
  if (onset.width != apex.width || onset.height != apex.height)
    throw std::invalid_argument("onset is " + std::to_string(onset.width) + "x" + std::to_string(onset.height) + " but apex is " +
                                std::to_string(apex.width) + "x" + std::to_string(apex.height));

  // Face crop, as `ahmsa prepare` does it: one box from the onset frame, used for both frames.
  const int crop_size = option_int(a, "--crop-size", 128);
  std::string crop = option(a, "--crop", "");
  std::string cascade = data::find_cascade(option(a, "--cascade"));
  if (crop.empty()) crop = data::have_face_detector() && !cascade.empty() ? "detect" : "none";
  img::Image a0, a1;
  if (crop == "detect") {
    if (!data::have_face_detector()) throw std::runtime_error("--crop detect needs OpenCV; use --crop none for face crops");
    if (cascade.empty()) throw std::runtime_error("no face cascade found; give --cascade FILE or use --crop none");
    data::FaceBox face = data::detect_face(onset, cascade);
    if (face.empty()) throw std::runtime_error("no face found on the onset frame (" + what + "); use --crop none if it is a face crop");
    data::FaceBox box = data::square_box(face, option_double(a, "--margin", 0.1), onset.width, onset.height);
    a0 = data::crop_face(onset, box, crop_size), a1 = data::crop_face(apex, box, crop_size);
    std::fprintf(stderr, "face: %dx%d at (%d, %d)\n", box.w, box.h, box.x, box.y);
  } else if (crop == "none") {
    auto fit = [&](const img::Image& im) {
      if (im.width == crop_size && im.height == crop_size) return im;
      return im.width > crop_size ? img::resize_area(im, crop_size, crop_size) : img::resize_bilinear(im, crop_size, crop_size);
    };
    a0 = fit(onset), a1 = fit(apex);
  } else {
    throw std::invalid_argument("--crop: detect or none");
  }

  SafetensorsFile st = read_safetensors(model_path);
  AhmsaConfig cfg = AhmsaNet::config_of(st);
  Generator init(0);
  AhmsaNet net(cfg, init);
  net.load(st);
  net.eval();

  flow::FlowOptions fo;
  const std::string method = option(a, "--method", "tvl1");
  if (method == "farneback") fo.method = flow::Method::Farneback;
  else if (method != "tvl1") throw std::invalid_argument("--method: tvl1 or farneback");
  flow::FlowField f = flow::compute_flow(a0, a1, fo);
  std::vector<float> os = flow::optical_strain(f, flow::StrainScheme::Central);
  const int S = int(cfg.input_size);
  img::Image uvos = flow::uvos_image(f, os, S);
  // The cache stores the image as an 8-bit PNG: round the same way, then x = value / 255.
  Tensor x = Tensor::empty({1, 3, S, S});
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < S * S; ++i)
      x.data()[size_t(c) * S * S + i] = std::clamp(std::round(uvos.data[size_t(i) * 3 + c]), 0.f, 255.f) / 255.f;
  std::vector<float> p;
  {
    NoGradGuard ng;
    p = softmax(net.forward(x), 1).to_vector();
  }
  std::vector<std::string> names;
  if (auto it = st.metadata.find("class_names"); it != st.metadata.end()) names = split_list(it->second);
  if (names.size() != p.size()) {
    names.clear();
    for (size_t k = 0; k < p.size(); ++k) names.push_back(p.size() == 3 ? std::vector<std::string>{"negative", "positive", "surprise"}[k]
                                                                        : "class" + std::to_string(k));
  }
  const size_t best = size_t(std::max_element(p.begin(), p.end()) - p.begin());
  std::printf("%s\n", what.c_str());
  for (size_t k = 0; k < p.size(); ++k) std::printf("  %-12s %.4f%s\n", names[k].c_str(), p[k], k == best ? "  <-" : "");
  std::printf("prediction: %s\n", names[best].c_str());

  if (const std::string viz = option(a, "--viz"); !viz.empty()) {
    auto rgb = [](const img::Image& g) {
      img::Image o(g.width, g.height, 3);
      for (size_t i = 0; i < g.data.size(); ++i)
        for (int k = 0; k < 3; ++k) o.data[i * 3 + k] = g.data[i];
      return o;
    };
    std::vector<img::Image> tiles = {rgb(a0), rgb(a1), flow::flow_to_color(f), channel_tile(uvos, 0), channel_tile(uvos, 1),
                                     channel_tile(uvos, 2)};
    img::save_png(viz, data::contact_sheet(tiles, 6, crop_size));
    std::printf("picture: %s (onset, apex, flow colour wheel, u, v, optical strain)\n", viz.c_str());
  }
  return 0;
}

}  // namespace

AHMSA_COMMAND("predict", "class probabilities of one onset/apex pair with a trained checkpoint", cmd_predict);
