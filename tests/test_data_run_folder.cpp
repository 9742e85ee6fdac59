// The run-folder rules shared by `ahmsa prepare` and `ahmsa train` (train/data/run_folder.h): atomic
// writes, the resume guard, and done.json vouching for a fold's files by size and CRC-32 (torn,
// truncated, empty and edited cases).
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "test_data_helpers.h"
#include "train/data/run_folder.h"

using namespace ahmsa::data;
namespace fs = std::filesystem;

static std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST_CASE("write_file_atomic replaces the file whole and leaves no temporary behind") {
  fs::path d = testdata::temp_dir("run_folder_atomic");
  write_file_atomic(d / "a.txt", "first");
  write_file_atomic(d / "a.txt", std::string("second\0with nul", 15));
  CHECK(slurp(d / "a.txt") == std::string("second\0with nul", 15));
  CHECK_FALSE(fs::exists(d / "a.txt.tmp"));
  CHECK_THROWS_WITH_AS(write_file_atomic(d / "no_such_dir" / "b.txt", "x"), doctest::Contains("no_such_dir/b.txt.tmp"), std::runtime_error);
  fs::remove_all(d);
}

TEST_CASE("crc32_hex is zlib's CRC-32") {
  CHECK(crc32_hex("123456789") == "cbf43926");  // the standard check value
  CHECK(crc32_hex("") == "00000000");
}

TEST_CASE("read_json_file names the file and tells an empty file from a torn one") {
  fs::path d = testdata::temp_dir("run_folder_json");
  testdata::write_text(d / "empty.json", "");
  testdata::write_text(d / "torn.json", "{\n  \"fold\": 1,\n  \"na");
  CHECK_THROWS_WITH_AS(read_json_file(d / "empty.json"), doctest::Contains("empty.json' is empty"), std::runtime_error);
  CHECK_THROWS_WITH_AS(read_json_file(d / "torn.json"), doctest::Contains("torn.json' is not valid JSON (20 bytes"), std::runtime_error);
  CHECK_THROWS_WITH_AS(read_json_file(d / "missing.json"), doctest::Contains("cannot read"), std::runtime_error);
  fs::remove_all(d);
}

TEST_CASE("check_resume: a new folder, the same signature, and every difference named") {
  fs::path d = testdata::temp_dir("run_folder_guard");
  nlohmann::ordered_json sig = {{"epochs", 30}, {"optimizer", "adamw"}, {"lr", 0.001}};
  CHECK_FALSE(check_resume(d / "config.json", sig, "--out"));
  write_file_atomic(d / "config.json", nlohmann::ordered_json{{"signature", sig}, {"version", "x"}}.dump(2));
  CHECK(check_resume(d / "config.json", sig, "--out"));
  nlohmann::ordered_json other = sig;
  other["epochs"] = 7;
  other["optimizer"] = "sgd";
  other.erase("lr");
  other["seed"] = 2;
  try {
    check_resume(d / "config.json", other, "--out");
    FAIL("a different signature was accepted");
  } catch (const RunMismatch& e) {
    const std::string m = e.what();
    CHECK(m.find("holds a run with other settings or data") != std::string::npos);
    CHECK(m.find("epochs: there 30, now 7") != std::string::npos);
    CHECK(m.find("optimizer: there adamw, now sgd") != std::string::npos);
    CHECK(m.find("lr: there 0.001, not a setting now") != std::string::npos);
    CHECK(m.find("seed: not recorded there, now 2") != std::string::npos);
    CHECK(m.find("use another --out") != std::string::npos);
  }
  // A string signature (prepare's) compares whole.
  write_file_atomic(d / "manifest.json", nlohmann::ordered_json{{"signature", "flow=tvl1; size=28"}}.dump(2));
  CHECK(check_resume(d / "manifest.json", "flow=tvl1; size=28", "--out"));
  CHECK_THROWS_WITH_AS(check_resume(d / "manifest.json", "flow=tvl1; size=32", "--out"), doctest::Contains("now:   flow=tvl1; size=32"),
                       RunMismatch);
  // A torn record cannot be compared: refused with the reason, never taken as a match.
  testdata::write_text(d / "torn.json", "{\"signature\": {\"epo");
  CHECK_THROWS_WITH_AS(check_resume(d / "torn.json", sig, "--out"), doctest::Contains("not valid JSON"), RunMismatch);
  fs::remove_all(d);
}

