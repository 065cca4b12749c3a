// Scheduler: a pool of work-stealing workers, one pinned per core.
//
// Each worker owns a Chase-Lev deque (chase_lev_deque.hpp) and a private
// frame stack (worker.hpp: fork-join with heartbeat promotion). A worker
// with nothing to do, in this order: asks the WorkSource (beatd's client
// rings) for work, takes an injected root (run()), makes one steal round
// through the StealPolicy, and otherwise spins for idle_spin_us, raising
// the heartbeat of a busy worker once per heartbeat interval, then parks on
// a futex (plus the WorkSource's doorbells, with one futex_waitv).
//
// Wake-ups ("exactly as many workers as can use the work"): pushing a job
// wakes one parked worker only when no worker is searching (spinners_ == 0),
// and a thief that leaves more jobs behind wakes the next one the same way.
// No lost wake-up (store-buffering pair, both sides seq_cst):
//   pusher: push (release of bottom); fence; read sleepers_, spinners_.
//   parker: sleepers_++, spinners_--; fence; re-check every deque, the
//           injection queue and the WorkSource; then sleep on wake_seq_,
//           whose value was read before the re-check.
// Either the pusher sees the parker counted, or the parker sees the job.
//
// Thread-safety: construct, start(), stop(), set_*() on one control thread;
// run() from any thread that is not a worker; stats() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "daemon/scheduler/steal_policy.hpp"
#include "daemon/scheduler/work_source.hpp"
#include "daemon/scheduler/worker.hpp"
#include "daemon/topology.hpp"
#include "shared/ring.hpp"
#include "shared/status.hpp"

namespace beat::sched {

struct SchedulerOptions {
  std::uint32_t workers = 0;  // 0 = one per allowed core (topology)
  bool pin = true;
  std::uint32_t heartbeat_us = 100;
  std::uint32_t idle_spin_us = 100;
  StealPolicyKind policy = StealPolicyKind::kTopology;
  std::uint32_t steal_attempts_per_level = 2;
  // Run forks below a self-tuned depth as inline subtrees (worker.hpp);
  // off: every fork of a generic callable records a frame too.
  bool inline_forks = true;
};

// Sums over workers (see WorkerStats for each field).
struct SchedulerStats {
  std::uint64_t jobs_run = 0;
  std::uint64_t spawns = 0;
  std::uint64_t inline_runs = 0;
  std::uint64_t promotions = 0;
  std::uint64_t steal_attempts = 0;
  std::uint64_t steals = 0;
  std::uint64_t parks = 0;
  std::uint64_t busy_ns = 0;
  std::uint64_t idle_ns = 0;
  std::uint64_t parked_ns = 0;
};

struct WorkerPlacement {
  std::uint32_t index;
  std::uint32_t core;   // logical index among allowed cores
  std::uint32_t os_pu;  // OS index of the PU it is pinned to
  bool pinned;
};

class Scheduler {
 public:
  // `source` (may be null) must outlive the scheduler.
  Scheduler(const SchedulerOptions& options, const Topology& topology,
            WorkSource* source = nullptr);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Starts and pins the workers; returns once every worker is running.
  Status start();
  // Stops and joins every worker (work in progress finishes first; a worker
  // waiting on a join keeps helping until it completes). Idempotent.
  // Statistics stay readable until destruction.
  void stop();

  // Runs root(w) on a worker and blocks the calling thread (which must not
  // be a worker) until it returned; rethrows its exception. Throws
  // std::logic_error after stop(); a root still queued when stop() runs
  // fails with std::runtime_error.
  template <class F>
  void run(F&& root);

  // Wakes every parked worker (e.g. a new doorbell to wait on, shutdown).
  void wake_all() noexcept;
  // Work became available that a parked worker could take (any thread,
  // after publishing it): wakes one parked worker unless one is searching.
  void wake_if_unattended() noexcept;

  void set_idle_spin_us(std::uint32_t us) noexcept {
    // Relaxed: a tuning knob picked up at the next idle period.
    idle_spin_ns_.store(std::int64_t{us} * 1000, std::memory_order_relaxed);
  }
  void set_heartbeat_us(std::uint32_t us) noexcept {
    // Relaxed: read at the next heartbeat decision.
    heartbeat_ns_.store(std::int64_t{us} * 1000, std::memory_order_relaxed);
  }

