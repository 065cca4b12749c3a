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
#include <type_traits>

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

// How many throws of throwing_tree from a leaf happened inside an inline
// subtree.
std::atomic<std::uint64_t> g_inline_leaf_throws{0};

// A binary tree of joins `depth` deep (node ids as in a heap: the root is
// 1, the children of k are 2k and 2k + 1) in which node `thrower` throws.
template <class Ex>
std::uint64_t throwing_tree(Ex& e, unsigned depth, std::uint64_t id, std::uint64_t thrower) {
  if (id == thrower) {
    if constexpr (!std::is_same_v<Ex, Worker>) {
      if (depth == 0) g_inline_leaf_throws.fetch_add(1);
    }
    throw std::runtime_error("node " + std::to_string(id));
  }
  if (depth == 0) return 1;
  std::uint64_t a = 0, b = 0;
  e.join([&](auto& x) { a = throwing_tree(x, depth - 1, 2 * id, thrower); },
         [&](auto& x) { b = throwing_tree(x, depth - 1, 2 * id + 1, thrower); });
  return a + b;
}

TEST(InlineForks, ExceptionsFromInlineSubtreesReachTheCallerAndUnwindTheDepth) {
  test::ScopedWatchdog watchdog("InlineForks.Exceptions", 60);
  const Topology topo = machine();
  // A 1 ms heartbeat: subtrees of 62 us count as short, so the depth does
  // not grow past 18 even under ThreadSanitizer.
  Scheduler s(options(2, true, 1000), topo);
  ASSERT_TRUE(s.start());
  g_inline_leaf_throws.store(0);
  for (int round = 0; round < 20; ++round) {
    // Node 777 is 9 forks deep, within the depth that records frames at a
    // job's start (12; the tuning may take it shallower); leaf 2^18 + 777
    // is 18 deep, inside an inline subtree.
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
  // Leaf 2^18 + 777 threw from an inline clone on its rounds (18 forks
  // deep; jobs start at 12, and these subtrees never run long enough to
  // make it deeper).
  EXPECT_EQ(g_inline_leaf_throws.load(), 10u);
}

// ---- the depth tuning (worker.hpp, "Inline subtrees") ----

// A binary tree of joins `depth` deep whose last leaf spins for `spin`,
// after calling at_slow_leaf().
template <class Ex, class F>
void tree_with_a_slow_leaf(Ex& e, unsigned depth, bool last, std::chrono::microseconds spin,
                           F& at_slow_leaf) {
  if (depth == 0) {
    if (last) {
      at_slow_leaf();
      const auto until = std::chrono::steady_clock::now() + spin;
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    return;
  }
  e.join([&](auto& x) { tree_with_a_slow_leaf(x, depth - 1, false, spin, at_slow_leaf); },
         [&](auto& x) { tree_with_a_slow_leaf(x, depth - 1, last, spin, at_slow_leaf); });
}

TEST(InlineDepth, ALongSubtreeDoesNotTurnInliningOffForGood) {
  // A 30 ms leaf at the end of an inline subtree makes the worker deeper
  // (kMaxDeeperStep levels, past the job minimum of 12) and switches it to
  // the polling clone. fib(n) forks at most n - 2 deep, so at a depth of n
  // it runs without a single subtree until the frame density brings the
  // depth back. Regression: the polling mode ended only after 64 more
  // subtrees, which never came, and it kept the density rule off: no
  // subtree ever again on that worker.
  test::ScopedWatchdog watchdog("InlineDepth.Recovers", 60);
  const Topology topo = machine();
  Scheduler s(options(1, true, 100), topo);
  ASSERT_TRUE(s.start());
  std::uint32_t depth_before_leaf = 0;
  std::uint32_t depth_after_leaf = 0;
  s.run([&](Worker& w) {
    // One worker: the leaf runs on w's thread, inside an inline subtree.
    auto at_slow_leaf = [&] { depth_before_leaf = w.inline_depth(); };
    tree_with_a_slow_leaf(w, 16, true, std::chrono::milliseconds(30), at_slow_leaf);
    depth_after_leaf = w.inline_depth();
  });
  ASSERT_GT(depth_after_leaf, depth_before_leaf) << "the long subtree did not deepen the worker";
  // At least 14: fib(14)'s deepest join is 12 deep, the job minimum. (If
  // the depth is still at most 12, fib(14) has subtrees at once.)
  const unsigned n = depth_after_leaf < 14 ? 14 : depth_after_leaf;
  std::uint64_t r = 0;
  std::uint64_t runs = 0;
  bool recovered = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!recovered && std::chrono::steady_clock::now() < deadline) {
    const std::uint64_t before = s.stats().inline_runs;
    s.run([&](Worker& w) { r = workloads::fib(w, n); });
    ASSERT_EQ(r, workloads::fib_reference(n));
    ++runs;
    recovered = s.stats().inline_runs > before;
  }
  EXPECT_TRUE(recovered) << "fib(" << n << ") never ran an inline subtree again in " << runs
                         << " runs";
}

TEST(InlineDepth, AFlatLoopLeavesTheDepthAlone) {
  // Two million leaf iterations push one frame: they say nothing about how
  // deep the task's forks should be recorded. Regression: they counted as
  // forks through frames and took the depth down to 1 within the task.
  test::ScopedWatchdog watchdog("InlineDepth.FlatLoop", 60);
  const Topology topo = machine();
  Scheduler s(options(1, true, 100), topo);
  ASSERT_TRUE(s.start());
  const std::uint64_t n = test::stress_size(2'000'000, 200'000);
  std::uint32_t before = 0, after = 0;
  std::atomic<std::uint64_t> sum{0};
  s.run([&](Worker& w) {
    before = w.inline_depth();
    w.parallel_for(0, n, 1, [&](Worker&, std::uint64_t i) {
      sum.fetch_add(i & 1, std::memory_order_relaxed);
    });
    after = w.inline_depth();
  });
  EXPECT_EQ(sum.load(), n / 2);
  EXPECT_EQ(after, before);
}

TEST(InlineDepth, DenseFramesMakeItShallowerWithAWorkSourceToo) {
  // Forks of a callable that takes Worker& always record frames: fib(27)
  // pushes ~300,000 of them, far past kMaxFramesPerBeat per heartbeat, so
  // the depth must come down. Regression: every heartbeat's WorkSource poll
  // raised it back to the job minimum (12).
  struct IdleSource final : WorkSource {
    void on_loop(Worker&) noexcept override {}
    bool poll(Worker&) override { return false; }
    int arm_park(Worker&, FutexWaitItem*, int) noexcept override { return 0; }
    void before_sleep(Worker&) noexcept override {}
    void after_sleep(Worker&) noexcept override {}
    void disarm_park(Worker&) noexcept override {}
    void publish(Worker&) noexcept override {}
  };
  test::ScopedWatchdog watchdog("InlineDepth.WorkSource", 60);
  const Topology topo = machine();
  IdleSource source;
  Scheduler s(options(1, true, 100), topo, &source);
  ASSERT_TRUE(s.start());
  struct Frames {
    static std::uint64_t fib(Worker& w, unsigned n) {
      if (n < 2) return n;
      std::uint64_t a = 0, b = 0;
      w.join([&](Worker& x) { a = fib(x, n - 1); }, [&](Worker& x) { b = fib(x, n - 2); });
      return a + b;
    }
  };
  const unsigned n = test::kUnderThreadSanitizer ? 24 : 27;
  std::uint32_t depth = 0;
  std::uint64_t r = 0;
  s.run([&](Worker& w) {
    r = Frames::fib(w, n);
    depth = w.inline_depth();
  });
  EXPECT_EQ(r, workloads::fib_reference(n));
  EXPECT_LT(depth, 12u);
}

TEST(InlineDepth, ReclaimedPartsOfALoopCountTheirDepthOnce) {
  // A part of a parallel_for that its owner takes back runs at the loop's
  // own level, log2(range) below the loop. Regression: it ran inside the
  // loop's depth step too, up to 56 levels deep for a range of 1024, so a
  // generic fork in such a body was one deaf inline subtree.
  test::ScopedWatchdog watchdog("InlineDepth.Reclaimed", 60);
  const Topology topo = machine();
  Scheduler s(options(2, true, 5), topo);
  ASSERT_TRUE(s.start());
  constexpr std::uint64_t kRange = 1024;  // bodies 10 levels below the loop
  std::atomic<std::uint32_t> deepest{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (s.stats().promotions == 0 && std::chrono::steady_clock::now() < deadline) {
    s.run([&](Worker& w) {
      w.parallel_for(0, kRange, 1, [&](Worker& x, std::uint64_t) {
        const std::uint32_t d = x.fork_depth();
        std::uint32_t seen = deepest.load(std::memory_order_relaxed);
        while (d > seen && !deepest.compare_exchange_weak(seen, d, std::memory_order_relaxed)) {
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(5);
        while (std::chrono::steady_clock::now() < until) {
        }
      });
    });
  }
  s.stop();
  ASSERT_GT(s.stats().promotions, 0u) << "no part of the loop was ever split off";
  EXPECT_LE(deepest.load(), 10u);
}

TEST(InlineDepth, AsTaskGivesAClientTaskItsOwnDepth) {
  // A WorkSource runs client tasks as the iterations of one loop of up to
  // 4096: 12 levels, the whole of a job's recorded depth. Inside as_task a
  // task's first fork is a frame again (its callables get the Worker);
  // without it, the fork is already an inline subtree.
  test::ScopedWatchdog watchdog("InlineDepth.AsTask", 60);
  const Topology topo = machine();
  Scheduler s(options(1, true, 100), topo);
  ASSERT_TRUE(s.start());
  bool as_task_got_worker = false;
  bool plain_got_worker = true;
  s.run([&](Worker& w) {
    w.parallel_for(0, 4096, 1, [&](Worker& x, std::uint64_t i) {
      if (i == 0) {
        x.as_task([&] {
          x.join([&](auto& e) { as_task_got_worker = std::is_same_v<decltype(e), Worker&>; },
                 [](auto&) {});
        });
      } else if (i == 1) {
        x.join([&](auto& e) { plain_got_worker = std::is_same_v<decltype(e), Worker&>; },
               [](auto&) {});
      }
    });
  });
  EXPECT_TRUE(as_task_got_worker);
  EXPECT_FALSE(plain_got_worker);
}

}  // namespace
}  // namespace beat::sched
