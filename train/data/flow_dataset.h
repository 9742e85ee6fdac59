// Flow inputs for training: (u, v, os) images of every clip with its label and subject, loaded from
// the cache `ahmsa prepare` writes or from the pre-computed PNG folders the MER community shares.
#pragma once
#include <string>
#include <vector>

namespace ahmsa::data {

struct FlowSample {
  std::string dataset, subject, clip;  // subject ids unique across datasets (e.g. "casme2/sub01") for LOSO
  int label = -1;                      // class id for the protocol
  std::vector<float> x;                // 3*size*size, CHW, channels (u, v, os), each min-max normalised to [0,1] (constant channel -> 0)
  int size = 0;
};

struct FlowDataset {
  std::vector<FlowSample> samples;
  std::vector<std::string> class_names;
  std::string source;  // where it came from + parameters
};

// The cache written by `ahmsa prepare` (manifest.json + manifest.csv + flows/..png). Throws DataError
// naming the folder when there is no manifest; rows whose PNG is missing are skipped with a warning.
FlowDataset load_flow_cache(const std::string& cache_dir);
// Pre-computed 8-bit (u, v, os) PNGs (R, G, B; x = value / 255), flat or in the per-fold tree
// <subject>/{u_train,u_test}/<label>/*.png, matched to the rows of the MEGC2019 composite CSV
// (db,subject,clip,label) by clip name (and subject where clip names repeat). Classes: negative,
// positive, surprise. Unmatched rows and unreadable PNGs are reported on stderr, skipped and counted
// in `source`. Errors (DataError naming the file): a clip listed twice in the CSV, a grey or
// non-square PNG, images of different sizes (the ones differing from the most common size are named).
// RGBA PNGs are read as RGB.
FlowDataset load_flow_folder(const std::string& dir, const std::string& composite_csv);

// One (u, v, os) PNG as CHW floats in [0, 1] (R, G, B -> channels 0, 1, 2; alpha ignored). Throws
// naming the file when it is unreadable (img::ImageError), grey or not square (DataError).
std::vector<float> load_uvos_png(const std::string& path, int& size);

}  // namespace ahmsa::data
