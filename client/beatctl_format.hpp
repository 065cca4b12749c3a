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

// The human view of a STATS JSON object (`beatctl status`): a header of
// version, pid, uptime, state, socket, task and steal totals, then a table of
// workers and a table of clients (or "no clients connected"). Ends with a
// newline. Fields it does not know are not shown (`--json` has them all); a
// field it knows that is absent or of another type shows as "-", so a daemon
// of another version never makes it fail. Control characters in strings the
// daemon relays (client names) print as '?'. Throws std::runtime_error naming
// the parse error when `json` is not JSON.
std::string render_stats(std::string_view json);

// Seconds as "1d02h03m04s", "1h02m03s", "2m03s" or "7s" (whole seconds,
// rounded down); "-" for a negative, non-finite or absurd value.
std::string format_uptime(double seconds);

// Bytes as "512 B", "64 KiB", "1.5 MiB" (binary units, at most one decimal).
std::string format_bytes(std::uint64_t bytes);

}  // namespace beat::ctl
