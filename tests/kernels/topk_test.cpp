// Unit tests of topk_fingerprints (kernels/topk.cpp), called through the
// registry as a worker calls it, on both similarity paths (SIMD by
// Highway's dispatch, and scalar), against a brute force over
// batching::distance written here. Distances are integers: every
// comparison is exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon/batching/similarity.hpp"
#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"
#include "shared/fingerprint.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

constexpr std::uint64_t kNoEntry = ~std::uint64_t{0};
constexpr std::uint64_t kWord = sizeof(std::uint64_t);
constexpr std::uint64_t kMaxK = 1024;
constexpr std::uint64_t kSentinel = 0x5A5A'5A5A'5A5A'5A5A;
// One row more than the kernel numbers (rows are 32 bits in an entry).
constexpr std::uint64_t kTooManyRows = std::uint64_t{1} << 32;

// The reference: every row's key (distance << 32 | row), fully sorted, the
// first k kept, UINT64_MAX after the rows.
std::vector<std::uint64_t> brute_force(std::uint64_t query, const std::uint64_t* rows,
                                       std::uint64_t n, std::uint64_t k) {
  const FingerprintFields q = unpack_fingerprint(query);
  std::vector<std::uint64_t> keys(n);
  for (std::uint64_t i = 0; i < n; ++i)
    keys[i] = std::uint64_t{batching::distance(q, unpack_fingerprint(rows[i]))} << 32 | i;
  std::sort(keys.begin(), keys.end());
  keys.resize(k, kNoEntry);
  return keys;
}

// A fingerprint near `query` in a random way: mostly the same kernel (a few
// others give kFarDistance), size class and region nearby or far, the
// args hash equal or not; so distances spread over their whole range and
// repeat (ties).
std::uint64_t near(std::uint64_t query, std::mt19937_64& rng) {
  FingerprintFields f = unpack_fingerprint(query);
  const std::uint64_t r = rng();
  if (r % 8 == 0) f.kernel = static_cast<std::uint32_t>(rng() & kFingerprintKernelMask);
  f.size_class = static_cast<std::uint32_t>(rng() % (kFingerprintSizeMask + 1));
  f.region = r % 4 == 1 ? static_cast<std::uint32_t>(rng() & kFingerprintRegionMask)
                        : (f.region + static_cast<std::uint32_t>(rng() % 600)) &
                              static_cast<std::uint32_t>(kFingerprintRegionMask);
  if (r % 3 == 0) f.args = static_cast<std::uint32_t>(rng() & kFingerprintArgsMask);
  return pack_fingerprint(f);
}

// A client arena of u64 words: the table at word 0, the output after it.
struct Arena {
  explicit Arena(std::uint64_t words) : words(words, kSentinel) {}
  std::byte* base() { return reinterpret_cast<std::byte*>(words.data()); }
  ArenaView view() { return {base(), words.size() * kWord}; }
  ArenaView range(std::uint64_t offset, std::uint64_t length) { return {base() + offset, length}; }
  std::vector<std::uint64_t> words;
};

class TopkFingerprints : public ::testing::TestWithParam<batching::SimdPath> {
 protected:
  TopkFingerprints() { register_topk_kernels(registry_); }
  void SetUp() override { batching::set_simd_path(GetParam()); }
  void TearDown() override { batching::set_simd_path(batching::SimdPath::kAuto); }

  KernelResult run(std::array<std::uint64_t, kInlineArgs> args, ArenaView arena, ArenaView data,
                   const std::atomic<bool>* closing = nullptr) {
    const auto id = registry_.find("topk_fingerprints");
    EXPECT_TRUE(id.has_value());
    if (!id) return KernelResult::error(0xDEAD);
    TaskContext ctx(nullptr, 1, arena, nullptr, closing);
    return registry_.at(*id).fn(ctx, KernelArgs(args), data);
  }

