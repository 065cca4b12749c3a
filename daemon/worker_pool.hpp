// WorkerPool: one worker thread per core, draining client submission rings,
// running kernels and posting completions.
//
// Worker loop (daemon/worker_pool.cpp):
//   announce quiescence -> intake from the next client with work (round
//   robin) -> run the chunk -> post its completions -> repeat; with no work,
//   spin idle_spin_us, then park on every client's SQ doorbell plus the
//   pool's private wake word with one futex_waitv.
//
// Thread-safety / invariants:
//  1. Client table slots are written by the control thread only (add_client,
//     retire_client) and read by workers with acquire loads.
//  2. Reclamation is quiescent-state based (QSBR): a worker holds session
//     pointers only within one loop iteration and announces the global epoch
//     at the top of each; parked workers announce kOffline. A retired session
//     may be destroyed once grace_passed(epoch returned by retire_client).
//  3. Parking follows doorbell.hpp: needs_wakeup is set in every client's
//     SQ doorbell while at least one worker is parked (parked_ > 0); the last
//     waker clears it, re-setting it if a worker parked meanwhile.
// Control-thread methods: start, add_client, retire_client, grace_passed,
// wake_all, stop, set_idle_spin_us, stats. Workers call nothing here.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "daemon/client_session.hpp"
#include "daemon/config.hpp"
#include "daemon/topology.hpp"
#include "kernels/kernel_registry.hpp"

namespace beat {

// Counters of one worker. Written only by that worker (relaxed load+store,
// no RMW); read by the control thread for STATS with relaxed loads, which
// may see a value a few tasks old.
struct alignas(kCacheLine) WorkerCounters {
  std::atomic<std::uint64_t> tasks_run{0};
  std::atomic<std::uint64_t> tasks_failed{0};
  std::atomic<std::uint64_t> intake_chunks{0};
  std::atomic<std::uint64_t> parks{0};
  std::atomic<std::uint64_t> busy_ns{0};    // running kernels and posting
  std::atomic<std::uint64_t> parked_ns{0};  // inside futex_waitv
};

struct WorkerInfo {
  std::uint32_t index;
  std::uint32_t core;   // logical core index
  std::uint32_t os_pu;  // OS index of the PU it is pinned to
  bool pinned;
};

class WorkerPool {
 public:
  WorkerPool(const Config& config, const KernelRegistry& kernels, const Topology& topology);
  ~WorkerPool();  // stop()
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
  void wake_all() noexcept;
  // Stops and joins every worker. Idempotent.
  void stop();

  void set_idle_spin_us(std::uint32_t us) noexcept {
    // Relaxed: an advisory tuning knob, picked up on the next idle period.
    idle_spin_us_.store(us, std::memory_order_relaxed);
  }
  std::uint32_t worker_count() const noexcept { return static_cast<std::uint32_t>(infos_.size()); }
  const std::vector<WorkerInfo>& workers() const noexcept { return infos_; }
  const WorkerCounters& counters(std::uint32_t worker) const noexcept { return counters_[worker]; }
  std::uint32_t parked_workers() const noexcept { return parked_.load(std::memory_order_relaxed); }
  // Sessions published to the workers. Any thread (metrics scrape).
  std::uint32_t active_clients() const noexcept {
    return active_clients_.load(std::memory_order_relaxed);
  }

 private:
  struct Worker;
  friend struct Worker;

  static constexpr std::uint64_t kOffline = ~std::uint64_t{0};

  void run_worker(std::uint32_t index);
  void wake_one() noexcept;

  const Config config_;
  const KernelRegistry& kernels_;
  const Topology& topology_;
  std::vector<WorkerInfo> infos_;
  std::vector<std::thread> threads_;
  std::unique_ptr<WorkerCounters[]> counters_;

  // Client table: slot i holds a live session or nullptr.
  std::unique_ptr<std::atomic<ClientSession*>[]> clients_;
  std::uint32_t client_capacity_;

  struct alignas(kCacheLine) EpochSlot {
    std::atomic<std::uint64_t> value{kOffline};
  };
  std::unique_ptr<EpochSlot[]> quiescent_;                      // per worker
  alignas(kCacheLine) std::atomic<std::uint64_t> epoch_{1};     // control thread bumps
  alignas(kCacheLine) std::atomic<std::uint32_t> wake_seq_{0};  // private futex word
  alignas(kCacheLine) std::atomic<std::uint32_t> parked_{0};
  std::atomic<bool> stop_{false};
  // Written by the control thread only (relaxed: a gauge for display).
  std::atomic<std::uint32_t> active_clients_{0};
  std::atomic<std::uint32_t> idle_spin_us_;
  bool started_ = false;
};

}  // namespace beat
