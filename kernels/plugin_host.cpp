// The host side of the plugin ABI (kernels/beat_kernel.h): the services a
// plugin's kernel reaches through ctx->host, and the call into the kernel.
//
// A beat_kernel_context handed to a plugin is a PluginContext on the
// calling worker's stack: the host table and the kernel's data, then the
// TaskContext it stands for; it lives until the call it was made for
// returns. Forks create one per branch, for the worker that runs it. Branch
// callables are typed TaskContext&, so they always run as frames
// (kernels/kernel.hpp): a plugin's fork costs a call through a function
// pointer anyway, and its callbacks need a TaskContext to hand on.
#include <cstddef>
#include <cstdint>

#include "kernels/kernel_registry.hpp"

namespace beat {

namespace {

struct PluginContext {
  beat_kernel_context c;  // first: the plugin sees only this
  TaskContext* task;
};
static_assert(offsetof(PluginContext, c) == 0);

const TaskContext& task_of(const beat_kernel_context* ctx) noexcept {
  return *reinterpret_cast<const PluginContext*>(ctx)->task;
}
TaskContext& task_of(beat_kernel_context* ctx) noexcept {
  return *reinterpret_cast<PluginContext*>(ctx)->task;
}

beat_arena_view host_arena_range(const beat_kernel_context* ctx, std::uint64_t offset,
                                 std::uint64_t length) {
  const ArenaView v = task_of(ctx).arena_range(offset, length);
  return {v.data, v.data == nullptr ? 0 : v.size};
}

int host_cancelled(const beat_kernel_context* ctx) { return task_of(ctx).cancelled() ? 1 : 0; }

std::uint32_t host_worker_index(const beat_kernel_context* ctx) {
  return task_of(ctx).worker_index();
}

std::uint32_t host_client_id(const beat_kernel_context* ctx) { return task_of(ctx).client_id(); }

void host_join(beat_kernel_context* ctx, beat_join_fn a, void* a_arg, beat_join_fn b, void* b_arg);
void host_parallel_for(beat_kernel_context* ctx, std::uint64_t begin, std::uint64_t end,
                       std::uint64_t grain, beat_range_fn body, void* arg);

constexpr beat_kernel_host kHost{
    sizeof(beat_kernel_host), BEAT_KERNEL_ABI_VERSION, host_arena_range, host_cancelled,
    host_worker_index,        host_client_id,          host_join,        host_parallel_for,
};

void host_join(beat_kernel_context* ctx, beat_join_fn a, void* a_arg, beat_join_fn b, void* b_arg) {
  void* const data = ctx->kernel_data;
  task_of(ctx).join(
      [&](TaskContext& x) {
        PluginContext pc{{&kHost, data}, &x};
        a(&pc.c, a_arg);
      },
      [&](TaskContext& x) {
        PluginContext pc{{&kHost, data}, &x};
        b(&pc.c, b_arg);
      });
}

void host_parallel_for(beat_kernel_context* ctx, std::uint64_t begin, std::uint64_t end,
                       std::uint64_t grain, beat_range_fn body, void* arg) {
  if (end <= begin) return;
  if (grain == 0) grain = 1;
  const std::uint64_t n = end - begin;
  // Written so that neither the count nor a chunk's end can overflow.
  const std::uint64_t chunks = n / grain + (n % grain != 0 ? 1 : 0);
  void* const data = ctx->kernel_data;
  task_of(ctx).parallel_for(0, chunks, 1, [&](TaskContext& x, std::uint64_t c) {
    const std::uint64_t lo = begin + c * grain;
    const std::uint64_t hi = end - lo > grain ? lo + grain : end;
    PluginContext pc{{&kHost, data}, &x};
    body(&pc.c, lo, hi, arg);
  });
}

static_assert(BEAT_KERNEL_INLINE_ARGS == kInlineArgs);
static_assert(BEAT_KERNEL_DETAIL_EXCEPTION == kKernelThrewDetail);
static_assert(BEAT_KERNEL_STATUS_OK == static_cast<std::uint32_t>(TaskStatus::kOk));
static_assert(BEAT_KERNEL_STATUS_ERROR == static_cast<std::uint32_t>(TaskStatus::kKernelError));
static_assert(BEAT_KERNEL_STATUS_INVALID_RANGE ==
              static_cast<std::uint32_t>(TaskStatus::kInvalidRange));
static_assert(BEAT_KERNEL_STATUS_INVALID_ARGS ==
              static_cast<std::uint32_t>(TaskStatus::kInvalidArgs));
static_assert(BEAT_KERNEL_STATUS_CANCELLED == static_cast<std::uint32_t>(TaskStatus::kDropped));

}  // namespace

KernelResult call_plugin_kernel(beat_kernel_fn fn, void* kernel_data, TaskContext& ctx,
                                KernelArgs args, ArenaView data) {
  PluginContext pc{{&kHost, kernel_data}, &ctx};
  const beat_kernel_result r = fn(&pc.c, args.data(), beat_arena_view{data.data, data.size});
  switch (r.status) {
    case BEAT_KERNEL_STATUS_OK: return KernelResult::ok(r.value);
    case BEAT_KERNEL_STATUS_ERROR: return KernelResult::error(r.detail);
    case BEAT_KERNEL_STATUS_INVALID_RANGE:
      if (r.detail > BEAT_KERNEL_DATA_RANGE) break;
      return {TaskStatus::kInvalidRange, r.detail, 0};
    case BEAT_KERNEL_STATUS_INVALID_ARGS:
      if (r.detail >= BEAT_KERNEL_INLINE_ARGS) break;
      return KernelResult::invalid_args(r.detail);
    case BEAT_KERNEL_STATUS_CANCELLED: return KernelResult::cancelled();
    default: break;
  }
  return KernelResult::error(BEAT_KERNEL_DETAIL_BAD_STATUS);
}

}  // namespace beat
