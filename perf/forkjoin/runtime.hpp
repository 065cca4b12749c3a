// Runtime: one peer of beat-forkjoin-bench (Beat's scheduler, oneTBB, OpenMP
// tasks, serial) at a fixed worker count, as the measurement loop in
// forkjoin_bench.cpp sees it. Each workload method runs that workload once,
// from one root task to completion, on the runtime's threads, and returns
// the workload's result unchecked (the caller checks it).
//
// Every peer runs the same templates from kernels/workloads/ with its own
// executor (kernels/workloads/fork_join.hpp states the executor concept), so
// the peers differ only in how join and parallel_for are scheduled. Each peer
// lives in its own translation unit (serial_runtime.cpp, tbb_runtime.cpp,
// omp_runtime.cpp, beat_runtime.cpp): only omp_runtime.cpp is compiled with
// -fopenmp.
//
// Thread-safety: a Runtime is driven by one thread (the benchmark's main
// thread); its methods block that thread until the root task has returned.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "kernels/workloads/fib.hpp"
#include "kernels/workloads/matmul.hpp"
#include "kernels/workloads/nqueens.hpp"
#include "kernels/workloads/skynet.hpp"
#include "kernels/workloads/uts.hpp"

namespace beat::perf::forkjoin {

// Beat's scheduler counters, cumulative since the scheduler started.
struct StealCounters {
  std::uint64_t spawns = 0;
  std::uint64_t steals = 0;
};

class Runtime {
 public:
  virtual ~Runtime() = default;

  // "beat", "tbb", "omp" or "serial": the JSON "runtime" field.
  virtual std::string name() const = 0;
  // Which form of the peer's fork this instance uses ("parallel_invoke",
  // "tied", "SerialExecutor", ...): the JSON "impl" field.
  virtual std::string impl() const = 0;
  virtual std::uint32_t workers() const = 0;

  virtual std::uint64_t fib(unsigned n) = 0;
  virtual std::uint64_t nqueens(unsigned n) = 0;
  virtual workloads::UtsCount uts(workloads::UtsTree tree) = 0;
  virtual std::uint64_t skynet(std::uint64_t leaves) = 0;
  // problem's C += A * B (MatmulProblem::multiply). Clear C first
  // (MatmulProblem::clear_result) for the result to verify().
  virtual void matmul(workloads::MatmulProblem& problem) = 0;

  // How many distinct OS threads ran bodies of one parallel_for whose bodies
  // each stay busy long enough for every worker to take some: a check that
  // "workers = w" really means w threads working (never more than w).
  virtual std::size_t threads_seen() = 0;

  // Beat only (nullopt elsewhere): the scheduler's counters, read between
  // runs while the workers are idle.
  virtual std::optional<StealCounters> steal_counters() const { return std::nullopt; }

  // Settings of this runtime worth recording with each row, as JSON members
  // each preceded by a comma (`,"heartbeat_us":100`); empty for none.
  virtual std::string settings_json() const { return {}; }
};

namespace detail {

// Busy time of one threads_seen() body, and bodies per worker: 64 bodies of
// 200 us per worker is ~13 ms of work each, in which every runtime here
// brought all its workers in on an otherwise idle 2-vCPU VM, yet cheap next
// to one measurement.
inline constexpr std::chrono::microseconds kProbeBodyBusy{200};
inline constexpr std::uint64_t kProbeBodiesPerWorker = 64;

}  // namespace detail

// A Runtime made of a Launcher, which owns the peer's threads (or nothing)
// and provides
//   std::string name() const; std::string impl() const;
//   std::uint32_t workers() const;
//   template <class F> auto run(F&& root);  // root(Ex&) on the runtime,
//                                           // returns what root returned
// Every workload method is one launcher.run() of the workload's template.
template <class Launcher>
class LaunchedRuntime : public Runtime {
 public:
  template <class... Args>
  explicit LaunchedRuntime(Args&&... args) : launcher_(std::forward<Args>(args)...) {}

  std::string name() const override { return launcher_.name(); }
  std::string impl() const override { return launcher_.impl(); }
  std::uint32_t workers() const override { return launcher_.workers(); }

  std::uint64_t fib(unsigned n) override {
    return launcher_.run([n](auto& ex) { return workloads::fib(ex, n); });
  }
  std::uint64_t nqueens(unsigned n) override {
    return launcher_.run([n](auto& ex) { return workloads::nqueens(ex, n); });
  }
  workloads::UtsCount uts(workloads::UtsTree tree) override {
    return launcher_.run([tree](auto& ex) { return workloads::uts(ex, tree); });
  }
  std::uint64_t skynet(std::uint64_t leaves) override {
    return launcher_.run([leaves](auto& ex) { return workloads::skynet(ex, leaves); });
  }
  void matmul(workloads::MatmulProblem& problem) override {
    launcher_.run([&problem](auto& ex) {
      problem.multiply(ex);
      return true;  // launchers hand back a value
    });
  }

  std::size_t threads_seen() override {
    const std::uint64_t bodies = detail::kProbeBodiesPerWorker * launcher_.workers();
    std::mutex mutex;
    std::set<std::thread::id> seen;
    launcher_.run([&](auto& ex) {
      ex.parallel_for(0, bodies, 1, [&](auto&, std::uint64_t) {
        const auto until = std::chrono::steady_clock::now() + detail::kProbeBodyBusy;
        while (std::chrono::steady_clock::now() < until) {
        }
        const std::lock_guard lock(mutex);
        seen.insert(std::this_thread::get_id());
      });
      return true;
    });
    return seen.size();
  }

 protected:
  Launcher launcher_;
};

// The peers. `workers` >= 1.

std::unique_ptr<Runtime> make_serial_runtime();

// How the oneTBB peer forks a join (tbb_executor.hpp).
enum class TbbJoin { kTaskGroup, kParallelInvoke };
std::unique_ptr<Runtime> make_tbb_runtime(std::uint32_t workers, TbbJoin join);

// Whether the OpenMP peer's tasks are tied (the default) or untied.
enum class OmpTasks { kTied, kUntied };
std::unique_ptr<Runtime> make_omp_runtime(std::uint32_t workers, OmpTasks tasks);

// Beat's scheduler with SchedulerOptions defaults except `workers`,
// `inline_forks` and, when non-zero, `heartbeat_us`. Throws
// std::runtime_error when the scheduler cannot start.
std::unique_ptr<Runtime> make_beat_runtime(std::uint32_t workers, std::uint32_t heartbeat_us,
                                           bool inline_forks);

}  // namespace beat::perf::forkjoin
