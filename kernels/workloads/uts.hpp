// uts: the Unbalanced Tree Search benchmark (Olivier, Huan, Liu, Prins,
// Dinan, Sadayappan, Tseng, "UTS: An Unbalanced Tree Search Benchmark",
// LCPC 2006; reference code uts-1.1 from sourceforge.net/projects/uts-benchmark).
// It counts the nodes of a tree that is generated as it is searched: each
// node's 20-byte state is a SHA-1 digest, a child's state is the SHA-1 of its
// parent's state and its child index, and the number of children follows
// from the state. The shape is unknowable in advance, which makes UTS a test
// of dynamic load balancing.
//
// The RNG is UTS's rng/brg_sha1.c, bit for bit (uts.cpp, using nettle's
// SHA-1):
//   rng_init(seed)     = SHA1(16 zero bytes || seed as 4 bytes big-endian)
//   rng_spawn(state,i) = SHA1(state (20 bytes) || i as 4 bytes big-endian)
//   rng_rand(state)    = big-endian uint32 of state bytes 16..19, & 0x7fffffff
//   to_prob(r)         = r / 2^31
// Tree rules, as uts.c's uts_numChildren for the two standard trees below:
//   GEO (T1): numChildren = (int) floor(log(1 - u) / log(1 - p)) with
//     u = to_prob(rng_rand(state)), p = 1 / (1 + b_i); shape FIXED:
//     b_i = b_0 if height < gen_mx, else 0 (no children); capped at
//     MAXNUMCHILDREN = 100.
//   BIN (T3): the root has floor(b_0) children; any other node has m
//     children if to_prob(rng_rand(state)) < q, else none.
//   Child i (0-based) of a node has state rng_spawn(node, i) and height
//   node's height + 1; the root has height 0.
//
// Parallelism: a node's children [0, k) are split in halves recursively,
// each split one ex.join, until one child remains; counts combine by value.
// There are no per-level arrays and a frame holds at most one 20-byte
// state, but T3 is 1572 levels deep with (1 + log2 8) frames per level, so a
// serial search of T3 needs about 1 MiB of stack in a release build (GCC 12:
// 160-byte frames; 896 KiB fails, 1 MiB suffices), 2 MiB under TSan and 6 MiB
// in the asan preset (-O0 with redzones). Run it on threads with glibc's
// default 8 MiB stack, or at least these sizes. T1 is 10 levels deep.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "kernels/workloads/fork_join.hpp"

namespace beat::workloads {

// The two standard UTS trees used by Beat's benchmarks (uts-1.1 sample_trees.sh).
enum class UtsTree {
  kT1,  // -t 1 -a 3 -d 10 -b 4 -r 19: geometric, fixed shape; ~4.1 M nodes, depth 10
  kT3,  // -t 0 -b 2000 -q 0.124875 -m 8 -r 42: binomial; ~4.1 M nodes, depth 1572
};

// What a search of a tree found.
struct UtsCount {
  std::uint64_t nodes = 0;      // every node, the root included
  std::uint64_t leaves = 0;     // nodes without children
  std::uint32_t max_depth = 0;  // greatest height; the root has height 0

  friend bool operator==(const UtsCount&, const UtsCount&) = default;
};

// The counts published with UTS for each tree (the reference
// implementation's output): T1 4,130,071 nodes, 3,305,118 leaves, depth 10;
// T3 4,112,897 nodes, 3,599,034 leaves, depth 1572.
UtsCount uts_known(UtsTree tree);

namespace detail {

inline constexpr std::size_t kUtsStateBytes = 20;  // one SHA-1 digest

// A node's RNG state (UTS's RNG_state).
struct UtsState {
  std::array<std::uint8_t, kUtsStateBytes> bytes;
};

// The root's state: rng_init(seed of `tree`). Defined in uts.cpp.
UtsState uts_root_state(UtsTree tree);

// rng_spawn(parent, child_index). Defined in uts.cpp.
UtsState uts_spawn(const UtsState& parent, std::uint32_t child_index);

// The number of children of the node with `state` at `height` in `tree`,
// by the rules in the header comment. Defined in uts.cpp.
std::uint32_t uts_num_children(UtsTree tree, const UtsState& state, std::uint32_t height);

constexpr UtsCount uts_combine(const UtsCount& a, const UtsCount& b) {
  return {a.nodes + b.nodes, a.leaves + b.leaves,
          a.max_depth > b.max_depth ? a.max_depth : b.max_depth};
}

template <ForkJoinExecutor Ex>
UtsCount uts_subtree(Ex& ex, UtsTree tree, const UtsState& state, std::uint32_t height);

// Counts the subtrees of children [first, last) of `parent`, whose children
// have height `child_height`. REQUIRES: first < last.
template <ForkJoinExecutor Ex>
UtsCount uts_children(Ex& ex, UtsTree tree, const UtsState& parent, std::uint32_t child_height,
                      std::uint32_t first, std::uint32_t last) {
  if (last - first == 1) {
    const UtsState child = uts_spawn(parent, first);
    return uts_subtree(ex, tree, child, child_height);
  }
  const std::uint32_t middle = first + (last - first) / 2;
  UtsCount low;
  UtsCount high;
  ex.join([&](auto& e) { low = uts_children(e, tree, parent, child_height, first, middle); },
          [&](auto& e) { high = uts_children(e, tree, parent, child_height, middle, last); });
  return uts_combine(low, high);
}

// Counts the subtree rooted at the node with `state` at `height`.
template <ForkJoinExecutor Ex>
UtsCount uts_subtree(Ex& ex, UtsTree tree, const UtsState& state, std::uint32_t height) {
  const std::uint32_t children = uts_num_children(tree, state, height);
  if (children == 0) return {1, 1, height};
  const UtsCount below = uts_children(ex, tree, state, height + 1, 0, children);
  return {below.nodes + 1, below.leaves, below.max_depth};
}

}  // namespace detail

// Searches the whole of `tree` and counts it; the result equals
// uts_known(tree) (the tests check that, which validates the RNG and rules).
// Complexity: one SHA-1 per node (~4.1 M for T1 and T3) and one join per
// inner child-range split.
template <ForkJoinExecutor Ex>
UtsCount uts(Ex& ex, UtsTree tree) {
  const detail::UtsState root = detail::uts_root_state(tree);
  return detail::uts_subtree(ex, tree, root, 0);
}

}  // namespace beat::workloads
