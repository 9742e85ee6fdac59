#include "train/data/run_folder.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
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

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  fs::path tmp = path;
  tmp += ".tmp";
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
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
  fsync_path(path.has_parent_path() ? path.parent_path() : fs::path("."), true);
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
