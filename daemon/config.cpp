#include "daemon/config.hpp"

#include <toml++/toml.h>

#include <fstream>
#include <sstream>

#include "shared/protocol.hpp"
#include "shared/ring.hpp"

namespace beat {

namespace {

Status bad(std::string_view origin, std::string_view key, const std::string& why) {
  return Status(ErrorCode::kInvalidArgument,
                std::string(origin) + ": key '" + std::string(key) + "' " + why);
}

std::string describe(const toml::node& n) {
  std::ostringstream os;
  if (n.is_string()) {
    os << '"' << n.value<std::string>().value_or("") << '"';
  } else {
    switch (n.type()) {
      case toml::node_type::integer: os << *n.value<std::int64_t>(); break;
      case toml::node_type::floating_point: os << *n.value<double>(); break;
      case toml::node_type::boolean: os << (*n.value<bool>() ? "true" : "false"); break;
      case toml::node_type::table: os << "a table"; break;
      case toml::node_type::array: os << "an array"; break;
      default: os << "a " << n.type(); break;
    }
  }
  return os.str();
}

// Reads an integer key within [lo, hi]; absent keys keep `out`.
template <typename T>
Status read_int(const toml::table& t, std::string_view section, std::string_view name,
                std::int64_t lo, std::int64_t hi, T& out, std::string_view origin) {
  const std::string key = std::string(section) + "." + std::string(name);
  const toml::node* n = t.get(name);
  if (n == nullptr) return Status::ok();
  auto v = n->value_exact<std::int64_t>();
  if (!v) return bad(origin, key, "must be an integer, got " + describe(*n));
  if (*v < lo || *v > hi)
    return bad(origin, key,
               "is " + std::to_string(*v) + ", must be in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]");
  out = static_cast<T>(*v);
  return Status::ok();
}

Status read_string(const toml::table& t, std::string_view section, std::string_view name,
                   std::string& out, std::string_view origin) {
  const toml::node* n = t.get(name);
  if (n == nullptr) return Status::ok();
  auto v = n->value_exact<std::string>();
  if (!v)
    return bad(origin, std::string(section) + "." + std::string(name),
               "must be a string, got " + describe(*n));
  out = *v;
  return Status::ok();
}

// Reads an array of strings; absent keys keep `out`.
Status read_string_array(const toml::table& t, std::string_view section, std::string_view name,
                         std::vector<std::string>& out, std::string_view origin) {
  const std::string key = std::string(section) + "." + std::string(name);
  const toml::node* n = t.get(name);
  if (n == nullptr) return Status::ok();
  const toml::array* a = n->as_array();
  if (a == nullptr) return bad(origin, key, "must be an array of strings, got " + describe(*n));
  std::vector<std::string> values;
  for (std::size_t i = 0; i < a->size(); ++i) {
    auto v = (*a)[i].value_exact<std::string>();
    if (!v)
      return bad(
          origin, key,
          "must be an array of strings; element " + std::to_string(i) + " is " + describe((*a)[i]));
    values.push_back(*v);
  }
  out = std::move(values);
  return Status::ok();
}

Status read_bool(const toml::table& t, std::string_view section, std::string_view name, bool& out,
                 std::string_view origin) {
  const toml::node* n = t.get(name);
  if (n == nullptr) return Status::ok();
  auto v = n->value_exact<bool>();
  if (!v)
    return bad(origin, std::string(section) + "." + std::string(name),
               "must be true or false, got " + describe(*n));
  out = *v;
  return Status::ok();
}

Status check_known(const toml::table& t, std::string_view section,
                   std::initializer_list<std::string_view> known, std::string_view origin) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (auto name : known) ok = ok || k.str() == name;
    if (!ok) {
      const std::string key = section.empty() ? std::string(k.str())
                                              : std::string(section) + "." + std::string(k.str());
      return Status(ErrorCode::kInvalidArgument,
                    std::string(origin) + ": unknown key '" + key + "'");
    }
  }
  return Status::ok();
}

const toml::table* section_of(const toml::table& root, std::string_view name, Status& err,
                              std::string_view origin) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) {
    err = bad(origin, name, "must be a table, got " + describe(*n));
    return nullptr;
  }
  return n->as_table();
}

