// The flow cache round trip: prepare on a tiny synthetic corpus, load it back, resume after an
// interruption, refuse other parameters; corrupt frames; the community PNG folder reader.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "tests/test_data_helpers.h"
#include "train/data/flow_dataset.h"
#include "train/data/prepare.h"
#include "train/data/synth.h"

using namespace ahmsa;
using namespace ahmsa::data;
namespace fs = std::filesystem;

static SampleList tiny_corpus(const fs::path& root) {
  SynthOptions o;
  o.out_dir = (root / "corpus").string();
  o.faces_dir = std::string(AHMSA_SHARED_DIR) + "/data/faces";
  o.subjects = 2, o.clips_per_class = 1, o.seed = 5, o.size = 64, o.min_frames = 10, o.max_frames = 10, o.threads = 2;
  auto rep = synthesize_corpus(o);
  return read_casme2(o.out_dir, rep.coding_csv);
}

static PrepareOptions cache_options(const fs::path& out) {
  PrepareOptions p;
  p.out_dir = out.string();
  p.source_description = "test";
  p.flow.method = flow::Method::TVL1;
  p.flow.tvl1 = flow::TVL1Params::ipol();
  p.size = 28, p.crop_size = 64, p.threads = 2, p.progress = false;
  return p;
}

TEST_CASE("flow cache: prepare, load, resume, refuse other parameters") {
  auto root = testdata::temp_dir("cache");
  SampleList l = tiny_corpus(root);
  REQUIRE(l.samples.size() == 6);
  auto opt = cache_options(root / "cache");
  opt.write_raw = true;
  PrepareReport r1 = prepare_flow_cache(l, opt);
  CHECK(r1.total == 6);
  CHECK(r1.computed == 6);
  CHECK(r1.failed == 0);
  CHECK(fs::exists(r1.contact_sheet));
  std::ifstream js(r1.manifest_json);
  std::string json((std::istreambuf_iterator<char>(js)), {});
  CHECK(json.find("\"flow_method\": \"tvl1\"") != std::string::npos);
  CHECK(json.find("lambda=0.15") != std::string::npos);
  CHECK(json.find("\"size\": 28") != std::string::npos);

  FlowDataset ds = load_flow_cache(opt.out_dir);
  REQUIRE(ds.samples.size() == 6);
  CHECK(ds.class_names == std::vector<std::string>{"negative", "positive", "surprise"});
  CHECK(ds.source.find("tvl1") != std::string::npos);
  for (auto& s : ds.samples) {
    CHECK(s.size == 28);
    REQUIRE(s.x.size() == 3 * 28 * 28);
    CHECK(s.subject.rfind("casme2/sub0", 0) == 0);
    // Each channel min-max normalised: its minimum is 0 and its maximum 1.
    for (int c = 0; c < 3; ++c) {
      auto b = s.x.begin() + c * 784;
      CHECK(*std::min_element(b, b + 784) == doctest::Approx(0.0));
      CHECK(*std::max_element(b, b + 784) == doctest::Approx(1.0));
    }
    // The cached PNG holds the flow's own min-max image: the raw file agrees up to 8-bit rounding
    // (area-resized raw values normalised here vs the module's uvos image).
    fs::path raw = fs::path(opt.out_dir) / ("flows/" + s.subject + "/" + s.clip + ".f32");
    REQUIRE(fs::exists(raw));
    std::ifstream rf(raw, std::ios::binary);
    std::vector<float> v(3 * 784);
    rf.read((char*)v.data(), v.size() * 4);
    for (int c = 0; c < 3; ++c) {
      float lo = *std::min_element(v.begin() + c * 784, v.begin() + (c + 1) * 784);
      float hi = *std::max_element(v.begin() + c * 784, v.begin() + (c + 1) * 784);
      double worst = 0;
      for (int i = 0; i < 784; ++i)
        worst = std::max(worst, std::abs(double(v[c * 784 + i] - lo) / (hi - lo) - s.x[c * 784 + i]));
      CHECK(worst < 0.01);
    }
  }
  // Label and subject survive: they match the sample list.
  for (auto& s : ds.samples) {
    bool found = false;
    for (auto& t : l.samples) found = found || (t.clip == s.clip && t.subject == s.subject && t.label == s.label);
    CHECK(found);
  }

  // Re-run: nothing to do.
  PrepareReport r2 = prepare_flow_cache(l, opt);
  CHECK(r2.computed == 0);
  CHECK(r2.already_done == 6);

  // An interrupted run: one image gone and a torn manifest line. Only that clip is redone.
  fs::remove(fs::path(opt.out_dir) / cache_relative_path(l.samples[2]));
  {
    std::ofstream m(r1.manifest_csv, std::ios::app);
    m << "casme2,casme2/sub01,EP9";
  }
  PrepareReport r3 = prepare_flow_cache(l, opt);
  CHECK(r3.computed == 1);
  CHECK(r3.already_done == 5);
  CHECK(load_flow_cache(opt.out_dir).samples.size() == 6);

  // Other parameters into the same cache are refused.
  auto other = opt;
  other.size = 32;
  CHECK_THROWS_AS(prepare_flow_cache(l, other), DataError);
  CHECK_THROWS_AS(load_flow_cache((root / "nothing").string()), DataError);
}

