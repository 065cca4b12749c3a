// The frames a fork records on its worker's private stack (worker.hpp,
// "Heartbeat scheduling"): JoinFrame for join, RangeFrame for a
// parallel_for's loop, and what promotion turns them into (a Job in the
// frame; RangeJob for a split-off part of a range).
//
// Frames live in the forking function's stack frame and are used by the
// owning worker only, until promotion publishes a Job through the deque
// (its push is a release, the steal an acquire). From then on a thief
// reads only what was written before that push and is not written again
// (the Job, the frame's callable and context pointers, a range's grain
// and a split part's bounds) and writes only the Job (job.hpp's protocol),
// and the owner does not return past the frame before the Job is done.
#pragma once

#include <cstdint>
#include <new>
#include <type_traits>

#include "daemon/scheduler/job.hpp"
#include "daemon/scheduler/worker.hpp"

namespace beat::sched {

// The layout of every JoinFrame<B> (B only changes the entry function),
// so promote_oldest() can build the job without knowing B.
struct Worker::JoinFrameBase : Frame {
  // job_storage is left uninitialised: a fork costs three stores.
  JoinFrameBase(void (*run)(Job*, Worker&) noexcept, const void* b) noexcept
      : Frame{Kind::kJoin, false, run}, fn(const_cast<void*>(b)) {}
  void* fn;  // B*
  // The Job, constructed by promote_oldest() only.
  alignas(Job) unsigned char job_storage[sizeof(Job)];
  Job& job() noexcept { return *std::launder(reinterpret_cast<Job*>(job_storage)); }
};

template <class Ctx, class B>
struct Worker::JoinFrame : JoinFrameBase {
  static_assert(sizeof(JoinFrameBase) >= kMinFrameBytes,
                "push_frame's bound assumes every frame takes kMinFrameBytes of stack");
  JoinFrame(Ctx& c, B& b) noexcept : JoinFrameBase(&run_stolen, &b) {
    if constexpr (!std::is_same_v<Ctx, Worker>) ctx = &c;
  }
  [[no_unique_address]] ContextSlot<Ctx> ctx;

  static void run_stolen(Job* j, Worker& thief) noexcept {
    auto* self = static_cast<JoinFrame*>(static_cast<JoinFrameBase*>(j->context));
    try {
      if constexpr (std::is_same_v<Ctx, Worker>) {
        (*static_cast<B*>(self->fn))(thief);
      } else {
        // Ctx's copy bound to the thief (an inline clone gives the
        // original context's: InlineForks::on).
        decltype(auto) there = self->ctx->on(thief);
        (*static_cast<B*>(self->fn))(there);
      }
    } catch (...) {
      j->capture_current_exception();
    }
  }
};

// A promoted upper part of a parallel_for range.
struct Worker::RangeJob {
  Job job;
  std::uint64_t begin;
  std::uint64_t end;
  RangeFrameBase* owner;  // whose body to call
};

struct Worker::RangeFrameBase : Frame {
  RangeFrameBase(std::uint64_t b, std::uint64_t e, std::uint64_t g) noexcept
      : Frame{Kind::kRange, false, nullptr}, next(b), end(e), grain(g) {}
  // Owner-private: the loop runs [next, end); promotion lowers `end`.
  std::uint64_t next;
  std::uint64_t end;
  const std::uint64_t grain;
  std::uint32_t splits = 0;
  // Storage for split jobs, constructed on use (no cost for loops that
  // never split).
  alignas(RangeJob) unsigned char split_storage[kMaxSplits * sizeof(RangeJob)];
  // Runs [begin, end) of the body on `w` (a nested parallel_for there).
  void (*run_range)(RangeFrameBase* self, Worker& w, std::uint64_t begin, std::uint64_t end);

  RangeJob& split(std::uint32_t i) noexcept {
    return *std::launder(reinterpret_cast<RangeJob*>(split_storage) + i);
  }
  // Owner, at promotion: moves the upper half of the remaining range into a
  // new RangeJob. Returns nullptr when the remainder is too small to split
  // (it never grows again) or the split storage is full. With `give_rest`
  // (the owner is about to be busy for long: Worker::share_before_long_call)
  // a remainder of one to two grains moves whole instead, leaving the owner
  // nothing after its current iteration.
  RangeJob* try_split(bool give_rest = false) noexcept {
    const std::uint64_t remaining = end - next;
    if (splits == kMaxSplits) return nullptr;
    std::uint64_t mid;
    if (remaining >= 2 * grain)
      mid = next + remaining / 2;
    else if (give_rest && remaining != 0 && remaining >= grain)
      mid = next;
    else
      return nullptr;
    auto* rj = new (split_storage + splits * sizeof(RangeJob)) RangeJob{};
    rj->begin = mid;
    rj->end = end;
    rj->owner = this;
    rj->job.execute = &run_stolen;
    rj->job.context = rj;
    end = mid;
    ++splits;
    return rj;
  }
  static void run_stolen(Job* j, Worker& thief) noexcept {
    auto* rj = static_cast<RangeJob*>(j->context);
    try {
      rj->owner->run_range(rj->owner, thief, rj->begin, rj->end);
    } catch (...) {
      j->capture_current_exception();
    }
  }
  // Joins the splits newest first (invariant 3). Exceptions from stolen
  // parts are rethrown after all parts finished. When `run_reclaimed` is
  // false (unwinding), reclaimed parts are dropped, not run.
  void join_splits(Worker& w, bool run_reclaimed);
};

template <class Ctx, class Body>
struct Worker::RangeFrame : RangeFrameBase {
  RangeFrame(Ctx& c, Body& b, std::uint64_t lo, std::uint64_t hi, std::uint64_t g) noexcept
      : RangeFrameBase(lo, hi, g), body(&b) {
    if constexpr (!std::is_same_v<Ctx, Worker>) ctx = &c;
    run_range = &run_part;
  }
  Body* body;
  [[no_unique_address]] ContextSlot<Ctx> ctx;
  static void run_part(RangeFrameBase* self, Worker& w, std::uint64_t lo, std::uint64_t hi) {
    auto* me = static_cast<RangeFrame*>(self);
    if constexpr (std::is_same_v<Ctx, Worker>) {
      w.loop(w, lo, hi, me->grain, *me->body);
    } else {
      // A part run by this frame's owner (reclaimed) keeps the owner's
      // context; a thief gets its own.
      if (&w == me->ctx->worker()) {
        w.loop(*me->ctx, lo, hi, me->grain, *me->body);
      } else {
        decltype(auto) there = me->ctx->on(w);
        w.loop(there, lo, hi, me->grain, *me->body);
      }
    }
  }
};

}  // namespace beat::sched
