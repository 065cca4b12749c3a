// skynet: the "skynet" micro-benchmark (github.com/atemerev/skynet): a tree
// in which every inner node spawns 10 children and sums their results, each
// leaf returns its own number. With `leaves` leaves numbered 0..leaves-1 the
// total is leaves*(leaves-1)/2 (10^6 leaves: 499999500000, 1,111,111 nodes).
//
// Each inner node spawns its 10 children with one parallel_for (grain 1);
// each child writes its sum into its own slot of a local array that the
// parent adds up afterwards (no atomics).
//
// Valid leaves: a power of ten, 10^0..10^8 (skynet_valid_leaves).
#pragma once

#include <array>
#include <cstdint>

#include "kernels/workloads/fork_join.hpp"

namespace beat::workloads {

inline constexpr std::uint64_t kSkynetFanout = 10;
inline constexpr std::uint64_t kSkynetMaxLeaves = 100'000'000;  // 10^8

// True iff leaves is 10^k for some k in 0..8.
constexpr bool skynet_valid_leaves(std::uint64_t leaves) {
  for (std::uint64_t p = 1; p <= kSkynetMaxLeaves; p *= kSkynetFanout) {
    if (leaves == p) return true;
  }
  return false;
}

// The known total: the sum 0 + 1 + ... + (leaves - 1).
// REQUIRES: skynet_valid_leaves(leaves).
constexpr std::uint64_t skynet_reference(std::uint64_t leaves) { return leaves * (leaves - 1) / 2; }

namespace detail {

// Sum of the leaves num .. num + size - 1 of the subtree of `size` leaves.
template <ForkJoinExecutor Ex>
std::uint64_t skynet_node(Ex& ex, std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t child_size = size / kSkynetFanout;
  // Each slot is written exactly once by the loop below.
  std::array<std::uint64_t, kSkynetFanout> sums;
  ex.parallel_for(0, kSkynetFanout, 1, [&](auto& e, std::uint64_t i) {
    sums[i] = skynet_node(e, num + i * child_size, child_size);
  });
  std::uint64_t total = 0;
  for (const std::uint64_t s : sums) total += s;
  return total;
}

}  // namespace detail

// The sum over a skynet tree of `leaves` leaves; equals
// skynet_reference(leaves).
// REQUIRES: skynet_valid_leaves(leaves).
// Complexity: (10 * leaves - 1) / 9 nodes, one parallel_for per inner node;
// stack depth log10(leaves).
template <ForkJoinExecutor Ex>
std::uint64_t skynet(Ex& ex, std::uint64_t leaves) {
  return detail::skynet_node(ex, 0, leaves);
}

}  // namespace beat::workloads
