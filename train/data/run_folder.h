// The output folders of `ahmsa prepare` (a flow cache) and `ahmsa train` (a run) share one set of
// rules, kept here:
// - every file is written atomically: to NAME.tmp, flushed and fsync'ed, then renamed over NAME, so a
//   crash, SIGKILL or full disk leaves either the old file or the new one, never half of one;
// - one resume guard: the folder's record file (config.json, manifest.json) holds the signature of
//   the settings that change the results; a rerun with another signature is refused, naming what
//   differs;
// - fold folders (fold_NN) whose done.json vouches for the files of the fold by size and CRC-32: a
//   fold whose files do not match, or whose done.json is empty or torn, is not trusted (trained again);
// - SIGINT / SIGTERM stop the work between two units (a training step, a clip) instead of killing
//   the process: the unit in progress is abandoned, what is finished stays, the command says how to
//   resume and exits with 128 + the signal number (130 / 143);
// - claims: several processes (on one machine or many sharing the folder) work on one run; a unit
//   (a fold) is claimed by creating its claim file exclusively, the claim's mtime is refreshed while
//   the work goes on, and a claim whose process is gone is taken over (FoldClaim below).
// It lives in train/data (library ahmsa_data) because `prepare` is there and `train` builds on it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace ahmsa::data {

namespace fs = std::filesystem;

// ---- files ---------------------------------------------------------------------------------
// Writes `bytes` to `path` atomically (tmp, flush, fsync, rename). Throws std::runtime_error naming
// the file and the system error. The temporary is temp_path(path), private to this process, so two
// processes writing the same file at once each rename a complete file (the last rename wins).
void write_file_atomic(const fs::path& path, std::string_view bytes);
// NAME.tmp.HOST.PID.N: a temporary name beside `path` that no other process (on any host) or thread uses.
fs::path temp_path(const fs::path& path);
// Creates `path` holding `bytes` only if it does not exist yet, atomically: the file appears
// complete or not at all (a private temporary, fsync'ed, then link(2), which fails if the name is
// taken; on a file system without hard links, open(O_CREAT|O_EXCL) and a write). Returns false when
// `path` already exists.
bool create_file_exclusive(const fs::path& path, std::string_view bytes);
// Makes `tmp` (already written and closed by someone else, e.g. a PNG encoder) durable and renames it
// to `path`.
void commit_file(const fs::path& tmp, const fs::path& path);
// The whole file; throws naming it when it cannot be read.
std::string read_file(const fs::path& path);
// JSON from a file; throws naming the file and the parse error (an empty file says so).
nlohmann::ordered_json read_json_file(const fs::path& path);
// zlib's CRC-32 of the bytes, as 8 lowercase hex digits.
std::string crc32_hex(std::string_view bytes);

// ---- the resume guard ----------------------------------------------------------------------
// `record` is the folder's record file; `signature` what a resumable rerun must match exactly
// (an object of settings, or a string). Returns false when there is no record yet (a new folder),
// true when the record matches. Throws RunMismatch when it does not: the message names the folder,
// every setting that differs (there / now) and how to start afresh; `flag` is the option that named
// the folder ("--out").
struct RunMismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};
bool check_resume(const fs::path& record, const nlohmann::ordered_json& signature, const std::string& flag);

// ---- fold folders --------------------------------------------------------------------------
// "fold_01" .. ("fold_001" when there are more than 99 folds); i is 0-based.
std::string fold_dir_name(int i, int n);

// done.json: `record` plus "files": {name: {"bytes": N, "crc32": "…"}} for each of `files` (which
// must exist in `dir`). Written last and atomically: its presence vouches for the fold.
void write_done(const fs::path& dir, nlohmann::ordered_json record, const std::vector<std::string>& files);

struct DoneState {
  enum Kind { Missing, Valid, Invalid } kind = Missing;
  nlohmann::ordered_json record;  // Valid: the parsed done.json
  std::string reason;             // Invalid: why, naming the file
};
// Missing: no done.json. Invalid: done.json is empty, torn or not JSON, lists no files, or a listed
// file is missing or differs in size or CRC-32 from what it records.
DoneState read_done(const fs::path& dir);

// ---- claims: one process per unit of work -------------------------------------------------
// Who this process is, as recorded in the claims it makes: host name, the kernel's boot id (so that
// "same host" means the same running kernel, where a pid can be checked), pid, the process's start
// time in clock ticks after boot (so a reused pid is not mistaken for the claimant), and the Slurm
// job (array job _ task) when there is one.
nlohmann::ordered_json process_identity();

