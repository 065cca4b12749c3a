// Tests of the sort kernels (kernels/sort.cpp) and of the parallel sort
// they run (kernels/sort.hpp). Results are compared exactly with std::sort
// of a copy (f32: by a totalOrder comparison written here from the
// standard, compared as bit patterns), serially and on a real 2-worker
// scheduler; every bad range and argument; cancellation; and a client that
// scribbles over the arrays while they are sorted.
#include "kernels/sort.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon/scheduler/scheduler.hpp"
#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"
#include "tests/support/scheduler_setup.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

constexpr std::uint32_t kClient = 3;
constexpr std::size_t kLeaf = sort::kSortLeafElements;
// Bytes before, between and after the ranges of an Arena, filled with
// kGuardByte and checked after every run: a write outside data and scratch
// shows there. Also the alignment of every range.
constexpr std::size_t kGuardBytes = 64;
constexpr unsigned char kGuardByte = 0xA5;

// IEEE-754 totalOrder on binary32 bit patterns, from the standard's
// definition rather than the kernel's key mapping: every negative (sign
// bit set, -NaN included) before every positive; among positives the
// larger bit pattern is the larger (exponent, then significand, so +inf
// above the finite values and +NaNs above +inf by payload); among
// negatives the reverse.
bool total_order_less(std::uint32_t a, std::uint32_t b) {
  const bool a_negative = (a >> 31) != 0;
  const bool b_negative = (b >> 31) != 0;
  if (a_negative != b_negative) return a_negative;
  return a_negative ? a > b : a < b;
}

// Binary32 patterns with a defined place in totalOrder, listed in that
// order (the expectation of F32SpecialValuesTakeTheirTotalOrderPlaces).
constexpr std::array<std::uint32_t, 22> kF32SpecialsInOrder = {
    0xFFFF'FFFF,  // -NaN, largest payload
    0xFFC0'0000,  // -qNaN
    0xFF80'0001,  // -sNaN, smallest payload
    0xFF80'0000,  // -inf
    0xFF7F'FFFF,  // -FLT_MAX
    0xBF80'0000,  // -1
    0x8080'0000,  // -FLT_MIN
    0x807F'FFFF,  // largest negative denormal magnitude
    0x8000'0001,  // smallest negative denormal magnitude
    0x8000'0000,  // -0
    0x0000'0000,  // +0
    0x0000'0001,  // smallest denormal
    0x007F'FFFF,  // largest denormal
    0x0080'0000,  // FLT_MIN
    0x3F80'0000,  // 1
    0x3F80'0001,  // the float after 1
    0x7F7F'FFFF,  // FLT_MAX
    0x7F80'0000,  // +inf
    0x7F80'0001,  // +sNaN, smallest payload
    0x7FA0'0000,  // +sNaN
    0x7FC0'0000,  // +qNaN
    0x7FFF'FFFF,  // +NaN, largest payload
};

