#include "daemon/worker_pool.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <thread>

#include "shared/doorbell.hpp"
#include "shared/ring.hpp"

namespace beat {

namespace {

using Clock = std::chrono::steady_clock;

// Completion detail for a kernel that threw: no kernel error code is this big.
constexpr std::uint32_t kKernelThrewDetail = 0xFFFF'FFFFu;

// Pending completions are flushed to the CQ at least this often within one
// intake chunk, so a chunk of slow tasks does not hold early results back.
constexpr std::uint32_t kCompletionFlushEvery = 16;

static_assert(1 + 2 * kMaxClientsLimit <= kMaxFutexWaitItems,
              "a parked worker must be able to wait on every client's doorbells at once");

// How long a parked worker sleeps when the kernel lacks futex_waitv and it
// must fall back to a timed wait on the private word (polling).
constexpr std::int64_t kFallbackParkNs = 2'000'000;

inline std::uint64_t ns_between(Clock::time_point a, Clock::time_point b) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

// Single-writer counter bump: the owner is the only writer, so a relaxed
// load + store is exact and avoids a locked RMW on the hot path.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

// Per-thread state; lives on the worker's own stack (first touch on its core).
struct WorkerPool::Worker {
  WorkerPool& pool;
  std::uint32_t index;
  WorkerCounters& counters;
  std::uint32_t cursor = 0;             // round-robin position in the client table
  std::uint64_t announced_ = kOffline;  // last epoch stored in quiescent_[index]
  std::vector<TaskDescriptor> chunk;
  std::vector<CompletionEntry> pending;

  Worker(WorkerPool& p, std::uint32_t i) : pool(p), index(i), counters(p.counters_[i]) {
    chunk.resize(p.config_.intake_batch);
    pending.reserve(kCompletionFlushEvery);
  }

  // QSBR announcement, once per loop iteration; stores only when the epoch
  // moved, so the steady state costs one load of a read-mostly line.
  // SYNC POINT (QSBR): retire_client unpublishes a session and then bumps
  // the epoch with a seq_cst (hence release) RMW. Our acquire load that
  // reads the new epoch E therefore happens-after the unpublish, so no load
  // of the table after it can return the retired session. The release store
  // of E publishes that every access of ours before it (all iterations that
  // might have used the session) happened-before grace_passed() reading it.
  void announce_online() noexcept {
    const std::uint64_t e = pool.epoch_.load(std::memory_order_acquire);
    if (e == announced_) return;
    const bool was_offline = announced_ == kOffline;
    pool.quiescent_[index].value.store(e, std::memory_order_release);
    announced_ = e;
    // Coming back from offline (parked), the epoch we read may be stale
    // while grace_passed() still reads kOffline: then our store above and
    // our next load of the client table form a store-buffering pair with
    // retire_client's unpublish and grace_passed's load. A seq_cst fence
    // here (and seq_cst on the other side) rules out both reading the old
    // values, as liburcu's rcu_thread_online does. Once per park, not per
    // iteration.
    if (was_offline) std::atomic_thread_fence(std::memory_order_seq_cst);
  }

  void announce_offline() noexcept {
    // Release: every session access of this worker happens-before a
    // grace_passed() that reads kOffline.
    pool.quiescent_[index].value.store(kOffline, std::memory_order_release);
    announced_ = kOffline;
  }

  ClientSession* client(std::uint32_t slot) const noexcept {
    // Acquire: pairs with add_client's release, so the session's fields and
    // mapping are visible before we use them.
    return pool.clients_[slot].load(std::memory_order_acquire);
  }