// What a claim file says about the unit, judged from this process.
struct ClaimVerdict {
  enum Kind {
    Free,      // no claim file
    Live,      // held by a process that is (or may be) working: leave it
    Dead,      // held by a process that is gone, silent for longer than the timeout, or --reclaim
    Finished,  // the claimant finished the unit
  } kind = Free;
  nlohmann::ordered_json record;  // the claim file (null when unreadable)
  std::string why;                // e.g. "host node7 pid 4711, heartbeat 12 s ago"
};
struct ClaimPolicy {
  double timeout_s = 600;  // a claim whose mtime is older than this is taken over
  bool reclaim = false;    // take over every unfinished claim whose process is not known to be alive
};
// Same host (host name and boot id): the claimant is alive iff its pid exists, is not a zombie and
// started when the claim says; a dead one is taken over at once, a live one is never taken (not even
// with reclaim). Another host: the claim is Dead after timeout_s without a heartbeat, or with reclaim.
// An unreadable claim file counts as Live until it is timeout_s old.
ClaimVerdict judge_claim(const fs::path& claim, const ClaimPolicy& policy);

// A claim held by this process on one unit: `path` (e.g. fold_03/claim.json) holds the identity of
// the process, "state": "working" and a token; a thread refreshes its mtime every
// heartbeat_interval(timeout) seconds. acquire() takes the claim, or takes over a Dead one (under a
// takeover lock, PATH.takeover, so that of processes taking over at once one wins); a claim whose
// file was taken over by another process meanwhile (it was thought dead) is lost(): the work should
// be abandoned. finish()
// rewrites the claim with "state": "finished" and keeps it, as the record of who did the work;
// destroying an unfinished claim removes the file (SIGTERM, an error), so another process can take
// the unit at once.
class FoldClaim {
 public:
  struct Attempt {
    std::unique_ptr<FoldClaim> claim;  // null: not acquired
    ClaimVerdict held;                 // not acquired: why (Live, or Finished when take_finished is false)
    std::string took_over;             // acquired by taking over: the previous claim's verdict
  };
  // `record`: what to write besides the identity (e.g. the fold's number and name). A Finished claim
  // is taken over only with take_finished (the caller found the unit's results untrusted).
  static Attempt acquire(const fs::path& path, nlohmann::ordered_json record, const ClaimPolicy& policy, bool take_finished = false);
  ~FoldClaim();
  FoldClaim(const FoldClaim&) = delete;
  FoldClaim& operator=(const FoldClaim&) = delete;

  bool lost() const { return lost_.load(); }  // another process holds the file now
  bool still_ours() const;                    // reads the file: is it still this claim?
  void finish(const nlohmann::ordered_json& extra);  // "state": "finished", plus `extra`; the file stays
  const nlohmann::ordered_json& record() const { return record_; }
  const fs::path& path() const { return path_; }

 private:
  FoldClaim(fs::path path, nlohmann::ordered_json record, double interval_s);
  void heartbeat_loop();
  fs::path path_;
  nlohmann::ordered_json record_;
  std::string token_;
  double interval_s_;
  std::atomic<bool> lost_{false}, stop_{false}, finished_{false};
  std::mutex m_;
  std::condition_variable cv_;
  std::thread beat_;
};
// The heartbeat interval for a timeout: a tenth of it, at most 60 s.
double heartbeat_interval(double timeout_s);

// ---- stopping on SIGINT / SIGTERM ----------------------------------------------------------
// While a StopOnSignal lives, SIGINT and SIGTERM set a flag instead of ending the process (a second
// signal ends it at once). Workers poll stop_requested() between units of work.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
};
int stop_signal();  // the signal received (SIGINT, SIGTERM), 0 when none
inline bool stop_requested() { return stop_signal() != 0; }
// Thrown (by the code that polls) to leave the work; `what` says what was abandoned and how to resume.
struct Interrupted : std::runtime_error {
  Interrupted(int sig, const std::string& what) : std::runtime_error(what), signal(sig) {}
  int signal;
  int exit_status() const { return 128 + signal; }
};
const char* signal_name(int sig);  // "SIGINT", "SIGTERM"

}  // namespace ahmsa::data