  // Runs the kernel on `table` (copied into a fresh arena, the output after
  // it) and checks result and output against the brute force for every k.
  void expect_matches_brute_force(std::uint64_t query, const std::vector<std::uint64_t>& table,
                                  const char* what) {
    const std::vector<std::uint64_t> sorted =
        brute_force(query, table.data(), table.size(), table.size());
    for (const std::uint64_t k : {std::uint64_t{1}, std::uint64_t{5}, kMaxK})
      expect_k_nearest(query, table, sorted, k, what);
  }
  void expect_k_nearest(std::uint64_t query, const std::vector<std::uint64_t>& table,
                        const std::vector<std::uint64_t>& sorted, std::uint64_t k,
                        const char* what) {
    const std::uint64_t n = table.size();
    Arena arena(n + kMaxK);
    std::copy(table.begin(), table.end(), arena.words.begin());
    const KernelResult r = run({query, k, n * kWord}, arena.view(), arena.range(0, n * kWord));
    ASSERT_EQ(r.status, TaskStatus::kOk) << what << ", " << n << " rows, k " << k;
    EXPECT_EQ(r.value, std::min(n, k)) << what << ", " << n << " rows, k " << k;
    const std::vector<std::uint64_t> got(arena.words.begin() + static_cast<std::ptrdiff_t>(n),
                                         arena.words.begin() + static_cast<std::ptrdiff_t>(n + k));
    std::vector<std::uint64_t> expected(
        sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(std::min(n, k)));
    expected.resize(k, kNoEntry);
    EXPECT_EQ(got, expected) << what << ", " << n << " rows, k " << k;
    // Nothing written past the k entries.
    for (std::uint64_t i = n + k; i < n + kMaxK; ++i) ASSERT_EQ(arena.words[i], kSentinel) << i;
  }

  KernelRegistry registry_;
};

INSTANTIATE_TEST_SUITE_P(Paths, TopkFingerprints,
                         ::testing::Values(batching::SimdPath::kAuto, batching::SimdPath::kScalar),
                         [](const auto& info) {
                           return info.param == batching::SimdPath::kAuto ? "Simd" : "Scalar";
                         });

TEST(TopkFingerprintFields, EveryU64UnpacksInRange) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100'000; ++i) {
    const std::uint64_t fp = rng();
    ASSERT_TRUE(fields_in_range(unpack_fingerprint(fp))) << fp;
    ASSERT_EQ(pack_fingerprint(unpack_fingerprint(fp)), fp) << "the fields are all the bits";
  }
  EXPECT_TRUE(fields_in_range(unpack_fingerprint(~std::uint64_t{0})));
}

TEST_P(TopkFingerprints, MatchesBruteForceOnEverySizeAndK) {
  std::mt19937_64 rng(2024);
  for (const std::uint64_t n : {0u, 1u, 7u, 64u, 1000u, 1'000'000u}) {
    const std::uint64_t query = rng();
    std::vector<std::uint64_t> table(n);
    for (auto& row : table) row = near(query, rng);
    expect_matches_brute_force(query, table, "random");
  }
}

TEST_P(TopkFingerprints, TablesOfRandomU64s) {
  // Mostly other kernels: nearly every row at kFarDistance, ties broken by row.
  std::mt19937_64 rng(7);
  std::vector<std::uint64_t> table(5000);
  for (auto& row : table) row = rng();
  expect_matches_brute_force(rng(), table, "random u64s");
  expect_matches_brute_force(table[4321], table, "a row's own fingerprint");
}

TEST_P(TopkFingerprints, TiesGoToTheLowerRow) {
  std::mt19937_64 rng(3);
  const std::uint64_t query = rng();
  // Every row the same: rows 0..k-1 at one distance.
  const std::vector<std::uint64_t> same(3000, near(query, rng));
  expect_matches_brute_force(query, same, "all equal");
  // A few duplicates of the query itself (distance 0) among far rows: they
  // come out first, in row order.
  std::vector<std::uint64_t> table(2000);
  for (auto& row : table) {
    FingerprintFields f = unpack_fingerprint(near(query, rng));
    f.kernel = unpack_fingerprint(query).kernel ^ 1;  // another kernel: kFarDistance
    row = pack_fingerprint(f);
  }
  for (const std::uint64_t row : {1500u, 3u, 999u, 1999u, 0u}) table[row] = query;
  Arena arena(table.size() + kMaxK);
  std::copy(table.begin(), table.end(), arena.words.begin());
  const std::uint64_t out = table.size() * kWord;
  const KernelResult r = run({query, 5, out}, arena.view(), arena.range(0, out));
  ASSERT_EQ(r.status, TaskStatus::kOk);
  EXPECT_EQ(r.value, 5u);
  const std::vector<std::uint64_t> got(arena.words.begin() + 2000, arena.words.begin() + 2005);
  EXPECT_EQ(got, (std::vector<std::uint64_t>{0, 3, 999, 1500, 1999}));
}