  // Cheap unclaimed check: published SQ entries beyond what was consumed,
  // that intake may take (not from a broken session, nor past the drain
  // point of a draining one: the workers would spin on them).
  static bool has_submissions(const ClientSession& s) noexcept {
    // Relaxed: hints; no data is read through them (intake re-checks).
    if (s.broken_.load(std::memory_order_relaxed)) return false;
    const std::uint32_t head = s.sq_head_mirror_.load(std::memory_order_relaxed);
    const std::uint32_t tail = s.view().header->sq.tail.value.load(std::memory_order_relaxed);
    if (tail == head) return false;
    if (s.draining_.load(std::memory_order_acquire))
      return static_cast<std::int32_t>(s.drain_until_.load(std::memory_order_relaxed) - head) > 0;
    return true;
  }

  // Submissions we could take now: a CQ-stalled client counts only once it
  // has reaped (credit, invariant 2 of ClientSession).
  static bool runnable(const ClientSession& s) noexcept {
    if (!has_submissions(s)) return false;
    if (!s.cq_stalled_.load(std::memory_order_relaxed)) return true;
    const SegmentView& v = s.view();
    // Acquire: pairs with the client's release of cq.head after reaping.
    const std::uint32_t cq_head = v.header->cq.head.value.load(std::memory_order_acquire);
    return s.cq_taken_mirror_.load(std::memory_order_relaxed) - cq_head < v.layout.cq_entries;
  }

  // One pass over the client table; returns true when any task was taken.
  bool intake_pass() {
    const std::uint32_t cap = pool.client_capacity_;
    for (std::uint32_t i = 0; i < cap; ++i) {
      const std::uint32_t slot = cursor;
      cursor = cursor + 1 == cap ? 0 : cursor + 1;
      ClientSession* s = client(slot);
      if (s == nullptr || !runnable(*s)) continue;
      if (intake(*s)) return true;
    }
    return false;
  }

