// Flow utilities: .flo I/O, optical strain, the (u, v, os) image, colour coding, error measures,
// warping, median filter and input errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <random>

#include "flow/flow.h"

using namespace ahmsa;
using flow::FlowField;

static const std::string kShared = AHMSA_SHARED_DIR;

static FlowField linear_flow(int w, int h, float a, float b, float c, float d) {
  FlowField f(w, h);  // u = a x + b y, v = c x + d y
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) f.u[size_t(y) * w + x] = a * x + b * y, f.v[size_t(y) * w + x] = c * x + d * y;
  return f;
}

TEST_CASE(".flo: grove3 ground truth reads with its documented size and range") {
  FlowField gt = flow::read_flo(kShared + "/data/flow/grove3.flo");
  CHECK(gt.width == 640);
  CHECK(gt.height == 480);
  auto [ulo, uhi] = std::minmax_element(gt.u.begin(), gt.u.end());
  auto [vlo, vhi] = std::minmax_element(gt.v.begin(), gt.v.end());
  const float lo = std::min(*ulo, *vlo), hi = std::max(*uhi, *vhi);
  CHECK(lo == doctest::Approx(-4.09).epsilon(0.01));  // README: u,v range -4.09..14.34
  CHECK(hi == doctest::Approx(14.34).epsilon(0.01));
}

TEST_CASE(".flo: write then read is exact; bad files give clear errors") {
  FlowField f = linear_flow(7, 5, 0.5f, -0.25f, 1e-3f, 3.f);
  f.u[3] = -1234.5f;
  const std::string path = "test_flow_io_roundtrip.flo";
  flow::write_flo(path, f);
  FlowField g = flow::read_flo(path);
  CHECK(g.width == 7);
  CHECK(g.height == 5);
  CHECK(g.u == f.u);
  CHECK(g.v == f.v);
  {  // a header promising 7x5 vectors followed by only 5 of them
    std::FILE* out = std::fopen("test_flow_io_trunc.flo", "wb");
    float magic = 202021.25f;
    int wh[2] = {7, 5};
    std::fwrite(&magic, 4, 1, out), std::fwrite(wh, 4, 2, out), std::fwrite(f.u.data(), 4, 10, out);
    std::fclose(out);
  }
  CHECK_THROWS_WITH_AS(flow::read_flo("test_flow_io_trunc.flo"), doctest::Contains("truncated"), flow::FlowError);
  CHECK_THROWS_WITH_AS(flow::read_flo(kShared + "/data/flow/grove3.png"), doctest::Contains("bad magic"),
                       flow::FlowError);
  CHECK_THROWS_WITH_AS(flow::read_flo("no/such/file.flo"), doctest::Contains("no/such/file.flo"), flow::FlowError);
  std::remove(path.c_str());
  std::remove("test_flow_io_trunc.flo");
}

TEST_CASE("optical strain: exact on linear flow (both schemes), schemes differ on curved flow") {
  const float a = 0.3f, b = -0.2f, c = 0.5f, d = 0.1f;
  FlowField f = linear_flow(9, 6, a, b, c, d);
  const float expect = std::sqrt(a * a + d * d + 0.5f * (b + c) * (b + c));
  for (auto s : {flow::StrainScheme::Central, flow::StrainScheme::Forward}) {
    auto os = flow::optical_strain(f, s);
    REQUIRE(os.size() == 54);
    for (float v : os) CHECK(v == doctest::Approx(expect).epsilon(1e-5));
  }
  // u = x^2 / 2: central u_x = x inside, forward u_x = x + 1/2.
  FlowField q(8, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 8; ++x) q.u[y * 8 + x] = 0.5f * x * x;
  auto oc = flow::optical_strain(q, flow::StrainScheme::Central);
  auto of = flow::optical_strain(q, flow::StrainScheme::Forward);
  CHECK(oc[1 * 8 + 3] == doctest::Approx(3.0f));
  CHECK(of[1 * 8 + 3] == doctest::Approx(3.5f));
  CHECK(oc[1 * 8 + 0] == doctest::Approx(0.5f));  // one-sided at the border
  CHECK(oc[1 * 8 + 7] == doctest::Approx(6.5f));
  CHECK(of[1 * 8 + 7] == doctest::Approx(6.5f));  // backward on the last column
}

