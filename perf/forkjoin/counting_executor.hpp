// CountingExecutor: SerialExecutor (kernels/workloads/fork_join.hpp) that
// also counts the workload's tasks: one per join, one per parallel_for
// iteration. beat-forkjoin-bench divides steals by this count for the steal
// rate ("successful steals / tasks"), so that the rate means the same
// whether or not the scheduler counted every fork (its inline subtrees do
// not) and for every peer.
//
// Thread-safety: one thread; a new instance (or reset()) per count.
#pragma once

#include <cstdint>

#include "kernels/workloads/fork_join.hpp"

namespace beat::perf::forkjoin {

class CountingExecutor {
 public:
  template <class A, class B>
  void join(A&& a, B&& b) {
    ++tasks_;
    a(*this);
    b(*this);
  }

  template <class Body>
  void parallel_for(std::uint64_t begin, std::uint64_t end, std::uint64_t /*grain*/, Body&& body) {
    for (std::uint64_t i = begin; i < end; ++i) {
      ++tasks_;
      body(*this, i);
    }
  }

  std::uint64_t tasks() const noexcept { return tasks_; }

 private:
  std::uint64_t tasks_ = 0;
};

static_assert(workloads::ForkJoinExecutor<CountingExecutor>);

}  // namespace beat::perf::forkjoin
