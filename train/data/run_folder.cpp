#include "train/data/run_folder.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace ahmsa::data {

// ------------------------------------------------------------------ files

static std::runtime_error sys_error(const std::string& what, const fs::path& p) {
  return std::runtime_error(what + " '" + p.string() + "': " + std::strerror(errno));
}

static void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) {
    if (directory) return;  // some file systems do not open directories: the rename is still atomic
    throw sys_error("cannot open", p);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && !directory) {
    errno = err;
    throw sys_error("cannot flush", p);
  }
}

void commit_file(const fs::path& tmp, const fs::path& path) {
  fsync_path(tmp, false);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
  fsync_path(path.has_parent_path() ? path.parent_path() : fs::path("."), true);
}

static const std::string& host_name() {
  static const std::string host = [] {
    char b[256] = {0};
    if (::gethostname(b, sizeof b - 1) != 0 || !b[0]) return std::string("unknown-host");
    return std::string(b);
  }();
  return host;
}

fs::path temp_path(const fs::path& path) {
  std::string host = host_name();
  for (char& c : host)
    if (c == '/') c = '_';
  static std::atomic<unsigned> counter{0};  // threads of one process get names of their own too
  fs::path tmp = path;
  tmp += ".tmp." + host + "." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  return tmp;
}

// Writes `bytes` to a new file `tmp` (which must not be shared) and makes it durable.
static void write_durable(const fs::path& tmp, std::string_view bytes) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw sys_error("cannot write", tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = err;
      throw sys_error("cannot write", tmp);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
    throw sys_error("cannot flush", tmp);
  }
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  const fs::path tmp = temp_path(path);
  write_durable(tmp, bytes);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
  }
  fsync_path(path.has_parent_path() ? path.parent_path() : fs::path("."), true);
}

bool create_file_exclusive(const fs::path& path, std::string_view bytes) {
  const fs::path tmp = temp_path(path);
  write_durable(tmp, bytes);
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  struct stat st {};
  // NFS: a link whose reply was lost reports an error although it was made; the link count tells.
  const bool linked = rc == 0 || (err != EEXIST && ::stat(tmp.c_str(), &st) == 0 && st.st_nlink == 2);
  ::unlink(tmp.c_str());
  if (linked) {
    fsync_path(path.has_parent_path() ? path.parent_path() : fs::path("."), true);
    return true;
  }
  if (err == EEXIST) return false;
  if (err != EPERM && err != ENOTSUP && err != EOPNOTSUPP && err != ENOSYS) {
    errno = err;
    throw sys_error("cannot create", path);
  }
  // No hard links here: an exclusive create, then the bytes (a reader may briefly see it short).
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw sys_error("cannot create", path);
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(path.c_str());
      errno = e;
      throw sys_error("cannot write", path);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw sys_error("cannot flush", path);
  return true;
}

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read '" + path.string() + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::ordered_json read_json_file(const fs::path& path) {
  const std::string text = read_file(path);
  if (text.empty()) throw std::runtime_error("'" + path.string() + "' is empty");
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error("'" + path.string() + "' is not valid JSON (" + std::to_string(text.size()) +
                             " bytes; torn or edited?): " + e.what());
  }
}

std::string crc32_hex(std::string_view bytes) {
  uLong c = crc32(0L, Z_NULL, 0);
  size_t off = 0;
  while (off < bytes.size()) {  // zlib takes uInt lengths
    const uInt n = uInt(std::min<size_t>(bytes.size() - off, 1u << 30));
    c = crc32(c, reinterpret_cast<const Bytef*>(bytes.data() + off), n);
    off += n;
  }
  char b[16];
  std::snprintf(b, sizeof b, "%08lx", (unsigned long)c);
  return b;
}

// ------------------------------------------------------------------ the resume guard

