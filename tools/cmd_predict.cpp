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
#include "train/data/face.h"
#include "train/video.h"

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
  std::string model_path, video, cascade_arg, method = "tvl1", viz;
  std::vector<std::string> frames;
  int onset_index = -1, apex_index = -1, crop_size = 128, threads = 0;
  float margin = 0.1f;
  enum class Crop { Auto, Detect, None } crop = Crop::Auto;
  cli::DeviceChoice device = cli::DeviceChoice::Auto;
  app.add_option("--model", model_path, "checkpoint written by `ahmsa train` (fold_NN/model.safetensors) or a PyTorch export")
      ->required()
      ->type_name("FILE");
  app.add_option("frames", frames, "ONSET APEX: onset and apex frames (any image format stb reads)")->expected(2)->type_name("ONSET APEX");
  app.add_option("--video", video, "a video (needs OpenCV); --onset I --apex J are 0-based frame indices")->type_name("FILE");
  app.add_option("--onset", onset_index, "onset frame index in --video")->check(CLI::NonNegativeNumber);
  app.add_option("--apex", apex_index, "apex frame index in --video")->check(CLI::NonNegativeNumber);
  cli::add_choice(app, "--crop", crop, cli::Choices<Crop>{{"auto", Crop::Auto}, {"detect", Crop::Detect}, {"none", Crop::None}},
                  "face crop: OpenCV Haar cascade on the onset frame, or the whole frame (right for face crops); auto: detect "
                  "when this build has OpenCV and a cascade");
  app.add_option("--cascade", cascade_arg, "cascade for --crop detect (default: shared/data/cascades/haarcascade_frontalface_default.xml)")
      ->type_name("FILE");
  app.add_option("--margin", margin, "box growth per side for --crop detect")->capture_default_str()->check(CLI::Range(0.0, 2.0));
  app.add_option("--crop-size", crop_size, "side the flow is computed at (the value the training cache was prepared with)")
      ->capture_default_str()
      ->check(CLI::Range(16, 8192));
  app.add_option("--method", method, "flow method, as the training cache: tvl1 (IPOL preset) or farneback (OpenCV defaults)")
      ->capture_default_str()
      ->check(cli::one_of({"tvl1", "farneback"}))
      ->type_name("tvl1|farneback");
  app.add_option("--viz", viz, "write the onset and apex crops, the flow (colour wheel) and the u, v, os input channels")->type_name("FILE.png");
  cli::add_threads_option(app, threads);
  cli::add_device_option(app, device);
  cli::parse(app, a);
  if (!video.empty() && !frames.empty()) throw cli::UsageError("give ONSET APEX images or --video V --onset I --apex J, not both");
  if (video.empty() && frames.empty()) throw cli::UsageError("give ONSET and APEX images (or --video V --onset I --apex J)");
  if (!video.empty() && (onset_index < 0 || apex_index < 0)) throw cli::UsageError("--video needs --onset I and --apex J (0-based frame indices)");
  if (video.empty() && (onset_index >= 0 || apex_index >= 0)) throw cli::UsageError("--onset / --apex are frame indices of --video");
  const Device dev = cli::resolve_device(device);
  cli::apply_threads(threads);
  img::Image onset, apex;
  std::string what;
  if (!video.empty()) {
    onset = train::read_video_frame(video, onset_index);
    apex = train::read_video_frame(video, apex_index);
    what = video + " frames " + std::to_string(onset_index) + " -> " + std::to_string(apex_index);
  } else {
    onset = img::load(frames[0]);
    apex = img::load(frames[1]);
    what = frames[0] + " -> " + frames[1];
  }
  onset = img::to_grey(onset), apex = img::to_grey(apex);
  if (onset.width != apex.width || onset.height != apex.height)
    throw std::invalid_argument("onset is " + std::to_string(onset.width) + "x" + std::to_string(onset.height) + " but apex is " +
                                std::to_string(apex.width) + "x" + std::to_string(apex.height));

  // Face crop, as `ahmsa prepare` does it: one box from the onset frame, used for both frames.
  const std::string cascade = data::find_cascade(cascade_arg);
  if (crop == Crop::Auto) crop = data::have_face_detector() && !cascade.empty() ? Crop::Detect : Crop::None;
  img::Image a0, a1;
  if (crop == Crop::Detect) {
    if (!data::have_face_detector()) throw std::runtime_error("--crop detect needs OpenCV; use --crop none for face crops");
    if (cascade.empty()) throw std::runtime_error("no face cascade found; give --cascade FILE or use --crop none");
    data::FaceBox face = data::detect_face(onset, cascade);
    if (face.empty()) throw std::runtime_error("no face found on the onset frame (" + what + "); use --crop none if it is a face crop");
    data::FaceBox box = data::square_box(face, margin, onset.width, onset.height);
    a0 = data::crop_face(onset, box, crop_size), a1 = data::crop_face(apex, box, crop_size);
    std::fprintf(stderr, "face: %dx%d at (%d, %d)\n", box.w, box.h, box.x, box.y);
  } else {
    a0 = infer::fit_crop(onset, crop_size), a1 = infer::fit_crop(apex, crop_size);
  }

  infer::Classifier model(model_path, dev);
  flow::FlowOptions fo;
  if (method == "farneback") fo.method = flow::Method::Farneback;
  infer::FlowInput in = infer::flow_input(a0, a1, model.input_size(), fo);
  const flow::FlowField& f = in.flow;
  const img::Image& uvos = in.uvos;
  const std::vector<float> p = model.probabilities(in.x).to_vector();
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
    std::vector<img::Image> tiles = {rgb(a0), rgb(a1), flow::flow_to_color(f), channel_tile(uvos, 0), channel_tile(uvos, 1),
                                     channel_tile(uvos, 2)};
    img::save_png(viz, data::contact_sheet(tiles, 6, crop_size));
    std::printf("picture: %s (onset, apex, flow colour wheel, u, v, optical strain)\n", viz.c_str());
  }
  return 0;
}

}  // namespace

AHMSA_COMMAND("predict", "class probabilities of one onset/apex pair with a trained checkpoint", cmd_predict);
