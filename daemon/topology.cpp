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

std::string_view to_string(ShareLevel level) noexcept {
  switch (level) {
    case ShareLevel::kCore: return "core";
    case ShareLevel::kL2: return "l2";
    case ShareLevel::kL3: return "l3";
    case ShareLevel::kNuma: return "numa";
    case ShareLevel::kPackage: return "package";
    case ShareLevel::kMachine: return "machine";
  }
  return "unknown";
}

namespace {
// hwloc 2.x attaches NUMA nodes as memory children of normal objects (maybe
// behind memory-side caches), never as ancestors of PUs. A PU's NUMA node is
// the first one attached to its closest ancestor that has memory: one id per
// ancestor, so PUs under the same memory share it, and on machines with
// several kinds of memory at one place (DRAM + HBM) the first stands for all.
hwloc_obj_t nearest_numa_node(hwloc_obj_t obj) {
  for (; obj != nullptr; obj = obj->parent)
    for (hwloc_obj_t m = obj->memory_first_child; m != nullptr; m = m->memory_first_child)
      if (m->type == HWLOC_OBJ_NUMANODE) return m;
  return nullptr;
}

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
  t.record_share_ids();
  return t;
}

void Topology::record_share_ids() {
  // Index by ShareLevel; kNuma has no object type of its own (see
  // nearest_numa_node).
  static constexpr std::array<hwloc_obj_type_t, kShareLevelCount - 1> kTypes = {
      HWLOC_OBJ_CORE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE, HWLOC_OBJ_NUMANODE, HWLOC_OBJ_PACKAGE};
  static_assert(static_cast<std::size_t>(ShareLevel::kPackage) == kTypes.size() - 1,
                "one object type per ShareLevel below kMachine, in order");
  const int npus = hwloc_get_nbobjs_by_type(topo_, HWLOC_OBJ_PU);
  for (int i = 0; i < npus; ++i) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(topo_, HWLOC_OBJ_PU, static_cast<unsigned>(i));
    ShareIds ids;
    for (std::size_t level = 0; level < kTypes.size(); ++level) {
      hwloc_obj_t obj = kTypes[level] == HWLOC_OBJ_NUMANODE
                            ? nearest_numa_node(pu)
                            : hwloc_get_ancestor_obj_by_type(topo_, kTypes[level], pu);
      // Logical indices are unique per type, and each level has one type.
      ids[level] = obj != nullptr ? obj->logical_index : kNoObject;
    }
    if (pu->os_index >= pu_row_.size()) pu_row_.resize(pu->os_index + 1, kNoObject);
    pu_row_[pu->os_index] = static_cast<std::uint32_t>(share_ids_.size());
    share_ids_.push_back(ids);
  }
}

ShareLevel Topology::share_level(std::uint32_t os_pu_a, std::uint32_t os_pu_b) const noexcept {
  if (os_pu_a == os_pu_b) return ShareLevel::kCore;
  if (os_pu_a >= pu_row_.size() || os_pu_b >= pu_row_.size()) return ShareLevel::kMachine;
  const std::uint32_t row_a = pu_row_[os_pu_a];
  const std::uint32_t row_b = pu_row_[os_pu_b];
  if (row_a == kNoObject || row_b == kNoObject) return ShareLevel::kMachine;
  const ShareIds& a = share_ids_[row_a];
  const ShareIds& b = share_ids_[row_b];
  for (std::size_t level = 0; level < a.size(); ++level)
    if (a[level] != kNoObject && a[level] == b[level]) return static_cast<ShareLevel>(level);
  return ShareLevel::kMachine;
}

Topology::Topology(Topology&& o) noexcept
    : topo_(std::exchange(o.topo_, nullptr)),
      cores_(std::move(o.cores_)),
      quota_cpus_(o.quota_cpus_),
      pu_row_(std::move(o.pu_row_)),
      share_ids_(std::move(o.share_ids_)) {}

Topology& Topology::operator=(Topology&& o) noexcept {
  if (this != &o) {
    if (topo_ != nullptr) hwloc_topology_destroy(topo_);
    topo_ = std::exchange(o.topo_, nullptr);
    cores_ = std::move(o.cores_);
    quota_cpus_ = o.quota_cpus_;
    pu_row_ = std::move(o.pu_row_);
    share_ids_ = std::move(o.share_ids_);
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
