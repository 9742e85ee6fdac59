// Dataset readers on small fixture trees in each dataset's layout, with the annotation defects of
// shared/spec/DATASETS.md planted in them.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include "tests/test_data_helpers.h"
#include "train/data/datasets.h"
#include "train/data/prepare.h"

using namespace ahmsa::data;
namespace fs = std::filesystem;

static const Sample* find(const SampleList& l, const std::string& clip) {
  for (auto& s : l.samples)
    if (s.clip == clip) return &s;
  return nullptr;
}

static bool warned(const ReadReport& r, const std::string& a, const std::string& b = "") {
  for (auto& w : r.warnings)
    if (w.find(a) != std::string::npos && w.find(b) != std::string::npos) return true;
  return false;
}

// The summary's arithmetic: clips and subjects counted apart, each adding up.
static void check_counts(const ReadReport& r) {
  int skipped = 0;
  for (auto& [k, v] : r.skipped) skipped += v;
  CHECK(r.rows == r.kept + skipped + r.dropped_by_protocol);
  CHECK(r.subjects_seen == r.subjects_kept + r.subjects_without_clip + r.subjects_not_given);
  std::string s = r.summary();
  CHECK(s.find(std::to_string(r.rows) + " annotated clips seen: " + std::to_string(r.kept) + " kept, " + std::to_string(skipped) +
               " skipped, " + std::to_string(r.dropped_by_protocol) + " not in the protocol's classes") != std::string::npos);
  CHECK(s.find(std::to_string(r.subjects_seen) + " subjects seen: " + std::to_string(r.subjects_kept) + " with a kept clip, " +
               std::to_string(r.subjects_without_clip) + " without a usable clip") != std::string::npos);
  CHECK(s.find("subjects without") == std::string::npos);  // no longer mixed into the clips' skip reasons
}

static void frames(const fs::path& dir, const std::string& prefix, int first, int last, const char* fmt = "%d",
                   const std::string& ext = ".jpg") {
  for (int n = first; n <= last; ++n) {
    char num[32];
    std::snprintf(num, sizeof num, fmt, n);
    testdata::write_frame(dir / (prefix + num + ext), n);
  }
}

static std::vector<std::vector<std::string>> casme2_sheet() {
  return {{"Subject", "Filename", "Unnamed: 2", "OnsetFrame", "ApexFrame", "OffsetFrame", "Unnamed: 6", "Action Units",
           "Estimated Emotion"},
          {"01", "EP02_01f", "", "46", "48", "50", "", "12", "happiness"},
          {"1", "EP03_02", "", "10", "/", "14", "", "4", "disgust"},  // missing apex
          {"02", "EP01_01", "", "5", "7", "9", "", "4+7", "repression"},
          {"02", "EP01_01", "", "5", "7", "9", "", "4+7", "repression"},  // duplicate
          {"02", "EP04_04", "", "5", "12", "9", "", "1+2", "surprise"},   // apex after offset
          {"03", "EP05_05", "", "1", "2", "3", "", "4", "fear"},          // not in the composite classes
          {"04", "EP06_01", "", "1", "2", "3", "", "1", "surprise"},      // folder missing
          {"02", "EP07_01", "", "100", "101", "103", "", "1", "surprise"}};  // frames missing
}

static void casme2_tree(const fs::path& base, const std::string& prefix) {
  frames(base / "sub01" / "EP02_01f", prefix, 46, 50);
  frames(base / "sub01" / "EP03_02", prefix, 10, 14);
  frames(base / "sub02" / "EP01_01", prefix, 5, 9);
  frames(base / "sub02" / "EP04_04", prefix, 5, 9);
  frames(base / "sub03" / "EP05_05", prefix, 1, 3);
  frames(base / "sub02" / "EP07_01", prefix, 1, 3);
}

