// beatd's own control: the cores it takes and pins, and what SIGHUP reloads.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "client/client.hpp"
#include "shared/control_message.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/integration/stats_json.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;

std::string stats_of(const DaemonProcess& d) {
  auto c = Client::connect({.socket_path = d.socket_path(), .name = "stats"});
  EXPECT_TRUE(c) << c.status().message();
  if (!c) return {};
  auto s = (*c)->stats_json();
  EXPECT_TRUE(s);
  return s ? *s : std::string();
}

TEST(DaemonControl, WorkerPerAllowedCorePinnedInsideTheAffinityMask) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 CPUs";
  // Allowed only CPU 1: one worker, pinned there, whatever the machine has.
  auto d = DaemonProcess::start(
      {.workers = 0, .metrics_address = "", .extra_args = {}, .cpus = {1}, .config_path = ""});
  ASSERT_NE(d, nullptr);
  const std::string s = stats_of(*d);
  EXPECT_NE(s.find("\"workers\":[{\"index\":0,\"core\":0,\"os_pu\":1,\"pinned\":true,"),
            std::string::npos)
      << s;
  EXPECT_EQ(s.find("\"index\":1,"), std::string::npos) << "more than one worker: " << s;
}

TEST(DaemonControl, ExplicitWorkerCountBeyondTheCoresSharesThem) {
  auto d = DaemonProcess::start(
      {.workers = 3, .metrics_address = "", .extra_args = {}, .cpus = {0}, .config_path = ""});
  ASSERT_NE(d, nullptr);
  const std::string s = stats_of(*d);
  EXPECT_NE(s.find("\"index\":2,"), std::string::npos) << s;
  EXPECT_NE(d->log().find("3 workers on 1 allowed cores"), std::string::npos) << d->log();
}

