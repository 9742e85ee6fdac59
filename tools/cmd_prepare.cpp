// `ahmsa prepare`: read a dataset as distributed, crop faces, compute onset->apex flow + strain, and
// fill a resumable flow cache (manifest.csv/json + one (u, v, os) PNG per clip). See docs/DATA.md.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "tools/command.h"
#include "train/data/prepare.h"
#include "train/data/run_folder.h"

namespace {

using namespace ahmsa;

enum class Dataset { Casme2, Samm, Smic, Casme3, Composite };
enum class Crop { Auto, None, Detect, Boxes };
const cli::Choices<Crop> kCrops = {{"auto", Crop::Auto}, {"none", Crop::None}, {"detect", Crop::Detect}, {"boxes", Crop::Boxes}};
const std::vector<std::string> kDatasets = {"casme2", "samm", "smic", "casme3"};

// --crop: "MODE" for every dataset, or a comma list of MODE and DATASET=MODE items
// ("detect,casme2=none"; the composite mixes cropped and raw releases).
struct CropSpec {
  Crop all = Crop::Auto;
  std::map<std::string, Crop> by_dataset;
};

CropSpec parse_crop(const std::string& spec) {
  CropSpec c;
  auto mode = [&](const std::string& m) {
    for (auto& [n, v] : kCrops)
      if (m == n) return v;
    throw cli::UsageError("unknown mode '" + m + "' in '" + spec + "' (auto, none, detect, boxes)");
  };
  size_t b = 0;
  while (b <= spec.size()) {
    size_t e = spec.find(',', b);
    std::string item = spec.substr(b, e == std::string::npos ? std::string::npos : e - b);
    size_t eq = item.find('=');
    if (eq == std::string::npos) c.all = mode(item);
    else {
      std::string d = item.substr(0, eq);
      if (std::find(kDatasets.begin(), kDatasets.end(), d) == kDatasets.end())
        throw cli::UsageError("unknown dataset '" + d + "' in '" + spec + "' (casme2, samm, smic, casme3)");
      c.by_dataset[d] = mode(item.substr(eq + 1));
    }
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return c;
}

data::CropMode to_mode(Crop c) {
  return c == Crop::None ? data::CropMode::None : c == Crop::Detect ? data::CropMode::Detect : data::CropMode::Boxes;
}

int cmd_prepare(const cli::Args& a) {
  CLI::App app{"Face crop + onset->apex optical flow + optical strain into a resumable flow cache.\n"
               "Annotations: the official .xlsx sheets or CSV exports. Repairable annotation defects of a clip (apex outside\n"
               "[onset, offset] -> the middle frame, an inverted interval -> reordered) are repaired with a warning and\n"
               "recorded in the manifest; --strict drops those clips instead. --crop auto decides per dataset: 'detect' when\n"
               "this build has OpenCV and that dataset's frames are not a cropped release or a synthetic corpus, 'boxes' with\n"
               "--boxes, else 'none'.\n"
               "Re-running with the same --out skips finished clips; SIGINT/SIGTERM stop between clips (exit 130/143).",
               "ahmsa prepare"};
  Dataset dataset = Dataset::Casme2;
  std::string root, ann, protocol, method = "tvl1", preset, interp = "bspline";
  data::CompositeSources src;
  data::PrepareOptions o;
  std::string crop_spec = "auto";
  data::ReadOptions read;
  bool quiet = false, verbose = false;
  std::string write_config;
  app.set_config("--config", "", "run file (TOML or INI, as --write-config writes it); options also given on the command line win")
      ->type_name("FILE");
  app.allow_config_extras(CLI::config_extras_mode::error);
  cli::add_choice(app, "--dataset", dataset,
                  cli::Choices<Dataset>{{"casme2", Dataset::Casme2}, {"samm", Dataset::Samm}, {"smic", Dataset::Smic},
                                        {"casme3", Dataset::Casme3}, {"composite", Dataset::Composite}},
                  "the dataset's layout")
      ->required();
  app.add_option("--root", root, "the dataset's folder as distributed")->type_name("DIR");
  app.add_option("--annotations", ann, "coding sheet (.xlsx or CSV)")->type_name("FILE");
  app.add_option("--out", o.out_dir, "the flow cache folder")->required()->type_name("CACHE");
  app.add_option("--protocol", protocol, "class protocol (default composite3; casme3-3 for casme3)")
      ->check(cli::one_of({"composite3", "casme2-5", "casme3-3", "casme3-4", "casme3-7"}))
      ->type_name("composite3|casme2-5|casme3-3|casme3-4|casme3-7");
  app.add_option("--composite-csv", src.composite_csv, "--dataset composite: the MEGC2019 composite CSV")->group("composite")->type_name("FILE");
  app.add_option("--casme2-root", src.casme2_root, "CASME II folder")->group("composite")->type_name("DIR");
  app.add_option("--casme2-annotations", src.casme2_annotations, "CASME II coding sheet")->group("composite")->type_name("FILE");
  app.add_option("--samm-root", src.samm_root, "SAMM folder")->group("composite")->type_name("DIR");
  app.add_option("--samm-annotations", src.samm_annotations, "SAMM coding sheet")->group("composite")->type_name("FILE");
  app.add_option("--smic-root", src.smic_root, "SMIC-HS folder")->group("composite")->type_name("DIR");
  app.add_option("--method", method, "optical flow method")->capture_default_str()->check(cli::one_of({"tvl1", "farneback"}))->type_name("tvl1|farneback");
  app.add_option("--preset", preset, "flow preset: ipol|opencv for tvl1 (default ipol), opencv|sample for farneback (default opencv)")
      ->check(cli::one_of({"ipol", "opencv", "sample"}))
      ->type_name("NAME");
  app.add_option("--interp", interp, "how TV-L1 samples the apex frame at each warp (bicubic: caches made before B-spline warping)")
      ->capture_default_str()
      ->check(cli::one_of({"bspline", "bicubic"}))
      ->type_name("bspline|bicubic");
  app.add_option("--size", o.size, "side of the (u, v, os) image")->capture_default_str()->check(CLI::Range(4, 4096));
  app.add_option("--crop-size", o.crop_size, "side of the face crop the flow is computed at")->capture_default_str()->check(CLI::Range(16, 8192));
  app.add_option("--crop", crop_spec,
                 "face crop: one mode for every dataset, or per dataset as a comma list (detect,casme2=none)")
      ->capture_default_str()
      ->check([](const std::string& v) {
        try {
          parse_crop(v);
        } catch (const cli::UsageError& e) {
          return std::string(e.what());
        }
        return std::string();
      })
      ->type_name("auto|none|detect|boxes[,DATASET=MODE..]");
  app.add_flag("--strict", read.strict,
               "drop clips with an apex outside [onset, offset] or an inverted interval instead of repairing them");
  cli::add_choice(app, "--fix-onset-apex", read.onset_apex,
                  cli::Choices<data::OnsetApexFix>{{"none", data::OnsetApexFix::None},
                                                   {"median", data::OnsetApexFix::Median},
                                                   {"middle", data::OnsetApexFix::Middle}},
                  "clips annotated with apex = onset (zero flow): keep and warn (none), apex = onset + the dataset's median "
                  "apex offset (median), or the clip's middle frame (middle)");
  app.add_option("--cascade", o.cascade, "Haar cascade for --crop detect")->type_name("FILE");
  app.add_option("--boxes", o.boxes_file, "one face box per subject (subject,x,y,w,h)")->type_name("FILE");
  app.add_option("--margin", o.margin, "box growth per side for detect/boxes")->capture_default_str()->check(CLI::Range(0.0, 2.0));
  cli::add_threads_option(app, o.threads);
  app.add_option("--limit", o.limit, "only the first N clips (0 = all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_flag("--raw", o.write_raw, "also write <clip>.f32: the un-normalised (u, v, os) as float32");
  app.add_flag("--quiet", quiet, "no progress bar");
  app.add_flag("--verbose", verbose, "print every warning of the reader");
  app.add_option("--write-config", write_config, "write the options given to a run file (TOML) and exit")
      ->type_name("FILE")
      ->configurable(false);
  cli::parse(app, a);
  if (!write_config.empty()) {  // the options given (CLI11 writes them as parsed), nothing else
    data::write_file_atomic(write_config, "# ahmsa prepare run file: `ahmsa prepare --config FILE` repeats it\n" + app.config_to_str(false, true));
    std::printf("prepare: wrote the run file %s; run it with: ahmsa prepare --config %s\n", write_config.c_str(), write_config.c_str());
    return 0;
  }

  // Checks across options, before any file is read or written.
  if (preset.empty()) preset = method == "tvl1" ? "ipol" : "opencv";
  if (method == "tvl1" && preset == "sample") throw cli::UsageError("--preset for tvl1: ipol or opencv, got 'sample'");
  if (method == "farneback" && preset == "ipol") throw cli::UsageError("--preset for farneback: opencv or sample, got 'ipol'");
  if (dataset == Dataset::Composite && src.composite_csv.empty()) throw cli::UsageError("--dataset composite needs --composite-csv FILE");
  if (dataset != Dataset::Composite && root.empty()) throw cli::UsageError("--root DIR is required (ahmsa prepare --help)");
  const CropSpec crop = parse_crop(crop_spec);
  bool boxes_wanted = crop.all == Crop::Boxes;
  for (auto& [d, c] : crop.by_dataset) boxes_wanted = boxes_wanted || c == Crop::Boxes;
  if (boxes_wanted && o.boxes_file.empty()) throw cli::UsageError("--crop boxes needs --boxes FILE");
  if (protocol.empty()) protocol = dataset == Dataset::Casme3 ? "casme3-3" : "composite3";
  if (method == "tvl1") {
    o.flow.method = flow::Method::TVL1;
    o.flow.tvl1 = preset == "ipol" ? flow::TVL1Params::ipol() : flow::TVL1Params::opencv();
    o.flow.tvl1.interpolation = flow::TVL1Params::interpolation_from_name(interp);
  } else {
    o.flow.method = flow::Method::Farneback;
    o.flow.farneback = preset == "opencv" ? flow::FarnebackParams::opencv_defaults() : flow::FarnebackParams::opencv_sample();
  }
  o.flow_preset = preset;
  o.progress = !quiet;

  data::Protocol proto = data::parse_protocol(protocol);
  data::SampleList list;
  const char* dataset_name = "";
  switch (dataset) {
    case Dataset::Casme2: list = data::read_casme2(root, ann, proto, read), dataset_name = "casme2"; break;
    case Dataset::Samm: list = data::read_samm(root, ann, proto, read), dataset_name = "samm"; break;
    case Dataset::Smic: list = data::read_smic(root, proto), dataset_name = "smic"; break;
    case Dataset::Casme3: list = data::read_casme3(root, ann, proto, read), dataset_name = "casme3"; break;
    case Dataset::Composite:
      list = data::read_composite(src, read), dataset_name = "composite";
      proto = data::Protocol::Composite3;
      break;
  }
  std::fprintf(stderr, "%s: %zu clips usable; %s", dataset_name, list.samples.size(), list.report.summary().c_str());
  // Every repair is shown (they change what is computed); the other warnings up to 20 unless --verbose.
  const std::set<std::string> repairs(list.report.repair_lines.begin(), list.report.repair_lines.end());
  for (auto& w : list.report.repair_lines) std::fprintf(stderr, "repaired: %s\n", w.c_str());
  size_t shown = 0, others = 0;
  for (auto& w : list.report.warnings)
    if (!repairs.count(w) && (++others, verbose || shown < 20)) ++shown, std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (others > shown) std::fprintf(stderr, "... %zu more warnings (--verbose shows all)\n", others - shown);
  if (list.samples.empty()) throw std::runtime_error("no usable clips: nothing to prepare");

  // The crop mode of each dataset: as forced per dataset, else as --crop says, else (auto) decided
  // by that dataset's own folder, so a composite mixing a cropped CASME II with raw SAMM/SMIC crops right.
  const bool can_detect = data::have_face_detector() && (!o.cascade.empty() || !data::find_cascade().empty());
  std::set<std::string> present;
  for (auto& s : list.samples) present.insert(s.dataset);
  std::string crop_line;
  for (auto& d : present) {
    auto forced = crop.by_dataset.find(d);
    Crop c = forced != crop.by_dataset.end() ? forced->second : crop.all;
    data::CropMode m = c == Crop::Auto ? data::auto_crop_mode(list, d, !o.boxes_file.empty(), can_detect) : to_mode(c);
    o.crop_by_dataset[d] = m;
    crop_line += (crop_line.empty() ? "" : ", ") + d + " " + data::crop_mode_name(m);
  }
  if (crop.all != Crop::Auto) o.crop = to_mode(crop.all);
  o.source_description = std::string("dataset=") + dataset_name + " root=" + root + " annotations=" + ann + " protocol=" +
                         data::protocol_name(proto) + (read.strict ? " strict" : "") +
                         " fix-onset-apex=" + data::onset_apex_fix_name(read.onset_apex);
  std::fprintf(stderr, "flow: %s; crop: %s; size %d\n", o.flow.describe().c_str(), crop_line.c_str(), o.size);
  auto rep = data::prepare_flow_cache(list, o);
  std::printf("prepare: %d clips: %d computed, %d already in the cache, %d failed, in %.1f s\n", rep.total, rep.computed,
              rep.already_done, rep.failed, rep.seconds);
  std::printf("  manifest: %s\n  manifest: %s\n", rep.manifest_csv.c_str(), rep.manifest_json.c_str());
  if (!rep.contact_sheet.empty()) std::printf("  face crops: %s\n", rep.contact_sheet.c_str());
  return rep.computed + rep.already_done > 0 ? 0 : 1;
}

}  // namespace

AHMSA_COMMAND("prepare", "face crop + onset->apex flow + strain into a resumable flow cache", cmd_prepare);
