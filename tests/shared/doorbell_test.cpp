// Unit tests of shared/doorbell.hpp: futex_wait/futex_wake on shared (not
// private) words, including across fork(); ring_doorbell's needs_wakeup
// shortcut; futex_wait_any's index and timeout results. The many-round
// needs_wakeup ping-pong is in doorbell_stress_test.cpp.
#include "shared/doorbell.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <thread>

#include "tests/support/shared_mapping.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr timespec kTwentyMs{0, 20'000'000};

// Calls futex_wake(word, count) until it reports `want` waiters woken in
// total (waiters reach futex_wait at a time the test cannot observe), or the
// deadline passes. Returns the total woken.
int wake_until(std::atomic<std::uint32_t>* word, int count, int want, milliseconds limit) {
  int total = 0;
  const auto deadline = Clock::now() + limit;
  while (total < want && Clock::now() < deadline) {
    total += futex_wake(word, count);
    if (total < want) std::this_thread::sleep_for(milliseconds(1));
  }
  return total;
}

TEST(Doorbell, LayoutIsOneCacheLine) {
  EXPECT_EQ(sizeof(Doorbell), kCacheLine);
  EXPECT_EQ(alignof(Doorbell), kCacheLine);
  EXPECT_EQ(offsetof(Doorbell, needs_wakeup), 0u);
  EXPECT_EQ(offsetof(Doorbell, seq), 4u);
}

