// Unit tests of histogram_u8 and histogram_u32 (kernels/histogram.cpp),
// called through the registry as a worker calls them, serially and on a
// real 2-worker scheduler (with and without inline forks), against plain
// counting loops written here. Counts are integers: every comparison is
// exact, and a stolen leaf that lost or doubled its merge changes one.
#include "kernels/histogram.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string_view>
#include <vector>

#include "daemon/scheduler/scheduler.hpp"
#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"
#include "tests/support/scheduler_setup.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

constexpr std::uint32_t kClient = 7;
constexpr std::uint64_t kSentinel = 0xA5A5'A5A5'A5A5'A5A5;
constexpr std::uint64_t kWord = sizeof(std::uint64_t);

// Sizes crossing the 8-byte word loop, the 4-way unroll, and the leaf
// boundary (one leaf is counted serially, two or more in parallel).
const std::vector<std::uint64_t>& sizes() {
  static const std::vector<std::uint64_t> v{
      0, 1, 7, 64, 1000, kHistogramLeafElements, kHistogramLeafElements + 1, 1'000'000};
  return v;
}

// A client arena of `bytes` rounded up to whole u64 words, every word
// kSentinel: the output counters at offset 0, the data right after them (or
// wherever a test puts it).
struct Arena {
  explicit Arena(std::uint64_t bytes) : words((bytes + kWord - 1) / kWord, kSentinel) {}
  std::byte* base() { return reinterpret_cast<std::byte*>(words.data()); }
  ArenaView view() { return {base(), words.size() * kWord}; }
  ArenaView range(std::uint64_t offset, std::uint64_t length) { return {base() + offset, length}; }
  std::vector<std::uint64_t> words;
};

std::vector<std::uint64_t> reference_u8(const std::uint8_t* p, std::uint64_t n) {
  std::vector<std::uint64_t> counts(kHistogramU8Bins, 0);
  for (std::uint64_t i = 0; i < n; ++i) ++counts[p[i]];
  return counts;
}

struct U32Reference {
  std::vector<std::uint64_t> counts;
  std::uint64_t outside = 0;
};
U32Reference reference_u32(const std::uint32_t* v, std::uint64_t n, std::uint64_t bins,
                           unsigned shift) {
  U32Reference r{std::vector<std::uint64_t>(bins, 0), 0};
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t b = v[i] >> shift;
    if (b < bins)
      ++r.counts[b];
    else
      ++r.outside;
  }
  return r;
}

enum class Pattern { kRandom, kOneValue, kSmall };
const char* name(Pattern p) {
  switch (p) {
    case Pattern::kRandom: return "random";
    case Pattern::kOneValue: return "one value";
    case Pattern::kSmall: return "small";
  }
  return "?";
}
constexpr Pattern kPatterns[] = {Pattern::kRandom, Pattern::kOneValue, Pattern::kSmall};

// Fills n u32s (or 4n bytes) at p: uniform, all one value (each increment
// of a single counter depends on the last: the store-forwarding case), or
// small values (below 5000: most land in low bins).
void fill(std::byte* p, std::uint64_t words32, Pattern pattern, std::uint64_t seed) {
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  for (std::uint64_t i = 0; i < words32; ++i) {
    std::uint32_t v = 0;
    switch (pattern) {
      case Pattern::kRandom: v = rng(); break;
      case Pattern::kOneValue: v = 0x9E37'79B9; break;
      case Pattern::kSmall: v = rng() % 5000; break;
    }
    std::memcpy(p + i * sizeof v, &v, sizeof v);
  }
}

enum class Mode { kSerial, kTwoWorkers, kTwoWorkersNoInline };

class Histogram : public ::testing::TestWithParam<Mode> {
 protected:
  Histogram() : watchdog_("Histogram", 60) { register_histogram_kernels(registry_); }

  void SetUp() override {
    if (GetParam() == Mode::kSerial) return;
    sched::SchedulerOptions o = test::unpinned_options(2);
    o.inline_forks = GetParam() == Mode::kTwoWorkers;
    topology_ = std::make_unique<Topology>(test::machine_topology());
    scheduler_ = std::make_unique<sched::Scheduler>(o, *topology_);
    ASSERT_TRUE(scheduler_->start());
  }
  void TearDown() override {
    if (scheduler_) scheduler_->stop();
  }

