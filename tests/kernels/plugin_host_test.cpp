// Unit tests of the plugin ABI's host side (kernels/plugin_host.cpp): how a
// plugin kernel's beat_kernel_result maps to a completion, the services
// behind ctx->host, and fork-join through beat_join / beat_parallel_for on a
// real 2-worker scheduler: every index exactly once, chunks never longer
// than the grain, no overflow at the top of the u64 range.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "kernels/beat_kernel.h"
#include "kernels/kernel_registry.hpp"
#include "tests/support/scheduler_setup.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

constexpr std::uint32_t kClient = 9;

// A plugin kernel returning args[0] as its status, args[1] as detail and
// args[2] as value: every mapping through one function.
beat_kernel_result echo_status(beat_kernel_context*, const std::uint64_t* args, beat_arena_view) {
  return beat_kernel_result{static_cast<std::uint32_t>(args[0]),
                            static_cast<std::uint32_t>(args[1]), args[2]};
}

KernelResult call(beat_kernel_fn fn, std::array<std::uint64_t, kInlineArgs> args,
                  ArenaView arena = {}, ArenaView data = {},
                  const std::atomic<bool>* stop = nullptr, void* kernel_data = nullptr) {
  TaskContext ctx(nullptr, kClient, arena, stop);
  return call_plugin_kernel(fn, kernel_data, ctx, KernelArgs(args), data);
}

TEST(PluginHost, StatusesMapToCompletionsAndUnknownOnesToKernelError) {
  struct Case {
    std::uint32_t status;
    TaskStatus expected;
    std::uint32_t detail;
    std::uint64_t value;
  };
  const Case cases[] = {
      {BEAT_KERNEL_STATUS_OK, TaskStatus::kOk, 0, 77},
      {BEAT_KERNEL_STATUS_ERROR, TaskStatus::kKernelError, 5, 0},
      {BEAT_KERNEL_STATUS_INVALID_RANGE, TaskStatus::kInvalidRange, BEAT_KERNEL_DATA_RANGE, 0},
      {BEAT_KERNEL_STATUS_INVALID_ARGS, TaskStatus::kInvalidArgs, 2, 0},
      {BEAT_KERNEL_STATUS_CANCELLED, TaskStatus::kDropped, 0, 0},
      // Statuses a kernel may not return: beatd's own, and nonsense.
      // Indexes naming no argument or range are the plugin's bug.
      {BEAT_KERNEL_STATUS_INVALID_ARGS, TaskStatus::kKernelError, BEAT_KERNEL_DETAIL_BAD_STATUS, 0},
      {BEAT_KERNEL_STATUS_INVALID_RANGE, TaskStatus::kKernelError, BEAT_KERNEL_DETAIL_BAD_STATUS,
       0},
      {2, TaskStatus::kKernelError, BEAT_KERNEL_DETAIL_BAD_STATUS, 0},
      {4, TaskStatus::kKernelError, BEAT_KERNEL_DETAIL_BAD_STATUS, 0},
      {99, TaskStatus::kKernelError, BEAT_KERNEL_DETAIL_BAD_STATUS, 0},
  };
  for (const Case& c : cases) {
    // What the kernel returns as detail: the expected one, except that the
    // two out-of-range index cases return index 3 (args) and 4 (ranges).
    std::uint32_t detail = c.status == BEAT_KERNEL_STATUS_OK ? 0 : c.detail;
    if (c.expected == TaskStatus::kKernelError && c.status == BEAT_KERNEL_STATUS_INVALID_ARGS)
      detail = BEAT_KERNEL_INLINE_ARGS;
    if (c.expected == TaskStatus::kKernelError && c.status == BEAT_KERNEL_STATUS_INVALID_RANGE)
      detail = BEAT_KERNEL_DATA_RANGE + 1;
    const KernelResult r = call(echo_status, {c.status, detail, c.value});
    EXPECT_EQ(r.status, c.expected) << c.status;
    EXPECT_EQ(r.detail, c.detail) << c.status;
    EXPECT_EQ(r.value, c.value) << c.status;
  }
  // Ok carries the value; an error's value never reaches the completion.
  EXPECT_EQ(call(echo_status, {BEAT_KERNEL_STATUS_ERROR, 3, 123}).value, 0u);
}

