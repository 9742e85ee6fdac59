// Just enough XML for the SpreadsheetML parts of an .xlsx: elements, attributes, text, entities.
// No DTDs. A forward scanner (no tree, no recursion): memory is the tag being read.
#pragma once
#include <map>
#include <string>

namespace ahmsa::data::xml {

struct Tag {
  std::string name;  // without namespace prefix; "/name" for an end tag
  std::map<std::string, std::string> attrs;
  bool self_closing = false;
  size_t start = 0;  // index of '<'
  size_t end = 0;    // index after '>'
};

// The next tag at or after `pos`, skipping comments, CDATA, <? ?> and <! >. False at the end (or at
// a tag cut off by the end of the text).
bool next_tag(const std::string& x, size_t pos, Tag& tag);
// The text from `pos` to the next '<', entities decoded.
std::string text_at(const std::string& x, size_t pos);
// &amp; &lt; &gt; &quot; &apos; and &#N; / &#xN; (UTF-8 encoded; invalid code points become U+FFFD).
std::string unescape(const std::string& s);

}  // namespace ahmsa::data::xml
