// The ZIP reader and the xlsx sheet reader on arbitrary bytes.
#include "fuzz/fuzz_util.h"
#include "train/data/table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.xlsx", data, size);
  try {
    for (const std::string& entry : ahmsa::data::zip_entries(path)) (void)ahmsa::data::zip_read(path, entry);
  } catch (const ahmsa::data::DataError&) {
  }
  try {
    ahmsa::data::Table t = ahmsa::data::read_xlsx(path);
    (void)ahmsa::data::find_header_row(t, {"subject", "onsetframe"});
  } catch (const ahmsa::data::DataError&) {
  }
  return 0;
}