TEST(PluginHost, ServicesAnswerForTheTask) {
  std::array<std::byte, 256> arena{};
  static std::byte* arena_base;
  arena_base = arena.data();
  // args[0]: which service to probe.
  constexpr auto probe = [](beat_kernel_context* ctx, const std::uint64_t* args,
                            beat_arena_view data) -> beat_kernel_result {
    switch (args[0]) {
      case 0: {  // a range inside, the whole arena, and three outside
        const beat_arena_view in = beat_arena_range(ctx, 16, 32);
        const beat_arena_view all = beat_arena_range(ctx, 0, 256);
        const beat_arena_view past = beat_arena_range(ctx, 250, 7);
        const beat_arena_view wrap = beat_arena_range(ctx, 8, ~std::uint64_t{0});
        const beat_arena_view far = beat_arena_range(ctx, 257, 0);
        const bool ok = in.data == arena_base + 16 && in.size == 32 && all.data == arena_base &&
                        all.size == 256 && past.data == nullptr && past.size == 0 &&
                        wrap.data == nullptr && far.data == nullptr;
        return ok ? beat_kernel_ok(1) : beat_kernel_error(1);
      }
      case 1: return beat_kernel_ok(static_cast<std::uint64_t>(beat_cancelled(ctx)));
      case 2: return beat_kernel_ok(ctx->host->client_id(ctx));
      case 3: return beat_kernel_ok(beat_worker_index(ctx));
      case 4:  // the data view and the arguments arrive as given
        return beat_kernel_ok(data.size * 1000 + args[1] * 10 + args[2] +
                              (data.data == arena_base + 64 ? 1'000'000 : 0));
      case 6: return beat_kernel_ok(*static_cast<const std::uint64_t*>(ctx->kernel_data));
      default:
        return beat_kernel_ok(ctx->host->struct_size == sizeof(beat_kernel_host) &&
                                      ctx->host->abi_version == BEAT_KERNEL_ABI_VERSION
                                  ? 1
                                  : 0);
    }
  };
  const ArenaView whole{arena.data(), arena.size()};
  EXPECT_EQ(call(probe, {0, 0, 0}, whole).value, 1u);
  std::atomic<bool> stop{false};
  EXPECT_EQ(call(probe, {1, 0, 0}, whole, {}, &stop).value, 0u);
  stop.store(true);
  EXPECT_EQ(call(probe, {1, 0, 0}, whole, {}, &stop).value, 1u);
  EXPECT_EQ(call(probe, {2, 0, 0}, whole).value, kClient);
  EXPECT_EQ(call(probe, {3, 0, 0}, whole).value, 0u);
  EXPECT_EQ(call(probe, {4, 3, 4}, whole, ArenaView{arena.data() + 64, 5}).value, 1'005'034u);
  EXPECT_EQ(call(probe, {5, 0, 0}, whole).value, 1u);
  std::uint64_t kernel_data = 0xDA7A;
  EXPECT_EQ(call(probe, {6, 0, 0}, whole, {}, nullptr, &kernel_data).value, 0xDA7Au);
}

// Records every chunk beat_parallel_for hands out.
struct Chunks {
  std::mutex mutex;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;  // GUARDED_BY(mutex)
  std::uint64_t wrong_data = 0;                               // GUARDED_BY(mutex)
  std::atomic<std::uint64_t> joins{0};
};

struct ForArgs {
  std::uint64_t begin, end, grain;
};

Chunks* g_chunks;
ForArgs g_for;

int g_kernel_data;  // its address is the kernel's data, in every branch

void record(beat_kernel_context* ctx, std::uint64_t lo, std::uint64_t hi, void* arg) {
  auto& c = *static_cast<Chunks*>(arg);
  std::lock_guard lock(c.mutex);
  c.seen.emplace_back(lo, hi);
  if (ctx->kernel_data != &g_kernel_data) ++c.wrong_data;
}

void left(beat_kernel_context* ctx, void* arg) {
  static_cast<Chunks*>(arg)->joins.fetch_add(1, std::memory_order_relaxed);
  beat_parallel_for(ctx, g_for.begin, g_for.end, g_for.grain, record, arg);
}

void right(beat_kernel_context* ctx, void*) {
  // A nested join inside a branch: both sides must run.
  beat_join(
      ctx,
      [](beat_kernel_context*, void* a) {
        static_cast<Chunks*>(a)->joins.fetch_add(1, std::memory_order_relaxed);
      },
      g_chunks,
      [](beat_kernel_context*, void* a) {
        static_cast<Chunks*>(a)->joins.fetch_add(1, std::memory_order_relaxed);
      },
      g_chunks);
}

beat_kernel_result fork_kernel(beat_kernel_context* ctx, const std::uint64_t*, beat_arena_view) {
  beat_join(ctx, left, g_chunks, right, nullptr);
  return beat_kernel_ok(0);
}

TEST(PluginHost, ParallelForCoversEachIndexOnceInChunksOfAtMostGrain) {
  test::ScopedWatchdog watchdog("PluginHost.ParallelFor", 60);
  const Topology topo = test::machine_topology();
  sched::Scheduler s(test::unpinned_options(2, 100, 5), topo);
  ASSERT_TRUE(s.start());
  constexpr std::uint64_t kTop = std::numeric_limits<std::uint64_t>::max();
  const ForArgs cases[] = {{0, 10'000, 0},     {0, 10'000, 1},       {3, 10'000, 7},
                           {0, 100'000, 1000}, {5, 17, 1'000'000},   {0, 0, 4},
                           {9, 3, 4},          {kTop - 10, kTop, 3}, {kTop - 100, kTop, kTop},
                           {0, 1, 1}};
  for (const ForArgs& f : cases) {
    Chunks chunks;
    g_chunks = &chunks;
    g_for = f;
    s.run([&](sched::Worker& w) {
      TaskContext ctx(&w, kClient, ArenaView{});
      const std::array<std::uint64_t, kInlineArgs> args{};
      EXPECT_EQ(call_plugin_kernel(fork_kernel, &g_kernel_data, ctx, KernelArgs(args), ArenaView{})
                    .status,
                TaskStatus::kOk);
    });
    EXPECT_EQ(chunks.joins.load(), 3u);
    EXPECT_EQ(chunks.wrong_data, 0u);
    std::sort(chunks.seen.begin(), chunks.seen.end());
    const std::uint64_t grain = f.grain == 0 ? 1 : f.grain;
    std::uint64_t next = f.begin;
    for (const auto& [lo, hi] : chunks.seen) {
      EXPECT_EQ(lo, next) << "chunk starts where the previous ended";
      EXPECT_LT(lo, hi);
      EXPECT_LE(hi - lo, grain);
      next = hi;
    }
    if (f.end > f.begin) {
      EXPECT_EQ(next, f.end) << f.begin << ".." << f.end << " grain " << f.grain;
      const std::uint64_t n = f.end - f.begin;
      EXPECT_EQ(chunks.seen.size(), n / grain + (n % grain != 0 ? 1 : 0));
    } else {
      EXPECT_TRUE(chunks.seen.empty());
    }
  }
  s.stop();
}

}  // namespace
}  // namespace beat
