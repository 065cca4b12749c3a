// HealthCheck: notices stuck workers, for systemd's watchdog (beatd sends
// WATCHDOG=1 only while no worker is stuck; daemon/control_server.cpp).
//
// A worker is stuck when it has been busy (WorkerState::kBusy) for longer
// than `stuck_after` without a sign of life: no job or client task ended,
// and the task it runs did not poll TaskContext::cancelled(), which every
// long-running kernel is asked to do (kernels/kernel.hpp; the plugin ABI's
// beat_cancelled). So a long kernel that polls is healthy however long it
// runs, and one that spins without returning or polling (a kernel bug, a
// deadlock in a plugin) stops the watchdog, and systemd restarts beatd.
//
// The check samples each worker's WorkerStats::progress and state (relaxed
// loads of counters the worker publishes); it keeps, per worker, the last
// progress value and when it was first seen.
//
// Thread-safety: one thread (beatd's control thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "daemon/scheduler/scheduler.hpp"

namespace beat {

class HealthCheck {
 public:
  using Clock = std::chrono::steady_clock;

  struct Stuck {
    std::uint32_t worker;
    std::chrono::milliseconds without_progress;
  };

  // stuck_after == 0 disables the check (no worker is ever stuck).
  HealthCheck(const sched::Scheduler& scheduler, std::chrono::milliseconds stuck_after);

  void set_stuck_after(std::chrono::milliseconds stuck_after) noexcept {
    stuck_after_ = stuck_after;
  }
  std::chrono::milliseconds stuck_after() const noexcept { return stuck_after_; }

  // Samples every worker at `now`; returns the stuck ones, lowest index first.
  std::vector<Stuck> check(Clock::time_point now);

 private:
  struct Seen {
    std::uint64_t progress = 0;
    Clock::time_point since{};  // when this progress value (or non-busy state) was first seen
  };

  const sched::Scheduler& scheduler_;
  std::chrono::milliseconds stuck_after_;
  std::vector<Seen> seen_;
};

}  // namespace beat