TEST(Doorbell, FutexWaitReturnsAtOnceWhenWordDiffersFromExpected) {
  std::atomic<std::uint32_t> word{5};
  const auto t0 = Clock::now();
  const timespec ten_s{10, 0};
  EXPECT_TRUE(futex_wait(&word, 4, &ten_s));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

TEST(Doorbell, FutexWaitTimesOutAndReportsIt) {
  std::atomic<std::uint32_t> word{0};
  const auto t0 = Clock::now();
  EXPECT_FALSE(futex_wait(&word, 0, &kTwentyMs));
  const auto elapsed = Clock::now() - t0;
  EXPECT_GE(elapsed, milliseconds(20));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(Doorbell, FutexWakeWithoutWaitersWakesNone) {
  std::atomic<std::uint32_t> word{0};
  EXPECT_EQ(futex_wake(&word, 1), 0);
  EXPECT_EQ(futex_wake(&word, INT_MAX), 0);
}

TEST(Doorbell, FutexWakeReachesWaiterInForkedProcess) {
  test::SharedMapping mem(4096);
  auto* word = ::new (mem.data()) std::atomic<std::uint32_t>{0};
  // The child waits once; the word never changes, so only a wake (not
  // EAGAIN) can end the wait before its 20 s timeout.
  const pid_t child = test::fork_child(60, [&] {
    const timespec twenty_s{20, 0};
    return futex_wait(word, 0, &twenty_s) ? 0 : 10;
  });
  test::ScopedWatchdog watchdog("Doorbell.FutexWakeReachesWaiterInForkedProcess", 60);
  // A private futex would key on (mm, address) and never find the child.
  EXPECT_EQ(wake_until(word, 1, 1, milliseconds(15'000)), 1);
  EXPECT_EQ(test::wait_child(child, milliseconds(10'000)), 0);
}

TEST(Doorbell, FutexWakeAllReachesEveryForkedWaiter) {
  constexpr int kChildren = 3;
  test::SharedMapping mem(4096);
  auto* word = ::new (mem.data()) std::atomic<std::uint32_t>{0};
  pid_t children[kChildren];
  for (pid_t& c : children)
    c = test::fork_child(60, [&] {
      const timespec twenty_s{20, 0};
      return futex_wait(word, 0, &twenty_s) ? 0 : 10;
    });
  test::ScopedWatchdog watchdog("Doorbell.FutexWakeAllReachesEveryForkedWaiter", 60);
  EXPECT_EQ(wake_until(word, INT_MAX, kChildren, milliseconds(15'000)), kChildren);
  for (pid_t c : children) EXPECT_EQ(test::wait_child(c, milliseconds(10'000)), 0);
}

TEST(Doorbell, RingWithoutSleeperCostsNoWake) {
  Doorbell bell;
  ring_doorbell(bell, 1);
  EXPECT_EQ(bell.seq.load(), 0u);
  EXPECT_EQ(bell.needs_wakeup.load(), 0u);
}

TEST(Doorbell, RingWithSleeperBumpsSeqAndWakesIt) {
  test::ScopedWatchdog watchdog("Doorbell.RingWithSleeperBumpsSeqAndWakesIt", 30);
  Doorbell bell;
  std::atomic<std::uint32_t> published{0};
  std::atomic<int> result{-1};  // 1 = woke and saw the item, 0 = timed out
  std::thread waiter([&] {
    // Waiter side of the protocol in doorbell.hpp.
    bell.needs_wakeup.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint32_t s = bell.seq.load(std::memory_order_acquire);
    if (published.load(std::memory_order_acquire) == 0) {
      const timespec ten_s{10, 0};
      if (!futex_wait(&bell.seq, s, &ten_s)) {
        result.store(0);
        return;
      }
    }
    result.store(published.load(std::memory_order_acquire) == 1 ? 1 : 2);
  });
  // Let the waiter park (not required for correctness: EAGAIN covers it).
  while (bell.needs_wakeup.load(std::memory_order_relaxed) == 0) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(20));
  published.store(1, std::memory_order_release);
  ring_doorbell(bell, 1);
  waiter.join();
  EXPECT_EQ(result.load(), 1);
  EXPECT_EQ(bell.seq.load(), 1u);
}

class FutexWaitAny : public ::testing::Test {
 protected:
  void SetUp() override {
    std::atomic<std::uint32_t> probe{0};
    const FutexWaitItem item{&probe, 1};  // mismatch: returns at once if supported
    if (futex_wait_any(&item, 1, 0) == -2) GTEST_SKIP() << "kernel lacks futex_waitv (< 5.16)";
  }
};

TEST_F(FutexWaitAny, ReturnsIndexOfTheWokenWord) {
  test::ScopedWatchdog watchdog("FutexWaitAny.ReturnsIndexOfTheWokenWord", 30);
  std::atomic<std::uint32_t> words[3] = {{7}, {8}, {9}};
  const FutexWaitItem items[3] = {{&words[0], 7}, {&words[1], 8}, {&words[2], 9}};
  std::atomic<int> result{-100};
  std::thread waiter([&] { result.store(futex_wait_any(items, 3, 20'000'000'000)); });
  EXPECT_EQ(wake_until(&words[2], 1, 1, milliseconds(15'000)), 1);
  waiter.join();
  EXPECT_EQ(result.load(), 2);
}

TEST_F(FutexWaitAny, ReturnsIndexOfWordWokenFromAnotherProcess) {
  test::SharedMapping mem(4096);
  auto* words = static_cast<std::atomic<std::uint32_t>*>(mem.data());
  for (int i = 0; i < 4; ++i) ::new (&words[i]) std::atomic<std::uint32_t>{0};
  const pid_t child = test::fork_child(60, [&] {
    FutexWaitItem items[4];
    for (int i = 0; i < 4; ++i) items[i] = {&words[i], 0};
    const int r = futex_wait_any(items, 4, 20'000'000'000);
    return r < 0 ? 100 - r : r;  // exit code = index woken
  });
  test::ScopedWatchdog watchdog("FutexWaitAny.ReturnsIndexOfWordWokenFromAnotherProcess", 60);
  EXPECT_EQ(wake_until(&words[1], 1, 1, milliseconds(15'000)), 1);
  EXPECT_EQ(test::wait_child(child, milliseconds(10'000)), 1);
}

TEST_F(FutexWaitAny, TimeoutReturnsMinusOneAfterTheTimeout) {
  std::atomic<std::uint32_t> words[2] = {{1}, {2}};
  const FutexWaitItem items[2] = {{&words[0], 1}, {&words[1], 2}};
  const auto t0 = Clock::now();
  EXPECT_EQ(futex_wait_any(items, 2, 30'000'000), -1);
  const auto elapsed = Clock::now() - t0;
  EXPECT_GE(elapsed, milliseconds(30));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  // A timeout of more than a second exercises the seconds carry.
  const auto t1 = Clock::now();
  EXPECT_EQ(futex_wait_any(items, 2, 1'200'000'000), -1);
  const auto elapsed_long = Clock::now() - t1;
  EXPECT_GE(elapsed_long, milliseconds(1200));
  EXPECT_LT(elapsed_long, std::chrono::seconds(6));
}

TEST_F(FutexWaitAny, ChangedWordReturnsMinusOneAtOnce) {
  std::atomic<std::uint32_t> words[2] = {{1}, {3}};
  const FutexWaitItem items[2] = {{&words[0], 1}, {&words[1], 2}};
  const auto t0 = Clock::now();
  EXPECT_EQ(futex_wait_any(items, 2, 10'000'000'000), -1);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(FutexWaitAny, RejectsCountOutsideOneTo128) {
  std::atomic<std::uint32_t> word{0};
  const FutexWaitItem item{&word, 0};
  EXPECT_EQ(futex_wait_any(&item, 0, 0), -1);
  EXPECT_EQ(futex_wait_any(&item, -1, 0), -1);
  EXPECT_EQ(futex_wait_any(&item, kMaxFutexWaitItems + 1, 0), -1);
}

}  // namespace
}  // namespace beat