TEST(DaemonControl, SighupReloadsLiveKeysAndKeepsServing) {
  test::ScopedWatchdog watchdog("DaemonControl.Sighup", 60);
  char path[] = "/tmp/beat-reload-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto write_config = [&](const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
  };
  write_config("[workers]\nidle_spin_us = 100\n");
  auto d = DaemonProcess::start(
      {.workers = 2, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = path});
  ASSERT_NE(d, nullptr);
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "reload"});
  ASSERT_TRUE(c);
  const std::uint32_t spin = *(*c)->kernel_id("spin");
  std::vector<TaskDescriptor> batch;
  for (std::uint64_t i = 0; i < 200; ++i) batch.push_back(make_task(spin, i, {500'000}));
  ASSERT_TRUE((*c)->submit(batch));  // ~50 ms of work in flight across the reload

  write_config(
      "[workers]\nidle_spin_us = 5\nintake_batch = 8\n"
      "[scheduler]\nsteal_policy = \"random\"\n"
      "[batching]\nmin_batch = 2\nmax_batch = 5\nthreshold = 30\n");
  ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  EXPECT_TRUE(d->wait_for_log("SIGHUP: workers.idle_spin_us 100 -> 5")) << d->log();
  EXPECT_TRUE(d->wait_for_log(
      "SIGHUP: scheduler.steal_policy topology -> random, scheduler.steal_attempts_per_level 2 "
      "-> 2"))
      << d->log();
  EXPECT_TRUE(d->wait_for_log("SIGHUP: batching.min_batch 1 -> 2, batching.max_batch 256 -> 5"))
      << d->log();
  EXPECT_TRUE(d->wait_for_log(
      "changed, but take effect only after a restart: workers.intake_batch, batching.threshold"))
      << d->log();

  // A broken file is refused and the running configuration kept.
  write_config("[workers]\nidle_spin_us = \"fast\"\n");
  ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  EXPECT_TRUE(d->wait_for_log("SIGHUP: keeping the running configuration")) << d->log();
  EXPECT_TRUE(d->wait_for_log("'workers.idle_spin_us' must be an integer, got \"fast\""))
      << d->log();

  // Nothing accepted before the reloads was lost.
  const std::vector<Completion> out = test::reap(**c, batch.size());
  ASSERT_EQ(out.size(), batch.size());
  std::vector<int> seen(batch.size(), 0);
  for (const Completion& e : out) {
    ASSERT_LT(e.tag, batch.size());
    ++seen[e.tag];
    EXPECT_EQ(e.status, TaskStatus::kOk);
  }
  for (int n : seen) EXPECT_EQ(n, 1);

  // The reloaded policy and batch bounds are the ones in force: STATS
  // names the policy, and a burst of 200 noops forms no batch above 5.
  auto stats = (*c)->stats_json();
  ASSERT_TRUE(stats);
  EXPECT_NE(stats->find("\"steal_policy\":\"random\""), std::string::npos) << *stats;
  const auto large_batches = [](const std::string& json) {
    std::uint64_t n = 0;
    for (const char* bucket : {"6-20", "21-50", "51-100", "101-256"})
      n += test::counter_after(json, "\"batch_size\"", bucket);
    return n;
  };
  const std::uint64_t before = large_batches(*stats);
  const std::uint64_t batches_before = test::counter_after(*stats, "\"batching\"", "batches");
  const std::uint32_t noop = *(*c)->kernel_id("noop");
  std::vector<TaskDescriptor> burst;
  for (std::uint64_t i = 0; i < 200; ++i) burst.push_back(make_task(noop, i));
  ASSERT_EQ(test::run_all(**c, burst).size(), burst.size());
  stats = (*c)->stats_json();
  ASSERT_TRUE(stats);
  EXPECT_EQ(large_batches(*stats), before) << *stats;
  EXPECT_GE(test::counter_after(*stats, "\"batching\"", "batches"), batches_before + 200 / 5)
      << *stats;
  EXPECT_TRUE(d->alive());
  ::unlink(path);
}

std::string temp_config(const std::string& text) {
  char path[] = "/tmp/beat-cfg-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path, std::ios::trunc) << text;
  return path;
}

TEST(DaemonControl, ShutdownTimeoutBoundsTheDrainOfLongTasks) {
  test::ScopedWatchdog watchdog("DaemonControl.ShutdownTimeout", 60);
  const std::string cfg = temp_config("[daemon]\nshutdown_timeout_ms = 300\n");
  auto d = DaemonProcess::start(
      {.workers = 1, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = cfg});
  ASSERT_NE(d, nullptr);
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "long"});
  ASSERT_TRUE(c);
  const std::uint32_t spin = *(*c)->kernel_id("spin");
  std::vector<TaskDescriptor> batch;
  for (std::uint64_t i = 0; i < 6; ++i) batch.push_back(make_task(spin, i, {5'000'000'000ull}));
  ASSERT_TRUE((*c)->submit(batch));  // 30 s of work on one worker
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = std::chrono::steady_clock::now();
  // Exit 0 within a few seconds, not after the 30 s of accepted work.
  EXPECT_EQ(d->signal_and_wait(SIGTERM, std::chrono::seconds(5)), 0) << d->log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_NE(d->log().find("dropping unfinished tasks"), std::string::npos) << d->log();
  EXPECT_TRUE(d->segments().empty());
  ::unlink(cfg.c_str());
}

TEST(DaemonControl, ConnectionsBeyondTheLimitAreRefusedByName) {
  const std::string cfg = temp_config("[daemon]\nmax_clients = 1\n");
  auto d = DaemonProcess::start(
      {.workers = 1, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = cfg});
  ASSERT_NE(d, nullptr);
  std::vector<int> fds;
  auto open_one = [&] {
    const int fd = test::connect_unix(d->socket_path());
    EXPECT_GE(fd, 0);
    fds.push_back(fd);
    return fd;
  };
  // max_clients (1) + 16 for tools are accepted; prove each is served.
  for (int i = 0; i < 17; ++i) {
    const int fd = open_one();
    ASSERT_TRUE(send_frame(fd, MessageType::kKernels, {}));
    auto f = recv_frame(fd);
    ASSERT_TRUE(f) << i << ": " << f.status().message();
    EXPECT_EQ(f->type, MessageType::kKernelsOk) << i;
  }
  // The next one is told why and closed.
  const int extra = open_one();
  auto f = recv_frame(extra);
  ASSERT_TRUE(f) << f.status().message();
  ASSERT_EQ(f->type, MessageType::kError);
  const Status s = parse_error_payload(f->payload);
  EXPECT_EQ(s.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(s.message().find("daemon.max_clients=1"), std::string::npos) << s.message();
  for (int fd : fds) ::close(fd);
  // Once they are gone, a client gets in again.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "later"});
  EXPECT_TRUE(c) << c.status().message();
  ::unlink(cfg.c_str());
}

}  // namespace
}  // namespace beat
