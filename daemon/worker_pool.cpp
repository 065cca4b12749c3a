#include "daemon/worker_pool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <thread>

#include "shared/doorbell.hpp"
#include "shared/fingerprint.hpp"
#include "shared/ring.hpp"

namespace beat {

namespace {

// A worker logs a kernel's exception at most this often; the others are
// counted in the next line it logs.
constexpr std::chrono::seconds kKernelExceptionLogEvery{1};

// Pending completions are flushed to the CQ at least this often, so a chunk
// of slow tasks does not hold early results back.
constexpr std::uint32_t kCompletionFlushEvery = 16;

// Intake nesting: the scheduler polls us from a busy worker's heartbeat and
// from a worker waiting at a join, inside the task it is running. One level
// of nesting lets new client work in within a heartbeat of arriving even
// when every worker runs a long fork-join task; a second level is refused,
// so the stack holds at most two chunks' frames.
constexpr std::uint32_t kMaxIntakeDepth = 2;

static_assert(1 + 2 * kMaxClientsLimit <= kMaxFutexWaitItems,
              "a parked worker must be able to wait on every client's doorbells at once");

// Single-writer counter bump: the owner is the only writer, so a relaxed
// load + store is exact and avoids a locked RMW on the hot path.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

sched::SchedulerOptions scheduler_options(const Config& c) {
  sched::SchedulerOptions o;
  o.workers = c.worker_count;
  o.pin = c.pin;
  o.heartbeat_us = c.heartbeat_us;
  o.idle_spin_us = c.idle_spin_us;
  o.policy = c.steal_policy;
  o.steal_attempts_per_level = c.steal_attempts_per_level;
  o.inline_forks = c.inline_forks;
  return o;
}

// Cheap unclaimed check: published SQ entries beyond what was consumed,
// that intake may take (not from a broken session, nor past the drain
// point of a draining one: the workers would spin on them).
bool has_submissions(const ClientSession& s) noexcept {
  // Relaxed: hints; no data is read through them (intake re-checks).
  if (s.broken_.load(std::memory_order_relaxed)) return false;
  const std::uint32_t head = s.sq_head_mirror_.load(std::memory_order_relaxed);
  const std::uint32_t tail = s.view().header->sq.tail.value.load(std::memory_order_relaxed);
  if (tail == head) return false;
  if (s.ordered_inflight_.load(std::memory_order_relaxed)) {
    // An ordered task at the head waits for the batch in flight, and so
    // does everything behind it: nothing to take (the worker that finishes
    // that batch wakes a parked worker). A peek at untrusted memory; a wrong answer
    // costs a spin or a park, and intake reads the copy it validates.
    TaskDescriptor& slot = s.view().sq_slots[head & (s.view().layout.sq_entries - 1)];
    if ((std::atomic_ref<std::uint32_t>(slot.flags).load(std::memory_order_relaxed) &
         kTaskFlagOrdered) != 0)
      return false;
  }
  if (s.draining_.load(std::memory_order_acquire))
    return static_cast<std::int32_t>(s.drain_until_.load(std::memory_order_relaxed) - head) > 0;
  return true;
}

// Submissions we could take now: a CQ-stalled client counts only once it
// has reaped (credit, invariant 2 of ClientSession).
bool runnable(const ClientSession& s) noexcept {
  if (!has_submissions(s)) return false;
  if (!s.cq_stalled_.load(std::memory_order_relaxed)) return true;
  const SegmentView& v = s.view();
  // Acquire: pairs with the client's release of cq.head after reaping.
  const std::uint32_t cq_head = v.header->cq.head.value.load(std::memory_order_acquire);
  return s.cq_taken_mirror_.load(std::memory_order_relaxed) - cq_head < v.layout.cq_entries;
}

}  // namespace

// Per-worker state, touched only by its worker's thread. Built lazily by the
// worker itself (first touch on its own core).
struct alignas(kCacheLine) WorkerPool::Local {
  bool ready = false;
  std::uint32_t cursor = 0;            // round-robin position in the client table
  std::uint64_t announced = kOffline;  // last epoch stored in quiescent_[index]
  // The chunks this worker is running, one per intake nesting level, with
  // their tasks' fingerprints and ordered flags and the former that groups
  // them into batches (each level's batches are in use until its
  // parallel_for returns).
  std::vector<TaskDescriptor> chunks[kMaxIntakeDepth];
  std::vector<FingerprintFields> fingerprints[kMaxIntakeDepth];
  std::vector<std::uint8_t> ordered[kMaxIntakeDepth];
  // Each chunk's tasks by kernel, as runs of consecutive tasks of one
  // kernel (metrics): counted as submitted at intake and as completed when
  // the chunk is done, so the task path itself counts nothing. Tasks a
  // worker dropped (dropped[i] = 1, by whichever worker ran task i) are
  // taken out of the completed count; the flags are cleared after use.
  std::vector<KernelRun> runs[kMaxIntakeDepth];
  std::vector<std::uint8_t> dropped[kMaxIntakeDepth];
  // The submit stamps of each chunk's latency samples (kTaskFlagStamped),
  // by chunk index; 0: not usable. Entries of other tasks are stale.
  std::vector<std::uint64_t> stamps[kMaxIntakeDepth];
  std::unique_ptr<batching::BatchFormer> formers[kMaxIntakeDepth];
  std::uint64_t chunks_taken = 0;  // for sampling the formation time
  std::uint32_t depth = 0;         // intake levels in progress
  // Completions this worker produced and has not posted yet, all for one
  // session (a task of another session flushes them first).
  ClientSession* pending_session = nullptr;
  std::vector<CompletionEntry> pending;
  std::vector<std::uint64_t> pending_stamps;  // submit stamps of the sampled `pending`
  std::uint64_t pending_failed = 0;
  WorkerCounters* counters = nullptr;  // this worker's
  // Sessions armed for parking (between arm_park and disarm_park).
  ClientSession* armed[kMaxFutexWaitItems];
  int armed_count = 0;
  // Rate limit of kernel exception log lines (kKernelExceptionLogEvery).
  std::chrono::steady_clock::time_point exception_logged_at{};
  std::uint64_t exceptions_unlogged = 0;
};

WorkerPool::WorkerPool(const Config& config, const KernelRegistry& kernels,
                       const Topology& topology)
    : config_(config),
      kernels_(kernels),
      metrics_(!config.metrics_address.empty()),
      client_capacity_(config.max_clients),
      scheduler_(scheduler_options(config), topology, this) {
  set_batch_bounds(config.min_batch, config.max_batch);
  const std::uint32_t n = scheduler_.worker_count();
  counters_ = std::make_unique<WorkerCounters[]>(n);
  locals_ = std::make_unique<Local[]>(n);
  quiescent_ = std::make_unique<EpochSlot[]>(n);
  clients_ = std::make_unique<std::atomic<ClientSession*>[]>(client_capacity_);
  for (std::uint32_t i = 0; i < client_capacity_; ++i)
    clients_[i].store(nullptr, std::memory_order_relaxed);
}

WorkerPool::~WorkerPool() { stop(); }

Status WorkerPool::start() {
  if (started_) return Status::ok();
  started_ = true;
  // Online before the threads exist, so a grace period can't pass them by.
  for (std::uint32_t i = 0; i < worker_count(); ++i)
    quiescent_[i].value.store(epoch_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  return scheduler_.start();  // logs a worker it could not pin
}

void WorkerPool::stop() {
  if (stop_.exchange(true, std::memory_order_acq_rel)) return;
  scheduler_.stop();
}

WorkerPool::Local& WorkerPool::local(const sched::Worker& w) noexcept {
  Local& l = locals_[w.index()];
  if (!l.ready) [[unlikely]] {
    // Allocation: once per worker, on its own thread.
    for (std::uint32_t level = 0; level < kMaxIntakeDepth; ++level) {
      l.chunks[level].resize(config_.intake_batch);
      l.fingerprints[level].resize(config_.intake_batch);
      l.ordered[level].resize(config_.intake_batch);
      l.stamps[level].resize(config_.intake_batch);
      l.runs[level].reserve(config_.intake_batch);
      l.dropped[level].assign(config_.intake_batch, 0);
      l.formers[level] = std::make_unique<batching::BatchFormer>(
          batching::BatchFormerOptions{config_.grouping, config_.batch_threshold,
                                       config_.max_open_batches},
          config_.intake_batch);
    }
    l.pending.reserve(kCompletionFlushEvery);
    l.pending_stamps.reserve(kCompletionFlushEvery);
    l.counters = &counters_[w.index()];
    l.ready = true;
  }
  return l;
}

ClientSession* WorkerPool::client(std::uint32_t slot) const noexcept {
  // Acquire: pairs with add_client's release, so the session's fields and
  // mapping are visible before we use them.
  return clients_[slot].load(std::memory_order_acquire);
}

// QSBR announcement, once per loop iteration; stores only when the epoch
// moved, so the steady state costs one load of a read-mostly line.
// SYNC POINT (QSBR): retire_client unpublishes a session and then bumps
// the epoch with a seq_cst (hence release) RMW. Our acquire load that
// reads the new epoch E therefore happens-after the unpublish, so no load
// of the table after it can return the retired session. The release store
// of E publishes that every access of ours before it (all iterations that
// might have used the session) happened-before grace_passed() reading it.
void WorkerPool::announce_online(sched::Worker& w) noexcept {
  Local& l = local(w);
  const std::uint64_t e = epoch_.load(std::memory_order_acquire);
  if (e == l.announced) return;
  const bool was_offline = l.announced == kOffline;
  quiescent_[w.index()].value.store(e, std::memory_order_release);
  l.announced = e;
  // Coming back from offline (parked), the epoch we read may be stale
  // while grace_passed() still reads kOffline: then our store above and
  // our next load of the client table form a store-buffering pair with
  // retire_client's unpublish and grace_passed's load. A seq_cst fence
  // here (and seq_cst on the other side) rules out both reading the old
  // values, as liburcu's rcu_thread_online does. Once per park, not per
  // iteration.
  if (was_offline) std::atomic_thread_fence(std::memory_order_seq_cst);
}

void WorkerPool::announce_offline(sched::Worker& w) noexcept {
  // Release: every session access of this worker happens-before a
  // grace_passed() that reads kOffline.
  quiescent_[w.index()].value.store(kOffline, std::memory_order_release);
  local(w).announced = kOffline;
}

void WorkerPool::on_loop(sched::Worker& w) noexcept { announce_online(w); }

bool WorkerPool::poll(sched::Worker& w) {
  Local& l = local(w);
  if (l.depth == kMaxIntakeDepth) return false;
  ++l.depth;
  bool ran = false;
  try {
    ran = intake_pass(w);
  } catch (...) {
    --l.depth;
    throw;
  }
  --l.depth;
  return ran;
}

// One pass over the client table; returns true when any task was taken.
bool WorkerPool::intake_pass(sched::Worker& w) {
  Local& l = local(w);
  const std::uint32_t cap = client_capacity_;
  for (std::uint32_t i = 0; i < cap; ++i) {
    const std::uint32_t slot = l.cursor;
    l.cursor = l.cursor + 1 == cap ? 0 : l.cursor + 1;
    ClientSession* s = client(slot);
    if (s == nullptr || !runnable(*s)) continue;
    if (intake(w, *s)) return true;
  }
  return false;
}

// Takes a chunk from one client's SQ, runs it, posts its completions.
bool WorkerPool::intake(sched::Worker& w, ClientSession& s) {
  Local& l = local(w);
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
  std::vector<TaskDescriptor>& buffer = l.chunks[l.depth - 1];
  const auto chunk_size = static_cast<std::uint32_t>(buffer.size());
  std::uint32_t cq_used = s.cq_taken_ - s.cq_head_cache_;
  const std::uint32_t want = avail < chunk_size ? avail : chunk_size;
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
  if (n > chunk_size) n = chunk_size;
  if (n == 0) {
    s.intake_claim_.store(false, std::memory_order_release);
    return false;
  }
  if (s.cq_stalled_.load(std::memory_order_relaxed)) {
    s.cq_stalled_.store(false, std::memory_order_relaxed);
    h.cq_space.needs_wakeup.store(0, std::memory_order_relaxed);
  }
  // Ordered tasks run one batch at a time per session: while the last one
  // is in flight, take nothing from the first ordered task on (it and
  // everything behind it wait in the SQ). SYNC POINT READ: acquire pairs
  // with the release that clears the flag after that batch's completions
  // were posted, so ours are reserved after them on the CQ. Read before
  // the copy, so that a held-back chunk stops copying where it stops.
  const bool ordered_busy = s.ordered_inflight_.load(std::memory_order_acquire);
  TaskDescriptor* chunk = buffer.data();
  const std::uint32_t level = l.depth - 1;
  std::uint64_t* stamps = l.stamps[level].data();
  bool any_ordered = false;
  bool held_back = false;
  std::uint32_t owed = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    // One copy out of shared memory; only the private copy is used below.
    chunk[i] = copy_entry(v.sq_slots, sq_entries - 1, head + i);
    if ((chunk[i].flags & kTaskFlagOrdered) != 0) {
      if (ordered_busy) {
        n = i;
        held_back = true;
        break;
      }
      any_ordered = true;
    }
    owed += (chunk[i].flags & kTaskFlagCancelled) == 0 ? 1 : 0;
    if ((chunk[i].flags & kTaskFlagStamped) != 0 && metrics_) [[unlikely]] {
      // A latency sample (a few hundred a second per client at most). Its
      // stamp is read before sq.head moves on (then the client may reuse
      // the slot) and is untrusted: one older than the session is no
      // sample, one in the future counts as no wait (post), so a client
      // can skew only its own figures, within its session's lifetime.
      const std::uint64_t stamp = copy_entry(v.sq_stamps, sq_entries - 1, head + i);
      stamps[i] = stamp >= s.created_ns() ? stamp : 0;
    }
  }
  if (n == 0) {
    s.intake_claim_.store(false, std::memory_order_release);
    return false;
  }
  if (any_ordered) s.ordered_inflight_.store(true, std::memory_order_relaxed);  // under claim
  s.sq_head_ = head + n;
  s.cq_taken_ += owed;
  // Relaxed: published by the release on sq_head_mirror_ below.
  s.cq_taken_mirror_.store(s.cq_taken_, std::memory_order_relaxed);
  s.tasks_taken_.store(s.tasks_taken_.load(std::memory_order_relaxed) + owed,
                       std::memory_order_relaxed);
  // Release: a reader that sees the new mirror also sees cq_taken_mirror_.
  s.sq_head_mirror_.store(head + n, std::memory_order_release);
  // SYNC POINT WRITE: slots [head, head+n) and their stamps are copied
  // out; producers may reuse them (ring rule 3).
  h.sq.head.value.store(head + n, std::memory_order_release);
  s.intake_claim_.store(false, std::memory_order_release);
  WorkerCounters& counters = counters_[w.index()];
  bump(counters.intake_chunks);
  w.begin_work();

  ring_doorbell(h.sq_space, INT_MAX);  // submitters waiting for room
  // More submitted than we took: a parked worker can take the next chunk
  // (not when an ordered task holds the rest back).
  if (avail > n && !held_back) scheduler_.wake_if_unattended();

  // Batches (daemon/batching/): similar tasks together, about n / (1 + idle
  // workers) each, so idle workers get some at once and a busy daemon runs
  // few large ones. Everything below is this worker's own memory: no lock,
  // no atomic but the counters' single-writer stores.
  const bool timed = l.chunks_taken++ % kFormationSampleEvery == 0;
  const std::int64_t formed_from = timed ? sched::now_ns() : 0;
  std::uint64_t corrected = 0;
  // Registered ids: read once per chunk (acquire, KernelRegistry::size).
  const std::uint32_t registered = kernels_.size();
  FingerprintFields* fps = l.fingerprints[level].data();
  std::uint8_t* ordered = l.ordered[level].data();
  for (std::uint32_t i = 0; i < n; ++i) {
    bool fixed = false;
    fps[i] = daemon_fingerprint(chunk[i], fixed);
    corrected += fixed ? 1 : 0;
    ordered[i] = (chunk[i].flags & kTaskFlagOrdered) != 0 ? 1 : 0;
  }
  std::vector<KernelRun>& runs = l.runs[level];
  if (metrics_) {
    // Cancelled tasks (owed < n: a draining client's) are not submitted.
    count_runs(chunk, n, registered, owed < n ? kTaskFlagCancelled : 0, nullptr, runs);
    for (const KernelRun& r : runs) bump(counters.kernels[r.slot].submitted, r.count);
  }
  const std::uint32_t idle = scheduler_.idle_workers();
  const std::uint64_t bounds = batch_bounds_.load(std::memory_order_relaxed);
  const std::uint32_t target = std::clamp(n / (1 + idle), static_cast<std::uint32_t>(bounds >> 32),
                                          static_cast<std::uint32_t>(bounds));
  batching::BatchFormer& former = *l.formers[level];
  const std::span<batching::Batch* const> batches = former.form({fps, n}, {ordered, n}, target);
  if (timed) record_formation(counters, sched::now_ns() - formed_from);
  record_batches(counters, batches, corrected);

  // The batches are the units of one splittable range: on a heartbeat an
  // idle worker takes the upper half, and kernels may fork below. The chunk
  // buffer and the batches are ours and stay put until every stolen part is
  // done (a thief sees them through the deque's release/acquire).
  // What run_task needs of chunk task t besides its descriptor.
  std::uint8_t* dropped = l.dropped[level].data();
  std::atomic<bool> any_dropped{false};
  const auto extras = [this, chunk, stamps, dropped, &any_dropped](std::uint32_t t) {
    const bool sampled = metrics_ && (chunk[t].flags & kTaskFlagStamped) != 0;
    return TaskExtras{sampled ? stamps[t] : 0, &dropped[t], &any_dropped};
  };
  w.parallel_for(
      0, batches.size(), 1, [this, &s, chunk, extras, batches](sched::Worker& x, std::uint64_t b) {
        const batching::Batch& batch = *batches[b];
        const std::span<const std::uint16_t> tasks = batch.span();
        if (batch.ordered || tasks.size() == 1 || cheap(chunk[tasks[0]])) {
          for (const std::uint16_t t : tasks) run_task(x, s, chunk[t], extras(t));
        } else {
          // Tasks that may each take long (similar ones share a
          // kernel): another splittable range, so an idle worker
          // can take the batch's tail instead of waiting for it.
          x.parallel_for(0, tasks.size(), 1,
                         [this, &s, chunk, extras, tasks](sched::Worker& y, std::uint64_t i) {
                           run_task(y, s, chunk[tasks[i]], extras(tasks[i]));
                         });
        }
        if (batch.ordered) {
          publish(x);  // this batch's completions are on the CQ...
          // SYNC POINT WRITE: ...before the next ordered batch may be taken;
          // pairs with intake's acquire load of the flag.
          s.ordered_inflight_.store(false, std::memory_order_release);
          // A worker that looked while the flag was set saw nothing
          // to take and may have parked, and this one may be deep in
          // a kernel that does not poll for a long while: wake one.
          // Unconditionally: the clear, wake_if_unattended's seq_cst
          // fence and its load of the sleepers, against the parker's
          // sleepers increment, fence and re-check of the flag, are
          // a store-buffering pair (one side sees the other); a look
          // at the SQ first, before any fence, could miss both.
          scheduler_.wake_if_unattended();
        }
      });
  former.recycle();
  publish(w);
  // Every task of the chunk has completed or was dropped (parallel_for
  // joined every part, which orders the thieves' drop marks before us).
  if (metrics_) {
    if (any_dropped.load(std::memory_order_relaxed)) {
      // Rare (a closing session, a stopping daemon): recount without them.
      count_runs(chunk, n, registered, kTaskFlagCancelled, dropped, runs);
      std::fill(dropped, dropped + n, 0);
    }
    for (const KernelRun& r : runs) bump(counters.kernels[r.slot].completed, r.count);
  }
  return true;
}

namespace {
// The histogram bucket of `value`: the first whose upper bound holds it,
// else the last (open-ended).
template <std::size_t N>
std::size_t bucket_of(std::uint64_t value, const std::array<std::uint32_t, N>& bounds) noexcept {
  std::size_t bucket = 0;
  while (bucket + 1 < N && value > bounds[bucket]) ++bucket;
  return bucket;
}
}  // namespace

void WorkerPool::record_formation(WorkerCounters& c, std::int64_t ns) noexcept {
  const auto t = static_cast<std::uint64_t>(ns > 0 ? ns : 0);
  bump(c.formation[time_bucket(t)]);
  bump(c.formation_sum_ns, t);
}

void WorkerPool::record_batches(WorkerCounters& c, std::span<batching::Batch* const> batches,
                                std::uint64_t corrected) noexcept {
  std::uint64_t grouped = 0, alone = 0;
  for (const batching::Batch* b : batches) {
    bump(c.batch_sizes[bucket_of(b->count, kBatchSizeBuckets)]);
    (b->count == 1 ? alone : grouped) += b->count;
  }
  bump(c.batches, batches.size());
  if (grouped != 0) bump(c.tasks_grouped, grouped);
  if (alone != 0) bump(c.tasks_alone, alone);
  if (corrected != 0) bump(c.fingerprints_corrected, corrected);
}

void WorkerPool::count_runs(const TaskDescriptor* chunk, std::uint32_t n, std::uint32_t registered,
                            std::uint32_t skip_flags, const std::uint8_t* skip,
                            std::vector<KernelRun>& runs) noexcept {
  runs.clear();
  if (skip_flags == 0 && skip == nullptr) {
    // The common case, a tight loop: one compare and one increment per
    // task, on the raw id; the counter slot is worked out once per run.
    std::uint32_t id = n != 0 ? chunk[0].kernel_id : 0;
    std::uint32_t count = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (chunk[i].kernel_id != id) {
        runs.push_back({kernel_slot(id, registered), count});
        id = chunk[i].kernel_id;
        count = 0;
      }
      ++count;
    }
    if (count != 0) runs.push_back({kernel_slot(id, registered), count});
    return;
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    if ((chunk[i].flags & skip_flags) != 0 || (skip != nullptr && skip[i] != 0)) continue;
    const std::uint32_t slot = kernel_slot(chunk[i].kernel_id, registered);
    if (runs.empty() || runs.back().slot != slot) runs.push_back({slot, 0});
    ++runs.back().count;
  }
}

