// safetensors: round trip, the PyTorch-written fixtures, and every way a file can be broken
// (truncation at any point, malformed JSON, bad offsets) failing with SafetensorsError naming it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sys/resource.h>
#include <unistd.h>

#include "model/safetensors.h"

using namespace ahmsa;
namespace fs = std::filesystem;

namespace {

// A scratch directory unique to this process, removed at exit.
struct ScratchDir {
  fs::path dir = fs::temp_directory_path() / ("ahmsa_test_safetensors_" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(dir); }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

// A hand-made file: 8-byte little-endian header length, the header, then `data`.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xFF);
  return out + header + data;
}
std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.begin(), s.size());
  return s;
}

// Expects read_safetensors(path) to throw SafetensorsError whose message names the file and
// contains `why` (when given).
void expect_rejected(const std::string& path, const std::string& why = "") {
  CAPTURE(path);
  try {
    read_safetensors(path);
    FAIL("accepted a broken file");
  } catch (const SafetensorsError& e) {
    std::string m = e.what();
    CAPTURE(m);
    CHECK(m.find(path) != std::string::npos);
    if (!why.empty()) CHECK(m.find(why) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("round trip: names, shapes, values, metadata") {
  ScratchDir tmp;
  std::string path = tmp.file("round.safetensors");
  Tensor a = Tensor::from_vector({2, 3}, {1.5f, -2.f, 3.25f, 0.f, 1e-30f, -7e20f});
  Tensor strided = Tensor::from_vector({3, 2}, {1, 2, 3, 4, 5, 6}).transpose(0, 1);  // written in logical order
  Tensor scalar = Tensor::scalar(42.f);
  Tensor empty = Tensor::zeros({0, 4});
  Tensor big = Tensor::empty({64, 3, 3, 3});
  for (int64_t i = 0; i < big.numel(); ++i) big.data()[i] = float(i) * 0.37f - 100.f;
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"note", "quotes \" backslash \\ newline \n tab \t end"}, {"empty", ""}};
  write_safetensors(path, {{"levels.0.conv.weight", big}, {"a", a}, {"strided", strided}, {"s", scalar}, {"e", empty}},
                    meta);
  CHECK_FALSE(fs::exists(path + ".tmp"));  // written atomically via a temporary

  SafetensorsFile f = read_safetensors(path);
  CHECK(f.path == path);
  CHECK(f.names() == std::vector<std::string>{"a", "e", "levels.0.conv.weight", "s", "strided"});
  CHECK(f.metadata == meta);
  CHECK(f.tensor("a").shape() == Shape{2, 3});
  CHECK(f.tensor("a").to_vector() == a.to_vector());
  CHECK(f.tensor("strided").shape() == Shape{2, 3});
  CHECK(f.tensor("strided").to_vector() == std::vector<float>{1, 3, 5, 2, 4, 6});
  CHECK(f.tensor("s").shape() == Shape{});
  CHECK(f.tensor("s").item() == 42.f);
  CHECK(f.tensor("e").shape() == Shape{0, 4});
  CHECK(f.tensor("levels.0.conv.weight").to_vector() == big.to_vector());
  CHECK(f.entries.at("a").dtype == "F32");
  // the data section starts 8-byte aligned (the header is padded)
  std::string bytes = read_bytes(path);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | uint8_t(bytes[size_t(i)]);
  CHECK(hlen % 8 == 0);
  CHECK(bytes.size() == 8 + hlen + 4 * size_t(6 + 6 + 1 + 0 + 64 * 27));

  // a missing key names the file and the key
  try {
    f.tensor("nope");
    FAIL("no exception");
  } catch (const SafetensorsError& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find("nope") != std::string::npos);
  }
  // overwriting an existing file works
  write_safetensors(path, {{"only", scalar}});
  CHECK(read_safetensors(path).names() == std::vector<std::string>{"only"});
  CHECK(read_safetensors(path).metadata.empty());
}

