// The annotation-table readers: .xlsx (ZIP + SpreadsheetML) and CSV exports.
#include <doctest/doctest.h>

#include "tests/test_data_helpers.h"
#include "train/data/table.h"

using namespace ahmsa::data;

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
