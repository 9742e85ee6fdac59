#include "model/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace ahmsa {

namespace fs = std::filesystem;

namespace {

using nlohmann::json;

// Limits on what a header may claim (docs/RELIABILITY.md). Our own checkpoints have headers of a
// few kilobytes, nesting depth 3 ({name: {shape: [..]}}) and tensors of rank <= 4.
constexpr uint64_t kMaxHeaderBytes = 16u << 20;  // the JSON header
constexpr int kMaxJsonDepth = 8;                 // nesting of objects and arrays
constexpr size_t kMaxRank = 16;                  // entries of "shape"

size_t dtype_size(const std::string& d) {
  if (d == "F32" || d == "I32") return 4;
  if (d == "F64" || d == "I64") return 8;
  if (d == "F16" || d == "BF16" || d == "I16") return 2;
  if (d == "U8" || d == "I8" || d == "BOOL") return 1;
  return 0;
}

// The header as JSON, refusing nesting deeper than kMaxJsonDepth while parsing (the parser itself
// is iterative; the limit keeps the tree small and the message clear).
json parse_header(const std::string& header, const std::string& path) {
  auto depth_guard = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && depth >= kMaxJsonDepth)
      throw SafetensorsError("'" + path + "': malformed header JSON (nested deeper than " + std::to_string(kMaxJsonDepth) +
                             " levels)");
    return true;
  };
  try {
    return json::parse(header, depth_guard);
  } catch (const json::exception& e) {
    throw SafetensorsError("'" + path + "': malformed header JSON (" + e.what() + ")");
  }
}

// A JSON value that must be a non-negative integer (not 2.5, not -1, not 1e30, not beyond 2^64).
uint64_t json_count(const json& v, const std::string& path, const std::string& tensor, const char* what) {
  if (!v.is_number_unsigned()) {
    std::string why = v.is_number_integer() ? "is negative" : v.is_number() ? "is not an integer" : "is not a number";
    throw SafetensorsError("'" + path + "': tensor '" + tensor + "': " + what + " " + v.dump() + " " + why);
  }
  return v.get<uint64_t>();
}

}  // namespace

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> n;
  for (const auto& kv : entries) n.push_back(kv.first);
  return n;
}

Tensor SafetensorsFile::tensor(const std::string& name, Device dev) const {
  auto it = entries.find(name);
  if (it == entries.end()) throw SafetensorsError("'" + path + "' has no tensor '" + name + "'");
  const Entry& e = it->second;
  Tensor t = Tensor::empty(e.shape);
  float* d = t.data();
  int64_t n = t.numel();
  const unsigned char* b = e.bytes.data();
  // The format is little-endian, as is every machine we build for.
  if (e.dtype != "F32" && e.dtype != "F64" && e.dtype != "I64" && e.dtype != "I32")
    throw SafetensorsError("'" + path + "': tensor '" + name + "' has unsupported dtype " + e.dtype);
  if (n == 0) return t.to(dev);  // an empty tensor has no bytes (b may be null)
  if (e.dtype == "F32") std::memcpy(d, b, size_t(n) * 4);
  else if (e.dtype == "F64")
    for (int64_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, b + 8 * i, 8);
      if (!(std::fabs(v) <= double(FLT_MAX)))  // NaN, Inf or beyond float32 (the cast would be undefined)
        throw SafetensorsError("'" + path + "': tensor '" + name + "' holds a non-finite or out-of-float32-range value (" +
                               std::to_string(v) + ") at element " + std::to_string(i));
      d[i] = float(v);
    }
  else if (e.dtype == "I64") for (int64_t i = 0; i < n; ++i) { int64_t v; std::memcpy(&v, b + 8 * i, 8); d[i] = float(v); }
  else  // I32
    for (int64_t i = 0; i < n; ++i) {
      int32_t v;
      std::memcpy(&v, b + 4 * i, 4);
      d[i] = float(v);
    }
  // A NaN or infinite weight would give NaN probabilities and meaningless scores: refuse it here.
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(d[i]))
      throw SafetensorsError("'" + path + "': tensor '" + name + "' holds a non-finite value (" + std::to_string(d[i]) +
                             ") at element " + std::to_string(i));
  return t.to(dev);
}

