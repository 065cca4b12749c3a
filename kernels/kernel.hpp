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
//  - Kernels must not block on locks or I/O, allocate on the steady-state
//    path, or throw (the worker catches and reports kKernelError, but an
//    exception costs microseconds).
// Thread-safety: a kernel may run on any worker, concurrently with itself.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "shared/protocol.hpp"

namespace beat {

// A byte range inside a client's arena, already bounds-checked.
struct ArenaView {
  std::byte* data = nullptr;
  std::uint64_t size = 0;

  std::span<std::byte> bytes() const noexcept { return {data, static_cast<std::size_t>(size)}; }
};

using KernelArgs = std::span<const std::uint64_t, kInlineArgs>;

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

// Per-task execution context handed to a kernel.
// Thread-safety: owned by the running worker; valid only during the call.
class TaskContext {
 public:
  // `stop` and `closing` (may be null): flags whose setting means the task's
  // result will not be delivered (daemon stopping, client gone).
  TaskContext(std::uint32_t worker_index, std::uint32_t client_id, ArenaView arena,
              const std::atomic<bool>* stop = nullptr,
              const std::atomic<bool>* closing = nullptr) noexcept
      : worker_index_(worker_index),
        client_id_(client_id),
        arena_(arena),
        stop_(stop),
        closing_(closing) {}

  std::uint32_t worker_index() const noexcept { return worker_index_; }
  std::uint32_t client_id() const noexcept { return client_id_; }

  // True once nobody will receive this task's result. A long-running kernel
  // polls it (a relaxed load each, no ordering needed: it only cuts work
  // short) and returns KernelResult::cancelled(), so the daemon stops within
  // daemon.shutdown_timeout_ms and a dead client's work ends early.
  bool cancelled() const noexcept {
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

 private:
  std::uint32_t worker_index_;
  std::uint32_t client_id_;
  ArenaView arena_;
  const std::atomic<bool>* stop_;
  const std::atomic<bool>* closing_;
};

using KernelFn = KernelResult (*)(TaskContext& ctx, KernelArgs args, ArenaView data);

}  // namespace beat
