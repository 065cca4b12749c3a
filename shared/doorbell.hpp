// Doorbells: 32-bit words in shared memory that a parked side waits on with
// futex(2), after a bounded spin.
//
// libstdc++'s std::atomic::wait uses private futexes that never wake a
// waiter in another process, so Beat calls futex(2) directly, without
// FUTEX_PRIVATE_FLAG, on a word in the MAP_SHARED segment.
//
// Protocol (ring rule 4 in ring.hpp). Waiter:
//     needs_wakeup.store(1, relaxed);  fence(seq_cst);
//     s = seq.load(acquire);  if (work visible) { clear; return; }
//     futex_wait(&seq, s);
// Notifier, after publishing its ring index:
//     fence(seq_cst);  if (needs_wakeup.load(relaxed)) { seq.fetch_add(1, release);
//     futex_wake(&seq); }
// The two seq_cst fences make it impossible for the waiter to miss the
// published index *and* the notifier to miss the flag (store-buffer
// litmus). A notifier that bumps seq between the waiter's load of seq and
// its futex_wait makes the wait return EAGAIN at once, so no wake-up is lost.
// The flag is an optimisation: when nobody sleeps, publishing costs one
// fence and one load, no syscall.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

#include "shared/protocol.hpp"

namespace beat {

struct alignas(kCacheLine) Doorbell {
  // Set by the side that may sleep, read by the side that publishes.
  std::atomic<std::uint32_t> needs_wakeup{0};
  // Futex word. Bumped by the publisher when needs_wakeup was seen.
  std::atomic<std::uint32_t> seq{0};
  char pad_[kCacheLine - 2 * sizeof(std::atomic<std::uint32_t>)];
};
static_assert(sizeof(Doorbell) == kCacheLine);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "futex(2) operates on a plain 32-bit word");

// futex(FUTEX_WAIT) on a shared (not private) word. Returns when woken, when
// *word != expected at call time, on a signal, or after `timeout` (relative;
// nullptr = forever). Returns true unless the timeout expired.
bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                const struct timespec* timeout = nullptr) noexcept;

// futex(FUTEX_WAKE): wakes up to `count` waiters on `word` in any process.
// Returns how many were woken.
int futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept;

// One word of a multi-word wait.
struct FutexWaitItem {
  std::atomic<std::uint32_t>* word;
  std::uint32_t expected;
};

inline constexpr int kMaxFutexWaitItems = 128;  // FUTEX_WAITV_MAX

// futex_waitv(2) (Linux 5.16+): waits until any of the words is woken or
// differs from its expected value. `timeout_ns` relative, < 0 = forever.
// Returns the index of the woken word, -1 on timeout/EAGAIN/EINTR, and -2
// when the kernel lacks futex_waitv (the caller falls back to a timed wait).
int futex_wait_any(const FutexWaitItem* items, int count, std::int64_t timeout_ns) noexcept;

// Notifier side of the protocol above, after the caller published its index.
// Wakes up to `count` sleepers. Cost when nobody sleeps: one fence, one load.
inline void ring_doorbell(Doorbell& bell, int count) noexcept {
  // SYNC POINT: pairs with the waiter's fence; see the header comment.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (bell.needs_wakeup.load(std::memory_order_relaxed) != 0) {
    // Release: a woken waiter that acquires seq sees our published index.
    bell.seq.fetch_add(1, std::memory_order_release);
    futex_wake(&bell.seq, count);
  }
}

}  // namespace beat
