#include "train/data/table.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace ahmsa::data {

static std::string read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw DataError("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------- CSV

Table read_csv(const std::string& path) {
  std::string s = read_file_bytes(path);
  if (s.size() >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
    s.erase(0, 3);
  // Separator: whichever of , ; \t is most frequent on the first non-empty line (outside quotes).
  char sep = ',';
  {
    size_t b = s.find_first_not_of("\r\n");
    size_t e = b == std::string::npos ? b : s.find('\n', b);
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
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') cell += '"', ++i;
        else quoted = false;
      } else cell += c;
      continue;
    }
    if (c == '"') quoted = true, any = true;
    else if (c == sep) row.push_back(cell), cell.clear(), any = true;
    else if (c == '\r') continue;
    else if (c == '\n') {
      if (any || !cell.empty()) row.push_back(cell);
      rows.push_back(row);
      row.clear(), cell.clear(), any = false;
    } else cell += c, any = true;
  }
  if (quoted) throw DataError("CSV '" + path + "': unterminated quoted field");
  if (any || !cell.empty()) row.push_back(cell), rows.push_back(row);
  // Trim surrounding spaces of unquoted-looking cells: the sheets' exports often pad them.
  for (auto& r : rows)
    for (auto& c : r) {
      size_t b = c.find_first_not_of(" \t"), e = c.find_last_not_of(" \t");
      c = b == std::string::npos ? "" : c.substr(b, e - b + 1);
    }
  return rows;
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

// ---------------------------------------------------------------- ZIP
// Layout (PKWARE APPNOTE): the End Of Central Directory record (signature 0x06054b50) at the end of
// the file gives the offset of the central directory; each central entry (0x02014b50) gives the
// method, sizes and offset of a local header (0x04034b50) after which the entry's bytes follow.

static uint32_t le32(const std::string& b, size_t o) {
  return uint32_t((unsigned char)b[o]) | uint32_t((unsigned char)b[o + 1]) << 8 |
         uint32_t((unsigned char)b[o + 2]) << 16 | uint32_t((unsigned char)b[o + 3]) << 24;
}
static uint16_t le16(const std::string& b, size_t o) {
  return uint16_t((unsigned char)b[o]) | uint16_t((unsigned char)b[o + 1]) << 8;
}

struct ZipEntry {
  std::string name;
  uint16_t method = 0;
  uint32_t compressed = 0, uncompressed = 0, local_offset = 0;
};

static std::vector<ZipEntry> zip_directory(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 22) throw DataError("'" + path + "' is not a ZIP/xlsx file (too short)");
  size_t eocd = std::string::npos;
  size_t lowest = bytes.size() > 22 + 65535 ? bytes.size() - 22 - 65535 : 0;
  for (size_t i = bytes.size() - 22 + 1; i-- > lowest;)
    if (le32(bytes, i) == 0x06054b50) { eocd = i; break; }
  if (eocd == std::string::npos) throw DataError("'" + path + "' is not a ZIP/xlsx file (no end of central directory)");
  uint16_t count = le16(bytes, eocd + 10);
  uint32_t dir_offset = le32(bytes, eocd + 16);
  if (dir_offset == 0xFFFFFFFFu) throw DataError("'" + path + "': ZIP64 archives are not supported");
  std::vector<ZipEntry> out;
  size_t p = dir_offset;
  for (int i = 0; i < count; ++i) {
    if (p + 46 > bytes.size() || le32(bytes, p) != 0x02014b50)
      throw DataError("'" + path + "': corrupt ZIP central directory (entry " + std::to_string(i) + ")");
    ZipEntry e;
    e.method = le16(bytes, p + 10);
    e.compressed = le32(bytes, p + 20);
    e.uncompressed = le32(bytes, p + 24);
    uint16_t name_len = le16(bytes, p + 28), extra_len = le16(bytes, p + 30), comment_len = le16(bytes, p + 32);
    e.local_offset = le32(bytes, p + 42);
    if (p + 46 + name_len > bytes.size()) throw DataError("'" + path + "': corrupt ZIP entry name");
    e.name = bytes.substr(p + 46, name_len);
    out.push_back(e);
    p += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

static std::string zip_extract(const std::string& bytes, const ZipEntry& e, const std::string& path) {
  size_t p = e.local_offset;
  if (p + 30 > bytes.size() || le32(bytes, p) != 0x04034b50)
    throw DataError("'" + path + "': corrupt ZIP local header for " + e.name);
  size_t data = p + 30 + le16(bytes, p + 26) + le16(bytes, p + 28);
  if (data + e.compressed > bytes.size()) throw DataError("'" + path + "': truncated ZIP entry " + e.name);
  if (e.method == 0) return bytes.substr(data, e.compressed);
  if (e.method != 8)
    throw DataError("'" + path + "': ZIP entry " + e.name + " uses unsupported method " + std::to_string(e.method));
  // Raw deflate (no zlib header): windowBits = -15.
  std::string out(e.uncompressed, '\0');
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -15) != Z_OK) throw DataError("zlib inflateInit2 failed");
  zs.next_in = (Bytef*)bytes.data() + data;
  zs.avail_in = e.compressed;
  zs.next_out = (Bytef*)out.data();
  zs.avail_out = (uInt)out.size();
  int rc = inflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || produced != e.uncompressed)
    throw DataError("'" + path + "': cannot inflate ZIP entry " + e.name + " (zlib " + std::to_string(rc) + ")");
  return out;
}

