// Unit tests of shared/ring.hpp: index arithmetic across the 2^32 boundary,
// full/empty detection, reservation refusal, in-order commit, and the same
// ring in MAP_SHARED memory across fork(). Concurrency at scale lives in
// ring_stress_test.cpp.
#include "shared/ring.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "shared/protocol.hpp"
#include "tests/shared/ring_under_test.hpp"
#include "tests/support/shared_mapping.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::RingUnderTest;

constexpr std::uint32_t kMaxIndex = std::numeric_limits<std::uint32_t>::max();

// Start indices: zero, and positions that cross 2^32 within the first lap.
class RingAtStartIndex : public ::testing::TestWithParam<std::uint32_t> {};

INSTANTIATE_TEST_SUITE_P(Ring, RingAtStartIndex,
                         ::testing::Values(0u, kMaxIndex - 100, kMaxIndex - 7, kMaxIndex - 1,
                                           kMaxIndex),
                         [](const auto& info) { return "start_" + std::to_string(info.param); });

TEST_P(RingAtStartIndex, EmptyRingConsumesNothing) {
  test::AlignedBlock mem(RingUnderTest<std::uint64_t>::bytes_for(8));
  const auto ring = RingUnderTest<std::uint64_t>::place(mem.data(), 8, GetParam());
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(ring.consume([](std::uint64_t, std::uint32_t) { ADD_FAILURE() << "empty ring"; }), 0u);
  EXPECT_EQ(ring.indices->head.value.load(), GetParam());
}

TEST_P(RingAtStartIndex, TryReserveRefusesWhenFullAndLeavesReserveUnchanged) {
  constexpr std::uint32_t kEntries = 8;
  test::AlignedBlock mem(RingUnderTest<std::uint64_t>::bytes_for(kEntries));
  const auto ring = RingUnderTest<std::uint64_t>::place(mem.data(), kEntries, GetParam());
  const std::uint32_t s = GetParam();
  auto& reserve = ring.indices->reserve.value;
  auto& head = ring.indices->head.value;

  const auto first = try_reserve(reserve, head, kEntries, kEntries);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, s);
  EXPECT_EQ(reserve.load(), s + kEntries);  // wraps modulo 2^32

  // Full: even a single slot is refused, and a refusal changes nothing.
  EXPECT_FALSE(try_reserve(reserve, head, kEntries, 1).has_value());
  EXPECT_EQ(reserve.load(), s + kEntries);

  // Reserved but not committed: the consumer sees nothing yet.
  EXPECT_EQ(ring.size(), 0u);
  for (std::uint32_t i = 0; i < kEntries; ++i) ring.slots[(s + i) & ring.mask] = 100 + i;
  commit_in_order(ring.indices->tail.value, nullptr, s, kEntries);
  EXPECT_EQ(ring.size(), kEntries);

  // Free three slots: four are refused, three fit, exactly after the first batch.
  std::vector<std::uint64_t> got;
  // Consume only three by hand (ring.consume takes all).
  for (std::uint32_t i = 0; i < 3; ++i) got.push_back(copy_entry(ring.slots, ring.mask, s + i));
  head.store(s + 3, std::memory_order_release);
  EXPECT_EQ(got, (std::vector<std::uint64_t>{100, 101, 102}));
  EXPECT_FALSE(try_reserve(reserve, head, kEntries, 4).has_value());
  const auto second = try_reserve(reserve, head, kEntries, 3);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, s + kEntries);
  EXPECT_FALSE(try_reserve(reserve, head, kEntries, 1).has_value());
}

TEST_P(RingAtStartIndex, FullAndEmptyAreTailMinusHead) {
  constexpr std::uint32_t kEntries = 16;
  test::AlignedBlock mem(RingUnderTest<std::uint64_t>::bytes_for(kEntries));
  const auto ring = RingUnderTest<std::uint64_t>::place(mem.data(), kEntries, GetParam());
  for (std::uint32_t i = 0; i < kEntries; ++i) {
    ASSERT_TRUE(ring.try_produce(1, [&](std::uint32_t) { return std::uint64_t{i}; }));
    EXPECT_EQ(ring.size(), i + 1);
  }
  EXPECT_FALSE(ring.try_produce(1, [](std::uint32_t) { return std::uint64_t{0}; }));
  EXPECT_EQ(ring.size(), kEntries);
  std::uint64_t expect = 0;
  EXPECT_EQ(ring.consume([&](std::uint64_t v, std::uint32_t) { EXPECT_EQ(v, expect++); }),
            kEntries);
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(ring.indices->head.value.load(), GetParam() + kEntries);
}