TEST_CASE("done.json vouches for the fold's files; truncated, edited, missing files and empty or torn done.json are caught") {
  fs::path d = testdata::temp_dir("run_folder_done");
  fs::create_directories(d / "fold_01");
  const fs::path f = d / "fold_01";
  CHECK(read_done(f).kind == DoneState::Missing);
  write_file_atomic(f / "log.csv", "epoch,loss\n1,0.5\n");
  write_file_atomic(f / "model.safetensors", std::string(1000, 'm'));
  write_done(f, {{"fold", 1}, {"name", "sub01"}}, {"log.csv", "model.safetensors"});
  DoneState ok = read_done(f);
  REQUIRE(ok.kind == DoneState::Valid);
  CHECK(ok.record["name"] == "sub01");
  CHECK(ok.record["files"]["model.safetensors"]["bytes"] == 1000);
  CHECK(ok.record["files"]["log.csv"]["crc32"] == crc32_hex("epoch,loss\n1,0.5\n"));

  SUBCASE("a truncated model") {
    std::ofstream(f / "model.safetensors", std::ios::binary) << std::string(600, 'm');
    DoneState s = read_done(f);
    CHECK(s.kind == DoneState::Invalid);
    CHECK(s.reason.find("model.safetensors' is 600 bytes") != std::string::npos);
    CHECK(s.reason.find("says 1000") != std::string::npos);
  }
  SUBCASE("an edited log of the same size") {
    std::ofstream(f / "log.csv", std::ios::binary) << "epoch,loss\n1,0.6\n";
    DoneState s = read_done(f);
    CHECK(s.kind == DoneState::Invalid);
    CHECK(s.reason.find("log.csv' has CRC-32") != std::string::npos);
  }
  SUBCASE("a missing file") {
    fs::remove(f / "log.csv");
    DoneState s = read_done(f);
    CHECK(s.kind == DoneState::Invalid);
    CHECK(s.reason.find("log.csv' is missing") != std::string::npos);
  }
  SUBCASE("an empty done.json") {
    std::ofstream(f / "done.json", std::ios::binary | std::ios::trunc);
    DoneState s = read_done(f);
    CHECK(s.kind == DoneState::Invalid);
    CHECK(s.reason.find("done.json' is empty") != std::string::npos);
  }
  SUBCASE("a torn done.json") {
    const std::string full = slurp(f / "done.json");
    std::ofstream(f / "done.json", std::ios::binary | std::ios::trunc) << full.substr(0, full.size() / 2);
    DoneState s = read_done(f);
    CHECK(s.kind == DoneState::Invalid);
    CHECK(s.reason.find("is not valid JSON") != std::string::npos);
  }
  SUBCASE("a done.json that vouches for nothing (an older format)") {
    std::ofstream(f / "done.json", std::ios::binary | std::ios::trunc) << "{\"fold\": 1, \"name\": \"sub01\"}";
    DoneState s = read_done(f);
    CHECK(s.kind == DoneState::Invalid);
    CHECK(s.reason.find("lists no files") != std::string::npos);
  }
  fs::remove_all(d);
}

TEST_CASE("fold folder names") {
  CHECK(fold_dir_name(0, 20) == "fold_01");
  CHECK(fold_dir_name(67, 68) == "fold_68");
  CHECK(fold_dir_name(4, 120) == "fold_005");
}

TEST_CASE("StopOnSignal turns SIGINT and SIGTERM into a flag while it lives") {
  CHECK(stop_signal() == 0);
  {
    StopOnSignal guard;
    std::raise(SIGTERM);
    CHECK(stop_signal() == SIGTERM);
    CHECK(stop_requested());
    Interrupted e(stop_signal(), "x");
    CHECK(e.exit_status() == 143);
  }
  {
    StopOnSignal guard;  // a new guard starts clear
    CHECK(stop_signal() == 0);
    std::raise(SIGINT);
    CHECK(stop_signal() == SIGINT);
    CHECK(Interrupted(SIGINT, "x").exit_status() == 130);
  }
  CHECK(std::string(signal_name(SIGINT)) == "SIGINT");
}
