// KernelRegistry: kernel name -> dense id -> function.
//
// Ids are indices in registration order, so a worker resolves a descriptor's
// kernel_id with one bounds check and one load. Clients look a name up once
// (KERNELS) and submit by id. Kernels are only ever added, never removed or
// changed: an id a client cached stays valid for the daemon's lifetime.
//
// Thread-safety:
//  - add(), find(), listing() and all(): one thread at a time (beatd's
//    control thread, which registers the built-ins at start and plugins at
//    start and on SIGHUP).
//  - size() and at(): any thread, concurrently with add(). Entries live in
//    storage allocated once and never moved; add() constructs the entry,
//    then publishes the new size with a release store that size()'s
//    acquire load pairs with, so a worker that sees id < size() sees the
//    whole entry.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kernels/beat_kernel.h"
#include "kernels/kernel.hpp"
#include "shared/status.hpp"

namespace beat {

// Calls a plugin's kernel with a beat_kernel_context for `ctx` (carrying
// `kernel_data`) and maps its beat_kernel_result to a KernelResult (an
// unknown status, or an argument index above 3, becomes kKernelError with
// BEAT_KERNEL_DETAIL_BAD_STATUS). kernels/plugin_host.cpp.
KernelResult call_plugin_kernel(beat_kernel_fn fn, void* kernel_data, TaskContext& ctx,
                                KernelArgs args, ArenaView data);

struct KernelInfo {
  std::string name;                    // [A-Za-z0-9_.-]{1,47}
  std::string description;             // one line, no tabs, at most kMaxDescriptionBytes
  std::string origin;                  // "built-in" or a plugin's path, at most kMaxOriginBytes
  KernelFn fn = nullptr;               // a built-in's function, else null
  beat_kernel_fn plugin_fn = nullptr;  // a plugin's function (kernels/beat_kernel.h), else null
  void* plugin_data = nullptr;         // its beat_kernel_context::kernel_data
  // Cheap enough that workers batch its completions (post up to 16 at
  // once) when its data range is at most kBatchableDataBytes. Other tasks
  // first post what is pending, so a fast task's completion never waits
  // for a slow one that follows it in the same chunk.
  bool batchable = false;

  // A task of this kernel over `data_length` bytes takes microseconds: its
  // completion may wait to be posted with others, and it is not worth
  // sharing a worker's queued work before it runs.
  bool cheap(std::uint64_t data_length) const noexcept;

  // Runs the kernel for one task: fn, or plugin_fn through the plugin ABI's
  // host (call_plugin_kernel).
  KernelResult invoke(TaskContext& ctx, KernelArgs args, ArenaView data) const {
    if (fn != nullptr) return fn(ctx, args, data);
    return call_plugin_kernel(plugin_fn, plugin_data, ctx, args, data);
  }
};

// Largest data range of a batchable task (checksum of 64 KiB: ~5 us).
inline constexpr std::uint64_t kBatchableDataBytes = 64 * 1024;

inline bool KernelInfo::cheap(std::uint64_t data_length) const noexcept {
  return batchable && data_length <= kBatchableDataBytes;
}

inline constexpr std::size_t kMaxDescriptionBytes = 160;
inline constexpr std::size_t kMaxOriginBytes = 256;

// Checks a kernel's name and description as add() does, without adding.
Status check_kernel_name(std::string_view name);
Status check_kernel_description(std::string_view name, std::string_view description);

class KernelRegistry {
 public:
  // Bounds the storage allocated up front (~250 KiB) and the KERNELS reply:
  // 2048 lines of at most 5 + 47 + kMaxOriginBytes + kMaxDescriptionBytes
  // + 3 bytes stay under the control protocol's 1 MiB frame.
  static constexpr std::uint32_t kMaxKernels = 2048;

  KernelRegistry();

  // Registers a kernel (info.fn or info.plugin_fn set, not both); refuses a
  // duplicate or malformed name, a description with tabs or line breaks or
  // longer than kMaxDescriptionBytes, an origin longer than kMaxOriginBytes
  // or with tabs or line breaks, and a full registry. Errors name the kernel.
  Result<std::uint32_t> add(KernelInfo info);
  // Shorthand for a built-in.
  Result<std::uint32_t> add(std::string name, std::string description, KernelFn fn,
                            std::string origin = "built-in", bool batchable = false);

  std::optional<std::uint32_t> find(std::string_view name) const noexcept;
  // REQUIRES: id < size().
  const KernelInfo& at(std::uint32_t id) const noexcept { return kernels_[id]; }
  std::uint32_t size() const noexcept {
    // SYNC POINT READ: pairs with add()'s release store; entries below the
    // size it returns are fully constructed.
    return size_.load(std::memory_order_acquire);
  }
  std::span<const KernelInfo> all() const noexcept { return {kernels_.get(), size()}; }

  // The KERNELS reply: "<id>\t<name>\t<origin>\t<description>\n" per kernel.
  std::string listing() const;

 private:
  std::unique_ptr<KernelInfo[]> kernels_;  // kMaxKernels entries, never moved
  std::atomic<std::uint32_t> size_{0};
};

// Registers a built-in kernel (origin "built-in"). Its name and
// description are constants of the program, so a refusal is a programming
// error: throws std::logic_error with the registry's message.
void add_builtin(KernelRegistry& registry, const char* name, const char* description, KernelFn fn,
                 bool batchable = false);

// Registers every built-in: noop, spin and checksum (builtin_kernels.cpp),
// then the groups below. The argument conventions of the data kernels are
// in kernels/kernel_args.hpp; each file's header lists its kernels' args.
void register_builtin_kernels(KernelRegistry& registry);
// fib, nqueens, uts, skynet and matmul (benchmark_kernels.cpp).
void register_benchmark_kernels(KernelRegistry& registry);
// sum_f32, dot_f32, saxpy_f32, map_f32 (blas1.cc).
void register_blas1_kernels(KernelRegistry& registry);
// matmul_f32 (matmul_tile.cc).
void register_matmul_tile_kernels(KernelRegistry& registry);
// sort_u64, sort_f32 (sort.cpp).
void register_sort_kernels(KernelRegistry& registry);
// crc32c (crc32c.cpp).
void register_crc32c_kernels(KernelRegistry& registry);
// histogram_u8, histogram_u32 (histogram.cpp).
void register_histogram_kernels(KernelRegistry& registry);
// topk_fingerprints (topk.cpp).
void register_topk_kernels(KernelRegistry& registry);

}  // namespace beat
