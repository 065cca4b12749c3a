// The oneTBB peer (tbb_executor.hpp).
#include <memory>

#include "perf/forkjoin/runtime.hpp"
#include "perf/forkjoin/tbb_executor.hpp"

namespace beat::perf::forkjoin {

std::unique_ptr<Runtime> make_tbb_runtime(std::uint32_t workers, TbbJoin join) {
  if (join == TbbJoin::kParallelInvoke) {
    return std::make_unique<LaunchedRuntime<TbbLauncher<TbbJoin::kParallelInvoke>>>(workers);
  }
  return std::make_unique<LaunchedRuntime<TbbLauncher<TbbJoin::kTaskGroup>>>(workers);
}

}  // namespace beat::perf::forkjoin
