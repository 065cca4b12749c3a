// The problem sizes of the fork-join benchmarks (beat-forkjoin-bench and
// beat-forkjoin-ratios measure the same problems): the full set and the
// reduced --quick set.
#pragma once

#include <cstdint>

#include "kernels/workloads/uts.hpp"

namespace beat::perf::forkjoin {

struct WorkloadSizes {
  unsigned fib;            // n
  unsigned nqueens;        // n
  workloads::UtsTree uts;  // tree
  std::uint64_t skynet;    // leaves
  std::uint64_t matmul;    // n
};

inline constexpr WorkloadSizes kFullWorkloads{35, 12, workloads::UtsTree::kT1, 1'000'000, 1024};
inline constexpr WorkloadSizes kQuickWorkloads{30, 10, workloads::UtsTree::kT1, 100'000, 256};

}  // namespace beat::perf::forkjoin