TEST_P(RingAtStartIndex, ReserveLargerThanRingIsRefusedEvenWhenEmpty) {
  constexpr std::uint32_t kEntries = 8;
  test::AlignedBlock mem(RingUnderTest<std::uint64_t>::bytes_for(kEntries));
  const auto ring = RingUnderTest<std::uint64_t>::place(mem.data(), kEntries, GetParam());
  EXPECT_FALSE(
      try_reserve(ring.indices->reserve.value, ring.indices->head.value, kEntries, kEntries + 1)
          .has_value());
  EXPECT_FALSE(
      try_reserve(ring.indices->reserve.value, ring.indices->head.value, kEntries, kMaxIndex)
          .has_value());
  EXPECT_EQ(ring.indices->reserve.value.load(), GetParam());
}

TEST_P(RingAtStartIndex, ReserveOfZeroReturnsCurrentIndexAndReservesNothing) {
  test::AlignedBlock mem(RingUnderTest<std::uint64_t>::bytes_for(8));
  const auto ring = RingUnderTest<std::uint64_t>::place(mem.data(), 8, GetParam());
  const auto r = try_reserve(ring.indices->reserve.value, ring.indices->head.value, 8, 0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, GetParam());
  EXPECT_EQ(ring.indices->reserve.value.load(), GetParam());
}

// Many laps with every batch size 1..entries; each entry must land in slot
// index & mask and come out in order, whichever side of 2^32 it is on.
TEST_P(RingAtStartIndex, WrapsAcrossIndexBoundaryWithEveryBatchSize) {
  constexpr std::uint32_t kEntries = 16;
  constexpr std::uint32_t kRounds = 1000;
  test::AlignedBlock mem(RingUnderTest<std::uint64_t>::bytes_for(kEntries));
  const auto ring = RingUnderTest<std::uint64_t>::place(mem.data(), kEntries, GetParam());
  std::uint64_t next_value = 0;
  std::uint64_t expect_value = 0;
  std::uint32_t expect_index = GetParam();
  bool crossed_zero = false;
  for (std::uint32_t round = 0; round < kRounds; ++round) {
    const std::uint32_t n = round % kEntries + 1;
    const std::uint64_t base = next_value;
    const auto start = ring.try_produce(n, [&](std::uint32_t i) { return base + i; });
    ASSERT_TRUE(start.has_value()) << "round " << round << " batch " << n;
    EXPECT_EQ(*start, expect_index);
    for (std::uint32_t i = 0; i < n; ++i)
      ASSERT_EQ(ring.slots[(*start + i) % kEntries], base + i) << "slot of index " << *start + i;
    next_value += n;
    EXPECT_EQ(ring.size(), n);
    const std::optional<std::uint32_t> got =
        ring.consume([&](std::uint64_t v, std::uint32_t index) {
          EXPECT_EQ(index, expect_index);
          EXPECT_EQ(v, expect_value);
          if (index == 0) crossed_zero = true;
          ++expect_index;
          ++expect_value;
        });
    EXPECT_EQ(got, n);
  }
  EXPECT_EQ(expect_value, next_value);
  if (GetParam() != 0) {
    EXPECT_TRUE(crossed_zero) << "test never crossed 2^32";
  }
}

TEST(Ring, CopyEntryMasksTheIndex) {
  std::uint64_t slots[8] = {10, 11, 12, 13, 14, 15, 16, 17};
  EXPECT_EQ(copy_entry(slots, 7, kMaxIndex), 17u);
  EXPECT_EQ(copy_entry(slots, 7, 0), 10u);
  EXPECT_EQ(copy_entry(slots, 7, 8), 10u);
  EXPECT_EQ(copy_entry(slots, 7, 8 * 1000 + 3), 13u);
}

TEST(Ring, IsPowerOfTwo) {
  EXPECT_FALSE(is_power_of_two(0));
  EXPECT_TRUE(is_power_of_two(1));
  EXPECT_TRUE(is_power_of_two(2));
  EXPECT_FALSE(is_power_of_two(3));
  EXPECT_FALSE(is_power_of_two(12));
  EXPECT_TRUE(is_power_of_two(std::uint64_t{1} << 63));
  EXPECT_FALSE(is_power_of_two(std::numeric_limits<std::uint64_t>::max()));
}

