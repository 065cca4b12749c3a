// kernels/kernel.hpp: TaskContext on a real scheduler. A kernel's generic
// callables may run with TaskContext::Inline deep in a fork tree, where
// every accessor must still answer for the task (client, arena,
// cancellation); callables that take TaskContext& keep getting one; the
// built-in fork-join kernels return their known answers either way.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "daemon/scheduler/scheduler.hpp"
#include "kernels/kernel.hpp"
#include "kernels/kernel_registry.hpp"
#include "kernels/workloads/fork_join.hpp"
#include "tests/support/scheduler_setup.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

static_assert(workloads::ForkJoinExecutor<TaskContext::Inline<false>>);
static_assert(workloads::ForkJoinExecutor<TaskContext::Inline<true>>);
// A callable written for TaskContext& cannot take an inline clone: it
// always goes through the scheduler's frames.
static_assert(!std::is_convertible_v<TaskContext::Inline<false>&, TaskContext&>);

constexpr std::uint32_t kClient = 42;

Topology machine() { return test::machine_topology(); }

// A binary tree of joins `depth` deep whose leaves check the accessors of
// whatever context they got and count themselves; `contexts` counts the
// leaves that saw an inline clone.
struct Probe {
  std::byte* arena_data;
  std::uint64_t arena_size;
  std::atomic<std::uint64_t> leaves{0};
  std::atomic<std::uint64_t> wrong{0};
  std::atomic<std::uint64_t> inline_leaves{0};

  template <class Ctx>
  void tree(Ctx& c, unsigned depth) {
    if (depth == 0) {
      const ArenaView whole = c.arena();
      const ArenaView part = c.arena_range(8, 8);
      if (c.client_id() != kClient || whole.data != arena_data || whole.size != arena_size ||
          part.data != arena_data + 8 || c.arena_range(arena_size, 1).data != nullptr ||
          c.cancelled() || c.worker_index() > 1)
        wrong.fetch_add(1, std::memory_order_relaxed);
      if constexpr (!std::is_same_v<Ctx, TaskContext>)
        inline_leaves.fetch_add(1, std::memory_order_relaxed);
      leaves.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    c.join([&](auto& x) { tree(x, depth - 1); }, [&](auto& x) { tree(x, depth - 1); });
  }
};

TEST(TaskContext, InlineClonesAnswerForTheTaskDeepInAForkTree) {
  test::ScopedWatchdog watchdog("TaskContext.InlineClones", 60);
  const Topology topo = machine();
  sched::Scheduler s(test::unpinned_options(2), topo);
  ASSERT_TRUE(s.start());
  std::array<std::byte, 64> arena{};
  const std::atomic<bool> stop{false};
  const std::atomic<bool> closing{false};
  constexpr unsigned kDepth = 16;  // 4 below the depth a job starts recording at
  Probe probe{arena.data(), arena.size()};
  for (int run = 0; run < 10; ++run) {
    s.run([&](sched::Worker& w) {
      TaskContext ctx(&w, kClient, ArenaView{arena.data(), arena.size()}, &stop, &closing);
      probe.tree(ctx, kDepth);
    });
  }
  s.stop();
  EXPECT_EQ(probe.leaves.load(), 10u << kDepth);
  EXPECT_EQ(probe.wrong.load(), 0u);
  EXPECT_GT(probe.inline_leaves.load(), 0u);
  EXPECT_GT(s.stats().inline_runs, 0u);
}

TEST(TaskContext, CallablesTakingTaskContextAlwaysGetOne) {
  test::ScopedWatchdog watchdog("TaskContext.Concrete", 60);
  const Topology topo = machine();
  sched::Scheduler s(test::unpinned_options(2), topo);
  ASSERT_TRUE(s.start());
  struct Concrete {
    static std::uint64_t tree(TaskContext& c, unsigned depth) {
      if (depth == 0) return c.client_id() == kClient ? 1 : 0;
      std::uint64_t a = 0, b = 0;
      c.join([&](TaskContext& x) { a = tree(x, depth - 1); },
             [&](TaskContext& x) { b = tree(x, depth - 1); });
      return a + b;
    }
  };
  std::uint64_t leaves = 0;
  s.run([&](sched::Worker& w) {
    TaskContext ctx(&w, kClient, ArenaView{});
    leaves = Concrete::tree(ctx, 16);
  });
  s.stop();
  EXPECT_EQ(leaves, 1u << 16);
  EXPECT_EQ(s.stats().inline_runs, 0u);
  EXPECT_EQ(s.stats().spawns, (1u << 16) - 1) << "every join went through a frame";
}

TEST(TaskContext, ForkJoinKernelsGiveTheirKnownAnswersThroughTheScheduler) {
  test::ScopedWatchdog watchdog("TaskContext.Kernels", 120);
  const Topology topo = machine();
  KernelRegistry registry;
  register_builtin_kernels(registry);
  struct Case {
    const char* kernel;
    std::uint64_t arg;
    std::uint64_t expected;
  };
  const Case cases[] = {{"fib", 27, 196'418},
                        {"nqueens", 9, 352},
                        {"skynet", 100'000, 4'999'950'000},
                        {"uts", 1, 4'130'071}};
  for (const bool inline_forks : {true, false}) {
    sched::SchedulerOptions o = test::unpinned_options(2);
    o.inline_forks = inline_forks;
    sched::Scheduler s(o, topo);
    ASSERT_TRUE(s.start());
    for (const Case& k : cases) {
      if (test::kUnderThreadSanitizer && std::string_view(k.kernel) == "uts") continue;
      const auto id = registry.find(k.kernel);
      ASSERT_TRUE(id) << k.kernel;
      KernelResult r;
      s.run([&](sched::Worker& w) {
        TaskContext ctx(&w, kClient, ArenaView{});
        std::array<std::uint64_t, kInlineArgs> args{k.arg};
        r = registry.at(*id).fn(ctx, KernelArgs(args), ArenaView{});
      });
      EXPECT_EQ(r.status, TaskStatus::kOk) << k.kernel << " inline_forks=" << inline_forks;
      EXPECT_EQ(r.value, k.expected) << k.kernel << " inline_forks=" << inline_forks;
    }
    s.stop();
    if (inline_forks)
      EXPECT_GT(s.stats().inline_runs, 0u);
    else
      EXPECT_EQ(s.stats().inline_runs, 0u);
  }
}

}  // namespace
}  // namespace beat
