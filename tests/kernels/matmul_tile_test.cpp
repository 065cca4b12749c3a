// kernels/matmul_tile.hpp and the matmul_f32 kernel (kernels/matmul_tile.cc):
// products against a double-precision reference within the f32 summation
// error bound, exact products of small integers, the kernel bit for bit
// equal to the serial blocked form (serially and on a real 2-worker
// scheduler), every bad argument and range with its exact status and
// detail, cancellation, a client scribbling on the arena while the kernel
// runs, and the SIMD form on every Highway target this CPU supports
// against the scalar target.
#include "kernels/matmul_tile.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daemon/scheduler/scheduler.hpp"
#include "hwy/targets.h"
#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"
#include "tests/support/highway_targets.hpp"
#include "tests/support/scheduler_setup.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using Args = std::array<std::uint64_t, kInlineArgs>;

constexpr std::uint32_t kClient = 7;
constexpr float kUnwritten = -12345.0f;  // C before the kernel runs
constexpr float kGuard = 9876.5f;        // arena floats outside A, B and C
constexpr std::size_t kGuardFloats = 64;

struct Shape {
  std::uint64_t m, k, n;
};

std::string name(const Shape& s) {
  return std::to_string(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n);
}

// Crossing vector widths (4, 8, 16 lanes; slivers of 2 vectors), the
// micro-kernel's rows (6, 12), the tiles (96 x 256), the panel depths
// (128, 256) and a chunk of k (4096); the last has 10^6 elements of C.
const Shape kShapes[] = {{1, 1, 1},       {1, 7, 1},     {7, 7, 7},       {3, 64, 65},
                         {64, 64, 64},    {17, 1000, 9}, {100, 100, 100}, {97, 5, 257},
                         {256, 256, 256}, {5, 4100, 33}, {1000, 64, 1000}};

// A, B and the double-precision reference of A B with, per element, the
// sum of |a_ip| |b_pj| that bounds its rounding error.
struct Case {
  Shape s;
  std::vector<float> a, b;
  std::vector<double> c;    // sum_p a_ip b_pj
  std::vector<double> abs;  // sum_p |a_ip| |b_pj|
};

// Uniform in [-1, 1), or (small_integers) integers in [-8, 8]: their
// products sum exactly in f32 for k < 2^18 (|sum| <= 64 k < 2^24).
Case make_case(Shape s, std::uint64_t seed, bool small_integers) {
  Case c{s, std::vector<float>(s.m * s.k), std::vector<float>(s.k * s.n),
         std::vector<double>(s.m * s.n, 0.0), std::vector<double>(s.m * s.n, 0.0)};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  std::uniform_int_distribution<int> integer(-8, 8);
  auto draw = [&] { return small_integers ? static_cast<float>(integer(rng)) : real(rng); };
  for (float& x : c.a) x = draw();
  for (float& x : c.b) x = draw();
  for (std::uint64_t i = 0; i < s.m; ++i) {
    for (std::uint64_t p = 0; p < s.k; ++p) {
      const double a = c.a[i * s.k + p];
      for (std::uint64_t j = 0; j < s.n; ++j) {
        const double b = c.b[p * s.n + j];
        c.c[i * s.n + j] += a * b;
        c.abs[i * s.n + j] += std::fabs(a) * std::fabs(b);
      }
    }
  }
  return c;
}

// The error bound, per element: |C - C_ref| <= k * eps_f32 * sum_p |a_ip||b_pj|.
// Why it holds: the blocked form sums each element's k products in a
// fixed order (FMA steps within a panel, then one addition per later
// panel), naive in k order; either way each product passes through at
// most k roundings, so the f32 error is at most gamma_k(u) * sum |a b|
// with u = 2^-24 and gamma_k(u) = k u / (1 - k u) (Higham, "Accuracy and
// Stability of Numerical Algorithms", 2nd ed., sec. 3.1 and 3.5). The
// double reference errs by at most gamma_k(2^-53) times the same sum. For
// k <= 2^20 both together are below 2 k u = k eps_f32. (No underflow:
// inputs from [-1, 1) are at least 2^-24 apart from 0 in magnitude, far
// above f32's subnormals.)
double bound(const Case& c, std::size_t idx) {
  return static_cast<double>(c.s.k) * std::numeric_limits<float>::epsilon() * c.abs[idx];
}

