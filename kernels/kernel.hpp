// The kernel interface: a kernel is a named function
//     KernelResult fn(TaskContext& ctx, KernelArgs args, ArenaView data)
// run by a daemon worker for one task.
//
// Contract for kernel authors:
//  - `data` is the task's data range, already checked to lie inside the
//    client's arena (empty when the task carries none). The bytes are shared
//    with the client process, which may change them concurrently: read each
//    value once, never trust a value read from `data` as a length or index
//    without checking it.
//  - `args` are the descriptor's inline words, untrusted: validate them and
//    return KernelResult::invalid_args(i) naming the bad one.
//  - Kernels must not block on locks or I/O or allocate on the
//    steady-state path. A kernel fails its task by returning
//    KernelResult::error(code) (or invalid_args / invalid_range). One that
//    throws does not take its worker down: KernelError(code, what) becomes
//    kKernelError with detail `code`, any other exception kKernelError with
//    detail kKernelThrewDetail, and the worker logs what() (at most one
//    line per worker per second). Throwing costs microseconds: it is for
//    failures deep in a call tree, not for argument checks.
//  - Nested parallelism: ctx.join(a, b) and ctx.parallel_for(lo, hi, grain,
//    body) fork through the daemon's work-stealing scheduler. The callables
//    receive the TaskContext of the worker that runs them; use that one
//    inside, never the outer ctx. A worker waiting for a stolen branch runs
//    other work meanwhile, never blocks. Forks cost a few nanoseconds while
//    every worker is busy (heartbeat scheduling, daemon/scheduler/worker.hpp),
//    and next to nothing deep in a fork tree when the callables are generic
//    (`[&](auto& c) { ... }`): they may then receive TaskContext::Inline, a
//    clone with the same accessors whose forks are plain calls.
// Thread-safety: a kernel may run on any worker, concurrently with itself.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "daemon/scheduler/worker.hpp"
#include "shared/protocol.hpp"

namespace beat {

// A byte range inside a client's arena, already bounds-checked.
struct ArenaView {
  std::byte* data = nullptr;
  std::uint64_t size = 0;

  std::span<std::byte> bytes() const noexcept { return {data, static_cast<std::size_t>(size)}; }
};

using KernelArgs = std::span<const std::uint64_t, kInlineArgs>;

// Kernel error codes (KernelResult::error) shared by the built-ins.
inline constexpr std::uint32_t kWrongAnswer = 1;  // a self-checking kernel got a wrong result
inline constexpr std::uint32_t kOutOfMemory = 2;  // the kernel could not allocate its workspace
// Detail of a kKernelError completion whose kernel threw something other
// than KernelError (the plugin ABI's BEAT_KERNEL_DETAIL_EXCEPTION).
inline constexpr std::uint32_t kKernelThrewDetail = 0xFFFF'FFFFu;

// Thrown by a kernel (or code it calls) to fail its task with kKernelError
// and detail `code`, the kernel's own error code.
class KernelError : public std::runtime_error {
 public:
  KernelError(std::uint32_t code, const std::string& what)
      : std::runtime_error(what), code_(code) {}
  std::uint32_t code() const noexcept { return code_; }

 private:
  std::uint32_t code_;
};

struct KernelResult {
  TaskStatus status = TaskStatus::kOk;
  std::uint32_t detail = 0;  // argument index or kernel error code
  std::uint64_t value = 0;   // the completion's result word

  static constexpr KernelResult ok(std::uint64_t v) noexcept { return {TaskStatus::kOk, 0, v}; }
  static constexpr KernelResult invalid_args(std::uint32_t arg_index) noexcept {
    return {TaskStatus::kInvalidArgs, arg_index, 0};
  }
  static constexpr KernelResult error(std::uint32_t code) noexcept {
    return {TaskStatus::kKernelError, code, 0};
  }
  // The kernel stopped early because TaskContext::cancelled().
  static constexpr KernelResult cancelled() noexcept { return {TaskStatus::kDropped, 0, 0}; }
};

// What a kernel may ask of its context besides forking: shared by
// TaskContext and its inline clones (TaskContext::Inline).
// Thread-safety: owned by the running worker; valid only during the call.
class TaskContextBase {
 public:
  std::uint32_t worker_index() const noexcept { return worker_ != nullptr ? worker_->index() : 0; }
  std::uint32_t client_id() const noexcept { return client_id_; }

