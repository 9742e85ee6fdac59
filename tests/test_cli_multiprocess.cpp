// Several `ahmsa train` processes on one run folder (the built binary, AHMSA_TOOL), without Slurm:
// three processes with overlapping --folds lists, one of them killed (SIGKILL) in the middle of a
// fold, a fold claimed by a process on "another host" that only --reclaim takes, then `ahmsa
// report`. Every fold is trained exactly once (the per-fold lines of the processes' logs and the
// claim files agree on who trained it), and the report is byte-identical to a one-process run's, also
// when three `ahmsa report` write it at the same moment.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tool_helpers.h"

namespace fs = std::filesystem;

namespace {

using ahmsa::testing::slurp;
using ahmsa::testing::wait_status;
using Result = ahmsa::testing::ToolResult;
const auto& run_tool = ahmsa::testing::run_tool_in;
const auto& spawn = ahmsa::testing::spawn_tool;

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The folds a process's log says it trained: "fold  K/6 <name> train ..." lines.
std::vector<int> trained_in(const std::string& log) {
  std::vector<int> folds;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    int k = 0;
    char name[64];
    if (std::sscanf(line.c_str(), "fold %d/6 %63s train", &k, name) == 2 && name[0] != '(' && line.find(" train ") != std::string::npos)
      folds.push_back(k);
  }
  return folds;
}

nlohmann::ordered_json claim_of(const fs::path& run, int fold) {
  return nlohmann::ordered_json::parse(slurp(run / ("fold_0" + std::to_string(fold)) / "claim.json"));
}

}  // namespace

