// beatd's own control: the cores it takes and pins, and what SIGHUP reloads.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "client/client.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
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

bool wait_for_log(const DaemonProcess& d, const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (d.log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
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

  write_config("[workers]\nidle_spin_us = 5\nintake_batch = 8\n");
  ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_for_log(*d, "SIGHUP: workers.idle_spin_us 100 -> 5")) << d->log();
  EXPECT_TRUE(wait_for_log(*d, "take effect only after a restart")) << d->log();

  // A broken file is refused and the running configuration kept.
  write_config("[workers]\nidle_spin_us = \"fast\"\n");
  ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_for_log(*d, "SIGHUP: keeping the running configuration")) << d->log();
  EXPECT_TRUE(wait_for_log(*d, "'workers.idle_spin_us' must be an integer, got \"fast\""))
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
  EXPECT_TRUE(d->alive());
  ::unlink(path);
}

}  // namespace
}  // namespace beat
