// TbbExecutor: the workload executor concept (kernels/workloads/fork_join.hpp)
// on oneTBB, the peer Beat's scheduler is compared with in
// beat-forkjoin-bench. Idiomatic oneTBB, nothing tuned beyond choosing the
// faster of its two binary forks:
//
//   join          TbbJoin::kTaskGroup: tbb::task_group, run(b'), a' on the
//                 calling thread, wait(); or TbbJoin::kParallelInvoke:
//                 tbb::parallel_invoke(a', b'), which also spawns b' and
//                 runs a' on the calling thread. Both build a
//                 task_group_context per join.
//   parallel_for  tbb::parallel_for over tbb::blocked_range<std::uint64_t>
//                 (begin, end, grain) with the default (auto) partitioner.
//
// The two are within 2 % of each other here; task_group came out ahead at 1
// worker in 4 of 5 interleaved runs, so kTaskGroup is the default (when in
// doubt, the stronger peer). fib(35), seconds, on the 2-vCPU dev VM (GCC
// 12.2, oneTBB 2021.8, release preset), medians of 5 or 7 reps, five runs
// of each, alternating:
//   build/release/perf/beat-forkjoin-bench --runtimes tbb --workloads fib
//       --tbb-join task_group        (then parallel_invoke)
//   1 worker, medians   task_group 2.02 2.02 2.07 2.09 2.16
//                       parallel_invoke 2.04 2.09 2.09 2.10 2.09
//   1 worker, best rep  task_group 2.00, parallel_invoke 2.00
//   2 workers, best rep task_group 1.01, parallel_invoke 1.03
// (2-worker medians varied from 1.04 to 2.09 s for both with the VM's other
// load; skynet(10^6) measured 0.057 s at 1 worker, 0.033 s at 2 for both.)
//
// TbbLauncher runs roots inside a tbb::task_arena of `workers` slots, one of
// them reserved for the calling thread, so `workers` = 1 means the caller
// alone works (no TBB worker thread can enter the arena) and `workers` = w
// means the caller and w - 1 TBB workers. TBB pins nothing by default.
//
// Thread-safety: TbbExecutor is stateless; every task makes its own, so any
// thread may use any instance. A TbbLauncher is driven by one thread.
#pragma once

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_invoke.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/workloads/fork_join.hpp"
#include "perf/forkjoin/runtime.hpp"

namespace beat::perf::forkjoin {

template <TbbJoin kJoin>
class TbbExecutor {
 public:
  template <class A, class B>
  void join(A&& a, B&& b) {
    if constexpr (kJoin == TbbJoin::kTaskGroup) {
      tbb::task_group group;
      group.run([&b] {
        TbbExecutor ex;
        b(ex);
      });
      a(*this);
      group.wait();
    } else {
      tbb::parallel_invoke(
          [&a] {
            TbbExecutor ex;
            a(ex);
          },
          [&b] {
            TbbExecutor ex;
            b(ex);
          });
    }
  }

  template <class Body>
  void parallel_for(std::uint64_t begin, std::uint64_t end, std::uint64_t grain, Body&& body) {
    if (begin >= end) return;
    // blocked_range requires a grain >= 1; the concept calls 0 a hint too.
    const std::uint64_t g = std::max<std::uint64_t>(grain, 1);
    tbb::parallel_for(tbb::blocked_range<std::uint64_t>(begin, end, g),
                      [&body](const tbb::blocked_range<std::uint64_t>& range) {
                        TbbExecutor ex;
                        for (std::uint64_t i = range.begin(); i != range.end(); ++i) body(ex, i);
                      });
  }
};

static_assert(workloads::ForkJoinExecutor<TbbExecutor<TbbJoin::kTaskGroup>>);
static_assert(workloads::ForkJoinExecutor<TbbExecutor<TbbJoin::kParallelInvoke>>);

template <TbbJoin kJoin>
class TbbLauncher {
 public:
  // REQUIRES: workers >= 1.
  explicit TbbLauncher(std::uint32_t workers)
      : workers_(workers), arena_(static_cast<int>(workers), /*reserved_for_masters=*/1) {
    arena_.initialize();
  }

  std::string name() const { return "tbb"; }
  std::string impl() const {
    return kJoin == TbbJoin::kTaskGroup ? "task_group" : "parallel_invoke";
  }
  std::uint32_t workers() const { return workers_; }

  template <class F>
  auto run(F&& root) {
    return arena_.execute([&root] {
      TbbExecutor<kJoin> ex;
      return root(ex);
    });
  }

 private:
  std::uint32_t workers_;
  tbb::task_arena arena_;
};

}  // namespace beat::perf::forkjoin
