// daemon/scheduler/scheduler.hpp + worker.hpp: fork-join results and exact
// counts on 1, 2 and oversubscribed workers, exceptions, statistics, and
// the no-lost-wake-up stress. Workers are unpinned so the tests also run
// when ctest runs two programs on this 2-core machine.
#include "daemon/scheduler/scheduler.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/support/scheduler_setup.hpp"
#include "tests/support/watchdog.hpp"

namespace beat::sched {
namespace {

Topology machine() { return test::machine_topology(); }

SchedulerOptions options(std::uint32_t workers, std::uint32_t idle_spin_us = 100,
                         std::uint32_t heartbeat_us = 100) {
  return test::unpinned_options(workers, idle_spin_us, heartbeat_us);
}

std::uint64_t fib(Worker& w, unsigned n) {
  if (n < 2) return n;
  std::uint64_t a = 0, b = 0;
  w.join([&](Worker& x) { a = fib(x, n - 1); }, [&](Worker& y) { b = fib(y, n - 2); });
  return a + b;
}

// Number of joins fib(n) performs: one per call with n >= 2.
std::uint64_t fib_joins(unsigned n) { return n < 2 ? 0 : 1 + fib_joins(n - 1) + fib_joins(n - 2); }

// Runs fib(30) (fib(22) under TSan) until the scheduler reports a steal,
// for at most 20 s: the machine may be running other tests on both cores
// and keep the idle worker off the CPU for a while. Returns the steals.
std::uint64_t fib_until_a_steal(Scheduler& s) {
  const unsigned n = test::kUnderThreadSanitizer ? 22 : 30;
  std::uint64_t steals = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (steals == 0 && std::chrono::steady_clock::now() < deadline) {
    std::uint64_t r = 0;
    s.run([&](Worker& w) { r = fib(w, n); });
    EXPECT_EQ(r, n == 22 ? 17711u : 832040u);
    steals = s.stats().steals;
  }
  return steals;
}

class SchedulerWorkers : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(SchedulerWorkers, FibIsExactAndEveryJoinIsCounted) {
  test::ScopedWatchdog watchdog("Scheduler.Fib", 60);
  const Topology topo = machine();
  const unsigned n = test::kUnderThreadSanitizer ? 20 : 27;
  Scheduler s(options(GetParam(), 100, 10), topo);
  ASSERT_TRUE(s.start());
  std::uint64_t result = 0;
  s.run([&](Worker& w) { result = fib(w, n); });
  s.stop();  // publishes every worker's counters
  EXPECT_EQ(result, n == 20 ? 6765u : 196418u);
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.spawns, fib_joins(n));
  EXPECT_EQ(st.jobs_run, 1 + st.steals) << "the root, then one job per steal";
  EXPECT_LE(st.steals, st.promotions);
}

TEST_P(SchedulerWorkers, ParallelForRunsAMillionChildrenExactlyOnce) {
  test::ScopedWatchdog watchdog("Scheduler.ParallelFor", 60);
  const Topology topo = machine();
  const std::uint64_t n = test::stress_size(1'000'000, 50'000);
  std::unique_ptr<std::atomic<std::uint8_t>[]> hits(new std::atomic<std::uint8_t>[n]);
  for (std::uint64_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
  Scheduler s(options(GetParam(), 100, 10), topo);
  ASSERT_TRUE(s.start());
  s.run([&](Worker& w) {
    w.parallel_for(0, n, 1, [&](Worker&, std::uint64_t i) {
      hits[i].fetch_add(1, std::memory_order_relaxed);
    });
  });
  s.stop();
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(hits[i].load(), 1) << "index " << i;
    ++total;
  }
  EXPECT_EQ(total, n);
  EXPECT_EQ(s.stats().spawns, n);
}

TEST_P(SchedulerWorkers, AMillionForkedChildrenAllJoin) {
  // A binary fork tree with 10^6 leaves: every child joined, sum exact.
  test::ScopedWatchdog watchdog("Scheduler.ForkTree", 60);
  const Topology topo = machine();
  const std::uint64_t leaves = test::stress_size(1'000'000, 50'000);
  Scheduler s(options(GetParam(), 100, 10), topo);
  ASSERT_TRUE(s.start());
  struct Tree {
    static std::uint64_t sum(Worker& w, std::uint64_t lo, std::uint64_t hi) {
      if (hi - lo == 1) return lo;
      const std::uint64_t mid = lo + (hi - lo) / 2;
      std::uint64_t a = 0, b = 0;
      w.join([&](Worker& x) { a = sum(x, lo, mid); }, [&](Worker& y) { b = sum(y, mid, hi); });
      return a + b;
    }
  };
  std::uint64_t got = 0;
  s.run([&](Worker& w) { got = Tree::sum(w, 0, leaves); });
  s.stop();
  EXPECT_EQ(got, leaves * (leaves - 1) / 2);
  EXPECT_EQ(s.stats().spawns, leaves - 1);
}

TEST_P(SchedulerWorkers, NestedParallelForInsideJoins) {
  test::ScopedWatchdog watchdog("Scheduler.Nested", 60);
  const Topology topo = machine();
  Scheduler s(options(GetParam(), 100, 5), topo);
  ASSERT_TRUE(s.start());
  constexpr std::uint64_t kOuter = 64, kInner = 2000;
  std::vector<std::uint64_t> sums(kOuter, 0);
  s.run([&](Worker& w) {
    w.parallel_for(0, kOuter, 1, [&](Worker& x, std::uint64_t i) {
      std::uint64_t a = 0, b = 0;
      x.join(
          [&](Worker& y) {
            std::vector<std::uint64_t> part(kInner / 2, 0);
            y.parallel_for(0, kInner / 2, 16, [&](Worker&, std::uint64_t j) { part[j] = i * j; });
            for (auto v : part) a += v;
          },
          [&](Worker& y) {
            y.parallel_for(kInner / 2, kInner, 16, [&](Worker& z, std::uint64_t j) {
              std::uint64_t f = fib(z, 5);  // joins inside a stolen range
              // Distinct j per call: no two calls add to b at once? They
              // may, on different workers: use an atomic ref.
              std::atomic_ref<std::uint64_t>(b).fetch_add(i * j + f - 5, std::memory_order_relaxed);
            });
          });
      sums[i] = a + b;
    });
  });
  for (std::uint64_t i = 0; i < kOuter; ++i)
    EXPECT_EQ(sums[i], i * (kInner * (kInner - 1) / 2)) << "outer " << i;
}

TEST_P(SchedulerWorkers, ExceptionsReachTheCallerAfterEveryBranchFinished) {
  test::ScopedWatchdog watchdog("Scheduler.Exceptions", 60);
  const Topology topo = machine();
  Scheduler s(options(GetParam(), 100, 1), topo);
  ASSERT_TRUE(s.start());
  for (int round = 0; round < 50; ++round) {
    std::atomic<std::uint64_t> ran{0};
    EXPECT_THROW(s.run([&](Worker& w) {
      w.parallel_for(0, 4000, 1, [&](Worker& x, std::uint64_t i) {
        x.join([&](Worker&) { ran.fetch_add(1); },
               [&](Worker&) {
                 ran.fetch_add(1);
                 if (i == 1234) throw std::runtime_error("kernel failed");
               });
      });
    }),
                 std::runtime_error);
    // Every branch that started has finished: the counter no longer moves.
    const std::uint64_t settled = ran.load();
    EXPECT_GE(settled, 2u);
    EXPECT_LE(settled, 8000u);
  }
  // The scheduler still works.
  std::uint64_t r = 0;
  s.run([&](Worker& w) { r = fib(w, 15); });
  EXPECT_EQ(r, 610u);
}

INSTANTIATE_TEST_SUITE_P(Workers, SchedulerWorkers, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return std::to_string(info.param); });

TEST(Scheduler, IdleWorkersStealWork) {
  // 2 workers: the idle one raises the busy one's heartbeat, which promotes
  // work it then steals. Scheduling on a loaded machine may keep it off
  // the CPU, so give it a few runs.
  test::ScopedWatchdog watchdog("Scheduler.IdleWorkersStealWork", 60);
  const Topology topo = machine();
  Scheduler s(options(2, 1'000'000, 20), topo);
  ASSERT_TRUE(s.start());
  const std::uint64_t steals = fib_until_a_steal(s);
  EXPECT_GT(steals, 0u);
  EXPECT_GT(s.stats().promotions, 0u);
}

TEST(Scheduler, BusyWorkerWakesAParkedOneWithItsOwnHeartbeat) {
  // idle_spin_us = 0: the second worker parks at once, so nobody raises the
  // busy worker's flag; its self-heartbeat must promote and wake.
  test::ScopedWatchdog watchdog("Scheduler.SelfHeartbeat", 60);
  const Topology topo = machine();
  Scheduler s(options(2, 0, 20), topo);
  ASSERT_TRUE(s.start());
  const std::uint64_t steals = fib_until_a_steal(s);
  EXPECT_GT(steals, 0u);
  EXPECT_GT(s.stats().parks, 0u);
}

TEST(Scheduler, ManyTinyBurstsNeverStall) {
  // Workers park immediately (idle_spin_us = 0) and heartbeats are 1 us, so
  // every burst goes through park -> wake -> promote -> steal. A lost
  // wake-up shows as a run() that never returns (the watchdog fails it).
  test::ScopedWatchdog watchdog("Scheduler.ManyTinyBurstsNeverStall", 100);
  const Topology topo = machine();
  Scheduler s(options(3, 0, 1), topo);
  ASSERT_TRUE(s.start());
  const std::uint64_t rounds = test::stress_size(20'000, 1'000);
  std::uint64_t total = 0;
  for (std::uint64_t r = 0; r < rounds; ++r) {
    std::atomic<std::uint64_t> sum{0};
    s.run([&](Worker& w) {
      w.parallel_for(0, 1 + r % 8, 1, [&](Worker& x, std::uint64_t i) {
        x.join([&](Worker&) { sum.fetch_add(i + 1, std::memory_order_relaxed); },
               [&](Worker&) { sum.fetch_add(1, std::memory_order_relaxed); });
      });
    });
    const std::uint64_t k = 1 + r % 8;
    ASSERT_EQ(sum.load(), k * (k + 1) / 2 + k) << "round " << r;
    total += k;
  }
  s.stop();
  EXPECT_GT(s.stats().parks, 0u);
  EXPECT_EQ(s.stats().jobs_run, rounds + s.stats().steals);
}

TEST(Scheduler, ATaskWithoutForksWakesOneParkedWorker) {
  // 4 workers that park at once. Each root is one job nobody can share, so
  // it must wake exactly one worker, which parks again after it: parks grow
  // by one per root. Waking every worker would add four.
  test::ScopedWatchdog watchdog("Scheduler.ATaskWithoutForksWakesOneParkedWorker", 60);
  const Topology topo = machine();
  Scheduler s(options(4, 0, 100), topo);
  ASSERT_TRUE(s.start());
  // Let every worker park first.
  const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s.parked_workers() != 4 && std::chrono::steady_clock::now() < settle)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(s.parked_workers(), 4u);
  const std::uint64_t parks_before = s.stats().parks;
  constexpr std::uint64_t kRoots = 200;
  for (std::uint64_t i = 0; i < kRoots; ++i) {
    std::uint64_t r = 0;
    s.run([&](Worker&) { r = i; });
    ASSERT_EQ(r, i);
    // The next root is injected only once the last worker parked again, so
    // every root meets four parked workers. parked_workers() counts a
    // worker from just before its last re-check; one still re-checking
    // when the next root's wake-up comes sees the futex word move and
    // wakes too (correctly: it cannot tell). Give it time to fall asleep.
    while (s.parked_workers() != 4) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  const std::uint64_t woken = s.stats().parks - parks_before;
  // A futex wait may return spuriously (signals); allow a few.
  EXPECT_GE(woken, kRoots);
  EXPECT_LE(woken, kRoots + kRoots / 20) << "roots woke more workers than could use them";
}

// Waits (bounded) until `n` workers of `s` are parked.
bool wait_parked(const Scheduler& s, std::uint32_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s.parked_workers() != n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(Scheduler, ACoarseLoopIsSharedWithParkedWorkers) {
  // 8 iterations never reach the 256-spawn self-heartbeat and every other
  // worker is parked (nobody raises our flag): the outermost frame must be
  // shared at once. Each body blocks until both halves have started, so a
  // loop run by one worker alone would never finish (the watchdog fails it).
  test::ScopedWatchdog watchdog("Scheduler.ACoarseLoopIsSharedWithParkedWorkers", 60);
  const Topology topo = machine();
  Scheduler s(options(2, 0, 100), topo);
  ASSERT_TRUE(s.start());
  ASSERT_TRUE(wait_parked(s, 2));
  std::atomic<int> started_low{0}, started_high{0};
  s.run([&](Worker& w) {
    w.parallel_for(0, 8, 1, [&](Worker&, std::uint64_t i) {
      (i < 4 ? started_low : started_high).fetch_add(1);
      // Both halves run at the same time, or neither finishes.
      while (started_low.load() == 0 || started_high.load() == 0) std::this_thread::yield();
    });
  });
  EXPECT_EQ(started_low.load() + started_high.load(), 8);
  EXPECT_GE(s.stats().steals, 1u);
}

TEST(Scheduler, AJoinWhoseBranchesNeverForkIsSharedWithParkedWorkers) {
  test::ScopedWatchdog watchdog("Scheduler.AJoinWhoseBranchesNeverFork", 60);
  const Topology topo = machine();
  Scheduler s(options(2, 0, 100), topo);
  ASSERT_TRUE(s.start());
  ASSERT_TRUE(wait_parked(s, 2));
  std::atomic<bool> a_running{false}, b_running{false};
  s.run([&](Worker& w) {
    w.join(
        [&](Worker&) {
          a_running.store(true);
          while (!b_running.load()) std::this_thread::yield();  // needs b elsewhere
        },
        [&](Worker&) {
          b_running.store(true);
          while (!a_running.load()) std::this_thread::yield();
        });
  });
  EXPECT_EQ(s.stats().steals, 1u);
}

TEST(Scheduler, ARootRunsWhileTheOnlySearchingWorkerWaitsAtAJoin) {
  // Worker X waits at a join for b, stolen by Y; b blocks until a second
  // root has run. X counts as searching, so injecting the second root wakes
  // nobody: X itself must take it (before the fix it waited for b, which
  // waited for the root: a hang the watchdog turns into a failure).
  test::ScopedWatchdog watchdog("Scheduler.ARootRunsWhileTheOnlySearchingWorkerWaits", 60);
  const Topology topo = machine();
  Scheduler s(options(2, 1'000'000, 20), topo);
  ASSERT_TRUE(s.start());
  std::atomic<bool> b_started{false}, second_done{false};
  std::thread first([&] {
    s.run([&](Worker& w) {
      w.join(
          [&](Worker& x) {
            // Keep a running (and polling, so b gets promoted) until b runs
            // on the other worker: b is stolen, never reclaimed.
            while (!b_started.load()) x.poll();
          },
          [&](Worker&) {
            b_started.store(true);
            while (!second_done.load()) std::this_thread::yield();
          });
    });
  });
  while (!b_started.load()) std::this_thread::yield();
  std::uint64_t r = 0;
  s.run([&](Worker& w) { r = fib(w, 10); });
  second_done.store(true);
  first.join();
  EXPECT_EQ(r, 55u);
}

TEST(Scheduler, RunAfterStopThrowsInsteadOfHanging) {
  const Topology topo = machine();
  Scheduler s(options(1), topo);
  ASSERT_TRUE(s.start());
  std::uint64_t r = 0;
  s.run([&](Worker& w) { r = fib(w, 10); });
  EXPECT_EQ(r, 55u);
  s.stop();
  EXPECT_THROW(s.run([](Worker&) {}), std::logic_error);
}

TEST(Scheduler, PollLetsALongLoopBetweenForksBeShared) {
  // a spins in a loop calling poll() and waits for b to run elsewhere; the
  // other worker is parked. poll()'s own periodic self-heartbeat must
  // promote b (the join is not the outermost frame: it runs inside a
  // parallel_for of one iteration, so the eager share does not apply).
  test::ScopedWatchdog watchdog("Scheduler.PollLetsALongLoopBetweenForksBeShared", 60);
  const Topology topo = machine();
  Scheduler s(options(2, 0, 50), topo);
  ASSERT_TRUE(s.start());
  ASSERT_TRUE(wait_parked(s, 2));
  std::atomic<bool> b_ran{false};
  s.run([&](Worker& w) {
    w.parallel_for(0, 1, 1, [&](Worker& x, std::uint64_t) {
      x.join(
          [&](Worker& y) {
            while (!b_ran.load()) y.poll();
          },
          [&](Worker&) { b_ran.store(true); });
    });
  });
  EXPECT_TRUE(b_ran.load());
  EXPECT_GE(s.stats().steals, 1u);
}

TEST(Scheduler, ShareBeforeALongCallGivesAwayEvenTheLastIteration) {
  // Two iterations, each a long call that never polls (a client task whose
  // kernel is not batchable). Once iteration 0 runs, one iteration remains:
  // too few to halve, so no heartbeat would ever share it, and a heartbeat
  // at iteration 0's tick (raised by the searching worker) must not retire
  // the frame either. The idle worker may be searching, parking or parked
  // at any moment of this (20 rounds).
  // Iteration 0 waits for iteration 1 to start: run by one worker alone,
  // the loop never finishes (the watchdog fails it).
  test::ScopedWatchdog watchdog("Scheduler.ShareBeforeALongCall", 60);
  const Topology topo = machine();
  Scheduler s(options(2, 50, 100), topo);
  ASSERT_TRUE(s.start());
  for (int round = 0; round < 20; ++round) {
    std::atomic<bool> second_started{false};
    s.run([&](Worker& w) {
      w.parallel_for(0, 2, 1, [&](Worker& x, std::uint64_t i) {
        x.share_before_long_call();
        if (i == 1) {
          second_started.store(true);
          return;
        }
        while (!second_started.load()) std::this_thread::yield();  // no poll()
      });
    });
    EXPECT_TRUE(second_started.load());
    if (round == 1) {
      ASSERT_TRUE(wait_parked(s, 2));  // the next round starts from parked workers
    }
  }
  EXPECT_GE(s.stats().steals, 20u);
}

TEST(Scheduler, RunsFromSeveralExternalThreads) {
  test::ScopedWatchdog watchdog("Scheduler.ExternalThreads", 60);
  const Topology topo = machine();
  Scheduler s(options(2, 50, 10), topo);
  ASSERT_TRUE(s.start());
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::uint64_t r = 0;
        const unsigned n = 10 + static_cast<unsigned>((t + i) % 8);
        s.run([&](Worker& w) { r = fib(w, n); });
        std::uint64_t a = 0, b = 1;
        for (unsigned k = 0; k < n; ++k) {
          const std::uint64_t c = a + b;
          a = b;
          b = c;
        }
        if (r != a) wrong.fetch_add(1);
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace beat::sched
