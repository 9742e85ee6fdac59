#include "train/data/xml.h"

#include <cctype>
#include <cstdlib>

namespace ahmsa::data::xml {

static void put_utf8(std::string& out, unsigned long cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) out += char(cp);
  else if (cp < 0x800) out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
  else if (cp < 0x10000)
    out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
  else
    out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F)), out += char(0x80 | ((cp >> 6) & 0x3F)),
        out += char(0x80 | (cp & 0x3F));
}

std::string unescape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string::npos || semi - i > 12) {  // no entity is longer than &#x10FFFF;
      out += s[i];
      continue;
    }
    std::string ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (ent.size() > 1 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      const char* digits = ent.c_str() + (hex ? 2 : 1);
      char* end = nullptr;
      unsigned long cp = std::strtoul(digits, &end, hex ? 16 : 10);  // saturates; put_utf8 maps it to U+FFFD
      if (end == digits || *end != '\0') {
        out += s.substr(i, semi - i + 1);
      } else
        put_utf8(out, cp);
    } else
      out += s.substr(i, semi - i + 1);
    i = semi;
  }
  return out;
}

std::string text_at(const std::string& x, size_t pos) {
  if (pos >= x.size()) return "";
  size_t e = x.find('<', pos);
  return unescape(x.substr(pos, e == std::string::npos ? std::string::npos : e - pos));
}

static std::string strip_prefix(const std::string& n) {
  size_t c = n.find(':');
  return c == std::string::npos ? n : n.substr(c + 1);
}

bool next_tag(const std::string& x, size_t pos, Tag& tag) {
  for (;;) {
    size_t lt = pos < x.size() ? x.find('<', pos) : std::string::npos;
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
    tag = Tag();
    tag.start = lt;
    tag.name = !raw.empty() && raw[0] == '/' ? "/" + strip_prefix(raw.substr(1)) : strip_prefix(raw);
    for (;;) {  // attributes
      while (i < x.size() && std::isspace((unsigned char)x[i])) ++i;
      if (i >= x.size()) return false;
      if (x[i] == '>') {
        tag.end = i + 1;
        break;
      }
      if (x[i] == '/' && i + 1 < x.size() && x[i + 1] == '>') {
        tag.self_closing = true, tag.end = i + 2;
        break;
      }
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
          tag.attrs[an] = unescape(x.substr(i + 1, e - i - 1));
          i = e + 1;
        }
      } else if (i < x.size() && x[i] != '>')
        ++i;
    }
    return true;
  }
}

}  // namespace ahmsa::data::xml
