// The Beat peer: the workloads on Beat's work-stealing scheduler
// (daemon/scheduler/scheduler.hpp), whose Worker is the workload executor.
// The scheduler runs with SchedulerOptions' defaults (workers pinned one per
// core, heartbeat promotion, inline subtrees, topology-aware stealing)
// except the worker count and, when asked, the heartbeat period and
// inline_forks.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "daemon/scheduler/scheduler.hpp"
#include "daemon/topology.hpp"
#include "kernels/workloads/fork_join.hpp"
#include "perf/forkjoin/runtime.hpp"

namespace beat::perf::forkjoin {

namespace {

static_assert(workloads::ForkJoinExecutor<sched::Worker>,
              "Beat's Worker must satisfy the workload executor concept");

Topology load_topology() {
  Result<Topology> topology = Topology::load();
  if (!topology) {
    throw std::runtime_error("cannot load the machine's topology: " + topology.status().message());
  }
  return std::move(topology).value();
}

sched::SchedulerOptions options_for(std::uint32_t workers, std::uint32_t heartbeat_us,
                                    bool inline_forks) {
  sched::SchedulerOptions options;
  options.workers = workers;
  if (heartbeat_us != 0) options.heartbeat_us = heartbeat_us;
  options.inline_forks = inline_forks;
  return options;
}

class BeatLauncher {
 public:
  // Starts the workers; throws std::runtime_error when they cannot start.
  BeatLauncher(std::uint32_t workers, std::uint32_t heartbeat_us, bool inline_forks)
      : workers_(workers),
        options_(options_for(workers, heartbeat_us, inline_forks)),
        topology_(load_topology()),
        scheduler_(options_, topology_) {
    if (Status started = scheduler_.start(); !started) {
      throw std::runtime_error("cannot start Beat's scheduler with " + std::to_string(workers) +
                               " workers: " + started.message());
    }
  }

  std::string name() const { return "beat"; }
  std::string impl() const { return "heartbeat"; }
  std::uint32_t workers() const { return workers_; }

  template <class F>
  auto run(F&& root) {
    using Result = std::invoke_result_t<F&, sched::Worker&>;
    std::optional<Result> result;
    scheduler_.run([&](sched::Worker& worker) { result.emplace(root(worker)); });
    return std::move(*result);
  }

  // The options the scheduler actually runs with (defaults included).
  std::string settings_json() const {
    return ",\"heartbeat_us\":" + std::to_string(options_.heartbeat_us) +
           ",\"idle_spin_us\":" + std::to_string(options_.idle_spin_us) +
           ",\"pin\":" + (options_.pin ? "true" : "false") +
           ",\"inline_forks\":" + (options_.inline_forks ? "true" : "false");
  }

  StealCounters counters() const {
    const sched::SchedulerStats s = scheduler_.stats();
    return {s.spawns, s.steals};
  }

 private:
  std::uint32_t workers_;
  sched::SchedulerOptions options_;
  Topology topology_;  // the scheduler keeps a reference: declared before it
  sched::Scheduler scheduler_;
};

class BeatRuntime final : public LaunchedRuntime<BeatLauncher> {
 public:
  using LaunchedRuntime::LaunchedRuntime;
  std::optional<StealCounters> steal_counters() const override { return launcher_.counters(); }
  std::string settings_json() const override { return launcher_.settings_json(); }
};

}  // namespace

std::unique_ptr<Runtime> make_beat_runtime(std::uint32_t workers, std::uint32_t heartbeat_us,
                                           bool inline_forks) {
  return std::make_unique<BeatRuntime>(workers, heartbeat_us, inline_forks);
}

}  // namespace beat::perf::forkjoin
