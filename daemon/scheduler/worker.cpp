#include "daemon/scheduler/worker.hpp"

#include <pthread.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>

#include "daemon/scheduler/scheduler.hpp"
#include "shared/ring.hpp"  // cpu_relax, kSpinYieldInterval

namespace beat::sched {

namespace {

// The calling thread's stack size (pthread attributes; 8 MiB if unknown).
std::size_t current_stack_bytes() noexcept {
  std::size_t bytes = std::size_t{8} << 20;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    std::size_t s = 0;
    if (pthread_attr_getstacksize(&attr, &s) == 0 && s != 0) bytes = s;
    pthread_attr_destroy(&attr);
  }
  return bytes;
}

// Single-writer counter update (relaxed load + store: exact, no RMW).
inline void set(std::atomic<std::uint64_t>& c, std::uint64_t v) noexcept {
  c.store(v, std::memory_order_relaxed);
}
inline void add(std::atomic<std::uint64_t>& c, std::uint64_t by) noexcept {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

Worker::Worker(Scheduler& pool, std::uint32_t index)
    : pool_(pool),
      index_(index),
      // Not value-initialised: a large allocation is mapped lazily, so only
      // the pages of the depth actually reached are ever touched.
      frames_(new Frame*[current_stack_bytes() / kMinFrameBytes + 1]),
      steal_{StealRng{0x9E37'79B9'7F4A'7C15ull * (index + 1)}, {}} {
  inline_depth_ = pool.options_.inline_forks ? kInitialInlineDepth : kNoInlineDepth;
  set_task_base(0);
  stats_.state_since_ns.store(now_ns(), std::memory_order_relaxed);
}

Worker::~Worker() = default;

void Worker::beat(bool periodic, std::int64_t now) noexcept {
  note_progress();  // a forking task is alive (the daemon's stuck-worker check)
  bool promote = false;
  bool poll_source = false;
  if (periodic) {
    set(stats_.spawns, spawns_);
    // Self-heartbeat: only parked workers could take work and none is
    // searching, so nobody will raise our flag. Relaxed loads: a stale
    // value delays or adds one promotion, never loses work (the push side
    // of the wake-up protocol re-reads them after a fence).
    const bool only_parked_helpers = pool_.sleepers_.load(std::memory_order_relaxed) != 0 &&
                                     pool_.spinners_.load(std::memory_order_relaxed) == 0;
    if (only_parked_helpers || pool_.source_ != nullptr) {
      if (now == 0) now = now_ns();
      const std::int64_t interval = pool_.heartbeat_ns_.load(std::memory_order_relaxed);
      if (only_parked_helpers && now >= next_self_beat_ns_) {
        next_self_beat_ns_ = now + interval;
        promote = true;
      }
      // A busy worker looks at its WorkSource once per heartbeat too, so
      // new work (another client's tasks) does not wait behind a long
      // fork-join task that keeps every worker busy. The source bounds the
      // nesting (WorkSource::poll).
      if (pool_.source_ != nullptr && now >= next_poll_ns_) {
        next_poll_ns_ = now + interval;
        poll_source = true;
      }
    }
  }
  if (heartbeat_.load(std::memory_order_relaxed)) {
    heartbeat_.store(false, std::memory_order_relaxed);
    promote = true;
  }
  if (promote) promote_oldest();
  if (poll_source) this->poll_source();
}

void Worker::end_inline(std::int64_t start, std::uint64_t nested_start) noexcept {
  const std::int64_t now = now_ns();
  // Jobs and client work run inside the subtree are not its own duration.
  const std::int64_t took = now - start - static_cast<std::int64_t>(nested_ns_ - nested_start);
  // Relaxed: a tuning knob (set_heartbeat_us).
  const std::int64_t interval = pool_.heartbeat_ns_.load(std::memory_order_relaxed);
  const std::int64_t target = interval / kInlineTargetFraction;
  ++inline_runs_;
  if (took > kDeafHeartbeats * interval) polling_until_ns_ = now + kPollingHeartbeats * interval;
  if (took > kInlineLongTargets * target && target > 0) {
    // log2(took / target) - 1 >= 1 levels deeper, at most kMaxDeeperStep.
    const auto levels = std::min(
        static_cast<std::uint32_t>(std::bit_width(static_cast<std::uint64_t>(took / target))) - 2,
        kMaxDeeperStep);
    inline_depth_ = std::min(inline_depth_ + levels, kMaxInlineDepth);
    set_task_base(task_base_);
    // A new window: the subtrees counted so far were at the old depth.
    window_start_ns_ = now;
    window_runs_ = inline_runs_;
    window_frames_ = frames_pushed_;
  } else {
    tune_inline_window(now, interval);
  }
  // The forks inside did not tick: this is their heartbeat check (an idle
  // worker's flag, the self-heartbeat for parked ones, the WorkSource).
  beat(true, now);
}

void Worker::tune_inline_window(std::int64_t now, std::int64_t interval) noexcept {
  if (now - window_start_ns_ < interval) return;
  const bool dense = inline_runs_ - window_runs_ > 2 * kInlineTargetFraction ||
                     frames_pushed_ - window_frames_ > kMaxFramesPerBeat;
  if (dense && inline_depth_ > kMinInlineDepth && inline_depth_ != kNoInlineDepth) {
    --inline_depth_;
    set_task_base(task_base_);
  }
  window_start_ns_ = now;
  window_runs_ = inline_runs_;
  window_frames_ = frames_pushed_;
}

void Worker::beat_from_forks(bool periodic) noexcept {
  std::int64_t now = 0;
  if (periodic) {
    now = now_ns();
    tune_inline_window(now, pool_.heartbeat_ns_.load(std::memory_order_relaxed));
  }
  beat(periodic, now);
}

bool Worker::poll_source() {
  const std::int64_t start = now_ns();
  const bool ran = pool_.source_->poll(*this);
  if (ran) nested_ns_ += static_cast<std::uint64_t>(now_ns() - start);
  return ran;
}

void Worker::promote_oldest(bool give_rest) noexcept {
  while (promote_from_ < top_) {
    Frame* f = frames_[promote_from_];
    if (f->kind == Frame::Kind::kJoin) {
      auto* jf = static_cast<JoinFrameBase*>(f);
      Job* job = new (jf->job_storage) Job{};
      job->execute = f->entry;
      job->context = jf;
      f->promoted = true;
      ++promote_from_;
      push_promoted(job);
      return;
    }
    auto* range = static_cast<RangeFrameBase*>(f);
    if (RangeJob* rj = range->try_split(give_rest)) {
      // The frame stays at promote_from_: it may split again.
      push_promoted(&rj->job);
      return;
    }
    // Too small to halve. The newest frame stays promotable while a grain
    // is left, for share_before_long_call to give away whole: there is
    // nothing newer to promote past it. (A heartbeat at the last
    // iteration's tick would otherwise retire a chunk's last long task.)
    if (promote_from_ + 1 == top_ && range->end - range->next >= range->grain) return;
    ++promote_from_;  // unsplittable for good (invariant 2)
  }
}

void Worker::push_promoted(Job* job) noexcept {
  // The deque's buffer holds 256 jobs and promotion adds at most one per
  // live frame, so push's growth path (which allocates) is practically
  // never taken; if it throws bad_alloc the daemon terminates, which is the
  // right outcome for an out-of-memory worker.
  deque_.push(job);
  ++promotions_;
  pool_.wake_if_unattended();
}

bool Worker::reclaim(Job* job) noexcept {
  Job* j = deque_.pop();
  // Invariant 3: the bottom is `job` unless a thief took it, in which case
  // everything older went too and the deque is empty. Anything else would
  // lose a job silently: stop loudly instead (one compare, release too).
  if (j != nullptr && j != job) [[unlikely]] {
    std::fputs("beat scheduler: deque invariant broken at a join; aborting\n", stderr);
    std::abort();
  }
  return j == job;
}

void Worker::share_with_parked() noexcept {
  // Relaxed: a hint; push_promoted's wake-up re-reads them after a fence.
  if (pool_.sleepers_.load(std::memory_order_relaxed) != 0 &&
      pool_.spinners_.load(std::memory_order_relaxed) == 0)
    promote_oldest();
}

void Worker::share_before_long_call() noexcept { promote_oldest(/*give_rest=*/true); }

void Worker::run_taken(Job* job) noexcept {
  begin_work();
  run_job(job);
}

void Worker::run_job(Job* job) noexcept {
  ++jobs_run_;
  const std::int64_t start = now_ns();
  {
    const TaskBaseScope scope(*this);
    job->execute(job, *this);
  }
  nested_ns_ += static_cast<std::uint64_t>(now_ns() - start);
  note_progress();
  if (pool_.source_ != nullptr) pool_.source_->publish(*this);
  // Counters too, so a run() caller reading stats() after its root returned
  // sees every spawn and steal of the run (thieves' jobs finish first).
  publish_counters();
  // SYNC POINT WRITE: everything the job did; pairs with the creator's
  // acquire load of done (job.hpp). The job may be gone after this store.
  job->done.store(1, std::memory_order_release);
}

Job* Worker::try_steal() noexcept {
  // One policy for the whole round (a SIGHUP may install another).
  const StealPolicy& policy = pool_.policy();
  raise_target_ = StealPolicy::kNoVictim;
  // Every kPolicySampleEvery-th round times its first decision (the one
  // that sets the round up): two clock reads per 64 rounds, not per steal.
  const bool timed = (steal_rounds_++ & (kPolicySampleEvery - 1)) == 0;
  for (std::uint32_t attempt = 0;; ++attempt) {
    std::uint32_t v;
    if (attempt == 0 && timed) [[unlikely]] {
      const std::int64_t t0 = now_ns();
      v = policy.victim(index_, attempt, *pool_.loads_, steal_);
      policy_ns_ += static_cast<std::uint64_t>(now_ns() - t0);
      ++policy_samples_;
    } else {
      v = policy.victim(index_, attempt, *pool_.loads_, steal_);
    }
    if (v == StealPolicy::kNoVictim) return nullptr;
    Worker& victim = *pool_.workers_[v];
    ++steal_attempts_;
    if (Job* job = victim.deque_.steal()) {
      ++steals_;
      // Whatever is left there is handed on by begin_work() (leave_search):
      // we are still counted as searching here, so a wake-up now would be
      // skipped.
      return job;
    }
    if (raise_target_ == StealPolicy::kNoVictim && victim.state() == WorkerState::kBusy)
      raise_target_ = v;
  }
}

void Worker::raise_heartbeat(std::int64_t now) noexcept {
  if (now < next_raise_ns_ || raise_target_ == StealPolicy::kNoVictim) return;
  next_raise_ns_ = now + pool_.heartbeat_ns_.load(std::memory_order_relaxed);
  // Relaxed: a request to split work; the job it leads to is published by
  // the deque's own release/acquire.
  pool_.workers_[raise_target_]->heartbeat_.store(true, std::memory_order_relaxed);
}

void Worker::wait_for(Job& job) noexcept {
  if (pool_.source_ != nullptr) pool_.source_->publish(*this);
  // SYNC POINT READ (all loads of done below): pairs with run_job's release.
  if (job.done.load(std::memory_order_acquire) != 0) return;
  // Help while waiting (steal, roots, the source) unless this thread is
  // already kMaxWaitNesting waits deep.
  const bool help = wait_depth_ < kMaxWaitNesting;
  ++wait_depth_;
  std::int64_t now = now_ns();
  last_now_ns_ = now;
  end_work(now);  // searching: counted for the pushers' wake-up decisions
  std::int64_t next_yield = now + kSpinYieldNs;
  while (job.done.load(std::memory_order_acquire) == 0) {
    Job* other = nullptr;
    if (help && (other = try_steal()) != nullptr) {
      run_taken(other);
    } else if (help && (other = pool_.take_injected()) != nullptr) {
      // A searching worker is why inject() woke nobody: run the root here.
      run_taken(other);
      pool_.root_done();
    } else if (!help || pool_.source_ == nullptr || !poll_source()) {
      // poll() calls begin_work() itself when it finds work.
      now = now_ns();
      last_now_ns_ = now;
      raise_heartbeat(now);         // most likely on the thief that has our job
      spin_pause(now, next_yield);  // a thief sharing this core must get it
      continue;
    }
    now = now_ns();
    last_now_ns_ = now;
    end_work(now);
    next_yield = now + kSpinYieldNs;
  }
  --wait_depth_;
  last_now_ns_ = now_ns();
  begin_work();  // busy again: the joined task goes on
}

void Worker::leave_search() noexcept {
  // seq_cst: the wake-up protocol's counters (scheduler.hpp). A pusher
  // that saw us searching skipped its wake-up; if we were the last one
  // searching and work is still visible, that wake-up is ours to make
  // (hand-off), or the work would wait for a parked worker.
  if (pool_.spinners_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      pool_.sleepers_.load(std::memory_order_seq_cst) != 0 && pool_.work_visible())
    pool_.wake_one();
  enter_state(WorkerState::kBusy, last_now_ns_);
}

void Worker::end_work(std::int64_t now) noexcept {
  if (searching_) return;
  searching_ = true;
  // A new idle period: its first raise need not wait out the interval of
  // the last one (raise_heartbeat), or every piece of work shorter than a
  // heartbeat would leave this worker idle for the rest of one.
  next_raise_ns_ = 0;
  enter_state(WorkerState::kIdle, now);
  pool_.spinners_.fetch_add(1, std::memory_order_seq_cst);
}

void Worker::enter_state(WorkerState s, std::int64_t now) noexcept {
  const auto old = static_cast<WorkerState>(stats_.state.load(std::memory_order_relaxed));
  const std::int64_t since = stats_.state_since_ns.load(std::memory_order_relaxed);
  const auto spent = static_cast<std::uint64_t>(now > since ? now - since : 0);
  switch (old) {
    case WorkerState::kBusy: add(stats_.busy_ns, spent); break;
    case WorkerState::kIdle: add(stats_.idle_ns, spent); break;
    case WorkerState::kParked: add(stats_.parked_ns, spent); break;
  }
  // Relaxed: statistics and a victim-selection hint.
  stats_.state.store(static_cast<std::uint32_t>(s), std::memory_order_relaxed);
  stats_.state_since_ns.store(now, std::memory_order_relaxed);
  publish_counters();
}

void Worker::publish_counters() noexcept {
  set(stats_.spawns, spawns_);
  set(stats_.inline_runs, inline_runs_);
  set(stats_.promotions, promotions_);
  set(stats_.steal_attempts, steal_attempts_);
  set(stats_.steals, steals_);
  set(stats_.jobs_run, jobs_run_);
  set(stats_.policy_samples, policy_samples_);
  set(stats_.policy_ns, policy_ns_);
}

void Worker::RangeFrameBase::join_splits(Worker& w, bool run_reclaimed) {
  Job* first_failure = nullptr;
  for (std::uint32_t k = splits; k-- > 0;) {
    RangeJob& rj = split(k);
    if (w.reclaim(&rj.job)) {
      if (run_reclaimed) {
        // Runs the part here; it may split again. An exception from it
        // must still let the older parts finish before propagating.
        try {
          run_range(this, w, rj.begin, rj.end);
        } catch (...) {
          for (std::uint32_t older = k; older-- > 0;) {
            RangeJob& o = split(older);
            if (!w.reclaim(&o.job)) {
              w.wait_for(o.job);
              o.job.discard_failure();
            }
          }
          if (first_failure != nullptr) first_failure->discard_failure();
          splits = 0;
          throw;
        }
      }
      continue;
    }
    w.wait_for(rj.job);
    // Report the first failure (newest part) at the end; drop later ones,
    // and every one when unwinding already carries an exception.
    if (rj.job.failed) {
      if (first_failure == nullptr && run_reclaimed)
        first_failure = &rj.job;
      else
        rj.job.discard_failure();
    }
  }
  splits = 0;
  if (first_failure != nullptr) first_failure->rethrow_if_failed();
}

}  // namespace beat::sched