#define BEAT_TRY(expr)                      \
  do {                                      \
    if (Status s_ = (expr); !s_) return s_; \
  } while (0)

}  // namespace

Status check_metrics_address(std::string_view value, std::string_view key) {
  if (value.empty()) return Status::ok();
  const auto colon = value.rfind(':');
  const auto invalid = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument,
                  "key '" + std::string(key) + "' is \"" + std::string(value) + "\": " + why);
  };
  if (colon == std::string_view::npos || colon == 0) return invalid("expected HOST:PORT");
  const auto port = value.substr(colon + 1);
  if (port.empty() || port.size() > 5) return invalid("port must be a number in [0, 65535]");
  std::uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return invalid("port must be a number in [0, 65535]");
    p = p * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (p > 65535) return invalid("port must be a number in [0, 65535]");
  return Status::ok();
}

Status validate_config(const Config& c) {
  const auto range = [](std::string_view key, std::uint64_t v, std::uint64_t lo, std::uint64_t hi) {
    if (v >= lo && v <= hi) return Status::ok();
    return Status(ErrorCode::kInvalidArgument,
                  "key '" + std::string(key) + "' is " + std::to_string(v) + ", must be in [" +
                      std::to_string(lo) + ", " + std::to_string(hi) + "]");
  };
  for (std::size_t i = 0; i < c.plugin_directories.size(); ++i) {
    const std::string& d = c.plugin_directories[i];
    if (d.empty() || d.front() != '/')
      return Status(ErrorCode::kInvalidArgument, "key 'plugins.directories' element " +
                                                     std::to_string(i) + " is \"" + d +
                                                     "\": must be an absolute path");
  }
  if (c.socket.empty() || c.socket.size() >= 108)
    return Status(ErrorCode::kInvalidArgument,
                  "key 'daemon.socket' is \"" + c.socket +
                      "\": must be a non-empty path shorter than 108 bytes");
  if (c.segment_prefix.empty() || c.segment_prefix.size() > 32)
    return Status(ErrorCode::kInvalidArgument, "key 'daemon.segment_prefix' is \"" +
                                                   c.segment_prefix +
                                                   "\": must have 1 to 32 characters");
  for (char ch : c.segment_prefix)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_'))
      return Status(ErrorCode::kInvalidArgument,
                    "key 'daemon.segment_prefix' is \"" + c.segment_prefix +
                        "\": only letters, digits, '-' and '_' are allowed");
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" &&
      c.log_level != "warn" && c.log_level != "error" && c.log_level != "critical" &&
      c.log_level != "off")
    return Status(ErrorCode::kInvalidArgument,
                  "key 'daemon.log_level' is \"" + c.log_level +
                      "\": must be one of trace, debug, info, warn, error, critical, off");
  BEAT_TRY(range("daemon.socket_mode", c.socket_mode, 0, 0777));
  BEAT_TRY(range("daemon.max_clients", c.max_clients, 1, kMaxClientsLimit));
  BEAT_TRY(range("daemon.shutdown_timeout_ms", c.shutdown_timeout_ms, 0, 3'600'000));
  BEAT_TRY(range("workers.count", c.worker_count, 0, kMaxWorkers));
  BEAT_TRY(range("workers.idle_spin_us", c.idle_spin_us, 0, kMaxIdleSpinUs));
  BEAT_TRY(range("workers.intake_batch", c.intake_batch, 1, kMaxIntakeBatch));
  BEAT_TRY(range("workers.stuck_after_ms", c.stuck_after_ms, 0, kMaxStuckAfterMs));
  BEAT_TRY(range("scheduler.heartbeat_us", c.heartbeat_us, kMinHeartbeatUs, kMaxHeartbeatUs));
  BEAT_TRY(range("scheduler.steal_attempts_per_level", c.steal_attempts_per_level, 0,
                 kMaxStealAttemptsPerLevel));
  BEAT_TRY(range("batching.threshold", c.batch_threshold, 0, kMaxBatchThreshold));
  BEAT_TRY(range("batching.min_batch", c.min_batch, 1, batching::kMaxBatchSize));
  BEAT_TRY(range("batching.max_batch", c.max_batch, 1, batching::kMaxBatchSize));
  BEAT_TRY(range("batching.max_open", c.max_open_batches, 1, batching::kMaxOpenBatches));
  if (c.min_batch > c.max_batch)
    return Status(ErrorCode::kInvalidArgument, "key 'batching.min_batch' is " +
                                                   std::to_string(c.min_batch) +
                                                   ": must not exceed 'batching.max_batch' (" +
                                                   std::to_string(c.max_batch) + ")");
  BEAT_TRY(range("clients.sq_entries_max", c.sq_entries_max, kMinRingEntries, kMaxRingEntries));
  BEAT_TRY(range("clients.cq_entries_max", c.cq_entries_max, kMinRingEntries, kMaxRingEntries));
  BEAT_TRY(range("clients.arena_bytes_max", c.arena_bytes_max, 4096, kMaxArenaBytes));
  if (!is_power_of_two(c.sq_entries_max))
    return Status(ErrorCode::kInvalidArgument, "key 'clients.sq_entries_max' is " +
                                                   std::to_string(c.sq_entries_max) +
                                                   ": must be a power of two");
  if (!is_power_of_two(c.cq_entries_max))
    return Status(ErrorCode::kInvalidArgument, "key 'clients.cq_entries_max' is " +
                                                   std::to_string(c.cq_entries_max) +
                                                   ": must be a power of two");
  BEAT_TRY(check_metrics_address(c.metrics_address, "metrics.address"));
  return Status::ok();
}

