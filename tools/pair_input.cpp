#include "tools/pair_input.h"

#include <cstdio>

#include "infer/classifier.h"
#include "train/data/face.h"
#include "train/video.h"

namespace ahmsa::cli {

void add_pair_options(CLI::App& app, PairOptions& o) {
  using Crop = PairOptions::Crop;
  app.add_option("frames", o.frames, "ONSET APEX: onset and apex frames (any image format stb reads)")->expected(2)->type_name("ONSET APEX");
  app.add_option("--video", o.video, "a video (needs OpenCV); --onset I --apex J are 0-based frame indices")->type_name("FILE");
  app.add_option("--onset", o.onset_index, "onset frame index in --video")->check(CLI::NonNegativeNumber);
  app.add_option("--apex", o.apex_index, "apex frame index in --video")->check(CLI::NonNegativeNumber);
  add_choice(app, "--crop", o.crop, Choices<Crop>{{"auto", Crop::Auto}, {"detect", Crop::Detect}, {"none", Crop::None}},
             "face crop: OpenCV Haar cascade on the onset frame, or the whole frame (right for face crops); auto: detect "
             "when this build has OpenCV and a cascade");
  app.add_option("--cascade", o.cascade, "cascade for --crop detect (default: shared/data/cascades/haarcascade_frontalface_default.xml)")
      ->type_name("FILE");
  app.add_option("--margin", o.margin, "box growth per side for --crop detect")->capture_default_str()->check(CLI::Range(0.0, 2.0));
  app.add_option("--crop-size", o.crop_size, "side the flow is computed at (the value the training cache was prepared with)")
      ->capture_default_str()
      ->check(CLI::Range(16, 8192));
  app.add_option("--method", o.method, "flow method, as the training cache: tvl1 (IPOL preset) or farneback (OpenCV defaults)")
      ->capture_default_str()
      ->check(one_of({"tvl1", "farneback"}))
      ->type_name("tvl1|farneback");
}

void check_pair_options(const PairOptions& o) {
  if (!o.video.empty() && !o.frames.empty()) throw UsageError("give ONSET APEX images or --video V --onset I --apex J, not both");
  if (!o.video.empty() && (o.onset_index < 0 || o.apex_index < 0))
    throw UsageError("--video needs --onset I and --apex J (0-based frame indices)");
  if (o.video.empty() && (o.onset_index >= 0 || o.apex_index >= 0)) throw UsageError("--onset / --apex are frame indices of --video");
}

PairInput load_pair(const PairOptions& o, int S) {
  using Crop = PairOptions::Crop;
  PairInput r;
  img::Image onset, apex;
  if (!o.video.empty()) {
    onset = train::read_video_frame(o.video, o.onset_index);
    apex = train::read_video_frame(o.video, o.apex_index);
    r.what = o.video + " frames " + std::to_string(o.onset_index) + " -> " + std::to_string(o.apex_index);
  } else {
    onset = img::load(o.frames.at(0));
    apex = img::load(o.frames.at(1));
    r.what = o.frames[0] + " -> " + o.frames[1];
  }
  onset = img::to_grey(onset), apex = img::to_grey(apex);
  if (onset.width != apex.width || onset.height != apex.height)
    throw std::invalid_argument("onset is " + std::to_string(onset.width) + "x" + std::to_string(onset.height) + " but apex is " +
                                std::to_string(apex.width) + "x" + std::to_string(apex.height));

  // Face crop, as `ahmsa prepare` does it: one box from the onset frame, used for both frames.
  const std::string cascade = data::find_cascade(o.cascade);
  Crop crop = o.crop;
  if (crop == Crop::Auto) crop = data::have_face_detector() && !cascade.empty() ? Crop::Detect : Crop::None;
  if (crop == Crop::Detect) {
    if (!data::have_face_detector()) throw std::runtime_error("--crop detect needs OpenCV; use --crop none for face crops");
    if (cascade.empty()) throw std::runtime_error("no face cascade found; give --cascade FILE or use --crop none");
    data::FaceBox face = data::detect_face(onset, cascade);
    if (face.empty()) throw std::runtime_error("no face found on the onset frame (" + r.what + "); use --crop none if it is a face crop");
    data::FaceBox box = data::square_box(face, o.margin, onset.width, onset.height);
    r.onset = data::crop_face(onset, box, o.crop_size), r.apex = data::crop_face(apex, box, o.crop_size);
    std::fprintf(stderr, "face: %dx%d at (%d, %d)\n", box.w, box.h, box.x, box.y);
  } else {
    r.onset = infer::fit_crop(onset, o.crop_size), r.apex = infer::fit_crop(apex, o.crop_size);
  }

  flow::FlowOptions fo;
  if (o.method == "farneback") fo.method = flow::Method::Farneback;
  infer::FlowInput in = infer::flow_input(r.onset, r.apex, S, fo);  // the preprocessing of `ahmsa prepare`
  r.flow = std::move(in.flow);
  r.uvos = std::move(in.uvos);
  r.x = in.x.to_vector();
  return r;
}

}  // namespace ahmsa::cli
