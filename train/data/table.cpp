// What the table readers share: reading a whole file, choosing the reader, header matching.
// The readers themselves: csv.cpp, xlsx.cpp (over zip.cpp and xml.cpp).
#include "train/data/table.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ahmsa::data {

std::string read_file_bytes(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw DataError("'" + path + "' is a directory, not a file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw DataError("cannot open '" + path + "': " + std::strerror(errno));
  f.seekg(0, std::ios::end);
  std::streamoff size = f.tellg();
  f.seekg(0);
  if (!f || size < 0) throw DataError("cannot read '" + path + "': not a regular file");
  if (uint64_t(size) > max_bytes)
    throw DataError("'" + path + "' is " + std::to_string(size) + " bytes, above the limit of " + std::to_string(max_bytes) +
                    " for a table");
  std::string bytes(size_t(size), '\0');
  if (!f.read(bytes.data(), size)) throw DataError("read error in '" + path + "'");
  return bytes;
}

Table read_table(const std::string& path) {
  std::string lower = path;
  for (auto& c : lower) c = (char)std::tolower((unsigned char)c);
  auto ends = [&](const char* s) {
    size_t n = std::strlen(s);
    return lower.size() >= n && lower.compare(lower.size() - n, n, s) == 0;
  };
  if (ends(".xlsx") || ends(".xlsm")) return read_xlsx(path);
  if (ends(".xls")) throw DataError("'" + path + "' is an old binary .xls sheet: save it as .xlsx or CSV");
  return read_csv(path);
}

bool blank_row(const std::vector<std::string>& row) {
  for (auto& c : row)
    if (c.find_first_not_of(" \t\r\n") != std::string::npos) return false;
  return true;
}

std::string normalise_header(const std::string& s) {
  std::string out;
  for (unsigned char c : s)
    if (std::isalnum(c)) out += (char)std::tolower(c);
  return out;
}

int find_header_row(const Table& t, const std::vector<std::string>& required) {
  for (size_t r = 0; r < t.size(); ++r) {
    bool all = true;
    for (auto& name : required) {
      bool found = false;
      for (auto& c : t[r]) found = found || normalise_header(c) == name;
      all = all && found;
    }
    if (all) return (int)r;
  }
  return -1;
}

int find_column(const std::vector<std::string>& header, const std::vector<std::string>& aliases) {
  for (auto& a : aliases)
    for (size_t c = 0; c < header.size(); ++c)
      if (normalise_header(header[c]) == a) return (int)c;
  return -1;
}

std::string json_escape(const std::string& s) {
  // nlohmann writes the literal (quotes included); bytes that are not UTF-8 become U+FFFD.
  std::string quoted = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return quoted.substr(1, quoted.size() - 2);
}

}  // namespace ahmsa::data
