// The serial peer: every workload on SerialExecutor
// (kernels/workloads/fork_join.hpp), on the calling thread.
#include <memory>
#include <string>

#include "kernels/workloads/fork_join.hpp"
#include "perf/forkjoin/runtime.hpp"

namespace beat::perf::forkjoin {

namespace {

class SerialLauncher {
 public:
  std::string name() const { return "serial"; }
  std::string impl() const { return "SerialExecutor"; }
  std::uint32_t workers() const { return 1; }

  template <class F>
  auto run(F&& root) {
    workloads::SerialExecutor ex;
    return root(ex);
  }
};

}  // namespace

std::unique_ptr<Runtime> make_serial_runtime() {
  return std::make_unique<LaunchedRuntime<SerialLauncher>>();
}

}  // namespace beat::perf::forkjoin
