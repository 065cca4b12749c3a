// beatd configuration: one TOML file (config/beatd.toml documents every key)
// overridden by command-line flags.
//
// Unknown keys, wrong types and out-of-range values are errors whose message
// names the key and the value; beatd exits non-zero on any of them.
// Thread-safety: a Config is a value; the daemon copies what workers need.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/batching/batch_former.hpp"
#include "daemon/scheduler/steal_policy.hpp"
#include "shared/status.hpp"

namespace beat {

struct Config {
  // [daemon]
  std::string socket = "/run/beat/beatd.sock";
  std::uint32_t socket_mode = 0660;
  std::string segment_prefix = "beat";
  std::uint32_t max_clients = 32;
  std::string log_level = "info";
  std::uint32_t shutdown_timeout_ms = 30000;

  // [workers]
  std::uint32_t worker_count = 0;    // 0 = one per allowed core
  std::uint32_t idle_spin_us = 100;  // spin before parking on the futex
  std::uint32_t intake_batch = 64;   // most tasks one worker takes from one SQ at once
  bool pin = true;
  // A worker busy this long without a sign of life (daemon/health_check.hpp)
  // is stuck: beatd withholds systemd's WATCHDOG=1. 0 = never stuck.
  std::uint32_t stuck_after_ms = 60000;

  // [scheduler]
  std::uint32_t heartbeat_us = 100;  // promote stealable work at most this often
  sched::StealPolicyKind steal_policy = sched::StealPolicyKind::kTopology;
  std::uint32_t steal_attempts_per_level = 2;  // 0 = every victim of a level
  bool inline_forks = true;  // deep forks of generic callables run as inline subtrees

  // [batching]
  batching::Grouping grouping = batching::Grouping::kSimilarity;
  bool simd = true;                    // false: "scalar", the portable similarity path
  std::uint32_t batch_threshold = 24;  // largest fingerprint distance that joins a batch
  std::uint32_t min_batch = 1;         // adaptive batch size bounds
  std::uint32_t max_batch = 256;
  std::uint32_t max_open_batches = 16;  // batches open at once while forming a chunk

  // [clients]
  std::uint32_t sq_entries_max = 65536;
  std::uint32_t cq_entries_max = 131072;
  std::uint64_t arena_bytes_max = 1ull << 30;

  // [plugins]
  std::vector<std::string> plugin_directories;  // scanned for *.so at start and on SIGHUP

  // [metrics]
  std::string metrics_address = "127.0.0.1:9464";  // "" disables the exposer
};

// Limits, shared by file and flag validation.
// A parked worker waits on 1 + 2 words per client (SQ doorbell, and CQ space
// when stalled) with one futex_waitv, which takes at most 128.
inline constexpr std::uint32_t kMaxClientsLimit = 63;
inline constexpr std::uint32_t kMaxWorkers = 1024;
inline constexpr std::uint32_t kMaxIdleSpinUs = 1'000'000;
inline constexpr std::uint32_t kMaxIntakeBatch = 4096;
inline constexpr std::uint32_t kMaxStuckAfterMs = 86'400'000;  // a day
inline constexpr std::uint32_t kMinHeartbeatUs = 1;
inline constexpr std::uint32_t kMaxHeartbeatUs = 1'000'000;
inline constexpr std::uint32_t kMaxStealAttemptsPerLevel = 1024;
// Below kFarDistance: tasks of different kernels never share a batch.
inline constexpr std::uint32_t kMaxBatchThreshold = batching::kFarDistance - 1;

// Parses TOML text; `origin` names the file in error messages.
Result<Config> parse_config(std::string_view toml_text, std::string_view origin);
// Reads and parses a file.
Result<Config> load_config_file(const std::string& path);
// Checks cross-field rules and ranges (also applied after flag overrides).
Status validate_config(const Config& c);

// "HOST:PORT" with a numeric port 0..65535 and a non-empty host, or "".
Status check_metrics_address(std::string_view value, std::string_view key);

}  // namespace beat