// Expects |got - ref| <= factor * bound for every element.
void expect_within_bound(const Case& c, const float* got, double factor, const std::string& what) {
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < c.c.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - c.c[i]);
    if (!(err <= factor * bound(c, i))) {  // also catches NaN
      if (bad++ == 0) first = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << " " << name(c.s) << ": first at " << first << " got " << got[first]
                     << " want " << c.c[first] << " bound " << factor * bound(c, first);
}

// Expects got == the reference exactly (small-integer cases).
void expect_exact(const Case& c, const float* got, const std::string& what) {
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < c.c.size(); ++i) {
    if (static_cast<double>(got[i]) != c.c[i] && bad++ == 0) first = i;
  }
  EXPECT_EQ(bad, 0u) << what << " " << name(c.s) << ": first at " << first << " got " << got[first]
                     << " want " << c.c[first];
}

bool same_bits(const std::vector<float>& x, const float* y) {
  return std::memcmp(x.data(), y, x.size() * sizeof(float)) == 0;
}

std::vector<float> blocked_product(const Case& c) {
  std::vector<float> out(c.s.m * c.s.n, kUnwritten);
  EXPECT_TRUE(matmul_tile::blocked(c.a.data(), c.b.data(), out.data(), c.s.m, c.s.k, c.s.n));
  return out;
}

// A client arena: [guard | A | B | C | guard], each part at a 64-byte
// aligned offset, C filled with kUnwritten, the rest of the arena kGuard.
class Arena {
 public:
  explicit Arena(const Case& c) : s_(c.s) {
    a_ = kGuardFloats;
    b_ = a_ + round_up(s_.m * s_.k);
    c_ = b_ + round_up(s_.k * s_.n);
    end_ = c_ + round_up(s_.m * s_.n) + kGuardFloats;
    floats_.assign(end_, kGuard);
    std::copy(c.a.begin(), c.a.end(), floats_.begin() + a_);
    std::copy(c.b.begin(), c.b.end(), floats_.begin() + b_);
    std::fill_n(floats_.begin() + c_, s_.m * s_.n, kUnwritten);
  }

  ArenaView whole() { return {bytes(), end_ * sizeof(float)}; }
  ArenaView a_range() { return {bytes() + a_ * sizeof(float), s_.m * s_.k * sizeof(float)}; }
  std::uint64_t a_offset() const { return a_ * sizeof(float); }
  std::uint64_t b_offset() const { return b_ * sizeof(float); }
  std::uint64_t c_offset() const { return c_ * sizeof(float); }
  Args args() const { return {b_offset(), c_offset(), s_.k | s_.n << 32}; }
  float* a() { return floats_.data() + a_; }
  float* b() { return floats_.data() + b_; }
  float* c() { return floats_.data() + c_; }
  std::byte* bytes() { return reinterpret_cast<std::byte*>(floats_.data()); }

  // True when everything but C holds what the constructor put there.
  bool untouched_outside_c(const Case& cs) const {
    for (std::size_t i = 0; i < end_; ++i) {
      const bool in_a = i >= a_ && i < a_ + cs.a.size();
      const bool in_b = i >= b_ && i < b_ + cs.b.size();
      const bool in_c = i >= c_ && i < c_ + s_.m * s_.n;
      if (in_c) continue;
      const float want = in_a ? cs.a[i - a_] : in_b ? cs.b[i - b_] : kGuard;
      if (std::memcmp(&floats_[i], &want, sizeof(float)) != 0) return false;
    }
    return true;
  }
  bool c_unwritten() const {
    for (std::size_t i = 0; i < s_.m * s_.n; ++i)
      if (floats_[c_ + i] != kUnwritten) return false;
    return true;
  }

 private:
  static std::size_t round_up(std::size_t floats) { return (floats + 15) / 16 * 16; }

  Shape s_;
  std::size_t a_, b_, c_, end_;
  std::vector<float> floats_;
};

KernelFn matmul_f32() {
  static const KernelFn fn = [] {
    KernelRegistry registry;
    register_matmul_tile_kernels(registry);
    const auto id = registry.find("matmul_f32");
    return id ? registry.at(*id).fn : nullptr;
  }();
  return fn;
}

