// InlineForks: the executor a fork-join callable gets inside an inline
// subtree (worker.hpp, "Inline subtrees"), and WorkerInline, Worker's own
// inline clone.
//
// A context type Ctx opts in by naming its clones `Ctx::Inline<false>`
// (plain calls) and `Ctx::Inline<true>` (polling), each constructible from
// a Ctx& and deriving from InlineForks<Self, Ctx, kPolls>, which supplies
// the fork-join half of the executor concept (kernels/workloads/
// fork_join.hpp):
//
//   join(a, b)                    a(*this); b(*this);
//   parallel_for(lo, hi, g, f)    for (i = lo; i < hi; ++i) f(*this, i);
//   poll()                        Worker::poll(): the enclosing frames of
//                                 the task stay promotable while a long
//                                 sequential loop runs
//
// With kPolls, every fork first counts itself and checks the worker's
// heartbeat flag (Worker::inline_fork_wants_frame); when a heartbeat is
// due, the fork is handed to the worker's frame path: join_frame records
// it (so that the heartbeat can promote it, or an older frame), and a
// loop's remaining range becomes a splittable RangeFrame. The callables
// still run inline here; only a thief that takes the promoted part runs
// it with the original context (on()), as a task of its own.
//
// Thread-safety: an inline clone lives on the stack of the worker thread
// that runs the inline subtree and is used by that thread only; it refers
// to the boundary fork's context, which outlives it.
#pragma once

#include <cstdint>
#include <type_traits>

#include "daemon/scheduler/worker.hpp"

namespace beat::sched {

template <class Derived, class Base, bool kPolls>
class InlineForks {
 public:
  template <class A, class B>
  void join(A&& a, B&& b) {
    if constexpr (kPolls) {
      if (worker_.inline_fork_wants_frame()) [[unlikely]] {
        worker_.join_frame(self(), a, b);
        return;
      }
    }
    a(self());
    b(self());
  }

  template <class Body>
  void parallel_for(std::uint64_t begin, std::uint64_t end, std::uint64_t grain, Body&& body) {
    for (std::uint64_t i = begin; i < end; ++i) {
      if constexpr (kPolls) {
        if (worker_.inline_fork_wants_frame()) [[unlikely]] {
          // The rest of the range as a splittable frame.
          worker_.loop(self(), i, end, grain == 0 ? 1 : grain, body);
          return;
        }
      }
      body(self(), i);
    }
  }

  // For a kernel's long sequential loop (Worker::poll).
  void poll() noexcept { worker_.poll(); }

  // For the scheduler, when a fork recorded by the polling clone is
  // promoted: a thief runs the callable with the original context, bound
  // to the thief (its forks then start a task of their own there), and the
  // worker this clone belongs to.
  decltype(auto) on(Worker& thief) const noexcept {
    if constexpr (std::is_same_v<Base, Worker>)
      return static_cast<Worker&>(thief);
    else
      return base_.on(thief);
  }
  Worker* worker() const noexcept { return &worker_; }

 protected:
  InlineForks(Worker& w, Base& base) noexcept : worker_(w), base_(base) {}

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }

  Worker& worker_;  // the worker running the subtree
  Base& base_;      // the context of the fork that started the subtree
};

// Worker::Inline<kPolls>: what a generic callable forked through a Worker
// gets inside an inline subtree.
template <bool kPolls>
class WorkerInline : public InlineForks<WorkerInline<kPolls>, Worker, kPolls> {
 public:
  explicit WorkerInline(Worker& w) noexcept
      : InlineForks<WorkerInline<kPolls>, Worker, kPolls>(w, w), index_(w.index()) {}
  std::uint32_t index() const noexcept { return index_; }

 private:
  std::uint32_t index_;
};

}  // namespace beat::sched
