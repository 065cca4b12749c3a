// WorkSource: where a scheduler's workers find work besides each other's
// deques: beatd's client submission rings (daemon/worker_pool.cpp).
//
// The scheduler calls these on worker threads, each with the calling
// Worker; implementations keep per-worker state indexed by w.index().
// Call order in a worker's loop:
//   on_loop -> poll -> (injected roots, steal round) -> ... ->
//   arm_park -> [re-check] -> before_sleep -> futex wait -> after_sleep
//   -> disarm_park
// arm_park is always followed by disarm_park, and before_sleep by
// after_sleep.
#pragma once

#include "shared/doorbell.hpp"

namespace beat::sched {

class Worker;

class WorkSource {
 public:
  virtual ~WorkSource() = default;

  // Top of every loop iteration: the worker holds nothing from the previous
  // one (a quiescent state, for reclamation schemes).
  virtual void on_loop(Worker& w) noexcept = 0;
  // Takes and runs available work (which may fork); true if it ran any.
  // Must call w.begin_work() once it has claimed work, before running it.
  // Called at the top of the loop, by a worker waiting for a stolen job,
  // and by a busy worker once per heartbeat from inside its running task:
  // so it nests, and the source must bound the nesting (refuse beyond a
  // small depth) or the stack could grow with every heartbeat.
  virtual bool poll(Worker& w) = 0;
  // Before parking: arm wake-up flags and add the futex words to wait on
  // (at most `capacity`). Returns how many were added, or -1 when work is
  // visible after arming (then the worker does not sleep).
  virtual int arm_park(Worker& w, FutexWaitItem* items, int capacity) noexcept = 0;
  // Around the futex wait itself.
  virtual void before_sleep(Worker& w) noexcept = 0;
  virtual void after_sleep(Worker& w) noexcept = 0;
  // After parking (or giving up on it): disarm the flags.
  virtual void disarm_park(Worker& w) noexcept = 0;
  // Makes results the worker buffered visible (e.g. flushes completions).
  // Called before a worker waits for a stolen job and before it signals a
  // stolen job done, so nothing a job produced is held by an idle worker.
  virtual void publish(Worker& w) noexcept = 0;
};

}  // namespace beat::sched
