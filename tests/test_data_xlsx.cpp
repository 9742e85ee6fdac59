// The annotation-table readers: .xlsx (ZIP + SpreadsheetML) and CSV exports.
#include <doctest/doctest.h>

#include "tests/test_data_helpers.h"
#include "train/data/table.h"

#include <fstream>
#include <iterator>

using namespace ahmsa::data;
namespace fs = std::filesystem;

TEST_CASE("xlsx: shared strings, numbers, gaps and a preamble survive the round trip") {
  auto dir = testdata::temp_dir("xlsx");
  auto path = dir / "sheet.xlsx";
  // A SAMM-like sheet: two preamble rows, header on row 4, one empty cell, an entity, a '/' apex.
  testdata::write_xlsx(path,
                       {{"SAMM micro-movements & codes"},
                        {},
                        {"Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Estimated Emotion"},
                        {"6", "006_1_2", "5562", "5588", "5605", "Disgust"},
                        {"7", "007_3_1", "100", "/", "", "Anger <strong>"}},
                       2);
  Table t = read_xlsx(path.string());
  REQUIRE(t.size() == 6);  // rows 1..6, row 1 empty (nothing before first_row = 2)
  CHECK(t[0].empty());
  CHECK(t[1][0] == "SAMM micro-movements & codes");
  CHECK(t[2].empty());
  CHECK(find_header_row(t, {"subject", "filename"}) == 3);
  CHECK(find_column(t[3], {"apexframe", "apex"}) == 3);
  CHECK(t[4][0] == "6");  // stored as <v>6.0</v>: written back as an integer
  CHECK(t[4][2] == "5562");
  CHECK(t[4][5] == "Disgust");
  CHECK(t[5][3] == "/");
  CHECK(t[5][4] == "");  // empty cell left out by the writer
  CHECK(t[5][5] == "Anger <strong>");
  CHECK(read_table(path.string()) == t);
}

TEST_CASE("xlsx: inline strings, rich text runs, phonetic runs, numeric forms and entities") {
  auto dir = testdata::temp_dir("xlsx2");
  auto path = dir / "rich.xlsx";
  std::string ss =
      "<sst><si><r><t>Happi</t></r><r><rPr><b/></rPr><t>ness</t></r><rPh><t>IGNORED</t></rPh></si>"
      "<si><t>a&amp;b &#x41;&#66;</t></si></sst>";
  std::string sheet =
      "<worksheet><sheetData><row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"C1\" t=\"s\"><v>1</v></c></row>"
      "<row r=\"3\"><c r=\"A3\" t=\"inlineStr\"><is><t>inline</t></is></c><c r=\"B3\"><v>4.6E1</v></c>"
      "<c r=\"AA3\"><v>0.25</v></c><c r=\"C3\" t=\"b\"><v>1</v></c></row></sheetData></worksheet>";
  testdata::write_zip(path, {{"xl/sharedStrings.xml", ss}, {"xl/worksheets/sheet1.xml", sheet}});
  auto names = zip_entries(path.string());
  REQUIRE(names.size() == 2);
  CHECK(zip_read(path.string(), "xl/sharedStrings.xml") == ss);
  Table t = read_xlsx(path.string());
  REQUIRE(t.size() == 3);
  CHECK(t[0][0] == "Happiness");
  CHECK(t[0][1] == "");
  CHECK(t[0][2] == "a&b AB");
  CHECK(t[1].empty());
  CHECK(t[2][0] == "inline");
  CHECK(t[2][1] == "46");
  CHECK(t[2][2] == "TRUE");
  REQUIRE(t[2].size() == 27);
  CHECK(t[2][26] == "0.25");
}

