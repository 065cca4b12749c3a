// Topology: which cores this daemon may use, and pinning threads to them.
//
// Loaded once at start (hwloc is reentrant but not thread-safe), restricted
// to the process's allowed cpuset (cgroup cpusets, taskset) and sized down to
// a cgroup v2 cpu.max quota when one is set.
// Thread-safety: construct on the main thread; pin() is called by the main
// thread only.
#pragma once

#include <hwloc.h>
#include <pthread.h>

#include <cstdint>
#include <string>
#include <vector>

#include "shared/status.hpp"

namespace beat {

struct CoreSlot {
  std::uint32_t core_index;  // logical index of the core among allowed cores
  std::uint32_t os_pu;       // OS index of the PU the worker runs on
};

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

 private:
  Topology() = default;
  hwloc_topology_t topo_ = nullptr;
  std::vector<CoreSlot> cores_;
  std::uint32_t quota_cpus_ = 0;  // 0 = no quota
};

// ceil(quota/period) from a cgroup v2 cpu.max line ("max 100000" -> 0).
std::uint32_t parse_cpu_max(const std::string& line) noexcept;

}  // namespace beat