bool WorkerPool::cheap(const TaskDescriptor& d) const noexcept {
  // An unknown kernel id fails fast in run_task: cheap too.
  if (d.kernel_id >= kernels_.size()) return true;
  return kernels_.at(d.kernel_id).cheap(d.data_length);
}

void WorkerPool::run_task(sched::Worker& w, ClientSession& s, const TaskDescriptor& d,
                          const TaskExtras& extras) {
  if ((d.flags & kTaskFlagCancelled) != 0) return;
  const SegmentView& v = s.view();
  const std::uint64_t arena_bytes = v.layout.arena_bytes;
  TaskContext ctx(&w, s.client_id(), ArenaView{v.arena, arena_bytes}, &stop_, &s.closing_);
  // Per task, so a chunk of long tasks stops soon after the daemon's
  // shutdown timeout or the client's death (relaxed: only cuts work).
  // Dropped tasks owe nothing: the session is closing (its segment goes
  // after the grace period) or the daemon is stopping.
  if (ctx.cancelled()) {
    // Relaxed: the chunk's owner reads both after joining this part.
    *extras.dropped = 1;
    extras.any_dropped->store(true, std::memory_order_relaxed);
    return;
  }
  CompletionEntry c{d.tag, 0, 0, 0, 0};
  const std::uint32_t registered = kernels_.size();  // acquire (KernelRegistry)
  TaskStatus st = validate_descriptor(d, registered, arena_bytes);
  if (st == TaskStatus::kOk) {
    const KernelInfo& k = kernels_.at(d.kernel_id);
    // A task that may take long first posts what this worker holds, so
    // earlier completions are not held behind it (KernelInfo::batchable).
    if (!k.cheap(d.data_length)) {
      publish(w);
      // It may run long without a heartbeat check: let an idle worker
      // have the rest of this chunk now rather than after it.
      w.share_before_long_call();
    }
    const ArenaView data = (d.flags & kTaskFlagUsesData) != 0
                               ? ArenaView{v.arena + d.data_offset, d.data_length}
                               : ArenaView{};
    try {
      // A task of its own: its forks do not count the intake loop's depth.
      const KernelResult r =
          w.as_task([&] { return k.invoke(ctx, KernelArgs(d.args, kInlineArgs), data); });
      st = r.status;
      c.detail = r.detail;
      c.result = r.status == TaskStatus::kOk ? r.value : 0;
    } catch (const KernelError& e) {
      st = TaskStatus::kKernelError;
      c.detail = e.code();
      log_kernel_exception(w, k, e.what(), e.code());
    } catch (const std::exception& e) {
      st = TaskStatus::kKernelError;
      c.detail = kKernelThrewDetail;
      log_kernel_exception(w, k, e.what(), kKernelThrewDetail);
    } catch (...) {
      st = TaskStatus::kKernelError;
      c.detail = kKernelThrewDetail;
      log_kernel_exception(w, k, "an exception of unknown type", kKernelThrewDetail);
    }
  }
  c.status = static_cast<std::uint32_t>(st);
  // Only now, after the kernel: while it ran, this worker may have run
  // other clients' tasks (nested intake, stolen work) and switched its
  // pending batch to their sessions.
  Local& l = local(w);
  if (l.pending_session != &s) {
    if (!l.pending.empty()) post(l);
    l.pending_session = &s;
  }
  WorkerCounters& counters = *l.counters;
  bump(counters.tasks_run);
  w.note_progress();
  if (st != TaskStatus::kOk) {
    bump(counters.tasks_failed);
    ++l.pending_failed;
  }
  if (metrics_) {
    // Off the common path: failures, and latency samples. An id
    // the registry did not hold when the task ran counts as unregistered.
    if (st != TaskStatus::kOk) bump(counters.kernels[kernel_slot(d.kernel_id, registered)].failed);
    if (extras.submitted_ns != 0) l.pending_stamps.push_back(extras.submitted_ns);
  }
  l.pending.push_back(c);
  if (l.pending.size() == kCompletionFlushEvery) post(l);
}