TEST_CASE("uvos_image: per-channel min-max to 0..255, R=u G=v B=os, constant channel is 0") {
  FlowField f = linear_flow(4, 4, 1.f, 0.f, 0.f, 0.f);  // u = x, v = 0, os = 1 (constant)
  auto os = flow::optical_strain(f);
  img::Image im = flow::uvos_image(f, os, 4);
  REQUIRE(im.width == 4);
  REQUIRE(im.channels == 3);
  CHECK(im.at(0, 2, 0) == doctest::Approx(0.f));
  CHECK(im.at(3, 2, 0) == doctest::Approx(255.f));
  CHECK(im.at(1, 0, 0) == doctest::Approx(85.f));
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      CHECK(im.at(x, y, 1) == 0.f);
      CHECK(im.at(x, y, 2) == 0.f);
    }
  // Area resize of the flow values: 8x8 ramp u = x -> 4x4 averages pairs (0.5, 2.5, 4.5, 6.5) -> 0, 85, 170, 255
  FlowField g = linear_flow(8, 8, 1.f, 0.f, 0.f, 2.f);
  img::Image small = flow::uvos_image(g, flow::optical_strain(g), 4);
  REQUIRE(small.width == 4);
  CHECK(small.at(1, 3, 0) == doctest::Approx(85.f).epsilon(1e-4));
  CHECK(small.at(2, 1, 1) == doctest::Approx(85.f).epsilon(1e-4));  // v = 2y, rows reversed roles
  CHECK_THROWS_AS(flow::uvos_image(g, std::vector<float>(3), 4), flow::FlowError);
}

TEST_CASE("flow_to_color: white at rest, saturated hue by direction, black where unknown") {
  FlowField f(4, 1);
  f.u = {0.f, 1.f, 0.f, 1e10f};
  f.v = {0.f, 0.f, 1.f, 0.f};
  img::Image c = flow::flow_to_color(f, 1.f);
  CHECK(c.at(0, 0, 0) == doctest::Approx(255.f));  // zero flow -> white
  CHECK(c.at(0, 0, 1) == doctest::Approx(255.f));
  CHECK(c.at(1, 0, 0) > 250.f);  // to the right -> red
  CHECK(c.at(1, 0, 1) < 10.f);
  CHECK(c.at(2, 0, 2) < 40.f);  // down -> yellowish green (the wheel: red, yellow, green, cyan, blue, magenta)
  CHECK(c.at(2, 0, 1) > 200.f);
  CHECK(c.at(3, 0, 0) == 0.f);  // unknown -> black
}

TEST_CASE("errors: endpoint and angular error of known offsets; border and moving-region masks") {
  FlowField gt(10, 10), est(10, 10);
  for (auto& v : est.u) v = 0.3f;
  for (auto& v : est.v) v = 0.4f;
  CHECK(flow::average_endpoint_error(est, gt) == doctest::Approx(0.5));
  FlowField one(10, 10);
  for (auto& v : one.u) v = 1.f;
  CHECK(flow::average_angular_error(one, gt) == doctest::Approx(45.0));
  gt.u[0] = 2.f;  // only this pixel moves
  auto e = flow::flow_errors(est, gt, 0, 0.5f);
  CHECK(e.pixels == 1);
  CHECK(e.aee == doctest::Approx(std::hypot(1.7, 0.4)).epsilon(1e-5));
  CHECK(flow::flow_errors(est, gt, 1).pixels == 64);
  CHECK_THROWS_AS(flow::average_endpoint_error(FlowField(3, 3), gt), flow::FlowError);
}

TEST_CASE("warping: bilinear and bicubic are exact on a linear ramp; resize_flow rescales vectors") {
  img::Image ramp(16, 12, 1);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 16; ++x) ramp.at(x, y) = 3.f * x + 2.f * y;
  FlowField w(16, 12);
  for (auto& v : w.u) v = 0.5f;
  for (auto& v : w.v) v = -0.25f;
  img::Image bl = flow::warp_bilinear(ramp, w), bc = flow::warp_bicubic(ramp, w);
  for (int y = 2; y < 10; ++y)
    for (int x = 2; x < 14; ++x) {
      CHECK(bl.at(x, y) == doctest::Approx(ramp.at(x, y) + 1.5f - 0.5f));
      CHECK(bc.at(x, y) == doctest::Approx(ramp.at(x, y) + 1.5f - 0.5f));
    }
  FlowField big = flow::resize_flow(w, 32, 6);
  CHECK(big.u[5] == doctest::Approx(1.0f));
  CHECK(big.v[5] == doctest::Approx(-0.125f));
  CHECK_THROWS_AS(flow::warp_bilinear(img::Image(3, 3, 1), w), flow::FlowError);
}

TEST_CASE("median filter equals a brute-force median (k = 3, 5), edges replicated") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> U(-1, 1);
  const int W = 13, H = 9;
  std::vector<float> src(W * H);
  for (auto& v : src) v = U(rng);
  for (int k : {3, 5}) {
    std::vector<float> m = src;
    flow::median_filter(m, W, H, k);
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        std::vector<float> nb;
        for (int dy = -k / 2; dy <= k / 2; ++dy)
          for (int dx = -k / 2; dx <= k / 2; ++dx)
            nb.push_back(src[std::clamp(y + dy, 0, H - 1) * W + std::clamp(x + dx, 0, W - 1)]);
        std::nth_element(nb.begin(), nb.begin() + nb.size() / 2, nb.end());
        CHECK(m[y * W + x] == nb[nb.size() / 2]);
      }
  }
  std::vector<float> m = src;
  CHECK_THROWS_AS(flow::median_filter(m, W, H, 4), flow::FlowError);
}

