// The OpenMP-tasks peer (omp_executor.hpp). The one translation unit of
// beat-forkjoin-bench compiled with -fopenmp.
#include <memory>

#include "perf/forkjoin/omp_executor.hpp"
#include "perf/forkjoin/runtime.hpp"

namespace beat::perf::forkjoin {

std::unique_ptr<Runtime> make_omp_runtime(std::uint32_t workers, OmpTasks tasks) {
  if (tasks == OmpTasks::kUntied) {
    return std::make_unique<LaunchedRuntime<OmpLauncher<OmpTasks::kUntied>>>(workers);
  }
  return std::make_unique<LaunchedRuntime<OmpLauncher<OmpTasks::kTied>>>(workers);
}

}  // namespace beat::perf::forkjoin
