// safetensors files: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the raw little-endian data. We write F32; we read F32, F64, I64 and I32 (converted).
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ahmsa {

struct SafetensorsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SafetensorsFile {
  struct Entry {
    std::string dtype;
    Shape shape;
    std::vector<unsigned char> bytes;
  };
  std::string path;
  std::map<std::string, Entry> entries;           // sorted by name
  std::map<std::string, std::string> metadata;    // "__metadata__"

  bool has(const std::string& name) const { return entries.count(name) > 0; }
  std::vector<std::string> names() const;
  // As float32 (throws naming the file and key), converted on the CPU, then moved to d.
  Tensor tensor(const std::string& name, Device d = Device::CPU) const;
  std::vector<int64_t> ints(const std::string& name) const;  // integer (or integral float) tensor values
};

// Reads and validates the whole file: header bounds, dtype sizes, offsets inside the data,
// no overlap; a truncated or malformed file throws SafetensorsError naming the file and why.
SafetensorsFile read_safetensors(const std::string& path);

// Writes float32 tensors (any device/layout) atomically (temporary file, then rename).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace ahmsa
