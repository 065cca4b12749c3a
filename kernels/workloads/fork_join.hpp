// The fork-join executor concept that Beat's benchmark workloads are written
// against, and SerialExecutor, its one-thread model.
//
// Each workload in kernels/workloads/ (fib, nqueens, uts, skynet, matmul) is
// a function template over an executor `Ex`. The daemon's built-in kernels,
// the in-process benchmarks in perf/ and the TBB and OpenMP peers all
// instantiate the same template with their own executor, so a comparison
// measures the schedulers and nothing else. An executor is any type with
// these two members (checked by `ForkJoinExecutor` below):
//
//   ex.join(a, b)
//     Calls a(ex_a) and b(ex_b) exactly once each, possibly in parallel:
//     b may run on another thread. ex_a and ex_b are executors valid on
//     the thread that runs the callable: `Ex&`, or, when the callable is
//     generic (`[&](auto& e)`), possibly another executor type that the
//     executor chose (Beat runs deep forks through a cheaper inline clone,
//     daemon/scheduler/worker.hpp). Inside a and b, always use the
//     parameter, never the outer `ex`: the outer one belongs to the forking
//     thread. The workloads write every callable generic. a and b return void; results travel
//     through references they capture. join returns after both have returned, and everything a and
//     b wrote happens-before join's return (so the caller may read the
//     results without further synchronisation).
//
//   ex.parallel_for(begin, end, grain, body)
//     begin, end, grain are std::uint64_t. Calls body(ex_i, i) exactly once
//     for each i in [begin, end), possibly in parallel; ex_i is an
//     executor for the running thread, as for join. `grain` is a hint: the smallest number of
//     consecutive indices worth running as one parallel chunk (>= 1). An
//     empty range calls nothing. Returns after every call has returned,
//     with the same happens-before guarantee as join.
//
// Callables are passed by forwarding reference and stay alive until the
// call returns (they live in the caller's frame), so an executor can hand
// another thread a pointer to one instead of copying it. Exceptions: the
// workloads do not throw; executors need not propagate exceptions from a or
// b.
#pragma once

#include <concepts>
#include <cstdint>

namespace beat::workloads {

namespace detail {

// Stand-ins for a workload's callables, used only to state the concept.
template <class Ex>
struct JoinProbe {
  void operator()(Ex&) const noexcept {}
};
template <class Ex>
struct ForBodyProbe {
  void operator()(Ex&, std::uint64_t) const noexcept {}
};

}  // namespace detail

// The contract above, as far as the compiler can check it: the calls are
// well formed and return void. "Exactly once" and "possibly in parallel" are
// tested, not checked (tests/kernels/workloads_test.cpp).
template <class Ex>
concept ForkJoinExecutor = requires(Ex& ex, std::uint64_t i) {
  { ex.join(detail::JoinProbe<Ex>{}, detail::JoinProbe<Ex>{}) } -> std::same_as<void>;
  { ex.parallel_for(i, i, i, detail::ForBodyProbe<Ex>{}) } -> std::same_as<void>;
};

// Runs everything on the calling thread, in program order: join runs a then
// b; parallel_for is a plain ascending loop (grain ignored). The baseline
// every parallel executor is measured against, and the reference semantics
// the workloads are tested with.
// Thread-safety: stateless; any thread may use any instance.
class SerialExecutor {
 public:
  template <class A, class B>
  void join(A&& a, B&& b) {
    a(*this);
    b(*this);
  }

  template <class Body>
  void parallel_for(std::uint64_t begin, std::uint64_t end, std::uint64_t /*grain*/, Body&& body) {
    for (std::uint64_t i = begin; i < end; ++i) body(*this, i);
  }
};

static_assert(ForkJoinExecutor<SerialExecutor>);

}  // namespace beat::workloads
