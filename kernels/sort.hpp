// Parallel merge sort of u64 and f32 arrays, forking through a TaskContext:
// the engine of the sort_u64 and sort_f32 kernels (kernels/sort.cpp), and
// callable in-process by a benchmark, on a scheduler or serially with
// TaskContext(nullptr, ...).
//
// Algorithm: recursive merge sort. A range of at most kSortLeafElements is
// a leaf: it is copied (each element read once) into a buffer private to
// the thread, sorted there with Highway's VQSort, and written out. Larger
// ranges split in halves sorted with ctx.join, ping-ponging between `data`
// and `scratch` so that the final merge lands in `data`; merges of more
// than kSortMergeGrain elements split in parallel too (the larger run at
// its middle, the other at the binary-searched position of that element).
//
// Hostile input: `data` may be shared with a process that writes it while
// the sort runs. The result is then some arrangement, maybe unsorted, and
// maybe not a permutation of any one snapshot, but every access stays inside
// data, scratch and the private buffers: every index comes from the sort's
// own counters, and comparisons never steer a loop that trusts them (no
// std::sort over shared memory, whose inconsistent comparisons are UB).
//
// f32 order: IEEE-754 totalOrder on the bit patterns,
//   -NaN < -inf < -finite < -denormal < -0 < +0 < +denormal < +finite < +inf < +NaN
// (NaNs among themselves by payload, negative ones reversed), so every
// input, NaNs included, has exactly one sorted arrangement and the bits of
// each element come back unchanged.
//
// Cost: O(n log n) work. 10^6 random u64 on the development VM (2 cores,
// ad-hoc timing): 19 ms serially (std::sort: 75 ms), 9.5 ms on 2 workers;
// f32 21 ms serially. No allocation except each thread's leaf buffer,
// allocated on the first leaf it runs (kSortLeafElements keys: 128 KiB for
// u64, 64 KiB for f32) and kept for the thread's life. Highway 1.0.3's
// VQSort reads 24 bytes of getrandom(2) per call to seed its pivot
// sampling (the protection against adversarial inputs): one syscall per
// leaf, 0.4 us against a leaf's 55-100 us, which Highway's public API
// offers no way to avoid.
//
// Thread-safety: any thread may call these with the TaskContext of the task
// it runs; concurrent calls must use disjoint data and scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/kernel.hpp"

namespace beat::sort {

// Elements one leaf sorts privately (2^14). Its keys fit L2 with room to
// spare (128 KiB of u64), and VQSort sorts it in about 100 us (u64) and
// 55 us (f32) on the development VM: about one heartbeat (100 us), so a
// leaf delays work sharing little. Each doubling would save one of the
// log2(n / leaf) merge passes but hold a worker twice as long between
// forks; each halving would add one.
inline constexpr std::size_t kSortLeafElements = std::size_t{1} << 14;

// Total elements up to which a merge runs serially (2^14): about 30 us of
// merging (2 ns per u64 element), a fork's cost many times over, and about
// a leaf's time, so both kinds of work share at the same grain.
inline constexpr std::size_t kSortMergeGrain = std::size_t{1} << 14;

enum class SortOutcome : std::uint8_t {
  kSorted,       // data holds its elements in ascending order (see above)
  kCancelled,    // ctx.cancelled() was seen: data and scratch unspecified
  kOutOfMemory,  // a thread could not allocate its leaf buffer: likewise
  kBadScratch,   // data.size() >= 2 and scratch is too small or overlaps
                 // data: nothing was touched
};

// Sorts `data` ascending, in place. `scratch` (needed when data.size() >=
// 2): at least data.size() elements not overlapping data; its contents on
// entry do not matter, on return they are unspecified. Ranges of up to
// kSortLeafElements elements are sorted in one leaf, without touching
// scratch. On kCancelled or kOutOfMemory, data holds a mix of its own and
// scratch's elements.
SortOutcome sort_u64(TaskContext& ctx, std::span<std::uint64_t> data,
                     std::span<std::uint64_t> scratch) noexcept;

// The same for f32, in IEEE-754 totalOrder (see above); compares bit
// patterns, never floating-point values.
SortOutcome sort_f32(TaskContext& ctx, std::span<float> data, std::span<float> scratch) noexcept;

}  // namespace beat::sort
