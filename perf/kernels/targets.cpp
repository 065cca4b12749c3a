#include "perf/kernels/targets.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <thread>

#include "perf/kernels/kernels_bench.hpp"
#include "perf/kernels/peers.hpp"

namespace beat::perf::kernels {

namespace {

constexpr std::uint64_t kAlign = 4096;
// Room for the arena allocator's own rounding.
constexpr std::uint64_t kArenaSlack = std::uint64_t{2} << 20;
// The longest one wait for a completion may take before the run fails.
constexpr std::chrono::seconds kWaitTimeout{120};

forkjoin::BeatdSettings settings(std::uint32_t workers, const cpu_set_t& cpus,
                                 std::uint64_t block_bytes, const std::string& toml) {
  forkjoin::BeatdSettings s;
  s.workers = workers;
  s.cpus = cpus;
  s.arena_bytes = (block_bytes + kArenaSlack + kAlign - 1) / kAlign * kAlign;
  // The default clients.arena_bytes_max is 1 GiB; this private daemon
  // allows what the workload needs.
  s.extra_toml = format("[clients]\narena_bytes_max = %llu\n",
                        static_cast<unsigned long long>(
                            std::max<std::uint64_t>(s.arena_bytes, std::uint64_t{1} << 30))) +
                 toml;
  return s;
}

}  // namespace

BeatdTarget::BeatdTarget(const std::string& beatd, std::uint32_t workers, const cpu_set_t& cpus,
                         std::uint64_t block_bytes, const std::string& toml)
    : Target(format("beatd_w%u", workers), workers),
      peer_(beatd, settings(workers, cpus, block_bytes, toml)) {
  Client& c = peer_.client();
  Result<ArenaBlock> block = c.allocate(block_bytes, kAlign);
  if (!block)
    throw std::runtime_error(format("allocating %s of the %u-worker daemon's arena: %s",
                                    bytes_name(block_bytes).c_str(), workers,
                                    block.status().message().c_str()));
  block_ = *block;
  arena_ = ArenaView{c.arena_base(), c.arena_bytes()};
}

std::uint32_t BeatdTarget::kernel(const char* name) {
  Result<std::uint32_t> id = peer_.client().kernel_id(name);
  if (!id)
    throw std::runtime_error(std::string("kernel_id ") + name + ": " + id.status().message());
  return *id;
}

void BeatdTarget::run(const std::vector<TaskDescriptor>& tasks) {
  Client& c = peer_.client();
  // The daemon stalls a client whose CQ is full: keep at most a CQ's worth
  // of tasks in flight.
  const std::uint64_t window = c.layout().cq_entries;
  completions_.resize(tasks.size());
  std::array<Completion, 256> out;
  std::uint64_t submitted = 0, reaped = 0;
  while (reaped < tasks.size()) {
    if (submitted < tasks.size() && submitted - reaped < window) {
      const std::uint64_t n =
          std::min<std::uint64_t>(tasks.size() - submitted, window - (submitted - reaped));
      if (Status s = c.submit({tasks.data() + submitted, n}); !s)
        throw std::runtime_error(name_ + ": submit: " + s.message());
      submitted += n;
    }
    Result<std::size_t> got = c.wait(out, 1, kWaitTimeout);
    if (!got) throw std::runtime_error(name_ + ": wait: " + got.status().message());
    for (std::size_t i = 0; i < *got; ++i) {
      if (out[i].tag >= tasks.size())
        throw std::runtime_error(format("%s: completion with unknown tag %llu", name_.c_str(),
                                        static_cast<unsigned long long>(out[i].tag)));
      completions_[out[i].tag] = out[i];
    }
    reaped += *got;
  }
}

InProcessTarget::InProcessTarget(const BeatdTarget& arena_of, const cpu_set_t& cpus)
    : Target(format("inproc%d", CPU_COUNT(&cpus)), static_cast<std::uint32_t>(CPU_COUNT(&cpus))),
      arena_(arena_of.arena()) {
  register_builtin_kernels(registry_);
  block_ = arena_of.block();
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &cpus)) cpus_.push_back(cpu);
}

std::uint32_t InProcessTarget::kernel(const char* name) {
  const std::optional<std::uint32_t> id = registry_.find(name);
  if (!id) throw std::runtime_error(std::string("no built-in kernel named ") + name);
  return *id;
}

void InProcessTarget::run(const std::vector<TaskDescriptor>& tasks) {
  completions_.resize(tasks.size());
  const std::size_t parts = cpus_.size();
  std::latch ready(static_cast<std::ptrdiff_t>(parts));
  std::vector<int> pin_failed(parts, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < parts; ++t) {
    threads.emplace_back([&, t] {
      pin_failed[t] = try_pin_to_cpu(cpus_[t]) ? 0 : 1;
      ready.arrive_and_wait();  // all pinned before any starts
      TaskContext ctx(nullptr, 0, arena_);
      for (std::size_t i = tasks.size() * t / parts; i < tasks.size() * (t + 1) / parts; ++i) {
        const TaskDescriptor& d = tasks[i];
        const KernelResult r =
            registry_.at(d.kernel_id)
                .fn(ctx, KernelArgs(d.args), ArenaView{arena_.data + d.data_offset, d.data_length});
        completions_[i] = Completion{d.tag, r.status, r.detail, r.value};
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (std::size_t t = 0; t < parts; ++t)
    if (pin_failed[t] != 0)
      throw std::runtime_error(
          format("%s: cannot pin a thread to CPU %d", name_.c_str(), cpus_[t]));
}

}  // namespace beat::perf::kernels