std::vector<std::string> zip_entries(const std::string& zip_path) {
  std::vector<std::string> names;
  for (auto& e : zip_directory(read_file_bytes(zip_path), zip_path)) names.push_back(e.name);
  return names;
}

std::string zip_read(const std::string& zip_path, const std::string& entry) {
  std::string bytes = read_file_bytes(zip_path);
  for (auto& e : zip_directory(bytes, zip_path))
    if (e.name == entry) return zip_extract(bytes, e, zip_path);
  throw DataError("'" + zip_path + "' has no entry '" + entry + "'");
}

// ---------------------------------------------------------------- XML scanning
// Just enough XML for the SpreadsheetML parts: elements, attributes, text, entities. No DTDs.

struct XmlTag {
  std::string name;  // without namespace prefix; "/name" for an end tag
  std::map<std::string, std::string> attrs;
  bool self_closing = false;
  size_t end = 0;  // index after '>'
};

static std::string xml_unescape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') { out += s[i]; continue; }
    size_t semi = s.find(';', i);
    if (semi == std::string::npos) { out += s[i]; continue; }
    std::string ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      unsigned long cp = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X') ? std::strtoul(ent.c_str() + 2, nullptr, 16)
                                                                          : std::strtoul(ent.c_str() + 1, nullptr, 10);
      // UTF-8 encode.
      if (cp < 0x80) out += char(cp);
      else if (cp < 0x800) out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
      else if (cp < 0x10000)
        out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
      else
        out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F)), out += char(0x80 | ((cp >> 6) & 0x3F)),
            out += char(0x80 | (cp & 0x3F));
    } else { out += s.substr(i, semi - i + 1); }
    i = semi;
  }
  return out;
}

static std::string strip_prefix(const std::string& n) {
  size_t c = n.find(':');
  return c == std::string::npos ? n : n.substr(c + 1);
}

// Next tag at or after `pos` (skipping comments, <? ?> and <! >). Returns false at the end.
static bool next_tag(const std::string& x, size_t pos, size_t& tag_start, XmlTag& tag) {
  for (;;) {
    size_t lt = x.find('<', pos);
    if (lt == std::string::npos) return false;
    if (x.compare(lt, 4, "<!--") == 0) {
      size_t e = x.find("-->", lt);
      if (e == std::string::npos) return false;
      pos = e + 3;
      continue;
    }
    if (x.compare(lt, 9, "<![CDATA[") == 0) {
      size_t e = x.find("]]>", lt);
      if (e == std::string::npos) return false;
      pos = e + 3;
      continue;
    }
    if (lt + 1 < x.size() && (x[lt + 1] == '?' || x[lt + 1] == '!')) {
      size_t e = x.find('>', lt);
      if (e == std::string::npos) return false;
      pos = e + 1;
      continue;
    }
    size_t i = lt + 1;
    size_t name_start = i;
    while (i < x.size() && !std::isspace((unsigned char)x[i]) && x[i] != '>' && x[i] != '/') ++i;
    if (i < x.size() && x[i] == '/' && i == name_start) {  // end tag
      ++i;
      while (i < x.size() && !std::isspace((unsigned char)x[i]) && x[i] != '>') ++i;
    }
    std::string raw = x.substr(name_start, i - name_start);
    tag = XmlTag();
    tag.name = raw[0] == '/' ? "/" + strip_prefix(raw.substr(1)) : strip_prefix(raw);
    // attributes
    for (;;) {
      while (i < x.size() && std::isspace((unsigned char)x[i])) ++i;
      if (i >= x.size()) return false;
      if (x[i] == '>') { tag.end = i + 1; break; }
      if (x[i] == '/' && i + 1 < x.size() && x[i + 1] == '>') { tag.self_closing = true, tag.end = i + 2; break; }
      size_t a = i;
      while (i < x.size() && x[i] != '=' && !std::isspace((unsigned char)x[i]) && x[i] != '>') ++i;
      std::string an = strip_prefix(x.substr(a, i - a));
      while (i < x.size() && std::isspace((unsigned char)x[i])) ++i;
      if (i < x.size() && x[i] == '=') {
        ++i;
        while (i < x.size() && std::isspace((unsigned char)x[i])) ++i;
        char q = i < x.size() ? x[i] : '"';
        if (q == '"' || q == '\'') {
          size_t e = x.find(q, i + 1);
          if (e == std::string::npos) return false;
          tag.attrs[an] = xml_unescape(x.substr(i + 1, e - i - 1));
          i = e + 1;
        }
      } else if (i < x.size() && x[i] != '>') ++i;
    }
    tag_start = lt;
    return true;
  }
}