TEST_CASE("xlsx: errors name the file") {
  auto dir = testdata::temp_dir("xlsx3");
  auto bad = dir / "not_a_zip.xlsx";
  testdata::write_text(bad, "this is not a zip file at all, just text that is long enough");
  try {
    read_xlsx(bad.string());
    FAIL("expected an exception");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()).find("not_a_zip.xlsx") != std::string::npos);
  }
  auto nosheet = dir / "nosheet.xlsx";
  testdata::write_zip(nosheet, {{"hello.txt", "hi"}});
  CHECK_THROWS_AS(read_xlsx(nosheet.string()), DataError);
  CHECK_THROWS_AS(read_table((dir / "old.xls").string()), DataError);
}

TEST_CASE("csv: quotes, separators, BOM and CRLF") {
  auto dir = testdata::temp_dir("csv");
  auto p = dir / "a.csv";
  testdata::write_text(p, "\xEF\xBB\xBFSubject,Filename,Note\r\n01,EP02_01f,\"a, \"\"quoted\"\"\nline\"\r\n\r\n 2 ,EP03,\r\n");
  Table t = read_csv(p.string());
  REQUIRE(t.size() == 4);
  CHECK(t[0] == std::vector<std::string>{"Subject", "Filename", "Note"});
  CHECK(t[1][2] == "a, \"quoted\"\nline");
  CHECK(t[2].empty());
  CHECK(t[3] == std::vector<std::string>{"2", "EP03", ""});
  auto q = dir / "b.csv";
  testdata::write_text(q, "x;y;z\n1;2;3\n");
  CHECK(read_csv(q.string())[1] == std::vector<std::string>{"1", "2", "3"});
  auto w = dir / "w.csv";
  write_csv(w.string(), {{"a,b", "c\"d"}, {"1"}});
  Table back = read_csv(w.string());
  CHECK(back[0] == std::vector<std::string>{"a,b", "c\"d"});
  CHECK(back[1] == std::vector<std::string>{"1"});
}

namespace {
// The message of the DataError that `fn` throws ("" and a failed check when it throws none).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const DataError& e) {
    return e.what();
  }
  FAIL("expected a DataError");
  return "";
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string one_sheet(const std::string& rows) {
  return "<worksheet><sheetData>" + rows + "</sheetData></worksheet>";
}
}  // namespace

TEST_CASE("csv: CR-only line ends (old Mac exports) are lines; an open quote names its line") {
  auto dir = testdata::temp_dir("csv_cr");
  auto p = dir / "cr.csv";
  testdata::write_text(p, "Subject,Onset,Apex,Emotion\r01,10,12,happiness\r\r02,20,25,\"dis\rgust\"\r");
  Table t = read_csv(p.string());
  REQUIRE(t.size() == 4);
  CHECK(t[0] == std::vector<std::string>{"Subject", "Onset", "Apex", "Emotion"});
  CHECK(t[1] == std::vector<std::string>{"01", "10", "12", "happiness"});
  CHECK(t[2].empty());
  CHECK(t[3][3] == "dis\rgust");  // a CR inside quotes is part of the field
  auto q = dir / "open.csv";
  testdata::write_text(q, "a,b\n1,2\n3,\"never closed\n4,5\n");
  std::string m = error_of([&] { read_csv(q.string()); });
  CHECK(has(m, "open.csv"));
  CHECK(has(m, "unterminated quoted field starting on line 3 (byte 10)"));
}

TEST_CASE("tables: a directory, a missing file and an oversized file are named") {
  auto dir = testdata::temp_dir("table_paths");
  fs::create_directories(dir / "sheet.csv");
  CHECK(has(error_of([&] { read_table((dir / "sheet.csv").string()); }), "sheet.csv' is a directory"));
  CHECK(has(error_of([&] { read_table((dir / "none.xlsx").string()); }), "cannot open"));
  auto big = dir / "big.csv";
  testdata::write_text(big, std::string(100, 'x'));
  CHECK(has(error_of([&] { read_file_bytes(big.string(), 99); }), "big.csv' is 100 bytes, above the limit of 99"));
}

