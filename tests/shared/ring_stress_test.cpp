// Stress tests of shared/ring.hpp's multi-producer reservation (rule 2):
// many producers, batches of 1..17, one consumer that checks every
// (producer, seq) arrives exactly once, intact, and in per-producer order.
// Sizes shrink under ThreadSanitizer or with BEAT_STRESS_DIVISOR (watchdog.hpp).
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
#include "shared/ring.hpp"
#include "tests/shared/ring_under_test.hpp"
#include "tests/support/shared_mapping.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using Ring = test::RingUnderTest<TaskDescriptor>;

constexpr std::uint32_t kEntries = 256;
constexpr std::uint32_t kMaxBatch = 17;
constexpr std::uint32_t kStartIndex = std::numeric_limits<std::uint32_t>::max() - 5000;
constexpr auto kSoftDeadline = std::chrono::seconds(80);

// Producer `p` sends `count` tagged descriptors in batches cycling through
// 1..kMaxBatch (phase-shifted per producer so batch boundaries interleave).
// Returns false if `stop` was raised before it finished.
bool run_producer(const Ring& ring, std::uint32_t p, std::uint32_t count,
                  const std::atomic<bool>& stop) {
  std::uint32_t seq = 0;
  std::uint32_t k = p;
  int full_spins = 0;
  while (seq < count) {
    std::uint32_t n = k % kMaxBatch + 1;
    if (n > count - seq) n = count - seq;
    const std::uint32_t base = seq;
    if (ring.try_produce(
            n, [&](std::uint32_t i) { return test::make_tagged_descriptor(p, base + i); })) {
      seq += n;
      ++k;
      full_spins = 0;
      continue;
    }
    // Full: on 2 cores the consumer may be descheduled, so yield soon.
    if (++full_spins < 64) {
      cpu_relax();
    } else {
      full_spins = 0;
      if (stop.load(std::memory_order_relaxed)) return false;
      std::this_thread::yield();
    }
  }
  return true;
}

// Single consumer: checks order and integrity until `expected_total` entries
// arrived, the first error, or the deadline. Returns "" on success.
std::string run_checking_consumer(const Ring& ring, std::uint32_t producers,
                                  std::uint64_t per_producer) {
  std::vector<std::uint64_t> next(producers, 0);
  const std::uint64_t expected_total = per_producer * producers;
  std::uint64_t received = 0;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + kSoftDeadline;
  int idle = 0;
  while (received < expected_total && error.empty()) {
    const std::optional<std::uint32_t> consumed =
        ring.consume([&](const TaskDescriptor& d, std::uint32_t index) {
          if (!error.empty()) return;
          const auto p = static_cast<std::uint32_t>(d.tag >> 32);
          const auto seq = static_cast<std::uint32_t>(d.tag);
          if (p >= producers) {
            error = "index " + std::to_string(index) + ": unknown producer " + std::to_string(p);
          } else if (!test::is_intact_tagged_descriptor(d)) {
            error = "index " + std::to_string(index) + ": torn descriptor, tag " +
                    std::to_string(d.tag);
          } else if (seq != next[p]) {
            error = "index " + std::to_string(index) + ": producer " + std::to_string(p) + " seq " +
                    std::to_string(seq) + ", expected " + std::to_string(next[p]) +
                    (seq < next[p] ? " (duplicate)" : " (gap or reorder)");
          } else {
            ++next[p];
          }
        });
    if (!consumed)
      return "corrupt ring after " + std::to_string(received) + " entries: tail " +
             std::to_string(ring.indices->tail.value.load()) + ", head " +
             std::to_string(ring.indices->head.value.load());
    const std::uint32_t n = *consumed;
    received += n;
    if (n != 0) {
      idle = 0;
      continue;
    }
    if (++idle < 64) {
      cpu_relax();
    } else {
      idle = 0;
      if (std::chrono::steady_clock::now() > deadline)
        return "timed out after " + std::to_string(received) + " of " +
               std::to_string(expected_total) + " entries";
      std::this_thread::yield();
    }
  }
  if (!error.empty()) return error;
  for (std::uint32_t p = 0; p < producers; ++p)
    if (next[p] != per_producer)
      return "producer " + std::to_string(p) + " delivered " + std::to_string(next[p]) + " of " +
             std::to_string(per_producer);
  if (ring.size() != 0)
    return "extra entries after all expected ones: " + std::to_string(ring.size());
  return "";
}

