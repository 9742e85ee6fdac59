// read_flo on arbitrary bytes.
#include "flow/flow.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.flo", data, size);
  try {
    ahmsa::flow::FlowField f = ahmsa::flow::read_flo(path);
    if (f.u.size() != size_t(f.width) * size_t(f.height)) __builtin_trap();
  } catch (const ahmsa::flow::FlowError&) {
  }
  return 0;
}
