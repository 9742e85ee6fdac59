// load_flow_folder: the input is a composite CSV, a NUL byte, then the bytes of the PNG for clip
// samm 006_1_2; the folder also holds a fixed valid 8x8 PNG for clip 006_1_3 and, under a per-fold
// tree, a second copy of the fuzzed one.
#include <cstring>

#include "flow/image.h"
#include "fuzz/fuzz_util.h"
#include "train/data/flow_dataset.h"
#include "train/data/table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  static const fs::path folder = [] {
    fs::path d = fuzz::scratch_dir() / "flow";
    fs::create_directories(d / "006" / "u_test" / "0");
    ahmsa::img::Image im(8, 8, 3, 40.f);
    ahmsa::img::save_png((d / "006_1_3.png").string(), im);
    return d;
  }();
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  size_t csv_size = nul ? size_t(nul - data) : size;
  const std::string csv = fuzz::write_file("comp.csv", data, csv_size);
  const uint8_t* png = nul ? nul + 1 : data + size;
  size_t png_size = size_t(data + size - png);
  fuzz::write_file("flow/006_1_2.png", png, png_size);
  fuzz::write_file("flow/006/u_test/0/006_1_2.png", png, png_size);
  try {
    ahmsa::data::FlowDataset ds = ahmsa::data::load_flow_folder(folder.string(), csv);
    for (auto& s : ds.samples)
      if (s.x.size() != size_t(3) * s.size * s.size || s.label < 0 || s.label > 2) __builtin_trap();
  } catch (const ahmsa::data::DataError&) {
  }
  return 0;
}