TEST_CASE("reads the PyTorch-written fixtures") {
  auto f = read_safetensors(AHMSA_SOURCE_DIR "/tests/fixtures/optim.safetensors");
  CHECK(f.tensor("x").shape() == Shape{8, 5});
  CHECK(f.tensor("b0").shape() == Shape{3});
  CHECK(f.tensor("loss0").shape() == Shape{});
  // values as printed by safetensors/numpy from the same file
  auto x = f.tensor("x").to_vector();
  CHECK(x[0] == -1.1258398f);
  CHECK(x[1] == -1.1523602f);
  CHECK(x[4] == 0.84871036f);
  CHECK(f.tensor("loss0").item() == 2.7135153f);
  CHECK(f.metadata.at("problem") == "loss=mean_squared_error;x=8x5;y=8x3;W=3x5;b=3;steps=5");
  CHECK(f.metadata.at("sgd") == "class=SGD;lr=0.05;momentum=0.9;dampening=0;weight_decay=0.01;nesterov=0");

  // int64 targets in the op fixture
  auto ops = read_safetensors(AHMSA_SOURCE_DIR "/tests/fixtures/ops.safetensors");
  CHECK(ops.entries.at("ce_a/in1").dtype == "I64");
  CHECK(ops.ints("ce_a/in1") == std::vector<int64_t>{3, 1, 1, 0, 1, 3});
  CHECK(ops.tensor("ce_a/in1").to_vector() == std::vector<float>{3, 1, 1, 0, 1, 3});
  CHECK(ops.metadata.at("conv_b") == "op=conv2d;stride=2;pad=2");
  CHECK(ops.tensor("conv_b/in1").shape() == Shape{6, 5, 5, 5});
}

