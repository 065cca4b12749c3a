#include "client/beatctl_format.hpp"

// property_tree's JSON parser still includes <boost/bind.hpp>, whose global
// placeholders Boost 1.74 deprecates with a message on every build.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

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

namespace {

bool is_array(const pt::ptree& t) {
  if (t.empty()) return false;
  for (const auto& [k, v] : t)
    if (!k.empty()) return false;
  return true;
}

// "a=1 b=2 c.d=3" for one array element.
void flatten(const pt::ptree& t, const std::string& prefix, std::string& out) {
  if (t.empty()) {
    if (!out.empty()) out += ' ';
    out += prefix.empty() ? t.data() : prefix + "=" + t.data();
    return;
  }
  std::size_t index = 0;
  for (const auto& [k, v] : t) {
    const std::string name = k.empty() ? std::to_string(index) : k;
    flatten(v, prefix.empty() ? name : prefix + "." + name, out);
    ++index;
  }
}

// STATS members that are always arrays. property_tree reads "[]" and ""
// alike (an empty node), so an empty list is recognised by its name.
bool is_stats_list(const std::string& key) { return key == "workers" || key == "clients"; }

void render(const pt::ptree& t, int indent, std::string& out) {
  const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
  for (const auto& [k, v] : t) {
    if (v.empty() && v.data().empty() && is_stats_list(k)) {
      out += pad + k + " (0)\n";
    } else if (v.empty()) {
      out += pad + k + ": " + v.data() + "\n";
    } else if (is_array(v)) {
      out += pad + k + " (" + std::to_string(v.size()) + "):\n";
      for (const auto& [unused, element] : v) {
        std::string line;
        flatten(element, "", line);
        out += pad + "  - " + line + "\n";
      }
    } else {
      out += pad + k + ":\n";
      render(v, indent + 1, out);
    }
  }
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
  render(tree, 0, out);
  return out;
}

}  // namespace beat::ctl
