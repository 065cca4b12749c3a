// daemon/scheduler/chase_lev_deque.hpp: single-threaded semantics, growth,
// and the owner-vs-thieves exactly-once stress (also run under TSan).
#include "daemon/scheduler/chase_lev_deque.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "tests/support/watchdog.hpp"

namespace beat::sched {
namespace {

struct Item {
  std::uint64_t id;
};

TEST(ChaseLevDeque, OwnerPopsNewestThiefStealsOldest) {
  ChaseLevDeque<Item> d;
  Item a{1}, b{2}, c{3};
  EXPECT_EQ(d.pop(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  d.push(&a);
  d.push(&b);
  d.push(&c);
  EXPECT_EQ(d.size_hint(), 3u);
  EXPECT_EQ(d.steal(), &a);
  EXPECT_EQ(d.pop(), &c);
  EXPECT_EQ(d.pop(), &b);
  EXPECT_EQ(d.pop(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  EXPECT_EQ(d.size_hint(), 0u);
  // Usable again after running empty.
  d.push(&a);
  EXPECT_EQ(d.pop(), &a);
}

TEST(ChaseLevDeque, GrowsAndKeepsOrderAcrossTheWrap) {
  ChaseLevDeque<Item> d;
  const auto n = static_cast<std::uint64_t>(ChaseLevDeque<Item>::kInitialCapacity) * 4 + 3;
  std::vector<Item> items(n);
  // Move top past zero first so the live range wraps the buffer.
  Item warm{0};
  for (int i = 0; i < 100; ++i) {
    d.push(&warm);
    ASSERT_EQ(d.steal(), &warm);
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    items[i].id = i;
    d.push(&items[i]);
  }
  EXPECT_GE(d.capacity(), static_cast<std::int64_t>(n));
  EXPECT_EQ(d.size_hint(), n);
  for (std::uint64_t i = 0; i < n / 2; ++i) ASSERT_EQ(d.steal(), &items[i]) << i;
  for (std::uint64_t i = n; i-- > n / 2;) ASSERT_EQ(d.pop(), &items[i]) << i;
  EXPECT_EQ(d.pop(), nullptr);
}

// One owner pushing and popping in bursts, several thieves stealing: every
// item is taken exactly once, by someone.
TEST(ChaseLevDeque, OwnerAndThievesTakeEveryItemExactlyOnce) {
  test::ScopedWatchdog watchdog("ChaseLevDeque.OwnerAndThievesTakeEveryItemExactlyOnce", 100);
  const std::uint64_t n = test::stress_size(4'000'000, 20'000);
  constexpr int kThieves = 3;
  std::vector<Item> items(n);
  std::unique_ptr<std::atomic<std::uint8_t>[]> taken(new std::atomic<std::uint8_t>[n]);
  for (std::uint64_t i = 0; i < n; ++i) {
    items[i].id = i;
    taken[i].store(0, std::memory_order_relaxed);
  }
  ChaseLevDeque<Item> d;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> stolen_total{0};

  auto record = [&](Item* it) {
    ASSERT_NE(it, nullptr);
    // The id was written before push; reading it checks the publication.
    const std::uint8_t before = taken[it->id].fetch_add(1, std::memory_order_relaxed);
    ASSERT_EQ(before, 0) << "item " << it->id << " taken twice";
  };

  std::vector<std::thread> thieves;
  for (int t = 0; t < kThieves; ++t) {
    thieves.emplace_back([&] {
      std::uint64_t mine = 0;
      while (!done.load(std::memory_order_acquire)) {
        if (Item* it = d.steal()) {
          record(it);
          ++mine;
        }
      }
      while (Item* it = d.steal()) {
        record(it);
        ++mine;
      }
      stolen_total.fetch_add(mine, std::memory_order_relaxed);
    });
  }

  std::uint64_t popped = 0;
  std::uint64_t next = 0;
  std::uint64_t burst = 1;
  while (next < n) {
    // Bursts of 1..64 pushes (so the deque often holds one item: the
    // owner-thief race on the last element), then pop about half.
    const std::uint64_t end = std::min(n, next + burst);
    for (; next < end; ++next) d.push(&items[next]);
    for (std::uint64_t k = 0; k < burst / 2 + 1; ++k) {
      if (Item* it = d.pop()) {
        record(it);
        ++popped;
      }
    }
    burst = burst % 64 + 1;
  }
  while (Item* it = d.pop()) {
    record(it);
    ++popped;
  }
  done.store(true, std::memory_order_release);
  for (auto& t : thieves) t.join();

  EXPECT_EQ(popped + stolen_total.load(), n);
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(taken[i].load(), 1) << "item " << i;
  EXPECT_GT(stolen_total.load(), 0u) << "the thieves never won: the test did not race";
  EXPECT_GT(popped, 0u);
}

}  // namespace
}  // namespace beat::sched
