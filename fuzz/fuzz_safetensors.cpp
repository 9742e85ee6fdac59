// read_safetensors on arbitrary bytes, then every tensor read back (as float32 and as integers).
#include "fuzz/fuzz_util.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.safetensors", data, size);
  try {
    ahmsa::SafetensorsFile f = ahmsa::read_safetensors(path);
    for (const std::string& name : f.names()) {
      try {
        (void)f.tensor(name).numel();
        (void)f.ints(name);
      } catch (const ahmsa::SafetensorsError&) {
      }
    }
  } catch (const ahmsa::SafetensorsError&) {
  }
  return 0;
}
