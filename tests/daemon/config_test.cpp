// daemon/config.hpp: every key parses, every bad value is refused with a
// message naming the key and the value.
#include "daemon/config.hpp"

#include <gtest/gtest.h>

#include <string>

namespace beat {
namespace {

std::string error_of(std::string_view toml) {
  auto c = parse_config(toml, "test.toml");
  EXPECT_FALSE(c) << "accepted: " << toml;
  return c ? std::string() : c.status().message();
}

TEST(Config, EmptyFileGivesTheDocumentedDefaults) {
  auto c = parse_config("", "empty.toml");
  ASSERT_TRUE(c) << c.status().message();
  const Config d;
  EXPECT_EQ(c->socket, "/run/beat/beatd.sock");
  EXPECT_EQ(c->socket_mode, 0660u);
  EXPECT_EQ(c->segment_prefix, "beat");
  EXPECT_EQ(c->max_clients, 32u);
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->shutdown_timeout_ms, 30000u);
  EXPECT_EQ(c->worker_count, 0u);
  EXPECT_EQ(c->idle_spin_us, 100u);
  EXPECT_EQ(c->intake_batch, 64u);
  EXPECT_TRUE(c->pin);
  EXPECT_EQ(c->stuck_after_ms, 60000u);
  EXPECT_TRUE(c->plugin_directories.empty());
  EXPECT_EQ(c->sq_entries_max, 65536u);
  EXPECT_EQ(c->cq_entries_max, 131072u);
  EXPECT_EQ(c->arena_bytes_max, 1ull << 30);
  EXPECT_EQ(c->metrics_address, "127.0.0.1:9464");
  EXPECT_EQ(c->heartbeat_us, 100u);
  EXPECT_EQ(c->steal_policy, sched::StealPolicyKind::kTopology);
  EXPECT_EQ(c->steal_attempts_per_level, 2u);
  EXPECT_TRUE(c->inline_forks);
  EXPECT_EQ(c->grouping, batching::Grouping::kSimilarity);
  EXPECT_TRUE(c->simd);
  EXPECT_EQ(c->batch_threshold, 24u);
  EXPECT_EQ(c->min_batch, 1u);
  EXPECT_EQ(c->max_batch, 256u);
  EXPECT_EQ(c->max_open_batches, 16u);
}

TEST(Config, EveryKeyIsRead) {
  auto c = parse_config(R"(
[daemon]
socket = "/tmp/x.sock"
socket_mode = 0o600
segment_prefix = "t-1"
max_clients = 63
log_level = "debug"
shutdown_timeout_ms = 5
[workers]
count = 3
idle_spin_us = 7
intake_batch = 9
pin = false
stuck_after_ms = 0
[scheduler]
heartbeat_us = 250
steal_policy = "random"
steal_attempts_per_level = 0
inline_forks = false
[batching]
grouping = "fifo"
simd = "scalar"
threshold = 40
min_batch = 2
max_batch = 100
max_open = 8
[clients]
sq_entries_max = 16
cq_entries_max = 32
arena_bytes_max = 8192
[metrics]
address = ""
)",
                        "full.toml");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->socket, "/tmp/x.sock");
  EXPECT_EQ(c->socket_mode, 0600u);
  EXPECT_EQ(c->segment_prefix, "t-1");
  EXPECT_EQ(c->max_clients, 63u);
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->shutdown_timeout_ms, 5u);
  EXPECT_EQ(c->worker_count, 3u);
  EXPECT_EQ(c->idle_spin_us, 7u);
  EXPECT_EQ(c->intake_batch, 9u);
  EXPECT_FALSE(c->pin);
  EXPECT_EQ(c->stuck_after_ms, 0u);
  EXPECT_EQ(c->heartbeat_us, 250u);
  EXPECT_EQ(c->steal_policy, sched::StealPolicyKind::kRandom);
  EXPECT_EQ(c->steal_attempts_per_level, 0u);
  EXPECT_FALSE(c->inline_forks);
  EXPECT_EQ(c->grouping, batching::Grouping::kFifo);
  EXPECT_FALSE(c->simd);
  EXPECT_EQ(c->batch_threshold, 40u);
  EXPECT_EQ(c->min_batch, 2u);
  EXPECT_EQ(c->max_batch, 100u);
  EXPECT_EQ(c->max_open_batches, 8u);
  EXPECT_EQ(c->sq_entries_max, 16u);
  EXPECT_EQ(c->cq_entries_max, 32u);
  EXPECT_EQ(c->arena_bytes_max, 8192u);
  EXPECT_EQ(c->metrics_address, "");
}