TEST_CASE("flow cache: the manifest lists the clips in the dataset's order, whatever the thread count") {
  auto root = testdata::temp_dir("cache_order");
  SampleList l = tiny_corpus(root);
  std::string manifests[2];
  for (int threads : {1, 2}) {
    auto opt = cache_options(root / ("cache" + std::to_string(threads)));
    opt.threads = threads;
    const PrepareReport r = prepare_flow_cache(l, opt);
    REQUIRE(r.computed == 6);
    std::ifstream in(r.manifest_csv);
    manifests[threads - 1].assign(std::istreambuf_iterator<char>(in), {});
    const FlowDataset ds = load_flow_cache(opt.out_dir);
    REQUIRE(ds.samples.size() == l.samples.size());
    for (size_t i = 0; i < l.samples.size(); ++i) {
      CAPTURE(i);
      CHECK(ds.samples[i].subject == l.samples[i].subject);
      CHECK(ds.samples[i].clip == l.samples[i].clip);
    }
  }
  CHECK(manifests[0] == manifests[1]);
}

TEST_CASE("flow cache: corrupt and missing frames are skipped with a warning naming the clip") {
  auto root = testdata::temp_dir("cache_bad");
  SampleList l = tiny_corpus(root);
  testdata::write_text(l.samples[1].onset_path, "not a jpeg");
  fs::remove(l.samples[3].apex_path);
  auto opt = cache_options(root / "cache");
  opt.flow.method = flow::Method::Farneback;
  opt.limit = 4;
  PrepareReport r = prepare_flow_cache(l, opt);
  CHECK(r.total == 4);
  CHECK(r.computed == 2);
  CHECK(r.failed == 2);
  REQUIRE(r.warnings.size() == 2);
  std::string all = r.warnings[0] + "\n" + r.warnings[1];
  CHECK(all.find(l.samples[1].clip) != std::string::npos);
  CHECK(all.find(l.samples[3].clip) != std::string::npos);
  CHECK(load_flow_cache(opt.out_dir).samples.size() == 2);
}

TEST_CASE("flow cache: crop boxes from a file") {
  auto root = testdata::temp_dir("cache_boxes");
  SampleList l = tiny_corpus(root);
  testdata::write_text(root / "boxes.csv", "subject,x,y,w,h\nsub01,8,8,40,40\ncasme2/sub02,10,6,44,44\n");
  auto opt = cache_options(root / "cache");
  opt.flow.method = flow::Method::Farneback;
  opt.crop = CropMode::Boxes;
  opt.boxes_file = (root / "boxes.csv").string();
  opt.margin = 0.1f, opt.crop_size = 48;
  PrepareReport r = prepare_flow_cache(l, opt);
  CHECK(r.computed == 6);
  Table m = read_csv(r.manifest_csv);
  REQUIRE(m.size() == 7);
  int col = find_column(m[0], {"cropw"});
  REQUIRE(col >= 0);
  for (size_t i = 1; i < m.size(); ++i) CHECK((m[i][col] == "48" || m[i][col] == "53"));  // 40*1.2, 44*1.2 rounded
  FaceBox b = square_box({8, 8, 40, 30}, 0.1f, 64, 64);
  CHECK(b.w == 48);
  CHECK(b.h == 48);
  CHECK(b.x == 4);
  CHECK(b.y == 0);  // shifted to stay inside the image
}

