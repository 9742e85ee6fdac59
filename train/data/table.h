// Annotation sheets as tables of strings: the official .xlsx files as distributed (read with a small
// ZIP reader over zlib and a hand-written XML scanner) and CSV exports of the same sheets.
// Sources: csv.cpp, xlsx.cpp, zip.cpp, xml.cpp; the shared pieces in table.cpp.
// Limits (docs/RELIABILITY.md): a table file is at most kMaxTableBytes; ZIP entries and sheet cells
// are bounded by what the file holds (zip.h, xlsx.cpp).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ahmsa::data {

struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// rows[r][c]; rows keep their position in the sheet (an empty sheet row is an empty vector), cells
// keep their column (missing cells are ""). Numbers are written as the sheet stores them, except that
// integral values ("46.0", "4.6E1") are written as integers ("46").
using Table = std::vector<std::vector<std::string>>;

// The largest annotation file read (CSV or xlsx): the real sheets are well under 1 MB.
constexpr uint64_t kMaxTableBytes = uint64_t(8) << 20;  // 8 MiB

// A whole file's bytes. Throws DataError naming the file when it is missing, a directory,
// unreadable, or larger than max_bytes.
std::string read_file_bytes(const std::string& path, uint64_t max_bytes = kMaxTableBytes);

// CSV: comma, semicolon or tab separated (guessed from the first non-empty line), "quoted" fields
// with "" escapes and embedded newlines, UTF-8 BOM tolerated, lines ending in LF, CRLF or CR alone.
Table read_csv(const std::string& path);
// The same on text in memory; `path` names it in errors.
Table parse_csv(std::string text, const std::string& path);
// CSV text a writer was appending to when it stopped: a last line with no newline that leaves a
// quoted field open is cut (it is a torn row, and would be an unterminated-quote error); else unchanged.
std::string cut_torn_line(std::string text);
// First worksheet of an .xlsx workbook (or the sheet named `sheet` when given).
Table read_xlsx(const std::string& path, const std::string& sheet = "");
// By extension: .xlsx -> read_xlsx, anything else -> read_csv. Throws DataError naming the file.
Table read_table(const std::string& path);

// The ZIP pieces, public for tests: names of the entries, and one entry's bytes (stored or deflated).
std::vector<std::string> zip_entries(const std::string& zip_path);
std::string zip_read(const std::string& zip_path, const std::string& entry);

// Writes rows as RFC 4180 CSV (quotes where needed). Throws DataError when it cannot write.
void write_csv(const std::string& path, const Table& rows);

// A row whose every cell is empty or spaces (",,,", an empty sheet row): not a row of data. Every
// reader of a table skips it silently.
bool blank_row(const std::vector<std::string>& row);

// Header handling shared by the readers: lowercase, only letters and digits ("Onset Frame" ->
// "onsetframe"). find_header_row returns the first row holding all the given normalised names, or -1.
std::string normalise_header(const std::string& s);
int find_header_row(const Table& t, const std::vector<std::string>& required);
// Column whose normalised header equals one of `aliases` (first alias wins), or -1.
int find_column(const std::vector<std::string>& header, const std::vector<std::string>& aliases);

// A string as the inside of a JSON string literal (nlohmann's escaping: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD). Shared by the manifest and report writers.
std::string json_escape(const std::string& s);

}  // namespace ahmsa::data
