// Built-in kernels of the walking skeleton.
//
//   noop      args[0] echoed as the result. For throughput benchmarks.
//   spin      busy-waits args[0] nanoseconds (<= kMaxSpinNs) on the steady
//             clock; result = nanoseconds actually spun. For benchmarks and
//             drain tests.
//   checksum  XXH3-64 of the task's data range with seed args[0];
//             result = the hash. Requires kTaskFlagUsesData.
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include <chrono>

#include "kernels/kernel_registry.hpp"

namespace beat {

namespace {

constexpr std::uint64_t kMaxSpinNs = 10'000'000'000ull;  // 10 s: longer is a mistake

KernelResult noop_kernel(TaskContext&, KernelArgs args, ArenaView) {
  return KernelResult::ok(args[0]);
}

KernelResult spin_kernel(TaskContext& ctx, KernelArgs args, ArenaView) {
  if (args[0] > kMaxSpinNs) return KernelResult::invalid_args(0);
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto until = start + std::chrono::nanoseconds(args[0]);
  auto now = start;
  while (now < until) {
    if (ctx.cancelled()) return KernelResult::cancelled();
    now = Clock::now();
  }
  return KernelResult::ok(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - start).count()));
}

KernelResult checksum_kernel(TaskContext&, KernelArgs args, ArenaView data) {
  // data may be empty (length 0): XXH3 of zero bytes is well defined.
#if defined(__x86_64__)
  // libxxhash's runtime-dispatched build (AVX2/AVX-512 where the CPU has
  // them): ~3.5x the plain SSE2 entry point on 64 KiB in L2, 1.4x from
  // memory (beat-kernels-bench, perf/RESULTS.md). Same hash.
  return KernelResult::ok(XXH3_64bits_withSeed_dispatch(data.data, data.size, args[0]));
#else
  return KernelResult::ok(XXH3_64bits_withSeed(data.data, data.size, args[0]));
#endif
}

}  // namespace

void register_builtin_kernels(KernelRegistry& registry) {
  add_builtin(registry, "noop", "returns args[0]; for throughput benchmarks", noop_kernel, true);
  add_builtin(registry, "spin", "busy-waits args[0] ns (max 10 s); returns ns spun", spin_kernel,
              false);
  add_builtin(registry, "checksum", "XXH3-64 of the data range, seed args[0]", checksum_kernel,
              true);
  register_crc32c_kernels(registry);
  register_blas1_kernels(registry);
  register_matmul_tile_kernels(registry);
  register_sort_kernels(registry);
  register_histogram_kernels(registry);
  register_topk_kernels(registry);
  register_benchmark_kernels(registry);
}

}  // namespace beat
