// End to end through a real beatd: exactly-once completion of a million
// tasks from several processes and threads, verified checksums, discovery.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cstring>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/integration/scrape.hpp"
#include "tests/integration/stats_json.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;

constexpr std::uint64_t kProcShift = 40;
constexpr std::uint64_t kIndexMask = (std::uint64_t{1} << kProcShift) - 1;
// The noop result must be the tag scrambled this way: proves the daemon ran
// the task's own arguments, not just echoed the tag field.
constexpr std::uint64_t kArgSalt = 0x9E3779B97F4A7C15ull;

// One client process: `threads` submitters, `per_thread` noop tasks each,
// batches of `batch`; every completion is checked and counted. Returns a
// process exit code (0 = every tag exactly once with the right result).
int noop_client_process(const std::string& socket, std::uint64_t proc, int threads,
                        std::uint64_t per_thread, std::size_t batch) {
  auto client = Client::connect({.socket_path = socket, .name = "noop-" + std::to_string(proc)});
  if (!client) {
    std::fprintf(stderr, "proc %llu: %s\n", static_cast<unsigned long long>(proc),
                 client.status().message().c_str());
    return 10;
  }
  Client& c = **client;
  auto noop = c.kernel_id("noop");
  if (!noop) return 11;
  const std::uint64_t total = per_thread * static_cast<std::uint64_t>(threads);
  std::vector<std::atomic<std::uint8_t>> seen(total);
  std::atomic<std::uint64_t> submitted{0}, reaped{0}, bad{0};
  const std::uint64_t window = c.layout().cq_entries;  // never more in flight than the CQ holds

  auto reap = [&](std::size_t min) {
    Completion out[512];
    auto n = c.wait(out, min, std::chrono::milliseconds(50));
    if (!n) return;
    for (std::size_t i = 0; i < *n; ++i) {
      const Completion& x = out[i];
      const std::uint64_t idx = x.tag & kIndexMask;
      if ((x.tag >> kProcShift) != proc || idx >= total || x.status != TaskStatus::kOk ||
          x.result != (x.tag ^ kArgSalt) || seen[idx].exchange(1) != 0)
        bad.fetch_add(1);
    }
    reaped.fetch_add(*n);
  };

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<TaskDescriptor> b(batch);
      for (std::uint64_t i = 0; i < per_thread;) {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(batch, per_thread - i));
        while (submitted.load() + n - reaped.load() > window) reap(1);
        for (std::size_t k = 0; k < n; ++k) {
          const std::uint64_t tag =
              (proc << kProcShift) | (static_cast<std::uint64_t>(t) * per_thread + i + k);
          b[k] = make_task(*noop, tag, {tag ^ kArgSalt});
        }
        submitted.fetch_add(n);
        if (Status s = c.submit({b.data(), n}); !s) {
          std::fprintf(stderr, "submit: %s\n", s.message().c_str());
          bad.fetch_add(1);
          return;
        }
        i += n;
      }
    });
  }
  for (auto& w : workers) w.join();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (reaped.load() < total && std::chrono::steady_clock::now() < deadline) reap(1);
  std::uint64_t missing = 0;
  for (auto& s : seen) missing += s.load() == 0 ? 1 : 0;
  if (bad.load() != 0 || missing != 0 || reaped.load() != total) {
    std::fprintf(stderr, "proc %llu: bad=%llu missing=%llu reaped=%llu of %llu\n",
                 static_cast<unsigned long long>(proc), static_cast<unsigned long long>(bad.load()),
                 static_cast<unsigned long long>(missing),
                 static_cast<unsigned long long>(reaped.load()),
                 static_cast<unsigned long long>(total));
    return 1;
  }
  return 0;
}

TEST(EndToEnd, MillionNoopTasksFromTwoProcessesCompleteExactlyOnce) {
  test::ScopedWatchdog watchdog("EndToEnd.MillionNoopTasks", 240);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  constexpr int kProcs = 2, kThreads = 2;
  constexpr std::uint64_t kPerThread = 250'000;  // 2 x 2 x 250k = 1,000,000
  std::vector<pid_t> children;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
      _exit(noop_client_process(d->socket_path(), static_cast<std::uint64_t>(p + 1), kThreads,
                                kPerThread, 256));
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << d->log();
  }
  // The daemon's own count agrees: exactly a million tasks ran, none failed.
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "stats"});
  ASSERT_TRUE(c) << c.status().message();
  auto stats = (*c)->stats_json();
  ASSERT_TRUE(stats);
  EXPECT_NE(stats->find("\"tasks_completed\":1000000,"), std::string::npos) << *stats;
  EXPECT_NE(stats->find("\"tasks_failed\":0,"), std::string::npos) << *stats;
}