std::vector<int64_t> SafetensorsFile::ints(const std::string& name) const {
  auto it = entries.find(name);
  if (it == entries.end()) throw SafetensorsError("'" + path + "' has no tensor '" + name + "'");
  const Entry& e = it->second;
  size_t n = size_t(shape_numel(e.shape));
  std::vector<int64_t> out(n);
  if (n == 0) return out;
  if (e.dtype == "I64") std::memcpy(out.data(), e.bytes.data(), n * 8);
  else if (e.dtype == "I32") for (size_t i = 0; i < n; ++i) { int32_t v; std::memcpy(&v, e.bytes.data() + 4 * i, 4); out[i] = v; }
  else {
    auto f = tensor(name).to_vector();  // finite, checked there
    for (size_t i = 0; i < n; ++i) {
      if (std::fabs(f[i]) >= 9.2e18f)
        throw SafetensorsError("'" + path + "': tensor '" + name + "' value " + std::to_string(f[i]) + " at element " +
                               std::to_string(i) + " does not fit a 64-bit integer");
      out[i] = int64_t(f[i]);
    }
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw SafetensorsError("'" + path + "' is a directory, not a safetensors file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw SafetensorsError("cannot open '" + path + "': " + std::strerror(errno));
  f.seekg(0, std::ios::end);
  std::streamoff end = f.tellg();
  f.seekg(0);
  if (!f || end < 0) throw SafetensorsError("cannot read '" + path + "': not a regular file");
  uint64_t file_size = uint64_t(end);
  if (file_size < 8) throw SafetensorsError("'" + path + "' is truncated: " + std::to_string(file_size) + " bytes");
  unsigned char lenb[8];
  if (!f.read(reinterpret_cast<char*>(lenb), 8)) throw SafetensorsError("cannot read '" + path + "'");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | lenb[i];
  if (hlen > file_size - 8)
    throw SafetensorsError("'" + path + "' is truncated or not safetensors: header of " + std::to_string(hlen) +
                           " bytes in a " + std::to_string(file_size) + "-byte file");
  if (hlen > kMaxHeaderBytes)
    throw SafetensorsError("'" + path + "': header of " + std::to_string(hlen) + " bytes exceeds the limit of " +
                           std::to_string(kMaxHeaderBytes));
  std::string header(hlen, '\0');
  if (!f.read(header.data(), std::streamsize(hlen))) throw SafetensorsError("'" + path + "': read error in the header");
  json root = parse_header(header, path);
  if (!root.is_object()) throw SafetensorsError("'" + path + "': header is not a JSON object");
  const uint64_t data_size = file_size - 8 - hlen;
  SafetensorsFile out;
  out.path = path;
  // First validate every entry against the data section (and each other), then read: a header
  // cannot make us allocate more than the file holds.
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (auto item = root.begin(); item != root.end(); ++item) {
    const std::string& name = item.key();
    const json& v = item.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw SafetensorsError("'" + path + "': __metadata__ is not a JSON object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw SafetensorsError("'" + path + "': metadata '" + m.key() + "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) throw SafetensorsError("'" + path + "': tensor '" + name + "' is not a JSON object");
    auto field = [&](const char* key) -> const json& {
      auto fit = v.find(key);
      if (fit == v.end()) throw SafetensorsError("'" + path + "': tensor '" + name + "' lacks \"" + key + "\"");
      return *fit;
    };
    SafetensorsFile::Entry e;
    const json& dtype = field("dtype");
    if (!dtype.is_string()) throw SafetensorsError("'" + path + "': tensor '" + name + "' has a non-string dtype");
    e.dtype = dtype.get<std::string>();
    const json& shape = field("shape");
    if (!shape.is_array() || shape.size() > kMaxRank)
      throw SafetensorsError("'" + path + "': tensor '" + name + "' has a bad shape " + shape.dump() +
                             " (an array of at most " + std::to_string(kMaxRank) + " sizes)");
    for (const json& d : shape) {
      uint64_t n = json_count(d, path, name, "shape entry");
      if (n > uint64_t(INT64_MAX))
        throw SafetensorsError("'" + path + "': tensor '" + name + "': shape entry " + std::to_string(n) + " is too large");
      e.shape.push_back(int64_t(n));
    }
    const json& offs = field("data_offsets");
    if (!offs.is_array() || offs.size() != 2)
      throw SafetensorsError("'" + path + "': tensor '" + name + "' has bad data_offsets " + offs.dump());
    uint64_t b = json_count(offs[0], path, name, "data offset"), en = json_count(offs[1], path, name, "data offset");
    size_t es = dtype_size(e.dtype);
    if (!es) throw SafetensorsError("'" + path + "': tensor '" + name + "' has unknown dtype '" + e.dtype + "'");
    if (en < b || en > data_size)
      throw SafetensorsError("'" + path + "' is truncated: tensor '" + name + "' spans bytes [" + std::to_string(b) + ", " +
                             std::to_string(en) + ") of a " + std::to_string(data_size) + "-byte data section");
    uint64_t bytes = 0;
    int64_t numel = 0;
    try {
      numel = shape_numel(e.shape);  // checked: throws on overflow
    } catch (const ShapeError& se) {
      throw SafetensorsError("'" + path + "': tensor '" + name + "': " + se.what());
    }
    if (__builtin_mul_overflow(uint64_t(numel), uint64_t(es), &bytes) || en - b != bytes)
      throw SafetensorsError("'" + path + "': tensor '" + name + "' has " + std::to_string(en - b) + " bytes for shape " +
                             shape_str(e.shape) + " of " + e.dtype);
    ranges.push_back({b, en, name});
    out.entries[name] = std::move(e);
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& x, const Range& y) { return x.begin < y.begin; });
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].begin < ranges[i - 1].end)
      throw SafetensorsError("'" + path + "': tensors '" + ranges[i - 1].name + "' and '" + ranges[i].name +
                             "' overlap in the data section");
  for (const Range& r : ranges) {
    auto& bytes = out.entries[r.name].bytes;
    bytes.resize(size_t(r.end - r.begin));
    f.seekg(std::streamoff(8 + hlen + r.begin));
    f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f) throw SafetensorsError("'" + path + "': read error in tensor '" + r.name + "'");
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  std::vector<std::vector<float>> data;
  for (const auto& nt : tensors) {
    data.push_back(nt.second.to_vector());
    uint64_t bytes = data.back().size() * 4;
    h[nt.first] = {{"dtype", "F32"}, {"shape", nt.second.shape()}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  std::string header;
  try {
    header = h.dump();
  } catch (const json::exception& e) {  // a name or metadata value that is not UTF-8
    throw SafetensorsError("cannot write '" + path + "': " + e.what());
  }
  while (header.size() % 8) header += ' ';  // keeps the data 8-byte aligned
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw SafetensorsError("cannot write '" + tmp + "'");
    uint64_t hl = header.size();
    unsigned char lenb[8];
    for (int i = 0; i < 8; ++i) lenb[i] = (hl >> (8 * i)) & 0xFF;
    f.write(reinterpret_cast<const char*>(lenb), 8);
    f.write(header.data(), std::streamsize(header.size()));
    for (auto& d : data) f.write(reinterpret_cast<const char*>(d.data()), std::streamsize(d.size() * 4));
    if (!f) throw SafetensorsError("write error on '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw SafetensorsError("cannot rename '" + tmp + "' to '" + path + "'");
}

}  // namespace ahmsa
