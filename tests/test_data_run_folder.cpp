// The run-folder rules shared by `ahmsa prepare` and `ahmsa train` (train/data/run_folder.h): atomic
// writes, the resume guard, and done.json vouching for a fold's files by size and CRC-32 (torn,
// truncated, empty and edited cases), and the claims that let several processes share one run
// (exclusive creation, who is alive, timeouts, --reclaim, takeover races, the heartbeat).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

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
  for (const auto& e : fs::directory_iterator(d)) CHECK(e.path().filename() == "a.txt");  // no temporary left
  CHECK(temp_path(d / "a.txt").filename().string().rfind("a.txt.tmp.", 0) == 0);
  CHECK(temp_path(d / "a.txt").string().find("." + std::to_string(::getpid())) != std::string::npos);
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

// ------------------------------------------------------------------ claims

static void set_age(const fs::path& p, double seconds) {  // mtime = now - seconds
  struct timespec t[2];
  ::clock_gettime(CLOCK_REALTIME, &t[0]);
  t[0].tv_sec -= time_t(seconds);
  t[1] = t[0];
  REQUIRE(::utimensat(AT_FDCWD, p.c_str(), t, 0) == 0);
}

static double age_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return double(now.tv_sec - st.st_mtim.tv_sec) + 1e-9 * double(now.tv_nsec - st.st_mtim.tv_nsec);
}

// A claim as another process would have written it.
static void plant_claim(const fs::path& p, nlohmann::ordered_json who, const std::string& state = "working") {
  who["state"] = state;
  who["token"] = "planted";
  who["started"] = "2026-01-01T00:00:00Z";
  testdata::write_text(p, who.dump(2));
}

static long dead_pid() {  // a child that has exited and been reaped
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return long(pid);
}

TEST_CASE("create_file_exclusive: the first caller creates the file whole, the others get false") {
  fs::path d = testdata::temp_dir("run_folder_excl");
  CHECK(create_file_exclusive(d / "c.json", "first"));
  CHECK_FALSE(create_file_exclusive(d / "c.json", "second"));
  CHECK(slurp(d / "c.json") == "first");
  int files = 0;
  for (const auto& e : fs::directory_iterator(d)) {
    ++files;
    CHECK(e.path().filename() == "c.json");
  }
  CHECK(files == 1);
  // Many threads at once: exactly one wins.
  std::atomic<int> wins{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) ts.emplace_back([&, t] { wins += create_file_exclusive(d / "race", "thread " + std::to_string(t)); });
  for (auto& t : ts) t.join();
  CHECK(wins == 1);
  CHECK(slurp(d / "race").rfind("thread ", 0) == 0);
  CHECK_THROWS_WITH_AS(create_file_exclusive(d / "no_such_dir" / "x", "x"), doctest::Contains("no_such_dir/x.tmp."), std::runtime_error);
  fs::remove_all(d);
}

