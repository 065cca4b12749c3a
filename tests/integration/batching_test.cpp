// Batch formation through a real beatd (daemon/batching/, intake in
// daemon/worker_pool.cpp): tasks over a handful of shared data blocks give
// the right checksums with similarity grouping, fifo grouping and the
// scalar similarity path; ordered tasks complete in submission order;
// STATS counts every task in a batch exactly once and every fingerprint the
// daemon had to correct.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "shared/fingerprint.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/integration/edited_config.hpp"
#include "tests/integration/stats_json.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::batching_counter;
using test::DaemonProcess;
using test::EditedConfig;

// kBlocks blocks of kBlockBytes random bytes in the client's arena, and
// kTasks checksum tasks that interleave them (task i reads block i %
// kBlocks, with its own seed): run, and every result checked against XXH3
// computed here. Returns the daemon's STATS afterwards.
std::string checksums_over_shared_blocks(Client& c) {
  constexpr std::uint32_t kBlocks = 4;
  constexpr std::uint64_t kBlockBytes = 256 * 1024;
  constexpr std::uint64_t kTasks = test::kUnderThreadSanitizer ? 200 : 800;
  const auto checksum = c.kernel_id("checksum");
  EXPECT_TRUE(checksum);
  if (!checksum) return {};
  std::mt19937_64 rng(7);
  std::vector<ArenaBlock> blocks;
  for (std::uint32_t b = 0; b < kBlocks; ++b) {
    auto block = c.allocate(kBlockBytes);
    EXPECT_TRUE(block) << block.status().message();
    if (!block) return {};
    for (std::uint64_t i = 0; i < kBlockBytes; ++i) block->data[i] = static_cast<std::byte>(rng());
    blocks.push_back(*block);
  }
  std::vector<TaskDescriptor> tasks;
  std::vector<std::uint64_t> expected;
  for (std::uint64_t t = 0; t < kTasks; ++t) {
    const ArenaBlock& block = blocks[t % kBlocks];
    const std::uint64_t seed = rng();
    tasks.push_back(make_task(*checksum, t, {seed}, block));
    expected.push_back(XXH3_64bits_withSeed(block.data, kBlockBytes, seed));
  }
  const std::vector<Completion> out = test::run_all(c, tasks);
  EXPECT_EQ(out.size(), kTasks);
  std::vector<int> seen(kTasks, 0);
  for (const Completion& x : out) {
    EXPECT_LT(x.tag, kTasks);
    if (x.tag >= kTasks) continue;
    ++seen[x.tag];
    EXPECT_EQ(x.status, TaskStatus::kOk) << "tag " << x.tag;
    EXPECT_EQ(x.result, expected[x.tag]) << "tag " << x.tag;
  }
  for (std::uint64_t t = 0; t < kTasks; ++t) EXPECT_EQ(seen[t], 1) << "tag " << t;
  const std::string stats = test::stats_when(c, [&](const std::string& s) {
    return test::top_level(s, "tasks_completed") >= kTasks &&
           batching_counter(s, "tasks_grouped") + batching_counter(s, "tasks_alone") >= kTasks;
  });
  // Every task was in exactly one batch.
  EXPECT_EQ(batching_counter(stats, "tasks_grouped") + batching_counter(stats, "tasks_alone"),
            kTasks)
      << stats;
  EXPECT_GT(batching_counter(stats, "batches"), 0u) << stats;
  return stats;
}

TEST(Batching, SharedBlocksGiveTheRightChecksumsWithSimilarityGrouping) {
  test::ScopedWatchdog watchdog("Batching.Similarity", 120);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "similar"});
  ASSERT_TRUE(client) << client.status().message();
  const std::string stats = checksums_over_shared_blocks(**client);
  EXPECT_NE(stats.find("\"grouping\":\"similarity\""), std::string::npos) << stats;
  EXPECT_EQ(stats.find("\"simd\":\"scalar\""), std::string::npos)
      << "the default path is the SIMD one: " << stats;
  // Tasks of one block share kernel, size and page: they group.
  EXPECT_GT(batching_counter(stats, "tasks_grouped"), 0u) << stats;
}

// The shared-blocks workload on a daemon whose config has `from` replaced
// by `to`; STATS must then contain `shows`.
void shared_blocks_with(const char* name, const char* from, const char* to, const char* shows) {
  test::ScopedWatchdog watchdog(name, 120);
  const EditedConfig config({{from, to}});
  auto d = config.start_daemon();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = name});
  ASSERT_TRUE(client) << client.status().message();
  const std::string stats = checksums_over_shared_blocks(**client);
  EXPECT_NE(stats.find(shows), std::string::npos) << stats;
}

