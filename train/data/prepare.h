// `ahmsa prepare`: face crop, onset->apex flow, strain, (u, v, os) image at the model's input size,
// stored in a cache folder with a manifest recording every parameter. Resumable: finished clips are
// skipped, each clip's file is written atomically and its manifest row appended as soon as it is done.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "flow/flow.h"
#include "train/data/datasets.h"
#include "train/data/face.h"

namespace ahmsa::data {

enum class CropMode {
  None,    // frames are face crops already (CASME II Cropped/, the synthetic corpus): resized as they are
  Detect,  // OpenCV frontal-face cascade on the onset frame
  Boxes,   // one box per subject from a file (subject,x,y,w,h)
};

struct PrepareOptions {
  std::string out_dir;
  std::string source_description;  // dataset, root, annotations, protocol: recorded in the manifest
  flow::FlowOptions flow;
  std::string flow_preset = "ipol";  // recorded as given
  flow::StrainScheme strain = flow::StrainScheme::Central;
  int size = 28;                   // model input side
  int crop_size = 128;             // face crop side the flow is computed at
  CropMode crop = CropMode::None;  // every dataset not in crop_by_dataset
  std::map<std::string, CropMode> crop_by_dataset;  // dataset ("casme2", ...) -> its mode (the composite mixes releases)
  std::string cascade;             // Detect: the cascade file (find_cascade())
  std::string boxes_file;          // Boxes
  float margin = 0.1f;             // Detect/Boxes: grown by this fraction of the side on every side
  int threads = 0;                 // clip workers; 0 = hardware concurrency
  int limit = 0;                   // only the first N clips (0 = all)
  bool write_raw = false;          // also <clip>.f32: 3 x size x size float32 CHW (u, v in px of the crop, os), little-endian
  bool progress = true;            // progress bar on stderr
  int contact_tiles = 48;          // face crops of the first N clips in contact_sheet.png (0 = none)
  CropMode crop_for(const std::string& dataset) const;
};

const char* crop_mode_name(CropMode m);  // "none", "detect", "boxes"
// Whether a dataset's frames in `list` are face crops already, judged by the folder its reader found
// (SampleList::bases) and its own first clip, never another dataset's: CASME II's Cropped/ release (a
// folder named Cropped, reg_img* frames) or a corpus written by `ahmsa synth` (synth_parameters.json).
bool frames_are_cropped(const SampleList& list, const std::string& dataset);
// What `--crop auto` gives that dataset: boxes when a box file is given, none when its frames are
// face crops already or the build cannot detect faces, else detect.
CropMode auto_crop_mode(const SampleList& list, const std::string& dataset, bool have_boxes, bool can_detect);

struct PrepareReport {
  int total = 0, computed = 0, already_done = 0, failed = 0;
  std::vector<std::string> warnings;  // one per failed clip, naming it
  double seconds = 0;
  std::string manifest_csv, manifest_json, contact_sheet;
};

PrepareReport prepare_flow_cache(const SampleList& list, const PrepareOptions& o);

// Where a clip's image lives inside the cache: flows/<dataset>/<subject>/<clip>.png (relative).
std::string cache_relative_path(const Sample& s);

}  // namespace ahmsa::data