  // True once nobody will receive this task's result. A long-running kernel
  // polls it (a relaxed load each, no ordering needed: it only cuts work
  // short) and returns KernelResult::cancelled(), so the daemon stops within
  // daemon.shutdown_timeout_ms and a dead client's work ends early.
  // Polling it is also the task's sign of life for the daemon's stuck-worker
  // check (workers.stuck_after_ms).
  bool cancelled() const noexcept {
    if (worker_ != nullptr) worker_->note_progress();
    return (stop_ != nullptr && stop_->load(std::memory_order_relaxed)) ||
           (closing_ != nullptr && closing_->load(std::memory_order_relaxed));
  }

  // The whole arena of the submitting client, for kernels whose inline
  // arguments name further ranges. Check ranges with arena_range().
  ArenaView arena() const noexcept { return arena_; }

  // Returns the view of [offset, offset+length) or an empty view with
  // data == nullptr when the range is not inside the arena.
  ArenaView arena_range(std::uint64_t offset, std::uint64_t length) const noexcept {
    if (offset > arena_.size || length > arena_.size - offset) return {};
    return {arena_.data + offset, length};
  }

 protected:
  TaskContextBase(sched::Worker* worker, std::uint32_t client_id, ArenaView arena,
                  const std::atomic<bool>* stop, const std::atomic<bool>* closing) noexcept
      : worker_(worker), client_id_(client_id), arena_(arena), stop_(stop), closing_(closing) {}

  sched::Worker* worker_;
  std::uint32_t client_id_;
  ArenaView arena_;
  const std::atomic<bool>* stop_;
  const std::atomic<bool>* closing_;
};

template <bool kPolls>
class InlineTaskContext;

// Per-task execution context handed to a kernel.
// Thread-safety: owned by the running worker; valid only during the call.
// Satisfies the fork-join executor concept of kernels/workloads/fork_join.hpp.
class TaskContext : public TaskContextBase {
 public:
  // The inline clones (daemon/scheduler/worker.hpp, "Inline subtrees"):
  // generic callables (`[&](auto& c)`) forked deep in a task may receive
  // one of these instead of a TaskContext; they offer everything
  // TaskContextBase does, plus join, parallel_for and poll.
  template <bool kPolls>
  using Inline = InlineTaskContext<kPolls>;

  // `worker`: the scheduler worker running the task, or null to run forks
  // serially (unit tests). `stop` and `closing` (may be null): flags whose
  // setting means the task's result will not be delivered (daemon
  // stopping, client gone).
  TaskContext(sched::Worker* worker, std::uint32_t client_id, ArenaView arena,
              const std::atomic<bool>* stop = nullptr,
              const std::atomic<bool>* closing = nullptr) noexcept
      : TaskContextBase(worker, client_id, arena, stop, closing) {}

  // Runs a(ctx_a) and b(ctx_b), possibly in parallel; returns when both
  // returned. ctx_x is the context of the worker running x (*this unless
  // b was stolen, or an inline clone of it).
  template <class A, class B>
  void join(A&& a, B&& b) {
    if (worker_ == nullptr) {
      a(*this);
      b(*this);
      return;
    }
    worker_->join(*this, a, b);
  }

  // Calls body(ctx_i, i) for each i in [begin, end), possibly in parallel;
  // ranges shorter than 2 * grain are not split.
  template <class Body>
  void parallel_for(std::uint64_t begin, std::uint64_t end, std::uint64_t grain, Body&& body) {
    if (worker_ == nullptr) {
      for (std::uint64_t i = begin; i < end; ++i) body(*this, i);
      return;
    }
    worker_->parallel_for(*this, begin, end, grain, body);
  }

  // For the scheduler: this task's context on another worker (a stolen
  // branch runs with it), and the worker this context belongs to.
  TaskContext on(sched::Worker& w) const noexcept { return TaskContext(*this, w); }
  sched::Worker* worker() const noexcept { return worker_; }

 private:
  // The same task's context on another worker (a stolen branch).
  TaskContext(const TaskContext& parent, sched::Worker& w) noexcept
      : TaskContextBase(&w, parent.client_id_, parent.arena_, parent.stop_, parent.closing_) {}
};

// TaskContext's inline clone: the task's accessors, and forks as plain
// calls (kPolls: with the heartbeat check; daemon/scheduler/inline_forks.hpp).
// Made by the scheduler only, for a TaskContext whose worker is set.
template <bool kPolls>
class InlineTaskContext
    : public TaskContextBase,
      public sched::InlineForks<InlineTaskContext<kPolls>, TaskContext, kPolls> {
 public:
  explicit InlineTaskContext(TaskContext& ctx) noexcept
      : TaskContextBase(ctx),
        sched::InlineForks<InlineTaskContext<kPolls>, TaskContext, kPolls>(*ctx.worker(), ctx) {}
};

using KernelFn = KernelResult (*)(TaskContext& ctx, KernelArgs args, ArenaView data);

}  // namespace beat
