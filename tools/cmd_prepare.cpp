// `ahmsa prepare`: read a dataset as distributed, crop faces, compute onset->apex flow + strain, and
// fill a resumable flow cache (manifest.csv/json + one (u, v, os) PNG per clip). See docs/DATA.md.
#include <cstdio>
#include <fstream>

#include "tools/command.h"
#include "train/data/prepare.h"

namespace {

using namespace ahmsa;

int cmd_prepare(const cli::Args& a) {
  using cli::option;
  using cli::option_double;
  using cli::option_int;
  using cli::option_u64;
  if (cli::has_flag(a, "--help")) {
    std::printf(
        "usage: ahmsa prepare --dataset casme2|samm|smic|casme3|composite --root DIR [--annotations FILE] --out CACHE\n"
        "         [--protocol composite3|casme2-5|casme3-3|casme3-4|casme3-7]\n"
        "         [--composite-csv FILE --casme2-root DIR --casme2-annotations FILE --samm-root DIR\n"
        "          --samm-annotations FILE --smic-root DIR]            (for --dataset composite)\n"
        "         [--method tvl1|farneback] [--preset ipol|opencv] [--interp bspline|bicubic] [--size 28]\n"
        "         [--crop-size 128]\n"
        "         [--crop none|detect|boxes] [--cascade FILE] [--boxes FILE] [--margin 0.1]\n"
        "         [--threads N] [--limit N] [--raw] [--quiet] [--verbose]\n"
        "Annotations: the official .xlsx sheets or CSV exports. --crop defaults to 'detect' when this build has\n"
        "OpenCV and the frames are not a cropped release or a synthetic corpus, to 'boxes' with --boxes, else 'none'.\n"
        "Re-running with the same --out skips finished clips.\n");
    return 0;
  }
  std::string dataset = option(a, "--dataset");
  std::string root = option(a, "--root"), ann = option(a, "--annotations");
  data::PrepareOptions o;
  o.out_dir = option(a, "--out");
  if (dataset.empty() || o.out_dir.empty()) throw std::invalid_argument("--dataset and --out are required (ahmsa prepare --help)");
  data::Protocol proto = data::parse_protocol(option(a, "--protocol", dataset == "casme3" ? "casme3-3" : "composite3"));
  data::SampleList list;
  if (dataset == "casme2") list = data::read_casme2(root, ann, proto);
  else if (dataset == "samm") list = data::read_samm(root, ann, proto);
  else if (dataset == "smic") list = data::read_smic(root, proto);
  else if (dataset == "casme3") list = data::read_casme3(root, ann, proto);
  else if (dataset == "composite") {
    data::CompositeSources src;
    src.composite_csv = option(a, "--composite-csv");
    src.casme2_root = option(a, "--casme2-root"), src.casme2_annotations = option(a, "--casme2-annotations");
    src.samm_root = option(a, "--samm-root"), src.samm_annotations = option(a, "--samm-annotations");
    src.smic_root = option(a, "--smic-root");
    if (src.composite_csv.empty()) throw std::invalid_argument("--dataset composite needs --composite-csv FILE");
    list = data::read_composite(src);
    proto = data::Protocol::Composite3;
  } else throw std::invalid_argument("unknown --dataset '" + dataset + "' (casme2, samm, smic, casme3, composite)");
  bool quiet = cli::has_flag(a, "--quiet"), verbose = cli::has_flag(a, "--verbose");
  std::fprintf(stderr, "%s: %zu clips usable; %s", dataset.c_str(), list.samples.size(), list.report.summary().c_str());
  size_t shown = 0;
  for (auto& w : list.report.warnings)
    if (verbose || shown++ < 20) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!verbose && list.report.warnings.size() > 20)
    std::fprintf(stderr, "... %zu more warnings (--verbose shows all)\n", list.report.warnings.size() - 20);
  if (list.samples.empty()) throw std::runtime_error("no usable clips: nothing to prepare");

  std::string method = option(a, "--method", "tvl1"), preset = option(a, "--preset", method == "tvl1" ? "ipol" : "opencv");
  if (method == "tvl1") {
    o.flow.method = flow::Method::TVL1;
    if (preset == "ipol") o.flow.tvl1 = flow::TVL1Params::ipol();
    else if (preset == "opencv") o.flow.tvl1 = flow::TVL1Params::opencv();
    else throw std::invalid_argument("--preset for tvl1: ipol or opencv");
    // How TV-L1 samples the second frame at each warp (docs/FLOW.md); bicubic reproduces caches made
    // before B-spline warping became the default.
    o.flow.tvl1.interpolation = flow::TVL1Params::interpolation_from_name(option(a, "--interp", "bspline"));
  } else if (method == "farneback") {
    o.flow.method = flow::Method::Farneback;
    if (preset == "opencv") o.flow.farneback = flow::FarnebackParams::opencv_defaults();
    else if (preset == "sample") o.flow.farneback = flow::FarnebackParams::opencv_sample();
    else throw std::invalid_argument("--preset for farneback: opencv or sample");
  } else throw std::invalid_argument("--method: tvl1 or farneback");
  o.flow_preset = preset;
  o.size = option_int(a, "--size", 28);
  o.crop_size = option_int(a, "--crop-size", 128);
  o.margin = option_double(a, "--margin", 0.1);
  o.threads = option_int(a, "--threads", 0);
  o.limit = option_int(a, "--limit", 0);
  o.write_raw = cli::has_flag(a, "--raw");
  o.progress = !quiet;
  o.cascade = option(a, "--cascade");
  o.boxes_file = option(a, "--boxes");
  std::string crop = option(a, "--crop", "");
  if (crop.empty()) {
    // Cropped releases (reg_img*) and synthetic corpora are face crops already.
    // ... and so is a corpus written by `ahmsa synth` (it leaves synth_parameters.json in its root).
    bool cropped = list.samples[0].onset_path.find("reg_img") != std::string::npos ||
                   list.samples[0].onset_path.find("/Cropped/") != std::string::npos ||
                   (!root.empty() && std::ifstream(root + "/synth_parameters.json").good());
    crop = !o.boxes_file.empty() ? "boxes" : (!cropped && data::have_face_detector() && !o.cascade.empty()) ? "detect" : "none";
    if (crop == "none" && !cropped && data::have_face_detector() && !data::find_cascade().empty()) crop = "detect";
  }
  o.crop = crop == "none" ? data::CropMode::None : crop == "detect" ? data::CropMode::Detect : crop == "boxes" ? data::CropMode::Boxes
                                                                                                              : throw std::invalid_argument("--crop: none, detect or boxes");
  o.source_description = "dataset=" + dataset + " root=" + root + " annotations=" + ann + " protocol=" + data::protocol_name(proto);
  std::fprintf(stderr, "flow: %s; crop: %s; size %d\n", o.flow.describe().c_str(), crop.c_str(), o.size);
  auto rep = data::prepare_flow_cache(list, o);
  std::printf("prepare: %d clips: %d computed, %d already in the cache, %d failed, in %.1f s\n", rep.total, rep.computed,
              rep.already_done, rep.failed, rep.seconds);
  std::printf("  manifest: %s\n  manifest: %s\n", rep.manifest_csv.c_str(), rep.manifest_json.c_str());
  if (!rep.contact_sheet.empty()) std::printf("  face crops: %s\n", rep.contact_sheet.c_str());
  return rep.computed + rep.already_done > 0 ? 0 : 1;
}

}  // namespace

AHMSA_COMMAND("prepare", "face crop + onset->apex flow + strain into a resumable flow cache", cmd_prepare);