TEST(RingStress, FourProducerThreadsDeliverExactlyOnceInOrder) {
  test::ScopedWatchdog watchdog("RingStress.FourProducerThreadsDeliverExactlyOnceInOrder", 110);
  constexpr std::uint32_t kProducers = 4;
  const auto per_producer = static_cast<std::uint32_t>(test::stress_size(1'000'000, 1000));
  test::AlignedBlock mem(Ring::bytes_for(kEntries));
  const Ring ring = Ring::place(mem.data(), kEntries, kStartIndex);

  std::atomic<bool> stop{false};
  std::atomic<std::uint32_t> finished{0};  // producers that sent everything
  std::atomic<std::uint32_t> exited{0};    // producers that returned, for any reason
  std::vector<std::thread> producers;
  for (std::uint32_t p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      if (run_producer(ring, p, per_producer, stop))
        finished.fetch_add(1, std::memory_order_relaxed);
      exited.fetch_add(1, std::memory_order_release);
    });
  const std::string error = run_checking_consumer(ring, kProducers, per_producer);
  stop.store(true, std::memory_order_relaxed);
  // After a failure the checker stops draining: keep draining so producers
  // waiting on a full ring observe `stop` and return.
  while (exited.load(std::memory_order_acquire) < kProducers) {
    ring.consume([](const TaskDescriptor&, std::uint32_t) {});
    std::this_thread::yield();
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(finished.load(), kProducers);
  EXPECT_EQ(ring.indices->tail.value.load(), kStartIndex + kProducers * per_producer);
  EXPECT_EQ(ring.indices->reserve.value.load(), kStartIndex + kProducers * per_producer);
}

// The segment case: producers are threads of other processes writing into a
// MAP_SHARED ring. Producer id = child * threads_per_child + thread.
TEST(RingStress, TwoForkedProcessesWithTwoThreadsEachDeliverExactlyOnceInOrder) {
  constexpr std::uint32_t kChildren = 2;
  // Under ThreadSanitizer each child runs one producer thread: the
  // happens-before edge that lets a child thread reuse a slot another thread
  // of the same child wrote runs through the consumer's release of head in
  // *this* process, which TSan cannot see, so two threads per child would be
  // reported as a (false) race on the slot.
  constexpr std::uint32_t kThreadsPerChild = test::kUnderThreadSanitizer ? 1 : 2;
  constexpr std::uint32_t kProducers = kChildren * kThreadsPerChild;
  const auto per_producer = static_cast<std::uint32_t>(test::stress_size(500'000, 1000));
  test::SharedMapping mem(Ring::bytes_for(kEntries));
  const Ring ring = Ring::place(mem.data(), kEntries, kStartIndex);

  std::vector<pid_t> children;
  for (std::uint32_t c = 0; c < kChildren; ++c)
    children.push_back(test::fork_child(100, [&, c] {
      std::atomic<bool> never{false};
      std::atomic<std::uint32_t> ok{0};
      std::vector<std::thread> threads;
      for (std::uint32_t t = 0; t < kThreadsPerChild; ++t)
        threads.emplace_back([&, t] {
          if (run_producer(ring, c * kThreadsPerChild + t, per_producer, never))
            ok.fetch_add(1, std::memory_order_relaxed);
        });
      for (auto& t : threads) t.join();
      return ok.load() == kThreadsPerChild ? 0 : 3;
    }));

  test::ScopedWatchdog watchdog(
      "RingStress.TwoForkedProcessesWithTwoThreadsEachDeliverExactlyOnceInOrder", 110);
  const std::string error = run_checking_consumer(ring, kProducers, per_producer);
  if (!error.empty()) {
    // Producers may be blocked on a full ring forever: do not wait long.
    for (pid_t pid : children) test::wait_child(pid, std::chrono::milliseconds(100));
    FAIL() << error;
  }
  for (pid_t pid : children) EXPECT_EQ(test::wait_child(pid, std::chrono::seconds(10)), 0);
  EXPECT_EQ(ring.indices->tail.value.load(), kStartIndex + kProducers * per_producer);
}

}  // namespace
}  // namespace beat