TEST_CASE("bad input: size mismatch, empty frames and unreadable files give clear errors") {
  img::Image a(16, 16, 1, 10.f), b(17, 16, 1, 10.f), e;
  CHECK_THROWS_WITH_AS(flow::tvl1(a, b, flow::TVL1Params::ipol()), doctest::Contains("16x16 vs 17x16"),
                       flow::FlowError);
  CHECK_THROWS_WITH_AS(flow::farneback(a, b, flow::FarnebackParams::opencv_defaults()),
                       doctest::Contains("sizes differ"), flow::FlowError);
  CHECK_THROWS_WITH_AS(flow::tvl1(e, a, flow::TVL1Params::ipol()), doctest::Contains("empty"), flow::FlowError);
  CHECK_THROWS_WITH_AS(img::load("does/not/exist.png"), doctest::Contains("does/not/exist.png"), img::ImageError);
  flow::TVL1Params bad = flow::TVL1Params::ipol();
  bad.zoom = 1.5f;
  CHECK_THROWS_AS(flow::tvl1(a, a, bad), flow::FlowError);
}

TEST_CASE("describe() records the method and every parameter") {
  flow::FlowOptions o;
  CHECK(o.describe() ==
        "method=tvl1 tau=0.25 lambda=0.15 theta=0.3 scales=5 zoom=0.5 warps=5 epsilon=0.01 inner=1 outer=300 "
        "median=0 normalize=0 interpolation=bspline");
  o.tvl1.interpolation = flow::TVL1Params::Interpolation::Bicubic;
  CHECK(o.describe().find("interpolation=bicubic") != std::string::npos);
  for (auto i : {flow::TVL1Params::Interpolation::BSpline, flow::TVL1Params::Interpolation::Bicubic})
    CHECK(flow::TVL1Params::interpolation_from_name(flow::TVL1Params::interpolation_name(i)) == i);
  CHECK_THROWS_WITH_AS(flow::TVL1Params::interpolation_from_name("cubic"), doctest::Contains("'cubic'"),
                       flow::FlowError);
  o.method = flow::Method::Farneback;
  CHECK(o.describe() ==
        "method=farneback pyr_scale=0.5 levels=5 winsize=13 iterations=10 poly_n=5 poly_sigma=1.1 window=box");
  CHECK(flow::TVL1Params::opencv().describe().find("zoom=0.8 warps=5 epsilon=0.01 inner=30 outer=10 median=5") !=
        std::string::npos);
}

namespace {
// CRC-32 as PNG chunks use it (ISO 3309), bit by bit: enough for a 13-byte header.
uint32_t png_crc(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}
void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s += char((v >> (8 * i)) & 0xFF);
}
// A PNG whose header claims w x h grey pixels, followed by no image data: 45 bytes.
void write_png_header_only(const std::string& path, uint32_t w, uint32_t h) {
  std::string ihdr = "IHDR";
  put_be32(ihdr, w), put_be32(ihdr, h);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey, deflate, no filter, no interlace
  std::string png = "\x89PNG\r\n\x1a\n";
  put_be32(png, 13);
  png += ihdr;
  put_be32(png, png_crc(ihdr));
  put_be32(png, 0), png += "IEND", put_be32(png, png_crc("IEND"));
  std::FILE* out = std::fopen(path.c_str(), "wb");
  std::fwrite(png.data(), 1, png.size(), out);
  std::fclose(out);
}
}  // namespace

TEST_CASE("images: the pixel limit is checked from the header, naming the file") {
  write_png_header_only("test_flow_io_huge.png", 20000, 20000);
  CHECK_THROWS_WITH_AS(img::load("test_flow_io_huge.png"),
                       doctest::Contains("image 'test_flow_io_huge.png' is 20000x20000: more than the limit of 33554432 pixels"),
                       img::ImageError);
  // exactly 2^25 pixels passes the pixel limit, but not from 45 bytes (stb would pad it with zeros)
  write_png_header_only("test_flow_io_limit.png", 8192, 4096);
  CHECK_THROWS_WITH_AS(img::load("test_flow_io_limit.png"),
                       doctest::Contains("image 'test_flow_io_limit.png' claims 8192x4096 pixels in 45 bytes: truncated"),
                       img::ImageError);
  // found by fuzzing: a 121-byte BMP that decoded to 33 million zero-padded pixels (seconds, 0.4 GB)
  CHECK_THROWS_WITH_AS(img::load(AHMSA_SOURCE_DIR "/fuzz/regression/image/bmp_121_bytes_claims_33m_pixels"),
                       doctest::Contains("pixels in 121 bytes: truncated or corrupt"), img::ImageError);
  std::filesystem::create_directories("test_flow_io_dir.png");
  CHECK_THROWS_WITH_AS(img::load("test_flow_io_dir.png"), doctest::Contains("'test_flow_io_dir.png': it is a directory"),
                       img::ImageError);
  std::remove("test_flow_io_huge.png"), std::remove("test_flow_io_limit.png");
  std::filesystem::remove("test_flow_io_dir.png");
}

