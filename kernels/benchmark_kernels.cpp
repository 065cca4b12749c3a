// Built-in fork-join benchmark kernels. Each runs a workload from
// kernels/workloads/ through TaskContext (nested fork-join on the daemon's
// work-stealing scheduler) and checks its own answer against a known value
// or an independent computation; a wrong answer is an error completion
// with detail kWrongAnswer, never a result.
//
//   fib      args[0] = n (0..60): result = fib(n); one join per call, no cutoff.
//   nqueens  args[0] = n (1..16): result = number of solutions.
//   uts      args[0] = tree (1 = T1 geometric, 3 = T3 binomial): result =
//            nodes counted (leaves and depth are checked too).
//   skynet   args[0] = leaves (a power of ten, 1..10^8; 0 means 10^6):
//            result = sum of leaf numbers = leaves (leaves - 1) / 2.
//   matmul   args[0] = n (power of two, 64..4096; 0 means 1024): C = A B,
//            recursive blocked; result = the checksum of C. Allocates its
//            three n x n matrices per task (12 MiB at 1024): a benchmark
//            of the scheduler, not of the arena (issue #5's tile kernels
//            work on client data).
#include <new>

#include "kernels/kernel_registry.hpp"
#include "kernels/workloads/fib.hpp"
#include "kernels/workloads/matmul.hpp"
#include "kernels/workloads/nqueens.hpp"
#include "kernels/workloads/skynet.hpp"
#include "kernels/workloads/uts.hpp"

namespace beat {

namespace {

static_assert(workloads::ForkJoinExecutor<TaskContext>);

// fib(93) is the largest that fits in 64 bits; 60 already takes hours.
constexpr std::uint64_t kFibMaxN = 60;
constexpr std::uint64_t kSkynetDefaultLeaves = 1'000'000;
constexpr std::uint64_t kMatmulDefaultN = 1024;

KernelResult fib_kernel(TaskContext& ctx, KernelArgs args, ArenaView) {
  if (args[0] > kFibMaxN) return KernelResult::invalid_args(0);
  const auto n = static_cast<unsigned>(args[0]);
  const std::uint64_t got = workloads::fib(ctx, n);
  if (got != workloads::fib_reference(n)) return KernelResult::error(kWrongAnswer);
  return KernelResult::ok(got);
}

KernelResult nqueens_kernel(TaskContext& ctx, KernelArgs args, ArenaView) {
  if (!workloads::nqueens_valid_n(args[0])) return KernelResult::invalid_args(0);
  const auto n = static_cast<unsigned>(args[0]);
  const std::uint64_t got = workloads::nqueens(ctx, n);
  if (got != workloads::nqueens_known(n)) return KernelResult::error(kWrongAnswer);
  return KernelResult::ok(got);
}

KernelResult uts_kernel(TaskContext& ctx, KernelArgs args, ArenaView) {
  workloads::UtsTree tree;
  if (args[0] == 1)
    tree = workloads::UtsTree::kT1;
  else if (args[0] == 3)
    tree = workloads::UtsTree::kT3;
  else
    return KernelResult::invalid_args(0);
  const workloads::UtsCount got = workloads::uts(ctx, tree);
  if (!(got == workloads::uts_known(tree))) return KernelResult::error(kWrongAnswer);
  return KernelResult::ok(got.nodes);
}

KernelResult skynet_kernel(TaskContext& ctx, KernelArgs args, ArenaView) {
  const std::uint64_t leaves = args[0] == 0 ? kSkynetDefaultLeaves : args[0];
  if (!workloads::skynet_valid_leaves(leaves)) return KernelResult::invalid_args(0);
  const std::uint64_t got = workloads::skynet(ctx, leaves);
  if (got != workloads::skynet_reference(leaves)) return KernelResult::error(kWrongAnswer);
  return KernelResult::ok(got);
}

KernelResult matmul_kernel(TaskContext& ctx, KernelArgs args, ArenaView) {
  const std::uint64_t n = args[0] == 0 ? kMatmulDefaultN : args[0];
  if (!workloads::matmul_valid_n(n)) return KernelResult::invalid_args(0);
  try {
    workloads::MatmulProblem problem(n);
    problem.multiply(ctx);
    if (!problem.verify()) return KernelResult::error(kWrongAnswer);
    return KernelResult::ok(static_cast<std::uint64_t>(problem.checksum()));
  } catch (const std::bad_alloc&) {
    return KernelResult::error(kOutOfMemory);
  }
}

}  // namespace

void register_benchmark_kernels(KernelRegistry& registry) {
  add_builtin(registry, "fib", "fib(args[0]) by fork-join, n <= 60, checked", fib_kernel);
  add_builtin(registry, "nqueens", "solutions of args[0]-queens (1..16) by fork-join, checked",
              nqueens_kernel);
  add_builtin(registry, "uts",
              "unbalanced tree search, args[0] = 1 (T1) or 3 (T3); returns nodes, checked",
              uts_kernel);
  add_builtin(registry, "skynet", "skynet sum over args[0] leaves (power of 10; 0 = 10^6), checked",
              skynet_kernel);
  add_builtin(registry, "matmul",
              "recursive blocked n x n matmul, args[0] = n (0 = 1024); returns checksum",
              matmul_kernel);
}

}  // namespace beat