TEST_CASE("other dtypes are converted to float32") {
  ScratchDir tmp;
  std::string path = tmp.file("dtypes.safetensors");
  std::string data(8 * 2 + 4 * 3 + 8 * 2, '\0');
  double d[2] = {0.1, -2.5};
  int32_t i32[3] = {-1, 0, 70000};
  int64_t i64[2] = {5, -9};
  std::memcpy(&data[0], d, 16);
  std::memcpy(&data[16], i32, 12);
  std::memcpy(&data[28], i64, 16);
  write_bytes(path, make_file(R"({"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                              R"("i":{"dtype":"I32","shape":[3],"data_offsets":[16,28]},)"
                              R"("l":{"dtype":"I64","shape":[1,2],"data_offsets":[28,44]}})",
                              data));
  auto f = read_safetensors(path);
  CHECK(f.tensor("d").to_vector() == std::vector<float>{0.1f, -2.5f});
  CHECK(f.tensor("i").to_vector() == std::vector<float>{-1, 0, 70000});
  CHECK(f.ints("i") == std::vector<int64_t>{-1, 0, 70000});
  CHECK(f.tensor("l").shape() == Shape{1, 2});
  CHECK(f.ints("l") == std::vector<int64_t>{5, -9});
  CHECK(f.ints("d") == std::vector<int64_t>{0, -2});
  // a dtype we can size but not convert is reported when it is read, naming file and tensor
  std::string p2 = tmp.file("f16.safetensors");
  write_bytes(p2, make_file(R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0')));
  auto h = read_safetensors(p2);
  try {
    h.tensor("h");
    FAIL("no exception");
  } catch (const SafetensorsError& e) {
    CHECK(std::string(e.what()).find(p2) != std::string::npos);
    CHECK(std::string(e.what()).find("F16") != std::string::npos);
  }
}

TEST_CASE("a file truncated anywhere is rejected with its name") {
  ScratchDir tmp;
  std::string good = tmp.file("good.safetensors");
  write_safetensors(good, {{"w", Tensor::full({10, 10}, 0.5f)}, {"b", Tensor::full({10}, 1.f)}}, {{"k", "v"}});
  std::string bytes = read_bytes(good);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | uint8_t(bytes[size_t(i)]);
  REQUIRE(bytes.size() == 8 + hlen + 440);
  // cut: nothing, inside the length, just after it, inside the header, at the end of the header,
  // inside the first tensor, one byte short
  std::vector<size_t> cuts = {0, 3, 7, 8, 9, 20, size_t(8 + hlen / 2), size_t(8 + hlen - 1), size_t(8 + hlen),
                              size_t(8 + hlen + 1), size_t(8 + hlen + 200), bytes.size() - 4, bytes.size() - 1};
  for (size_t cut : cuts) {
    CAPTURE(cut);
    std::string path = tmp.file("cut_" + std::to_string(cut) + ".safetensors");
    write_bytes(path, bytes.substr(0, cut));
    expect_rejected(path);
  }
  CHECK_NOTHROW(read_safetensors(good));
  expect_rejected(tmp.file("does_not_exist.safetensors"), "cannot open");
}

TEST_CASE("malformed headers and bad offsets are rejected with the file's name") {
  ScratchDir tmp;
  const std::string four = floats({1, 2, 3, 4});
  struct Bad {
    const char* name;
    std::string header, data, why;
  };
  std::vector<Bad> cases = {
      {"not_json", "{not json", four, "malformed"},
      {"unterminated_string", R"({"a":{"dtype":"F32)", four, "malformed"},
      {"trailing_garbage", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}} x)", four, "malformed"},
      {"not_an_object", "[1,2,3]", four, "not a JSON object"},
      {"missing_dtype", R"({"a":{"shape":[4],"data_offsets":[0,16]}})", four, "dtype"},
      {"missing_offsets", R"({"a":{"dtype":"F32","shape":[4]}})", four, "data_offsets"},
      {"one_offset", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", four, "data_offsets"},
      {"unknown_dtype", R"({"a":{"dtype":"Q7","shape":[4],"data_offsets":[0,16]}})", four, "Q7"},
      {"size_mismatch", R"({"a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}})", four, "[5]"},
      {"end_past_data", R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", four, "'a'"},
      {"begin_after_end", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[16,8]}})", four, "'a'"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       four, "overlap"},
  };
  for (auto& c : cases) {
    CAPTURE(c.name);
    std::string path = tmp.file(std::string(c.name) + ".safetensors");
    write_bytes(path, make_file(c.header, c.data));
    expect_rejected(path, c.why);
  }
  // a header length larger than the file
  std::string path = tmp.file("huge_header.safetensors");
  std::string f = make_file("{}", "");
  f[6] = char(0x7F);  // header length ≈ 2^55
  write_bytes(path, f);
  expect_rejected(path, "truncated");
  // the good variants of the same hand-made files are accepted: the checks are not over-strict
  std::string ok = tmp.file("ok.safetensors");
  write_bytes(ok, make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]},"__metadata__":{"x":"y"}})",
                            four));
  auto good = read_safetensors(ok);
  CHECK(good.tensor("a").to_vector() == std::vector<float>{1, 2});
  CHECK(good.tensor("b").to_vector() == std::vector<float>{3, 4});
  CHECK(good.metadata.at("x") == "y");
}

