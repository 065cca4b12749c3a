// nqueens: counts every placement of n non-attacking queens on an n x n
// board (BOTS "nqueens", Duran et al., ICPP 2009), one parallel_for per row.
//
// The board so far travels by value as three bitmasks (occupied columns and
// the two diagonal directions, shifted one column per row), so a child copies
// 12 bytes, not a board. Each row's parallel_for runs over all n columns with
// grain 1 (a blocked column returns 0 at once, as in BOTS); each child writes
// its count into its own slot of a local array that the parent sums after the
// loop, so no atomics and no shared counters.
//
// Valid n: 1..kNqueensMaxN (16). nqueens(16) takes minutes on one core.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "kernels/workloads/fork_join.hpp"

namespace beat::workloads {

inline constexpr unsigned kNqueensMaxN = 16;

constexpr bool nqueens_valid_n(std::uint64_t n) { return n >= 1 && n <= kNqueensMaxN; }

namespace detail {

// Solutions that extend a board whose filled rows are the set bits of
// `cols`; diag_left/diag_right hold the columns attacked in the current row
// by queens above, along each diagonal. `all` has the low n bits set.
template <ForkJoinExecutor Ex>
std::uint64_t nqueens_row(Ex& ex, unsigned n, std::uint32_t all, std::uint32_t cols,
                          std::uint32_t diag_left, std::uint32_t diag_right) {
  if (cols == all) return 1;
  const std::uint32_t attacked = cols | diag_left | diag_right;
  // Slots [0, n) are each written exactly once by the loop below.
  std::array<std::uint64_t, kNqueensMaxN> counts;
  ex.parallel_for(0, n, 1, [&](auto& e, std::uint64_t column) {
    const std::uint32_t bit = std::uint32_t{1} << column;
    counts[column] = (attacked & bit) != 0
                         ? 0
                         : nqueens_row(e, n, all, cols | bit, ((diag_left | bit) << 1) & all,
                                       (diag_right | bit) >> 1);
  });
  std::uint64_t total = 0;
  for (unsigned column = 0; column < n; ++column) total += counts[column];
  return total;
}

}  // namespace detail

// The number of solutions of the n-queens problem.
// REQUIRES: nqueens_valid_n(n).
// Complexity: exponential in n; stack depth n; n parallel_for calls per
// visited partial board.
template <ForkJoinExecutor Ex>
std::uint64_t nqueens(Ex& ex, unsigned n) {
  const std::uint32_t all = (std::uint32_t{1} << n) - 1;
  return detail::nqueens_row(ex, n, all, 0, 0, 0);
}

// The published solution counts (OEIS A000170) for n = 1..16; nullopt for
// any other n.
inline std::optional<std::uint64_t> nqueens_known(unsigned n) {
  constexpr std::array<std::uint64_t, kNqueensMaxN + 1> kKnown = {
      0,  // n = 0 is not a valid size
      1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712, 365596, 2279184, 14772512};
  if (!nqueens_valid_n(n)) return std::nullopt;
  return kKnown[n];
}

}  // namespace beat::workloads