// A later reservation cannot publish before an earlier one commits (rule 2),
// and its commit publishes both.
TEST(Ring, CommitWaitsForEarlierReservation) {
  test::ScopedWatchdog watchdog("Ring.CommitWaitsForEarlierReservation", 30);
  constexpr std::uint32_t kEntries = 8;
  test::AlignedBlock mem(RingUnderTest<std::uint64_t>::bytes_for(kEntries));
  const auto ring = RingUnderTest<std::uint64_t>::place(mem.data(), kEntries, kMaxIndex - 2);
  auto& reserve = ring.indices->reserve.value;
  auto& head = ring.indices->head.value;
  auto& tail = ring.indices->tail.value;
  const auto a = try_reserve(reserve, head, kEntries, 2);
  const auto b = try_reserve(reserve, head, kEntries, 3);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*b, *a + 2);

  std::atomic<bool> b_committed{false};
  std::thread later([&] {
    for (std::uint32_t i = 0; i < 3; ++i) ring.slots[(*b + i) & ring.mask] = 20 + i;
    commit_in_order(tail, nullptr, *b, 3);
    b_committed.store(true, std::memory_order_release);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(b_committed.load(std::memory_order_acquire));
  EXPECT_EQ(tail.load(), *a) << "tail moved before the earlier reservation committed";

  for (std::uint32_t i = 0; i < 2; ++i) ring.slots[(*a + i) & ring.mask] = 10 + i;
  commit_in_order(tail, nullptr, *a, 2);
  later.join();
  EXPECT_TRUE(b_committed.load(std::memory_order_acquire));
  EXPECT_EQ(tail.load(), *a + 5);
  std::vector<std::uint64_t> got;
  ring.consume([&](std::uint64_t v, std::uint32_t) { got.push_back(v); });
  EXPECT_EQ(got, (std::vector<std::uint64_t>{10, 11, 20, 21, 22}));
}

// The CQ form: producers order on a private counter and the consumer reads
// a separate published word (CompletionProducer mirrors tail into the segment).
TEST(Ring, CommitMirrorsIntoSeparatePublishedWord) {
  std::atomic<std::uint32_t> private_commit{kMaxIndex};
  std::atomic<std::uint32_t> published{kMaxIndex};
  commit_in_order(private_commit, &published, kMaxIndex, 4);
  EXPECT_EQ(private_commit.load(), 3u);
  EXPECT_EQ(published.load(), 3u);
  // The same word as both: stored once, to the same value.
  commit_in_order(private_commit, &private_commit, 3, 2);
  EXPECT_EQ(private_commit.load(), 5u);
  EXPECT_EQ(published.load(), 3u);
}

// The segment case: producer and consumer are different processes sharing
// the ring's pages. A small ring keeps both sides hitting full and empty.
TEST(Ring, SingleProducerAcrossForkInSharedMapping) {
  using Ring = RingUnderTest<TaskDescriptor>;
  constexpr std::uint32_t kEntries = 64;
  const std::uint32_t total = static_cast<std::uint32_t>(test::stress_size(200'000, 1000));
  test::SharedMapping mem(Ring::bytes_for(kEntries));
  const Ring ring = Ring::place(mem.data(), kEntries, kMaxIndex - 1000);

  const pid_t child = test::fork_child(60, [&] {
    std::uint32_t seq = 0;
    std::uint32_t batch = 0;
    while (seq < total) {
      std::uint32_t n = batch++ % 17 + 1;
      if (n > total - seq) n = total - seq;
      const std::uint32_t base = seq;
      if (ring.try_produce(
              n, [&](std::uint32_t i) { return test::make_tagged_descriptor(7, base + i); })) {
        seq += n;
      } else {
        cpu_relax();
      }
    }
    return 0;
  });

  test::ScopedWatchdog watchdog("Ring.SingleProducerAcrossForkInSharedMapping", 90);
  std::uint32_t expect = 0;
  std::string first_error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (expect < total && first_error.empty()) {
    const std::optional<std::uint32_t> n =
        ring.consume([&](const TaskDescriptor& d, std::uint32_t) {
          if (!first_error.empty()) return;
          if (d.tag != ((std::uint64_t{7} << 32) | expect) || !test::is_intact_tagged_descriptor(d))
            first_error = "entry " + std::to_string(expect) + " has tag " + std::to_string(d.tag);
          ++expect;
        });
    if (!n) {
      first_error = "corrupt ring after " + std::to_string(expect) + " entries";
      break;
    }
    if (*n == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        first_error = "timed out after " + std::to_string(expect) + " entries";
        break;
      }
      cpu_relax();
    }
  }
  EXPECT_EQ(first_error, "");
  EXPECT_EQ(test::wait_child(child, std::chrono::seconds(10)), 0);
  EXPECT_EQ(expect, total);
  EXPECT_EQ(ring.indices->tail.value.load(), kMaxIndex - 1000 + total);
  EXPECT_EQ(ring.indices->reserve.value.load(), kMaxIndex - 1000 + total);
}

}  // namespace
}  // namespace beat