  KernelResult run(std::string_view kernel, std::array<std::uint64_t, kInlineArgs> args,
                   ArenaView arena, ArenaView data, const std::atomic<bool>* closing = nullptr) {
    const auto id = registry_.find(kernel);
    EXPECT_TRUE(id.has_value()) << kernel;
    if (!id) return KernelResult::error(0xDEAD);
    const KernelFn fn = registry_.at(*id).fn;
    if (!scheduler_) {
      TaskContext ctx(nullptr, kClient, arena, nullptr, closing);
      return fn(ctx, KernelArgs(args), data);
    }
    KernelResult r;
    scheduler_->run([&](sched::Worker& w) {
      TaskContext ctx(&w, kClient, arena, nullptr, closing);
      r = fn(ctx, KernelArgs(args), data);
    });
    return r;
  }

  // The counters at the arena's start.
  static std::vector<std::uint64_t> counters(const Arena& a, std::uint64_t bins) {
    return {a.words.begin(), a.words.begin() + static_cast<std::ptrdiff_t>(bins)};
  }

  test::ScopedWatchdog watchdog_;
  KernelRegistry registry_;
  std::unique_ptr<Topology> topology_;
  std::unique_ptr<sched::Scheduler> scheduler_;
};

INSTANTIATE_TEST_SUITE_P(Modes, Histogram,
                         ::testing::Values(Mode::kSerial, Mode::kTwoWorkers,
                                           Mode::kTwoWorkersNoInline),
                         [](const auto& info) {
                           switch (info.param) {
                             case Mode::kSerial: return "Serial";
                             case Mode::kTwoWorkers: return "TwoWorkers";
                             case Mode::kTwoWorkersNoInline: return "TwoWorkersNoInline";
                           }
                           return "Unknown";
                         });

TEST_P(Histogram, U8CountsEveryByteOverwritingTheOutput) {
  constexpr std::uint64_t kOut = kHistogramU8Bins * kWord;
  for (const std::uint64_t n : sizes()) {
    for (const Pattern pattern : kPatterns) {
      // Data at an odd offset: byte data has no alignment to keep.
      const std::uint64_t data_offset = kOut + 3;
      Arena arena(data_offset + n + 8);
      fill(arena.base() + data_offset, (n + 3) / 4, pattern, n);
      const ArenaView data = arena.range(data_offset, n);
      const auto* bytes = reinterpret_cast<const std::uint8_t*>(data.data);
      const std::vector<std::uint64_t> expected = reference_u8(bytes, n);
      const KernelResult r = run("histogram_u8", {0, 0, 0}, arena.view(), data);
      ASSERT_EQ(r.status, TaskStatus::kOk) << n << " " << name(pattern);
      EXPECT_EQ(r.value, n);
      EXPECT_EQ(counters(arena, kHistogramU8Bins), expected) << n << " " << name(pattern);
    }
  }
}

TEST_P(Histogram, U8RepeatedRunsGiveTheSameCountsHoweverLeavesWereStolen) {
  constexpr std::uint64_t n = 1'000'000;
  Arena arena(kHistogramU8Bins * kWord + n);
  fill(arena.base() + kHistogramU8Bins * kWord, n / 4, Pattern::kRandom, 5);
  const ArenaView data = arena.range(kHistogramU8Bins * kWord, n);
  const std::vector<std::uint64_t> expected =
      reference_u8(reinterpret_cast<const std::uint8_t*>(data.data), n);
  for (int rep = 0; rep < 10; ++rep) {
    const KernelResult r = run("histogram_u8", {0, 0, 0}, arena.view(), data);
    ASSERT_EQ(r.status, TaskStatus::kOk);
    EXPECT_EQ(r.value, n);
    ASSERT_EQ(counters(arena, kHistogramU8Bins), expected) << "run " << rep;
  }
  if (scheduler_) {
    EXPECT_GT(scheduler_->stats().spawns, 0u) << "the leaves never forked";
  }
}

struct U32Case {
  std::uint64_t bins;
  unsigned shift;
};
// Private sub-histograms (bins <= kHistogramMaxPrivateBins) and the direct
// serial path (above it), each with and without values outside the bins.
constexpr U32Case kU32Cases[] = {
    {1, 0},                              // only the value 0 counts
    {7, 31},                             // v >> 31 is 0 or 1: nothing outside
    {200, 24},                           // v >> 24 up to 255: 200..255 outside
    {kHistogramMaxPrivateBins, 22},      // the largest private table, all inside
    {1000, 2},                           // small values: 0..3999 inside, the rest out
    {kHistogramMaxPrivateBins + 1, 21},  // the smallest direct one, about half inside
    {kHistogramMaxBins, 16},             // the largest, all inside
    {kHistogramMaxBins, 0},              // the largest, random values mostly outside
};

