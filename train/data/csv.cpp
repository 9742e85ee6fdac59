// read_csv / write_csv: RFC 4180 with the habits of spreadsheet exports (separator guessed, BOM,
// CRLF, CR-only and LF line ends).
#include <algorithm>
#include <fstream>

#include "train/data/table.h"

namespace ahmsa::data {

Table read_csv(const std::string& path) { return parse_csv(read_file_bytes(path), path); }

Table parse_csv(std::string s, const std::string& path) {
  if (s.size() >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
    s.erase(0, 3);
  // Separator: whichever of , ; \t is most frequent on the first non-empty line.
  char sep = ',';
  {
    size_t b = s.find_first_not_of("\r\n");
    size_t e = b == std::string::npos ? b : s.find_first_of("\r\n", b);
    std::string line = b == std::string::npos ? "" : s.substr(b, e == std::string::npos ? std::string::npos : e - b);
    int best = 0;
    for (char c : {',', ';', '\t'}) {
      int n = (int)std::count(line.begin(), line.end(), c);
      if (n > best) best = n, sep = c;
    }
  }
  Table rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, any = false;
  size_t quote_line = 0, quote_byte = 0;  // where the open quoted field started, for the error
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') cell += '"', ++i;
        else quoted = false;
      } else cell += c;
      continue;
    }
    if (c == '"') quoted = true, any = true, quote_line = rows.size() + 1, quote_byte = i;
    else if (c == sep) row.push_back(cell), cell.clear(), any = true;
    else if (c == '\r' || c == '\n') {  // LF, CRLF or a lone CR (old Mac exports) ends the line
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      if (any || !cell.empty()) row.push_back(cell);
      rows.push_back(std::move(row));
      row.clear(), cell.clear(), any = false;
    } else cell += c, any = true;
  }
  if (quoted)
    throw DataError("CSV '" + path + "': unterminated quoted field starting on line " + std::to_string(quote_line) +
                    " (byte " + std::to_string(quote_byte) + ")");
  if (any || !cell.empty()) row.push_back(cell), rows.push_back(std::move(row));
  // Trim surrounding spaces of unquoted-looking cells: the sheets' exports often pad them.
  for (auto& r : rows)
    for (auto& c : r) {
      size_t b = c.find_first_not_of(" \t"), e = c.find_last_not_of(" \t");
      c = b == std::string::npos ? "" : c.substr(b, e - b + 1);
    }
  return rows;
}

std::string cut_torn_line(std::string text) {
  if (text.empty() || text.back() == '\n') return text;
  size_t nl = text.find_last_of('\n');
  size_t from = nl == std::string::npos ? 0 : nl + 1;
  // Quotes before the last line balance when the file is well formed up to there.
  if (std::count(text.begin(), text.end(), '"') % 2 == 1) text.erase(from);
  return text;
}

void write_csv(const std::string& path, const Table& rows) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw DataError("cannot write '" + path + "'");
  for (auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (i) f << ',';
      const std::string& c = r[i];
      if (c.find_first_of(",\"\n\r") != std::string::npos) {
        f << '"';
        for (char ch : c) f << (ch == '"' ? "\"\"" : std::string(1, ch));
        f << '"';
      } else f << c;
    }
    f << '\n';
  }
  if (!f) throw DataError("error writing '" + path + "'");
}

}  // namespace ahmsa::data