TEST_CASE("flow PNG folders: R,G,B are u,v,os; flat and per-fold trees with the composite CSV") {
  auto root = testdata::temp_dir("flowfolder");
  // One image per clip whose channels are constant and distinct, so channel order is visible.
  auto png = [&](const fs::path& p, float r, float g, float b) {
    fs::create_directories(p.parent_path());
    img::Image im(28, 28, 3);
    for (int i = 0; i < 28 * 28; ++i) im.data[i * 3] = r, im.data[i * 3 + 1] = g, im.data[i * 3 + 2] = b;
    img::save_png(p.string(), im);
  };
  testdata::write_text(root / "comp.csv",
                       "casme2,sub01,EP02_01f,1\ncasme2,sub02,EP02_01f,0\nsamm,6,006_1_2,0\nsmic,s01,s01_ne_01,0\nsmic,s02,s02_po_01,1\n");
  // flat: subject-prefixed names for CASME II (clip names repeat across subjects), SMIC without padding
  auto flat = root / "flat";
  png(flat / "sub01_EP02_01f.png", 255, 0, 51);
  png(flat / "sub02_EP02_01f.png", 0, 255, 102);
  png(flat / "006_1_2.png", 10, 20, 30);
  png(flat / "s1_ne_01.png", 1, 2, 3);
  FlowDataset f = load_flow_folder(flat.string(), (root / "comp.csv").string());
  REQUIRE(f.samples.size() == 4);  // s02_po_01 has no image
  CHECK(f.samples[0].subject == "casme2/sub01");
  CHECK(f.samples[0].label == 1);
  CHECK(f.samples[0].x[0] == doctest::Approx(1.0));            // R -> u
  CHECK(f.samples[0].x[784] == doctest::Approx(0.0));          // G -> v
  CHECK(f.samples[0].x[2 * 784] == doctest::Approx(0.2));      // B -> os
  CHECK(f.samples[1].x[784] == doctest::Approx(1.0));
  CHECK(f.samples[3].subject == "smic/s01");
  CHECK(f.source.find("1 missing") != std::string::npos);
  // per-fold tree: every clip in u_train of the other subjects' folds and in u_test of its own
  auto tree = root / "tree";
  struct C { std::string sub, file; int label; float r; };
  std::vector<C> clips = {{"sub01", "EP02_01f", 1, 200}, {"sub02", "EP02_01f", 0, 100}, {"006", "006_1_2", 0, 50}};
  for (auto& fold : clips)
    for (auto& c : clips)
      png(tree / fold.sub / (fold.sub == c.sub ? "u_test" : "u_train") / std::to_string(c.label) / (c.file + ".png"), c.r, 0, 0);
  FlowDataset t = load_flow_folder(tree.string(), (root / "comp.csv").string());
  REQUIRE(t.samples.size() == 3);
  CHECK(t.samples[0].x[0] == doctest::Approx(200 / 255.0));
  CHECK(t.samples[1].x[0] == doctest::Approx(100 / 255.0));
  CHECK(t.samples[2].x[0] == doctest::Approx(50 / 255.0));
}

TEST_CASE("flow PNG folders: a clip listed twice, grey images and odd sizes are errors naming the culprit") {
  auto root = testdata::temp_dir("flowfolder_bad");
  auto png = [&](const fs::path& p, int size, int channels) {
    fs::create_directories(p.parent_path());
    img::Image im(size, size, channels, 100.f);
    img::save_png(p.string(), im);
  };
  auto message = [&](const fs::path& dir, const fs::path& csv) -> std::string {
    try {
      load_flow_folder(dir.string(), csv.string());
    } catch (const DataError& e) {
      return e.what();
    }
    FAIL("accepted the folder");
    return "";
  };
  // the same clip twice (once with a padded subject spelling): it would be trained and scored twice
  auto dup = root / "dup";
  png(dup / "006_1_2.png", 28, 3);
  png(dup / "006_1_3.png", 28, 3);
  testdata::write_text(root / "dup.csv", "db,subject,clip,label\nsamm,6,006_1_2,0\nsamm,6,006_1_3,1\nsamm,006,006_1_2,0\n");
  std::string m = message(dup, root / "dup.csv");
  CHECK(m.find("dup.csv' lists clip samm/006/006_1_2 twice (lines 2 and 4)") != std::string::npos);
  // grey PNGs: not copied into u = v = os
  auto grey = root / "grey";
  png(grey / "006_1_2.png", 28, 1);
  testdata::write_text(root / "one.csv", "samm,6,006_1_2,0\n");
  m = message(grey, root / "one.csv");
  CHECK(m.find((grey / "006_1_2.png").string() + "' has 1 channel (grey)") != std::string::npos);
  // the odd size is in the first file (sorted): the error names it, not the two others
  auto odd = root / "odd";
  png(odd / "006_1_1.png", 32, 3);
  png(odd / "006_1_2.png", 28, 3);
  png(odd / "006_1_3.png", 28, 3);
  testdata::write_text(root / "three.csv", "samm,6,006_1_1,0\nsamm,6,006_1_2,1\nsamm,6,006_1_3,2\n");
  m = message(odd, root / "three.csv");
  CHECK(m.find("1 of 3 flow images are not 28 px like the others: " + (odd / "006_1_1.png").string() + " (32 px)") !=
        std::string::npos);
  CHECK(m.find("006_1_2.png") == std::string::npos);
  // RGBA reads as RGB
  auto rgba = root / "rgba";
  png(rgba / "006_1_2.png", 28, 4);
  FlowDataset ok = load_flow_folder(rgba.string(), (root / "one.csv").string());
  REQUIRE(ok.samples.size() == 1);
  CHECK(ok.samples[0].x.size() == 3u * 28 * 28);
}