TEST_CASE("CASME II raw release with the xlsx coding sheet") {
  auto root = testdata::temp_dir("casme2raw");
  casme2_tree(root / "CASME2_RAW_selected", "img");
  testdata::write_xlsx(root / "CASME2-coding-20140508.xlsx", casme2_sheet());
  SampleList l = read_casme2(root.string(), (root / "CASME2-coding-20140508.xlsx").string());
  REQUIRE(l.samples.size() == 3);
  const Sample* a = find(l, "EP02_01f");
  REQUIRE(a);
  CHECK(a->subject == "casme2/sub01");
  CHECK(a->onset == 46);
  CHECK(a->apex == 48);
  CHECK(a->offset == 50);
  CHECK(fs::path(a->onset_path).filename() == "img46.jpg");
  CHECK(fs::path(a->apex_path).filename() == "img48.jpg");
  CHECK(a->label == 1);
  CHECK(find(l, "EP01_01")->label == 0);
  const ReadReport& r = l.report;
  CHECK(r.rows == 8);
  CHECK(r.kept == 3);
  CHECK(r.skipped.at("missing apex") == 1);
  CHECK(r.skipped.at("duplicate clip") == 1);
  CHECK(r.skipped.count("apex outside [onset, offset]") == 0);  // repaired, not dropped
  CHECK(r.repaired.at("apex outside [onset, offset]") == 1);
  CHECK(r.skipped.at("clip folder missing") == 1);
  CHECK(r.skipped.at("missing frames") == 1);
  CHECK(r.subjects_seen == 4);
  CHECK(r.subjects_kept == 2);
  CHECK(r.subjects_without_clip == 2);  // sub03 (dropped fear) and sub04
  CHECK(r.dropped_by_protocol == 1);
  check_counts(r);
  CHECK(warned(r, "EP03_02", "apex '/'"));
  // apex 12 after offset 9: the middle frame of 5..9
  CHECK(warned(r, "sub02/EP04_04 (sheet row 6)", "apex 12 outside [5, 9] (after the offset): using the middle frame 7"));
  CHECK(find(l, "EP04_04")->apex == 7);
  CHECK(find(l, "EP04_04")->apex_estimated);
  CHECK(fs::path(find(l, "EP04_04")->apex_path).filename() == "img7.jpg");
  CHECK(find(l, "EP04_04")->repair_text() == "apex 12 outside [5, 9] (after the offset): using the middle frame 7");
  CHECK(!a->apex_estimated);
  CHECK(a->repairs.empty());
  CHECK(warned(r, "EP06_01", "not found"));
  CHECK(warned(r, "EP07_01", "frame 100"));
  CHECK(l.class_names == std::vector<std::string>{"negative", "positive", "surprise"});

  // The 5-class protocol keeps surprise/others and drops fear; sheet ids follow class_names.
  SampleList five = read_casme2(root.string(), (root / "CASME2-coding-20140508.xlsx").string(), Protocol::Casme2_5);
  CHECK(find(five, "EP02_01f")->label == 0);
  CHECK(find(five, "EP01_01")->label == 3);
  CHECK(five.class_names[3] == "repression");

  // --strict drops the defective clip, as before the repairs.
  ReadOptions strict;
  strict.strict = true;
  SampleList st = read_casme2(root.string(), (root / "CASME2-coding-20140508.xlsx").string(), Protocol::Composite3, strict);
  CHECK(st.samples.size() == 2);
  CHECK(st.report.skipped.at("apex outside [onset, offset]") == 1);
  CHECK(st.report.repaired.empty());
  CHECK(warned(st.report, "EP04_04", "apex 12 outside [5, 9] (after the offset) (--strict): skipped"));
  check_counts(st.report);
}

TEST_CASE("CASME II cropped release with a CSV export") {
  auto root = testdata::temp_dir("casme2crop");
  casme2_tree(root / "Cropped", "reg_img");
  testdata::write_text(root / "coding.csv",
                       "Subject,Filename,,OnsetFrame,ApexFrame,OffsetFrame,,Action Units,Estimated Emotion\n"
                       "1,EP02_01f,,46,47,50,,12,happiness\n2,EP01_01,,5,6,,,4,disgust\n");
  SampleList l = read_casme2(root.string(), (root / "coding.csv").string());
  REQUIRE(l.samples.size() == 2);
  CHECK(fs::path(find(l, "EP02_01f")->apex_path).filename() == "reg_img47.jpg");
  // Offset left empty: the last frame is used and said so.
  CHECK(find(l, "EP01_01")->offset == 9);
  CHECK(warned(l.report, "EP01_01", "offset not annotated: using the last frame 9 of the folder"));
  CHECK(find(l, "EP01_01")->repair_text() == "offset not annotated: using the last frame 9 of the folder");
  CHECK(l.report.repaired.at("offset not annotated") == 1);
  CHECK(l.report.skipped.empty());
  check_counts(l.report);
  // Pointing at Cropped/ itself works too.
  CHECK(read_casme2((root / "Cropped").string(), (root / "coding.csv").string()).samples.size() == 2);
}

TEST_CASE("SAMM: 13 preamble rows, 4- or 5-digit frame numbers, apex defects") {
  auto root = testdata::temp_dir("samm");
  auto base = root / "SAMM";
  frames(base / "006" / "006_1_2", "006_", 5562, 5566, "%05d");
  frames(base / "007" / "007_3_1", "007_", 98, 103, "%04d");
  frames(base / "028" / "028_4_1", "028_", 10, 14, "%04d");
  frames(base / "032" / "032_3_1", "032_", 10, 14, "%04d");
  std::vector<std::vector<std::string>> sheet(13, std::vector<std::string>{});
  sheet[0] = {"SAMM Micro FACS codes"};
  sheet.push_back({"Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Micro",
                   "Action Units", "Estimated Emotion", "Objective Classes", "Notes"});
  sheet.push_back({"6", "006_1_2", "1", "5562", "5564", "5566", "5", "Micro - 1/2", "R14", "Contempt", "3", ""});
  sheet.push_back({"7", "007_3_1", "3", "98", "100", "103", "6", "Micro - 1/2", "12", "Happiness", "1", ""});
  sheet.push_back({"28", "028_4_1", "4", "10", "15", "14", "5", "Micro - 1/2", "4", "Anger", "2", ""});
  sheet.push_back({"32", "032_3_1", "3", "10", "9", "14", "5", "Micro - 1/2", "4", "Sadness", "6", ""});
  sheet.push_back({"7", "007_5_1", "5", "1", "2", "3", "3", "Micro - 1/2", "4", "Other", "7", ""});
  testdata::write_xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", sheet);
  SampleList l = read_samm(root.string(), (root / "SAMM_Micro_FACS_Codes_v2.xlsx").string());
  REQUIRE(l.samples.size() == 4);
  const Sample* a = find(l, "006_1_2");
  REQUIRE(a);
  CHECK(a->subject == "samm/006");
  CHECK(fs::path(a->apex_path).filename() == "006_05564.jpg");
  CHECK(a->label == 0);
  const Sample* b = find(l, "007_3_1");
  CHECK(fs::path(b->onset_path).filename() == "007_0098.jpg");
  CHECK(b->label == 1);
  // Both defective clips are kept with the middle frame of 10..14.
  CHECK(l.report.repaired.at("apex outside [onset, offset]") == 2);
  CHECK(warned(l.report, "028_4_1", "apex 15 outside [10, 14] (after the offset): using the middle frame 12"));
  CHECK(warned(l.report, "032_3_1", "apex 9 outside [10, 14] (before the onset): using the middle frame 12"));
  CHECK(find(l, "028_4_1")->apex == 12);
  CHECK(fs::path(find(l, "032_3_1")->apex_path).filename() == "032_0012.jpg");
  CHECK(l.report.dropped_by_protocol == 1);
  check_counts(l.report);
  ReadOptions strict;
  strict.strict = true;
  SampleList st = read_samm(root.string(), (root / "SAMM_Micro_FACS_Codes_v2.xlsx").string(), Protocol::Composite3, strict);
  CHECK(st.samples.size() == 2);
  CHECK(st.report.skipped.at("apex outside [onset, offset]") == 2);
  CHECK(warned(st.report, "032_3_1", "apex 9 outside [10, 14] (before the onset) (--strict): skipped"));
  check_counts(st.report);
}

