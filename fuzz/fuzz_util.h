// Shared by the fuzz targets: the readers take paths, so each input is written to a scratch file
// first (in /dev/shm when there is one). Anything but the reader's own error type escaping a
// target (std::bad_alloc, std::out_of_range, ...) is a finding: libFuzzer reports it as a crash.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    auto d = base / ("ahmsa_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  auto p = scratch_dir() / name;
  std::FILE* f = std::fopen(p.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return p.string();
}

}  // namespace fuzz
