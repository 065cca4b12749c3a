// Worker: one scheduler thread's state, and the fork-join API kernels use.
//
//   w.join(a, b)                       a(Worker&) and b(Worker&), maybe in parallel
//   w.parallel_for(lo, hi, grain, f)   f(Worker&, i) for i in [lo, hi)
//
// Heartbeat scheduling (Acar, Charguéraud, Rainey, PLDI 2018; the frame
// list follows Spice, github.com/judofyr/spice): a fork does not touch the
// deque. It records a frame on a worker-private stack (a few stores) and
// runs its first branch; at the join, if nobody asked for the second
// branch, it is called inline like a plain function. Only when a heartbeat
// arrives does the worker *promote* its oldest unpromoted frame: a join
// frame's second branch, or the upper half of a parallel_for's remaining
// range, becomes a Job pushed on its Chase-Lev deque where a thief can take
// it. Heartbeats come from idle workers (a thief that found nothing raises
// the flag of a busy worker at most once per heartbeat interval, so "a
// heartbeat has passed and someone could take it" is one flag) and, when
// the only idle workers are parked, from the busy worker's own clock read
// every kSelfBeatPeriod spawns (or poll() calls); the outermost frame of a
// task is then shared at once, so coarse work that never reaches that
// count still reaches the parked workers. With nobody idle a fork costs a
// few stores and two predictable branches, no atomic read-modify-write and
// no fence.
//
// Inline subtrees (adaptive granularity): even a few stores per fork are
// several times the work of a fine-grained fork (fib's is two additions),
// and only the outermost frames are ever promoted. So a task records frames
// only down to a self-tuned depth below its start (inline_depth_, counted
// in halvings: a join's branches are one level deeper than the join, a
// parallel_for's bodies log2(range) levels); a fork deeper than that whose
// callables are generic (they accept any executor, `[&](auto& e)`) runs as
// an *inline subtree*: the callables get the context's Inline<false>
// clone, whose join is `a(e); b(e);` and whose parallel_for is a plain
// loop, so the compiler sees ordinary recursion. Each inline subtree is
// timed (two clock reads) and serves as the heartbeat check of the forks
// inside it; the depth is tuned towards subtrees of heartbeat/16 (see
// kInlineTargetFraction), so that a heartbeat is usually noticed within a
// fraction of its interval. Nothing bounds the first subtree of a task
// whose shape the depth misjudges; after a subtree that ran longer than
// kDeafHeartbeats heartbeats (an unbalanced tree, where depth says little
// about size), subtrees use the Inline<true> clone for kPollingHeartbeats
// heartbeats: it counts its forks and checks the heartbeat flag at each,
// and on a heartbeat records the fork as a frame so that it can be
// promoted. Callables that take a concrete context type (Worker&,
// TaskContext&) always go through frames.
//
// Thread-safety: a Worker is used by its own thread only, except the
// members marked "any thread". join/parallel_for must be called on the
// Worker passed to the running callable (the Worker of the current thread).
//
// Invariants (frame stack):
//  1. frames_[0, top_) are the live forks of this thread, oldest first.
//  2. Frames below promote_from_ can no longer be promoted: join frames
//     there are promoted, range frames there are unsplittable (their
//     remaining range only shrinks). Promotion always takes the oldest, so
//     promoted work sits in the deque in stack order.
//  3. Hence at a join the deque's bottom is the job being joined, or the
//     deque holds nothing of ours above older frames because thieves take
//     the oldest first: if our job was stolen, so was everything older.
#pragma once

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "daemon/scheduler/chase_lev_deque.hpp"
#include "daemon/scheduler/job.hpp"
#include "daemon/scheduler/steal_policy.hpp"