KernelResult run_serial(ArenaView arena, const Args& args, ArenaView data,
                        const std::atomic<bool>* stop = nullptr) {
  TaskContext ctx(nullptr, kClient, arena, stop);
  return matmul_f32()(ctx, KernelArgs(args), data);
}

void expect_result(const KernelResult& r, TaskStatus status, std::uint32_t detail,
                   std::uint64_t value, const std::string& what) {
  EXPECT_EQ(r.status, status) << what;
  EXPECT_EQ(r.detail, detail) << what;
  EXPECT_EQ(r.value, value) << what;
}

TEST(MatmulTile, BlockedAndNaiveAreWithinTheBoundOfTheDoubleReference) {
  ASSERT_NE(std::string(matmul_tile::simd_target_name()), "");
  std::uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    const Case c = make_case(s, seed++, false);
    expect_within_bound(c, blocked_product(c).data(), 1.0, "blocked");
    std::vector<float> naive(s.m * s.n, kUnwritten);
    matmul_tile::naive(c.a.data(), c.b.data(), naive.data(), s.m, s.k, s.n);
    expect_within_bound(c, naive.data(), 1.0, "naive");
  }
}

TEST(MatmulTile, SmallIntegerProductsAreExact) {
  std::uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    const Case c = make_case(s, seed++, true);
    expect_exact(c, blocked_product(c).data(), "blocked");
    std::vector<float> naive(s.m * s.n, kUnwritten);
    matmul_tile::naive(c.a.data(), c.b.data(), naive.data(), s.m, s.k, s.n);
    expect_exact(c, naive.data(), "naive");
    Arena arena(c);
    expect_result(run_serial(arena.whole(), arena.args(), arena.a_range()), TaskStatus::kOk, 0, s.m,
                  "kernel " + name(s));
    expect_exact(c, arena.c(), "kernel");
  }
}

TEST(MatmulTile, EmptyDimensions) {
  std::vector<float> c(6, kUnwritten);
  const std::vector<float> a(6, 1.0f), b(6, 1.0f);
  ASSERT_TRUE(matmul_tile::blocked(a.data(), b.data(), c.data(), 2, 0, 3));
  EXPECT_EQ(c, std::vector<float>(6, 0.0f)) << "k == 0: the empty sum";
  std::fill(c.begin(), c.end(), kUnwritten);
  ASSERT_TRUE(matmul_tile::blocked(a.data(), b.data(), c.data(), 0, 3, 2));
  ASSERT_TRUE(matmul_tile::blocked(a.data(), b.data(), c.data(), 2, 3, 0));
  EXPECT_EQ(c, std::vector<float>(6, kUnwritten)) << "m == 0 or n == 0: nothing to write";
}

TEST(MatmulF32, SerialKernelEqualsTheBlockedFormBitForBit) {
  std::uint64_t seed = 200;
  for (const Shape& s : kShapes) {
    const Case c = make_case(s, seed++, false);
    Arena arena(c);
    expect_result(run_serial(arena.whole(), arena.args(), arena.a_range()), TaskStatus::kOk, 0, s.m,
                  name(s));
    EXPECT_TRUE(same_bits(blocked_product(c), arena.c())) << name(s);
    EXPECT_TRUE(arena.untouched_outside_c(c)) << name(s);
  }
}

TEST(MatmulF32, TwoWorkersGiveTheSerialBits) {
  test::ScopedWatchdog watchdog("MatmulF32.TwoWorkers", 60);
  const Topology topo = test::machine_topology();
  // Large enough to be cut into several leaves (kLeafMinFmas = 2^21).
  const Shape shapes[] = {{256, 256, 256}, {1000, 64, 1000}, {300, 40, 700}, {97, 200, 257}};
  std::vector<Case> cases;
  std::vector<std::vector<float>> serial;
  std::uint64_t seed = 300;
  for (const Shape& s : shapes) {
    cases.push_back(make_case(s, seed++, false));
    serial.push_back(blocked_product(cases.back()));
  }
  for (const bool inline_forks : {true, false}) {
    sched::SchedulerOptions o = test::unpinned_options(2);
    o.inline_forks = inline_forks;
    sched::Scheduler sched(o, topo);
    ASSERT_TRUE(sched.start());
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const std::string what = name(cases[i].s) + " inline_forks=" + std::to_string(inline_forks);
      for (int run = 0; run < 3; ++run) {
        Arena arena(cases[i]);
        KernelResult r;
        sched.run([&](sched::Worker& w) {
          TaskContext ctx(&w, kClient, arena.whole());
          const Args args = arena.args();
          r = matmul_f32()(ctx, KernelArgs(args), arena.a_range());
        });
        expect_result(r, TaskStatus::kOk, 0, cases[i].s.m, what);
        EXPECT_TRUE(same_bits(serial[i], arena.c())) << what << " run " << run;
        EXPECT_TRUE(arena.untouched_outside_c(cases[i])) << what;
      }
    }
    sched.stop();
    // How the work was shared varies from run to run (unpinned workers on
    // a shared machine); the bits above must not.
    RecordProperty(inline_forks ? "steals_inline" : "steals_frames",
                   static_cast<int>(sched.stats().steals));
  }
}