TEST_CASE("hostile headers: deep nesting, huge or non-integer shapes and offsets") {
  ScratchDir tmp;
  const std::string four = floats({1, 2, 3, 4});
  struct Bad {
    const char* name;
    std::string header, data, why;
  };
  std::vector<Bad> cases = {
      // 30,000 nested arrays / 100,000 nested objects: a recursive parser overflows the stack
      {"deep_arrays", std::string(30000, '['), "", "nested deeper than 8"},
      {"deep_objects", [] {
         std::string h;
         for (int i = 0; i < 100000; ++i) h += "{\"a\":";
         return h;
       }(), "", "nested deeper than 8"},
      // numel wraps to 0 in 64 bits: 2^62 * 4 * 2 * 2 = 2^66
      {"numel_overflow", R"({"a":{"dtype":"F32","shape":[4611686018427387904,4,2,2],"data_offsets":[0,0]}})", "",
       "more elements than a 64-bit count"},
      // numel fits, numel * 4 bytes does not (2^62 * 4 = 2^64)
      {"bytes_overflow", R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", "",
       "bytes for shape [4611686018427387904]"},
      {"fractional_shape", R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", four, "2.5 is not an integer"},
      {"negative_shape", R"({"a":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}})", four, "-2 is negative"},
      {"string_shape", R"({"a":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}})", four, "is not a number"},
      {"offset_2^64-16", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[18446744073709551600,0]}})", four, "'a'"},
      {"offset_1e30", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1e30]}})", four, "1e+30 is not an integer"},
      {"offset_negative", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}})", four, "-16 is negative"},
      {"offset_beyond_uint64", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,99999999999999999999]}})", four,
       "is not an integer"},
      {"shape_not_array", R"({"a":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", four, "bad shape"},
      {"entry_not_object", R"({"a":[1,2]})", four, "not a JSON object"},
      {"dtype_not_string", R"({"a":{"dtype":4,"shape":[4],"data_offsets":[0,16]}})", four, "non-string dtype"},
      {"metadata_not_string", R"({"__metadata__":{"k":1}})", "", "metadata 'k' is not a string"},
      {"bad_utf8", std::string("{\"a\xff\":{}}"), "", "malformed"},
  };
  for (auto& c : cases) {
    CAPTURE(c.name);
    std::string path = tmp.file(std::string(c.name) + ".safetensors");
    write_bytes(path, make_file(c.header, c.data));
    expect_rejected(path, c.why);
  }
}

TEST_CASE("overlapping tensors are rejected before their bytes are read") {
  // 300 entries each claiming the whole 4 MB data section: reading them before the overlap check
  // cost 1.2 GB. The peak resident size may not grow by more than a quarter of that.
  ScratchDir tmp;
  std::string header = "{";
  for (int i = 0; i < 300; ++i)
    header += (i ? "," : "") + std::string("\"t") + std::to_string(i) +
              R"(":{"dtype":"F32","shape":[1048576],"data_offsets":[0,4194304]})";
  header += "}";
  std::string path = tmp.file("overlap_many.safetensors");
  write_bytes(path, make_file(header, std::string(4194304, '\0')));
  auto peak_kb = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return long(u.ru_maxrss);
  };
  const long before = peak_kb();
  expect_rejected(path, "overlap in the data section");
  CHECK(peak_kb() - before < 300 * 1024);
}

TEST_CASE("a directory or an unreadable path given as the file is a clear error") {
  ScratchDir tmp;
  std::string dir = tmp.file("a_folder.safetensors");
  fs::create_directories(dir);
  expect_rejected(dir, "is a directory");
  if (::geteuid() != 0) {  // root reads anything
    std::string locked = tmp.file("locked.safetensors");
    write_safetensors(locked, {{"w", Tensor::ones({2})}});
    fs::permissions(locked, fs::perms::none);
    expect_rejected(locked, "cannot open");
  }
}

TEST_CASE("non-finite weights are an error naming the file and the tensor") {
  ScratchDir tmp;
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    CAPTURE(bad);
    std::string path = tmp.file("nan.safetensors");
    write_safetensors(path, {{"ok", Tensor::ones({3})}, {"head.weight", Tensor::from_vector({3}, {0.5f, bad, 1.f})}});
    auto f = read_safetensors(path);
    CHECK(f.tensor("ok").to_vector() == std::vector<float>{1, 1, 1});
    try {
      f.tensor("head.weight");
      FAIL("accepted a non-finite weight");
    } catch (const SafetensorsError& e) {
      std::string m = e.what();
      CAPTURE(m);
      CHECK(m.find(path) != std::string::npos);
      CHECK(m.find("'head.weight' holds a non-finite value") != std::string::npos);
      CHECK(m.find("at element 1") != std::string::npos);
    }
  }
  // F64 beyond float32's range would be an undefined cast, not an infinity
  std::string path = tmp.file("f64.safetensors");
  double big[2] = {1.0, 1e300};
  std::string data(16, '\0');
  std::memcpy(&data[0], big, 16);
  write_bytes(path, make_file(R"({"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", data));
  auto f = read_safetensors(path);
  CHECK_THROWS_WITH_AS(f.tensor("d"), doctest::Contains("'d' holds a non-finite or out-of-float32-range value"),
                       SafetensorsError);
}