namespace beat::sched {

class Scheduler;
template <bool kPolls>
class WorkerInline;
template <class Derived, class Base, bool kPolls>
class InlineForks;

// Monotonic clock in ns (steady_clock).
std::int64_t now_ns() noexcept;

namespace detail {
// A context type that names its inline clones (Worker, TaskContext).
template <class Ctx>
concept HasInlineClones = requires {
  typename Ctx::template Inline<false>;
  typename Ctx::template Inline<true>;
};
// A callable that accepts both inline clones of Ctx (so it is generic over
// its executor), with `Args` after the context.
template <class Ctx, bool kPolls>
using InlineClone = typename Ctx::template Inline<kPolls>;
// (clang-format 14 mangles the `<` of a concept definition.)
// clang-format off
template <class Ctx, class F, class... Args>
concept InlineCallable = HasInlineClones<Ctx> &&
                         std::is_invocable_v<F&, InlineClone<Ctx, false>&, Args...> &&
                         std::is_invocable_v<F&, InlineClone<Ctx, true>&, Args...>;
// clang-format on
}  // namespace detail

// What a worker is doing, for victim selection and statistics.
// (WorkerState is defined in steal_policy.hpp: kBusy, kIdle, kParked.)

// Counters of one worker: written only by it (relaxed load + store, no
// RMW), read by any thread with relaxed loads (a snapshot a little old).
struct alignas(kCacheLine) WorkerStats {
  std::atomic<std::uint64_t> jobs_run{0};  // roots and stolen jobs
  // forks + parallel_for iterations, except inside inline subtrees (where
  // only the polling clone counts them)
  std::atomic<std::uint64_t> spawns{0};
  std::atomic<std::uint64_t> inline_runs{0};     // inline subtrees run
  std::atomic<std::uint64_t> promotions{0};      // frames made stealable
  std::atomic<std::uint64_t> steal_attempts{0};  // deques probed
  std::atomic<std::uint64_t> steals{0};          // jobs taken from another worker
  // Steal policy decision time, sampled: the first victim() call of every
  // kPolicySampleEvery-th steal round is timed (clock reads included).
  std::atomic<std::uint64_t> policy_samples{0};
  std::atomic<std::uint64_t> policy_ns{0};
  std::atomic<std::uint64_t> parks{0};
  std::atomic<std::uint64_t> busy_ns{0};
  std::atomic<std::uint64_t> idle_ns{0};  // searching for work (spinning, stealing)
  std::atomic<std::uint64_t> parked_ns{0};
  // The current state and when it began (steady clock ns), so a reader can
  // add the period in progress.
  std::atomic<std::uint32_t> state{static_cast<std::uint32_t>(WorkerState::kIdle)};
  std::atomic<std::int64_t> state_since_ns{0};
  // Signs of life for the daemon's health check (daemon/health_check.hpp):
  // bumped when a job or a client task ends, at every heartbeat check's
  // slow path (forking tasks reach one at least every kSelfBeatPeriod
  // forks), and when a task polls for cancellation (TaskContext::cancelled,
  // which long kernels call).
  std::atomic<std::uint64_t> progress{0};
};

class Worker {
 public:
  // Frame kinds on the private stack.
  struct Frame {
    enum class Kind : std::uint8_t { kJoin, kRange };
    Kind kind;
    bool promoted;  // join frames: the second branch is in the deque
    // Join frames: the entry a thief runs (JoinFrame<B>::run_stolen).
    void (*entry)(Job*, Worker&) noexcept;
  };

  // The inline clones of Worker (see the overview and inline_forks.hpp).
  template <bool kPolls>
  using Inline = WorkerInline<kPolls>;

  Worker(Scheduler& pool, std::uint32_t index);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  std::uint32_t index() const noexcept { return index_; }
  Scheduler& scheduler() const noexcept { return pool_; }

  // Runs a(*this) and b(w) where w is the worker that runs b (this one
  // unless b was stolen); returns when both returned. Generic callables
  // (`[&](auto& w)`) may instead get an inline clone of the context
  // (Worker::Inline), which offers join, parallel_for, poll and index. If
  // a throws, b is dropped unless a thief already runs it (then it is
  // waited for) and a's exception propagates; if only b throws, its
  // exception propagates after a returned.
  template <class A, class B>
  void join(A&& a, B&& b) {
    join(*this, a, b);
  }

  // The same for a context type other than Worker (TaskContext): a(ctx)
  // and b(ctx) inline; a stolen b gets ctx.on(thief), Ctx's copy bound to
  // the thief. REQUIRES: Ctx has `on(Worker&) const`, returning the
  // context a thief runs b with (Ctx itself, or a reference), and
  // `Worker* worker() const`, and ctx is this worker's context. Costs the
  // same as join(a, b): no wrapper closures.
  template <class Ctx, class A, class B>
  void join(Ctx& ctx, A&& a, B&& b);