  // Takes a chunk from one client's SQ, runs it, posts its completions.
  bool intake(ClientSession& s) {
    // Acquire: we read sq_head_/cq_taken_ as the previous claimer left them.
    if (s.intake_claim_.exchange(true, std::memory_order_acquire)) return false;
    const SegmentView& v = s.view();
    SegmentHeader& h = *v.header;
    const std::uint32_t sq_entries = v.layout.sq_entries;
    const std::uint32_t cq_entries = v.layout.cq_entries;
    const std::uint32_t head = s.sq_head_;
    // SYNC POINT READ: SQ entries below tail are fully written (ring rule 3).
    const std::uint32_t tail = h.sq.tail.value.load(std::memory_order_acquire);
    const std::uint32_t avail = tail - head;
    // The client's CQ head, untrusted. cq_taken_ - head is what the client
    // still has to consume plus what we owe it (invariant 2). The cached
    // value is never ahead of the real head, so it can only understate the
    // credit: reload when it is short of what this chunk could use.
    std::uint32_t cq_used = s.cq_taken_ - s.cq_head_cache_;
    const std::uint32_t want =
        avail < chunk.size() ? avail : static_cast<std::uint32_t>(chunk.size());
    if (cq_used > cq_entries || cq_entries - cq_used < want) {
      // SYNC POINT READ: cq.head — the client has copied out the entries
      // below it, so we may overwrite them (ring rule 3). The claim's
      // release/acquire hands this ordering to later claimers with the cache.
      s.cq_head_cache_ = h.cq.head.value.load(std::memory_order_acquire);
      cq_used = s.cq_taken_ - s.cq_head_cache_;
    }
    if (avail > sq_entries || cq_used > cq_entries) {
      // tail beyond head + entries, or a CQ head ahead of what we produced:
      // the client corrupted its rings. The control thread disconnects it.
      s.broken_.store(true, std::memory_order_relaxed);
      s.intake_claim_.store(false, std::memory_order_release);
      return false;
    }
    std::uint32_t credit = cq_entries - cq_used;
    if (credit == 0 && avail != 0) {
      // A full CQ stalls this client only. Ask it to ring cq_space when it
      // reaps (doorbell protocol, waiter side: flag, fence, re-check).
      h.cq_space.needs_wakeup.store(1, std::memory_order_seq_cst);
      s.cq_stalled_.store(true, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      s.cq_head_cache_ = h.cq.head.value.load(std::memory_order_acquire);
      const std::uint32_t used_now = s.cq_taken_ - s.cq_head_cache_;
      credit = used_now <= cq_entries ? cq_entries - used_now : 0;
    }
    std::uint32_t n = avail < credit ? avail : credit;
    // Draining: tasks reserved after the daemon read sq.reserve were
    // cancelled by their clients; take nothing past that point (a client
    // that keeps publishing must not hold the shutdown up).
    if (s.draining_.load(std::memory_order_acquire)) {
      const auto left =
          static_cast<std::int32_t>(s.drain_until_.load(std::memory_order_relaxed) - head);
      if (left <= 0)
        n = 0;
      else if (static_cast<std::uint32_t>(left) < n)
        n = static_cast<std::uint32_t>(left);
    }
    if (n > chunk.size()) n = static_cast<std::uint32_t>(chunk.size());
    if (n == 0) {
      s.intake_claim_.store(false, std::memory_order_release);
      return false;
    }
    if (s.cq_stalled_.load(std::memory_order_relaxed)) {
      s.cq_stalled_.store(false, std::memory_order_relaxed);
      h.cq_space.needs_wakeup.store(0, std::memory_order_relaxed);
    }
    std::uint32_t owed = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      // One copy out of shared memory; only the private copy is used below.
      chunk[i] = copy_entry(v.sq_slots, sq_entries - 1, head + i);
      if ((chunk[i].flags & kTaskFlagCancelled) == 0) ++owed;
    }
    s.sq_head_ = head + n;
    s.cq_taken_ += owed;
    // Relaxed: published by the release on sq_head_mirror_ below.
    s.cq_taken_mirror_.store(s.cq_taken_, std::memory_order_relaxed);
    s.tasks_taken_.store(s.tasks_taken_.load(std::memory_order_relaxed) + owed,
                         std::memory_order_relaxed);
    // Release: a reader that sees the new mirror also sees cq_taken_mirror_.
    s.sq_head_mirror_.store(head + n, std::memory_order_release);
    // SYNC POINT WRITE: slots [head, head+n) are copied out; producers may
    // reuse them (ring rule 3).
    h.sq.head.value.store(head + n, std::memory_order_release);
    s.intake_claim_.store(false, std::memory_order_release);
    bump(counters.intake_chunks);

    ring_doorbell(h.sq_space, INT_MAX);  // submitters waiting for room
    if (avail > n && pool.parked_.load(std::memory_order_relaxed) > 0) pool.wake_one();

    run_chunk(s, n);
    return true;
  }

  void run_chunk(ClientSession& s, std::uint32_t n) {
    const SegmentView& v = s.view();
    const std::uint32_t kernel_count = pool.kernels_.size();
    const std::uint64_t arena_bytes = v.layout.arena_bytes;
    // Relaxed: closing_ only decides whether to skip work; the session stays
    // mapped until our next quiescent state whatever we read.
    bool dropping = s.closing_.load(std::memory_order_relaxed);
    TaskContext ctx(index, s.client_id(), ArenaView{v.arena, arena_bytes}, &pool.stop_,
                    &s.closing_);
    std::uint64_t failed = 0;
    std::uint64_t executed = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      const TaskDescriptor& d = chunk[i];
      if ((d.flags & kTaskFlagCancelled) != 0) continue;
      // Per task, so a chunk of long tasks stops soon after the daemon's
      // shutdown timeout or the client's death (relaxed: only cuts work).
      // Dropped tasks owe nothing: the session is closing (its segment goes
      // after the grace period) or the daemon is stopping.
      dropping = dropping || ctx.cancelled();
      if (dropping) continue;
      CompletionEntry c{d.tag, 0, 0, 0, 0};
      TaskStatus st = validate_descriptor(d, kernel_count, arena_bytes);
      if (st == TaskStatus::kOk) {
        const KernelInfo& k = pool.kernels_.at(d.kernel_id);
        const ArenaView data = (d.flags & kTaskFlagUsesData) != 0
                                   ? ArenaView{v.arena + d.data_offset, d.data_length}
                                   : ArenaView{};
        try {
          const KernelResult r = k.fn(ctx, KernelArgs(d.args, kInlineArgs), data);
          st = r.status;
          c.detail = r.detail;
          c.result = r.status == TaskStatus::kOk ? r.value : 0;
        } catch (...) {
          st = TaskStatus::kKernelError;
          c.detail = kKernelThrewDetail;
        }
      }
      c.status = static_cast<std::uint32_t>(st);
      ++executed;
      if (st != TaskStatus::kOk) ++failed;
      pending.push_back(c);
      if (pending.size() == kCompletionFlushEvery) post(s);
    }
    if (!pending.empty()) post(s);
    bump(counters.tasks_run, executed);
    bump(counters.tasks_failed, failed);
    if (failed != 0) s.tasks_failed_.fetch_add(failed, std::memory_order_relaxed);
  }

