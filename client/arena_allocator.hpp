// ArenaAllocator: first-fit free-list allocator over one client's arena.
//
// The arena is a byte range of the client's segment that the daemon never
// allocates in; it only reads the ranges that descriptors name. This class
// hands out sub-ranges of it by offset, so a block can be named in a
// TaskDescriptor (data_offset/data_length) and written through a pointer.
//
// Algorithm: the classic address-ordered first-fit free list with immediate
// coalescing (Knuth, TAOCP vol. 1, 2.5, "Algorithm A" and the liberation
// algorithm with boundary merging). Departures: the free list is a
// std::map keyed by offset instead of an intrusive list stored in the free
// memory itself — the arena is shared with the daemon and written by the
// application, so allocator metadata must not live in it — and every block
// is a multiple of kArenaGranule bytes so that fragments never fall below one
// cache line.
//
// Complexity: allocate O(free ranges) (first fit), release O(log ranges).
// Both allocate map nodes: the arena is set up before the steady state, not
// per task.
//
// Thread-safety: none; the owner serializes calls (beat::Client holds a
// mutex around it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace beat {

// Every block starts on and spans a multiple of this many bytes: one cache
// line, so two blocks never share a line and unaligned fragments never form.
inline constexpr std::uint64_t kArenaGranule = 64;

class ArenaAllocator {
 public:
  // Manages offsets [0, capacity). `base_address` is the address offset 0 is
  // mapped at; alignment is honoured for the address, not only the offset.
  ArenaAllocator(std::uint64_t capacity, std::uintptr_t base_address);

  struct Range {
    std::uint64_t offset = 0;
    std::uint64_t reserved = 0;  // bytes taken from the arena (>= requested)
  };

  // First free range that can hold `bytes` starting at an address aligned to
  // `alignment`. REQUIRES: bytes > 0; alignment a power of two.
  // Returns nullopt when no free range is large enough.
  std::optional<Range> allocate(std::uint64_t bytes, std::uint64_t alignment);

  // Returns the block starting at `offset` to the free list, merging it with
  // free neighbours. Returns false (and changes nothing) when no allocated
  // block starts at `offset` — a double release or a foreign offset.
  bool release(std::uint64_t offset);

  std::uint64_t capacity() const noexcept { return capacity_; }
  std::uint64_t bytes_in_use() const noexcept { return in_use_; }
  // Largest single allocation that could succeed now (alignment 64).
  std::uint64_t largest_free_range() const noexcept;
  std::size_t free_range_count() const noexcept { return free_.size(); }

 private:
  std::uint64_t capacity_;
  std::uintptr_t base_address_;
  std::uint64_t in_use_ = 0;
  std::map<std::uint64_t, std::uint64_t> free_;       // offset -> length, disjoint, never adjacent
  std::map<std::uint64_t, std::uint64_t> allocated_;  // offset -> reserved length
};

}  // namespace beat