static std::string show(const nlohmann::ordered_json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

bool check_resume(const fs::path& record, const nlohmann::ordered_json& signature, const std::string& flag) {
  if (!fs::exists(record)) return false;
  const std::string folder = record.parent_path().string();
  nlohmann::ordered_json old;
  try {
    old = read_json_file(record);
  } catch (const std::exception& e) {
    throw RunMismatch(std::string(e.what()) + ": cannot tell which settings made '" + folder + "'; use another " + flag +
                      " (or delete the folder) to start afresh");
  }
  const auto it = old.find("signature");
  if (it == old.end())
    throw RunMismatch("'" + record.string() + "' records no signature; use another " + flag + " (or delete the folder) to start afresh");
  if (*it == signature) return true;
  std::string diff;
  if (it->is_object() && signature.is_object()) {
    for (auto& [k, v] : signature.items()) {
      auto o = it->find(k);
      if (o == it->end()) diff += "\n  " + k + ": not recorded there, now " + show(v);
      else if (*o != v) diff += "\n  " + k + ": there " + show(*o) + ", now " + show(v);
    }
    for (auto& [k, v] : it->items())
      if (!signature.contains(k)) diff += "\n  " + k + ": there " + show(v) + ", not a setting now";
  } else {
    diff = "\n  there: " + show(*it) + "\n  now:   " + show(signature);
  }
  throw RunMismatch("'" + folder + "' holds a run with other settings or data:" + diff + "\nuse another " + flag +
                    " (or delete the folder) to start afresh");
}

// ------------------------------------------------------------------ fold folders

std::string fold_dir_name(int i, int n) {
  char b[32];
  std::snprintf(b, sizeof b, n > 99 ? "fold_%03d" : "fold_%02d", i + 1);
  return b;
}

void write_done(const fs::path& dir, nlohmann::ordered_json record, const std::vector<std::string>& files) {
  nlohmann::ordered_json list = nlohmann::ordered_json::object();
  for (const auto& f : files) {
    const std::string bytes = read_file(dir / f);
    list[f] = {{"bytes", bytes.size()}, {"crc32", crc32_hex(bytes)}};
  }
  record["files"] = list;
  write_file_atomic(dir / "done.json", record.dump(2) + "\n");
}

DoneState read_done(const fs::path& dir) {
  DoneState s;
  const fs::path p = dir / "done.json";
  if (!fs::exists(p)) return s;
  s.kind = DoneState::Invalid;
  try {
    s.record = read_json_file(p);
  } catch (const std::exception& e) {
    s.reason = e.what();
    return s;
  }
  const auto files = s.record.find("files");
  if (!s.record.is_object() || files == s.record.end() || !files->is_object() || files->empty()) {
    s.reason = "'" + p.string() + "' lists no files it vouches for (written by an older ahmsa?)";
    return s;
  }
  for (auto& [name, want] : files->items()) {
    const fs::path f = dir / name;
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) {
      s.reason = "'" + f.string() + "' is missing (" + p.string() + " vouches for it)";
      return s;
    }
    const std::string bytes = read_file(f);
    const uint64_t want_bytes = want.value("bytes", uint64_t(0));
    if (bytes.size() != want_bytes) {
      s.reason = "'" + f.string() + "' is " + std::to_string(bytes.size()) + " bytes, " + p.string() + " says " +
                 std::to_string(want_bytes);
      return s;
    }
    const std::string crc = crc32_hex(bytes), want_crc = want.value("crc32", std::string());
    if (crc != want_crc) {
      s.reason = "'" + f.string() + "' has CRC-32 " + crc + ", " + p.string() + " says " + want_crc;
      return s;
    }
  }
  s.kind = DoneState::Valid;
  return s;
}

// ------------------------------------------------------------------ claims

static std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

static std::string boot_id() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

// State letter and start time (clock ticks after boot) of process `pid` from /proc/PID/stat; false
// when it cannot be read.
static bool proc_stat(long pid, char& state, unsigned long long& start) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  const size_t close = line.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {  // fields are numbered from 1; 3 is the state, 22 the start time
    if (i == 3) state = field.empty() ? '?' : field[0];
    if (i == 22) {
      start = std::strtoull(field.c_str(), nullptr, 10);
      return true;
    }
  }
  return false;
}

nlohmann::ordered_json process_identity() {
  nlohmann::ordered_json j;
  j["host"] = host_name();
  j["boot_id"] = boot_id();
  j["pid"] = long(::getpid());
  char state = 0;
  unsigned long long start = 0;
  j["proc_start"] = proc_stat(long(::getpid()), state, start) ? start : 0ull;
  j["started"] = utc_now();
  const char* array_job = std::getenv("SLURM_ARRAY_JOB_ID");
  const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* job = std::getenv("SLURM_JOB_ID");
  if (array_job && task) j["slurm_job"] = std::string(array_job) + "_" + task;
  else if (job) j["slurm_job"] = std::string(job);
  return j;
}

// Is the process of a claim made on this host still there (and the same process)?
static bool claimant_alive(long pid, unsigned long long recorded_start) {
  if (pid <= 0) return false;
  if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH) return false;
  char state = 0;
  unsigned long long start = 0;
  if (!proc_stat(pid, state, start)) return true;  // it exists (kill said so) but /proc is not readable
  if (state == 'Z' || state == 'X') return false;   // dead, not yet reaped
  return recorded_start == 0 || start == recorded_start;  // another start time: the pid was reused
}