// Shared strings: <si> holds either <t>text</t> or rich runs <r><t>..</t></r>; phonetic runs
// (<rPh>) are not part of the value.
static std::vector<std::string> parse_shared_strings(const std::string& x) {
  std::vector<std::string> out;
  size_t pos = 0, ts;
  XmlTag tag;
  bool in_si = false;
  int in_rph = 0;
  std::string cur;
  while (next_tag(x, pos, ts, tag)) {
    pos = tag.end;
    if (tag.name == "si" && !tag.self_closing) in_si = true, cur.clear();
    else if (tag.name == "si" && tag.self_closing) out.push_back("");
    else if (tag.name == "/si") in_si = false, out.push_back(cur);
    else if (tag.name == "rPh" && !tag.self_closing) ++in_rph;
    else if (tag.name == "/rPh") --in_rph;
    else if (tag.name == "t" && !tag.self_closing && in_si) {
      size_t e = x.find('<', pos);
      if (in_rph == 0) cur += xml_unescape(x.substr(pos, e - pos));
      pos = e;
    }
  }
  return out;
}

// "AB12" -> column 27 (0-based), row 11 (0-based).
static bool parse_cell_ref(const std::string& r, int& col, int& row) {
  size_t i = 0;
  col = 0;
  while (i < r.size() && std::isalpha((unsigned char)r[i])) col = col * 26 + (std::toupper(r[i]) - 'A' + 1), ++i;
  if (i == 0 || i == r.size()) return false;
  row = std::atoi(r.c_str() + i);
  --col, --row;
  return row >= 0 && col >= 0;
}

static std::string tidy_number(const std::string& v) {
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

static Table parse_sheet(const std::string& x, const std::vector<std::string>& shared, const std::string& path) {
  Table t;
  size_t pos = 0, ts;
  XmlTag tag;
  int next_row = 0, row = -1, next_col = 0;
  // current cell
  int col = -1;
  std::string type, value;
  bool in_cell = false, in_is = false;
  auto put = [&](int r, int c, const std::string& s) {
    if ((int)t.size() <= r) t.resize(r + 1);
    if ((int)t[r].size() <= c) t[r].resize(c + 1);
    t[r][c] = s;
  };
  while (next_tag(x, pos, ts, tag)) {
    pos = tag.end;
    if (tag.name == "row") {
      auto it = tag.attrs.find("r");
      row = it != tag.attrs.end() ? std::atoi(it->second.c_str()) - 1 : next_row;
      if (row < 0) row = next_row;
      next_row = row + 1, next_col = 0;
      if ((int)t.size() <= row) t.resize(row + 1);
    } else if (tag.name == "c") {
      int cr = row;
      col = next_col;
      auto it = tag.attrs.find("r");
      if (it != tag.attrs.end() && !parse_cell_ref(it->second, col, cr))
        throw DataError("'" + path + "': bad cell reference '" + it->second + "'");
      if (cr != row && row >= 0) cr = row;
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
          throw DataError("'" + path + "': shared string index '" + value + "' out of range");
        s = shared[k];
      } else if (type == "n") s = tidy_number(value);
      else if (type == "b") s = value == "1" ? "TRUE" : "FALSE";
      else s = value;  // str, inlineStr, e (error)
      if (!s.empty() && row >= 0) put(row, col, s);
      in_cell = false;
    } else if (tag.name == "is") in_is = !tag.self_closing;
    else if (tag.name == "/is") in_is = false;
    else if ((tag.name == "v" || (tag.name == "t" && in_is)) && !tag.self_closing && in_cell) {
      size_t e = x.find('<', pos);
      value += xml_unescape(x.substr(pos, e - pos));
      pos = e;
    }
  }
  return t;
}

Table read_xlsx(const std::string& path, const std::string& sheet) {
  std::string bytes = read_file_bytes(path);
  auto dir = zip_directory(bytes, path);
  auto get = [&](const std::string& name, bool required) -> std::string {
    for (auto& e : dir)
      if (e.name == name) return zip_extract(bytes, e, path);
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
    size_t pos = 0, ts;
    XmlTag tag;
    while (next_tag(wb, pos, ts, tag)) {
      pos = tag.end;
      if (tag.name == "sheet" && (sheet.empty() || tag.attrs["name"] == sheet)) { rid = tag.attrs["id"]; break; }
    }
    if (rid.empty() && !sheet.empty()) throw DataError("'" + path + "' has no sheet named '" + sheet + "'");
    pos = 0;
    while (!rid.empty() && next_tag(rels, pos, ts, tag)) {
      pos = tag.end;
      if (tag.name == "Relationship" && tag.attrs["Id"] == rid) {
        std::string target = tag.attrs["Target"];
        part = target.rfind("/", 0) == 0 ? target.substr(1) : "xl/" + target;
        break;
      }
    }
  }
  return parse_sheet(get(part, true), shared, path);
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
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (c == '\n') o += "\\n";
    else if ((unsigned char)c < 0x20) o += ' ';
    else o += c;
  }
  return o;
}

}  // namespace ahmsa::data