TEST_CASE(".flo: a header claiming more than the file holds is refused before allocating") {
  auto write_header = [](const char* path, int32_t w, int32_t h) {
    std::FILE* out = std::fopen(path, "wb");
    float magic = 202021.25f;
    int32_t wh[2] = {w, h};
    std::fwrite(&magic, 4, 1, out), std::fwrite(wh, 4, 2, out);
    std::fclose(out);
  };
  write_header("test_flow_io_huge.flo", 100000, 100000);  // 80 GB of vectors from a 12-byte file
  CHECK_THROWS_WITH_AS(flow::read_flo("test_flow_io_huge.flo"),
                       doctest::Contains("'test_flow_io_huge.flo' has an invalid size 100000x100000 (at most 33554432"),
                       flow::FlowError);
  write_header("test_flow_io_big.flo", 4096, 4096);  // within the limit, but the data is absent
  CHECK_THROWS_WITH_AS(flow::read_flo("test_flow_io_big.flo"),
                       doctest::Contains("truncated: expected 4096x4096 vectors (134217728 bytes), the file has 0"),
                       flow::FlowError);
  std::filesystem::create_directories("test_flow_io_dir.flo");
  CHECK_THROWS_WITH_AS(flow::read_flo("test_flow_io_dir.flo"), doctest::Contains("is a directory"), flow::FlowError);
  std::remove("test_flow_io_huge.flo"), std::remove("test_flow_io_big.flo");
  std::filesystem::remove("test_flow_io_dir.flo");
}

TEST_CASE("images: JPEG tables and PNG chunks that stb 2.27 mishandles are refused before it parses them") {
  // Found by fuzz/fuzz_image.cpp: stb_image 2.27 writes past its 257-entry code-size table.
  const std::string path = AHMSA_SOURCE_DIR "/fuzz/regression/image/jpeg_dht_over_256_codes";
  CHECK_THROWS_WITH_AS(img::load(path), doctest::Contains("corrupt JPEG (a JPEG Huffman table with more than 256 codes)"),
                       img::ImageError);
  CHECK_THROWS_WITH_AS(img::load(path), doctest::Contains(path.c_str()), img::ImageError);
  const std::string before_sof = AHMSA_SOURCE_DIR "/fuzz/regression/image/jpeg_dht_over_256_codes_before_sof";
  CHECK_THROWS_WITH_AS(img::load(before_sof), doctest::Contains("more than 256 codes"), img::ImageError);
  const std::string fill = AHMSA_SOURCE_DIR "/fuzz/regression/image/jpeg_dht_over_256_codes_fill_before_soi";
  CHECK_THROWS_WITH_AS(img::load(fill), doctest::Contains("more than 256 codes"), img::ImageError);  // FF FF D8 ...
  // a 75-byte PNG whose data chunk claims 2.7 GB: stb grows a 1.3 GB buffer before reading it
  const std::string png = AHMSA_SOURCE_DIR "/fuzz/regression/image/png_chunk_claims_1gb";
  CHECK_THROWS_WITH_AS(img::load(png), doctest::Contains("corrupt PNG (a PNG chunk longer than the rest of the file)"),
                       img::ImageError);
  // a scan decoding to a symbol outside its Huffman table: in the clang fuzz build stb 2.27 reaches its
  // own assertion, which now throws (the buffers of the abandoned decode are freed); in other builds
  // stb stops earlier with "Corrupt JPEG". Either way an ImageError naming the file.
  const std::string huff = AHMSA_SOURCE_DIR "/fuzz/regression/image/jpeg_huff_decode_assert";
  CHECK_THROWS_WITH_AS(img::load(huff), doctest::Contains(huff.c_str()), img::ImageError);
  // an ordinary JPEG (the fuzz seed, written by stb_image_write) still loads
  img::Image ok = img::load(AHMSA_SOURCE_DIR "/fuzz/corpus/image/rgb8.jpg");
  CHECK(ok.width == 8);
  CHECK(ok.height == 8);
  CHECK(ok.channels == 3);
}
