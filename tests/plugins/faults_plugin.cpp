// A plugin for the integration tests (tests/integration/plugins_test.cpp):
// kernels that fail in each way a plugin kernel can. Written in C++ so that
// one of them can throw through the C ABI, which beatd must survive.
//
//   faults.fail        kernel_error with detail args[0] (a kernel's own code)
//   faults.throw       throws std::runtime_error
//   faults.bad_status  returns status 99, which the ABI does not define
//   faults.range       invalid_range naming args[0] when args[0]..+8 is not
//                      in the arena, else the u64 stored there
//   faults.bad_index   invalid_args naming args[7], which does not exist
//   faults.data_a/b    one function serving two kernels: the u64 their
//                      kernel_data points at (1 and 2)
//   faults.hang        busy-waits args[0] ms (at most 60 s) without forking
//                      or polling for cancellation: a stuck worker, for the
//                      watchdog test
//   faults.fork_sum    sum of 0..args[0]-1 computed through beat_join and
//                      beat_parallel_for (chunks of args[1], 0 means 1)
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "kernels/beat_kernel.h"

namespace {

beat_kernel_result fail(beat_kernel_context*, const uint64_t* args, beat_arena_view) {
  return beat_kernel_error(static_cast<uint32_t>(args[0]));
}

beat_kernel_result throw_kernel(beat_kernel_context*, const uint64_t*, beat_arena_view) {
  throw std::runtime_error("faults.throw was asked to throw");
}

beat_kernel_result bad_status(beat_kernel_context*, const uint64_t*, beat_arena_view) {
  return beat_kernel_result{99, 0, 0};
}

beat_kernel_result range(beat_kernel_context* ctx, const uint64_t* args, beat_arena_view) {
  const beat_arena_view v = beat_arena_range(ctx, args[0], sizeof(uint64_t));
  if (v.data == nullptr) return beat_kernel_invalid_range(0);
  uint64_t value;
  std::memcpy(&value, v.data, sizeof value);
  return beat_kernel_ok(value);
}

beat_kernel_result bad_index(beat_kernel_context*, const uint64_t*, beat_arena_view) {
  return beat_kernel_invalid_args(7);
}

const uint64_t kDataA = 1, kDataB = 2;

beat_kernel_result data_value(beat_kernel_context* ctx, const uint64_t*, beat_arena_view) {
  return beat_kernel_ok(*static_cast<const uint64_t*>(ctx->kernel_data));
}

beat_kernel_result hang(beat_kernel_context*, const uint64_t* args, beat_arena_view) {
  if (args[0] > 60'000) return beat_kernel_invalid_args(0);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(args[0]);
  while (std::chrono::steady_clock::now() < until) {
  }
  return beat_kernel_ok(args[0]);
}

struct SumJob {
  std::atomic<uint64_t> total{0};
};

void add_range(beat_kernel_context*, uint64_t begin, uint64_t end, void* arg) {
  uint64_t s = 0;
  for (uint64_t i = begin; i < end; ++i) s += i;
  // Relaxed: read after beat_parallel_for returns, which orders every body.
  static_cast<SumJob*>(arg)->total.fetch_add(s, std::memory_order_relaxed);
}

struct Half {
  uint64_t begin, end, grain;
  SumJob* job;
};

void half(beat_kernel_context* ctx, void* arg) {
  const Half& h = *static_cast<Half*>(arg);
  beat_parallel_for(ctx, h.begin, h.end, h.grain, add_range, h.job);
}

beat_kernel_result fork_sum(beat_kernel_context* ctx, const uint64_t* args, beat_arena_view) {
  if (args[0] > (uint64_t{1} << 32)) return beat_kernel_invalid_args(0);
  SumJob job;
  Half a{0, args[0] / 2, args[1], &job};
  Half b{args[0] / 2, args[0], args[1], &job};
  beat_join(ctx, half, &a, half, &b);
  return beat_kernel_ok(job.total.load(std::memory_order_relaxed));
}

}  // namespace

extern "C" BEAT_PLUGIN_EXPORT uint32_t beat_plugin_abi_version(void) {
  return BEAT_KERNEL_ABI_VERSION;
}

extern "C" BEAT_PLUGIN_EXPORT int beat_plugin_init(beat_plugin_registrar* r) {
  int rc = 0;
  rc |= r->add_kernel(r, "faults.fail", "kernel_error with detail args[0]", fail, nullptr, 0);
  rc |= r->add_kernel(r, "faults.throw", "throws std::runtime_error", throw_kernel, nullptr, 0);
  rc |=
      r->add_kernel(r, "faults.bad_status", "returns an undefined status", bad_status, nullptr, 0);
  rc |= r->add_kernel(r, "faults.range", "u64 at arena offset args[0]", range, nullptr, 0);
  rc |= r->add_kernel(r, "faults.fork_sum", "sum of 0..args[0]-1 through join and parallel_for",
                      fork_sum, nullptr, 0);
  rc |= r->add_kernel(r, "faults.bad_index", "invalid_args(7)", bad_index, nullptr, 0);
  rc |= r->add_kernel(r, "faults.hang", "busy-waits args[0] ms without a sign of life", hang,
                      nullptr, 0);
  rc |= r->add_kernel(r, "faults.data_a", "*kernel_data (1)", data_value,
                      const_cast<uint64_t*>(&kDataA), 0);
  rc |= r->add_kernel(r, "faults.data_b", "*kernel_data (2)", data_value,
                      const_cast<uint64_t*>(&kDataB), 0);
  return rc;
}