static void smic_tree(const fs::path& root) {
  auto hs = root / "HS";
  frames(hs / "s1" / "micro" / "negative" / "s1_ne_01", "image", 100, 104, "%d", ".bmp");
  frames(hs / "s1" / "micro" / "positive" / "s1_po_01", "image", 200, 205, "%d", ".bmp");
  frames(hs / "s2" / "micro" / "surprise" / "s2_sur_01", "image", 7, 7, "%d", ".bmp");  // one frame only
}

TEST_CASE("SMIC-HS: labels from folders, apex = middle frame, stated") {
  auto root = testdata::temp_dir("smic");
  smic_tree(root);
  SampleList l = read_smic(root.string());
  REQUIRE(l.samples.size() == 2);
  const Sample* a = find(l, "s1_ne_01");
  REQUIRE(a);
  CHECK(a->subject == "smic/s01");
  CHECK(a->label == 0);
  CHECK(a->onset == 100);
  CHECK(a->apex == 102);
  CHECK(a->offset == 104);
  CHECK(a->apex_estimated);
  const Sample* b = find(l, "s1_po_01");
  CHECK(b->apex == 202);  // six frames 200..205: the middle in file order is index (6-1)/2 = 2
  CHECK(b->label == 1);
  CHECK(l.report.skipped.at("no frames") == 1);
  CHECK(l.report.subjects_without_clip == 1);
  check_counts(l.report);
  REQUIRE(l.report.notes.size() == 1);
  CHECK(l.report.notes[0].find("middle frame") != std::string::npos);
}

TEST_CASE("CAS(ME)^3 Part A: clips sharing a video letter, 3/4/7-class protocols") {
  auto root = testdata::temp_dir("casme3");
  frames(root / "spNO.1" / "a" / "color", "", 175, 190);
  frames(root / "spNO.2" / "b" / "color", "", 1, 5);
  testdata::write_text(root / "labels.csv",
                       "Subject,Filename,Onset,Apex,Offset,AU,Objective class,emotion\n"
                       "spNO.1,a,175,178,180,L12,1,happy\n"
                       "spNO.1,a,182,185,190,4,2,disgust\n"
                       "spNO.2,b,1,3,5,1+2,3,others\n");
  auto l3 = read_casme3(root.string(), (root / "labels.csv").string(), Protocol::Casme3_3);
  REQUIRE(l3.samples.size() == 2);
  CHECK(find(l3, "a_175")->label == 1);
  CHECK(find(l3, "a_182")->label == 0);
  CHECK(find(l3, "a_182")->subject == "casme3/spNO.1");
  CHECK(fs::path(find(l3, "a_182")->apex_path).filename() == "185.jpg");
  CHECK(l3.report.skipped.count("duplicate clip") == 0);
  auto l4 = read_casme3(root.string(), (root / "labels.csv").string(), Protocol::Casme3_4);
  REQUIRE(l4.samples.size() == 3);
  CHECK(find(l4, "b_1")->label == 3);
  auto l7 = read_casme3(root.string(), (root / "labels.csv").string(), Protocol::Casme3_7);
  REQUIRE(l7.samples.size() == 3);
  CHECK(l7.class_names[find(l7, "a_175")->label] == "happy");
  CHECK(l7.class_names[find(l7, "b_1")->label] == "others");
}