TEST_CASE("xlsx: cell references and row numbers beyond Excel's limits are refused, not allocated") {
  auto dir = testdata::temp_dir("xlsx_refs");
  struct Bad {
    const char* name;
    std::string rows, why;
  };
  std::vector<Bad> cases = {
      // a 26^6 column overflows a 32-bit column count; IRELATIONSHIP1 once gave a 10 GB sheet
      {"zzzzzz", "<row r=\"1\"><c r=\"ZZZZZZ1\"><v>1</v></c></row>", "bad cell reference 'ZZZZZZ1' at byte"},
      {"irel", "<row r=\"1\"><c r=\"IRELATIONSHIP1\"><v>1</v></c></row>", "bad cell reference 'IRELATIONSHIP1'"},
      {"col_xfe", "<row r=\"1\"><c r=\"XFE1\"><v>1</v></c></row>", "bad cell reference 'XFE1'"},
      {"row_300M", "<row r=\"300000000\"><c><v>1</v></c></row>", "bad row number '300000000'"},
      {"row_int_overflow", "<row r=\"99999999999999999999\"/>", "bad row number"},
      {"row_zero", "<row r=\"0\"/>", "bad row number '0'"},
      {"cellref_row_overflow", "<row r=\"1\"><c r=\"A99999999999\"><v>1</v></c></row>", "bad cell reference"},
      // inside Excel's limits but far beyond what 100 bytes of XML can fill: 1M rows x 16384 columns
      {"far_cell", "<row r=\"1048576\"><c r=\"XFD1048576\"><v>1</v></c></row>", "lies far beyond the sheet's content"},
  };
  for (auto& c : cases) {
    CAPTURE(c.name);
    auto path = dir / (std::string(c.name) + ".xlsx");
    testdata::write_zip(path, {{"xl/worksheets/sheet1.xml", one_sheet(c.rows)}});
    std::string m = error_of([&] { read_xlsx(path.string()); });
    CHECK(has(m, path.string()));
    CHECK(has(m, "xl/worksheets/sheet1.xml"));
    CHECK(has(m, c.why));
  }
  // the largest legal reference is fine when the sheet is otherwise small: only its row is allocated wide
  auto ok = dir / "ok.xlsx";
  testdata::write_zip(ok, {{"xl/worksheets/sheet1.xml", one_sheet("<row r=\"3\"><c r=\"ZZ3\"><v>7</v></c></row>")}});
  Table t = read_xlsx(ok.string());
  REQUIRE(t.size() == 3);
  REQUIRE(t[2].size() == 702);  // ZZ = 26 * 26 + 26
  CHECK(t[2][701] == "7");
}

TEST_CASE("zip: an entry claiming more than ratio x compressed (or the cap) is refused before inflating") {
  auto dir = testdata::temp_dir("zip_bomb");
  auto path = dir / "bomb.xlsx";
  std::string sheet = one_sheet("<row r=\"1\"><c><v>1</v></c></row>");
  testdata::write_zip(path, {{"xl/worksheets/sheet1.xml", sheet}});
  // Patch the central directory's uncompressed size (offset 24 of its record) to 4 GB - 1.
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  size_t cd = bytes.find("PK\x01\x02");
  REQUIRE(cd != std::string::npos);
  for (int i = 0; i < 4; ++i) bytes[cd + 24 + size_t(i)] = char(0xFF);
  testdata::write_text(path, bytes);
  std::string m = error_of([&] { read_xlsx(path.string()); });
  CHECK(has(m, "bomb.xlsx': ZIP entry 'xl/worksheets/sheet1.xml' claims 4294967295 bytes uncompressed"));
  CHECK(has(m, "250x the compressed size"));
  // a claimed size within the bound but wrong is a corrupt stream, also named
  for (int i = 0; i < 4; ++i) bytes[cd + 24 + size_t(i)] = i == 0 ? char(sheet.size() + 1) : char(0);
  testdata::write_text(path, bytes);
  m = error_of([&] { read_xlsx(path.string()); });
  CHECK(has(m, "ZIP entry 'xl/worksheets/sheet1.xml': cannot inflate"));
}