TEST_CASE("three train processes on one run folder, one killed mid-fold: every fold trained once, the report equals a one-process run") {
  const fs::path d = fs::temp_directory_path() / ("ahmsa_test_multiprocess_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  const fs::path cache = d / "cache", ref = d / "ref", run = d / "run";
  Result s = run_tool(d, "synth", {"synth", "--out", (d / "synth").string(), "--subjects", "6", "--clips-per-class", "1", "--seed", "1",
                                   "--threads", "2"});
  REQUIRE_MESSAGE(s.status == 0, s.err);
  Result p = run_tool(d, "prepare", {"prepare", "--dataset", "casme2", "--root", (d / "synth").string(), "--annotations",
                                     (d / "synth" / "CASME2-coding-synthetic.csv").string(), "--out", cache.string(), "--threads", "2",
                                     "--quiet"});
  REQUIRE_MESSAGE(p.status == 0, p.err);
  const std::vector<std::string> train = {"train", "--cache", cache.string(), "--model-config", "size=28;stem=8;channels=32,32", "--epochs",
                                          "3", "--batch", "8", "--seed", "1", "--threads", "1", "--device", "cpu"};
  Result one = run_tool(d, "ref", cat(train, {"--out", ref.string(), "--quiet"}));
  REQUIRE_MESSAGE(one.status == 0, one.err);

  // Fold 6 is held by a process on another host (a fresh heartbeat): nobody takes it without --reclaim.
  fs::create_directories(run / "fold_06");
  std::ofstream(run / "fold_06" / "claim.json") << R"({"fold": 6, "host": "node-elsewhere", "boot_id": "b", "pid": 4242, "state": "working", "token": "t", "started": "2026-12-01T00:00:00Z"})";

  // Three processes, each fold in two of the lists; the third is killed while it trains a fold.
  const pid_t a = spawn(cat(train, {"--out", run.string(), "--folds", "1,2,3,4"}), d / "a.out", d / "a.err");
  const pid_t b = spawn(cat(train, {"--out", run.string(), "--folds", "3,4,5,6"}), d / "b.out", d / "b.err");
  const pid_t c = spawn(cat(train, {"--out", run.string(), "--folds", "5,6,1,2"}), d / "c.out", d / "c.err");
  int victim_fold = 0;
  for (auto t0 = std::chrono::steady_clock::now(); !victim_fold && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120);
       std::this_thread::sleep_for(std::chrono::milliseconds(2))) {
    for (int k = 1; k <= 5 && !victim_fold; ++k) {  // a fold claimed by c and not finished: stop c there, check, kill it
      const fs::path dir = run / ("fold_0" + std::to_string(k));
      auto working_by_c = [&] {
        const std::string t = slurp(dir / "claim.json");
        return t.find("\"pid\": " + std::to_string(c) + ",") != std::string::npos && t.find("\"state\": \"working\"") != std::string::npos;
      };
      if (!working_by_c()) continue;
      ::kill(c, SIGSTOP);
      if (working_by_c() && !fs::exists(dir / "done.json")) {
        ::kill(c, SIGKILL);
        victim_fold = k;
      } else {
        ::kill(c, SIGCONT);
      }
    }
    int st = 0;
    if (!victim_fold && ::waitpid(c, &st, WNOHANG) == c) break;  // c finished without being caught
  }
  REQUIRE_MESSAGE(victim_fold > 0, "the third process was never caught in the middle of a fold");
  CHECK(wait_status(c) == 128 + SIGKILL);
  CHECK(wait_status(a) == 0);
  CHECK(wait_status(b) == 0);
  const bool c_finished_it = fs::exists(run / ("fold_0" + std::to_string(victim_fold)) / "done.json") &&
                            claim_of(run, victim_fold)["pid"] == long(c);
  CHECK_FALSE(c_finished_it);

  // Fold 6 is not done; ahmsa report says so and who holds it, and writes nothing.
  Result r1 = run_tool(d, "report1", {"report", run.string()});
  CHECK(r1.status == 1);
  CHECK_MESSAGE(r1.err.find("fold 6 (casme2/sub06): being trained: claimed by host node-elsewhere pid 4242") != std::string::npos, r1.err);
  CHECK_FALSE(fs::exists(run / "metrics.json"));
  // Without --reclaim fold 6 stays with its holder (the killed process's fold, when still abandoned, is
  // taken over at once: same host, its process is gone); --reclaim takes fold 6.
  Result plain = run_tool(d, "plain", cat(train, {"--out", run.string()}));
  CHECK(plain.status == 0);
  CHECK_MESSAGE(plain.err.find("fold 6/6 (casme2/sub06): left to host node-elsewhere pid 4242") != std::string::npos, plain.err);
  CHECK_FALSE(fs::exists(run / "metrics.json"));
  Result re = run_tool(d, "reclaim", cat(train, {"--out", run.string(), "--reclaim"}));
  REQUIRE_MESSAGE(re.status == 0, re.err);
  CHECK(re.err.find("fold 6/6 (casme2/sub06): taking over the claim of host node-elsewhere pid 4242") != std::string::npos);
  CHECK(claim_of(run, 6)["took_over_from"].get<std::string>().find("taken over by --reclaim") != std::string::npos);

  // Every fold trained exactly once, by the process its claim (and done.json) names.
  const std::map<long, std::string> logs = {{long(a), slurp(d / "a.err")}, {long(b), slurp(d / "b.err")}, {long(c), slurp(d / "c.err")}};
  std::map<int, int> times;
  std::map<int, long> by;
  for (auto& [pid, log] : logs)
    for (int k : trained_in(log)) ++times[k], by[k] = pid;
  for (auto& [name, log] : std::map<std::string, std::string>{{"plain", plain.err}, {"reclaim", re.err}})
    for (int k : trained_in(log)) ++times[k], by[k] = -1;  // by a later process: checked through its claim below
  for (int k = 1; k <= 6; ++k) {
    CAPTURE(k);
    CHECK(times[k] == 1);
    const auto claim = claim_of(run, k);
    CHECK(claim["state"] == "finished");
    const auto done = nlohmann::ordered_json::parse(slurp(run / ("fold_0" + std::to_string(k)) / "done.json"));
    CHECK(done["trained_by"]["pid"] == claim["pid"]);
    if (by[k] > 0) CHECK(claim["pid"] == by[k]);
  }
  const auto vclaim = claim_of(run, victim_fold);
  CHECK(vclaim["pid"] != long(c));
  CHECK_MESSAGE(vclaim["took_over_from"].get<std::string>().find("pid " + std::to_string(c) + ", started") != std::string::npos, vclaim.dump());
  CHECK(vclaim["took_over_from"].get<std::string>().find("that process is gone (this host)") != std::string::npos);

  // The report (written by the last process, and again by ahmsa report) equals the one-process run's.
  for (const char* f : {"metrics.json", "megc_log.txt", "predictions.csv", "summary.txt", "confusion.png", "curves.png"}) {
    CAPTURE(f);
    CHECK(slurp(run / f) == slurp(ref / f));
  }
  fs::remove(run / "metrics.json");
  Result r2 = run_tool(d, "report2", {"report", run.string()});
  REQUIRE_MESSAGE(r2.status == 0, r2.err);
  CHECK(r2.out.find("pooled (MEGC):") != std::string::npos);
  CHECK(slurp(run / "metrics.json") == slurp(ref / "metrics.json"));
  // Three reports written at the same moment: complete, identical files, no temporary left.
  std::vector<pid_t> writers;
  for (int k = 0; k < 3; ++k)
    writers.push_back(spawn({"report", run.string()}, d / ("r" + std::to_string(k) + ".out"), d / ("r" + std::to_string(k) + ".err")));
  for (pid_t w : writers) CHECK(wait_status(w) == 0);
  for (const char* f : {"metrics.json", "megc_log.txt", "predictions.csv", "summary.txt", "confusion.png", "curves.png"}) {
    CAPTURE(f);
    CHECK(slurp(run / f) == slurp(ref / f));
  }
  for (const auto& e : fs::directory_iterator(run)) CHECK_MESSAGE(e.path().filename().string().find(".tmp.") == std::string::npos, e.path());
  fs::remove_all(d);
}

