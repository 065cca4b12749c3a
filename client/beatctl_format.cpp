#include "client/beatctl_format.hpp"

// property_tree's JSON parser still includes <boost/bind.hpp>, whose global
// placeholders Boost 1.74 deprecates with a message on every build.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS

#include <algorithm>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace beat::ctl {

namespace pt = boost::property_tree;

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  // %.6g would switch to exponent notation for big throughputs; keep the
  // integer part and three decimals instead.
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  std::string s = buf;
  // Trim trailing zeros ("12.500" -> "12.5", "7.000" -> "7").
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s.empty() || s == "-") s = "0";
  return s;
}

void JsonObject::key(std::string_view k) {
  if (!body_.empty()) body_ += ',';
  body_ += json_quote(k);
  body_ += ':';
}

JsonObject& JsonObject::add(std::string_view k, std::string_view value) {
  key(k);
  body_ += json_quote(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, std::uint64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, std::int64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, double value) {
  key(k);
  body_ += json_number(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}
JsonObject& JsonObject::add_raw(std::string_view k, std::string_view json) {
  key(k);
  body_ += json;
  return *this;
}

std::string format_uptime(double seconds) {
  // Past ~3 million years an uptime is a daemon's bug, not a duration.
  constexpr double kMaxSeconds = 1e14;
  if (!std::isfinite(seconds) || seconds < 0 || seconds > kMaxSeconds) return "-";
  auto s = static_cast<std::uint64_t>(seconds);
  const std::uint64_t days = s / 86400, hours = s / 3600 % 24, minutes = s / 60 % 60;
  s %= 60;
  char buf[64];
  if (days > 0)
    std::snprintf(buf, sizeof(buf), "%llud%02lluh%02llum%02llus",
                  static_cast<unsigned long long>(days), static_cast<unsigned long long>(hours),
                  static_cast<unsigned long long>(minutes), static_cast<unsigned long long>(s));
  else if (hours > 0)
    std::snprintf(buf, sizeof(buf), "%lluh%02llum%02llus", static_cast<unsigned long long>(hours),
                  static_cast<unsigned long long>(minutes), static_cast<unsigned long long>(s));
  else if (minutes > 0)
    std::snprintf(buf, sizeof(buf), "%llum%02llus", static_cast<unsigned long long>(minutes),
                  static_cast<unsigned long long>(s));
  else
    std::snprintf(buf, sizeof(buf), "%llus", static_cast<unsigned long long>(s));
  return buf;
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::size_t unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return std::to_string(bytes) + " B";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", value);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s + " " + kUnits[unit];
}

namespace {

constexpr const char* kMissing = "-";

// Reading a field of a STATS object (property_tree keeps every JSON scalar
// as text). Each returns nullopt when the field is absent, is an object or
// array, or does not parse as the type asked for.
const pt::ptree* child(const pt::ptree& t, const char* key) {
  const auto it = t.find(key);  // find(): keys are not paths, no '.' splitting
  return it == t.not_found() ? nullptr : &it->second;
}

std::optional<std::string> text(const pt::ptree& t, const char* key) {
  const pt::ptree* c = child(t, key);
  if (c == nullptr || !c->empty() || c->data().empty()) return std::nullopt;
  return c->data();
}

std::optional<std::uint64_t> count(const pt::ptree& t, const char* key) {
  const auto s = text(t, key);
  if (!s) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc{} || end != s->data() + s->size()) return std::nullopt;
  return v;
}

std::optional<double> real(const pt::ptree& t, const char* key) {
  const auto s = text(t, key);
  if (!s) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc{} || end != s->data() + s->size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// The members of an array field: nullptr when absent or a scalar. An empty
// array reads as an empty node (property_tree cannot tell [] from "").
const pt::ptree* list(const pt::ptree& t, const char* key) {
  const pt::ptree* c = child(t, key);
  if (c == nullptr || (c->empty() && !c->data().empty())) return nullptr;
  return c;
}

// Strings the daemon relays from elsewhere (a client's name) may hold
// control characters; printed as '?' so they cannot steer the terminal.
std::string printable(std::string s) {
  for (char& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  return s;
}

std::string show(const std::optional<std::string>& v) { return v ? printable(*v) : kMissing; }
std::string show(const std::optional<std::uint64_t>& v) {
  return v ? std::to_string(*v) : kMissing;
}
// `ratio` x 100 with `decimals` decimals, no unit: "3.45".
std::string percent(const std::optional<double>& ratio, int decimals) {
  if (!ratio) return kMissing;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, *ratio * 100);
  return buf;
}
std::string yes_no(const pt::ptree& t, const char* key) {
  const auto v = text(t, key);
  if (v == "true") return "yes";
  if (v == "false") return "no";
  return kMissing;
}
// "3/256": a ring's depth out of its size.
std::string depth_of(const pt::ptree& t, const char* depth_key, const char* entries_key) {
  const auto depth = count(t, depth_key);
  const auto entries = count(t, entries_key);
  if (!depth) return kMissing;
  return entries ? std::to_string(*depth) + "/" + std::to_string(*entries) : std::to_string(*depth);
}

// Columns as wide as their widest cell, two spaces apart, left-aligned; no
// trailing blanks. Widths count UTF-8 code points, not bytes.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  std::string str() const {
    std::vector<std::size_t> widths;
    for (const auto& row : rows_) {
      if (widths.size() < row.size()) widths.resize(row.size(), 0);
      for (std::size_t i = 0; i < row.size(); ++i)
        widths[i] = std::max(widths[i], display_width(row[i]));
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (std::size_t i = 0; i < row.size(); ++i) {
        if (i > 0) line.append(widths[i - 1] - display_width(row[i - 1]) + 2, ' ');
        line += row[i];
      }
      out += line + "\n";
    }
    return out;
  }

 private:
  static std::size_t display_width(const std::string& s) {
    std::size_t n = 0;
    for (const char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    return n;
  }
  std::vector<std::vector<std::string>> rows_;
};

void render_header(const pt::ptree& t, std::string& out) {
  const auto uptime = real(t, "uptime_seconds");
  out += "beatd " + show(text(t, "version")) + " (protocol " + show(count(t, "protocol")) +
         "), pid " + show(count(t, "pid")) + ", up " +
         (uptime ? format_uptime(*uptime) : kMissing) + ", " + show(text(t, "state")) + "\n";

  // metrics_endpoint is "" when the daemon serves no metrics.
  std::string metrics = kMissing;
  if (const pt::ptree* m = child(t, "metrics_endpoint"); m != nullptr && m->empty())
    metrics = m->data().empty() ? "off" : "http://" + printable(m->data()) + "/metrics";
  out += "socket " + show(text(t, "socket")) + ", metrics " + metrics + "\n";

  const auto steal_rate = real(t, "steal_rate");
  out += "tasks " + show(count(t, "tasks_completed")) + " completed, " +
         show(count(t, "tasks_failed")) + " failed; steals " + show(count(t, "steals")) + " of " +
         show(count(t, "spawns")) + " spawns (" +
         (steal_rate ? percent(steal_rate, 2) + " %" : kMissing) + "), policy " +
         show(text(t, "steal_policy")) + "\n";

  const pt::ptree* workers = list(t, "workers");
  out += "workers " + (workers ? std::to_string(workers->size()) : kMissing) + " (" +
         show(count(t, "parked_workers")) + " parked), clients " +
         show(count(t, "clients_connected")) + " connected (" + show(count(t, "sessions_total")) +
         " since start), kernels " + show(count(t, "kernels")) + "\n";
}

// "1:10 2-5:3 ...": a histogram object's buckets in the daemon's order.
// "name:count ..."; with `skip_zero`, buckets that counted nothing are left
// out (the time histogram has 22).
std::string buckets(const pt::ptree& histogram, bool skip_zero = false) {
  std::string s;
  for (const auto& [name, value] : histogram) {
    if (skip_zero && value.empty() && value.data() == "0") continue;
    if (!s.empty()) s += ' ';
    s += printable(name) + ":" + (value.empty() && !value.data().empty() ? value.data() : kMissing);
  }
  return s.empty() ? kMissing : s;
}

void render_batching(const pt::ptree& t, std::string& out) {
  const pt::ptree* b = child(t, "batching");
  if (b == nullptr || b->empty()) {
    out += "batching -\n";
    return;
  }
  out += "batching " + show(text(*b, "grouping")) + ", simd " + show(text(*b, "simd")) + ": " +
         show(count(*b, "batches")) + " batches, " + show(count(*b, "tasks_grouped")) +
         " tasks grouped, " + show(count(*b, "tasks_alone")) + " alone, " +
         show(count(*b, "fingerprints_corrected")) + " fingerprints corrected\n";
  if (const pt::ptree* sizes = child(*b, "batch_size"); sizes != nullptr && !sizes->empty())
    out += "  batch sizes   " + buckets(*sizes) + "\n";
  if (const pt::ptree* ns = child(*b, "formation_ns"); ns != nullptr && !ns->empty())
    out += "  formation ns  " + buckets(*ns, true) + "\n";
}

// QUEUE and STATE are the per-worker "queue_size" (stealable jobs) and
// "state" ("busy", "idle", "parked") when the daemon reports them.
void render_workers(const pt::ptree& t, std::string& out) {
  const pt::ptree* workers = list(t, "workers");
  if (workers == nullptr) {
    out += "workers not reported\n";
    return;
  }
  Table table({"WORKER", "CORE", "PU", "PINNED", "TASKS", "FAILED", "STEALS", "STEAL%", "BUSY%",
               "QUEUE", "STATE"});
  for (const auto& [unused, w] : *workers)
    table.add({show(count(w, "index")), show(count(w, "core")), show(count(w, "os_pu")),
               yes_no(w, "pinned"), show(count(w, "tasks")), show(count(w, "failed")),
               show(count(w, "steals")), percent(real(w, "steal_rate"), 2),
               percent(real(w, "busy_ratio"), 1), show(count(w, "queue_size")),
               show(text(w, "state"))});
  out += table.str();
}

void render_clients(const pt::ptree& t, std::string& out) {
  const pt::ptree* clients = list(t, "clients");
  if (clients == nullptr) {
    out += "clients not reported\n";
    return;
  }
  if (clients->empty()) {
    out += "no clients connected\n";
    return;
  }
  Table table({"CLIENT", "NAME", "PID", "SQ DEPTH", "CQ DEPTH", "INFLIGHT", "COMPLETED", "FAILED",
               "ARENA"});
  for (const auto& [unused, c] : *clients) {
    const auto arena = count(c, "arena_bytes");
    table.add({show(count(c, "id")), show(text(c, "name")), show(count(c, "pid")),
               depth_of(c, "sq_depth", "sq_entries"), depth_of(c, "cq_depth", "cq_entries"),
               show(count(c, "inflight")), show(count(c, "tasks_completed")),
               show(count(c, "tasks_failed")), arena ? format_bytes(*arena) : kMissing});
  }
  out += table.str();
}

}  // namespace

std::string render_stats(std::string_view json) {
  pt::ptree tree;
  std::istringstream in{std::string(json)};
  try {
    pt::read_json(in, tree);
  } catch (const pt::json_parser_error& e) {
    throw std::runtime_error("daemon STATS reply is not JSON: " + e.message() + " at line " +
                             std::to_string(e.line()));
  }
  std::string out;
  render_header(tree, out);
  render_batching(tree, out);
  out += "\n";
  render_workers(tree, out);
  out += "\n";
  render_clients(tree, out);
  return out;
}

}  // namespace beat::ctl
