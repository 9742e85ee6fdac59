// Fixture builders for the data tests: temp folders, tiny frames, and a minimal .xlsx writer (a ZIP
// with deflated parts made here with zlib, independent of the reader under test).
#pragma once
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "flow/image.h"

namespace testdata {

namespace fs = std::filesystem;

inline fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("ahmsa_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

inline void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << s;
}

// A small grey frame whose pixels depend on `seed` (stb reads it whatever the extension says).
inline void write_frame(const fs::path& p, int seed = 0, int size = 8) {
  fs::create_directories(p.parent_path());
  ahmsa::img::Image im(size, size, 1);
  for (int i = 0; i < size * size; ++i) im.data[i] = float((i * 37 + seed * 11) % 256);
  ahmsa::img::save_png(p.string(), im);
}

inline void put16(std::string& b, uint16_t v) { b += char(v & 0xFF), b += char(v >> 8); }
inline void put32(std::string& b, uint32_t v) { put16(b, uint16_t(v & 0xFFFF)), put16(b, uint16_t(v >> 16)); }

// Writes a ZIP holding `entries` (name, content), each raw-deflated (method 8).
inline void write_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, central;
  for (auto& [name, content] : entries) {
    std::string packed(compressBound(content.size()) + 64, '\0');
    z_stream zs{};
    deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef*)content.data();
    zs.avail_in = (uInt)content.size();
    zs.next_out = (Bytef*)packed.data();
    zs.avail_out = (uInt)packed.size();
    deflate(&zs, Z_FINISH);
    packed.resize(zs.total_out);
    deflateEnd(&zs);
    uint32_t crc = crc32(0, (const Bytef*)content.data(), (uInt)content.size());
    uint32_t offset = (uint32_t)out.size();
    put32(out, 0x04034b50), put16(out, 20), put16(out, 0), put16(out, 8), put16(out, 0), put16(out, 0);
    put32(out, crc), put32(out, (uint32_t)packed.size()), put32(out, (uint32_t)content.size());
    put16(out, (uint16_t)name.size()), put16(out, 0);
    out += name + packed;
    put32(central, 0x02014b50), put16(central, 20), put16(central, 20), put16(central, 0), put16(central, 8);
    put16(central, 0), put16(central, 0), put32(central, crc), put32(central, (uint32_t)packed.size());
    put32(central, (uint32_t)content.size()), put16(central, (uint16_t)name.size()), put16(central, 0), put16(central, 0);
    put16(central, 0), put16(central, 0), put32(central, 0), put32(central, offset);
    central += name;
  }
  uint32_t dir_offset = (uint32_t)out.size();
  out += central;
  put32(out, 0x06054b50), put16(out, 0), put16(out, 0), put16(out, (uint16_t)entries.size()),
      put16(out, (uint16_t)entries.size()), put32(out, (uint32_t)central.size()), put32(out, dir_offset), put16(out, 0);
  std::ofstream f(path, std::ios::binary);
  f << out;
}

inline std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else o += c;
  }
  return o;
}

// A one-sheet workbook as Excel writes it: strings in sharedStrings.xml, cells that parse as
// integers written as numbers (Excel's "46" becomes <v>46</v>), rows placed at `first_row` (1-based).
inline void write_xlsx(const fs::path& path, const std::vector<std::vector<std::string>>& rows, int first_row = 1) {
  std::vector<std::string> shared;
  std::string sheet = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
                      "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>";
  for (size_t r = 0; r < rows.size(); ++r) {
    int rn = first_row + (int)r;
    sheet += "<row r=\"" + std::to_string(rn) + "\">";
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const std::string& v = rows[r][c];
      if (v.empty()) continue;  // Excel leaves empty cells out
      std::string ref = std::string(1, char('A' + c)) + std::to_string(rn);
      bool numeric = v.find_first_not_of("0123456789") == std::string::npos && v[0] != '0';
      if (numeric) sheet += "<c r=\"" + ref + "\"><v>" + v + ".0</v></c>";
      else {
        sheet += "<c r=\"" + ref + "\" t=\"s\"><v>" + std::to_string(shared.size()) + "</v></c>";
        shared.push_back(v);
      }
    }
    sheet += "</row>";
  }
  sheet += "</sheetData></worksheet>";
  std::string ss = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"" +
                   std::to_string(shared.size()) + "\">";
  for (auto& s : shared) ss += "<si><t xml:space=\"preserve\">" + xml_escape(s) + "</t></si>";
  ss += "</sst>";
  std::string wb = "<?xml version=\"1.0\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" "
                   "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets>"
                   "<sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";
  std::string rels = "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
                     "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" "
                     "Target=\"worksheets/sheet1.xml\"/></Relationships>";
  write_zip(path, {{"[Content_Types].xml", "<Types/>"},
                   {"xl/workbook.xml", wb},
                   {"xl/_rels/workbook.xml.rels", rels},
                   {"xl/sharedStrings.xml", ss},
                   {"xl/worksheets/sheet1.xml", sheet}});
}

}  // namespace testdata