// The element types, as the bit patterns the tests hold them in.
template <class Bits>
struct Kind;
template <>
struct Kind<std::uint64_t> {
  static constexpr std::string_view kKernel = "sort_u64";
  static bool less(std::uint64_t a, std::uint64_t b) { return a < b; }
  static constexpr std::uint64_t kEqual = 0x8000'0000'0000'0001;
  // Few distinct values, including both ends and both sides of 2^63 (an
  // unsigned comparison, not a signed one).
  static constexpr std::array<std::uint64_t, 7> kFew = {0,
                                                        1,
                                                        42,
                                                        0x7FFF'FFFF'FFFF'FFFF,
                                                        0x8000'0000'0000'0000,
                                                        0xFFFF'FFFF'FFFF'FFFE,
                                                        0xFFFF'FFFF'FFFF'FFFF};
};
template <>
struct Kind<std::uint32_t> {
  static constexpr std::string_view kKernel = "sort_f32";
  static bool less(std::uint32_t a, std::uint32_t b) { return total_order_less(a, b); }
  static constexpr std::uint32_t kEqual = 0xFFC0'0001;  // a negative NaN
  static constexpr auto kFew = kF32SpecialsInOrder;
};

enum class Pattern { kRandom, kSorted, kReversed, kAllEqual, kFewDistinct };
constexpr std::array<Pattern, 5> kPatterns = {Pattern::kRandom, Pattern::kSorted,
                                              Pattern::kReversed, Pattern::kAllEqual,
                                              Pattern::kFewDistinct};
const char* pattern_name(Pattern p) {
  switch (p) {
    case Pattern::kRandom: return "random";
    case Pattern::kSorted: return "sorted";
    case Pattern::kReversed: return "reversed";
    case Pattern::kAllEqual: return "all equal";
    case Pattern::kFewDistinct: return "few distinct";
  }
  return "?";
}

// For f32, random 32-bit patterns: every class (NaNs of both signs, about
// 1 in 256; infinities; denormals; zeros rarely) and all payloads.
template <class Bits>
std::vector<Bits> make_input(std::size_t n, Pattern p, std::mt19937_64& rng) {
  std::vector<Bits> v(n);
  switch (p) {
    case Pattern::kRandom:
    case Pattern::kSorted:
    case Pattern::kReversed:
      for (Bits& x : v) x = static_cast<Bits>(rng());
      if (p == Pattern::kRandom) break;
      std::sort(v.begin(), v.end(), Kind<Bits>::less);
      if (p == Pattern::kReversed) std::reverse(v.begin(), v.end());
      break;
    case Pattern::kAllEqual: std::fill(v.begin(), v.end(), Kind<Bits>::kEqual); break;
    case Pattern::kFewDistinct:
      for (Bits& x : v) x = Kind<Bits>::kFew[rng() % Kind<Bits>::kFew.size()];
      break;
  }
  return v;
}

template <class Bits>
std::vector<Bits> reference_sort(std::vector<Bits> v) {
  std::sort(v.begin(), v.end(), Kind<Bits>::less);
  return v;
}

// A client arena laid out as  guard | data | guard | scratch | guard,  each
// range 64-byte aligned (offsets from a 16-byte aligned base), the guards
// filled with kGuardByte. Test code reads and writes it with memcpy.
class Arena {
 public:
  Arena(std::size_t data_bytes, std::size_t scratch_bytes)
      : data_bytes_(data_bytes),
        scratch_bytes_(scratch_bytes),
        data_offset_(kGuardBytes),
        scratch_offset_(round_up(data_offset_ + data_bytes) + kGuardBytes),
        bytes_(round_up(scratch_offset_ + scratch_bytes) + kGuardBytes, std::byte{kGuardByte}) {}

  ArenaView whole() { return {bytes_.data(), bytes_.size()}; }
  ArenaView range(std::uint64_t offset, std::uint64_t length) {
    return {bytes_.data() + offset, length};
  }
  ArenaView data() { return range(data_offset_, data_bytes_); }
  std::uint64_t data_offset() const { return data_offset_; }
  std::uint64_t scratch_offset() const { return scratch_offset_; }
  std::byte* at(std::uint64_t offset) { return bytes_.data() + offset; }

  template <class T>
  void write(std::uint64_t offset, const std::vector<T>& v) {
    if (!v.empty()) std::memcpy(at(offset), v.data(), v.size() * sizeof(T));
  }
  template <class T>
  std::vector<T> read(std::uint64_t offset, std::size_t n) const {
    std::vector<T> v(n);
    if (n != 0) std::memcpy(v.data(), bytes_.data() + offset, n * sizeof(T));
    return v;
  }

  // True when no byte outside data and scratch differs from kGuardByte.
  bool guards_intact() const {
    for (std::size_t i = 0; i < bytes_.size(); ++i) {
      const bool in_data = i >= data_offset_ && i < data_offset_ + data_bytes_;
      const bool in_scratch = i >= scratch_offset_ && i < scratch_offset_ + scratch_bytes_;
      if (!in_data && !in_scratch && bytes_[i] != std::byte{kGuardByte}) return false;
    }
    return true;
  }