TEST(Config, ShippedDefaultFileParsesToTheDefaults) {
  auto c = load_config_file(BEAT_SOURCE_DIR "/config/beatd.toml");
  ASSERT_TRUE(c) << c.status().message();
  const Config d;
  EXPECT_EQ(c->socket, d.socket);
  EXPECT_EQ(c->max_clients, d.max_clients);
  EXPECT_EQ(c->idle_spin_us, d.idle_spin_us);
  EXPECT_EQ(c->intake_batch, d.intake_batch);
  EXPECT_EQ(c->stuck_after_ms, d.stuck_after_ms);
  EXPECT_EQ(c->plugin_directories, d.plugin_directories);
  EXPECT_EQ(c->metrics_address, d.metrics_address);
  EXPECT_EQ(c->arena_bytes_max, d.arena_bytes_max);
  EXPECT_EQ(c->heartbeat_us, d.heartbeat_us);
  EXPECT_EQ(c->steal_policy, d.steal_policy);
  EXPECT_EQ(c->steal_attempts_per_level, d.steal_attempts_per_level);
  EXPECT_EQ(c->inline_forks, d.inline_forks);
  EXPECT_EQ(c->grouping, d.grouping);
  EXPECT_EQ(c->simd, d.simd);
  EXPECT_EQ(c->batch_threshold, d.batch_threshold);
  EXPECT_EQ(c->min_batch, d.min_batch);
  EXPECT_EQ(c->max_batch, d.max_batch);
  EXPECT_EQ(c->max_open_batches, d.max_open_batches);
}

TEST(Config, BatchingValuesAreCheckedByName) {
  EXPECT_EQ(error_of("[batching]\ngrouping = \"lifo\"\n"),
            "test.toml: key 'batching.grouping' is \"lifo\": must be one of similarity, fifo");
  EXPECT_EQ(error_of("[batching]\nsimd = \"avx\"\n"),
            "test.toml: key 'batching.simd' is \"avx\": must be one of auto, scalar");
  EXPECT_EQ(error_of("[batching]\nmax_batch = 257\n"),
            "test.toml: key 'batching.max_batch' is 257, must be in [1, 256]");
  EXPECT_EQ(error_of("[batching]\nmin_batch = 0\n"),
            "test.toml: key 'batching.min_batch' is 0, must be in [1, 256]");
  EXPECT_EQ(error_of("[batching]\nmax_open = 65\n"),
            "test.toml: key 'batching.max_open' is 65, must be in [1, 64]");
  EXPECT_EQ(error_of("[batching]\nthreshold = 65535\n"),
            "test.toml: key 'batching.threshold' is 65535, must be in [0, 65534]");
  EXPECT_EQ(error_of("[batching]\nmin_batch = 50\nmax_batch = 20\n"),
            "test.toml: key 'batching.min_batch' is 50: must not exceed 'batching.max_batch' (20)");
  EXPECT_EQ(error_of("[batching]\nsize = 3\n"), "test.toml: unknown key 'batching.size'");
}

TEST(Config, UnknownKeysAreNamedWithTheirSection) {
  EXPECT_EQ(error_of("[workers]\ncuont = 1\n"), "test.toml: unknown key 'workers.cuont'");
  EXPECT_EQ(error_of("colour = 1\n"), "test.toml: unknown key 'colour'");
  EXPECT_EQ(error_of("[metrics]\nport = 1\n"), "test.toml: unknown key 'metrics.port'");
}

TEST(Config, WrongTypesNameKeyAndValue) {
  EXPECT_EQ(error_of("[workers]\ncount = \"two\"\n"),
            "test.toml: key 'workers.count' must be an integer, got \"two\"");
  EXPECT_EQ(error_of("[workers]\npin = 1\n"),
            "test.toml: key 'workers.pin' must be true or false, got 1");
  EXPECT_EQ(error_of("[scheduler]\ninline_forks = \"yes\"\n"),
            "test.toml: key 'scheduler.inline_forks' must be true or false, got \"yes\"");
  EXPECT_EQ(error_of("[daemon]\nsocket = 5\n"),
            "test.toml: key 'daemon.socket' must be a string, got 5");
  EXPECT_EQ(error_of("workers = 3\n"), "test.toml: key 'workers' must be a table, got 3");
  EXPECT_EQ(error_of("[workers]\ncount = 1.5\n"),
            "test.toml: key 'workers.count' must be an integer, got 1.5");
}

