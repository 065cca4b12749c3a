#include "daemon/health_check.hpp"

namespace beat {

HealthCheck::HealthCheck(const sched::Scheduler& scheduler, std::chrono::milliseconds stuck_after)
    : scheduler_(scheduler), stuck_after_(stuck_after) {}

std::vector<HealthCheck::Stuck> HealthCheck::check(Clock::time_point now) {
  const std::uint32_t n = scheduler_.worker_count();
  if (seen_.size() != n) seen_.assign(n, Seen{0, now});
  std::vector<Stuck> stuck;
  for (std::uint32_t i = 0; i < n; ++i) {
    const sched::WorkerStats& s = scheduler_.worker_stats(i);
    // Relaxed: the worker publishes these for readers like us; an old value
    // only delays the verdict by one check.
    const std::uint64_t progress = s.progress.load(std::memory_order_relaxed);
    const bool busy = s.state.load(std::memory_order_relaxed) ==
                      static_cast<std::uint32_t>(sched::WorkerState::kBusy);
    Seen& seen = seen_[i];
    if (!busy || progress != seen.progress) {
      seen.progress = progress;
      seen.since = now;
      continue;
    }
    const auto quiet = std::chrono::duration_cast<std::chrono::milliseconds>(now - seen.since);
    if (stuck_after_.count() != 0 && quiet > stuck_after_) stuck.push_back({i, quiet});
  }
  return stuck;
}

}  // namespace beat