TEST_P(Histogram, U32CountsBinsAndOutsideExactly) {
  for (const std::uint64_t n : sizes()) {
    for (const U32Case c : kU32Cases) {
      for (const Pattern pattern : kPatterns) {
        // The big size on one case per path (200 bins: private, with all
        // patterns; the largest private table and the largest direct one:
        // random): the rest would add time (seconds under TSan), not
        // coverage.
        if (n == 1'000'000 && c.bins != 200 &&
            (pattern != Pattern::kRandom ||
             (c.bins != kHistogramMaxPrivateBins && c.bins != kHistogramMaxBins)))
          continue;
        const std::uint64_t data_offset = c.bins * kWord;
        Arena arena(data_offset + 4 * n);
        fill(arena.base() + data_offset, n, pattern, n + c.bins);
        const ArenaView data = arena.range(data_offset, 4 * n);
        const U32Reference expected =
            reference_u32(reinterpret_cast<const std::uint32_t*>(data.data), n, c.bins, c.shift);
        const KernelResult r = run("histogram_u32", {0, c.bins, c.shift}, arena.view(), data);
        ASSERT_EQ(r.status, TaskStatus::kOk);
        EXPECT_EQ(r.value, expected.outside)
            << n << " values, bins " << c.bins << " shift " << c.shift << " " << name(pattern);
        EXPECT_EQ(counters(arena, c.bins), expected.counts)
            << n << " values, bins " << c.bins << " shift " << c.shift << " " << name(pattern);
      }
    }
  }
}

TEST_P(Histogram, U32RepeatedRunsGiveTheSameCountsHoweverLeavesWereStolen) {
  constexpr std::uint64_t n = 1'000'000;
  constexpr U32Case c{200, 24};  // 200..255 outside
  const std::uint64_t data_offset = c.bins * kWord;
  Arena arena(data_offset + 4 * n);
  fill(arena.base() + data_offset, n, Pattern::kRandom, 11);
  const ArenaView data = arena.range(data_offset, 4 * n);
  const U32Reference expected =
      reference_u32(reinterpret_cast<const std::uint32_t*>(data.data), n, c.bins, c.shift);
  ASSERT_GT(expected.outside, 0u);
  for (int rep = 0; rep < 10; ++rep) {
    const KernelResult r = run("histogram_u32", {0, c.bins, c.shift}, arena.view(), data);
    ASSERT_EQ(r.status, TaskStatus::kOk);
    EXPECT_EQ(r.value, expected.outside) << "run " << rep;
    ASSERT_EQ(counters(arena, c.bins), expected.counts) << "run " << rep;
  }
}

TEST_P(Histogram, CancelledTaskStopsAtTheNextLeaf) {
  constexpr std::uint64_t n = 4 * kHistogramLeafElements;
  const std::atomic<bool> closing{true};
  Arena arena(kHistogramMaxBins * kWord + 4 * n);
  const ArenaView data = arena.range(kHistogramMaxBins * kWord, 4 * n);
  fill(data.data, n, Pattern::kRandom, 3);
  EXPECT_EQ(run("histogram_u8", {0, 0, 0}, arena.view(), data, &closing).status,
            TaskStatus::kDropped);
  for (const std::uint64_t bins : {std::uint64_t{256}, kHistogramMaxBins})
    EXPECT_EQ(run("histogram_u32", {0, bins, 0}, arena.view(), data, &closing).status,
              TaskStatus::kDropped)
        << bins;
}

// Expects `r` to be the failure (status, detail) and the arena unwritten.
void expect_failure(const KernelResult& r, TaskStatus status, std::uint32_t detail,
                    const Arena& arena, const std::vector<std::uint64_t>& before,
                    const char* what) {
  EXPECT_EQ(r.status, status) << what;
  EXPECT_EQ(r.detail, detail) << what;
  EXPECT_EQ(r.value, 0u) << what;
  EXPECT_EQ(arena.words, before) << what << ": the arena was written";
}

TEST_P(Histogram, U8BadOutputIsInvalidRangeZero) {
  constexpr std::uint64_t kOut = kHistogramU8Bins * kWord;
  constexpr std::uint64_t kData = 100;
  // Counters fit at [0, kOut), the data at [kOut, kOut + 100), counters
  // again from kOut + 104 with 64 bytes to spare.
  Arena arena(2 * kOut + 104 + 64);
  const std::uint64_t size = arena.view().size;
  const ArenaView data = arena.range(kOut, kData);
  const std::vector<std::uint64_t> before = arena.words;
  struct Case {
    std::uint64_t offset;
    const char* what;
  };
  const Case cases[] = {
      {size - kOut + kWord, "one counter past the arena's end"},
      {size, "at the arena's end"},
      {~std::uint64_t{0} - 7, "offset near 2^64 (wraps)"},
      {kOut + 108, "misaligned"},
      {kWord, "overlapping the data's first bytes"},
      {kOut + 96, "overlapping the data's last bytes"},
      {kOut, "exactly at the data"},
  };
  for (const Case& c : cases)
    expect_failure(run("histogram_u8", {c.offset, 0, 0}, arena.view(), data),
                   TaskStatus::kInvalidRange, 0, arena, before, c.what);
  // Next to the data on either side is fine, and so are the arena's last
  // 256 counters.
  for (const std::uint64_t offset : {std::uint64_t{0}, kOut + 104, size - kOut}) {
    const KernelResult r = run("histogram_u8", {offset, 0, 0}, arena.view(), data);
    EXPECT_EQ(r.status, TaskStatus::kOk) << offset;
    EXPECT_EQ(r.value, kData);
  }
}

