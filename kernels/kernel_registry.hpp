// KernelRegistry: kernel name -> dense id -> function.
//
// Ids are indices in registration order, so a worker resolves a descriptor's
// kernel_id with one bounds check and one load. Clients look a name up once
// (KERNELS) and submit by id.
//
// Thread-safety: add() only during start-up, before workers start; after
// that the registry is read-only and any thread may call the const methods.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/kernel.hpp"
#include "shared/status.hpp"

namespace beat {

struct KernelInfo {
  std::string name;         // [A-Za-z0-9_.-]{1,47}
  std::string description;  // one line, no tabs
  std::string origin;       // "built-in" or a plugin path
  KernelFn fn = nullptr;
  // Cheap enough that workers batch its completions (post up to 16 at
  // once) when its data range is at most kBatchableDataBytes. Other tasks
  // first post what is pending, so a fast task's completion never waits
  // for a slow one that follows it in the same chunk.
  bool batchable = false;
};

// Largest data range of a batchable task (checksum of 64 KiB: ~5 us).
inline constexpr std::uint64_t kBatchableDataBytes = 64 * 1024;

class KernelRegistry {
 public:
  // Registers a kernel; refuses duplicate or malformed names.
  Result<std::uint32_t> add(std::string name, std::string description, KernelFn fn,
                            std::string origin = "built-in", bool batchable = false);

  std::optional<std::uint32_t> find(std::string_view name) const noexcept;
  const KernelInfo& at(std::uint32_t id) const noexcept { return kernels_[id]; }
  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(kernels_.size()); }
  const std::vector<KernelInfo>& all() const noexcept { return kernels_; }

  // The KERNELS reply: "<id>\t<name>\t<description>\n" per kernel.
  std::string listing() const;

 private:
  std::vector<KernelInfo> kernels_;
};

// Registers noop, spin and checksum (see builtin_kernels.cpp for arguments),
// then the fork-join benchmark kernels.
void register_builtin_kernels(KernelRegistry& registry);
// Registers fib, nqueens, uts, skynet and matmul (benchmark_kernels.cpp).
void register_benchmark_kernels(KernelRegistry& registry);

}  // namespace beat
