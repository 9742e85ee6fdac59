#include "model/safetensors.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ahmsa {

namespace {

// A minimal JSON reader, enough for safetensors headers: objects, arrays, strings, integers.
struct Json {
  enum Kind { Null, Number, String, Array, Object } kind = Null;
  double number = 0;
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;
};

class JsonParser {
 public:
  JsonParser(const std::string& s, const std::string& file) : s_(s), file_(file) {}
  Json parse() {
    Json v = value();
    ws();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw SafetensorsError("'" + file_ + "': malformed header JSON (" + why + " at byte " + std::to_string(i_) + ")");
  }
  void ws() {
    while (i_ < s_.size() && std::isspace((unsigned char)s_[i_])) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      char c = s_[i_++];
      if (c == '"') break;
      if (c == '\\') {
        if (i_ >= s_.size()) fail("bad escape");
        char e = s_[i_++];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'u': {
            if (i_ + 4 > s_.size()) fail("bad \\u escape");
            unsigned cp = std::stoul(s_.substr(i_, 4), nullptr, 16);
            i_ += 4;
            if (cp < 0x80) out += char(cp);
            else if (cp < 0x800) out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
            else out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
            break;
          }
          default: out += e;
        }
      } else
        out += c;
    }
    return out;
  }
  Json value() {
    Json v;
    char c = peek();
    if (c == '{') {
      v.kind = Json::Object;
      ++i_;
      if (peek() == '}') return ++i_, v;
      while (true) {
        std::string k = string();
        expect(':');
        v.fields.emplace_back(k, value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++i_;
      if (peek() == ']') return ++i_, v;
      while (true) {
        v.items.push_back(value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Json::String;
      v.str = string();
      return v;
    }
    if (c == '-' || std::isdigit((unsigned char)c)) {
      size_t end = i_;
      while (end < s_.size() && (std::isdigit((unsigned char)s_[end]) || strchr("+-.eE", s_[end]))) ++end;
      v.kind = Json::Number;
      v.number = std::stod(s_.substr(i_, end - i_));
      i_ = end;
      return v;
    }
    if (s_.compare(i_, 4, "null") == 0) return i_ += 4, v;
    if (s_.compare(i_, 4, "true") == 0) return i_ += 4, v.kind = Json::Number, v.number = 1, v;
    if (s_.compare(i_, 5, "false") == 0) return i_ += 5, v.kind = Json::Number, v;
    fail("unexpected character");
  }
  const std::string& s_;
  std::string file_;
  size_t i_ = 0;
};

size_t dtype_size(const std::string& d) {
  if (d == "F32" || d == "I32") return 4;
  if (d == "F64" || d == "I64") return 8;
  if (d == "F16" || d == "BF16" || d == "I16") return 2;
  if (d == "U8" || d == "I8" || d == "BOOL") return 1;
  return 0;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (c == '\n') o += "\\n";
    else if ((unsigned char)c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else
      o += c;
  }
  return o;
}

}  // namespace

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> n;
  for (auto& [k, e] : entries) n.push_back(k);
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
  if (e.dtype == "F32") std::memcpy(d, b, size_t(n) * 4);
  else if (e.dtype == "F64") for (int64_t i = 0; i < n; ++i) { double v; std::memcpy(&v, b + 8 * i, 8); d[i] = float(v); }
  else if (e.dtype == "I64") for (int64_t i = 0; i < n; ++i) { int64_t v; std::memcpy(&v, b + 8 * i, 8); d[i] = float(v); }
  else if (e.dtype == "I32") for (int64_t i = 0; i < n; ++i) { int32_t v; std::memcpy(&v, b + 4 * i, 4); d[i] = float(v); }
  else throw SafetensorsError("'" + path + "': tensor '" + name + "' has unsupported dtype " + e.dtype);
  return t.to(dev);
}

std::vector<int64_t> SafetensorsFile::ints(const std::string& name) const {
  auto it = entries.find(name);
  if (it == entries.end()) throw SafetensorsError("'" + path + "' has no tensor '" + name + "'");
  const Entry& e = it->second;
  size_t n = size_t(shape_numel(e.shape));
  std::vector<int64_t> out(n);
  if (e.dtype == "I64") std::memcpy(out.data(), e.bytes.data(), n * 8);
  else if (e.dtype == "I32") for (size_t i = 0; i < n; ++i) { int32_t v; std::memcpy(&v, e.bytes.data() + 4 * i, 4); out[i] = v; }
  else {
    auto f = tensor(name).to_vector();
    for (size_t i = 0; i < n; ++i) out[i] = int64_t(f[i]);
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw SafetensorsError("cannot open '" + path + "'");
  f.seekg(0, std::ios::end);
  uint64_t file_size = uint64_t(f.tellg());
  f.seekg(0);
  if (file_size < 8) throw SafetensorsError("'" + path + "' is truncated: " + std::to_string(file_size) + " bytes");
  unsigned char lenb[8];
  f.read(reinterpret_cast<char*>(lenb), 8);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | lenb[i];
  if (hlen > file_size - 8)
    throw SafetensorsError("'" + path + "' is truncated or not safetensors: header of " + std::to_string(hlen) +
                           " bytes in a " + std::to_string(file_size) + "-byte file");
  std::string header(hlen, '\0');
  f.read(header.data(), std::streamsize(hlen));
  Json root = JsonParser(header, path).parse();
  if (root.kind != Json::Object) throw SafetensorsError("'" + path + "': header is not a JSON object");
  uint64_t data_size = file_size - 8 - hlen;
  SafetensorsFile out;
  out.path = path;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, v] : root.fields) {
    if (name == "__metadata__") {
      for (auto& [k, mv] : v.fields) out.metadata[k] = mv.kind == Json::String ? mv.str : "";
      continue;
    }
    auto field = [&](const char* key) -> const Json& {
      for (auto& [k, fv] : v.fields)
        if (k == key) return fv;
      throw SafetensorsError("'" + path + "': tensor '" + name + "' lacks \"" + key + "\"");
    };
    SafetensorsFile::Entry e;
    e.dtype = field("dtype").str;
    for (auto& d : field("shape").items) e.shape.push_back(int64_t(d.number));
    const Json& offs = field("data_offsets");
    if (offs.items.size() != 2) throw SafetensorsError("'" + path + "': tensor '" + name + "' has bad data_offsets");
    uint64_t b = uint64_t(offs.items[0].number), en = uint64_t(offs.items[1].number);
    size_t es = dtype_size(e.dtype);
    if (!es) throw SafetensorsError("'" + path + "': tensor '" + name + "' has unknown dtype '" + e.dtype + "'");
    if (en < b || en > data_size)
      throw SafetensorsError("'" + path + "' is truncated: tensor '" + name + "' ends at byte " + std::to_string(en) +
                             " of a " + std::to_string(data_size) + "-byte data section");
    if (en - b != uint64_t(shape_numel(e.shape)) * es)
      throw SafetensorsError("'" + path + "': tensor '" + name + "' has " + std::to_string(en - b) +
                             " bytes for shape " + shape_str(e.shape) + " of " + e.dtype);
    ranges.push_back({b, en});
    e.bytes.resize(size_t(en - b));
    f.seekg(std::streamoff(8 + hlen + b));
    f.read(reinterpret_cast<char*>(e.bytes.data()), std::streamsize(en - b));
    if (!f) throw SafetensorsError("'" + path + "': read error in tensor '" + name + "'");
    out.entries[name] = std::move(e);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) throw SafetensorsError("'" + path + "': tensors overlap in the data section");
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::ostringstream h;
  h << '{';
  bool first = true;
  if (!metadata.empty()) {
    h << "\"__metadata__\":{";
    for (auto it = metadata.begin(); it != metadata.end(); ++it)
      h << (it == metadata.begin() ? "" : ",") << '"' << json_escape(it->first) << "\":\"" << json_escape(it->second) << '"';
    h << '}';
    first = false;
  }
  uint64_t off = 0;
  std::vector<std::vector<float>> data;
  for (auto& [name, t] : tensors) {
    data.push_back(t.to_vector());
    uint64_t bytes = data.back().size() * 4;
    h << (first ? "" : ",") << '"' << json_escape(name) << "\":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t i = 0; i < t.shape().size(); ++i) h << (i ? "," : "") << t.shape()[i];
    h << "],\"data_offsets\":[" << off << ',' << off + bytes << "]}";
    off += bytes;
    first = false;
  }
  h << '}';
  std::string header = h.str();
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
