// ZIP layout (PKWARE APPNOTE): the End Of Central Directory record (signature 0x06054b50) at the end
// of the file gives the offset of the central directory; each central entry (0x02014b50) gives the
// method, sizes and offset of a local header (0x04034b50) after which the entry's bytes follow.
#include "train/data/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "train/data/table.h"

namespace ahmsa::data::zip {

static uint32_t le32(const std::string& b, size_t o) {
  return uint32_t((unsigned char)b[o]) | uint32_t((unsigned char)b[o + 1]) << 8 |
         uint32_t((unsigned char)b[o + 2]) << 16 | uint32_t((unsigned char)b[o + 3]) << 24;
}
static uint16_t le16(const std::string& b, size_t o) {
  return uint16_t((unsigned char)b[o]) | uint16_t((unsigned char)b[o + 1]) << 8;
}

std::vector<Entry> directory(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 22) throw DataError("'" + path + "' is not a ZIP/xlsx file (too short)");
  size_t eocd = std::string::npos;
  size_t lowest = bytes.size() > 22 + 65535 ? bytes.size() - 22 - 65535 : 0;
  for (size_t i = bytes.size() - 22 + 1; i-- > lowest;)
    if (le32(bytes, i) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) throw DataError("'" + path + "' is not a ZIP/xlsx file (no end of central directory)");
  uint16_t count = le16(bytes, eocd + 10);
  uint32_t dir_offset = le32(bytes, eocd + 16);
  if (dir_offset == 0xFFFFFFFFu || count == 0xFFFF) throw DataError("'" + path + "': ZIP64 archives are not supported");
  std::vector<Entry> out;
  size_t p = dir_offset;
  for (int i = 0; i < count; ++i) {  // each record is >= 46 bytes of the file: the list is bounded by it
    if (p + 46 > bytes.size() || le32(bytes, p) != 0x02014b50)
      throw DataError("'" + path + "': corrupt ZIP central directory (entry " + std::to_string(i) + " at byte " +
                      std::to_string(p) + ")");
    Entry e;
    e.directory_offset = p;
    e.method = le16(bytes, p + 10);
    e.compressed = le32(bytes, p + 20);
    e.uncompressed = le32(bytes, p + 24);
    uint16_t name_len = le16(bytes, p + 28), extra_len = le16(bytes, p + 30), comment_len = le16(bytes, p + 32);
    e.local_offset = le32(bytes, p + 42);
    if (p + 46 + name_len > bytes.size())
      throw DataError("'" + path + "': corrupt ZIP entry name (entry " + std::to_string(i) + " at byte " +
                      std::to_string(p) + ")");
    e.name = bytes.substr(p + 46, name_len);
    out.push_back(e);
    p += 46 + size_t(name_len) + extra_len + comment_len;
  }
  return out;
}

std::string extract(const std::string& bytes, const Entry& e, const std::string& path) {
  const std::string where = "'" + path + "': ZIP entry '" + e.name + "'";
  size_t p = e.local_offset;
  if (p + 30 > bytes.size() || le32(bytes, p) != 0x04034b50)
    throw DataError(where + ": corrupt local header at byte " + std::to_string(p));
  size_t data = p + 30 + le16(bytes, p + 26) + le16(bytes, p + 28);
  if (data + e.compressed > bytes.size())
    throw DataError(where + " is truncated: " + std::to_string(e.compressed) + " bytes from byte " + std::to_string(data) +
                    " of a " + std::to_string(bytes.size()) + "-byte file");
  if (e.method == 0) {
    if (e.uncompressed != e.compressed)
      throw DataError(where + " is stored but claims " + std::to_string(e.uncompressed) + " bytes for " +
                      std::to_string(e.compressed));
    return bytes.substr(data, e.compressed);
  }
  if (e.method != 8) throw DataError(where + " uses unsupported method " + std::to_string(e.method));
  const uint64_t bound = std::min<uint64_t>(uint64_t(e.compressed) * kMaxRatio, kMaxEntryBytes);
  if (e.uncompressed > bound)
    throw DataError(where + " claims " + std::to_string(e.uncompressed) + " bytes uncompressed from " +
                    std::to_string(e.compressed) + " compressed: above the limit of " + std::to_string(bound) + " (" +
                    std::to_string(kMaxRatio) + "x the compressed size, at most " + std::to_string(kMaxEntryBytes) + ")");
  // Raw deflate (no zlib header): windowBits = -15. The output buffer is the claimed size (bounded
  // above); a stream that wants more, or ends short, is corrupt.
  std::string out(e.uncompressed, '\0');
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -15) != Z_OK) throw DataError(where + ": zlib inflateInit2 failed");
  zs.next_in = (Bytef*)bytes.data() + data;
  zs.avail_in = e.compressed;
  zs.next_out = (Bytef*)out.data();
  zs.avail_out = (uInt)out.size();
  int rc = inflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || produced != e.uncompressed)
    throw DataError(where + ": cannot inflate (zlib " + std::to_string(rc) + ", " + std::to_string(produced) + " of " +
                    std::to_string(e.uncompressed) + " bytes)");
  return out;
}

}  // namespace ahmsa::data::zip

namespace ahmsa::data {

std::vector<std::string> zip_entries(const std::string& zip_path) {
  std::vector<std::string> names;
  for (auto& e : zip::directory(read_file_bytes(zip_path), zip_path)) names.push_back(e.name);
  return names;
}

std::string zip_read(const std::string& zip_path, const std::string& entry) {
  std::string bytes = read_file_bytes(zip_path);
  for (auto& e : zip::directory(bytes, zip_path))
    if (e.name == entry) return zip::extract(bytes, e, zip_path);
  throw DataError("'" + zip_path + "' has no entry '" + entry + "'");
}

}  // namespace ahmsa::data
