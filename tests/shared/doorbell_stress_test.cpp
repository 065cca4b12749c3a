// Stress test of the needs_wakeup protocol in shared/doorbell.hpp: one-item
// ping-pong for many rounds. The consumer (responder) parks whenever the
// item is not there yet, never spinning; the producer (initiator) spins for
// the answer and publishes the next item at once, so its publish + ring
// lands in the same few hundred nanoseconds as the consumer's flag / fence /
// recheck / futex_wait: the window where a broken protocol loses a wake-up.
// A lost wake-up shows as a futex wait that expires (2 s); any expiry fails
// the test instead of hanging it. Sizes shrink under ThreadSanitizer or with
// BEAT_STRESS_DIVISOR.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>
#include <thread>

#include "shared/doorbell.hpp"
#include "shared/protocol.hpp"
#include "shared/ring.hpp"  // cpu_relax
#include "tests/support/shared_mapping.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

// One direction of the ping-pong: a published counter (the ring index
// stand-in), the payload it publishes, and the doorbell its reader parks on.
struct alignas(kCacheLine) Channel {
  std::atomic<std::uint32_t> published{0};  // written by the sender
  std::uint64_t payload = 0;                // written by the sender before `published`
  Doorbell bell;                            // needs_wakeup: reader; seq: sender
};

struct PingPong {
  Channel ping;  // initiator -> responder
  Channel pong;  // responder -> initiator
};

struct SideStats {
  std::uint64_t parks = 0;     // futex_wait calls
  std::uint64_t rechecks = 0;  // found the item after raising needs_wakeup
  std::uint64_t timeouts = 0;  // futex waits that expired: lost wake-ups
};

// Sender: publish `value` with its payload, then ring (ring.hpp rule 4).
void publish(Channel& ch, std::uint32_t value, std::uint64_t payload) {
  ch.payload = payload;
  // SYNC POINT WRITE: payload (read by the reader after its acquire).
  ch.published.store(value, std::memory_order_release);
  ring_doorbell(ch.bell, 1);
}

// Reader: waits until ch.published == value following the waiter protocol
// in doorbell.hpp, parking at once (no spin) so every round exercises the
// flag/fence/recheck race. Returns false on a stall (a wait that expired).
bool await(Channel& ch, std::uint32_t value, SideStats& stats) {
  const timespec stall_limit{2, 0};
  for (;;) {
    // SYNC POINT READ: payload (pairs with publish's release store).
    if (ch.published.load(std::memory_order_acquire) == value) return true;
    ch.bell.needs_wakeup.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint32_t s = ch.bell.seq.load(std::memory_order_acquire);
    if (ch.published.load(std::memory_order_acquire) == value) {
      ch.bell.needs_wakeup.store(0, std::memory_order_relaxed);
      ++stats.rechecks;
      return true;
    }
    ++stats.parks;
    const bool woke = futex_wait(&ch.bell.seq, s, &stall_limit);
    ch.bell.needs_wakeup.store(0, std::memory_order_relaxed);
    if (!woke) {
      ++stats.timeouts;
      return false;
    }
  }
}

// Producer side waiting for the answer: spins (yielding now and then, for
// when both sides share a CPU). Returns false after `limit` without it.
bool spin_until(Channel& ch, std::uint32_t value, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (std::uint32_t spins = 1;; ++spins) {
    // SYNC POINT READ: payload (pairs with publish's release store).
    if (ch.published.load(std::memory_order_acquire) == value) return true;
    cpu_relax();
    if (spins % 256 == 0) {
      std::this_thread::yield();
      if (std::chrono::steady_clock::now() > deadline) return false;
    }
  }
}

constexpr std::uint64_t payload_of(std::uint32_t round) noexcept {
  return std::uint64_t{round} * 0x9E3779B97F4A7C15ull + 1;
}

// Initiator (producer): ping round r, spin for pong r. Returns "" or what
// went wrong.
std::string run_initiator(PingPong& pp, std::uint32_t rounds) {
  for (std::uint32_t r = 1; r <= rounds; ++r) {
    publish(pp.ping, r, payload_of(r));
    if (!spin_until(pp.pong, r, std::chrono::seconds(5)))
      return "initiator got no pong " + std::to_string(r) + " within 5 s";
    if (pp.pong.payload != ~payload_of(r))
      return "pong " + std::to_string(r) + " carried payload " + std::to_string(pp.pong.payload);
  }
  return "";
}

// Responder (consumer): park for ping r, answer pong r with the
// complemented payload.
std::string run_responder(PingPong& pp, std::uint32_t rounds, SideStats& stats) {
  for (std::uint32_t r = 1; r <= rounds; ++r) {
    if (!await(pp.ping, r, stats))
      return "responder stalled 2 s waiting for ping " + std::to_string(r) + " (lost wake-up)";
    const std::uint64_t p = pp.ping.payload;
    if (p != payload_of(r))
      return "ping " + std::to_string(r) + " carried payload " + std::to_string(p);
    publish(pp.pong, r, ~p);
  }
  return "";
}

TEST(DoorbellStress, NeedsWakeupPingPongBetweenThreadsNeverStalls) {
  test::ScopedWatchdog watchdog("DoorbellStress.NeedsWakeupPingPongBetweenThreadsNeverStalls", 110);
  const auto rounds = static_cast<std::uint32_t>(test::stress_size(100'000, 1000));
  PingPong pp;
  SideStats stats;
  std::string responder_error;
  std::thread responder([&] { responder_error = run_responder(pp, rounds, stats); });
  const std::string initiator_error = run_initiator(pp, rounds);
  responder.join();  // a stalled responder gives up after 2 s by itself
  EXPECT_EQ(responder_error, "");
  EXPECT_EQ(initiator_error, "");
  EXPECT_EQ(stats.timeouts, 0u);
  // The consumer did park: the protocol's slow path was exercised.
  EXPECT_GT(stats.parks, 0u);
  RecordProperty("rounds", std::to_string(rounds));
  RecordProperty("parks", std::to_string(stats.parks));
  RecordProperty("rechecks", std::to_string(stats.rechecks));
  std::printf("rounds=%u consumer parks=%llu rechecks=%llu\n", rounds,
              static_cast<unsigned long long>(stats.parks),
              static_cast<unsigned long long>(stats.rechecks));
}

// Same protocol with the two sides in different processes over MAP_SHARED
// memory, as daemon and client use it.
TEST(DoorbellStress, NeedsWakeupPingPongBetweenProcessesNeverStalls) {
  const auto rounds = static_cast<std::uint32_t>(test::stress_size(50'000, 500));
  test::SharedMapping mem(sizeof(PingPong));
  auto* pp = ::new (mem.data()) PingPong{};
  const pid_t child = test::fork_child(100, [&] {
    SideStats stats;
    return run_responder(*pp, rounds, stats).empty() ? 0 : 20;
  });
  test::ScopedWatchdog watchdog("DoorbellStress.NeedsWakeupPingPongBetweenProcessesNeverStalls",
                                110);
  const std::string error = run_initiator(*pp, rounds);
  EXPECT_EQ(error, "");
  // Exit code 20: the responder stalled (a wait expired).
  EXPECT_EQ(test::wait_child(child, std::chrono::seconds(10)), 0);
}

}  // namespace
}  // namespace beat