TEST_CASE("MEGC2019 composite: the CSV defines the list and the labels") {
  auto root = testdata::temp_dir("composite");
  casme2_tree(root / "casme2", "img");
  testdata::write_xlsx(root / "casme2.xlsx", casme2_sheet());
  smic_tree(root / "smic");
  frames(root / "samm" / "006" / "006_1_2", "006_", 5562, 5566, "%05d");
  frames(root / "samm" / "007" / "007_3_1", "007_", 98, 103, "%04d");
  testdata::write_text(root / "samm.csv",
                       "Subject,Filename,Inducement Code,Onset Frame,Apex Frame,Offset Frame,Estimated Emotion\n"
                       "006,006_1_2,1,5562,5564,5566,Contempt\n007,007_3_1,1,98,100,103,Anger\n");
  testdata::write_text(root / "composite.csv",
                       "casme2,sub01,EP02_01f,1\n"
                       "casme2,sub02,EP01_01,0\n"
                       "casme2,sub01,EP03_02,0\n"   // missing apex in the sheet
                       "casme2,sub09,EP99_01,0\n"   // not in the dataset
                       "smic,s01,s01_ne_01,0\n"
                       "smic,s01,s01_po_01,1\n"
                       "samm,6,006_1_2,0\n"
                       "samm,7,007_3_1,2\n"         // sheet says Anger (negative): disagreement
                       "samm,7,007_3_1,2\n");       // listed twice
  CompositeSources src;
  src.composite_csv = (root / "composite.csv").string();
  src.casme2_root = (root / "casme2").string(), src.casme2_annotations = (root / "casme2.xlsx").string();
  src.samm_root = (root / "samm").string(), src.samm_annotations = (root / "samm.csv").string();
  src.smic_root = (root / "smic").string();
  SampleList l = read_composite(src);
  REQUIRE(l.samples.size() == 6);
  CHECK(find(l, "s1_ne_01")->subject == "smic/s01");
  CHECK(find(l, "s1_po_01")->label == 1);
  CHECK(find(l, "007_3_1")->label == 2);
  CHECK(warned(l.report, "007_3_1", "using the CSV label"));
  CHECK(l.report.skipped.at("missing apex") == 1);
  CHECK(warned(l.report, "EP03_02", "apex '/'"));
  CHECK(l.report.skipped.count("apex outside [onset, offset]") == 0);  // EP04_04 is not in the CSV
  REQUIRE(l.report.notes.size() == 1);
  CHECK(l.report.skipped.at("not found in the dataset") == 1);
  CHECK(l.report.skipped.at("duplicate clip") == 1);
  CHECK(warned(l.report, "EP99_01", "no such clip"));
  CHECK(warned(l.report, "sub09", "no usable clip"));
  CHECK(l.report.rows == 9);
  check_counts(l.report);

  // Only one dataset given: the others' rows are counted, not lost silently.
  CompositeSources only_smic;
  only_smic.composite_csv = src.composite_csv, only_smic.smic_root = src.smic_root;
  SampleList s = read_composite(only_smic);
  CHECK(s.samples.size() == 2);
  CHECK(s.report.skipped.at("dataset not given") == 7);
  CHECK(s.report.subjects_not_given == 5);  // casme2 sub01, sub02, sub09; samm 006, 007
  check_counts(s.report);
}

TEST_CASE("frame numbering and subject spellings") {
  auto d = testdata::temp_dir("frames");
  for (auto n : {"img46.jpg", "reg_img7.jpg", "006_05562.jpg", "image559740.bmp", "notes.txt", "x.png"})
    testdata::write_text(d / n, "x");
  auto f = list_frames(d.string());
  CHECK(f.size() == 4);
  CHECK(f.count(46));
  CHECK(f.count(7));
  CHECK(f.count(5562));
  CHECK(f.count(559740));
  CHECK(canonical_subject("casme2", "1") == "casme2/sub01");
  CHECK(canonical_subject("casme2", "sub01") == "casme2/sub01");
  CHECK(canonical_subject("samm", "6") == "samm/006");
  CHECK(canonical_subject("smic", "s1") == "smic/s01");
  CHECK(canonical_subject("casme3", "spNO.12") == "casme3/spNO.12");
  CHECK(canonical_clip("smic", "s01_ne_01") == canonical_clip("smic", "s1_ne_01"));
  CHECK_THROWS_AS(read_casme2((d / "nope").string(), "x.csv"), DataError);
}

TEST_CASE("frame numbers beyond int are refused with the row, not wrapped to negative frames") {
  auto root = testdata::temp_dir("casme2_huge");
  casme2_tree(root / "Cropped", "reg_img");
  // 3000000000 once became frame -2147483648; 1e300 and inf were undefined casts.
  testdata::write_text(root / "coding.csv",
                       "Subject,Filename,,OnsetFrame,ApexFrame,OffsetFrame,,Action Units,Estimated Emotion\r"
                       "1,EP02_01f,,3000000000,47,50,,12,happiness\r"
                       "2,EP01_01,,5,1e300,9,,4,disgust\r"
                       "2,EP04_04,,inf,6,9,,1,surprise\r"
                       "1,EP03_02,,10,12,14,,4,disgust\r");  // CR-only line ends, too
  SampleList l = read_casme2(root.string(), (root / "coding.csv").string());
  REQUIRE(l.samples.size() == 1);
  CHECK(l.samples[0].clip == "EP03_02");
  CHECK(l.samples[0].onset == 10);
  CHECK(l.report.skipped.at("missing onset") == 2);
  CHECK(l.report.skipped.at("missing apex") == 1);
  check_counts(l.report);
  CHECK(warned(l.report, "sheet row 2", "onset '3000000000' is not a frame number"));
  CHECK(warned(l.report, "sheet row 3", "apex '1e300' is not a frame number"));
  // a frame file numbered beyond int is not a frame (it used to wrap onto another number)
  testdata::write_frame(root / "Cropped" / "sub01" / "EP03_02" / "reg_img99999999999.jpg", 1);
  auto fr = list_frames((root / "Cropped" / "sub01" / "EP03_02").string());
  CHECK(fr.size() == 5);
  CHECK(fr.begin()->first == 10);
  CHECK(fr.rbegin()->first == 14);
}