  // Calls body(w, i) once for each i in [begin, end), where w is the
  // running worker; returns when all calls returned. Ranges shorter than
  // 2 * grain are never split. An exception propagates after every
  // stolen part finished.
  template <class Body>
  void parallel_for(std::uint64_t begin, std::uint64_t end, std::uint64_t grain, Body&& body) {
    parallel_for(*this, begin, end, grain, body);
  }
  // The same with body(ctx_i, i) for a context type (see join(ctx, a, b)).
  template <class Ctx, class Body>
  void parallel_for(Ctx& ctx, std::uint64_t begin, std::uint64_t end, std::uint64_t grain,
                    Body&& body);

  // For a caller about to run something that may take long and neither
  // forks nor polls (a client task whose kernel is not batchable): no
  // heartbeat check can promote the work queued in this worker's frames
  // until it returns, so the oldest promotable frame is promoted now, for
  // any worker that is or becomes idle meanwhile (push_promoted wakes a
  // parked one if nobody is searching). Unconditional: a check of the idle
  // counts here races with a worker between two looks at the deques, which
  // then stays idle for the whole call. Unstolen, the work comes back to
  // its owner at the cost of a deque push and pop (tens of nanoseconds,
  // beside a call worth sharing around).
  void share_before_long_call() noexcept;