TEST(Batching, SharedBlocksGiveTheRightChecksumsWithFifoGrouping) {
  shared_blocks_with("Batching.Fifo", "grouping = \"similarity\"", "grouping = \"fifo\"",
                     "\"grouping\":\"fifo\"");
}

TEST(Batching, SharedBlocksGiveTheRightChecksumsOnTheScalarPath) {
  shared_blocks_with("Batching.Scalar", "simd = \"auto\"", "simd = \"scalar\"",
                     "\"simd\":\"scalar\"");
}

TEST(Batching, OrderedTasksCompleteInSubmissionOrder) {
  // Ordered spins of random length among unordered ones, in several
  // submissions so that they span many intake chunks and both workers. The
  // ordered tags must come back increasing; every tag exactly once.
  test::ScopedWatchdog watchdog("Batching.Ordered", 120);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "ordered"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  const auto spin = c.kernel_id("spin");
  ASSERT_TRUE(spin);
  constexpr std::uint64_t kTasks = 600;
  std::mt19937_64 rng(11);
  std::vector<bool> is_ordered(kTasks);
  std::uint64_t ordered_count = 0;
  for (std::uint64_t sent = 0; sent < kTasks;) {
    std::vector<TaskDescriptor> batch;
    for (int i = 0; i < 50 && sent < kTasks; ++i, ++sent) {
      TaskDescriptor t = make_task(*spin, sent, {rng() % 20'000});  // up to 20 us
      is_ordered[sent] = rng() % 3 == 0;
      if (is_ordered[sent]) {
        t.flags |= kTaskFlagOrdered;
        ++ordered_count;
      }
      batch.push_back(t);
    }
    ASSERT_TRUE(c.submit(batch));
  }
  const std::vector<Completion> out = test::reap(c, kTasks);
  ASSERT_EQ(out.size(), kTasks);
  std::vector<int> seen(kTasks, 0);
  std::uint64_t last_ordered = 0;
  bool any_ordered = false;
  std::uint64_t ordered_seen = 0;
  for (const Completion& x : out) {
    ASSERT_LT(x.tag, kTasks);
    ++seen[x.tag];
    EXPECT_EQ(x.status, TaskStatus::kOk);
    if (!is_ordered[x.tag]) continue;
    ++ordered_seen;
    if (any_ordered) {
      EXPECT_GT(x.tag, last_ordered)
          << "ordered task " << x.tag << " completed after " << last_ordered;
    }
    any_ordered = true;
    last_ordered = x.tag;
  }
  EXPECT_EQ(ordered_seen, ordered_count);
  for (std::uint64_t t = 0; t < kTasks; ++t) EXPECT_EQ(seen[t], 1) << "tag " << t;
}

TEST(Batching, StatsCountEveryFingerprintTheDaemonCorrected) {
  test::ScopedWatchdog watchdog("Batching.Corrected", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "liar"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  const auto noop = c.kernel_id("noop");
  ASSERT_TRUE(noop);
  constexpr std::uint64_t kHonest = 50, kLying = 70;
  std::vector<TaskDescriptor> tasks;
  for (std::uint64_t t = 0; t < kHonest + kLying; ++t) {
    TaskDescriptor task = make_task(*noop, t, {t});
    // The library fills a zero fingerprint; a lying one claims another
    // kernel and a data range the task does not have.
    if (t >= kHonest) task.fingerprint = pack_fingerprint({*noop + 1, 20, 1000, 5});
    tasks.push_back(task);
  }
  const std::vector<Completion> out = test::run_all(c, tasks);
  ASSERT_EQ(out.size(), tasks.size());
  for (const Completion& x : out) EXPECT_EQ(x.result, x.tag) << "noop echoes args[0]";
  const std::string stats = test::stats_when(c, [&](const std::string& s) {
    return batching_counter(s, "tasks_grouped") + batching_counter(s, "tasks_alone") >=
           kHonest + kLying;
  });
  EXPECT_EQ(batching_counter(stats, "fingerprints_corrected"), kLying) << stats;
  EXPECT_EQ(batching_counter(stats, "tasks_grouped") + batching_counter(stats, "tasks_alone"),
            kHonest + kLying)
      << stats;
}

}  // namespace
}  // namespace beat
