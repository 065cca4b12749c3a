#include "daemon/topology.hpp"

#include <fstream>
#include <sstream>
#include <utility>

namespace beat {

std::uint32_t parse_cpu_max(const std::string& line) noexcept {
  std::istringstream in(line);
  std::string quota;
  std::uint64_t period = 0;
  if (!(in >> quota >> period) || quota == "max" || period == 0) return 0;
  std::uint64_t q = 0;
  for (char c : quota) {
    if (c < '0' || c > '9') return 0;
    q = q * 10 + static_cast<std::uint64_t>(c - '0');
  }
  const std::uint64_t cpus = (q + period - 1) / period;
  return cpus == 0 ? 1 : static_cast<std::uint32_t>(cpus);
}

namespace {
std::uint32_t read_cgroup_quota() {
  std::ifstream self("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(self, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  std::ifstream f("/sys/fs/cgroup" + path + "/cpu.max");
  std::string cpu_max;
  if (!f || !std::getline(f, cpu_max)) return 0;
  return parse_cpu_max(cpu_max);
}
}  // namespace

Result<Topology> Topology::load(const std::string& synthetic) {
  Topology t;
  if (hwloc_topology_init(&t.topo_) != 0)
    return Status(ErrorCode::kIo, "hwloc_topology_init failed");
  if (!synthetic.empty()) {
    if (hwloc_topology_set_synthetic(t.topo_, synthetic.c_str()) != 0)
      return Status(ErrorCode::kInvalidArgument,
                    "hwloc rejected synthetic topology \"" + synthetic + "\"");
  } else {
    // Honour the process's affinity mask as well as cgroup cpusets.
    hwloc_topology_set_flags(t.topo_, HWLOC_TOPOLOGY_FLAG_RESTRICT_TO_CPUBINDING);
  }
  if (hwloc_topology_load(t.topo_) != 0)
    return Status(ErrorCode::kIo, "hwloc_topology_load failed");

  // The PUs this process may run on: its affinity mask (taskset,
  // sched_setaffinity) within the cgroup's allowed cpuset. The load flag
  // above does not restrict the topology on every system (it did not with
  // hwloc 2.9 in a VM), so cores are filtered against the binding here.
  hwloc_bitmap_t allowed = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(t.topo_));
  if (synthetic.empty()) {
    hwloc_bitmap_t bound = hwloc_bitmap_alloc();
    if (hwloc_get_cpubind(t.topo_, bound, HWLOC_CPUBIND_PROCESS) == 0 &&
        !hwloc_bitmap_iszero(bound))
      hwloc_bitmap_and(allowed, allowed, bound);
    hwloc_bitmap_free(bound);
  }
  hwloc_bitmap_t usable = hwloc_bitmap_alloc();
  const int ncores = hwloc_get_nbobjs_by_type(t.topo_, HWLOC_OBJ_CORE);
  for (int i = 0; i < ncores; ++i) {
    hwloc_obj_t core = hwloc_get_obj_by_type(t.topo_, HWLOC_OBJ_CORE, static_cast<unsigned>(i));
    hwloc_bitmap_and(usable, core->cpuset, allowed);
    const int pu = hwloc_bitmap_first(usable);  // the core's first allowed hardware thread
    if (pu < 0) continue;
    t.cores_.push_back(
        {static_cast<std::uint32_t>(t.cores_.size()), static_cast<std::uint32_t>(pu)});
  }
  if (ncores == 0) {
    // Some virtual machines expose PUs without cores.
    const int npus = hwloc_get_nbobjs_by_type(t.topo_, HWLOC_OBJ_PU);
    for (int i = 0; i < npus; ++i) {
      hwloc_obj_t pu = hwloc_get_obj_by_type(t.topo_, HWLOC_OBJ_PU, static_cast<unsigned>(i));
      if (!hwloc_bitmap_isset(allowed, pu->os_index)) continue;
      t.cores_.push_back({static_cast<std::uint32_t>(t.cores_.size()), pu->os_index});
    }
  }
  hwloc_bitmap_free(usable);
  hwloc_bitmap_free(allowed);
  if (t.cores_.empty()) return Status(ErrorCode::kIo, "hwloc found no usable core");
  if (synthetic.empty()) t.quota_cpus_ = read_cgroup_quota();
  return t;
}

Topology::Topology(Topology&& o) noexcept
    : topo_(std::exchange(o.topo_, nullptr)),
      cores_(std::move(o.cores_)),
      quota_cpus_(o.quota_cpus_) {}

Topology& Topology::operator=(Topology&& o) noexcept {
  if (this != &o) {
    if (topo_ != nullptr) hwloc_topology_destroy(topo_);
    topo_ = std::exchange(o.topo_, nullptr);
    cores_ = std::move(o.cores_);
    quota_cpus_ = o.quota_cpus_;
  }
  return *this;
}

Topology::~Topology() {
  if (topo_ != nullptr) hwloc_topology_destroy(topo_);
}

std::uint32_t Topology::default_worker_count() const noexcept {
  auto n = static_cast<std::uint32_t>(cores_.size());
  if (quota_cpus_ != 0 && quota_cpus_ < n) n = quota_cpus_;
  return n;
}

Status Topology::pin(pthread_t thread, const CoreSlot& slot) const {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  hwloc_bitmap_only(set, slot.os_pu);
  const int r = hwloc_set_thread_cpubind(topo_, thread, set, HWLOC_CPUBIND_THREAD);
  hwloc_bitmap_free(set);
  if (r != 0)
    return Status(ErrorCode::kIo, "cannot pin worker to PU " + std::to_string(slot.os_pu));
  return Status::ok();
}

}  // namespace beat
