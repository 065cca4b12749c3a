// The median the fork-join benchmarks report (beat-forkjoin-bench's
// "seconds", beat-forkjoin-ratios' times and per-round ratios).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace beat::perf::forkjoin {

// The middle value of `v`, or the mean of the middle two for an even count.
// REQUIRES: v is not empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

}  // namespace beat::perf::forkjoin