// Off the task path: only a kernel that threw gets here. Rate-limited so a
// client cannot flood the log with failing tasks.
void WorkerPool::log_kernel_exception(sched::Worker& w, const KernelInfo& k, const char* what,
                                      std::uint32_t detail) noexcept {
  Local& l = local(w);
  const auto now = std::chrono::steady_clock::now();
  if (l.exception_logged_at.time_since_epoch().count() != 0 &&
      now - l.exception_logged_at < kKernelExceptionLogEvery) {
    ++l.exceptions_unlogged;
    return;
  }
  try {
    spdlog::warn("worker {}: kernel '{}' threw: {}; the task failed with kernel_error detail {}{}",
                 w.index(), k.name, what, detail,
                 l.exceptions_unlogged == 0 ? std::string()
                                            : " (" + std::to_string(l.exceptions_unlogged) +
                                                  " more exceptions since the last line)");
  } catch (...) {
    // Logging is best effort; the completion is what the client relies on.
  }
  l.exception_logged_at = now;
  l.exceptions_unlogged = 0;
}

void WorkerPool::publish(sched::Worker& w) noexcept {
  Local& l = local(w);
  if (!l.pending.empty()) post(l);
}

// Commits this worker's pending completions to their client's CQ (ring
// rule 2, daemon-private counters).
void WorkerPool::post(Local& l) {
  ClientSession& s = *l.pending_session;
  const SegmentView& v = s.view();
  SegmentHeader& h = *v.header;
  const auto m = static_cast<std::uint32_t>(l.pending.size());
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
    slot.tag = l.pending[i].tag;
    slot.status = l.pending[i].status;
    slot.detail = l.pending[i].detail;
    slot.result = l.pending[i].result;
    // SYNC POINT WRITE: this entry (ring rule 5); pairs with the client's
    // acquire load of seq when it polls the slot instead of cq.tail.
    std::atomic_ref<std::uint64_t>(slot.seq).store(std::uint64_t{start + i} + 1,
                                                   std::memory_order_release);
  }
  // SYNC POINT WRITE: CQ entries [start, start+m), published via cq.tail.
  commit_in_order(s.cq_commit_, &h.cq.tail.value, start, m);
  ring_doorbell(h.cq_bell, INT_MAX);
  // Latency samples: submit stamp to now, when the client can see the
  // completion. One clock read per flush that holds a sample.
  if (!l.pending_stamps.empty()) {
    WorkerCounters& counters = *l.counters;
    const auto now = static_cast<std::uint64_t>(sched::now_ns());
    std::uint64_t sum = 0;
    for (const std::uint64_t stamp : l.pending_stamps) {
      const std::uint64_t ns = now > stamp ? now - stamp : 0;
      bump(counters.latency[time_bucket(ns)]);
      sum += ns;
    }
    bump(counters.latency_sum_ns, sum);
    l.pending_stamps.clear();
  }
  s.tasks_completed_.fetch_add(m, std::memory_order_relaxed);
  if (l.pending_failed != 0) {
    s.tasks_failed_.fetch_add(l.pending_failed, std::memory_order_relaxed);
    l.pending_failed = 0;
  }
  l.pending.clear();
}

