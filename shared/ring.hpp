// Bounded rings in shared memory: the submission ring (SQ, client -> daemon)
// and the completion ring (CQ, daemon -> client) are both instances of this.
//
// Ring rules (io_uring's, plus a multi-producer reservation from DPDK's
// rte_ring "MP enqueue"):
//
//  1. Indices are free-running 32-bit counters; slot = index & (entries - 1).
//     entries is a power of two, so wrap-around is exact and costs a mask.
//     tail - head (unsigned) is the number of published, unconsumed entries.
//  2. Producers first *reserve* n slots by CAS on a reserve counter
//     (reserve - head <= entries keeps them off unconsumed slots), write the
//     entries with plain stores, then *commit* in reservation order: wait
//     until tail == their start, then store tail = start + n with RELEASE.
//     The release store publishes the entry writes of this producer and,
//     transitively (each committer acquired the previous tail), of all
//     earlier ones.
//  3. The single consumer loads tail with ACQUIRE (pairs with rule 2's
//     release: entries below tail are fully written), copies entries out,
//     then stores head with RELEASE (pairs with the producers' acquire load
//     of head in try_reserve: the copies are done before the slots are
//     reused).
//  4. A side that may sleep sets a needs-wakeup flag, then issues a full
//     fence and re-checks the ring before waiting; a side that publishes
//     stores its index, issues a full fence, then reads the flag (Dekker).
//     See doorbell.hpp.
//
//  5. CQ only: each completion also carries seq = its index + 1, stored
//     with RELEASE after the entry's other fields. The client may treat
//     "slot[head].seq == head + 1" (ACQUIRE load) as "entry head is ready"
//     without reading cq.tail; entries may then become visible slightly
//     ahead of tail, never out of their slots. cq.tail is still published
//     for waiters (rule 4) and tools.
//
// Trust: in the SQ the reserve counter, tail and entries are written by the
// client; the daemon never spins on them, never reads an entry twice and
// treats tail - head > entries as a corrupt ring. In the CQ the daemon keeps
// its reserve and commit counters in its own memory (CompletionProducer) and
// only mirrors tail into the segment, so a client cannot stall a worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <thread>

#include "shared/protocol.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace beat {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// A spinning waiter yields the CPU this often, so that on a machine with
// more runnable threads than cores the thread it waits for gets to run
// within microseconds instead of after the spinner's whole time slice.
// One sched_yield costs ~0.3 us; at one per 10 us a task that arrives
// during it is delayed that much ~3% of the time. Chosen on the 2-core
// machine with beatctl bench --clients 2 --threads 2 (perf/RESULTS.md).
inline constexpr std::chrono::microseconds kSpinYieldInterval{10};

// Spin-wait helper: call poll() until it returns true or `until` passes,
// relaxing the CPU and yielding every kSpinYieldInterval. Returns poll()'s
// last value.
template <typename Clock, typename Poll>
inline bool polite_spin(typename Clock::time_point until, Poll&& poll) {
  auto next_yield = Clock::now() + kSpinYieldInterval;
  for (;;) {
    if (poll()) return true;
    const auto now = Clock::now();
    if (now >= until) return false;
    if (now >= next_yield) {
      std::this_thread::yield();
      next_yield = now + kSpinYieldInterval;
    } else {
      cpu_relax();
    }
  }
}

// One 32-bit index alone on its cache line: the writer side named at each
// use never shares a line with the other side's index.
struct alignas(kCacheLine) PaddedIndex {
  std::atomic<std::uint32_t> value{0};
  char pad_[kCacheLine - sizeof(std::atomic<std::uint32_t>)];
};
static_assert(sizeof(PaddedIndex) == kCacheLine);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "ring indices live in shared memory: they must be lock-free");

// The indices of one ring, as laid out in the segment.
struct RingIndices {
  PaddedIndex head;     // written by the consumer only
  PaddedIndex tail;     // written by committing producers only
  PaddedIndex reserve;  // SQ: CAS'd by client producers. CQ: unused (daemon-private).
};
static_assert(offsetof(RingIndices, tail) - offsetof(RingIndices, head) == kCacheLine,
              "head and tail must be a cache line apart to prevent false sharing");

// Spins this many pauses waiting for an earlier producer's commit before
// yielding the CPU (the earlier producer may be preempted: on 2 cores a
// pure spin can burn a whole quantum).
inline constexpr int kCommitSpinsBeforeYield = 256;

// Memory order of a successful reservation CAS. The slots alone would need
// only acquire (head's acquire load already ordered us after the consumer),
// but in the SQ the reservation is one half of a Dekker handshake with the
// daemon's shutdown: the client reserves, then loads daemon_state; the daemon
// stores daemon_state, then loads reserve (segment_layout.hpp, DaemonState).
// Both sides' accesses must be in the single seq_cst order so that at least
// one sees the other. On x86 a locked cmpxchg is a full barrier either way.
inline constexpr std::memory_order kReservationOrder = std::memory_order_seq_cst;

