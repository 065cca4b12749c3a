// Client and daemon lifecycles: a client killed mid-batch, SIGTERM with
// work in flight, and back-pressure from a full submission ring.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "client/client.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;

using test::reap;

TEST(Lifecycle, ClientKilledMidBatchLeavesDaemonServingAndNoSegment) {
  test::ScopedWatchdog watchdog("Lifecycle.ClientKilled", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto c = Client::connect({.socket_path = d->socket_path(), .name = "doomed"});
    if (!c) _exit(2);
    const std::uint32_t spin = *(*c)->kernel_id("spin");
    std::vector<TaskDescriptor> batch;
    for (std::uint64_t i = 0; i < 2000; ++i)
      batch.push_back(make_task(spin, i, {200'000}));  // 0.4 s of work
    (void)(*c)->submit(std::span(batch).first(1000));
    const char x = 'x';
    (void)!::write(ready[1], &x, 1);
    (void)(*c)->submit(std::span(batch).subspan(1000));  // killed somewhere in here
    ::pause();
    _exit(0);
  }
  ::close(ready[1]);
  char x;
  ASSERT_EQ(::read(ready[0], &x, 1), 1);
  ::close(ready[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  // Another client is served while (and after) the dead one is torn down.
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "survivor"});
  ASSERT_TRUE(c) << c.status().message();
  const std::uint32_t noop = *(*c)->kernel_id("noop");
  std::vector<TaskDescriptor> batch;
  for (std::uint64_t i = 0; i < 10'000; ++i) batch.push_back(make_task(noop, i, {i * 3}));
  ASSERT_TRUE((*c)->submit(batch));
  const auto out = reap(**c, batch.size(), std::chrono::seconds(30));
  ASSERT_EQ(out.size(), batch.size());
  std::vector<int> seen(batch.size(), 0);
  for (const Completion& e : out) {
    ASSERT_LT(e.tag, batch.size());
    ++seen[e.tag];
    EXPECT_EQ(e.result, e.tag * 3);
  }
  for (int s : seen) ASSERT_EQ(s, 1);

  // Only the survivor's segment remains; none once it leaves.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (d->segments().size() != 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(d->segments().size(), 1u);
  EXPECT_EQ(d->segments()[0], (*c)->segment_name());
  c = Status(ErrorCode::kShuttingDown, "disconnect");
  const auto deadline2 = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!d->segments().empty() && std::chrono::steady_clock::now() < deadline2)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(d->segments().empty());
  EXPECT_NE(d->log().find("'doomed' disconnected"), std::string::npos) << d->log();
}

TEST(Lifecycle, SigtermCompletesEveryAcceptedTaskAndCleansUp) {
  test::ScopedWatchdog watchdog("Lifecycle.Sigterm", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "drained"});
  ASSERT_TRUE(c);
  const std::uint32_t spin = *(*c)->kernel_id("spin");
  constexpr std::size_t kTasks = 400;  // 400 x 1 ms on 2 workers: ~200 ms in flight
  std::vector<TaskDescriptor> batch;
  for (std::uint64_t i = 0; i < kTasks; ++i) batch.push_back(make_task(spin, i, {1'000'000}));
  ASSERT_TRUE((*c)->submit(batch));
  ASSERT_EQ(::kill(d->pid(), SIGTERM), 0);
  // Submitting after the daemon began draining is refused, not lost.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::uint32_t noop = *(*c)->kernel_id("noop");
  const TaskDescriptor late = make_task(noop, 999'999);
  const Status s = (*c)->submit({&late, 1});
  EXPECT_EQ(s.code(), ErrorCode::kShuttingDown) << s.message();

  const auto out = reap(**c, kTasks, std::chrono::seconds(30));
  ASSERT_EQ(out.size(), kTasks);
  std::vector<int> seen(kTasks, 0);
  for (const Completion& e : out) {
    ASSERT_LT(e.tag, kTasks);
    ++seen[e.tag];
    EXPECT_EQ(e.status, TaskStatus::kOk);
    EXPECT_GE(e.result, 1'000'000u);
  }
  for (int n : seen) ASSERT_EQ(n, 1);
  EXPECT_EQ(d->signal_and_wait(0, std::chrono::seconds(20)), 0) << d->log();
  struct stat st {};
  EXPECT_NE(::stat(d->socket_path().c_str(), &st), 0) << "socket still exists";
  EXPECT_TRUE(d->segments().empty());
  // After the daemon is gone the client says so instead of hanging.
  Completion more[1];
  auto n = (*c)->wait(more, 1, std::chrono::seconds(5));
  ASSERT_FALSE(n);
  EXPECT_EQ(n.status().code(), ErrorCode::kShuttingDown) << n.status().message();
}

TEST(Lifecycle, FullSubmissionRingWouldBlockOrWaitsAndLosesNothing) {
  test::ScopedWatchdog watchdog("Lifecycle.RingFull", 60);
  auto d = DaemonProcess::start(
      {.workers = 1, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = ""});
  ASSERT_NE(d, nullptr);
  ClientOptions o{.socket_path = d->socket_path(), .name = "backpressure"};
  o.segment = {.sq_entries = 8, .cq_entries = 1024, .arena_bytes = 1 << 16};
  auto c = Client::connect(o);
  ASSERT_TRUE(c) << c.status().message();
  ASSERT_EQ((*c)->layout().sq_entries, 8u);
  const std::uint32_t spin = *(*c)->kernel_id("spin");
  std::uint64_t accepted = 0, would_block = 0;
  // Non-blocking: 2 ms tasks arrive far faster than one worker runs them.
  for (std::uint64_t i = 0; i < 200 && would_block == 0; ++i) {
    const TaskDescriptor t = make_task(spin, accepted, {2'000'000});
    const Status s = (*c)->submit({&t, 1}, SubmitMode::kNonBlocking);
    if (s) {
      ++accepted;
    } else {
      ASSERT_EQ(s.code(), ErrorCode::kWouldBlock) << s.message();
      ++would_block;
    }
  }
  EXPECT_EQ(would_block, 1u);
  EXPECT_LT(accepted, 200u);
  // Blocking: a batch four times the ring waits for room and goes through.
  std::vector<TaskDescriptor> batch;
  for (std::uint64_t i = 0; i < 32; ++i) batch.push_back(make_task(spin, accepted + i, {100'000}));
  ASSERT_TRUE((*c)->submit(batch));
  accepted += batch.size();
  const auto out = reap(**c, accepted, std::chrono::seconds(30));
  ASSERT_EQ(out.size(), accepted);
  std::map<std::uint64_t, int> seen;
  for (const Completion& e : out) {
    ++seen[e.tag];
    EXPECT_EQ(e.status, TaskStatus::kOk);
  }
  ASSERT_EQ(seen.size(), accepted);
  for (auto& [tag, n] : seen) EXPECT_EQ(n, 1) << tag;
  Completion extra[1];
  EXPECT_EQ((*c)->poll(extra), 0u);
}

// utime + stime of a process, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) stime = std::stol(f);
  }
  return utime + stime;
}

TEST(Lifecycle, FullCompletionRingParksWorkersUntilTheClientReaps) {
  test::ScopedWatchdog watchdog("Lifecycle.CqFull", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  ClientOptions o{.socket_path = d->socket_path(), .name = "slow-reaper"};
  o.segment = {.sq_entries = 256, .cq_entries = 8, .arena_bytes = 1 << 16};
  auto c = Client::connect(o);
  ASSERT_TRUE(c) << c.status().message();
  ASSERT_EQ((*c)->layout().cq_entries, 8u);
  const std::uint32_t noop = *(*c)->kernel_id("noop");
  std::vector<TaskDescriptor> batch;
  for (std::uint64_t i = 0; i < 200; ++i) batch.push_back(make_task(noop, i, {i + 1}));
  ASSERT_TRUE((*c)->submit(batch));
  // Only 8 completions fit; the other 192 tasks wait in the SQ while the
  // workers park (a spinning pair would burn ~2 cores: 100+ ticks here).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const long before = cpu_ticks(d->pid());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long used = cpu_ticks(d->pid()) - before;
  EXPECT_LT(used, 10) << "workers spun on a client whose CQ is full";
  // Reaping frees room and the rest flows, each exactly once.
  const auto out = reap(**c, batch.size(), std::chrono::seconds(30));
  ASSERT_EQ(out.size(), batch.size());
  std::vector<int> seen(batch.size(), 0);
  for (const Completion& e : out) {
    ASSERT_LT(e.tag, batch.size());
    ++seen[e.tag];
    EXPECT_EQ(e.result, e.tag + 1);
  }
  for (int n : seen) ASSERT_EQ(n, 1);
}

}  // namespace
}  // namespace beat