TEST_CASE("composite cache: crop mode per dataset root, repairs in manifest.csv and manifest.json") {
  auto root = testdata::temp_dir("cache_composite");
  auto frames = [&](const fs::path& dir, const std::string& prefix, std::vector<int> numbers, const char* fmt) {
    for (int n : numbers) {
      char num[32];
      std::snprintf(num, sizeof num, fmt, n);
      testdata::write_frame(dir / (prefix + num + ".png"), n, 32);
    }
  };
  frames(root / "CASME2" / "Cropped" / "sub01" / "EP02_01f", "reg_img", {46, 47, 48, 49, 50}, "%d");
  frames(root / "SAMM" / "028" / "028_4_1", "028_", {1120, 1127, 1134, 1143}, "%04d");
  frames(root / "SAMM" / "032" / "032_3_1", "032_", {1930, 4896, 4916, 4936}, "%04d");
  testdata::write_text(root / "casme2.csv", "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Estimated Emotion\n1,EP02_01f,46,48,50,happiness\n");
  testdata::write_text(root / "samm.csv",
                       "Subject,Filename,Onset Frame,Apex Frame,Offset Frame,Estimated Emotion\n"
                       "28,028_4_1,1120,1143,1134,Anger\n32,032_3_1,4896,1930,4936,Sadness\n");
  // SAMM first in the CSV: the crop mode must not follow the first clip.
  testdata::write_text(root / "composite.csv", "samm,28,028_4_1,0\n,,,\nsamm,32,032_3_1,0\n,,,\ncasme2,sub01,EP02_01f,1\n,,,\n");
  CompositeSources src;
  src.composite_csv = (root / "composite.csv").string();
  src.casme2_root = (root / "CASME2").string(), src.casme2_annotations = (root / "casme2.csv").string();
  src.samm_root = root.string(), src.samm_annotations = (root / "samm.csv").string();
  SampleList l = read_composite(src);
  REQUIRE(l.samples.size() == 3);
  CHECK(l.samples[0].dataset == "samm");
  CHECK(frames_are_cropped(l, "casme2"));
  CHECK(!frames_are_cropped(l, "samm"));
  CHECK(auto_crop_mode(l, "casme2", false, true) == CropMode::None);
  CHECK(auto_crop_mode(l, "samm", false, true) == CropMode::Detect);
  CHECK(auto_crop_mode(l, "samm", false, false) == CropMode::None);  // no detector in this build
  CHECK(auto_crop_mode(l, "samm", true, true) == CropMode::Boxes);

  testdata::write_text(root / "boxes.csv", "subject,x,y,w,h\n,,,,\n028,4,4,20,20\nsamm/032,6,6,20,20\n");
  auto opt = cache_options(root / "cache");
  opt.flow.method = flow::Method::Farneback;
  opt.size = 16, opt.crop_size = 32, opt.contact_tiles = 0;
  opt.crop = CropMode::Detect;  // every dataset not listed below (none here)
  opt.crop_by_dataset = {{"casme2", CropMode::None}, {"samm", CropMode::Boxes}};
  opt.boxes_file = (root / "boxes.csv").string();
  PrepareReport r = prepare_flow_cache(l, opt);
  CHECK(r.computed == 3);
  CHECK(r.failed == 0);
  Table m = read_csv(r.manifest_csv);
  REQUIRE(m.size() == 4);
  int c_clip = find_column(m[0], {"clip"}), c_apex = find_column(m[0], {"apex"}), c_w = find_column(m[0], {"cropw"}),
      c_rep = find_column(m[0], {"repairs"}), c_est = find_column(m[0], {"apexestimated"});
  REQUIRE(c_rep >= 0);
  std::map<std::string, std::vector<std::string>> rows;
  for (size_t i = 1; i < m.size(); ++i) rows[m[i][c_clip]] = m[i];
  CHECK(rows.at("EP02_01f")[c_w] == "32");  // none: the whole (already cropped) frame
  CHECK(rows.at("028_4_1")[c_w] == "24");   // boxes: 20 * 1.2
  CHECK(rows.at("028_4_1")[c_apex] == "1127");
  CHECK(rows.at("028_4_1")[c_est] == "1");
  CHECK(rows.at("028_4_1")[c_rep] == "apex 1143 outside [1120, 1134] (after the offset): using the middle frame 1127");
  CHECK(rows.at("032_3_1")[c_apex] == "4916");
  CHECK(rows.at("032_3_1")[c_rep] == "apex 1930 outside [4896, 4936] (before the onset): using the middle frame 4916");
  CHECK(rows.at("EP02_01f")[c_rep] == "");
  std::ifstream js(r.manifest_json);
  auto j = nlohmann::json::parse(js);
  CHECK(j["crop"] == "casme2:none,samm:boxes");
  CHECK(j["crop_by_dataset"]["casme2"] == "none");
  CHECK(j["crop_by_dataset"]["samm"] == "boxes");
  REQUIRE(j["repairs"].size() == 2);
  CHECK(j["repairs"][0]["clip"] == "028_4_1");
  CHECK(j["repairs"][0]["kind"] == "apex outside [onset, offset]");
  CHECK(j["repairs"][1]["text"] == "apex 1930 outside [4896, 4936] (before the onset): using the middle frame 4916");
  CHECK(std::string(j["read_report"]).find("repaired 2 (kept): apex outside [onset, offset]") != std::string::npos);
  CHECK(std::string(j["signature"]).find("crop=casme2:none,samm:boxes") != std::string::npos);
  // Resumable as before; a cache with another crop mode for one dataset is refused.
  PrepareReport again = prepare_flow_cache(l, opt);
  CHECK(again.already_done == 3);
  CHECK(again.computed == 0);
  opt.crop_by_dataset["samm"] = CropMode::None;
  CHECK_THROWS_WITH_AS(prepare_flow_cache(l, opt), doctest::Contains("crop=casme2:none,samm:boxes"), DataError);
  // So is one whose reader took other apexes (--fix-onset-apex) or kept other clips (--strict).
  opt.crop_by_dataset["samm"] = CropMode::Boxes;
  l.read.onset_apex = OnsetApexFix::Middle;
  CHECK_THROWS_WITH_AS(prepare_flow_cache(l, opt), doctest::Contains("fix_onset_apex=middle"), DataError);
  l.read = ReadOptions{};
  l.read.strict = true;
  CHECK_THROWS_WITH_AS(prepare_flow_cache(l, opt), doctest::Contains("annotations=strict"), DataError);
}