  std::uint32_t worker_count() const noexcept {
    return static_cast<std::uint32_t>(placements_.size());
  }
  const std::vector<WorkerPlacement>& placements() const noexcept { return placements_; }
  // The steal policy in force. Any thread. Acquire: pairs with
  // set_steal_policy's release, so the policy is seen fully built.
  const StealPolicy& policy() const noexcept { return *policy_.load(std::memory_order_acquire); }
  // Control thread: builds a policy and makes it the one workers use from
  // their next steal round (a round in progress finishes with the old one).
  // Replaced policies stay alive until the scheduler is destroyed, so no
  // worker is left holding a freed one; SIGHUPs are rare.
  void set_steal_policy(StealPolicyKind kind, std::uint32_t attempts_per_level);
  // Racy snapshots of each worker's stealable jobs and state (any thread).
  const LoadView& loads() const noexcept { return *loads_; }
  // Any thread, after start() returned.
  const WorkerStats& worker_stats(std::uint32_t i) const noexcept { return workers_[i]->stats(); }
  // Any thread: sums, including the state periods in progress.
  SchedulerStats stats() const noexcept;
  // Busy, idle and parked ns of one worker including the period in progress.
  void worker_times(std::uint32_t i, std::uint64_t& busy, std::uint64_t& idle,
                    std::uint64_t& parked) const noexcept;
  std::uint32_t parked_workers() const noexcept {
    return sleepers_.load(std::memory_order_relaxed);
  }
  // Any thread: workers searching for work or parked, a hint for sizing
  // work (relaxed loads of two counters; may be a moment old).
  std::uint32_t idle_workers() const noexcept {
    return spinners_.load(std::memory_order_relaxed) + sleepers_.load(std::memory_order_relaxed);
  }

 private:
  friend class Worker;
  class Loads;

  void worker_main(std::uint32_t index);
  void park(Worker& w);
  bool work_visible() const noexcept;
  void inject(Job* job);
  Job* take_injected() noexcept;
  // Wakes run() callers after an injected root's done store.
  void root_done() noexcept;
  void wait_root(Job& job) noexcept;
  void wake_one() noexcept;

  const SchedulerOptions options_;
  const Topology& topology_;
  WorkSource* const source_;
  std::vector<WorkerPlacement> placements_;
  std::vector<std::unique_ptr<StealPolicy>> policies_;  // every one built (control thread)
  std::atomic<const StealPolicy*> policy_{nullptr};     // the last of them
  std::vector<std::uint32_t> pus_;                      // worker i's OS PU, for policies
  std::unique_ptr<LoadView> loads_;
  std::vector<std::thread> threads_;
  // Slot i is written once by worker i's thread before start() returns
  // (published through ready_'s release sequence and go_).
  std::unique_ptr<Worker*[]> workers_;

  alignas(kCacheLine) std::atomic<std::uint32_t> spinners_{0};  // searching for work
  alignas(kCacheLine) std::atomic<std::uint32_t> sleepers_{0};  // parked
  alignas(kCacheLine) std::atomic<std::uint32_t> wake_seq_{0};  // futex word of parked workers
  alignas(kCacheLine) std::atomic<std::uint32_t> injected_{0};  // injection_ size hint
  std::mutex injection_mutex_;
  std::deque<Job*> injection_;                                    // GUARDED_BY(injection_mutex_)
  alignas(kCacheLine) std::atomic<std::uint32_t> roots_done_{0};  // futex word of run() callers
  alignas(kCacheLine) std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> idle_spin_ns_;
  std::atomic<std::int64_t> heartbeat_ns_;
  std::atomic<std::uint32_t> ready_{0};
  std::atomic<std::uint32_t> go_{0};  // 1: pinned, build workers; 2: run
  bool started_ = false;
};

// One step of a polite spin (shared/ring.hpp's kSpinYieldInterval): a
// cpu_relax, or a yield once `next_yield` has passed, so a thread sharing
// this core gets it every 10 us.
void spin_pause(std::int64_t now, std::int64_t& next_yield) noexcept;
inline constexpr std::int64_t kSpinYieldNs =
    std::chrono::duration_cast<std::chrono::nanoseconds>(kSpinYieldInterval).count();

template <class F>
void Scheduler::run(F&& root) {
  using Fn = std::remove_reference_t<F>;
  Job job;
  job.context = const_cast<void*>(static_cast<const void*>(&root));
  job.execute = [](Job* j, Worker& w) noexcept {
    try {
      (*static_cast<Fn*>(j->context))(w);
    } catch (...) {
      j->capture_current_exception();
    }
  };
  inject(&job);
  wait_root(job);
  job.rethrow_if_failed();
}

}  // namespace beat::sched