// Multi-producer reservation (rule 2). `reserve` may be shared or private
// memory; `head` is the consumer's published head.
// Returns the first reserved index, or nullopt when fewer than n slots are free.
// Thread-safety: any number of producers concurrently.
[[nodiscard]] inline std::optional<std::uint32_t> try_reserve(
    std::atomic<std::uint32_t>& reserve, const std::atomic<std::uint32_t>& head,
    std::uint32_t entries, std::uint32_t n) noexcept {
  // Relaxed: the CAS below validates the value we computed from.
  std::uint32_t start = reserve.load(std::memory_order_relaxed);
  for (;;) {
    // SYNC POINT READ: head (rule 3) — slots below head have been copied out
    // by the consumer, so overwriting them after this acquire is safe.
    const std::uint32_t h = head.load(std::memory_order_acquire);
    if (static_cast<std::uint32_t>(start - h) > entries) {
      // Our reserve snapshot is older than head: reload and retry. Reserve
      // only grows and head <= reserve in an intact ring, so an unchanged
      // reload means the indices are corrupt: refuse rather than spin.
      const std::uint32_t again = reserve.load(std::memory_order_relaxed);
      if (again == start) return std::nullopt;
      start = again;
      continue;
    }
    if (entries - static_cast<std::uint32_t>(start - h) < n) return std::nullopt;
    // seq_cst on success: the reservation is the client's write in the
    // shutdown handshake (kReservationOrder). Relaxed on failure: we retry.
    if (reserve.compare_exchange_weak(start, start + n, kReservationOrder,
                                      std::memory_order_relaxed))
      return start;
    cpu_relax();
  }
}

// try_reserve for producers that cache the consumer's head (rigtorp's
// SPSCQueue habit): space is checked against `cached_head` and head itself is
// loaded only when the cache says the ring is too full. In the common case
// the consumer's head line is then never pulled into the producer's cache,
// so neither side's index line bounces between cores on every batch.
// `cached_head` is producer-private memory shared by all producers.
// Thread-safety: any number of producers concurrently.
[[nodiscard]] inline std::optional<std::uint32_t> try_reserve_cached(
    std::atomic<std::uint32_t>& reserve, const std::atomic<std::uint32_t>& head,
    std::atomic<std::uint32_t>& cached_head, std::uint32_t entries, std::uint32_t n) noexcept {
  // Acquire: the producer that refreshed the cache acquired head from the
  // consumer and released it here, so slots below it are free for us too
  // (happens-before is transitive through the cache).
  std::uint32_t h = cached_head.load(std::memory_order_acquire);
  std::uint32_t start = reserve.load(std::memory_order_relaxed);
  bool refreshed = false;
  for (;;) {
    const std::uint32_t used = start - h;
    if (used > entries || entries - used < n) {
      if (refreshed) {
        if (used <= entries) return std::nullopt;  // genuinely full
        // Head is past our reserve snapshot: reload it; an unchanged reload
        // means corrupt indices (see try_reserve).
        const std::uint32_t again = reserve.load(std::memory_order_relaxed);
        if (again == start) return std::nullopt;
        start = again;
        continue;
      }
      // SYNC POINT READ: head (rule 3), then publish it to the other producers.
      h = head.load(std::memory_order_acquire);
      cached_head.store(h, std::memory_order_release);
      refreshed = true;
      continue;
    }
    // seq_cst on success: see kReservationOrder.
    if (reserve.compare_exchange_weak(start, start + n, kReservationOrder,
                                      std::memory_order_relaxed))
      return start;
    cpu_relax();
  }
}

// In-order commit (rule 2). `commit_counter` is the word producers order on;
// `published` (may be the same word) is what the consumer reads.
// Thread-safety: each reservation commits exactly once, from its producer.
inline void commit_in_order(std::atomic<std::uint32_t>& commit_counter,
                            std::atomic<std::uint32_t>* published, std::uint32_t start,
                            std::uint32_t n) noexcept {
  int spins = 0;
  // Acquire: we follow the earlier producer's commit, so our release below
  // republishes its entries too (consumers acquire only the latest tail).
  while (commit_counter.load(std::memory_order_acquire) != start) {
    if (++spins < kCommitSpinsBeforeYield) {
      cpu_relax();
    } else {
      spins = 0;
      std::this_thread::yield();
    }
  }
  // SYNC POINT WRITE: entries [start, start+n) (rule 2).
  if (published != nullptr && published != &commit_counter)
    published->store(start + n, std::memory_order_release);
  commit_counter.store(start + n, std::memory_order_release);
}

// Copies entry `index` out of a ring whose slots may be concurrently
// scribbled on by a hostile peer. One memcpy, so the caller validates a
// private copy; volatile-free because the caller never rereads the slot.
template <typename Entry>
inline Entry copy_entry(const Entry* slots, std::uint32_t mask, std::uint32_t index) noexcept {
  Entry e;
  std::memcpy(&e, &slots[index & mask], sizeof(Entry));
  return e;
}

constexpr bool is_power_of_two(std::uint64_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace beat