 private:
  static std::size_t round_up(std::size_t x) {
    return (x + kGuardBytes - 1) / kGuardBytes * kGuardBytes;
  }

  std::size_t data_bytes_;
  std::size_t scratch_bytes_;
  std::size_t data_offset_;
  std::size_t scratch_offset_;
  std::vector<std::byte> bytes_;
};

using Args = std::array<std::uint64_t, kInlineArgs>;

// Public helpers: the typed checks below are free templates.
class SortKernels : public ::testing::Test {
 public:
  SortKernels() { register_sort_kernels(registry_); }
  ~SortKernels() override {
    if (scheduler_) scheduler_->stop();
  }

  KernelFn kernel(std::string_view name) {
    const auto id = registry_.find(name);
    EXPECT_TRUE(id.has_value()) << name;
    return id ? registry_.at(*id).fn : nullptr;
  }

  // A 2-worker scheduler, started on first use.
  sched::Scheduler& scheduler() {
    if (!scheduler_) {
      topology_.emplace(test::machine_topology());
      scheduler_ = std::make_unique<sched::Scheduler>(test::unpinned_options(2), *topology_);
      const Status started = scheduler_->start();
      EXPECT_TRUE(started) << started.message();
    }
    return *scheduler_;
  }

  // Calls `fn` as a worker would: serially when `s` is null, else as a
  // root task on s.
  static KernelResult call(KernelFn fn, sched::Scheduler* s, ArenaView arena, ArenaView data,
                           Args args, const std::atomic<bool>* stop = nullptr) {
    if (fn == nullptr) return KernelResult::error(0xDEAD);
    if (s == nullptr) {
      TaskContext ctx(nullptr, kClient, arena, stop);
      return fn(ctx, KernelArgs(args), data);
    }
    KernelResult r = KernelResult::error(0xDEAD);
    s->run([&](sched::Worker& w) {
      TaskContext ctx(&w, kClient, arena, stop);
      r = fn(ctx, KernelArgs(args), data);
    });
    return r;
  }

  // Sorts `input` with the kernel (serially when s is null) over scratch
  // full of garbage, and expects `expected` exactly, the guards intact
  // and, for an input of one leaf, scratch untouched.
  template <class Bits>
  void expect_sorts(sched::Scheduler* s, const std::vector<Bits>& input,
                    const std::vector<Bits>& expected, std::mt19937_64& rng,
                    const std::string& what) {
    const std::size_t n = input.size();
    Arena arena(n * sizeof(Bits), n * sizeof(Bits));
    arena.write(arena.data_offset(), input);
    std::vector<Bits> garbage(n);
    for (Bits& g : garbage) g = static_cast<Bits>(rng());
    arena.write(arena.scratch_offset(), garbage);
    const KernelResult r = call(kernel(Kind<Bits>::kKernel), s, arena.whole(), arena.data(),
                                {arena.scratch_offset(), rng(), rng()});
    EXPECT_EQ(r.status, TaskStatus::kOk) << what;
    EXPECT_EQ(r.detail, 0u) << what;
    EXPECT_EQ(r.value, n) << what;
    const std::vector<Bits> got = arena.read<Bits>(arena.data_offset(), n);
    const auto [g, e] = std::mismatch(got.begin(), got.end(), expected.begin());
    if (g != got.end()) {
      ADD_FAILURE() << what << ": first difference at " << (g - got.begin()) << ": got 0x"
                    << std::hex << +*g << ", expected 0x" << +*e;
    }
    EXPECT_TRUE(arena.guards_intact()) << what << ": wrote outside data and scratch";
    if (n <= kLeaf) {
      EXPECT_EQ(arena.read<Bits>(arena.scratch_offset(), n), garbage)
          << what << ": a one-leaf sort touched scratch";
    }
  }

