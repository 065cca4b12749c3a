// Topology: which cores this daemon may use, and pinning threads to them.
//
// Loaded once at start (hwloc is reentrant but not thread-safe), restricted
// to the process's allowed cpuset (cgroup cpusets, taskset) and sized down to
// a cgroup v2 cpu.max quota when one is set. load() also records, for every
// PU, which core, L2, L3, NUMA node and package it belongs to, so that
// share_level() is a plain read of vectors and never calls hwloc.
// Thread-safety: construct on the main thread; pin() is called by the main
// thread only. cores(), default_worker_count() and share_level() only read
// state fixed at load: any thread may call them once the Topology is
// published to it (e.g. built before the threads start).
#pragma once

#include <hwloc.h>
#include <pthread.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.hpp"

namespace beat {

struct CoreSlot {
  std::uint32_t core_index;  // logical index of the core among allowed cores
  std::uint32_t os_pu;       // OS index of the PU the worker runs on
};

// The closest thing two PUs share, nearest first. The order is the one work
// stealing walks in; the levels need not nest on every machine, so
// share_level() reports the first level in this order at which both PUs lie
// in one object (with sub-NUMA clustering, several NUMA nodes share one L3:
// two PUs there share kL3 whether or not their NUMA node is the same).
enum class ShareLevel : std::uint8_t {
  kCore,     // the same core (SMT siblings), or the same PU
  kL2,       // one L2 cache
  kL3,       // one L3 cache
  kNuma,     // one NUMA node (the memory attached nearest above both PUs)
  kPackage,  // one package (socket)
  kMachine,  // nothing closer than the machine
};
inline constexpr std::size_t kShareLevelCount = 6;
std::string_view to_string(ShareLevel level) noexcept;

class Topology {
 public:
  // `synthetic` (tests): an hwloc synthetic description instead of the machine.
  static Result<Topology> load(const std::string& synthetic = {});
  Topology(Topology&&) noexcept;
  Topology& operator=(Topology&&) noexcept;
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology();

  // One slot per allowed core (first PU of each core).
  const std::vector<CoreSlot>& cores() const noexcept { return cores_; }
  // Worker count for a request: `requested` if non-zero, else one per core,
  // capped by the cgroup CPU quota.
  std::uint32_t default_worker_count() const noexcept;
  // Pins `thread` to the PU of `slot`.
  Status pin(pthread_t thread, const CoreSlot& slot) const;

  // The closest level PUs `os_pu_a` and `os_pu_b` (OS indices) share; kCore
  // when they are equal. A PU this topology does not list (out of range,
  // offline, disallowed) shares only the machine with any other PU.
  // O(1): reads tables built by load(); no hwloc call.
  ShareLevel share_level(std::uint32_t os_pu_a, std::uint32_t os_pu_b) const noexcept;

 private:
  // Per PU, the id of its enclosing object at each level kCore..kPackage
  // (indexed by ShareLevel); kNoObject where the machine has no such object.
  using ShareIds = std::array<std::uint32_t, kShareLevelCount - 1>;
  static constexpr std::uint32_t kNoObject = ~0u;

  Topology() = default;
  void record_share_ids();

  hwloc_topology_t topo_ = nullptr;
  std::vector<CoreSlot> cores_;
  std::uint32_t quota_cpus_ = 0;       // 0 = no quota
  std::vector<std::uint32_t> pu_row_;  // OS PU index -> row of share_ids_, kNoObject if none
  std::vector<ShareIds> share_ids_;    // one row per PU hwloc lists
};

// ceil(quota/period) from a cgroup v2 cpu.max line ("max 100000" -> 0).
std::uint32_t parse_cpu_max(const std::string& line) noexcept;

}  // namespace beat