static std::string seconds_text(double s) { return std::to_string(long(std::lround(std::max(0.0, s)))) + " s"; }

ClaimVerdict judge_claim(const fs::path& claim, const ClaimPolicy& policy) {
  ClaimVerdict v;
  struct stat st {};
  if (::stat(claim.c_str(), &st) != 0) {
    if (errno == ENOENT) return v;  // Free
    throw sys_error("cannot read", claim);
  }
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const double age = double(now.tv_sec - st.st_mtim.tv_sec) + 1e-9 * double(now.tv_nsec - st.st_mtim.tv_nsec);
  try {
    v.record = nlohmann::ordered_json::parse(read_file(claim));
    if (!v.record.is_object()) throw std::runtime_error("not an object");
  } catch (const std::exception&) {
    v.record = nullptr;
    if (::stat(claim.c_str(), &st) != 0 && errno == ENOENT) return v;  // released while we read it: Free
    const bool dead = policy.reclaim || age > policy.timeout_s;
    v.kind = dead ? ClaimVerdict::Dead : ClaimVerdict::Live;
    v.why = "unreadable claim file '" + claim.string() + "', " + seconds_text(age) + " old" +
            (dead ? (policy.reclaim ? " (--reclaim)" : " (timeout " + seconds_text(policy.timeout_s) + ")") : " (being written?)");
    return v;
  }
  const std::string host = v.record.value("host", std::string("?"));
  const long pid = v.record.value("pid", 0L);
  std::string who = "host " + host + " pid " + std::to_string(pid);
  if (v.record.contains("slurm_job")) who += " (Slurm job " + v.record.value("slurm_job", std::string()) + ")";
  if (v.record.value("state", std::string()) == "finished") {
    v.kind = ClaimVerdict::Finished;
    v.why = "finished by " + who + " at " + v.record.value("finished", std::string("?"));
    return v;
  }
  who += ", started " + v.record.value("started", std::string("?"));
  const bool same_host = host == host_name() && v.record.value("boot_id", std::string()) == boot_id();
  if (same_host) {
    if (!claimant_alive(pid, v.record.value("proc_start", 0ull))) {
      v.kind = ClaimVerdict::Dead;
      v.why = who + ": that process is gone (this host)";
    } else {
      v.kind = ClaimVerdict::Live;
      v.why = who + ": running on this host";
    }
    return v;
  }
  if (policy.reclaim) {
    v.kind = ClaimVerdict::Dead;
    v.why = who + ", heartbeat " + seconds_text(age) + " ago: taken over by --reclaim";
  } else if (age > policy.timeout_s) {
    v.kind = ClaimVerdict::Dead;
    v.why = who + ": no heartbeat for " + seconds_text(age) + " (timeout " + seconds_text(policy.timeout_s) + ")";
  } else {
    v.kind = ClaimVerdict::Live;
    v.why = who + ", heartbeat " + seconds_text(age) + " ago";
  }
  return v;
}

double heartbeat_interval(double timeout_s) { return std::min(60.0, timeout_s / 10); }

static std::string random_token() {
  std::random_device rd;
  char b[40];
  std::snprintf(b, sizeof b, "%08x%08x%08x", rd(), rd(), unsigned(::getpid()));
  return b;
}

static std::string token_of(const nlohmann::ordered_json& j) {
  return j.is_object() ? j.value("token", std::string()) : std::string();
}