  // Commits `pending` to the client's CQ (ring rule 2, daemon-private counters).
  void post(ClientSession& s) {
    const SegmentView& v = s.view();
    SegmentHeader& h = *v.header;
    const auto m = static_cast<std::uint32_t>(pending.size());
    // Relaxed: the reservation only assigns slots; visibility of the entries
    // is carried by commit_in_order's release on tail. Credit (invariant 2)
    // guarantees the slots are free.
    const std::uint32_t start = s.cq_reserve_.fetch_add(m, std::memory_order_relaxed);
    const std::uint32_t entries = v.layout.cq_entries;
    const std::uint32_t mask = entries - 1;
    // Our slots last held entries [start - entries, start + m - entries),
    // posted by sibling workers. Wait until those are committed (acquire
    // on cq_commit_, released by their committers) so our writes are ordered
    // after theirs inside the daemon, not only through the client's cq.head.
    // Normally already true (credit says the client consumed them), so this
    // is one load; a client that advances cq.head early can only make us
    // wait for a sibling's commit, never for itself.
    const std::uint32_t lap_done = start + m - entries;
    int spins = 0;
    while (static_cast<std::int32_t>(s.cq_commit_.load(std::memory_order_acquire) - lap_done) < 0) {
      if (++spins < kCommitSpinsBeforeYield) {
        cpu_relax();
      } else {
        spins = 0;
        std::this_thread::yield();
      }
    }
    for (std::uint32_t i = 0; i < m; ++i) {
      CompletionEntry& slot = v.cq_slots[(start + i) & mask];
      slot.tag = pending[i].tag;
      slot.status = pending[i].status;
      slot.detail = pending[i].detail;
      slot.result = pending[i].result;
      // SYNC POINT WRITE: this entry (ring rule 5); pairs with the client's
      // acquire load of seq when it polls the slot instead of cq.tail.
      std::atomic_ref<std::uint64_t>(slot.seq).store(std::uint64_t{start + i} + 1,
                                                     std::memory_order_release);
    }
    // SYNC POINT WRITE: CQ entries [start, start+m), published via cq.tail.
    commit_in_order(s.cq_commit_, &h.cq.tail.value, start, m);
    ring_doorbell(h.cq_bell, INT_MAX);
    pending.clear();
  }

