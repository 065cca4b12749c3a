// Test support for ring_test.cpp and ring_stress_test.cpp: one ring laid out
// as in the segment (RingIndices, then a power-of-two array of slots) over
// memory the test provides, plain or MAP_SHARED, with the producer and
// consumer steps that ring.hpp's rules prescribe. Producers follow rule 2
// (try_reserve, plain slot writes, commit_in_order); the consumer follows
// rule 3 (acquire tail, copy_entry, release head).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>

#include "shared/protocol.hpp"
#include "shared/ring.hpp"

namespace beat::test {

template <typename Entry>
struct RingUnderTest {
  RingIndices* indices = nullptr;
  Entry* slots = nullptr;
  std::uint32_t entries = 0;
  std::uint32_t mask = 0;

  static constexpr std::size_t bytes_for(std::uint32_t entries) noexcept {
    return sizeof(RingIndices) + std::size_t{entries} * sizeof(Entry);
  }

  // Constructs the indices at `base` (kCacheLine-aligned, bytes_for(entries)
  // bytes) with head = tail = reserve = start_index.
  // REQUIRES: entries is a power of two.
  static RingUnderTest place(void* base, std::uint32_t entries, std::uint32_t start_index) {
    RingUnderTest r;
    r.indices = ::new (base) RingIndices{};
    r.slots = reinterpret_cast<Entry*>(static_cast<std::byte*>(base) + sizeof(RingIndices));
    r.entries = entries;
    r.mask = entries - 1;
    // Relaxed: the ring is not shared yet (threads start / fork happens after).
    r.indices->head.value.store(start_index, std::memory_order_relaxed);
    r.indices->tail.value.store(start_index, std::memory_order_relaxed);
    r.indices->reserve.value.store(start_index, std::memory_order_relaxed);
    return r;
  }

  // Producer (any number concurrently): all-or-nothing publish of n entries,
  // entry i = fill(i). Returns the first index, or nullopt when full.
  template <typename Fill>
  std::optional<std::uint32_t> try_produce(std::uint32_t n, Fill&& fill) const {
    const std::optional<std::uint32_t> start =
        try_reserve(indices->reserve.value, indices->head.value, entries, n);
    if (!start) return std::nullopt;
    for (std::uint32_t i = 0; i < n; ++i) slots[(*start + i) & mask] = fill(i);
    commit_in_order(indices->tail.value, nullptr, *start, n);
    return start;
  }

  // Consumer (one at a time): hands every published entry to sink(entry,
  // index) and frees the slots. Returns how many were consumed, or nullopt
  // (consuming nothing) when tail - head > entries: a corrupt ring, as the
  // daemon treats it (e.g. a tail that moved backwards).
  template <typename Sink>
  std::optional<std::uint32_t> consume(Sink&& sink) const {
    // Relaxed: head is written only by this (the single) consumer.
    const std::uint32_t head = indices->head.value.load(std::memory_order_relaxed);
    // SYNC POINT READ: entries below tail (rule 3 pairs with commit's release).
    const std::uint32_t tail = indices->tail.value.load(std::memory_order_acquire);
    if (tail - head > entries) return std::nullopt;
    for (std::uint32_t i = head; i != tail; ++i) sink(copy_entry(slots, mask, i), i);
    // SYNC POINT WRITE: slots below tail are copied out and may be reused.
    indices->head.value.store(tail, std::memory_order_release);
    return tail - head;
  }

  // Published, unconsumed entries (rule 1), as an observer sees them.
  std::uint32_t size() const noexcept {
    return indices->tail.value.load(std::memory_order_acquire) -
           indices->head.value.load(std::memory_order_acquire);
  }
};

// A kCacheLine-aligned heap block for a ring in plain (process-private) memory.
class AlignedBlock {
 public:
  explicit AlignedBlock(std::size_t bytes)
      : p_(::operator new (bytes, std::align_val_t{kCacheLine})) {}
  ~AlignedBlock() { ::operator delete (p_, std::align_val_t{kCacheLine}); }
  AlignedBlock(const AlignedBlock&) = delete;
  AlignedBlock& operator=(const AlignedBlock&) = delete;
  void* data() const noexcept { return p_; }

 private:
  void* p_;
};

// The descriptor producer `p` sends as its `seq`-th entry. Every word is
// derived from (p, seq) so a torn or stale slot is detected, not just a
// misordered one.
inline TaskDescriptor make_tagged_descriptor(std::uint32_t p, std::uint32_t seq) noexcept {
  TaskDescriptor d{};
  d.tag = (std::uint64_t{p} << 32) | seq;
  d.kernel_id = p;
  d.flags = 0;
  d.data_offset = 0;
  d.data_length = 0;
  d.args[0] = ~d.tag;
  d.args[1] = d.tag * 0x9E3779B97F4A7C15ull;
  d.args[2] = seq;
  d.fingerprint = 0;
  return d;
}

// True when `d` is exactly what make_tagged_descriptor wrote for its tag.
inline bool is_intact_tagged_descriptor(const TaskDescriptor& d) noexcept {
  const auto p = static_cast<std::uint32_t>(d.tag >> 32);
  const auto seq = static_cast<std::uint32_t>(d.tag);
  const TaskDescriptor want = make_tagged_descriptor(p, seq);
  return d.kernel_id == want.kernel_id && d.flags == want.flags &&
         d.data_offset == want.data_offset && d.data_length == want.data_length &&
         d.args[0] == want.args[0] && d.args[1] == want.args[1] && d.args[2] == want.args[2] &&
         d.fingerprint == want.fingerprint;
}

}  // namespace beat::test
