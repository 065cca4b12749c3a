// daemon/scheduler/inline_forks.hpp and the inline-subtree half of
// worker.hpp: generic callables deep in a fork tree run inline, with exact
// results and exact counts; inline_forks = false records every fork; the
// polling clone counts every fork and still lets an idle worker steal;
// exceptions leave the worker's depth bookkeeping intact. Workers are
// unpinned so the tests also run when ctest runs two programs on this
// 2-core machine.
#include "daemon/scheduler/inline_forks.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "daemon/scheduler/scheduler.hpp"
#include "kernels/workloads/fib.hpp"
#include "kernels/workloads/skynet.hpp"
#include "tests/support/scheduler_setup.hpp"
#include "tests/support/watchdog.hpp"

namespace beat::sched {
namespace {

Topology machine() { return test::machine_topology(); }

SchedulerOptions options(std::uint32_t workers, bool inline_forks, std::uint32_t heartbeat_us) {
  SchedulerOptions o = test::unpinned_options(workers, 100, heartbeat_us);
  o.inline_forks = inline_forks;
  return o;
}

// Joins fib(n) performs: one per call with n >= 2.
std::uint64_t fib_joins(unsigned n) { return n < 2 ? 0 : 1 + fib_joins(n - 1) + fib_joins(n - 2); }

// fib(27) has frames 26 forks deep, far below the initial inline depth.
const unsigned kFibN = test::kUnderThreadSanitizer ? 22 : 27;

class InlineWorkers : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(InlineWorkers, GenericFibIsExactAndItsDeepForksRunInline) {
  test::ScopedWatchdog watchdog("InlineForks.Fib", 60);
  const Topology topo = machine();
  Scheduler s(options(GetParam(), true, 100), topo);
  ASSERT_TRUE(s.start());
  constexpr int kRuns = 5;
  for (int run = 0; run < kRuns; ++run) {
    std::uint64_t r = 0;
    s.run([&](Worker& w) { r = workloads::fib(w, kFibN); });
    ASSERT_EQ(r, workloads::fib_reference(kFibN)) << "run " << run;
  }
  s.stop();
  const SchedulerStats st = s.stats();
  EXPECT_GT(st.inline_runs, 0u);
  // Inline forks are not counted: fewer spawns than joins, by far.
  EXPECT_LT(st.spawns, kRuns * fib_joins(kFibN) / 2);
  EXPECT_EQ(st.jobs_run, kRuns + st.steals) << "the roots, then one job per steal";
}

TEST_P(InlineWorkers, GenericNestedLoopsRunEveryIndexExactlyOnce) {
  test::ScopedWatchdog watchdog("InlineForks.Loops", 60);
  const Topology topo = machine();
  Scheduler s(options(GetParam(), true, 10), topo);
  ASSERT_TRUE(s.start());
  // 3 levels of loops of 40 (64,000 leaves), each level one fork deeper:
  // with the inline depth tuned down (a tree shallower than the depth is
  // fork-dense), the lower levels run as plain loops.
  constexpr std::uint64_t kFan = 40;
  const std::uint64_t leaves = kFan * kFan * kFan;
  std::unique_ptr<std::atomic<std::uint8_t>[]> hits(new std::atomic<std::uint8_t>[leaves]);
  for (int run = 0; run < 20; ++run) {
    for (std::uint64_t i = 0; i < leaves; ++i) hits[i].store(0, std::memory_order_relaxed);
    s.run([&](Worker& w) {
      w.parallel_for(0, kFan, 1, [&](auto& a, std::uint64_t i) {
        a.parallel_for(0, kFan, 1, [&](auto& b, std::uint64_t j) {
          b.parallel_for(0, kFan, 1, [&](auto&, std::uint64_t k) {
            hits[(i * kFan + j) * kFan + k].fetch_add(1, std::memory_order_relaxed);
          });
        });
      });
    });
    for (std::uint64_t i = 0; i < leaves; ++i)
      ASSERT_EQ(hits[i].load(std::memory_order_relaxed), 1) << "run " << run << " index " << i;
    std::uint64_t sum = 0;
    s.run([&](Worker& w) { sum = workloads::skynet(w, 100'000); });
    ASSERT_EQ(sum, workloads::skynet_reference(100'000)) << "run " << run;
  }
  s.stop();
  EXPECT_GT(s.stats().inline_runs, 0u);
}

INSTANTIATE_TEST_SUITE_P(Workers, InlineWorkers, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return std::to_string(info.param); });

TEST(InlineForks, OffRecordsEveryForkOfAGenericCallable) {
  test::ScopedWatchdog watchdog("InlineForks.Off", 60);
  const Topology topo = machine();
  Scheduler s(options(2, false, 100), topo);
  ASSERT_TRUE(s.start());
  std::uint64_t r = 0;
  s.run([&](Worker& w) {
    r = workloads::fib(w, kFibN);
    EXPECT_GT(w.inline_depth(), 1000u) << "never reached";
  });
  s.stop();
  EXPECT_EQ(r, workloads::fib_reference(kFibN));
  EXPECT_EQ(s.stats().spawns, fib_joins(kFibN));
  EXPECT_EQ(s.stats().inline_runs, 0u);
}

// A chain of `n` forks, each a(rest of the chain) and b(one leaf), through
// whatever executor `e` is; leaves add to `sum` and count the ones run on
// another thread than `owner`.
struct Chain {
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint64_t> elsewhere{0};
  std::thread::id owner;

  template <class Ex>
  void run(Ex& e, std::uint64_t n) {
    if (n == 0) return;
    e.join([&](auto& x) { run(x, n - 1); },
           [&, n](auto&) {
             sum.fetch_add(n, std::memory_order_relaxed);
             if (std::this_thread::get_id() != owner)
               elsewhere.fetch_add(1, std::memory_order_relaxed);
           });
  }
};

TEST(InlineForks, ThePlainCloneCountsNothing) {
  test::ScopedWatchdog watchdog("InlineForks.PlainClone", 60);
  const Topology topo = machine();
  Scheduler s(options(1, true, 100), topo);
  ASSERT_TRUE(s.start());
  constexpr std::uint64_t kForks = 5'000;
  Chain chain;
  std::uint64_t spawns_before = 0;
  std::uint64_t spawns_after = 0;
  s.run([&](Worker& w) {
    spawns_before = w.stats().spawns.load(std::memory_order_relaxed);
    WorkerInline<false> in(w);
    chain.run(in, kForks);
  });
  s.stop();
  spawns_after = s.stats().spawns;
  EXPECT_EQ(chain.sum.load(), kForks * (kForks + 1) / 2);
  EXPECT_EQ(spawns_after, spawns_before);
}

TEST(InlineForks, ThePollingCloneCountsEveryForkAndSharesAChain) {
  // The polling clone (what a worker uses after a subtree ran too long)
  // counts each fork exactly once and, when an idle worker raises the
  // heartbeat, turns the fork into a frame that can be promoted: the idle
  // worker gets leaves of a chain no depth limit would ever split.
  test::ScopedWatchdog watchdog("InlineForks.PollingClone", 60);
  const Topology topo = machine();
  Scheduler s(options(2, true, 5), topo);
  ASSERT_TRUE(s.start());
  const std::uint64_t forks = test::kUnderThreadSanitizer ? 2'000 : 10'000;
  std::uint64_t runs = 0;
  std::uint64_t stolen_leaves = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (stolen_leaves == 0 && std::chrono::steady_clock::now() < deadline) {
    Chain chain;
    s.run([&](Worker& w) {
      chain.owner = std::this_thread::get_id();
      WorkerInline<true> in(w);
      chain.run(in, forks);
    });
    ++runs;
    ASSERT_EQ(chain.sum.load(), forks * (forks + 1) / 2) << "run " << runs;
    stolen_leaves += chain.elsewhere.load();
  }
  s.stop();
  EXPECT_GT(stolen_leaves, 0u) << "no leaf ran on the idle worker in " << runs << " runs";
  EXPECT_EQ(s.stats().spawns, runs * forks);
  EXPECT_GT(s.stats().promotions, 0u);
  EXPECT_EQ(s.stats().inline_runs, 0u) << "clones made by hand are not timed subtrees";
}

// A binary tree of joins `depth` deep (node ids as in a heap: the root is
// 1, the children of k are 2k and 2k + 1) in which node `thrower` throws.
template <class Ex>
std::uint64_t throwing_tree(Ex& e, unsigned depth, std::uint64_t id, std::uint64_t thrower) {
  if (id == thrower) throw std::runtime_error("node " + std::to_string(id));
  if (depth == 0) return 1;
  std::uint64_t a = 0, b = 0;
  e.join([&](auto& x) { a = throwing_tree(x, depth - 1, 2 * id, thrower); },
         [&](auto& x) { b = throwing_tree(x, depth - 1, 2 * id + 1, thrower); });
  return a + b;
}

TEST(InlineForks, ExceptionsFromInlineSubtreesReachTheCallerAndUnwindTheDepth) {
  test::ScopedWatchdog watchdog("InlineForks.Exceptions", 60);
  const Topology topo = machine();
  Scheduler s(options(2, true, 10), topo);
  ASSERT_TRUE(s.start());
  const std::uint64_t inline_before = s.stats().inline_runs;
  for (int round = 0; round < 20; ++round) {
    // Node 777 is 9 forks deep, within the depth that records frames (12
    // at a job's start); leaf 2^18 + 777 is 18 deep, inside an inline
    // subtree.
    const std::uint64_t thrower = round % 2 == 0 ? 777 : (std::uint64_t{1} << 18) + 777;
    EXPECT_THROW(s.run([&](Worker& w) { throwing_tree(w, 18, 1, thrower); }), std::runtime_error);
    // Every level the throw unwound was given back: the next root starts
    // at fork depth 0 (between runs both workers wait in their idle loops).
    std::uint64_t r = 0;
    std::uint32_t depth_at_root = 1;
    s.run([&](Worker& w) {
      depth_at_root = w.fork_depth();
      r = workloads::fib(w, 20);
    });
    ASSERT_EQ(depth_at_root, 0u) << "round " << round;
    ASSERT_EQ(r, 6'765u) << "round " << round;
  }
  s.stop();
  EXPECT_GT(s.stats().inline_runs, inline_before);
}

}  // namespace
}  // namespace beat::sched