  // Parks until a doorbell or the private wake word changes.
  void park() {
    FutexWaitItem items[kMaxFutexWaitItems];
    int count = 0;
    // Snapshot before any re-check: a wake after this makes the wait return.
    items[count++] = {&pool.wake_seq_, pool.wake_seq_.load(std::memory_order_acquire)};
    pool.parked_.fetch_add(1, std::memory_order_seq_cst);
    ClientSession* sessions[kMaxFutexWaitItems];
    int nsessions = 0;
    for (std::uint32_t i = 0; i < pool.client_capacity_ && count < kMaxFutexWaitItems; ++i) {
      ClientSession* s = client(i);
      if (s == nullptr || s->closing_.load(std::memory_order_relaxed)) continue;
      // seq_cst: orders after our parked_ increment (invariant 3) and before
      // the re-check below (doorbell protocol, waiter side).
      s->view().header->sq_bell.needs_wakeup.store(1, std::memory_order_seq_cst);
      sessions[nsessions++] = s;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    bool work = pool.stop_.load(std::memory_order_acquire);
    for (int i = 0; i < nsessions && !work; ++i) {
      SegmentHeader& h = *sessions[i]->view().header;
      items[count++] = {&h.sq_bell.seq, h.sq_bell.seq.load(std::memory_order_acquire)};
      // A CQ-stalled client wakes us through cq_space when it reaps
      // (1 + 2 x kMaxClientsLimit <= kMaxFutexWaitItems).
      if (sessions[i]->cq_stalled_.load(std::memory_order_relaxed))
        items[count++] = {&h.cq_space.seq, h.cq_space.seq.load(std::memory_order_acquire)};
      work = runnable(*sessions[i]);
    }
    if (!work) {
      bump(counters.parks);
      const auto t0 = Clock::now();
      announce_offline();
      // The words may belong to a session retired while we sleep: the wait
      // keys on the page, not our mapping, and retire_client wakes us.
      if (futex_wait_any(items, count, -1) == -2) {
        struct timespec ts {
          0, kFallbackParkNs
        };
        futex_wait(&pool.wake_seq_, items[0].expected, &ts);
      }
      announce_online();
      bump(counters.parked_ns, ns_between(t0, Clock::now()));
    }
    pool.parked_.fetch_sub(1, std::memory_order_seq_cst);
    // Clear needs_wakeup so submitters skip the syscall while we are awake,
    // unless another worker is (still or newly) parked (invariant 3).
    for (std::uint32_t i = 0; i < pool.client_capacity_; ++i) {
      ClientSession* s = client(i);
      if (s == nullptr) continue;
      auto& flag = s->view().header->sq_bell.needs_wakeup;
      if (flag.load(std::memory_order_relaxed) == 0) continue;
      flag.store(0, std::memory_order_seq_cst);
      if (pool.parked_.load(std::memory_order_seq_cst) > 0)
        flag.store(1, std::memory_order_seq_cst);
    }
  }

  // Busy time is accounted per busy period, from the idle loop's own clock
  // reads, so running a chunk costs no clock read.
  void run() {
    auto last_check = Clock::now();  // latest clock read of the idle loop
    auto busy_since = last_check;
    auto idle_since = last_check;
    auto next_yield = last_check;
    bool busy = false;
    bool idle = false;
    while (!pool.stop_.load(std::memory_order_relaxed)) {
      announce_online();
      if (intake_pass()) {
        if (!busy) {
          busy = true;
          busy_since = last_check;
        }
        idle = false;
        continue;
      }
      last_check = Clock::now();
      if (busy) {
        busy = false;
        bump(counters.busy_ns, ns_between(busy_since, last_check));
      }
      if (!idle) {
        idle = true;
        idle_since = last_check;
        next_yield = last_check + kSpinYieldInterval;
      }
      const auto spin =
          std::chrono::microseconds(pool.idle_spin_us_.load(std::memory_order_relaxed));
      if (last_check - idle_since < spin) {
        // Spin politely (kSpinYieldInterval): a client thread sharing this
        // core must not wait a whole time slice for us to give it up.
        if (last_check >= next_yield) {
          std::this_thread::yield();
          next_yield = last_check + kSpinYieldInterval;
        } else {
          cpu_relax();
        }
        continue;
      }
      park();
      last_check = Clock::now();
      idle = false;
    }
    announce_offline();
  }
};

WorkerPool::WorkerPool(const Config& config, const KernelRegistry& kernels,
                       const Topology& topology)
    : config_(config),
      kernels_(kernels),
      topology_(topology),
      client_capacity_(config.max_clients),
      idle_spin_us_(config.idle_spin_us) {
  const std::uint32_t n =
      config.worker_count != 0 ? config.worker_count : topology.default_worker_count();
  const auto& cores = topology.cores();
  for (std::uint32_t i = 0; i < n; ++i) {
    const CoreSlot& slot = cores[i % cores.size()];
    infos_.push_back({i, slot.core_index, slot.os_pu, false});
  }
  counters_ = std::make_unique<WorkerCounters[]>(n);
  quiescent_ = std::make_unique<EpochSlot[]>(n);
  clients_ = std::make_unique<std::atomic<ClientSession*>[]>(client_capacity_);
  for (std::uint32_t i = 0; i < client_capacity_; ++i)
    clients_[i].store(nullptr, std::memory_order_relaxed);
}

WorkerPool::~WorkerPool() { stop(); }

Status WorkerPool::start() {
  if (started_) return Status::ok();
  started_ = true;
  if (infos_.size() > topology_.cores().size())
    spdlog::warn("{} workers on {} allowed cores: workers share cores", infos_.size(),
                 topology_.cores().size());
  for (std::uint32_t i = 0; i < infos_.size(); ++i) {
    // Online before the thread exists, so a grace period can't pass it by.
    quiescent_[i].value.store(epoch_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    threads_.emplace_back([this, i] { run_worker(i); });
    if (config_.pin) {
      const CoreSlot slot{infos_[i].core, infos_[i].os_pu};
      if (Status s = topology_.pin(threads_.back().native_handle(), slot); !s) {
        spdlog::warn("worker {}: {}; running unpinned", i, s.message());
      } else {
        infos_[i].pinned = true;
      }
    }
  }
  return Status::ok();
}

void WorkerPool::run_worker(std::uint32_t index) {
  Worker w(*this, index);
  w.run();
}

bool WorkerPool::add_client(ClientSession* session) {
  for (std::uint32_t i = 0; i < client_capacity_; ++i) {
    if (clients_[i].load(std::memory_order_relaxed) == nullptr) {
      // Release: publishes the initialised session (and segment) to workers.
      clients_[i].store(session, std::memory_order_release);
      active_clients_.store(active_clients_.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
      // Parked workers must add the new doorbell to their wait set.
      wake_all();
      return true;
    }
  }
  return false;
}

std::uint64_t WorkerPool::retire_client(ClientSession* session) {
  session->closing_.store(true, std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < client_capacity_; ++i) {
    if (clients_[i].load(std::memory_order_relaxed) == session) {
      clients_[i].store(nullptr, std::memory_order_seq_cst);
      active_clients_.store(active_clients_.load(std::memory_order_relaxed) - 1,
                            std::memory_order_relaxed);
    }
  }
  // SYNC POINT (QSBR): issued after the unpublish above; see announce_online.
  const std::uint64_t e = epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
  wake_all();  // parked workers drop the retired doorbell from their wait set
  return e;
}

bool WorkerPool::grace_passed(std::uint64_t epoch) const noexcept {
  for (std::uint32_t i = 0; i < infos_.size(); ++i) {
    // seq_cst (not just acquire): pairs with the worker's release store and,
    // for a worker coming back online, with its seq_cst fence (see
    // announce_online); retire_client's unpublish is seq_cst too.
    const std::uint64_t q = quiescent_[i].value.load(std::memory_order_seq_cst);
    if (q != kOffline && q < epoch) return false;
  }
  return true;
}

void WorkerPool::wake_one() noexcept {
  // Release: pairs with the parker's acquire snapshot; a bump after its
  // snapshot makes its futex_waitv return at once.
  wake_seq_.fetch_add(1, std::memory_order_release);
  futex_wake(&wake_seq_, 1);
}

void WorkerPool::wake_all() noexcept {
  wake_seq_.fetch_add(1, std::memory_order_release);
  futex_wake(&wake_seq_, INT_MAX);
}

void WorkerPool::stop() {
  if (stop_.exchange(true, std::memory_order_acq_rel)) return;
  wake_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

}  // namespace beat
