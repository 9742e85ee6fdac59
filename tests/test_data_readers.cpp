// Dataset readers on small fixture trees in each dataset's layout, with the annotation defects of
// shared/spec/DATASETS.md planted in them.
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/test_data_helpers.h"
#include "train/data/datasets.h"

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