TEST_P(TopkFingerprints, RowsOrderedFarToNearAllPassThroughTheHeap) {
  // Every row is nearer than all before it: each one displaces the top.
  const std::uint64_t query = pack_fingerprint({5, 10, 100'000, 7});
  std::vector<std::uint64_t> table;
  for (std::uint32_t d = 0; d < 300; ++d)  // region distance 299 (capped 255) down to 0
    for (int copy = 0; copy < 4; ++copy)
      table.push_back(pack_fingerprint({5, 10, 100'000 + 299 - d, copy % 2 == 0 ? 7u : 8u}));
  expect_matches_brute_force(query, table, "far to near");
}

TEST_P(TopkFingerprints, KAboveRowsFillsTheRestWithUint64Max) {
  std::mt19937_64 rng(4);
  const std::uint64_t query = rng();
  std::vector<std::uint64_t> table(7);
  for (auto& row : table) row = near(query, rng);
  Arena arena(7 + kMaxK);
  std::copy(table.begin(), table.end(), arena.words.begin());
  const KernelResult r = run({query, kMaxK, 7 * kWord}, arena.view(), arena.range(0, 7 * kWord));
  ASSERT_EQ(r.status, TaskStatus::kOk);
  EXPECT_EQ(r.value, 7u);
  for (std::uint64_t i = 7; i < 7 + 7; ++i) EXPECT_NE(arena.words[i], kNoEntry) << i;
  for (std::uint64_t i = 7 + 7; i < 7 + kMaxK; ++i) ASSERT_EQ(arena.words[i], kNoEntry) << i;
  // An empty table: every entry UINT64_MAX, result 0.
  const KernelResult empty = run({query, 5, 0}, arena.view(), ArenaView{});
  ASSERT_EQ(empty.status, TaskStatus::kOk);
  EXPECT_EQ(empty.value, 0u);
  for (std::uint64_t i = 0; i < 5; ++i) EXPECT_EQ(arena.words[i], kNoEntry) << i;
}

TEST_P(TopkFingerprints, RepeatedCallsOfDifferentSizesReuseTheWorkspaceCorrectly) {
  // The thread's table shrinks, grows and is refilled between calls.
  std::mt19937_64 rng(5);
  for (const std::uint64_t n : {3000u, 7u, 1025u, 1024u, 1u, 2049u, 64u}) {
    const std::uint64_t query = rng();
    std::vector<std::uint64_t> table(n);
    for (auto& row : table) row = near(query, rng);
    expect_k_nearest(query, table, brute_force(query, table.data(), n, n), 5, "reuse");
  }
}

TEST_P(TopkFingerprints, ConcurrentCallsOnTwoThreadsKeepTheirOwnWorkspace) {
  test::ScopedWatchdog watchdog("TopkFingerprints.Concurrent", 60);
  constexpr std::uint64_t kRows = 20'000;
  constexpr std::uint64_t kK = 50;
  constexpr int kRuns = 20;
  struct Side {
    std::uint64_t query = 0;
    std::vector<std::uint64_t> table;
    std::vector<std::uint64_t> expected;
    int wrong = 0;
  };
  std::array<Side, 2> sides;
  std::mt19937_64 rng(6);
  for (Side& s : sides) {
    s.query = rng();
    s.table.resize(kRows);
    for (auto& row : s.table) row = near(s.query, rng);
    s.expected = brute_force(s.query, s.table.data(), kRows, kK);
  }
  const auto id = registry_.find("topk_fingerprints");
  ASSERT_TRUE(id.has_value());
  const KernelFn fn = registry_.at(*id).fn;
  auto work = [&](Side& s) {
    Arena arena(kRows + kK);
    std::copy(s.table.begin(), s.table.end(), arena.words.begin());
    for (int run = 0; run < kRuns; ++run) {
      TaskContext ctx(nullptr, 1, arena.view());
      std::array<std::uint64_t, kInlineArgs> args{s.query, kK, kRows * kWord};
      const KernelResult r = fn(ctx, KernelArgs(args), arena.range(0, kRows * kWord));
      if (r.status != TaskStatus::kOk ||
          !std::equal(s.expected.begin(), s.expected.end(), arena.words.begin() + kRows))
        ++s.wrong;
    }
  };
  std::thread other([&] { work(sides[1]); });
  work(sides[0]);
  other.join();
  EXPECT_EQ(sides[0].wrong, 0);
  EXPECT_EQ(sides[1].wrong, 0);
}

TEST_P(TopkFingerprints, CancelledTaskIsDropped) {
  std::vector<std::uint64_t> words(100, 0);
  const ArenaView arena{reinterpret_cast<std::byte*>(words.data()), words.size() * kWord};
  const std::atomic<bool> closing{true};
  const KernelResult r =
      run({0, 5, 64 * kWord}, arena, ArenaView{arena.data, 64 * kWord}, &closing);
  EXPECT_EQ(r.status, TaskStatus::kDropped);
}

TEST_P(TopkFingerprints, BadArgumentsAndRangesFailWithTheirDetail) {
  constexpr std::uint64_t kRows = 10;
  constexpr std::uint64_t kTable = kRows * kWord;
  // The table at [0, 80); room for 1024 entries after it, and 16 bytes more.
  Arena arena(kRows + kMaxK + 2);
  const std::uint64_t size = arena.view().size;
  const ArenaView table = arena.range(0, kTable);
  const std::vector<std::uint64_t> before = arena.words;
  struct Case {
    std::array<std::uint64_t, kInlineArgs> args;
    ArenaView data;
    TaskStatus status;
    std::uint32_t detail;
    const char* what;
  };
  const Case cases[] = {
      {{0, 0, kTable}, table, TaskStatus::kInvalidArgs, 1, "k = 0"},
      {{0, kMaxK + 1, kTable}, table, TaskStatus::kInvalidArgs, 1, "k = 1025"},
      {{0, ~std::uint64_t{0}, kTable}, table, TaskStatus::kInvalidArgs, 1, "k = 2^64-1"},
      {{0, 5, kTable},
       arena.range(4, kTable),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "misaligned table"},
      {{0, 5, kTable},
       arena.range(0, kTable - 4),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "partial row"},
      // 2^32 rows (32 GiB): rejected from the length alone, never read.
      {{0, 5, kTable},
       ArenaView{arena.base(), kTooManyRows * kWord},
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "2^32 rows"},
      {{0, 5, size - 4 * kWord}, table, TaskStatus::kInvalidRange, 2, "one entry past the end"},
      {{0, 1, size}, table, TaskStatus::kInvalidRange, 2, "at the arena's end"},
      {{0, kMaxK, 3 * kWord * 8}, table, TaskStatus::kInvalidRange, 2, "1024 entries do not fit"},
      {{0, 5, ~std::uint64_t{0} - 7}, table, TaskStatus::kInvalidRange, 2, "offset wraps"},
      {{0, 5, kTable + 4}, table, TaskStatus::kInvalidRange, 2, "misaligned output"},
      {{0, 5, 0}, table, TaskStatus::kInvalidRange, 2, "output at the table"},
      {{0, 5, kTable - kWord}, table, TaskStatus::kInvalidRange, 2, "output over the last row"},
      // Checked in the order args[1], data, args[2].
      {{0, 0, 4}, arena.range(4, 3), TaskStatus::kInvalidArgs, 1, "all bad"},
      {{0, 5, 4}, arena.range(4, 3), TaskStatus::kInvalidRange, kDataRangeDetail, "both ranges"},
  };
  for (const Case& c : cases) {
    const KernelResult r = run(c.args, arena.view(), c.data);
    EXPECT_EQ(r.status, c.status) << c.what;
    EXPECT_EQ(r.detail, c.detail) << c.what;
    EXPECT_EQ(r.value, 0u) << c.what;
    EXPECT_EQ(arena.words, before) << c.what << ": the arena was written";
  }
  // The largest valid output, right after the table, up to the arena's end.
  for (const std::uint64_t offset : {kTable, size - kMaxK * kWord}) {
    const KernelResult r = run({0, kMaxK, offset}, arena.view(), table);
    EXPECT_EQ(r.status, TaskStatus::kOk) << offset;
    EXPECT_EQ(r.value, kRows);
  }
}

}  // namespace
}  // namespace beat