TEST_CASE("flow cache: a manifest from before the repairs column resumes; a torn quoted last line is cut") {
  auto root = testdata::temp_dir("cache_oldmanifest");
  SampleList l = tiny_corpus(root);
  auto opt = cache_options(root / "cache");
  opt.flow.method = flow::Method::Farneback;
  opt.contact_tiles = 0;
  PrepareReport r1 = prepare_flow_cache(l, opt);
  REQUIRE(r1.computed == 6);
  // Rewrite the manifest without its last column, as caches made before it are, plus a torn row.
  Table m = read_csv(r1.manifest_csv);
  std::string text;
  for (auto& row : m) {
    row.pop_back();
    for (size_t i = 0; i < row.size(); ++i) text += (i ? "," : "") + row[i];
    text += "\n";
  }
  testdata::write_text(r1.manifest_csv, text + "casme2,casme2/sub01,EP09,0,disgust,1,2,3,0,flows/x.png,0,0,1,1,0,0,0,0,0,\"apex 9 outside [1, ");
  PrepareReport r2 = prepare_flow_cache(l, opt);
  CHECK(r2.already_done == 6);
  CHECK(r2.computed == 0);
  Table after = read_csv(r1.manifest_csv);
  CHECK(after.size() == 7);
  CHECK(after[0].back() == "repairs");
  CHECK(after[1].size() == after[0].size());
  CHECK(load_flow_cache(opt.out_dir).samples.size() == 6);
  CHECK(cut_torn_line("a,b\n1,\"x, ") == "a,b\n");
  CHECK(cut_torn_line("a,b\n1,2") == "a,b\n1,2");  // no open quote: kept (a short row is skipped by its size)
}
