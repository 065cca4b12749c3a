// Job: the unit a thief can take from a worker's deque.
//
// A Job lives inside the stack frame of the code that created it (a join
// or a parallel_for split), never on the heap, and is constructed only when
// the worker promotes that frame: a fork nobody steals never builds one.
// The creator does not return before the job is done, so the storage
// outlives every thief's access. Job is trivially destructible.
//
// Completion protocol (the only synchronisation between a thief and the
// job's creator):
//   thief:   ...run the work...; publish results; done.store(1, release)
//            and never touch the job again.
//   creator: done.load(acquire) == 1, then read results and reuse storage.
// SYNC POINT: the release/acquire pair on `done` publishes everything the
// thief wrote while running the job.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <new>

namespace beat::sched {

class Worker;

struct Job {
  // Runs the job on `thief` and then stores done = 1 (release). Must not
  // throw: an exception from the work is stored in `error` for the creator.
  void (*execute)(Job* self, Worker& thief) noexcept = nullptr;
  void* context = nullptr;  // the frame or split the job belongs to
  std::atomic<std::uint32_t> done{0};
  // Set by the thief when the work threw (then `error` holds the
  // exception); rethrown by the creator at join. Raw storage, so creating a
  // job costs no exception_ptr construction or destruction on the fast path.
  bool failed = false;
  alignas(std::exception_ptr) unsigned char error[sizeof(std::exception_ptr)];

  // Thief: records the exception being handled.
  void capture_current_exception() noexcept { fail_with(std::current_exception()); }
  // Records `e` as the job's failure (before done is stored).
  void fail_with(std::exception_ptr e) noexcept {
    new (error) std::exception_ptr(std::move(e));
    failed = true;
  }
  // Creator, after done: rethrows a captured exception, if any.
  void rethrow_if_failed() {
    if (!failed) return;
    auto* e = std::launder(reinterpret_cast<std::exception_ptr*>(error));
    std::exception_ptr copy = std::move(*e);
    e->~exception_ptr();
    failed = false;
    std::rethrow_exception(copy);
  }
  // Creator, after done, when a second failure cannot be reported: drops it.
  void discard_failure() noexcept {
    if (!failed) return;
    std::launder(reinterpret_cast<std::exception_ptr*>(error))->~exception_ptr();
    failed = false;
  }
};

}  // namespace beat::sched
