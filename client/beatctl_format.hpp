// Output helpers shared by beatctl's commands: JSON text for scripts and
// the human-readable rendering of the daemon's STATS object.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/json_text.hpp"

namespace beat::ctl {

using beat::json_quote;  // shared/json_text.hpp

// A number as JSON: finite doubles with up to 6 significant decimals,
// NaN and infinities as null (JSON has no spelling for them).
std::string json_number(double v);

// Builds one JSON object, fields in insertion order:
//   JsonObject o; o.add("tasks", 10).add("kernel", "noop"); o.str() == {"tasks":10,"kernel":"noop"}
class JsonObject {
 public:
  JsonObject& add(std::string_view key, std::string_view value);
  JsonObject& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  JsonObject& add(std::string_view key, std::uint64_t value);
  JsonObject& add(std::string_view key, std::int64_t value);
  JsonObject& add(std::string_view key, std::uint32_t value) {
    return add(key, std::uint64_t{value});
  }
  JsonObject& add(std::string_view key, int value) { return add(key, std::int64_t{value}); }
  JsonObject& add(std::string_view key, double value);
  JsonObject& add(std::string_view key, bool value);
  // `json` must already be valid JSON text (an object, array, ...).
  JsonObject& add_raw(std::string_view key, std::string_view json);
  std::string str() const { return body_.empty() ? "{}" : "{" + body_ + "}"; }

 private:
  void key(std::string_view k);
  std::string body_;
};

// Renders a STATS JSON object for people: scalars as "key: value", nested
// objects indented, arrays of objects one line per element ("- a=1 b=2").
// Makes no assumption about which fields the daemon reports. Throws
// std::runtime_error naming the parse error when `json` is not JSON.
std::string render_stats(std::string_view json);

}  // namespace beat::ctl
