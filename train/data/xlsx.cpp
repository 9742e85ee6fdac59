// read_xlsx: the workbook's parts from the ZIP, the sheet XML scanned into a Table.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "train/data/table.h"
#include "train/data/xml.h"
#include "train/data/zip.h"

namespace ahmsa::data {

namespace {

// Excel's own sheet limits: columns A..XFD, rows 1..1048576.
constexpr int kMaxColumns = 16384;
constexpr int kMaxRows = 1048576;

// Shared strings: <si> holds either <t>text</t> or rich runs <r><t>..</t></r>; phonetic runs
// (<rPh>) are not part of the value.
std::vector<std::string> parse_shared_strings(const std::string& x) {
  std::vector<std::string> out;
  size_t pos = 0;
  xml::Tag tag;
  bool in_si = false;
  int in_rph = 0;
  std::string cur;
  while (xml::next_tag(x, pos, tag)) {
    pos = tag.end;
    if (tag.name == "si" && !tag.self_closing) in_si = true, cur.clear();
    else if (tag.name == "si" && tag.self_closing) out.push_back("");
    else if (tag.name == "/si") in_si = false, out.push_back(cur);
    else if (tag.name == "rPh" && !tag.self_closing) ++in_rph;
    else if (tag.name == "/rPh") --in_rph;
    else if (tag.name == "t" && !tag.self_closing && in_si && in_rph == 0) cur += xml::text_at(x, pos);
  }
  return out;
}

// A decimal row number 1..kMaxRows (all of `s` from `i`), or -1.
int parse_row_number(const std::string& s, size_t i = 0) {
  if (i >= s.size()) return -1;
  long n = 0;
  for (; i < s.size(); ++i) {
    if (!std::isdigit((unsigned char)s[i])) return -1;
    n = n * 10 + (s[i] - '0');
    if (n > kMaxRows) return -1;
  }
  return n >= 1 ? int(n) : -1;
}

// "AB12" -> column 27 (0-based), row 11 (0-based). False for anything outside A1..XFD1048576.
bool parse_cell_ref(const std::string& r, int& col, int& row) {
  size_t i = 0;
  int c = 0;
  while (i < r.size() && std::isalpha((unsigned char)r[i])) {
    c = c * 26 + (std::toupper((unsigned char)r[i]) - 'A' + 1), ++i;
    if (c > kMaxColumns) return false;  // at most 3 letters get here: no overflow
  }
  int n = parse_row_number(r, i);
  if (i == 0 || n < 0) return false;
  col = c - 1, row = n - 1;
  return true;
}

std::string tidy_number(const std::string& v) {
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0') return v;
  if (std::isfinite(d) && std::fabs(d) < 1e15 && d == std::floor(d)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", d);
    return buf;
  }
  return v;
}

// The sheet as a Table. Rows and cells keep their positions, but the slots allocated (rows plus
// cells, empty ones included) may not exceed kMinSlots + x.size() / kBytesPerSlot: a dense sheet
// spends >= 20 bytes of XML per cell, so a cell reference far beyond the data (XFD1048576 in a
// 2 KB part) is refused instead of costing gigabytes.
constexpr size_t kMinSlots = 1 << 16, kBytesPerSlot = 8;

Table parse_sheet(const std::string& x, const std::vector<std::string>& shared, const std::string& where) {
  Table t;
  const size_t max_slots = kMinSlots + x.size() / kBytesPerSlot;
  size_t slots = 0;
  // Makes room for row r and (when cols > 0) its first `cols` cells, counting the new slots.
  auto grow = [&](size_t r, size_t cols, size_t at) {
    size_t have = r < t.size() ? t[r].size() : 0;
    size_t add = (r < t.size() ? 0 : r + 1 - t.size()) + (cols > have ? cols - have : 0);
    if (slots + add > max_slots)
      throw DataError(where + ": row " + std::to_string(r + 1) + ", column " + std::to_string(std::max<size_t>(cols, 1)) +
                      " (byte " + std::to_string(at) + ") lies far beyond the sheet's content (" +
                      std::to_string(x.size()) + " bytes of XML allow " + std::to_string(max_slots) + " cells)");
    slots += add;
    if (t.size() <= r) t.resize(r + 1);
    if (cols > have) t[r].resize(cols);
  };
  size_t pos = 0;
  xml::Tag tag;
  int next_row = 0, row = -1, next_col = 0;
  int col = -1;  // the current cell
  std::string type, value;
  bool in_cell = false, in_is = false;
  while (xml::next_tag(x, pos, tag)) {
    pos = tag.end;
    if (tag.name == "row") {
      auto it = tag.attrs.find("r");
      if (it != tag.attrs.end()) {
        int n = parse_row_number(it->second);
        if (n < 0)
          throw DataError(where + ": bad row number '" + it->second + "' at byte " + std::to_string(tag.start) +
                          " (rows are 1.." + std::to_string(kMaxRows) + ")");
        row = n - 1;
      } else
        row = next_row;
      if (row >= kMaxRows) throw DataError(where + ": more than " + std::to_string(kMaxRows) + " rows");
      next_row = row + 1, next_col = 0;
      grow(size_t(row), 0, tag.start);
    } else if (tag.name == "c") {
      int cr = row;
      col = next_col;
      auto it = tag.attrs.find("r");
      if (it != tag.attrs.end() && !parse_cell_ref(it->second, col, cr))
        throw DataError(where + ": bad cell reference '" + it->second + "' at byte " + std::to_string(tag.start));
      if (col >= kMaxColumns) throw DataError(where + ": more than " + std::to_string(kMaxColumns) + " columns in row " +
                                              std::to_string(row + 1));
      next_col = col + 1;
      auto ty = tag.attrs.find("t");
      type = ty == tag.attrs.end() ? "n" : ty->second;
      value.clear();
      in_cell = !tag.self_closing;
    } else if (tag.name == "/c" && in_cell) {
      std::string s;
      if (type == "s") {
        char* end = nullptr;
        long k = std::strtol(value.c_str(), &end, 10);
        if (end == value.c_str() || k < 0 || k >= (long)shared.size())
          throw DataError(where + ": shared string index '" + value + "' out of range (" + std::to_string(shared.size()) +
                          " strings) at byte " + std::to_string(tag.start));
        s = shared[size_t(k)];
      } else if (type == "n") s = tidy_number(value);
      else if (type == "b") s = value == "1" ? "TRUE" : "FALSE";
      else s = value;  // str, inlineStr, e (error)
      if (!s.empty() && row >= 0) {
        grow(size_t(row), size_t(col) + 1, tag.start);
        t[size_t(row)][size_t(col)] = s;
      }
      in_cell = false;
    } else if (tag.name == "is") in_is = !tag.self_closing;
    else if (tag.name == "/is") in_is = false;
    else if ((tag.name == "v" || (tag.name == "t" && in_is)) && !tag.self_closing && in_cell)
      value += xml::text_at(x, pos);
  }
  return t;
}

}  // namespace

Table read_xlsx(const std::string& path, const std::string& sheet) {
  std::string bytes = read_file_bytes(path);
  auto dir = zip::directory(bytes, path);
  auto get = [&](const std::string& name, bool required) -> std::string {
    for (auto& e : dir)
      if (e.name == name) return zip::extract(bytes, e, path);
    if (required) throw DataError("'" + path + "' is not an xlsx workbook: no " + name);
    return "";
  };
  std::vector<std::string> shared = parse_shared_strings(get("xl/sharedStrings.xml", false));
  // Which part holds the wanted sheet: workbook.xml names the sheets with relationship ids,
  // workbook.xml.rels maps the ids to part names. Fall back to sheet1.xml.
  std::string part = "xl/worksheets/sheet1.xml";
  std::string wb = get("xl/workbook.xml", false), rels = get("xl/_rels/workbook.xml.rels", false);
  if (!wb.empty() && !rels.empty()) {
    std::string rid;
    size_t pos = 0;
    xml::Tag tag;
    while (xml::next_tag(wb, pos, tag)) {
      pos = tag.end;
      if (tag.name == "sheet" && (sheet.empty() || tag.attrs["name"] == sheet)) {
        rid = tag.attrs["id"];
        break;
      }
    }
    if (rid.empty() && !sheet.empty()) throw DataError("'" + path + "' has no sheet named '" + sheet + "'");
    pos = 0;
    while (!rid.empty() && xml::next_tag(rels, pos, tag)) {
      pos = tag.end;
      if (tag.name == "Relationship" && tag.attrs["Id"] == rid) {
        std::string target = tag.attrs["Target"];
        part = target.rfind("/", 0) == 0 ? target.substr(1) : "xl/" + target;
        break;
      }
    }
  }
  return parse_sheet(get(part, true), shared, "'" + path + "' (" + part + ")");
}

}  // namespace ahmsa::data