// Frames onset..offset (or just the listed numbers) as hard links of a few tiny images: cheap trees.
static void linked_frames(const fs::path& dir, const std::string& prefix, const std::vector<int>& numbers, const char* fmt,
                          const fs::path& pool) {
  static int made = 0;
  fs::create_directories(dir);
  for (int n : numbers) {
    fs::path src = pool / ("f" + std::to_string(made++ % 3) + ".png");
    if (!fs::exists(src)) testdata::write_frame(src, made % 3);
    char num[32];
    std::snprintf(num, sizeof num, fmt, n);
    fs::create_hard_link(src, dir / (prefix + num + ".jpg"));
  }
}

static std::vector<int> range(int a, int b) {
  std::vector<int> v;
  for (int n = a; n <= b; ++n) v.push_back(n);
  return v;
}

TEST_CASE("CAS(ME)^3: an inverted interval is reordered, an offset of 0 is the video's last frame") {
  auto root = testdata::temp_dir("casme3_repairs");
  auto pool = root / "pool";
  linked_frames(root / "spNO.216" / "d" / "color", "", {2694, 3000, 3647, 3700}, "%d", pool);
  linked_frames(root / "spNO.149" / "d" / "color", "", range(100, 130), "%d", pool);
  linked_frames(root / "spNO.1" / "a" / "color", "", range(170, 400), "%d", pool);
  testdata::write_text(root / "labels.csv",
                       "Subject,Filename,Onset,Apex,Offset,AU,Objective class,emotion\n"
                       "spNO.216,d,3647,3000,2694,4,2,disgust\n"  // "[3647, 2694]": onset after offset
                       "spNO.149,d,112,105,130,4,2,fear\n"        // apex before onset
                       "spNO.1,a,175,178,0,12,1,happy\n");        // offset annotated as 0
  auto l = read_casme3(root.string(), (root / "labels.csv").string(), Protocol::Casme3_3);
  REQUIRE(l.samples.size() == 3);
  const Sample* inv = find(l, "d_3647");  // still named by the onset as annotated
  REQUIRE(inv);
  CHECK(inv->onset == 2694);
  CHECK(inv->apex == 3000);
  CHECK(inv->offset == 3647);
  CHECK(!inv->apex_estimated);
  CHECK(fs::path(inv->onset_path).filename() == "2694.jpg");
  CHECK(warned(l.report, "casme3 casme3/spNO.216/d_3647 (sheet row 2)",
               "onset 3647 > offset 2694 (interval [3647, 2694] inverted): reordered to [2694, 3647]"));
  CHECK(inv->repair_text() == "onset 3647 > offset 2694 (interval [3647, 2694] inverted): reordered to [2694, 3647]");
  const Sample* early = find(l, "d_112");
  REQUIRE(early);
  CHECK(early->apex == 121);  // frames 112..130: index (19-1)/2
  CHECK(warned(l.report, "spNO.149/d_112", "apex 105 outside [112, 130] (before the onset): using the middle frame 121"));
  const Sample* zero = find(l, "a_175");
  REQUIRE(zero);
  CHECK(zero->offset == 400);
  CHECK(warned(l.report, "spNO.1/a_175", "offset annotated as '0': using the last frame 400 of the folder"));
  CHECK(warned(l.report, "spNO.1/a_175", "a CAS(ME)^3 folder holds the whole video: this is the video's last frame"));
  CHECK(l.report.repaired.at("onset > offset") == 1);
  CHECK(l.report.repaired.at("apex outside [onset, offset]") == 1);
  CHECK(l.report.repaired.at("offset not annotated") == 1);
  CHECK(l.report.summary().find("repaired 1 (kept): onset > offset") != std::string::npos);
  check_counts(l.report);

  ReadOptions strict;
  strict.strict = true;
  auto st = read_casme3(root.string(), (root / "labels.csv").string(), Protocol::Casme3_3, strict);
  CHECK(st.samples.size() == 1);  // the offset-0 clip is kept either way (only onset and apex are used)
  CHECK(st.report.skipped.at("onset > offset") == 1);
  CHECK(st.report.skipped.at("apex outside [onset, offset]") == 1);
  CHECK(warned(st.report, "spNO.216/d_3647", "onset 3647 > offset 2694 (interval [3647, 2694] inverted) (--strict): skipped"));
  check_counts(st.report);
}

