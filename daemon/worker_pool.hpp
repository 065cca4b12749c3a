// WorkerPool: beatd's execution engine. It owns the work-stealing scheduler
// (daemon/scheduler/) and is its WorkSource: idle workers take chunks of
// tasks from client submission rings, run each chunk as a parallel_for (so
// an idle worker can steal the rest of a chunk on a heartbeat, and kernels
// fork further through TaskContext), and post completions.
//
// Worker loop (scheduler.cpp, with these hooks):
//   on_loop: announce quiescence -> poll: intake from the next client with
//   work (round robin, with CQ credit) and run the chunk -> (steal round)
//   -> spin idle_spin_us -> park on every client's SQ doorbell plus the
//   scheduler's wake word with one futex_waitv.
//
// Thread-safety / invariants:
//  1. Client table slots are written by the control thread only (add_client,
//     retire_client) and read by workers with acquire loads.
//  2. Reclamation is quiescent-state based (QSBR): a worker holds session
//     pointers only within one loop iteration and announces the global epoch
//     at the top of each (on_loop); parked workers announce kOffline. A
//     retired session may be destroyed once grace_passed(epoch returned by
//     retire_client). A thief running part of another worker's chunk uses
//     that session inside the owner's iteration: the owner waits for every
//     stolen part (and its completions, flushed by publish()) before its
//     parallel_for returns, so it has not announced since it read the
//     session pointer.
//  4. Intake nests: a busy worker polls the rings once per heartbeat and a
//     worker waiting at a join polls them too, from inside the running
//     task, so other clients' tasks are not held behind a long fork-join
//     task. Each nesting level has its own chunk buffer; depth is bounded
//     (kMaxIntakeDepth in worker_pool.cpp). Nested intake happens inside a
//     loop iteration, never at a quiescent point, so invariant 2 holds.
//  3. Parking follows doorbell.hpp: needs_wakeup is set in every client's
//     SQ doorbell while at least one worker is parked (parked_ > 0); the last
//     waker clears it, re-setting it if a worker parked meanwhile.
// Control-thread methods: start, add_client, retire_client, grace_passed,
// wake_all, stop, set_*, stats accessors. The WorkSource hooks run on
// worker threads only.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "daemon/batching/batch_former.hpp"
#include "daemon/client_session.hpp"
#include "daemon/config.hpp"
#include "daemon/scheduler/scheduler.hpp"
#include "daemon/topology.hpp"
#include "kernels/kernel_registry.hpp"