int WorkerPool::arm_park(sched::Worker& w, FutexWaitItem* items, int capacity) noexcept {
  Local& l = local(w);
  parked_.fetch_add(1, std::memory_order_seq_cst);
  l.armed_count = 0;
  for (std::uint32_t i = 0; i < client_capacity_; ++i) {
    ClientSession* s = client(i);
    if (s == nullptr || s->closing_.load(std::memory_order_relaxed)) continue;
    // seq_cst: orders after our parked_ increment (invariant 3) and before
    // the re-check below (doorbell protocol, waiter side).
    s->view().header->sq_bell.needs_wakeup.store(1, std::memory_order_seq_cst);
    l.armed[l.armed_count++] = s;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  int count = 0;
  for (int i = 0; i < l.armed_count; ++i) {
    SegmentHeader& h = *l.armed[i]->view().header;
    if (count < capacity)
      items[count++] = {&h.sq_bell.seq, h.sq_bell.seq.load(std::memory_order_acquire)};
    // A CQ-stalled client wakes us through cq_space when it reaps
    // (1 + 2 x kMaxClientsLimit <= kMaxFutexWaitItems).
    if (l.armed[i]->cq_stalled_.load(std::memory_order_relaxed) && count < capacity)
      items[count++] = {&h.cq_space.seq, h.cq_space.seq.load(std::memory_order_acquire)};
    if (runnable(*l.armed[i])) return -1;
  }
  return count;
}

void WorkerPool::before_sleep(sched::Worker& w) noexcept {
  // The words may belong to a session retired while we sleep: the wait
  // keys on the page, not our mapping, and retire_client wakes us.
  announce_offline(w);
}

void WorkerPool::after_sleep(sched::Worker& w) noexcept { announce_online(w); }

void WorkerPool::disarm_park(sched::Worker& w) noexcept {
  local(w).armed_count = 0;
  parked_.fetch_sub(1, std::memory_order_seq_cst);
  // Clear needs_wakeup so submitters skip the syscall while we are awake,
  // unless another worker is (still or newly) parked (invariant 3).
  for (std::uint32_t i = 0; i < client_capacity_; ++i) {
    ClientSession* s = client(i);
    if (s == nullptr) continue;
    auto& flag = s->view().header->sq_bell.needs_wakeup;
    if (flag.load(std::memory_order_relaxed) == 0) continue;
    flag.store(0, std::memory_order_seq_cst);
    if (parked_.load(std::memory_order_seq_cst) > 0) flag.store(1, std::memory_order_seq_cst);
  }
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
  for (std::uint32_t i = 0; i < worker_count(); ++i) {
    // seq_cst (not just acquire): pairs with the worker's release store and,
    // for a worker coming back online, with its seq_cst fence (see
    // announce_online); retire_client's unpublish is seq_cst too.
    const std::uint64_t q = quiescent_[i].value.load(std::memory_order_seq_cst);
    if (q != kOffline && q < epoch) return false;
  }
  return true;
}

}  // namespace beat