TEST(EndToEnd, ChecksumResultsEqualXxh3ComputedHere) {
  test::ScopedWatchdog watchdog("EndToEnd.Checksum", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "checksum"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  auto checksum = c.kernel_id("checksum");
  ASSERT_TRUE(checksum);

  std::mt19937_64 rng(42);
  const std::uint64_t sizes[] = {0, 1, 7, 63, 64, 65, 1000, 4096, 100'000, 1 << 20};
  std::vector<TaskDescriptor> tasks;
  std::vector<std::uint64_t> expected;
  for (std::uint64_t size : sizes) {
    auto block = c.allocate(size == 0 ? 1 : size);
    ASSERT_TRUE(block) << block.status().message();
    for (std::uint64_t i = 0; i < size; ++i) block->data[i] = static_cast<std::byte>(rng());
    ArenaBlock range = *block;
    range.length = size;
    const std::uint64_t seed = rng();
    tasks.push_back(make_task(*checksum, tasks.size(), {seed}, range));
    expected.push_back(XXH3_64bits_withSeed(block->data, size, seed));
  }
  const std::vector<Completion> out = test::run_all(c, tasks);
  ASSERT_EQ(out.size(), tasks.size());
  std::vector<int> seen(tasks.size(), 0);
  for (const Completion& x : out) {
    ASSERT_LT(x.tag, tasks.size());
    ++seen[x.tag];
    EXPECT_EQ(x.status, TaskStatus::kOk) << "size " << sizes[x.tag];
    EXPECT_EQ(x.result, expected[x.tag]) << "size " << sizes[x.tag];
  }
  for (int s : seen) EXPECT_EQ(s, 1);
}

TEST(EndToEnd, LongTasksSubmittedTogetherRunOnBothWorkers) {
  // Two 300 ms spins in one submission: one worker takes both in one chunk,
  // and a spin never reaches a heartbeat check, so that worker must give
  // the second away before it starts the first (WorkerPool::run_task,
  // Worker::share_before_long_call). Checked by where they ran, not by
  // time: after each round, each worker has run exactly one more task.
  // Rounds alternate between parked workers and just-busy ones.
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "long"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  const auto spin = c.kernel_id("spin");
  ASSERT_TRUE(spin);
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    if (round % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::vector<Completion> out =
        test::run_all(c, {make_task(*spin, 1, {300'000'000}), make_task(*spin, 2, {300'000'000})});
    ASSERT_EQ(out.size(), 2u);
    for (const Completion& x : out) EXPECT_EQ(x.status, TaskStatus::kOk);
  }
  const std::string stats = test::stats_when(
      c, [](const std::string& s) { return test::sum_over_workers(s, "tasks") >= 2 * kRounds; });
  std::vector<std::uint64_t> per_worker;
  for (std::size_t at = stats.find("{\"index\":"); at < stats.find("\"clients\":[");
       at = stats.find("{\"index\":", at + 1))
    per_worker.push_back(
        static_cast<std::uint64_t>(test::json_number(stats, "tasks", at).value_or(0)));
  EXPECT_EQ(per_worker, (std::vector<std::uint64_t>{kRounds, kRounds})) << stats;
}

TEST(EndToEnd, KernelsAndStatsDescribeTheDaemon) {
  auto d = DaemonProcess::start(
      {.workers = 2, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = ""});
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "discovery"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  EXPECT_EQ(c.worker_count(), 2u);
  auto kernels = c.kernels();
  ASSERT_TRUE(kernels);
  ASSERT_EQ(kernels->size(), 19u);
  EXPECT_EQ((*kernels)[0].name, "noop");
  EXPECT_EQ((*kernels)[1].name, "spin");
  EXPECT_EQ((*kernels)[2].name, "checksum");
  EXPECT_EQ((*kernels)[3].name, "crc32c");
  EXPECT_EQ((*kernels)[13].name, "topk_fingerprints");
  EXPECT_EQ((*kernels)[14].name, "fib");
  EXPECT_EQ((*kernels)[18].name, "matmul");
  for (const KernelListing& k : *kernels) {
    EXPECT_EQ(k.id, static_cast<std::uint32_t>(&k - kernels->data()));
    EXPECT_EQ(k.origin, "built-in") << k.name;
    EXPECT_FALSE(k.description.empty()) << k.name;
  }
  auto missing = c.kernel_id("no-such-kernel");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no-such-kernel"), std::string::npos);
  auto stats = c.stats_json();
  ASSERT_TRUE(stats);
  EXPECT_NE(stats->find("\"name\":\"discovery\""), std::string::npos) << *stats;
  EXPECT_NE(stats->find("\"clients_connected\":1"), std::string::npos) << *stats;
  // The daemon holds exactly our segment while we are connected, and it has
  // no name in /dev/shm that another process could open.
  ASSERT_EQ(d->segments().size(), 1u);
  EXPECT_EQ(d->segments()[0], c.segment_name());
  EXPECT_TRUE(test::shm_entries(d->segment_prefix()).empty());
}

TEST(EndToEnd, PrometheusScrapeCountsCompletedTasks) {
  test::ScopedWatchdog watchdog("EndToEnd.Metrics", 60);
  auto d = DaemonProcess::start({.workers = 2,
                                 .metrics_address = "127.0.0.1:0",
                                 .extra_args = {},
                                 .cpus = {},
                                 .config_path = ""});
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "metrics"});
  ASSERT_TRUE(client);
  Client& c = **client;
  const std::uint32_t noop = *c.kernel_id("noop");
  std::vector<TaskDescriptor> tasks;
  for (std::uint64_t i = 0; i < 1000; ++i) tasks.push_back(make_task(noop, i));
  ASSERT_EQ(test::run_all(c, tasks).size(), tasks.size());
  auto stats = c.stats_json();
  ASSERT_TRUE(stats);
  const int port = test::metrics_port(*stats);
  ASSERT_GT(port, 0) << *stats;
  const std::string body = test::http_get(port);
  ASSERT_NE(body.find("200 OK"), std::string::npos) << body;
  // Per-worker counters, summed at scrape time by kernel: 1000 in all.
  EXPECT_EQ(test::sum_family(test::parse_samples(body), "beat_tasks_completed_total"), 1000.0)
      << body;
  EXPECT_NE(body.find("beat_connected_clients 1"), std::string::npos) << body;
  EXPECT_NE(body.find("# TYPE beat_worker_busy_seconds_total counter"), std::string::npos);
}

}  // namespace
}  // namespace beat