// Removes the claim file judged `v` if it is still that one: renamed away first (atomic), then
// checked by its token; a file that is not the one judged is put back. Returns whether it was removed.
static bool remove_judged(const fs::path& path, const ClaimVerdict& v, const std::string& my_token) {
  fs::path away = path;
  away += ".stale." + my_token;
  if (::rename(path.c_str(), away.c_str()) != 0) {
    if (errno == ENOENT) return false;
    throw sys_error("cannot take over", path);
  }
  std::string moved;
  try {
    moved = token_of(nlohmann::ordered_json::parse(read_file(away)));
  } catch (const std::exception&) {
  }
  if (moved != token_of(v.record) && ::link(away.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    const int err = errno;
    ::unlink(away.c_str());
    errno = err;
    throw sys_error("cannot restore the claim", path);
  }
  ::unlink(away.c_str());
  return moved == token_of(v.record);
}

FoldClaim::Attempt FoldClaim::acquire(const fs::path& path, nlohmann::ordered_json record, const ClaimPolicy& policy, bool take_finished) {
  Attempt a;
  const nlohmann::ordered_json me = process_identity();
  for (auto& [k, v] : me.items()) record[k] = v;
  record["state"] = "working";
  record["token"] = random_token();
  const std::string token = record["token"];
  fs::path lock = path;
  lock += ".takeover";
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (create_file_exclusive(path, record.dump(2) + "\n")) {
      a.claim.reset(new FoldClaim(path, record, heartbeat_interval(policy.timeout_s)));
      return a;
    }
    ClaimVerdict v = judge_claim(path, policy);
    if (v.kind == ClaimVerdict::Free) continue;  // released meanwhile
    if (v.kind == ClaimVerdict::Live || (v.kind == ClaimVerdict::Finished && !take_finished)) {
      a.held = v;
      return a;
    }
    // Dead (or finished with untrusted results). One process at a time takes a claim over: the one
    // that creates the takeover lock (held for milliseconds; one left by a process that died in
    // those milliseconds is removed like a dead claim, after at most 30 s).
    if (!create_file_exclusive(lock, me.dump() + "\n")) {
      ClaimVerdict lv = judge_claim(lock, ClaimPolicy{std::min(policy.timeout_s, 30.0), false});
      if (lv.kind == ClaimVerdict::Dead) {
        ::unlink(lock.c_str());
        continue;
      }
      if (lv.kind == ClaimVerdict::Free) continue;
      a.held = v;
      a.held.kind = ClaimVerdict::Live;
      a.held.why = "being taken over by " + lv.why;
      return a;
    }
    bool created = false;
    try {
      ClaimVerdict again = judge_claim(path, policy);  // under the lock: the claim as it is now
      const bool dead = again.kind == ClaimVerdict::Dead || (again.kind == ClaimVerdict::Finished && take_finished);
      if (dead && token_of(again.record) == token_of(v.record) && remove_judged(path, again, token)) {
        a.took_over = again.why;
        record["took_over_from"] = again.why;
      }
      created = create_file_exclusive(path, record.dump(2) + "\n");
    } catch (...) {
      ::unlink(lock.c_str());
      throw;
    }
    ::unlink(lock.c_str());
    if (created) {
      a.claim.reset(new FoldClaim(path, record, heartbeat_interval(policy.timeout_s)));
      return a;
    }
    a.took_over.clear();
    record.erase("took_over_from");
  }
  a.held = judge_claim(path, policy);  // contended four times over: leave it to the others
  return a;
}

FoldClaim::FoldClaim(fs::path path, nlohmann::ordered_json record, double interval_s)
    : path_(std::move(path)), record_(std::move(record)), token_(record_.value("token", std::string())), interval_s_(interval_s) {
  beat_ = std::thread([this] { heartbeat_loop(); });
}

void FoldClaim::heartbeat_loop() {
  std::unique_lock<std::mutex> lk(m_);
  while (!stop_) {
    cv_.wait_for(lk, std::chrono::duration<double>(interval_s_), [this] { return stop_.load(); });
    if (stop_) break;
    if (!still_ours()) {
      lost_ = true;
      break;
    }
    ::utimensat(AT_FDCWD, path_.c_str(), nullptr, 0);  // the heartbeat: mtime = now
  }
}

bool FoldClaim::still_ours() const {
  try {
    return token_of(nlohmann::ordered_json::parse(read_file(path_))) == token_;
  } catch (const std::exception&) {
    return false;
  }
}

void FoldClaim::finish(const nlohmann::ordered_json& extra) {
  {
    std::lock_guard<std::mutex> g(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (beat_.joinable()) beat_.join();
  if (!still_ours()) {
    lost_ = true;
    return;
  }
  nlohmann::ordered_json j = record_;
  j["state"] = "finished";
  j["finished"] = utc_now();
  for (auto& [k, v] : extra.items()) j[k] = v;
  write_file_atomic(path_, j.dump(2) + "\n");
  finished_ = true;
}

FoldClaim::~FoldClaim() {
  {
    std::lock_guard<std::mutex> g(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (beat_.joinable()) beat_.join();
  if (!finished_ && still_ours()) ::unlink(path_.c_str());
}

// ------------------------------------------------------------------ signals

static std::atomic<int> g_stop{0};
static std::atomic<int> g_guards{0};
static struct sigaction g_old_int, g_old_term;

extern "C" void ahmsa_stop_handler(int sig) {
  if (g_stop.exchange(sig) != 0) {  // a second signal: end now, as without the guard
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

StopOnSignal::StopOnSignal() {
  if (g_guards++ > 0) return;
  g_stop = 0;
  struct sigaction sa {};
  sa.sa_handler = ahmsa_stop_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopOnSignal::~StopOnSignal() {
  if (--g_guards > 0) return;
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

int stop_signal() { return g_stop.load(std::memory_order_relaxed); }

const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

}  // namespace ahmsa::data