TEST_P(Histogram, U32BadArgumentsAndRangesFailWithTheirDetail) {
  constexpr std::uint64_t kBins = 16;
  constexpr std::uint64_t kOut = kBins * kWord;
  constexpr std::uint64_t kValues = 25;
  // Counters fit at [0, 128), the data at [128, 228), counters again from
  // 232 with 16 bytes to spare.
  Arena arena(2 * kOut + 4 * kValues + 20);
  const std::uint64_t size = arena.view().size;
  const ArenaView data = arena.range(kOut, 4 * kValues);
  const std::vector<std::uint64_t> before = arena.words;
  struct Case {
    std::array<std::uint64_t, kInlineArgs> args;
    ArenaView data;
    TaskStatus status;
    std::uint32_t detail;
    const char* what;
  };
  const Case cases[] = {
      {{0, 0, 0}, data, TaskStatus::kInvalidArgs, 1, "zero bins"},
      {{0, kHistogramMaxBins + 1, 0}, data, TaskStatus::kInvalidArgs, 1, "65537 bins"},
      {{0, ~std::uint64_t{0}, 0}, data, TaskStatus::kInvalidArgs, 1, "2^64-1 bins"},
      {{0, std::uint64_t{1} << 32, 0}, data, TaskStatus::kInvalidArgs, 1, "2^32 bins"},
      {{0, kBins, kHistogramMaxShift + 1}, data, TaskStatus::kInvalidArgs, 2, "shift 32"},
      {{0, kBins, ~std::uint64_t{0}}, data, TaskStatus::kInvalidArgs, 2, "shift 2^64-1"},
      {{0, kBins, 0},
       arena.range(kOut + 2, 4 * kValues),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "misaligned data"},
      {{0, kBins, 0},
       arena.range(kOut, 4 * kValues - 2),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "partial element"},
      {{0, kBins, 0},
       arena.range(kOut, 1),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "one byte"},
      {{size - kOut + kWord, kBins, 0},
       data,
       TaskStatus::kInvalidRange,
       0,
       "one counter past the arena's end"},
      {{0, kHistogramMaxBins, 0},
       data,
       TaskStatus::kInvalidRange,
       0,
       "65536 counters do not fit the arena"},
      {{~std::uint64_t{0} - 7, kBins, 0}, data, TaskStatus::kInvalidRange, 0, "offset wraps"},
      {{kOut + 4 * kValues + 8, kBins, 0}, data, TaskStatus::kInvalidRange, 0, "misaligned output"},
      {{8, kBins, 0}, data, TaskStatus::kInvalidRange, 0, "overlapping the data's start"},
      {{kOut + 4 * kValues - 8, kBins, 0},
       data,
       TaskStatus::kInvalidRange,
       0,
       "overlapping the data's end"},
      {{kOut, kBins, 0}, data, TaskStatus::kInvalidRange, 0, "exactly at the data"},
      // Checked in the order args[1], args[2], data, args[0].
      {{4, 0, 99}, arena.range(kOut + 2, 3), TaskStatus::kInvalidArgs, 1, "all bad"},
      {{4, kBins, 99}, arena.range(kOut + 2, 3), TaskStatus::kInvalidArgs, 2, "shift and ranges"},
      {{4, kBins, 0},
       arena.range(kOut + 2, 3),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "both ranges"},
  };
  for (const Case& c : cases)
    expect_failure(run("histogram_u32", c.args, arena.view(), c.data), c.status, c.detail, arena,
                   before, c.what);
  // Next to the data on either side is fine (228 rounded up to 232 after
  // it), and so are the arena's last counters.
  for (const std::uint64_t offset : {std::uint64_t{0}, kOut + 4 * kValues + 4, size - kOut}) {
    const KernelResult r = run("histogram_u32", {offset, kBins, 0}, arena.view(), data);
    EXPECT_EQ(r.status, TaskStatus::kOk) << offset;
  }
}

}  // namespace
}  // namespace beat
