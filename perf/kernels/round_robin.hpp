// RoundRobin: how beat-kernels-bench times the variants of one question
// (a kernel's SIMD form, its scalar form, its peers, and the bandwidth
// references) so that a noisy host slows every side of a ratio alike.
//
// This VM has minute-long spells in which everything runs about 2x slower
// (perf/RESULTS.md, issue #4). Timing each variant in a block of its own
// would put some variants inside a spell and others outside; instead every
// round runs every variant once, in an order rotated by one each round
// (so none is always first after a cold start), and a ratio is taken per
// round, between variants measured a few hundred milliseconds apart, then
// its median over the rounds is reported.
//
// One sample of a variant is `calls` back-to-back calls of it, timed with
// steady_clock; the sample's time per call is what a round records.
// `calls` is chosen once per variant by an untimed warm-up call (which
// also faults in pages and fills caches): the smallest count whose sample
// lasts at least min_sample, so that in-cache sizes are not timed one
// 10-microsecond call at a time, while out-of-cache sizes run one call per
// sample. A variant's `prepare` (restoring a sort's input, say) runs before
// every call and its `verify` (checking the call's result) after it, both
// outside the timed span; the clock is then read around each call (two
// reads, ~50 ns, against calls of at least tens of microseconds).
//
// Thread-safety: one thread (the benchmark's main thread).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace beat::perf::kernels {

struct Variant {
  std::string name;               // "simd", "scalar", "copy", ...
  std::function<void()> run;      // one call of the variant
  std::function<void()> prepare;  // untimed, before each call; may be empty
  std::function<void()> verify;   // untimed, after each call; may be empty
};

// Seconds per call of each variant in each round: seconds[v][round].
struct RoundTimes {
  std::vector<std::string> names;
  std::vector<std::size_t> calls;  // calls per sample, per variant
  std::vector<std::vector<double>> seconds;

  // The index of the variant called `name`. Throws std::logic_error when
  // there is none (a programming error of the benchmark).
  std::size_t index(const std::string& name) const {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) throw std::logic_error("round robin: no variant named " + name);
    return static_cast<std::size_t>(it - names.begin());
  }
};

// The middle value of `v`, or the mean of the middle two for an even count.
// REQUIRES: v is not empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

// Median over the rounds of rate(of) / rate(over), where a variant's rate
// in a round is its work per call (bytes, flops: `work_of`, `work_over`)
// over its seconds per call in that round. With equal work: how many times
// faster `of` ran than `over` in the same round (> 1: `of` is faster).
inline double median_rate_ratio(const RoundTimes& t, const std::string& of, double work_of,
                                const std::string& over, double work_over) {
  const std::vector<double>& a = t.seconds[t.index(of)];
  const std::vector<double>& b = t.seconds[t.index(over)];
  std::vector<double> ratios;
  for (std::size_t r = 0; r < a.size(); ++r)
    ratios.push_back((work_of / a[r]) / (work_over / b[r]));
  return median(ratios);
}

// Runs `variants` for `rounds` rounds after one warm-up call each (see the
// file comment). REQUIRES: rounds >= 1, variants not empty.
inline RoundTimes run_round_robin(const std::vector<Variant>& variants, unsigned rounds,
                                  std::chrono::duration<double> min_sample) {
  using Clock = std::chrono::steady_clock;
  // Calls of one variant per sample at most: bounds a sample of a variant
  // so fast that its warm-up call measured next to nothing.
  constexpr double kMaxCalls = 1e6;
  RoundTimes t;
  for (const Variant& v : variants) {
    if (v.prepare) v.prepare();
    const Clock::time_point start = Clock::now();
    v.run();
    const double once = std::chrono::duration<double>(Clock::now() - start).count();
    if (v.verify) v.verify();
    const double want = std::ceil(min_sample.count() / std::max(once, 1e-9));
    t.names.push_back(v.name);
    t.calls.push_back(static_cast<std::size_t>(std::clamp(want, 1.0, kMaxCalls)));
    t.seconds.emplace_back();
  }
  for (unsigned round = 0; round < rounds; ++round) {
    for (std::size_t k = 0; k < variants.size(); ++k) {
      const std::size_t v = (k + round) % variants.size();
      const Variant& var = variants[v];
      const std::size_t calls = t.calls[v];
      double seconds = 0;
      if (var.prepare || var.verify) {
        for (std::size_t i = 0; i < calls; ++i) {
          if (var.prepare) var.prepare();
          const Clock::time_point start = Clock::now();
          var.run();
          seconds += std::chrono::duration<double>(Clock::now() - start).count();
          if (var.verify) var.verify();
        }
      } else {
        const Clock::time_point start = Clock::now();
        for (std::size_t i = 0; i < calls; ++i) var.run();
        seconds = std::chrono::duration<double>(Clock::now() - start).count();
      }
      t.seconds[v].push_back(seconds / static_cast<double>(calls));
    }
  }
  return t;
}

}  // namespace beat::perf::kernels