TEST(MatmulF32, MEqualToZeroIsNothingToDo) {
  const Case c = make_case({2, 3, 4}, 400, false);
  Arena arena(c);
  const ArenaView no_rows{arena.bytes() + arena.a_offset(), 0};
  expect_result(run_serial(arena.whole(), arena.args(), no_rows), TaskStatus::kOk, 0, 0, "m = 0");
  EXPECT_TRUE(arena.c_unwritten());
  // C has no elements: any offset names an empty range.
  Args far_c = arena.args();
  far_c[1] = ~std::uint64_t{0};
  expect_result(run_serial(arena.whole(), far_c, no_rows), TaskStatus::kOk, 0, 0, "m = 0, far C");
  // B is still checked.
  Args far_b = arena.args();
  far_b[0] = arena.whole().size;
  expect_result(run_serial(arena.whole(), far_b, no_rows), TaskStatus::kInvalidRange, 0, 0,
                "m = 0, B outside");
  EXPECT_TRUE(arena.untouched_outside_c(c));
}

TEST(MatmulF32, ZeroKOrNIsInvalidArgTwo) {
  const Case c = make_case({2, 3, 4}, 500, false);
  Arena arena(c);
  for (const std::uint64_t kn : {std::uint64_t{0}, std::uint64_t{4} << 32, std::uint64_t{3}}) {
    Args args = arena.args();
    args[2] = kn;
    expect_result(run_serial(arena.whole(), args, arena.a_range()), TaskStatus::kInvalidArgs, 2, 0,
                  "args[2] = " + std::to_string(kn));
  }
  EXPECT_TRUE(arena.c_unwritten());
}

TEST(MatmulF32, DataRangeNotWholeAlignedRowsIsTheDataRangeDetail) {
  const Case c = make_case({2, 3, 4}, 600, false);
  Arena arena(c);
  std::byte* a = arena.bytes() + arena.a_offset();
  const ArenaView bad[] = {
      {a, 2 * 3 * sizeof(float) + sizeof(float)},  // 7 floats: not whole rows of k = 3
      {a, 3 * sizeof(float) - 2},                  // not whole floats
      {a + 2, 3 * sizeof(float)},                  // misaligned
      {a, 2 * sizeof(float)},                      // less than a row
  };
  for (const ArenaView& data : bad) {
    expect_result(run_serial(arena.whole(), arena.args(), data), TaskStatus::kInvalidRange,
                  kDataRangeDetail, 0, "data length " + std::to_string(data.size));
  }
  EXPECT_TRUE(arena.c_unwritten());
}