namespace beat {

// Time histograms (task latency, batch formation): bucket b < kTimeBuckets-1
// holds durations up to time_bucket_bound_ns(b): 1 us x 2^b for b < 20
// (1 us .. 0.524288 s), then 1 s; the last bucket is open-ended (+Inf).
inline constexpr std::size_t kTimeBuckets = 22;
constexpr std::uint64_t time_bucket_bound_ns(std::size_t b) noexcept {
  return b < 20 ? std::uint64_t{1000} << b : std::uint64_t{1'000'000'000};
}
// Branch-light: one multiply-shift (the division by a constant) and a
// bit_width. For 1000 x 2^(k-1) < ns <= 1000 x 2^k, (ns-1)/1000 has k bits.
inline std::size_t time_bucket(std::uint64_t ns) noexcept {
  if (ns <= 1000) return 0;
  const auto k = static_cast<std::size_t>(std::bit_width((ns - 1) / 1000));
  if (k < 20) return k;
  return ns <= time_bucket_bound_ns(20) ? 20 : 21;
}

// Upper bounds of the batch size histogram's buckets (the last is
// open-ended: no batch is larger than batching.max_batch <= 256).
inline constexpr std::array<std::uint32_t, 6> kBatchSizeBuckets = {1, 5, 20, 50, 100, 256};
inline constexpr std::uint64_t kFormationSampleEvery = 8;
// Per-kernel counters: one slot per registry id, and one more for tasks
// naming an id the registry does not hold.
inline constexpr std::uint32_t kKernelSlots = KernelRegistry::kMaxKernels + 1;

// Client-task counters of one worker. Written only by that worker (relaxed
// load+store, no RMW); read by the control thread (STATS) and the metrics
// scrape with relaxed loads, which may see a value a few tasks old, never a
// torn one. Scheduling counters (steals, busy time, ...) are the
// scheduler's WorkerStats. Per-client counts live in the ClientSession.
struct alignas(kCacheLine) WorkerCounters {
  std::atomic<std::uint64_t> tasks_run{0};
  std::atomic<std::uint64_t> tasks_failed{0};
  std::atomic<std::uint64_t> intake_chunks{0};
  // Batch formation (daemon/batching/): batches run, tasks that shared a
  // batch with another and tasks alone in theirs, fingerprints the daemon
  // had to correct (a client's bits disagreed with the descriptor).
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> tasks_grouped{0};
  std::atomic<std::uint64_t> tasks_alone{0};
  std::atomic<std::uint64_t> fingerprints_corrected{0};
  // Histograms: batch sizes (kBatchSizeBuckets); the time to form one
  // chunk's batches, every kFormationSampleEvery-th chunk; the latency of
  // the tasks the client library marked as samples (kTaskFlagStamped) from
  // their submit stamp to the completion being posted (time buckets; sums
  // in ns).
  std::array<std::atomic<std::uint64_t>, kBatchSizeBuckets.size()> batch_sizes{};
  std::array<std::atomic<std::uint64_t>, kTimeBuckets> formation{};
  std::atomic<std::uint64_t> formation_sum_ns{0};
  alignas(kCacheLine) std::array<std::atomic<std::uint64_t>, kTimeBuckets> latency{};
  std::atomic<std::uint64_t> latency_sum_ns{0};
  // By kernel id (kKernelSlots - 1: unregistered ids). submitted and
  // completed are added per intake chunk by the worker that took it
  // (completed once every task of the chunk is done), failed by the worker
  // that ran the task.
  struct KernelCounts {
    std::atomic<std::uint64_t> submitted{0};  // taken from a submission ring
    std::atomic<std::uint64_t> completed{0};  // completion posted, any status
    std::atomic<std::uint64_t> failed{0};     // ... with a non-ok status
  };
  alignas(kCacheLine) std::array<KernelCounts, kKernelSlots> kernels{};
};

class WorkerPool final : public sched::WorkSource {
 public:
  WorkerPool(const Config& config, const KernelRegistry& kernels, const Topology& topology);
  ~WorkerPool() override;  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  Status start();

  // Publishes a session to the workers. Returns false when every slot is taken.
  bool add_client(ClientSession* session);
  // Marks the session closing and unpublishes it; returns the epoch after
  // which it may be destroyed (see grace_passed).
  std::uint64_t retire_client(ClientSession* session);
  // True once every worker has passed a quiescent state at or after `epoch`.
  bool grace_passed(std::uint64_t epoch) const noexcept;

  // Wakes every parked worker (new client, shutdown progress).
  void wake_all() noexcept { scheduler_.wake_all(); }
  // Stops and joins every worker. Idempotent.
  void stop();

  void set_idle_spin_us(std::uint32_t us) noexcept { scheduler_.set_idle_spin_us(us); }
  void set_heartbeat_us(std::uint32_t us) noexcept { scheduler_.set_heartbeat_us(us); }
  void set_steal_policy(sched::StealPolicyKind kind, std::uint32_t attempts_per_level) {
    scheduler_.set_steal_policy(kind, attempts_per_level);
  }
  // batching.min_batch / max_batch. REQUIRES 1 <= min <= max <= kMaxBatchSize.
  void set_batch_bounds(std::uint32_t min, std::uint32_t max) noexcept {
    // Relaxed: a tuning knob read at the next chunk; both halves in one
    // word, so a chunk never sees a new min with an old max.
    batch_bounds_.store(std::uint64_t{min} << 32 | max, std::memory_order_relaxed);
  }

  std::uint32_t worker_count() const noexcept { return scheduler_.worker_count(); }
  const std::vector<sched::WorkerPlacement>& workers() const noexcept {
    return scheduler_.placements();
  }
  const WorkerCounters& counters(std::uint32_t worker) const noexcept { return counters_[worker]; }
  const sched::Scheduler& scheduler() const noexcept { return scheduler_; }
  std::uint32_t parked_workers() const noexcept { return scheduler_.parked_workers(); }
  // Sessions published to the workers. Any thread (metrics scrape).
  std::uint32_t active_clients() const noexcept {
    return active_clients_.load(std::memory_order_relaxed);
  }

  // sched::WorkSource (worker threads only).
  void on_loop(sched::Worker& w) noexcept override;
  bool poll(sched::Worker& w) override;
  int arm_park(sched::Worker& w, FutexWaitItem* items, int capacity) noexcept override;
  void before_sleep(sched::Worker& w) noexcept override;
  void after_sleep(sched::Worker& w) noexcept override;
  void disarm_park(sched::Worker& w) noexcept override;
  void publish(sched::Worker& w) noexcept override;

 private:
  struct Local;  // per-worker state (worker_pool.cpp)

  static constexpr std::uint64_t kOffline = ~std::uint64_t{0};

  Local& local(const sched::Worker& w) noexcept;
  ClientSession* client(std::uint32_t slot) const noexcept;
  bool intake_pass(sched::Worker& w);
  bool intake(sched::Worker& w, ClientSession& s);
  // A run of consecutive chunk tasks of one kernel (counter slot).
  struct KernelRun {
    std::uint32_t slot;
    std::uint32_t count;
  };
  // The chunk's tasks as runs of one kernel, leaving out tasks with a flag
  // in `skip_flags` and those whose `skip` entry (if given) is set. Runs
  // may repeat a slot (two runs of ids the registry does not hold).
  static void count_runs(const TaskDescriptor* chunk, std::uint32_t n, std::uint32_t registered,
                         std::uint32_t skip_flags, const std::uint8_t* skip,
                         std::vector<KernelRun>& runs) noexcept;
  // What run_task gets of a chunk task besides its descriptor: its submit
  // stamp when it is a latency sample (kTaskFlagStamped), else 0; and where to
  // mark it dropped (the chunk owner's flag, and the chunk's any-flag).
  struct TaskExtras {
    std::uint64_t submitted_ns;
    std::uint8_t* dropped;
    std::atomic<bool>* any_dropped;
  };
  void run_task(sched::Worker& w, ClientSession& s, const TaskDescriptor& d,
                const TaskExtras& extras);
  // The per-kernel counter slot of a task naming `id`, with `registered`
  // kernels in the registry.
  static std::uint32_t kernel_slot(std::uint32_t id, std::uint32_t registered) noexcept {
    return id < registered ? id : kKernelSlots - 1;
  }
  // A task whose kernel is batchable and whose data is small: microseconds.
  bool cheap(const TaskDescriptor& d) const noexcept;
  void log_kernel_exception(sched::Worker& w, const KernelInfo& k, const char* what,
                            std::uint32_t detail) noexcept;
  static void record_formation(WorkerCounters& c, std::int64_t ns) noexcept;
  static void record_batches(WorkerCounters& c, std::span<batching::Batch* const> batches,
                             std::uint64_t corrected) noexcept;
  void post(Local& l);
  void announce_online(sched::Worker& w) noexcept;
  void announce_offline(sched::Worker& w) noexcept;

  const Config config_;
  const KernelRegistry& kernels_;
  // Whether the Prometheus exposer runs (metrics.address, restart-only):
  // without it, tasks skip the per-kernel counts and the latency samples
  // only it reports (perf/metrics_cost.cpp measures the difference).
  const bool metrics_;
  std::unique_ptr<WorkerCounters[]> counters_;
  std::unique_ptr<Local[]> locals_;

  // Client table: slot i holds a live session or nullptr.
  std::unique_ptr<std::atomic<ClientSession*>[]> clients_;
  std::uint32_t client_capacity_;

  struct alignas(kCacheLine) EpochSlot {
    std::atomic<std::uint64_t> value{kOffline};
  };
  std::unique_ptr<EpochSlot[]> quiescent_;                   // per worker
  alignas(kCacheLine) std::atomic<std::uint64_t> epoch_{1};  // control thread bumps
  alignas(kCacheLine) std::atomic<std::uint32_t> parked_{0};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> batch_bounds_;  // min << 32 | max (set_batch_bounds)
  // Written by the control thread only (relaxed: a gauge for display).
  std::atomic<std::uint32_t> active_clients_{0};
  bool started_ = false;

  // Last: constructed after, and destroyed (stopped) before, everything the
  // hooks above use.
  sched::Scheduler scheduler_;
};

}  // namespace beat