  // A sign of life (WorkerStats::progress). Owner only: a relaxed load and
  // store to this worker's own stats line, a nanosecond.
  void note_progress() noexcept {
    stats_.progress.store(stats_.progress.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  }

  // The heartbeat check, for a kernel's long sequential loop between forks,
  // so its enclosing frames can be promoted while it runs: one relaxed load.
  // (Forks and parallel_for iterations check on their own.)
  void poll() noexcept {
    // Relaxed: the flag only requests work splitting; no data hangs on it.
    const bool periodic = (++polls_ & (kSelfBeatPeriod - 1)) == 0;
    if (periodic | heartbeat_.load(std::memory_order_relaxed)) [[unlikely]]
      beat(periodic);
  }

  // For WorkSource::poll: call once work is claimed, before running it.
  // Leaves the searching state (the wake-up protocol counts searching
  // workers) and starts a busy period at the idle loop's last clock read.
  void begin_work() noexcept {
    if (!searching_) return;
    searching_ = false;
    leave_search();
  }

  // Runs f() as a task of its own on this worker: the forks inside count
  // their depth from here, and it starts at least kJobInlineDepth deep
  // (see "Inline subtrees"). For a WorkSource whose client tasks are the
  // iterations of one loop, so that the loop does not use up their depth.
  // Owner thread; returns what f returns.
  template <class F>
  decltype(auto) as_task(F&& f);

  // The depth (in halvings below the running task's start, see the
  // overview) from which forks run inline; tuned by the worker (owner
  // thread; tests and benchmarks).
  std::uint32_t inline_depth() const noexcept { return inline_depth_; }
  // Owner thread: the join branches and loop bodies enclosing the running
  // code on this worker (0 in a job the idle loop started; tests).
  std::uint32_t fork_depth() const noexcept { return fork_depth_; }

  // Any thread: the worker's statistics.
  const WorkerStats& stats() const noexcept { return stats_; }
  // Any thread: racy count of stealable jobs.
  std::uint32_t queue_size() const noexcept { return deque_.size_hint(); }
  WorkerState state() const noexcept {
    // Relaxed: a hint for victim selection.
    return static_cast<WorkerState>(stats_.state.load(std::memory_order_relaxed));
  }

 private:
  friend class Scheduler;
  template <class Derived, class Base, bool kPolls>
  friend class InlineForks;
  struct JoinFrameBase;
  template <class Ctx, class B>
  struct JoinFrame;
  template <class Ctx, class Body>
  struct RangeFrame;
  // Where a frame keeps its context: nothing when it is the Worker itself
  // (the thief is the context), a pointer otherwise.
  struct NoContext {};
  template <class Ctx>
  using ContextSlot = std::conditional_t<std::is_same_v<Ctx, Worker>, NoContext, Ctx*>;
  struct RangeJob;
  struct RangeFrameBase;

  // Spawns between self-heartbeat checks (a power of two); the check is
  // two relaxed loads when no worker is parked. 256 spawns of fib(35) take
  // about 1 us on the development VM (perf/RESULTS.md).
  static constexpr std::uint64_t kSelfBeatPeriod = 256;
  // Steal rounds between timed policy decisions (a power of two).
  static constexpr std::uint64_t kPolicySampleEvery = 64;

  // The fork-path heartbeat check: counts the spawn, and every
  // kSelfBeatPeriod spawns, or when an idle worker raised the flag, takes
  // the slow path.
  void tick() noexcept {
    const bool periodic = (++spawns_ & (kSelfBeatPeriod - 1)) == 0;
    if (periodic | heartbeat_.load(std::memory_order_relaxed)) [[unlikely]]
      beat_from_forks(periodic);
  }
  // tick()'s slow path: with `periodic`, first the depth tuning's window
  // (a clock read the frame-only path otherwise never makes), then beat().
  void beat_from_forks(bool periodic) noexcept;
  // At the outermost frame of a task (top_ == 1 after the push): if
  // workers are parked and none is searching, nobody would raise our flag
  // and a coarse loop or join may never reach kSelfBeatPeriod spawns, so
  // promote at once and wake one. Two relaxed loads, once per task.
  void share_if_outermost() noexcept {
    if (top_ == 1) [[unlikely]]
      share_with_parked();
  }
  void share_with_parked() noexcept;
  // Every frame (JoinFrameBase is the smallest) takes at least this many
  // bytes of its thread's stack, so stack_bytes / kMinFrameBytes entries
  // can never overflow (push_frame does not check).
  static constexpr std::size_t kMinFrameBytes = 48;
  // Splits one parallel_for frame can hold; each halves the remaining range,
  // so after 16 the owner keeps 1/65536 of it (and every stolen part can be
  // split again by its thief). 16 keeps the frame under 1 KiB of stack:
  // nqueens nests a parallel_for per row.
  static constexpr std::uint32_t kMaxSplits = 16;
  // wait_for helps (steals, runs roots, polls the source) only this many
  // levels deep; deeper it just waits, so helping cannot grow the stack
  // without bound (each level keeps the interrupted task's frames).
  static constexpr std::uint32_t kMaxWaitNesting = 64;

  // Inline subtrees (overview). The depth starts at kInitialInlineDepth,
  // within [kMinInlineDepth, kMaxInlineDepth], and is tuned towards
  // subtrees of about heartbeat / kInlineTargetFraction (6.25 us at the
  // default 100 us):
  //  - deeper at once after a subtree longer than kInlineLongTargets
  //    targets: by log2(duration / target) - 1 levels (a binary fork tree
  //    halves its subtrees per level), at most kMaxDeeperStep at a time (a
  //    preempted subtree looks long too), since a long subtree is a
  //    heartbeat nobody heard. The duration excludes jobs the worker ran
  //    inside the subtree (nested_ns_: stolen work while a polled fork
  //    waits, client tasks at a heartbeat);
  //  - one level shallower, at most once per heartbeat interval, after an
  //    interval that saw more than 2 * kInlineTargetFraction subtrees
  //    (their mean is under half the target) or more than
  //    kMaxFramesPerBeat frames pushed (a tree shallower than the depth,
  //    such as nqueens', never reaches a subtree; a flat loop's iterations
  //    push no frames and do not count). Judged by time, not by count, so
  //    the tiny subtrees at the end of every computation weigh no more
  //    than the time they take.
  // A task's outermost fork is always a frame (kMinInlineDepth), so it can
  // always be shared. Every job (a root from Scheduler::run, a stolen one,
  // or a client task a WorkSource runs through as_task) starts at least
  // kJobInlineDepth deep: after small tasks, or the tail of a computation,
  // pulled the depth down, the first subtrees of a big binary fork tree
  // are then about 1/4096 of it rather than half (fib(35) settles at 10 to
  // 12 here; 8 made the first subtree of a stolen fib(33) 125-370 us long).
  static constexpr std::uint32_t kJobInlineDepth = 12;
  static constexpr std::uint32_t kInitialInlineDepth = kJobInlineDepth;
  static constexpr std::uint32_t kMinInlineDepth = 1;
  static constexpr std::uint32_t kMaxInlineDepth = 64;
  static constexpr std::int64_t kInlineTargetFraction = 16;
  static constexpr std::int64_t kInlineLongTargets = 4;
  static constexpr std::uint32_t kMaxDeeperStep = 4;
  static constexpr std::uint64_t kMaxFramesPerBeat = 256;
  // A subtree longer than this many heartbeats went unnoticed too long
  // (depth says little about size in an unbalanced tree): subtrees that
  // start in the next kPollingHeartbeats heartbeats poll at every fork.
  static constexpr std::int64_t kDeafHeartbeats = 2;
  static constexpr std::int64_t kPollingHeartbeats = 32;
  // inline_depth_ when SchedulerOptions::inline_forks is off: never reached
  // (frames_ has one entry per kMinFrameBytes of stack, far fewer).
  static constexpr std::uint32_t kNoInlineDepth = std::uint32_t{1} << 30;

  // join's and parallel_for's frame paths (and the polling clone's, for a
  // fork it records).
  template <class Ctx, class A, class B>
  void join_frame(Ctx& ctx, A& a, B& b);
  // Runs f(in) with `in` an inline clone of ctx, timed (end_inline).
  template <class Ctx, class F>
  void run_inline(Ctx& ctx, F&& f);
  // After an inline subtree that began at `start` (now_ns), with nested_ns_
  // at `nested_start` then: tunes the depth and does the heartbeat work its
  // forks skipped.
  void end_inline(std::int64_t start, std::uint64_t nested_start) noexcept;
  // The depth tuning's interval window (see the constants above), at a
  // clock read `now` already made.
  void tune_inline_window(std::int64_t now, std::int64_t interval) noexcept;
  // The polling clone's check at each fork: counts the fork, or returns
  // true when a heartbeat is due (kSelfBeatPeriod forks, or the flag): the
  // fork must then go through join_frame/loop, whose tick() counts it and
  // runs beat().
  bool inline_fork_wants_frame() noexcept {
    // Relaxed: the flag only requests work splitting (as in tick()).
    if (((spawns_ + 1) & (kSelfBeatPeriod - 1)) == 0 || heartbeat_.load(std::memory_order_relaxed))
        [[unlikely]]
      return true;
    ++spawns_;
    return false;
  }
  // Forks of the task that starts now count their depth from here; work
  // nested into a running task (a stolen job run while waiting, client
  // tasks polled at a heartbeat) gets its own frames to share.
  void set_task_base(std::uint32_t base) noexcept {
    task_base_ = base;
    inline_at_ = base + inline_depth_;
  }
  class TaskBaseScope;
  // fork_depth_ levels around a join's branches (one: the fork halves the
  // work) or a loop's bodies (log2 of the range: a body is that small a
  // share of it, so depth measures the share of a task a subtree is,
  // whatever the fan-out).
  class ForkDepthStep {
   public:
    ForkDepthStep(Worker& w, std::uint32_t levels) noexcept : w_(w), levels_(levels) {
      w.fork_depth_ += levels;
    }
    ~ForkDepthStep() { w_.fork_depth_ -= levels_; }
    ForkDepthStep(const ForkDepthStep&) = delete;
    ForkDepthStep& operator=(const ForkDepthStep&) = delete;

   private:
    Worker& w_;
    const std::uint32_t levels_;
  };
  static std::uint32_t loop_levels(std::uint64_t iterations) noexcept {
    return iterations < 4 ? 1 : static_cast<std::uint32_t>(std::bit_width(iterations)) - 1;
  }
  // WorkSource::poll from inside a running task or a wait; the time it
  // spends running work counts as nested (nested_ns_). (The idle loop
  // calls the source itself: no subtree is open there.)
  bool poll_source();

  // parallel_for's loop over [begin, end) as one splittable frame; also
  // runs split parts (stolen or reclaimed). REQUIRES: begin < end, grain > 0.
  template <class Ctx, class Body>
  void loop(Ctx& ctx, std::uint64_t begin, std::uint64_t end, std::uint64_t grain, Body& body);

  // No capacity check: frames_ holds one entry per kMinFrameBytes of this
  // thread's stack and every frame occupies more than that on the stack,
  // so the thread's stack overflows first (see the constructor).
  void push_frame(Frame* f) noexcept {
    frames_[top_++] = f;
    ++frames_pushed_;
  }
  // Pops an unpromoted join frame: promote_from_ <= its index already
  // (invariant 2), so nothing else changes.
  void pop_unpromoted() noexcept { --top_; }
  // Pops any frame.
  void pop_frame() noexcept {
    --top_;
    if (promote_from_ > top_) promote_from_ = top_;
  }

  // Heartbeat slow path; `periodic`: the kSelfBeatPeriod count came round
  // (or an inline subtree ended); `now`: a clock read already made, or 0.
  void beat(bool periodic, std::int64_t now = 0) noexcept;
  // give_rest: RangeFrameBase::try_split's, for share_before_long_call.
  void promote_oldest(bool give_rest = false) noexcept;  // invariant 2
  // Owner: takes `job` back from the deque; false when a thief has it.
  bool reclaim(Job* job) noexcept;
  // Owner: waits for a stolen job, running other work meanwhile.
  void wait_for(Job& job) noexcept;
  // Runs a job taken from another deque (or injected) on this worker.
  void run_job(Job* job) noexcept;
  // Leaves the search (begin_work) and runs a job this worker just took.
  void run_taken(Job* job) noexcept;
  // One round of the steal policy; a job or nullptr. Remembers a busy
  // victim seen on the way (raise_target_).
  Job* try_steal() noexcept;
  // Idle side of the heartbeat: at most once per interval, asks the busy
  // worker seen in the last steal round to promote work.
  void raise_heartbeat(std::int64_t now) noexcept;
  // Pushes a promoted job and wakes a parked worker if nobody is looking.
  void push_promoted(Job* job) noexcept;
  // Statistics of the current state's period.
  void enter_state(WorkerState s, std::int64_t now_ns) noexcept;
  void leave_search() noexcept;              // searching -> busy
  void end_work(std::int64_t now) noexcept;  // busy -> searching
  void publish_counters() noexcept;

  Scheduler& pool_;
  const std::uint32_t index_;

  // ---- owner-private, hot (touched by every fork) ----
  alignas(kCacheLine) std::unique_ptr<Frame*[]> frames_;
  std::uint32_t top_ = 0;
  std::uint32_t promote_from_ = 0;
  std::uint32_t fork_depth_ = 0;  // enclosing join branches and loop bodies (ForkDepthStep)
  std::uint32_t inline_at_ = 0;   // forks at fork_depth_ >= this run inline
  std::uint64_t spawns_ = 0;      // ticks; published to stats_ by publish_counters
  std::uint64_t polls_ = 0;       // poll() calls, for its own self-heartbeat period
  // ---- owner-private, once per inline subtree ----
  std::uint32_t task_base_ = 0;        // fork_depth_ when the running task began
  std::uint32_t inline_depth_ = 0;     // set by the constructor
  std::int64_t polling_until_ns_ = 0;  // subtrees starting before this use the polling clone
  std::int64_t window_start_ns_ = 0;   // the depth tuning's window: since when
  std::uint64_t window_runs_ = 0;      // inline_runs_ at window_start_ns_
  std::uint64_t window_frames_ = 0;    // frames_pushed_ at window_start_ns_
  std::uint64_t frames_pushed_ = 0;    // join and loop frames ever pushed
  std::uint64_t nested_ns_ = 0;        // time in jobs and client work run by this worker
  std::uint64_t inline_runs_ = 0;
  // ---- owner-private, cold ----
  std::uint64_t promotions_ = 0;
  std::uint64_t steal_attempts_ = 0;
  std::uint64_t steals_ = 0;
  std::uint64_t steal_rounds_ = 0;  // for sampling the policy's decision time
  std::uint64_t policy_samples_ = 0;
  std::uint64_t policy_ns_ = 0;
  std::uint64_t jobs_run_ = 0;
  std::int64_t next_self_beat_ns_ = 0;
  std::int64_t next_raise_ns_ = 0;  // when this worker, idle, may raise a flag again
  std::int64_t next_poll_ns_ = 0;   // when this worker, busy, looks at the WorkSource again
  std::uint32_t raise_target_ = StealPolicy::kNoVictim;  // a busy worker seen in the last round
  std::int64_t last_now_ns_ = 0;                         // the scheduler loop's latest clock read
  bool searching_ = false;                               // counted in the scheduler's spinners_
  std::uint32_t wait_depth_ = 0;                         // nested wait_for calls on this thread
  StealState steal_;                                     // the policy's per-thief scratch and RNG

  ChaseLevDeque<Job> deque_;
  // Written by idle workers (any thread), read by the owner at each poll.
  // Its own line: a raise invalidates only this line.
  alignas(kCacheLine) std::atomic<bool> heartbeat_{false};
  WorkerStats stats_;
};

// Worker::JoinFrame, Worker::RangeFrame and their bases: frames.hpp.

// ---------------------------------------------------------------------------

class Worker::TaskBaseScope {
 public:
  // A job starts at least kJobInlineDepth deep (unless inlining is off).
  explicit TaskBaseScope(Worker& w) noexcept : w_(w), saved_(w.task_base_) {
    if (w.inline_depth_ < kJobInlineDepth) w.inline_depth_ = kJobInlineDepth;
    w.set_task_base(w.fork_depth_);
  }
  ~TaskBaseScope() { w_.set_task_base(saved_); }
  TaskBaseScope(const TaskBaseScope&) = delete;
  TaskBaseScope& operator=(const TaskBaseScope&) = delete;

