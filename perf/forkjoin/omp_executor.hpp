// OmpExecutor: the workload executor concept (kernels/workloads/fork_join.hpp)
// on OpenMP tasks (GCC's libgomp), a peer of Beat's scheduler in
// beat-forkjoin-bench. Plain OpenMP 4.5, the textbook forms:
//
//   join          `#pragma omp task` running b (captured shared), a on the
//                 calling thread, `#pragma omp taskwait`.
//   parallel_for  `#pragma omp taskloop grainsize(grain)` (its implicit
//                 taskgroup waits for every chunk).
//
// Tasks are tied (OmpTasks::kTied, the default) or untied (kUntied, the
// `untied` clause on both pragmas). They measure the same with GCC 12's
// libgomp, so the default is the plain form. Median of 5, seconds, 1
// worker, two runs each, on the 2-vCPU dev VM (release preset):
//   build/release/perf/beat-forkjoin-bench --runtimes omp
//       --workloads fib,nqueens,skynet --omp-tasks tied   (then untied)
//   fib(35)       tied 1.06 / 1.07     untied 1.06 / 1.05
//   nqueens(12)   tied 0.36 / 0.37     untied 0.37 / 0.37
//   skynet(10^6)  tied 0.078 / 0.079   untied 0.079 / 0.079
// At 2 workers fib(35) takes 7.4-7.8 s with the VM otherwise idle and 2.2 s
// when another process keeps the second vCPU busy, tied or untied: both
// threads contend for libgomp's one locked team task queue, and less so
// when one of them is mostly descheduled.
//
// OmpLauncher runs each root as `#pragma omp parallel num_threads(workers)`
// + `#pragma omp single`: a team of `workers` threads (the caller is one of
// them) of which one runs the root and the others take tasks at the single's
// implied barrier. libgomp pins nothing unless OMP_PROC_BIND/OMP_PLACES say
// so; the benchmark sets neither.
//
// Compile this header only with OpenMP enabled (omp_runtime.cpp is the one
// translation unit built with -fopenmp): without it the pragmas are ignored
// and everything runs serially.
//
// Thread-safety: OmpExecutor is stateless; any thread may use any instance
// (an untied task that resumes on another thread keeps using it). An
// OmpLauncher is driven by one thread, never from inside a parallel region.
#pragma once

#ifndef _OPENMP
#error "omp_executor.hpp needs OpenMP: compile with -fopenmp (link OpenMP::OpenMP_CXX)"
#endif

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/workloads/fork_join.hpp"
#include "perf/forkjoin/runtime.hpp"

namespace beat::perf::forkjoin {

template <OmpTasks kTasks>
class OmpExecutor {
 public:
  template <class A, class B>
  void join(A&& a, B&& b) {
    if constexpr (kTasks == OmpTasks::kUntied) {
#pragma omp task untied shared(b)
      {
        OmpExecutor ex;
        b(ex);
      }
    } else {
#pragma omp task shared(b)
      {
        OmpExecutor ex;
        b(ex);
      }
    }
    a(*this);
#pragma omp taskwait
  }

  template <class Body>
  void parallel_for(std::uint64_t begin, std::uint64_t end, std::uint64_t grain, Body&& body) {
    // grainsize must be positive; the concept calls 0 a hint too.
    const std::uint64_t g = std::max<std::uint64_t>(grain, 1);
    if constexpr (kTasks == OmpTasks::kUntied) {
#pragma omp taskloop untied grainsize(g) shared(body)
      for (std::uint64_t i = begin; i < end; ++i) {
        OmpExecutor ex;
        body(ex, i);
      }
    } else {
#pragma omp taskloop grainsize(g) shared(body)
      for (std::uint64_t i = begin; i < end; ++i) {
        OmpExecutor ex;
        body(ex, i);
      }
    }
  }
};

static_assert(workloads::ForkJoinExecutor<OmpExecutor<OmpTasks::kTied>>);
static_assert(workloads::ForkJoinExecutor<OmpExecutor<OmpTasks::kUntied>>);

template <OmpTasks kTasks>
class OmpLauncher {
 public:
  // REQUIRES: workers >= 1.
  explicit OmpLauncher(std::uint32_t workers) : workers_(workers) {}

  std::string name() const { return "omp"; }
  std::string impl() const { return kTasks == OmpTasks::kUntied ? "untied" : "tied"; }
  std::uint32_t workers() const { return workers_; }

  template <class F>
  auto run(F&& root) {
    using Result = std::invoke_result_t<F&, OmpExecutor<kTasks>&>;
    std::optional<Result> result;
    const int threads = static_cast<int>(workers_);
#pragma omp parallel num_threads(threads) shared(result, root)
#pragma omp single
    {
      OmpExecutor<kTasks> ex;
      result.emplace(root(ex));
    }
    return std::move(*result);
  }

 private:
  std::uint32_t workers_;
};

}  // namespace beat::perf::forkjoin