TEST_CASE("onset = apex: a warning, or --fix-onset-apex median|middle, recorded per clip") {
  auto root = testdata::temp_dir("onset_apex");
  auto pool = root / "pool";
  auto base = root / "Cropped";
  linked_frames(base / "sub05" / "EP09_05f", "reg_img", range(10, 20), "%d", pool);
  linked_frames(base / "sub01" / "EP01_01", "reg_img", range(1, 9), "%d", pool);
  linked_frames(base / "sub01" / "EP01_02", "reg_img", range(1, 9), "%d", pool);
  linked_frames(base / "sub02" / "EP02_01", "reg_img", range(1, 9), "%d", pool);
  linked_frames(base / "sub02" / "EP02_02", "reg_img", {30, 31, 33, 40}, "%d", pool);
  testdata::write_text(root / "coding.csv",
                       "Subject,Filename,,OnsetFrame,ApexFrame,OffsetFrame,,Action Units,Estimated Emotion\n"
                       "05,EP09_05f,,10,10,20,,12,happiness\n"   // onset = apex
                       "01,EP01_01,,1,3,9,,4,disgust\n"          // apex offsets 2, 4, 7, 3: median 3
                       "01,EP01_02,,1,5,9,,4,disgust\n"
                       "02,EP02_01,,1,8,9,,4,repression\n"
                       "03,EP03_01,,4,7,12,,4,fear\n"            // dropped by the protocol, in the median's sample
                       "02,EP02_02,,30,30,40,,1,surprise\n");    // onset = apex; frames 30, 31, 33, 40 only
  const std::string csv = (root / "coding.csv").string();

  SampleList none = read_casme2(root.string(), csv);
  REQUIRE(none.samples.size() == 5);
  CHECK(find(none, "EP09_05f")->apex == 10);
  CHECK(none.report.flagged.at("onset = apex") == 2);
  CHECK(none.report.repaired.empty());
  CHECK(warned(none.report, "sub05/EP09_05f", "onset = apex = 10 (the onset->apex flow is zero): kept as annotated"));
  CHECK(find(none, "EP09_05f")->repair_text().empty());  // nothing was changed
  CHECK(none.report.summary().find("kept as annotated 2, with a warning: onset = apex") != std::string::npos);
  check_counts(none.report);

  ReadOptions med;
  med.onset_apex = OnsetApexFix::Median;
  SampleList m = read_casme2(root.string(), csv, Protocol::Composite3, med);
  REQUIRE(m.samples.size() == 5);
  CHECK(find(m, "EP09_05f")->apex == 13);
  CHECK(find(m, "EP09_05f")->apex_estimated);
  CHECK(fs::path(find(m, "EP09_05f")->apex_path).filename() == "reg_img13.jpg");
  CHECK(find(m, "EP09_05f")->repair_text() ==
        "onset = apex = 10 (the onset->apex flow is zero): using onset + the dataset's median apex offset 3 = 13");
  CHECK(find(m, "EP02_02")->apex == 33);  // 30 + 3 is a frame of the folder
  CHECK(m.report.repaired.at("onset = apex") == 2);
  bool noted = false;
  for (auto& n : m.report.notes) noted = noted || n.find("casme2: median apex offset 3 frames (over 4 sheet rows") != std::string::npos;
  CHECK(noted);
  check_counts(m.report);

  ReadOptions mid;
  mid.onset_apex = OnsetApexFix::Middle;
  SampleList d = read_casme2(root.string(), csv, Protocol::Composite3, mid);
  CHECK(find(d, "EP09_05f")->apex == 15);  // frames 10..20: index 5
  CHECK(find(d, "EP02_02")->apex == 31);   // frames 30, 31, 33, 40: index (4-1)/2 = 1
  CHECK(warned(d.report, "sub02/EP02_02", "onset = apex = 30 (the onset->apex flow is zero): using the middle frame 31"));
  CHECK(std::string(onset_apex_fix_name(OnsetApexFix::Median)) == "median");
}

TEST_CASE("blank rows are skipped silently by every reader") {
  auto root = testdata::temp_dir("blank_rows");
  casme2_tree(root / "casme2", "img");
  smic_tree(root / "smic");
  // The CSV export, with rows of empty cells between and after the clips.
  testdata::write_text(root / "casme2.csv",
                       ",,,,,,,,\n"
                       "Subject,Filename,,OnsetFrame,ApexFrame,OffsetFrame,,Action Units,Estimated Emotion\n"
                       ",,,,,,,,\n"
                       "1,EP02_01f,,46,48,50,,12,happiness\n"
                       " , ,,,,,,,\n"
                       "2,EP01_01,,5,7,9,,4,repression\n"
                       ",,,,,,,,\n\n");
  SampleList c = read_casme2((root / "casme2").string(), (root / "casme2.csv").string());
  CHECK(c.samples.size() == 2);
  CHECK(c.report.rows == 2);
  CHECK(c.report.warnings.empty());
  check_counts(c.report);
  // The same as an xlsx sheet with empty rows (Excel leaves empty cells out; a cell of spaces is blank too).
  std::vector<std::vector<std::string>> sheet = {{"Subject", "Filename", "", "OnsetFrame", "ApexFrame", "OffsetFrame", "", "AU",
                                                  "Estimated Emotion"},
                                                 {"", "", "", "", "", "", "", "", ""},
                                                 {"01", "EP02_01f", "", "46", "48", "50", "", "12", "happiness"},
                                                 {" ", "", "", " ", "", "", "", "", ""},
                                                 {"02", "EP01_01", "", "5", "7", "9", "", "4", "repression"},
                                                 {"", "", "", "", "", "", "", "", ""}};
  testdata::write_xlsx(root / "casme2.xlsx", sheet);
  SampleList x = read_casme2((root / "casme2").string(), (root / "casme2.xlsx").string());
  CHECK(x.samples.size() == 2);
  CHECK(x.report.rows == 2);
  CHECK(x.report.warnings.empty());
  // combined_3class_gt-2.csv: ",,," after every row. No "bad composite row" for them.
  testdata::write_text(root / "composite.csv",
                       "casme2,sub01,EP02_01f,1\n,,,\ncasme2,sub02,EP01_01,0\n,,,\nsmic,s01,s01_ne_01,0\n,,,\n"
                       "smic,s01,s01_po_01,1\n,,,\nsamm,6,006_1_2\n,,,\n");  // one truly bad row
  CompositeSources src;
  src.composite_csv = (root / "composite.csv").string();
  src.casme2_root = (root / "casme2").string(), src.casme2_annotations = (root / "casme2.csv").string();
  src.smic_root = (root / "smic").string();
  SampleList l = read_composite(src);
  CHECK(l.samples.size() == 4);
  CHECK(l.report.rows == 5);
  CHECK(l.report.skipped.at("bad composite row") == 1);
  int bad = 0;
  for (auto& w : l.report.warnings) bad += w.find("bad composite row") != std::string::npos || w.find("expected db,") != std::string::npos;
  CHECK(bad == 1);
  CHECK(warned(l.report, "line 9", "expected db,subject,clip,label"));
  check_counts(l.report);
  // read_composite_csv alone (the flow-folder reader's path), and a header after a leading blank line.
  testdata::write_text(root / "header.csv", ",,,\ndb,subject,clip,label\ncasme2,sub01,EP02_01f,1\n,,,\n");
  ReadReport hr;
  CHECK(read_composite_csv((root / "header.csv").string(), &hr).size() == 1);
  CHECK(hr.warnings.empty());
  CHECK(blank_row({"", " ", "\t"}));
  CHECK(!blank_row({"", "x"}));
}