TEST(MatmulF32, BadBIsInvalidRangeZero) {
  const Case c = make_case({2, 3, 4}, 700, false);
  Arena arena(c);
  const std::uint64_t size = arena.whole().size;
  const std::uint64_t b_bytes = 3 * 4 * sizeof(float);
  for (const std::uint64_t offset : {size, size - b_bytes + sizeof(float), arena.b_offset() + 2,
                                     std::uint64_t{1} << 63, ~std::uint64_t{0}}) {
    Args args = arena.args();
    args[0] = offset;
    expect_result(run_serial(arena.whole(), args, arena.a_range()), TaskStatus::kInvalidRange, 0, 0,
                  "B offset " + std::to_string(offset));
  }
  // k * n floats more than the arena holds.
  Args args = arena.args();
  args[2] = 3 | std::uint64_t{0xFFFF'FFFF} << 32;
  expect_result(run_serial(arena.whole(), args, arena.a_range()), TaskStatus::kInvalidRange, 0, 0,
                "B of 3 x (2^32 - 1)");
  EXPECT_TRUE(arena.c_unwritten());
}

TEST(MatmulF32, BadCIsInvalidRangeOne) {
  // k == n, so that C (m x n) and A (m x k) have the same size.
  const Case c = make_case({3, 4, 4}, 800, false);
  Arena arena(c);
  // A is 12 floats, B 16 floats from A's start (Arena pads to 16).
  ASSERT_EQ(arena.b_offset() - arena.a_offset(), 16 * sizeof(float));
  const std::uint64_t size = arena.whole().size;
  const std::uint64_t c_bytes = 3 * 4 * sizeof(float);
  struct Bad {
    std::uint64_t offset;
    const char* what;
  };
  const Bad bad[] = {
      {size, "past the arena"},
      {size - c_bytes + sizeof(float), "its last float past the arena"},
      {arena.c_offset() + 2, "misaligned"},
      {~std::uint64_t{0}, "at 2^64 - 1"},
      {arena.a_offset(), "the same bytes as A"},
      {arena.a_offset() + sizeof(float), "overlapping A only"},
      {arena.b_offset() + sizeof(float), "inside B only"},
      {arena.b_offset() - c_bytes + sizeof(float), "overlapping A's end and B's start"},
  };
  for (const Bad& b : bad) {
    Args args = arena.args();
    args[1] = b.offset;
    expect_result(run_serial(arena.whole(), args, arena.a_range()), TaskStatus::kInvalidRange, 1, 0,
                  b.what);
  }
  EXPECT_TRUE(arena.untouched_outside_c(c));
  EXPECT_TRUE(arena.c_unwritten());
}

TEST(MatmulF32, TheFirstBadArgumentInCheckingOrderIsReported) {
  const Case c = make_case({2, 3, 4}, 900, false);
  Arena arena(c);
  const std::uint64_t outside = arena.whole().size;
  const ArenaView bad_data{arena.bytes() + arena.a_offset(), 7};
  // args[2], then the data range, then B (args[0]), then C (args[1]).
  expect_result(run_serial(arena.whole(), {outside, outside, 0}, bad_data),
                TaskStatus::kInvalidArgs, 2, 0, "all bad");
  expect_result(run_serial(arena.whole(), {outside, outside, 3 | 4ull << 32}, bad_data),
                TaskStatus::kInvalidRange, kDataRangeDetail, 0, "data, B and C bad");
  expect_result(run_serial(arena.whole(), {outside, outside, 3 | 4ull << 32}, arena.a_range()),
                TaskStatus::kInvalidRange, 0, 0, "B and C bad");
}

TEST(MatmulF32, SizesWhoseProductWouldWrapAreRefusedBeforeAnyAccess) {
  // An arena that claims 2^36 bytes over a 64-byte buffer: the checks read
  // nothing, and a kernel that got past them would fault. A = 2^33 rows of
  // k = 1 (2^35 bytes), n = 2^31: B (k x n = 2^33 bytes) fits, and m * n =
  // 2^64 wraps to 0 in 64 bits, which an unchecked product would take for
  // an empty C.
  alignas(64) std::array<float, 16> buffer{};
  std::byte* base = reinterpret_cast<std::byte*>(buffer.data());
  const ArenaView arena{base, std::uint64_t{1} << 36};
  const ArenaView a{base, std::uint64_t{1} << 35};
  expect_result(run_serial(arena, {0, 0, 1 | std::uint64_t{1} << 31 << 32}, a),
                TaskStatus::kInvalidRange, 1, 0, "m * n = 2^64");
}

TEST(MatmulF32, ACancelledTaskStopsBeforeItsFirstChunk) {
  const Case c = make_case({100, 100, 100}, 1000, false);
  Arena arena(c);
  const std::atomic<bool> stop{true};
  expect_result(run_serial(arena.whole(), arena.args(), arena.a_range(), &stop),
                TaskStatus::kDropped, 0, 0, "stopped");
  EXPECT_TRUE(arena.c_unwritten());
}

TEST(MatmulF32, AClientWritingTheArenaMeanwhileOnlyChangesTheNumbers) {
  if (test::kUnderThreadSanitizer)
    GTEST_SKIP() << "the kernel's plain reads racing the client's writes are the point";
  test::ScopedWatchdog watchdog("MatmulF32.HostileClient", 60);
  const Topology topo = test::machine_topology();
  sched::Scheduler sched(test::unpinned_options(2), topo);
  ASSERT_TRUE(sched.start());
  const Case c = make_case({300, 100, 300}, 1100, false);
  Arena arena(c);
  // The client rewrites A and B (and C) with values of every class while
  // the kernel runs; the writes are atomic on its side, as a client's
  // would be through its own mapping.
  std::atomic<bool> done{false};
  std::thread client([&] {
    const float values[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(), -3.0e38f, 1.0e-45f, 0.0f};
    std::mt19937_64 rng(5);
    float* parts[] = {arena.a(), arena.b(), arena.c()};
    const std::size_t sizes[] = {c.a.size(), c.b.size(), std::size_t{300} * 300};
    // Relaxed: `done` only ends the loop; nothing is published with it.
    while (!done.load(std::memory_order_relaxed)) {
      const std::size_t part = rng() % 3;
      // Relaxed: a client's write orders nothing for the kernel.
      std::atomic_ref<float>(parts[part][rng() % sizes[part]])
          .store(values[rng() % std::size(values)], std::memory_order_relaxed);
    }
  });
  for (int run = 0; run < 5; ++run) {
    KernelResult r;
    sched.run([&](sched::Worker& w) {
      TaskContext ctx(&w, kClient, arena.whole());
      const Args args = arena.args();
      r = matmul_f32()(ctx, KernelArgs(args), arena.a_range());
    });
    expect_result(r, TaskStatus::kOk, 0, 300, "run " + std::to_string(run));
  }
  done.store(true, std::memory_order_relaxed);
  client.join();
  sched.stop();
  // The guards around A, B and C are intact (A and B changed, by design).
  const float* floats = reinterpret_cast<const float*>(arena.bytes());
  for (std::size_t i = 0; i < kGuardFloats; ++i) EXPECT_EQ(floats[i], kGuard) << i;
  const float* after_c = floats + arena.whole().size / sizeof(float) - kGuardFloats;
  for (std::size_t i = 0; i < kGuardFloats; ++i) EXPECT_EQ(after_c[i], kGuard) << i;
}

TEST(MatmulTile, EveryTargetIsWithinTheBoundOfTheScalarTarget) {
  // The last target is the scalar one (targets are listed best first).
  const std::int64_t scalar = hwy::SupportedAndGeneratedTargets().back();
  const std::string scalar_name = hwy::TargetName(scalar);
  ASSERT_TRUE(scalar_name == "SCALAR" || scalar_name == "EMU128") << scalar_name;
  const Shape shapes[] = {{7, 7, 7}, {3, 64, 65}, {17, 1000, 9}, {100, 100, 100}, {97, 5, 257}};
  std::uint64_t seed = 1200;
  for (const Shape& s : shapes) {
    const Case c = make_case(s, seed++, false);
    hwy::SetSupportedTargetsForTest(scalar);
    ASSERT_EQ(matmul_tile::simd_target_name(), scalar_name);
    const std::vector<float> on_scalar = blocked_product(c);
    test::on_every_target(matmul_tile::simd_target_name, [&](std::int64_t) {
      const std::vector<float> got = blocked_product(c);
      expect_within_bound(c, got.data(), 1.0, "blocked");
      // Both within the bound of the reference: within twice it of each
      // other.
      Case versus_scalar = c;
      for (std::size_t i = 0; i < got.size(); ++i) versus_scalar.c[i] = on_scalar[i];
      expect_within_bound(versus_scalar, got.data(), 2.0, "versus the scalar target");
      // The kernel dispatches the same way.
      Arena arena(c);
      expect_result(run_serial(arena.whole(), arena.args(), arena.a_range()), TaskStatus::kOk, 0,
                    s.m, "kernel");
      EXPECT_TRUE(same_bits(got, arena.c())) << name(s);
    });
  }
}

}  // namespace
}  // namespace beat
