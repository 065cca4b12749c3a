// JSON string quoting for the text the protocol carries as JSON (the STATS
// reply) and for tools that print JSON (beatctl --json).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace beat {

// `s` as a JSON string literal, quotes included (RFC 8259 escaping; bytes
// >= 0x80 pass through unchanged, so UTF-8 stays UTF-8).
inline std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace beat