// The MEGC2019 composite at full size: 442 clips of 68 subjects, with the published per-dataset
// class counts, in the published layouts (CASME II Cropped/ + xlsx, SAMM + xlsx with its 13-row
// preamble and its two defective rows, SMIC-HS folders), the CSV in its combined_3class_gt-2 form
// (",,," after every row). Frames are hard links of three tiny images; only the reader is run.
TEST_CASE("composite at full size: 442 clips of 68 subjects, the two SAMM defects repaired") {
  auto root = testdata::temp_dir("composite442");
  auto pool = root / "pool";
  std::string csv;
  auto row = [&](const std::string& db, const std::string& subject, const std::string& clip, int label) {
    csv += db + "," + subject + "," + clip + "," + std::to_string(label) + "\n,,,\n";
  };
  // Clips of each class dealt round-robin over the subjects.
  auto deal = [](int subjects, std::vector<int> per_class) {
    std::vector<std::pair<int, int>> out;  // (subject index, label)
    int k = 0;
    for (int label = 0; label < 3; ++label)
      for (int i = 0; i < per_class[label]; ++i) out.emplace_back(k++ % subjects, label);
    return out;
  };
  // CASME II: 145 clips, 24 subjects; negative 88 (disgust / repression), positive 32, surprise 25.
  std::vector<std::vector<std::string>> c2 = {
      {"Subject", "Filename", "Unnamed: 2", "OnsetFrame", "ApexFrame", "OffsetFrame", "Unnamed: 6", "Action Units", "Estimated Emotion"}};
  int n = 0;
  for (auto [s, label] : deal(24, {88, 32, 25})) {
    char sub[16], clip[16];
    std::snprintf(sub, sizeof sub, "%02d", s + 1), std::snprintf(clip, sizeof clip, "EP%02d_%02d", n / 24 + 1, n % 24), ++n;
    const char* emo = label == 1 ? "happiness" : label == 2 ? "surprise" : (n % 2 ? "disgust" : "repression");
    c2.push_back({sub, clip, "", "46", "48", "50", "", "4", emo});
    linked_frames(root / "CASME2" / "Cropped" / ("sub" + std::string(sub)) / clip, "reg_img", {46, 48, 50}, "%d", pool);
    row("casme2", "sub" + std::string(sub), clip, label);
  }
  c2.push_back({"03", "EP99_01", "", "1", "2", "3", "", "4", "fear"});  // in the sheet, not in the composite
  testdata::write_xlsx(root / "CASME2-coding-20190701.xlsx", c2);
  // SAMM: 133 clips, 28 subjects (006..033); negative 92, positive 26, surprise 15; two defective rows.
  std::vector<std::vector<std::string>> sm(13, std::vector<std::string>{});
  sm[0] = {"SAMM Micro FACS codes"};
  sm.push_back({"Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Micro",
                "Action Units", "Estimated Emotion", "Objective Classes", "Notes"});
  n = 0;
  for (auto [s, label] : deal(28, {92, 26, 15})) {
    char sub[16], clip[32];
    std::snprintf(sub, sizeof sub, "%03d", s + 6), std::snprintf(clip, sizeof clip, "%s_%d_%d", sub, n / 28 + 1, n % 28 + 10), ++n;
    const char* emo = label == 1 ? "Happiness" : label == 2 ? "Surprise" : (n % 3 ? "Anger" : "Contempt");
    sm.push_back({sub, clip, "1", "1000", "1010", "1020", "21", "Micro - 1/2", "4", emo, "1", ""});
    linked_frames(root / "SAMM" / sub / clip, std::string(sub) + "_", {1000, 1010, 1020}, "%05d", pool);
    row("samm", std::to_string(s + 6), clip, label);
  }
  // The two defects as the sheet has them (frame files 4-digit, as in those clips).
  sm.push_back({"28", "028_4_1", "4", "1120", "1143", "1134", "15", "Micro - 1/2", "4", "Anger", "2", ""});
  sm.push_back({"32", "032_3_1", "3", "4896", "1930", "4936", "41", "Micro - 1/2", "4", "Sadness", "6", ""});
  linked_frames(root / "SAMM" / "028" / "028_4_1", "028_", {1120, 1127, 1134, 1143}, "%04d", pool);
  linked_frames(root / "SAMM" / "032" / "032_3_1", "032_", {1930, 4896, 4916, 4936}, "%04d", pool);
  testdata::write_xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", sm);
  // The two replace two ordinary negative rows of the list, keeping 133 clips and 92 negatives.
  auto drop_row = [&](const std::string& line) {
    size_t at = csv.find(line);
    REQUIRE(at != std::string::npos);
    csv.erase(at, line.size() + 5);  // the line, its newline and the ",,,\n" after it
  };
  drop_row("samm,6,006_1_10,0");
  drop_row("samm,7,007_1_11,0");
  row("samm", "28", "028_4_1", 0);
  row("samm", "32", "032_3_1", 0);
  // SMIC-HS: 164 clips, 16 subjects; negative 70, positive 51, surprise 43; folders s1.., the CSV s01...
  n = 0;
  const char* folder[3] = {"negative", "positive", "surprise"};
  const char* tag[3] = {"ne", "po", "sur"};
  for (auto [s, label] : deal(16, {70, 51, 43})) {
    std::string clip = "_" + std::string(tag[label]) + "_" + std::to_string(n++ / 16 + 1);
    linked_frames(root / "HS" / ("s" + std::to_string(s + 1)) / "micro" / folder[label] / ("s" + std::to_string(s + 1) + clip), "image",
                  {559740, 559741, 559742}, "%d", pool);
    char sub[16];
    std::snprintf(sub, sizeof sub, "s%02d", s + 1);
    row("smic", sub, std::string(sub) + clip, label);
  }
  testdata::write_text(root / "combined_3class_gt-2.csv", csv);

  CompositeSources src;
  src.composite_csv = (root / "combined_3class_gt-2.csv").string();
  src.casme2_root = (root / "CASME2" / "Cropped").string();
  src.casme2_annotations = (root / "CASME2-coding-20190701.xlsx").string();
  src.samm_root = root.string();  // holds SAMM/006/..
  src.samm_annotations = (root / "SAMM_Micro_FACS_Codes_v2.xlsx").string();
  src.smic_root = root.string();  // holds HS/s1/..
  SampleList l = read_composite(src);
  CHECK(l.report.rows == 442);
  CHECK(l.report.skipped.empty());
  REQUIRE(l.samples.size() == 442);
  std::map<std::string, std::array<int, 3>> per;
  std::map<std::string, std::set<std::string>> subjects;
  for (auto& s : l.samples) per[s.dataset][s.label] += 1, subjects[s.dataset].insert(s.subject);
  CHECK(per["smic"] == std::array<int, 3>{70, 51, 43});
  CHECK(per["casme2"] == std::array<int, 3>{88, 32, 25});
  CHECK(per["samm"] == std::array<int, 3>{92, 26, 15});
  CHECK(subjects["smic"].size() == 16);
  CHECK(subjects["casme2"].size() == 24);
  CHECK(subjects["samm"].size() == 28);
  CHECK(l.report.subjects_seen == 68);
  CHECK(l.report.subjects_kept == 68);
  check_counts(l.report);
  // The repairs: exactly the two, named, and what they use.
  CHECK(l.report.repaired == std::map<std::string, int>{{"apex outside [onset, offset]", 2}});
  CHECK(l.report.repair_lines == std::vector<std::string>{
                                     "samm samm/028/028_4_1: apex 1143 outside [1120, 1134] (after the offset): using the middle frame 1127",
                                     "samm samm/032/032_3_1: apex 1930 outside [4896, 4936] (before the onset): using the middle frame 4916"});
  CHECK(find(l, "028_4_1")->apex == 1127);
  CHECK(find(l, "032_3_1")->apex == 4916);
  CHECK(fs::path(find(l, "032_3_1")->apex_path).filename() == "032_4916.jpg");
  // No blank-row noise: the only warnings are the two repairs.
  CHECK(l.report.warnings == l.report.repair_lines);
  CHECK(l.bases.at("casme2") == src.casme2_root);
  CHECK(fs::path(l.bases.at("samm")).filename() == "SAMM");

  // The cache holds all 442, and its manifest says which two were repaired (Farneback at 16 px: ~1.5 s).
  PrepareOptions po;
  po.out_dir = (root / "cache").string();
  po.flow.method = ahmsa::flow::Method::Farneback;
  po.size = 8, po.crop_size = 16, po.threads = 2, po.progress = false, po.contact_tiles = 0;
  po.crop_by_dataset = {{"casme2", auto_crop_mode(l, "casme2", false, true)}, {"samm", CropMode::None}, {"smic", CropMode::None}};
  CHECK(po.crop_by_dataset["casme2"] == CropMode::None);  // its Cropped/ folder, wherever its rows are in the CSV
  CHECK(auto_crop_mode(l, "samm", false, true) == CropMode::Detect);
  PrepareReport pr = prepare_flow_cache(l, po);
  CHECK(pr.computed == 442);
  CHECK(pr.failed == 0);
  Table m = read_csv(pr.manifest_csv);
  REQUIRE(m.size() == 443);
  int c_rep = find_column(m[0], {"repairs"}), repaired = 0;
  REQUIRE(c_rep >= 0);
  for (size_t i = 1; i < m.size(); ++i) repaired += !m[i][c_rep].empty();
  CHECK(repaired == 2);

  // --strict: the two are dropped, as before.
  ReadOptions strict;
  strict.strict = true;
  SampleList st = read_composite(src, strict);
  CHECK(st.samples.size() == 440);
  CHECK(st.report.skipped.at("apex outside [onset, offset]") == 2);
  check_counts(st.report);
}
