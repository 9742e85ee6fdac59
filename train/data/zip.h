// The small ZIP reader behind read_xlsx (PKWARE APPNOTE, stored and deflated entries, no ZIP64).
// Internal to the data library; zip_entries/zip_read in table.h are the public face.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ahmsa::data::zip {

// An entry may inflate to at most kMaxRatio times its compressed size and never beyond kMaxEntryBytes:
// a claimed size above either is refused before anything is allocated (a 2 KB file cannot ask for 4 GB).
constexpr uint64_t kMaxRatio = 250;
constexpr uint64_t kMaxEntryBytes = uint64_t(64) << 20;  // 64 MiB

struct Entry {
  std::string name;
  uint16_t method = 0;
  uint32_t compressed = 0, uncompressed = 0, local_offset = 0;
  size_t directory_offset = 0;  // where its central directory record starts, for messages
};

// The central directory of the archive `bytes` (read from `path`, named in errors).
std::vector<Entry> directory(const std::string& bytes, const std::string& path);
// The uncompressed bytes of one entry; throws DataError naming the file and the entry.
std::string extract(const std::string& bytes, const Entry& e, const std::string& path);

}  // namespace ahmsa::data::zip