  // Every size (0, 1, tails, around the leaf, several leaves, 10^6) and
  // pattern, serially and on 2 workers; both must give the reference.
  template <class Bits>
  void expect_sorts_everything() {
    test::ScopedWatchdog watchdog(std::string(Kind<Bits>::kKernel) + " sizes and patterns", 100);
    std::mt19937_64 rng(20240601);
    const std::size_t sizes[] = {
        0, 1, 7, 64, 1000, kLeaf - 1, kLeaf, kLeaf + 1, 3 * kLeaf + 5, 1'000'000};
    for (const std::size_t n : sizes) {
      for (const Pattern p : kPatterns) {
        // 10^6 under TSan (where the reference std::sort alone takes
        // seconds): random and few distinct only.
        if (test::kUnderThreadSanitizer && n == 1'000'000 && p != Pattern::kRandom &&
            p != Pattern::kFewDistinct)
          continue;
        const std::vector<Bits> input = make_input<Bits>(n, p, rng);
        const std::vector<Bits> expected = reference_sort(input);
        const std::string what =
            std::string(Kind<Bits>::kKernel) + " n=" + std::to_string(n) + " " + pattern_name(p);
        expect_sorts(nullptr, input, expected, rng, what + " serial");
        expect_sorts(&scheduler(), input, expected, rng, what + " on 2 workers");
      }
    }
    // The 2-worker runs shared work (each 10^6 sort is stolen from a few
    // times here), or they checked nothing the serial runs did not.
    EXPECT_GT(scheduler().stats().steals, 0u);
  }

