// Reading STATS JSON in integration tests, by key: the object is flat
// enough for that (per-worker objects, per-client objects, then top-level
// counters, then the "batching" object).
//
// Thread-safety: pure functions, but stats_when talks to the daemon through
// `c` (one thread at a time).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "client/client.hpp"

namespace beat::test {

// The number after `"key":` at or after `from`; nullopt when absent.
inline std::optional<double> json_number(const std::string& json, std::string_view key,
                                         std::size_t from = 0) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive)
  // about "\"" + std::string(...).
  std::string needle(1, '"');
  needle.append(key).append("\":");
  const std::size_t at = json.find(needle, from);
  if (at == std::string::npos) return std::nullopt;
  std::size_t used = 0;
  const std::string rest = json.substr(at + needle.size());
  try {
    const double v = std::stod(rest, &used);
    return used == 0 ? std::nullopt : std::optional<double>(v);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The counter `key` at or after `marker` (a failure when either is absent).
inline std::uint64_t counter_after(const std::string& json, std::string_view marker,
                                   std::string_view key) {
  const std::size_t from = json.find(marker);
  const auto v = from == std::string::npos ? std::nullopt : json_number(json, key, from);
  EXPECT_TRUE(v.has_value()) << "no \"" << key << "\" after " << marker << " in " << json;
  return v ? static_cast<std::uint64_t>(*v) : 0;
}

// A top-level counter: the top-level keys follow "clients_connected", after
// the workers and clients arrays whose objects reuse some of the names.
inline std::uint64_t top_level(const std::string& json, std::string_view key) {
  return counter_after(json, "\"clients_connected\":", key);
}

// Sum of a per-worker counter over the "workers" array.
inline std::uint64_t sum_over_workers(const std::string& json, std::string_view key) {
  const std::size_t end = json.find("\"clients\":[");
  std::uint64_t sum = 0;
  for (std::size_t at = json.find("{\"index\":"); at < end; at = json.find("{\"index\":", at + 1)) {
    const auto v = json_number(json, key, at);
    EXPECT_TRUE(v.has_value()) << "worker at " << at << " has no \"" << key << "\"";
    if (v) sum += static_cast<std::uint64_t>(*v);
  }
  return sum;
}

// STATS, re-read until `done` holds or `timeout` passes: a worker publishes
// its counters at state changes, which may come a moment after the
// completion a test reaped (none lagged in practice; this keeps it so).
inline std::string stats_when(Client& c, const std::function<bool(const std::string&)>& done,
                              std::chrono::seconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string json;
  for (;;) {
    auto stats = c.stats_json();
    EXPECT_TRUE(stats) << stats.status().message();
    if (!stats) return json;
    json = std::move(stats).value();
    if (done(json) || std::chrono::steady_clock::now() >= deadline) return json;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// A counter of the "batching" object.
inline std::uint64_t batching_counter(const std::string& json, std::string_view key) {
  return counter_after(json, "\"batching\":{", key);
}

}  // namespace beat::test
