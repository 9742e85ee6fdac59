// img::load (stb: PNG, JPEG, BMP) on arbitrary bytes, with the file's own channels and as RGB.
#include "flow/image.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.img", data, size);
  for (int channels : {0, 3}) {
    try {
      ahmsa::img::Image im = ahmsa::img::load(path, channels);
      if (im.data.size() != size_t(im.width) * im.height * im.channels) __builtin_trap();
      if (int64_t(im.width) * im.height > ahmsa::img::kMaxPixels) __builtin_trap();
    } catch (const ahmsa::img::ImageError&) {
    }
  }
  return 0;
}