 private:
  Worker& w_;
  const std::uint32_t saved_;
};

template <class F>
inline decltype(auto) Worker::as_task(F&& f) {
  const TaskBaseScope scope(*this);
  return f();
}

template <class Ctx, class A, class B>
inline void Worker::join(Ctx& ctx, A&& a, B&& b) {
  if constexpr (detail::InlineCallable<Ctx, A> && detail::InlineCallable<Ctx, B>) {
    if (fork_depth_ >= inline_at_) {
      run_inline(ctx, [&](auto& in) { in.join(a, b); });
      return;
    }
  }
  join_frame(ctx, a, b);
}

// Out of line: entered once per subtree, and inlining it (the subtree's
// first levels with it) into every join that records a frame made that
// path, and fib(35) on one worker, slower (perf/RESULTS.md).
template <class Ctx, class F>
[[gnu::noinline]] void Worker::run_inline(Ctx& ctx, F&& f) {
  const std::int64_t start = now_ns();
  const std::uint64_t nested_start = nested_ns_;
  try {
    if (start >= polling_until_ns_) [[likely]] {
      typename Ctx::template Inline<false> in(ctx);
      f(in);
    } else {
      typename Ctx::template Inline<true> in(ctx);
      f(in);
    }
  } catch (...) {
    // Counted, not timed: a kernel may catch the exception and go on, but
    // the heartbeat work of end_inline must not run while it unwinds.
    ++inline_runs_;
    throw;
  }
  end_inline(start, nested_start);
}

template <class Ctx, class A, class B>
inline void Worker::join_frame(Ctx& ctx, A& a, B& b) {
  JoinFrame<Ctx, std::remove_reference_t<B>> f(ctx, b);
  const ForkDepthStep step(*this, 1);
  push_frame(&f);
  share_if_outermost();
  tick();
  try {
    a(ctx);
  } catch (...) {
    pop_frame();
    // b must not outlive this frame: take it back (and drop it) or wait
    // for the thief, then let a's exception through.
    if (f.promoted && !reclaim(&f.job())) {
      wait_for(f.job());
      f.job().discard_failure();
    }
    throw;
  }
  if (!f.promoted) [[likely]] {
    pop_unpromoted();
    b(ctx);
    return;
  }
  pop_frame();
  if (reclaim(&f.job())) {
    b(ctx);
    return;
  }
  wait_for(f.job());
  f.job().rethrow_if_failed();
}

template <class Ctx, class Body>
inline void Worker::parallel_for(Ctx& ctx, std::uint64_t begin, std::uint64_t end,
                                 std::uint64_t grain, Body&& body) {
  if (begin >= end) return;
  if (grain == 0) grain = 1;
  if constexpr (detail::InlineCallable<Ctx, Body, std::uint64_t>) {
    if (fork_depth_ >= inline_at_) {
      run_inline(ctx, [&](auto& in) { in.parallel_for(begin, end, grain, body); });
      return;
    }
  }
  loop(ctx, begin, end, grain, body);
}

template <class Ctx, class Body>
inline void Worker::loop(Ctx& ctx, std::uint64_t begin, std::uint64_t end, std::uint64_t grain,
                         Body& body) {
  RangeFrame<Ctx, Body> r(ctx, body, begin, end, grain);
  push_frame(&r);
  share_if_outermost();
  try {
    // The bodies' depth; not join_splits', whose parts run loop() again.
    const ForkDepthStep step(*this, loop_levels(end - begin));
    // r.end is re-read every iteration: a promotion (on this thread, from
    // poll() or a nested fork) may lower it.
    while (r.next < r.end) {
      const std::uint64_t i = r.next++;
      tick();  // counts iteration i as a spawn on the worker that runs it
      body(ctx, i);
    }
  } catch (...) {
    pop_frame();
    r.join_splits(*this, false);
    throw;
  }
  pop_frame();
  if (r.splits != 0) [[unlikely]]
    r.join_splits(*this, true);
}

}  // namespace beat::sched

// The frames and the inline clones need the complete Worker.
#include "daemon/scheduler/frames.hpp"        // IWYU pragma: export
#include "daemon/scheduler/inline_forks.hpp"  // IWYU pragma: export