TEST_CASE("ahmsa report and --fold-from-env refuse what they cannot use, saying why") {
  const fs::path d = fs::temp_directory_path() / ("ahmsa_test_multiprocess_args_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  Result h = run_tool(d, "help", {"report", "--help"});
  CHECK(h.status == 0);
  CHECK(h.out.find("Usage: ahmsa report") != std::string::npos);
  Result typo = run_tool(d, "typo", {"report", d.string(), "--cahce", "x"});
  CHECK(typo.status == 2);
  CHECK_MESSAGE(typo.err.find("unknown option --cahce (did you mean --cache?)") != std::string::npos, typo.err);
  Result none = run_tool(d, "none", {"report", (d / "nothing").string()});
  CHECK(none.status == 1);
  CHECK(none.err.find("holds no run: there is no " + (d / "nothing" / "config.json").string()) != std::string::npos);

  const std::vector<std::string> train = {"train", "--cache", (d / "cache").string(), "--out", (d / "run").string(), "--fold-from-env",
                                          "AHMSA_TEST_FOLD_INDEX"};
  ::unsetenv("AHMSA_TEST_FOLD_INDEX");
  Result unset = run_tool(d, "unset", train);
  CHECK(unset.status == 2);
  CHECK_MESSAGE(unset.err.find("--fold-from-env AHMSA_TEST_FOLD_INDEX: the variable is not set") != std::string::npos, unset.err);
  ::setenv("AHMSA_TEST_FOLD_INDEX", "3x", 1);
  Result bad = run_tool(d, "bad", train);
  CHECK(bad.status == 2);
  CHECK_MESSAGE(bad.err.find("--fold-from-env AHMSA_TEST_FOLD_INDEX: '3x' is not a fold number") != std::string::npos, bad.err);
  ::unsetenv("AHMSA_TEST_FOLD_INDEX");
  CHECK_FALSE(fs::exists(d / "run"));
  fs::remove_all(d);
}
