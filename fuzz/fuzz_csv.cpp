// read_csv on arbitrary bytes, then the header helpers and a write/read round trip.
#include "fuzz/fuzz_util.h"
#include "train/data/table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.csv", data, size);
  try {
    ahmsa::data::Table t = ahmsa::data::read_csv(path);
    int h = ahmsa::data::find_header_row(t, {"subject", "onsetframe"});
    if (h >= 0) (void)ahmsa::data::find_column(t[size_t(h)], {"onsetframe", "onset"});
    const std::string out = (fuzz::scratch_dir() / "out.csv").string();
    ahmsa::data::write_csv(out, t);
    if (ahmsa::data::read_csv(out).size() != t.size()) __builtin_trap();  // the writer keeps every row
  } catch (const ahmsa::data::DataError&) {
  }
  return 0;
}