TEST_CASE("judge_claim: alive and dead on this host, timeouts and --reclaim for other hosts, finished and unreadable claims") {
  fs::path d = testdata::temp_dir("run_folder_judge");
  const fs::path c = d / "claim.json";
  const ClaimPolicy wait{10, false}, reclaim{10, true};
  CHECK(judge_claim(c, wait).kind == ClaimVerdict::Free);

  const nlohmann::ordered_json me = process_identity();
  CHECK(me["pid"] == long(::getpid()));
  CHECK(me["proc_start"].get<unsigned long long>() > 0);
  CHECK_FALSE(me["host"].get<std::string>().empty());

  // This host: a live process is never taken, not even with --reclaim ...
  plant_claim(c, me);
  ClaimVerdict v = judge_claim(c, reclaim);
  CHECK(v.kind == ClaimVerdict::Live);
  CHECK(v.why.find("pid " + std::to_string(::getpid())) != std::string::npos);
  CHECK(v.why.find("running on this host") != std::string::npos);
  set_age(c, 1000);  // ... however old its heartbeat
  CHECK(judge_claim(c, wait).kind == ClaimVerdict::Live);
  // ... a process that is gone is taken at once, and so is a reused pid (another start time).
  nlohmann::ordered_json gone = me;
  gone["pid"] = dead_pid();
  plant_claim(c, gone);
  v = judge_claim(c, wait);
  CHECK(v.kind == ClaimVerdict::Dead);
  CHECK(v.why.find("that process is gone (this host)") != std::string::npos);
  nlohmann::ordered_json reused = me;
  reused["proc_start"] = me["proc_start"].get<unsigned long long>() + 12345;
  plant_claim(c, reused);
  CHECK(judge_claim(c, wait).kind == ClaimVerdict::Dead);

  // Another host: alive until the timeout has passed without a heartbeat, or on --reclaim.
  nlohmann::ordered_json other = me;
  other["host"] = "node-elsewhere";
  other["pid"] = 4242;
  other["slurm_job"] = "77_3";
  plant_claim(c, other);
  v = judge_claim(c, wait);
  CHECK(v.kind == ClaimVerdict::Live);
  CHECK(v.why.find("host node-elsewhere pid 4242 (Slurm job 77_3)") != std::string::npos);
  CHECK(v.why.find("heartbeat 0 s ago") != std::string::npos);
  v = judge_claim(c, reclaim);
  CHECK(v.kind == ClaimVerdict::Dead);
  CHECK(v.why.find("taken over by --reclaim") != std::string::npos);
  set_age(c, 20);
  v = judge_claim(c, wait);
  CHECK(v.kind == ClaimVerdict::Dead);
  CHECK(v.why.find("no heartbeat for 20 s (timeout 10 s)") != std::string::npos);
  CHECK(judge_claim(c, ClaimPolicy{30, false}).kind == ClaimVerdict::Live);
  // The same host name on another boot (another machine, or after a reboot) is another host.
  nlohmann::ordered_json rebooted = me;
  rebooted["boot_id"] = "another-boot";
  plant_claim(c, rebooted);
  CHECK(judge_claim(c, wait).kind == ClaimVerdict::Live);
  set_age(c, 20);
  CHECK(judge_claim(c, wait).kind == ClaimVerdict::Dead);

  plant_claim(c, other, "finished");
  CHECK(judge_claim(c, reclaim).kind == ClaimVerdict::Finished);
  testdata::write_text(c, "");  // unreadable: being written until it is older than the timeout
  CHECK(judge_claim(c, wait).kind == ClaimVerdict::Live);
  set_age(c, 20);
  v = judge_claim(c, wait);
  CHECK(v.kind == ClaimVerdict::Dead);
  CHECK(v.why.find("unreadable claim file") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("FoldClaim: one holder; released when dropped, kept when finished; a dead claim is taken over by exactly one") {
  fs::path d = testdata::temp_dir("run_folder_claim");
  const fs::path c = d / "claim.json";
  const ClaimPolicy policy{600, false};
  {
    FoldClaim::Attempt a = FoldClaim::acquire(c, {{"fold", 3}}, policy);
    REQUIRE(a.claim);
    CHECK(a.took_over.empty());
    const auto j = nlohmann::ordered_json::parse(slurp(c));
    CHECK(j["fold"] == 3);
    CHECK(j["pid"] == long(::getpid()));
    CHECK(j["state"] == "working");
    CHECK(a.claim->still_ours());
    FoldClaim::Attempt b = FoldClaim::acquire(c, {{"fold", 3}}, policy);  // held by a live process (this one)
    CHECK_FALSE(b.claim);
    CHECK(b.held.kind == ClaimVerdict::Live);
  }
  CHECK_FALSE(fs::exists(c));  // dropped unfinished: released
  {
    FoldClaim::Attempt a = FoldClaim::acquire(c, {{"fold", 3}}, policy);
    REQUIRE(a.claim);
    a.claim->finish({{"status", "ok"}});
  }
  auto j = nlohmann::ordered_json::parse(slurp(c));
  CHECK(j["state"] == "finished");
  CHECK(j["status"] == "ok");
  FoldClaim::Attempt f = FoldClaim::acquire(c, {{"fold", 3}}, policy);
  CHECK_FALSE(f.claim);
  CHECK(f.held.kind == ClaimVerdict::Finished);
  f = FoldClaim::acquire(c, {{"fold", 3}}, policy, true);  // the caller found the results untrusted
  REQUIRE(f.claim);
  CHECK(f.took_over.find("finished by host") != std::string::npos);
  f.claim.reset();

  // A claim whose process is gone is taken over, and the new claim says from whom.
  nlohmann::ordered_json gone = process_identity();
  gone["pid"] = dead_pid();
  plant_claim(c, gone);
  FoldClaim::Attempt t = FoldClaim::acquire(c, {{"fold", 1}}, policy);
  REQUIRE(t.claim);
  CHECK(t.took_over.find("pid " + std::to_string(gone["pid"].get<long>()) + ", started") != std::string::npos);
  CHECK(t.took_over.find("that process is gone") != std::string::npos);
  CHECK(nlohmann::ordered_json::parse(slurp(c))["took_over_from"] == t.took_over);
  t.claim.reset();

  // Eight threads take a dead claim over at once: exactly one holds it after (a thread that finds
  // the name free between another's rename and create simply creates it).
  for (int round = 0; round < 40; ++round) {
    CAPTURE(round);
    gone["pid"] = dead_pid();
    plant_claim(c, gone);
    std::vector<FoldClaim::Attempt> got(8);
    std::vector<std::thread> ts;
    for (size_t i = 0; i < got.size(); ++i) ts.emplace_back([&, i] { got[i] = FoldClaim::acquire(c, {{"fold", 1}}, policy); });
    for (auto& th : ts) th.join();
    int holders = 0;
    for (auto& a : got) {
      if (a.claim) {
        ++holders;
        CHECK(a.claim->still_ours());
      } else {
        CHECK(a.held.kind == ClaimVerdict::Live);
      }
    }
    CHECK(holders == 1);
    for (auto& e : fs::directory_iterator(d)) CHECK(e.path().filename() == "claim.json");  // no .stale, .tmp or lock left
  }
  // A takeover lock left by a taker that died: removed, and the claim taken over.
  gone["pid"] = dead_pid();
  plant_claim(c, gone);
  plant_claim(d / "claim.json.takeover", gone);
  t = FoldClaim::acquire(c, {{"fold", 1}}, policy);
  CHECK(t.claim);
  CHECK_FALSE(fs::exists(d / "claim.json.takeover"));
  t.claim.reset();
  // One held by a live taker: the claim is left to it.
  gone["pid"] = dead_pid();
  plant_claim(c, gone);
  plant_claim(d / "claim.json.takeover", process_identity());
  t = FoldClaim::acquire(c, {{"fold", 1}}, policy);
  CHECK_FALSE(t.claim);
  CHECK(t.held.why.find("being taken over by host") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("FoldClaim heartbeat: the mtime is refreshed while held; a claim overwritten by another process is lost") {
  fs::path d = testdata::temp_dir("run_folder_heartbeat");
  const fs::path c = d / "claim.json";
  CHECK(heartbeat_interval(600) == 60);
  CHECK(heartbeat_interval(1) == doctest::Approx(0.1));
  FoldClaim::Attempt a = FoldClaim::acquire(c, {{"fold", 1}}, ClaimPolicy{1, false});  // heartbeat every 0.1 s
  REQUIRE(a.claim);
  set_age(c, 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  CHECK(age_of(c) < 1.0);
  CHECK_FALSE(a.claim->lost());
  nlohmann::ordered_json other = process_identity();
  other["host"] = "node-elsewhere";
  plant_claim(c, other);  // another process took it over (it thought this one dead)
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  CHECK(a.claim->lost());
  CHECK_FALSE(a.claim->still_ours());
  a.claim.reset();
  CHECK(nlohmann::ordered_json::parse(slurp(c))["host"] == "node-elsewhere");  // not removed: it is not ours
  fs::remove_all(d);
}
