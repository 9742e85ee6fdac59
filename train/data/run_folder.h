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
//   resume and exits with 128 + the signal number (130 / 143).
// It lives in train/data (library ahmsa_data) because `prepare` is there and `train` builds on it.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ahmsa::data {

namespace fs = std::filesystem;

// ---- files ---------------------------------------------------------------------------------
// Writes `bytes` to `path` atomically (tmp, flush, fsync, rename). Throws std::runtime_error naming
// the file and the system error.
void write_file_atomic(const fs::path& path, std::string_view bytes);
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