  KernelRegistry registry_;
  std::optional<Topology> topology_;  // outlives scheduler_
  std::unique_ptr<sched::Scheduler> scheduler_;
};

TEST_F(SortKernels, U64MatchesStdSortSeriallyAndOnTwoWorkers) {
  expect_sorts_everything<std::uint64_t>();
}

TEST_F(SortKernels, F32MatchesTotalOrderBitForBitSeriallyAndOnTwoWorkers) {
  expect_sorts_everything<std::uint32_t>();
}

TEST_F(SortKernels, F32SpecialValuesTakeTheirTotalOrderPlaces) {
  // Each special twice, shuffled; the expectation is the hand-written list,
  // independent of total_order_less.
  std::vector<std::uint32_t> input(kF32SpecialsInOrder.begin(), kF32SpecialsInOrder.end());
  input.insert(input.end(), kF32SpecialsInOrder.begin(), kF32SpecialsInOrder.end());
  std::mt19937_64 rng(7);
  std::shuffle(input.begin(), input.end(), rng);
  std::vector<std::uint32_t> expected;
  for (const std::uint32_t x : kF32SpecialsInOrder) expected.insert(expected.end(), 2, x);
  expect_sorts(nullptr, input, expected, rng, "specials");
  // The list's order is totalOrder's: the reference comparison agrees.
  EXPECT_TRUE(
      std::is_sorted(kF32SpecialsInOrder.begin(), kF32SpecialsInOrder.end(), total_order_less));
}

// The bad-range cases for element type Bits (its alignment is its size).
template <class Bits>
void expect_bad_ranges_rejected(KernelFn fn) {
  constexpr std::size_t kSize = sizeof(Bits);
  constexpr std::size_t kCount = 8;
  constexpr std::uint64_t kBytes = kCount * kSize;
  Arena arena(kBytes + kSize, kBytes + kSize);  // room to shift either range by an element
  const std::uint64_t d = arena.data_offset();
  const std::uint64_t s = arena.scratch_offset();
  const std::uint64_t arena_size = arena.whole().size;
  std::vector<Bits> input(kCount + 1);
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<Bits>(input.size() - i);
  arena.write(d, input);

  struct Case {
    const char* what;
    std::uint64_t data_offset;
    std::uint64_t data_length;
    std::uint64_t scratch;
    std::uint32_t detail;
  };
  const Case cases[] = {
      {"data misaligned", d + kSize / 2, kBytes, s, kDataRangeDetail},
      {"data a partial element", d, kBytes - kSize / 2, s, kDataRangeDetail},
      {"data one byte", d, 1, s, kDataRangeDetail},
      {"data bad before scratch is looked at", d + 1, kBytes, ~std::uint64_t{0}, kDataRangeDetail},
      {"scratch at the arena's end", d, kBytes, arena_size, 0},
      {"scratch past the arena's end", d, kBytes, arena_size + kSize, 0},
      {"scratch ending one element past the arena", d, kBytes, arena_size - kBytes + kSize, 0},
      {"scratch offset 2^64-1", d, kBytes, ~std::uint64_t{0}, 0},
      {"scratch offset wrapping round to 0", d, kBytes, ~std::uint64_t{0} - kBytes + 1, 0},
      {"scratch misaligned", d, kBytes, s + kSize / 2, 0},
      {"scratch misaligned by one", d, kBytes, s + 1, 0},
      {"scratch the data itself", d, kBytes, d, 0},
      {"scratch overlapping the data's tail", d, kBytes, d + kSize, 0},
      {"scratch overlapping the data's head", d + kSize, kBytes, d, 0},
      {"scratch overlapping the data's last element", d, kBytes, d + kBytes - kSize, 0},
      {"two elements, scratch out of the arena", d, 2 * kSize, ~std::uint64_t{0}, 0},
      {"two elements, scratch overlapping", d, 2 * kSize, d + kSize, 0},
  };
  for (const Case& c : cases) {
    const KernelResult r = SortKernels::call(
        fn, nullptr, arena.whole(), arena.range(c.data_offset, c.data_length), {c.scratch, 0, 0});
    EXPECT_EQ(r.status, TaskStatus::kInvalidRange) << c.what;
    EXPECT_EQ(r.detail, c.detail) << c.what;
    EXPECT_EQ(r.value, 0u) << c.what;
    EXPECT_EQ(arena.read<Bits>(d, input.size()), input) << c.what << ": data changed";
  }
  EXPECT_TRUE(arena.guards_intact());
}

TEST_F(SortKernels, BadRangesFailWithTheRangeNamedAndTouchNothing) {
  expect_bad_ranges_rejected<std::uint64_t>(kernel("sort_u64"));
  expect_bad_ranges_rejected<std::uint32_t>(kernel("sort_f32"));
}

// Scratch next to the data on either side, and scratch that is the data's
// own neighbourhood in a tight arena, are fine: they share no byte.
template <class Bits>
void expect_adjacent_scratch_accepted(KernelFn fn) {
  constexpr std::size_t kCount = 5;
  constexpr std::uint64_t kBytes = kCount * sizeof(Bits);
  std::vector<Bits> input(kCount);
  for (std::size_t i = 0; i < kCount; ++i) input[i] = static_cast<Bits>(kCount - i);
  const std::vector<Bits> expected = reference_sort(input);
  // Arena: [scratch][data][scratch], exactly, no guards.
  for (const bool scratch_after : {false, true}) {
    std::vector<std::byte> bytes(3 * kBytes);
    const std::uint64_t d = kBytes;
    std::memcpy(bytes.data() + d, input.data(), kBytes);
    const ArenaView whole{bytes.data(), bytes.size()};
    const std::uint64_t s = scratch_after ? d + kBytes : d - kBytes;
    const KernelResult r =
        SortKernels::call(fn, nullptr, whole, {bytes.data() + d, kBytes}, {s, 0, 0});
    EXPECT_EQ(r.status, TaskStatus::kOk) << "scratch after: " << scratch_after;
    EXPECT_EQ(r.value, kCount);
    std::vector<Bits> got(kCount);
    std::memcpy(got.data(), bytes.data() + d, kBytes);
    EXPECT_EQ(got, expected);
  }
}

TEST_F(SortKernels, ScratchAdjacentToTheDataIsAccepted) {
  expect_adjacent_scratch_accepted<std::uint64_t>(kernel("sort_u64"));
  expect_adjacent_scratch_accepted<std::uint32_t>(kernel("sort_f32"));
}

TEST_F(SortKernels, FewerThanTwoElementsNeedNoScratch) {
  for (const std::string_view name : {"sort_u64", "sort_f32"}) {
    const KernelFn fn = kernel(name);
    Arena arena(8, 0);
    const std::vector<std::uint64_t> word = {0x0123'4567'89AB'CDEF};
    arena.write(arena.data_offset(), word);
    // Garbage args everywhere: scratch is only needed from two elements.
    const Args garbage = {~std::uint64_t{0}, ~std::uint64_t{0} - 3, 12345};
    const std::uint64_t one = name == "sort_u64" ? 8 : 4;
    for (const std::uint64_t length : {std::uint64_t{0}, one}) {
      const KernelResult r =
          call(fn, nullptr, arena.whole(), arena.range(arena.data_offset(), length), garbage);
      EXPECT_EQ(r.status, TaskStatus::kOk) << name << " length " << length;
      EXPECT_EQ(r.detail, 0u);
      EXPECT_EQ(r.value, length / one);
      EXPECT_EQ(arena.read<std::uint64_t>(arena.data_offset(), 1), word);
    }
    // An empty data range whose pointer is misaligned is still empty.
    const KernelResult r =
        call(fn, nullptr, arena.whole(), arena.range(arena.data_offset() + 1, 0), garbage);
    EXPECT_EQ(r.status, TaskStatus::kOk) << name;
    EXPECT_EQ(r.value, 0u);
    EXPECT_TRUE(arena.guards_intact());
  }
}

TEST_F(SortKernels, CancelledTaskReturnsDroppedSeriallyAndOnTwoWorkers) {
  test::ScopedWatchdog watchdog("SortKernels.Cancelled", 60);
  const std::atomic<bool> stop{true};
  std::mt19937_64 rng(99);
  for (const std::size_t n : {std::size_t{7}, 3 * kLeaf + 5}) {
    for (sched::Scheduler* s : {static_cast<sched::Scheduler*>(nullptr), &scheduler()}) {
      Arena arena(n * 8, n * 8);
      const std::vector<std::uint64_t> input = make_input<std::uint64_t>(n, Pattern::kRandom, rng);
      arena.write(arena.data_offset(), input);
      const KernelResult r = call(kernel("sort_u64"), s, arena.whole(), arena.data(),
                                  {arena.scratch_offset(), 0, 0}, &stop);
      EXPECT_EQ(r.status, TaskStatus::kDropped) << "n " << n << (s ? " on 2 workers" : " serial");
      EXPECT_EQ(r.detail, 0u);
      EXPECT_EQ(r.value, 0u);
      EXPECT_TRUE(arena.guards_intact());
    }
  }
}

// A client that keeps overwriting data and scratch (both are its arena)
// while 2 workers sort them: the results are unordered, but every run must
// finish with its ordinary result and write nothing outside its ranges,
// and the kernel still sorts once the client stops.
//
// Skipped under ThreadSanitizer: the race between the client's writes and
// the kernel's reads is the point of the test (a real client writes from
// another process, where TSan cannot see it), so TSan would rightly report
// it; the property tested is bounds, which the release run checks.
template <class Bits>
void expect_survives_scribbling(SortKernels& t, KernelFn fn, sched::Scheduler& s) {
  constexpr std::size_t kCount = 4 * kLeaf + 3;  // several leaves and parallel merges
  constexpr int kRuns = 20;
  Arena arena(kCount * sizeof(Bits), kCount * sizeof(Bits));
  std::mt19937_64 rng(5);
  const std::vector<Bits> input = make_input<Bits>(kCount, Pattern::kRandom, rng);
  arena.write(arena.data_offset(), input);
  std::atomic<bool> done{false};
  std::thread client([&] {
    std::mt19937_64 r(6);
    auto* data = reinterpret_cast<Bits*>(arena.at(arena.data_offset()));
    auto* scratch = reinterpret_cast<Bits*>(arena.at(arena.scratch_offset()));
    // Relaxed: the client publishes nothing; the writes are the hostility.
    while (!done.load(std::memory_order_relaxed)) {
      const std::uint64_t v = r();
      Bits* base = (v & 1) != 0 ? data : scratch;
      std::atomic_ref<Bits>(base[(v >> 1) % kCount])
          .store(static_cast<Bits>(r()), std::memory_order_relaxed);
    }
  });
  for (int run = 0; run < kRuns; ++run) {
    const KernelResult r =
        SortKernels::call(fn, &s, arena.whole(), arena.data(), {arena.scratch_offset(), 0, 0});
    EXPECT_EQ(r.status, TaskStatus::kOk) << "run " << run;
    EXPECT_EQ(r.value, kCount) << "run " << run;
  }
  // Relaxed: join() below orders the client's last write before our reads.
  done.store(true, std::memory_order_relaxed);
  client.join();
  EXPECT_TRUE(arena.guards_intact()) << "the kernel wrote outside data and scratch";
  const std::vector<Bits> now = arena.read<Bits>(arena.data_offset(), kCount);
  t.expect_sorts(&s, now, reference_sort(now), rng, std::string(Kind<Bits>::kKernel) + " after");
}

TEST_F(SortKernels, ScribblingClientCannotMakeTheSortLeaveItsRanges) {
  if (test::kUnderThreadSanitizer)
    GTEST_SKIP() << "a deliberate data race with the client; bounds are checked in release";
  test::ScopedWatchdog watchdog("SortKernels.Scribbling", 60);
  expect_survives_scribbling<std::uint64_t>(*this, kernel("sort_u64"), scheduler());
  expect_survives_scribbling<std::uint32_t>(*this, kernel("sort_f32"), scheduler());
}

// beat::sort directly, as a benchmark calls it.
TEST(SortApi, SortsSpansSeriallyAndRefusesBadScratchWithoutTouchingData) {
  std::mt19937_64 rng(11);
  const std::size_t n = 2 * kLeaf + 1;
  std::vector<std::uint64_t> data = make_input<std::uint64_t>(n, Pattern::kRandom, rng);
  const std::vector<std::uint64_t> input = data;
  std::vector<std::uint64_t> scratch(n);
  TaskContext ctx(nullptr, kClient, ArenaView{});
  const std::span<std::uint64_t> d(data);

  EXPECT_EQ(sort::sort_u64(ctx, d, std::span(scratch).first(n - 1)),
            sort::SortOutcome::kBadScratch);
  EXPECT_EQ(sort::sort_u64(ctx, d.first(n - 1), d.last(n - 1)), sort::SortOutcome::kBadScratch);
  EXPECT_EQ(sort::sort_u64(ctx, d.first(2), {}), sort::SortOutcome::kBadScratch);
  EXPECT_EQ(data, input);
  EXPECT_EQ(sort::sort_u64(ctx, d.first(1), {}), sort::SortOutcome::kSorted);
  EXPECT_EQ(sort::sort_u64(ctx, {}, {}), sort::SortOutcome::kSorted);

  EXPECT_EQ(sort::sort_u64(ctx, d, scratch), sort::SortOutcome::kSorted);
  EXPECT_EQ(data, reference_sort(input));

  // f32 over real floats: -0 before +0, NaNs at the ends by sign.
  std::vector<float> f = {1.5f,
                          -0.0f,
                          std::numeric_limits<float>::quiet_NaN(),
                          0.0f,
                          -std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::quiet_NaN(),
                          -2.0f};
  std::vector<float> f_scratch(f.size());
  EXPECT_EQ(sort::sort_f32(ctx, f, f_scratch), sort::SortOutcome::kSorted);
  std::vector<std::uint32_t> bits(f.size());
  std::memcpy(bits.data(), f.data(), f.size() * sizeof(float));
  const std::vector<std::uint32_t> expected = {0xFFC0'0000, 0xFF80'0000, 0xC000'0000, 0x8000'0000,
                                               0x0000'0000, 0x3FC0'0000, 0x7FC0'0000};
  EXPECT_EQ(bits, expected);
}

}  // namespace
}  // namespace beat