TEST(Config, OutOfRangeValuesNameTheRange) {
  EXPECT_EQ(error_of("[daemon]\nmax_clients = 64\n"),
            "test.toml: key 'daemon.max_clients' is 64, must be in [1, 63]");
  EXPECT_EQ(error_of("[workers]\nidle_spin_us = -1\n"),
            "test.toml: key 'workers.idle_spin_us' is -1, must be in [0, 1000000]");
  EXPECT_EQ(error_of("[workers]\nintake_batch = 0\n"),
            "test.toml: key 'workers.intake_batch' is 0, must be in [1, 4096]");
  EXPECT_EQ(error_of("[workers]\nstuck_after_ms = 86400001\n"),
            "test.toml: key 'workers.stuck_after_ms' is 86400001, must be in [0, 86400000]");
  EXPECT_EQ(error_of("[plugins]\ndirectories = \"/usr/lib\"\n"),
            "test.toml: key 'plugins.directories' must be an array of strings, got \"/usr/lib\"");
  EXPECT_EQ(error_of("[plugins]\ndirectories = [\"/a\", 7]\n"),
            "test.toml: key 'plugins.directories' must be an array of strings; element 1 is 7");
  EXPECT_EQ(error_of("[plugins]\ndirectories = [\"relative/dir\"]\n"),
            "test.toml: key 'plugins.directories' element 0 is \"relative/dir\": must be an "
            "absolute path");
  EXPECT_EQ(error_of("[plugins]\nfolders = []\n"), "test.toml: unknown key 'plugins.folders'");
  EXPECT_EQ(error_of("[clients]\nsq_entries_max = 4\n"),
            "test.toml: key 'clients.sq_entries_max' is 4, must be in [8, 1048576]");
  EXPECT_EQ(error_of("[clients]\ncq_entries_max = 100\n"),
            "test.toml: key 'clients.cq_entries_max' is 100: must be a power of two");
  EXPECT_EQ(error_of("[daemon]\nsocket_mode = 0o1777\n"),
            "test.toml: key 'daemon.socket_mode' is 1023, must be in [0, 511]");
  EXPECT_EQ(error_of("[scheduler]\nheartbeat_us = 0\n"),
            "test.toml: key 'scheduler.heartbeat_us' is 0, must be in [1, 1000000]");
  EXPECT_EQ(error_of("[scheduler]\nsteal_attempts_per_level = 2000\n"),
            "test.toml: key 'scheduler.steal_attempts_per_level' is 2000, must be in [0, 1024]");
}

TEST(Config, StringValuesAreChecked) {
  EXPECT_EQ(error_of("[daemon]\nlog_level = \"loud\"\n"),
            "test.toml: key 'daemon.log_level' is \"loud\": must be one of trace, debug, info, "
            "warn, error, critical, off");
  EXPECT_EQ(error_of("[daemon]\nsegment_prefix = \"a/b\"\n"),
            "test.toml: key 'daemon.segment_prefix' is \"a/b\": only letters, digits, '-' and '_' "
            "are allowed");
  EXPECT_EQ(
      error_of("[daemon]\nsocket = \"\"\n"),
      "test.toml: key 'daemon.socket' is \"\": must be a non-empty path shorter than 108 bytes");
  EXPECT_EQ(error_of("[scheduler]\nsteal_policy = \"fifo\"\n"),
            "test.toml: key 'scheduler.steal_policy' is \"fifo\": must be one of random, topology");
  EXPECT_EQ(error_of("[scheduler]\nclock = 1\n"), "test.toml: unknown key 'scheduler.clock'");
  EXPECT_EQ(error_of("[metrics]\naddress = \"127.0.0.1:70000\"\n"),
            "test.toml: key 'metrics.address' is \"127.0.0.1:70000\": port must be a number in [0, "
            "65535]");
}

TEST(Config, SyntaxErrorsGiveLineAndColumn) {
  const std::string e = error_of("[workers]\ncount = = 2\n");
  EXPECT_EQ(e.rfind("test.toml:2:", 0), 0u) << e;
}

TEST(Config, MetricsAddressForms) {
  EXPECT_TRUE(check_metrics_address("", "k"));
  EXPECT_TRUE(check_metrics_address("127.0.0.1:0", "k"));
  EXPECT_TRUE(check_metrics_address("[::1]:9464", "k"));
  EXPECT_FALSE(check_metrics_address("localhost", "k"));
  EXPECT_FALSE(check_metrics_address(":9464", "k"));
  EXPECT_FALSE(check_metrics_address("h:", "k"));
  EXPECT_FALSE(check_metrics_address("h:9x", "k"));
  EXPECT_EQ(check_metrics_address("h:123456", "metrics.address").message(),
            "key 'metrics.address' is \"h:123456\": port must be a number in [0, 65535]");
}

TEST(Config, MissingFileIsNamed) {
  auto c = load_config_file("/nonexistent/beatd.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.status().message(), "cannot read config file '/nonexistent/beatd.toml'");
}

}  // namespace
}  // namespace beat