Result<Config> parse_config(std::string_view toml_text, std::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << origin << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return Status(ErrorCode::kInvalidArgument, os.str());
  }
  Config c;
  BEAT_TRY(check_known(
      root, "", {"daemon", "workers", "scheduler", "batching", "clients", "metrics", "plugins"},
      origin));
  Status err;
  if (const toml::table* t = section_of(root, "daemon", err, origin)) {
    BEAT_TRY(check_known(*t, "daemon",
                         {"socket", "socket_mode", "segment_prefix", "max_clients", "log_level",
                          "shutdown_timeout_ms"},
                         origin));
    BEAT_TRY(read_string(*t, "daemon", "socket", c.socket, origin));
    BEAT_TRY(read_int(*t, "daemon", "socket_mode", 0, 0777, c.socket_mode, origin));
    BEAT_TRY(read_string(*t, "daemon", "segment_prefix", c.segment_prefix, origin));
    BEAT_TRY(read_int(*t, "daemon", "max_clients", 1, kMaxClientsLimit, c.max_clients, origin));
    BEAT_TRY(read_string(*t, "daemon", "log_level", c.log_level, origin));
    BEAT_TRY(
        read_int(*t, "daemon", "shutdown_timeout_ms", 0, 3'600'000, c.shutdown_timeout_ms, origin));
  }
  BEAT_TRY(err);
  if (const toml::table* t = section_of(root, "workers", err, origin)) {
    BEAT_TRY(check_known(
        *t, "workers", {"count", "idle_spin_us", "intake_batch", "pin", "stuck_after_ms"}, origin));
    BEAT_TRY(
        read_int(*t, "workers", "stuck_after_ms", 0, kMaxStuckAfterMs, c.stuck_after_ms, origin));
    BEAT_TRY(read_int(*t, "workers", "count", 0, kMaxWorkers, c.worker_count, origin));
    BEAT_TRY(read_int(*t, "workers", "idle_spin_us", 0, kMaxIdleSpinUs, c.idle_spin_us, origin));
    BEAT_TRY(read_int(*t, "workers", "intake_batch", 1, kMaxIntakeBatch, c.intake_batch, origin));
    BEAT_TRY(read_bool(*t, "workers", "pin", c.pin, origin));
  }
  BEAT_TRY(err);
  if (const toml::table* t = section_of(root, "scheduler", err, origin)) {
    BEAT_TRY(check_known(
        *t, "scheduler",
        {"heartbeat_us", "steal_policy", "steal_attempts_per_level", "inline_forks"}, origin));
    BEAT_TRY(read_int(*t, "scheduler", "heartbeat_us", kMinHeartbeatUs, kMaxHeartbeatUs,
                      c.heartbeat_us, origin));
    std::string policy(sched::to_string(c.steal_policy));
    BEAT_TRY(read_string(*t, "scheduler", "steal_policy", policy, origin));
    auto kind = sched::parse_steal_policy(policy);
    if (!kind)
      return Status(ErrorCode::kInvalidArgument,
                    std::string(origin) + ": key 'scheduler.steal_policy' is \"" + policy +
                        "\": must be one of random, topology");
    c.steal_policy = *kind;
    BEAT_TRY(read_int(*t, "scheduler", "steal_attempts_per_level", 0, kMaxStealAttemptsPerLevel,
                      c.steal_attempts_per_level, origin));
    BEAT_TRY(read_bool(*t, "scheduler", "inline_forks", c.inline_forks, origin));
  }
  BEAT_TRY(err);
  if (const toml::table* t = section_of(root, "batching", err, origin)) {
    BEAT_TRY(check_known(*t, "batching",
                         {"grouping", "simd", "threshold", "min_batch", "max_batch", "max_open"},
                         origin));
    std::string grouping(batching::to_string(c.grouping));
    BEAT_TRY(read_string(*t, "batching", "grouping", grouping, origin));
    if (const auto g = batching::parse_grouping(grouping))
      c.grouping = *g;
    else
      return Status(ErrorCode::kInvalidArgument, std::string(origin) +
                                                     ": key 'batching.grouping' is \"" + grouping +
                                                     "\": must be one of similarity, fifo");
    std::string simd = c.simd ? "auto" : "scalar";
    BEAT_TRY(read_string(*t, "batching", "simd", simd, origin));
    if (simd == "auto")
      c.simd = true;
    else if (simd == "scalar")
      c.simd = false;
    else
      return Status(ErrorCode::kInvalidArgument, std::string(origin) +
                                                     ": key 'batching.simd' is \"" + simd +
                                                     "\": must be one of auto, scalar");
    BEAT_TRY(
        read_int(*t, "batching", "threshold", 0, kMaxBatchThreshold, c.batch_threshold, origin));
    BEAT_TRY(
        read_int(*t, "batching", "min_batch", 1, batching::kMaxBatchSize, c.min_batch, origin));
    BEAT_TRY(
        read_int(*t, "batching", "max_batch", 1, batching::kMaxBatchSize, c.max_batch, origin));
    BEAT_TRY(read_int(*t, "batching", "max_open", 1, batching::kMaxOpenBatches, c.max_open_batches,
                      origin));
  }
  BEAT_TRY(err);
  if (const toml::table* t = section_of(root, "clients", err, origin)) {
    BEAT_TRY(check_known(*t, "clients", {"sq_entries_max", "cq_entries_max", "arena_bytes_max"},
                         origin));
    BEAT_TRY(read_int(*t, "clients", "sq_entries_max", kMinRingEntries, kMaxRingEntries,
                      c.sq_entries_max, origin));
    BEAT_TRY(read_int(*t, "clients", "cq_entries_max", kMinRingEntries, kMaxRingEntries,
                      c.cq_entries_max, origin));
    BEAT_TRY(read_int(*t, "clients", "arena_bytes_max", 4096,
                      static_cast<std::int64_t>(kMaxArenaBytes), c.arena_bytes_max, origin));
  }
  BEAT_TRY(err);
  if (const toml::table* t = section_of(root, "plugins", err, origin)) {
    BEAT_TRY(check_known(*t, "plugins", {"directories"}, origin));
    BEAT_TRY(read_string_array(*t, "plugins", "directories", c.plugin_directories, origin));
  }
  BEAT_TRY(err);
  if (const toml::table* t = section_of(root, "metrics", err, origin)) {
    BEAT_TRY(check_known(*t, "metrics", {"address"}, origin));
    BEAT_TRY(read_string(*t, "metrics", "address", c.metrics_address, origin));
  }
  BEAT_TRY(err);
  if (Status s = validate_config(c); !s)
    return Status(s.code(), std::string(origin) + ": " + s.message());
  return c;
}

Result<Config> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::kNotFound, "cannot read config file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace beat
