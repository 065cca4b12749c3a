// kernels/blas1.hpp and kernels/blas1.cc: sum_f32, dot_f32, saxpy_f32 and
// map_f32 through the registry, serially and on a real 2-worker scheduler,
// against references computed here; every bad argument and range with its
// exact status and detail; and the SIMD forms against the scalar forms on
// every Highway target this CPU supports (hwy::SetSupportedTargetsForTest).
//
// Error bounds (derived in kernels/blas1.hpp): a reduction's float32 lane
// chain is at most 64 additions long, so sum errs by at most gamma_63 (under
// 63.0001 * 2^-24) of sum |x_i| plus under 2^-46 of it for the double steps:
// kSumBound = 64 * 2^-24 covers both. dot rounds each product once more:
// kDotBound = 65 * 2^-24 of sum |x_i y_i|. The long double references err by
// at most n * 2^-64 of the same sums, which the checks add.
// Element-wise a*x + y: fused (one rounding) where the target has FMA,
// otherwise a rounded product then a rounded sum; each element is checked
// for the exact bits of its mode, and against the bound both modes meet:
// |r - exact| <= ulp(fl(a*x))/2 + ulp(r)/2.
#include "kernels/blas1.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
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

using blas1::MapOp;
using Args = std::array<std::uint64_t, kInlineArgs>;

constexpr std::uint32_t kClient = 7;
// The sizes every kernel runs at: empty, below one vector, one stripe of
// lanes, a partial block, many leaves.
constexpr std::size_t kSizes[] = {0, 1, 7, 64, 1000, 1'000'000};
// Edges of the blocking: one lane short of and past a stripe, a block, a
// leaf, and a parallel_for block.
constexpr std::size_t kEdgeSizes[] = {63,
                                      65,
                                      blas1::kReduceBlock - 1,
                                      blas1::kReduceBlock + 1,
                                      blas1::kReduceBlock* blas1::kReduceLeafBlocks + 3,
                                      blas1::kElementwiseBlock + 5};

constexpr long double kU32 = 0x1p-24L;   // unit roundoff of float32
constexpr long double kURef = 0x1p-64L;  // of the long double references
constexpr long double kSumBound = 64 * kU32;
constexpr long double kDotBound = 65 * kU32;
constexpr MapOp kOps[] = {MapOp::kAffine, MapOp::kAbs,  MapOp::kNeg,
                          MapOp::kSqrt,   MapOp::kRelu, MapOp::kSquare};

std::vector<std::size_t> all_sizes() {
  std::vector<std::size_t> v(std::begin(kSizes), std::end(kSizes));
  v.insert(v.end(), std::begin(kEdgeSizes), std::end(kEdgeSizes));
  return v;
}

// Uniform in (-1, 1) scaled by 2^e, e uniform in [-8, 8]: both signs and
// 17 binades, so that rounding happens at every step.
std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-8, 8);
  std::vector<float> v(n);
  for (float& f : v) f = std::ldexp(mantissa(rng), exponent(rng));
  return v;
}

// Integers in [-bound, bound]: small enough that every partial sum of the
// blocked scheme is exact, so the result must be the exact sum.
std::vector<float> random_ints(std::size_t n, std::uint64_t seed, int bound) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(-bound, bound);
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(dist(rng));
  return v;
}

std::uint64_t bits(double d) { return std::bit_cast<std::uint64_t>(d); }
double from_bits(std::uint64_t b) { return std::bit_cast<double>(b); }
std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }
std::uint64_t f32_arg(float f) { return bits(f); }

// The spacing of floats at |v| (the distance to the next one away from 0).
long double ulp(float v) {
  const float m = std::fabs(v);
  return static_cast<long double>(std::nextafter(m, std::numeric_limits<float>::infinity())) - m;
}

// a*x + y as the target computes it: one rounding when fused, else a
// product rounded on its own (volatile: never contracted) plus a rounded sum.
float axpy_reference(float a, float x, float y, bool fused) {
  if (fused) return std::fma(a, x, y);
  volatile float product = a * x;
  return product + y;
}

// The bound both modes meet, for finite operands and result.
bool within_axpy_bound(float a, float x, float y, float r) {
  const long double exact = static_cast<long double>(a) * x + y;  // a*x exact in 64 bits
  const long double slack = kURef * (std::fabs(static_cast<long double>(a) * x) + std::fabs(y));
  return std::fabs(static_cast<long double>(r) - exact) <= ulp(a * x) / 2 + ulp(r) / 2 + slack;
}

float map_reference(MapOp op, float a, float b, float x, bool fused) {
  switch (op) {
    case MapOp::kAffine: return axpy_reference(a, x, b, fused);
    case MapOp::kAbs: return std::bit_cast<float>(bits(x) & 0x7FFF'FFFFu);
    case MapOp::kNeg: return std::bit_cast<float>(bits(x) ^ 0x8000'0000u);
    case MapOp::kSqrt: return std::sqrt(x);
    case MapOp::kRelu: return x > 0.0f ? x : 0.0f;
    case MapOp::kSquare: return x * x;
  }
  return 0.0f;
}

// Same bits, except that any NaN matches a NaN where the hardware picks the
// NaN (sqrt of a negative, arithmetic on a NaN); abs, neg and relu only move
// bits and must match exactly.
bool same_result(MapOp op, float got, float want) {
  const bool any_nan = op == MapOp::kAffine || op == MapOp::kSqrt || op == MapOp::kSquare;
  if (any_nan && std::isnan(want)) return std::isnan(got);
  return bits(got) == bits(want);
}

// Values that each op treats specially; map inputs start with them.
std::vector<float> map_input(std::size_t n, std::uint64_t seed) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float specials[] = {-0.0f,
                            0.0f,
                            kInf,
                            -kInf,
                            std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::min()};
  std::vector<float> v = random_floats(n, seed);
  for (std::size_t i = 0; i < n && i < std::size(specials); ++i) v[i] = specials[i];
  return v;
}

struct Reference {
  long double sum = 0;
  long double abs_sum = 0;
};

Reference sum_reference(std::span<const float> x) {
  Reference r;
  for (const float v : x) {
    r.sum += v;
    r.abs_sum += std::fabs(v);
  }
  return r;
}

Reference dot_reference(std::span<const float> x, std::span<const float> y) {
  Reference r;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const long double p = static_cast<long double>(x[i]) * y[i];  // exact
    r.sum += p;
    r.abs_sum += std::fabs(p);
  }
  return r;
}

::testing::AssertionResult within(double got, const Reference& ref, long double rel_bound,
                                  std::size_t n) {
  const long double bound = (rel_bound + static_cast<long double>(n) * kURef) * ref.abs_sum;
  const long double err = std::fabs(static_cast<long double>(got) - ref.sum);
  if (err <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "n " << n << ": got " << got << ", exact " << static_cast<double>(ref.sum) << ", error "
         << static_cast<double>(err) << " > bound " << static_cast<double>(bound);
}

// Floats standing for a client's arena: x at element kGap, then kGap
// sentinels, then y (n elements), then kGap sentinels. Whatever a kernel
// must not write keeps kSentinel.
class Arena {
 public:
  static constexpr std::size_t kGap = 4;
  static constexpr float kSentinel = 12345.5f;

  explicit Arena(std::size_t n) : n_(n), f_(2 * n + 3 * kGap, kSentinel) {}

  std::size_t n() const { return n_; }
  std::span<float> x() { return {f_.data() + kGap, n_}; }
  std::span<float> y() { return {f_.data() + 2 * kGap + n_, n_}; }
  std::uint64_t x_offset() const { return kGap * sizeof(float); }
  std::uint64_t y_offset() const { return (2 * kGap + n_) * sizeof(float); }
  std::uint64_t size_bytes() const { return f_.size() * sizeof(float); }
  ArenaView whole() { return {bytes(), size_bytes()}; }
  ArenaView x_view() { return {bytes() + x_offset(), n_ * sizeof(float)}; }
  // Any byte range of the arena (for bad data ranges).
  ArenaView view(std::uint64_t offset, std::uint64_t length) { return {bytes() + offset, length}; }

  void set_x(const std::vector<float>& v) { std::copy(v.begin(), v.end(), x().begin()); }
  void set_y(const std::vector<float>& v) { std::copy(v.begin(), v.end(), y().begin()); }

  bool sentinels_intact() const {
    for (std::size_t i = 0; i < kGap; ++i) {
      if (f_[i] != kSentinel || f_[kGap + n_ + i] != kSentinel ||
          f_[2 * kGap + 2 * n_ + i] != kSentinel)
        return false;
    }
    return true;
  }

 private:
  std::byte* bytes() { return reinterpret_cast<std::byte*>(f_.data()); }

  std::size_t n_;
  std::vector<float> f_;
};

class Blas1 : public ::testing::Test {
 protected:
  Blas1() { register_blas1_kernels(registry_); }

  KernelFn kernel(std::string_view name) const {
    const auto id = registry_.find(name);
    EXPECT_TRUE(id.has_value()) << name;
    return id ? registry_.at(*id).fn : nullptr;
  }

  // Serially (forks are plain calls), as builtin_kernels_test does.
  KernelResult run(std::string_view name, Args args, ArenaView arena, ArenaView data,
                   const std::atomic<bool>* stop = nullptr) const {
    const KernelFn fn = kernel(name);
    if (fn == nullptr) return KernelResult::error(0xDEAD);
    TaskContext ctx(nullptr, kClient, arena, stop);
    return fn(ctx, KernelArgs(args), data);
  }

  // On a worker of `s`, as the daemon runs a task.
  KernelResult run_on(sched::Scheduler& s, std::string_view name, Args args, ArenaView arena,
                      ArenaView data) const {
    const KernelFn fn = kernel(name);
    if (fn == nullptr) return KernelResult::error(0xDEAD);
    KernelResult r;
    s.run([&](sched::Worker& w) {
      TaskContext ctx(&w, kClient, arena);
      r = fn(ctx, KernelArgs(args), data);
    });
    return r;
  }

  KernelRegistry registry_;
};

void expect_ok(const KernelResult& r, std::uint64_t value, std::string_view what) {
  EXPECT_EQ(r.status, TaskStatus::kOk) << what;
  EXPECT_EQ(r.detail, 0u) << what;
  EXPECT_EQ(r.value, value) << what;
}

void expect_failure(const KernelResult& r, TaskStatus status, std::uint32_t detail,
                    std::string_view what) {
  EXPECT_EQ(r.status, status) << what;
  EXPECT_EQ(r.detail, detail) << what;
  EXPECT_EQ(r.value, 0u) << what;
}

TEST_F(Blas1, RegistersFourKernelsWithOneLineDescriptions) {
  for (const char* name : {"sum_f32", "dot_f32", "saxpy_f32", "map_f32"}) {
    const auto id = registry_.find(name);
    ASSERT_TRUE(id) << name;
    const std::string& d = registry_.at(*id).description;
    EXPECT_FALSE(d.empty()) << name;
    EXPECT_EQ(d.find_first_of("\t\n"), std::string::npos) << name;
  }
  EXPECT_EQ(registry_.size(), 4u);
}

// ---- sum_f32 ----

TEST_F(Blas1, SumIsExactOnIntegersAtEverySize) {
  for (const std::size_t n : all_sizes()) {
    Arena arena(n);
    // |lane partial| <= 64 * 1000 < 2^24: every float32 step is exact.
    const std::vector<float> x = random_ints(n, 100 + n, 1000);
    arena.set_x(x);
    std::int64_t exact = 0;
    for (const float v : x) exact += static_cast<std::int64_t>(v);
    const KernelResult r = run("sum_f32", {}, arena.whole(), arena.x_view());
    expect_ok(r, bits(static_cast<double>(exact)), "n " + std::to_string(n));
  }
}

TEST_F(Blas1, SumIsWithinTheBlockedBoundAndEqualsSumSimd) {
  for (const std::size_t n : all_sizes()) {
    Arena arena(n);
    arena.set_x(random_floats(n, 200 + n));
    const KernelResult r = run("sum_f32", {}, arena.whole(), arena.x_view());
    ASSERT_EQ(r.status, TaskStatus::kOk);
    EXPECT_TRUE(within(from_bits(r.value), sum_reference(arena.x()), kSumBound, n));
    EXPECT_EQ(r.value, bits(blas1::sum_simd(arena.x()))) << "n " << n;
  }
}

TEST_F(Blas1, SumOfAMillionTenthsMeetsTheBoundAPlainFloatLoopMisses) {
  constexpr std::size_t kN = 1'000'000;
  Arena arena(kN);
  std::fill(arena.x().begin(), arena.x().end(), 0.1f);
  const Reference ref = sum_reference(arena.x());
  const KernelResult r = run("sum_f32", {}, arena.whole(), arena.x_view());
  ASSERT_EQ(r.status, TaskStatus::kOk);
  EXPECT_TRUE(within(from_bits(r.value), ref, kSumBound, kN));
  // The bound has teeth: one float accumulator (no blocking) breaks it.
  float naive = 0.0f;
  for (const float v : arena.x()) naive += v;
  EXPECT_FALSE(within(naive, ref, kSumBound, kN));
}

TEST_F(Blas1, SumIgnoresItsArgs) {
  Arena arena(1000);
  arena.set_x(random_floats(1000, 3));
  const std::uint64_t expected = run("sum_f32", {}, arena.whole(), arena.x_view()).value;
  const KernelResult r = run("sum_f32", {~0ull, 5, 1ull << 40}, arena.whole(), arena.x_view());
  expect_ok(r, expected, "junk args");
}

TEST_F(Blas1, SumRejectsAMisalignedOrPartialDataRange) {
  Arena arena(16);
  expect_failure(run("sum_f32", {}, arena.whole(), arena.view(arena.x_offset() + 2, 8)),
                 TaskStatus::kInvalidRange, kDataRangeDetail, "misaligned");
  expect_failure(run("sum_f32", {}, arena.whole(), arena.view(arena.x_offset(), 6)),
                 TaskStatus::kInvalidRange, kDataRangeDetail, "partial element");
  // An empty range has no alignment to get wrong.
  expect_ok(run("sum_f32", {}, arena.whole(), arena.view(arena.x_offset() + 1, 0)), 0, "empty");
}

// ---- dot_f32 ----

TEST_F(Blas1, DotIsExactOnIntegersAtEverySize) {
  for (const std::size_t n : all_sizes()) {
    Arena arena(n);
    // |lane partial| <= 64 * 100 * 100 < 2^24: every float32 step is exact.
    const std::vector<float> x = random_ints(n, 300 + n, 100);
    const std::vector<float> y = random_ints(n, 400 + n, 100);
    arena.set_x(x);
    arena.set_y(y);
    std::int64_t exact = 0;
    for (std::size_t i = 0; i < n; ++i)
      exact += static_cast<std::int64_t>(x[i]) * static_cast<std::int64_t>(y[i]);
    const KernelResult r = run("dot_f32", {arena.y_offset()}, arena.whole(), arena.x_view());
    expect_ok(r, bits(static_cast<double>(exact)), "n " + std::to_string(n));
  }
}

TEST_F(Blas1, DotIsWithinTheBlockedBoundAndEqualsDotSimd) {
  for (const std::size_t n : all_sizes()) {
    Arena arena(n);
    arena.set_x(random_floats(n, 500 + n));
    arena.set_y(random_floats(n, 600 + n));
    const KernelResult r = run("dot_f32", {arena.y_offset()}, arena.whole(), arena.x_view());
    ASSERT_EQ(r.status, TaskStatus::kOk);
    EXPECT_TRUE(within(from_bits(r.value), dot_reference(arena.x(), arena.y()), kDotBound, n));
    EXPECT_EQ(r.value, bits(blas1::dot_simd(arena.x(), arena.y()))) << "n " << n;
  }
}

TEST_F(Blas1, DotOfXWithItselfIsAllowed) {
  Arena arena(1000);
  arena.set_x(random_floats(1000, 7));
  const KernelResult r = run("dot_f32", {arena.x_offset(), 9, 9}, arena.whole(), arena.x_view());
  ASSERT_EQ(r.status, TaskStatus::kOk);
  EXPECT_TRUE(within(from_bits(r.value), dot_reference(arena.x(), arena.x()), kDotBound, 1000));
  EXPECT_GT(from_bits(r.value), 0.0);
}

TEST_F(Blas1, DotRejectsBadRangesInOrder) {
  constexpr std::size_t kN = 16;
  Arena arena(kN);
  const ArenaView whole = arena.whole();
  const ArenaView x = arena.x_view();
  const std::uint64_t fits_last = arena.size_bytes() - kN * sizeof(float);
  EXPECT_EQ(run("dot_f32", {fits_last}, whole, x).status, TaskStatus::kOk) << "y at the very end";
  for (const std::uint64_t bad :
       {fits_last + 4, fits_last + 1, std::uint64_t{2}, arena.size_bytes(), ~std::uint64_t{0}}) {
    expect_failure(run("dot_f32", {bad}, whole, x), TaskStatus::kInvalidRange, 0,
                   "y offset " + std::to_string(bad));
  }
  // The data range is checked first.
  expect_failure(run("dot_f32", {~0ull}, whole, arena.view(arena.x_offset(), 6)),
                 TaskStatus::kInvalidRange, kDataRangeDetail, "bad data and bad y");
  // No elements: y's offset is not looked at.
  expect_ok(run("dot_f32", {~0ull}, whole, arena.view(arena.x_offset(), 0)), 0, "empty");
}

// ---- saxpy_f32 ----

TEST_F(Blas1, SaxpyGivesEachElementItsFusedOrUnfusedBits) {
  const bool fused = blas1::simd_uses_fma();
  for (const float a : {1.7f, -0.375f, 0.0f}) {
    for (const std::size_t n : all_sizes()) {
      Arena arena(n);
      const std::vector<float> x = random_floats(n, 700 + n);
      const std::vector<float> y = random_floats(n, 800 + n);
      arena.set_x(x);
      arena.set_y(y);
      const KernelResult r =
          run("saxpy_f32", {arena.y_offset(), f32_arg(a), 0xBAD}, arena.whole(), arena.x_view());
      expect_ok(r, n, "n " + std::to_string(n));
      for (std::size_t i = 0; i < n; ++i) {
        const float got = arena.y()[i];
        ASSERT_EQ(bits(got), bits(axpy_reference(a, x[i], y[i], fused)))
            << "a " << a << " n " << n << " i " << i << (fused ? " fused" : " unfused");
        ASSERT_TRUE(within_axpy_bound(a, x[i], y[i], got)) << "i " << i;
        ASSERT_EQ(bits(arena.x()[i]), bits(x[i])) << "x changed at " << i;
      }
      EXPECT_TRUE(arena.sentinels_intact()) << "n " << n;
    }
  }
}

TEST_F(Blas1, SaxpyRejectsBadRangesAndArgsInOrder) {
  constexpr std::size_t kN = 16;
  Arena arena(kN);
  const std::vector<float> y = random_floats(kN, 9);
  arena.set_y(y);
  const ArenaView whole = arena.whole();
  const ArenaView x = arena.x_view();
  const std::uint64_t one = f32_arg(1.0f);
  const std::uint64_t xo = arena.x_offset();
  struct Case {
    Args args;
    ArenaView data;
    TaskStatus status;
    std::uint32_t detail;
    const char* what;
  };
  const Case cases[] = {
      {{arena.y_offset(), one},
       arena.view(xo + 2, 8),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "misaligned data"},
      {{arena.y_offset(), one},
       arena.view(xo, 6),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "partial element"},
      {{arena.y_offset() + 2, one}, x, TaskStatus::kInvalidRange, 0, "misaligned y"},
      {{arena.size_bytes() - 4, one}, x, TaskStatus::kInvalidRange, 0, "y past the arena"},
      {{~0ull, one}, x, TaskStatus::kInvalidRange, 0, "y offset ~0"},
      {{xo, one}, x, TaskStatus::kInvalidRange, 0, "y is x"},
      {{xo + 4, one}, x, TaskStatus::kInvalidRange, 0, "y starts inside x"},
      {{xo - 4, one}, x, TaskStatus::kInvalidRange, 0, "y ends inside x"},
      {{arena.y_offset(), one | (1ull << 32)}, x, TaskStatus::kInvalidArgs, 1, "a's high bits"},
      {{arena.y_offset(), ~0ull}, x, TaskStatus::kInvalidArgs, 1, "a = ~0"},
      {{~0ull, ~0ull},
       arena.view(xo, 6),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "everything bad: data first"},
      {{xo, ~0ull}, x, TaskStatus::kInvalidRange, 0, "y and a bad: y first"},
      {{~0ull, ~0ull},
       arena.view(xo, 0),
       TaskStatus::kInvalidArgs,
       1,
       "no elements: a still checked"},
  };
  for (const Case& c : cases) {
    expect_failure(run("saxpy_f32", c.args, whole, c.data), c.status, c.detail, c.what);
    for (std::size_t i = 0; i < kN; ++i) ASSERT_EQ(bits(arena.y()[i]), bits(y[i])) << c.what;
    EXPECT_TRUE(arena.sentinels_intact()) << c.what;
  }
  // y right after x (touching, not overlapping) is fine.
  expect_ok(run("saxpy_f32", {xo + kN * sizeof(float), one}, whole, x), kN, "adjacent");
  expect_ok(run("saxpy_f32", {~0ull, one}, whole, arena.view(xo, 0)), 0, "empty");
}

// ---- map_f32 ----

TEST_F(Blas1, MapGivesEachElementTheExactResultOfEveryOp) {
  const bool fused = blas1::simd_uses_fma();
  const float a = -1.25f;
  const float b = 3.0f;
  const std::uint64_t affine_args = f32_arg(a) | f32_arg(b) << 32;
  for (const MapOp op : kOps) {
    for (const bool in_place : {false, true}) {
      for (const std::size_t n : all_sizes()) {
        Arena arena(n);
        const std::vector<float> x = map_input(n, 900 + n);
        arena.set_x(x);
        const std::uint64_t out = in_place ? arena.x_offset() : arena.y_offset();
        const Args args{out, static_cast<std::uint64_t>(op),
                        op == MapOp::kAffine ? affine_args : 0};
        const KernelResult r = run("map_f32", args, arena.whole(), arena.x_view());
        const std::string what = "op " + std::to_string(static_cast<int>(op)) + " n " +
                                 std::to_string(n) + (in_place ? " in place" : "");
        expect_ok(r, n, what);
        const std::span<float> y = in_place ? arena.x() : arena.y();
        for (std::size_t i = 0; i < n; ++i) {
          const float want = map_reference(op, a, b, x[i], fused);
          ASSERT_TRUE(same_result(op, y[i], want))
              << what << " i " << i << " x " << x[i] << ": got " << y[i] << " want " << want;
          if (op == MapOp::kAffine && std::isfinite(want)) {
            ASSERT_TRUE(within_axpy_bound(a, x[i], b, y[i])) << what << " i " << i;
          }
          if (!in_place) {
            ASSERT_EQ(bits(arena.x()[i]), bits(x[i])) << what << " x changed";
          }
        }
        EXPECT_TRUE(arena.sentinels_intact()) << what;
      }
    }
  }
}

TEST_F(Blas1, MapRejectsBadRangesAndArgsInOrder) {
  constexpr std::size_t kN = 16;
  Arena arena(kN);
  const std::vector<float> y = random_floats(kN, 11);
  arena.set_y(y);
  const ArenaView whole = arena.whole();
  const ArenaView x = arena.x_view();
  const std::uint64_t xo = arena.x_offset();
  const std::uint64_t yo = arena.y_offset();
  const auto abs_op = static_cast<std::uint64_t>(MapOp::kAbs);
  struct Case {
    Args args;
    ArenaView data;
    TaskStatus status;
    std::uint32_t detail;
    const char* what;
  };
  const Case cases[] = {
      {{yo, abs_op, 0},
       arena.view(xo + 1, 8),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "misaligned data"},
      {{yo, abs_op, 0},
       arena.view(xo, 7),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "partial element"},
      {{yo + 1, abs_op, 0}, x, TaskStatus::kInvalidRange, 0, "misaligned y"},
      {{arena.size_bytes() - 4, abs_op, 0}, x, TaskStatus::kInvalidRange, 0, "y past the arena"},
      {{~0ull, abs_op, 0}, x, TaskStatus::kInvalidRange, 0, "y offset ~0"},
      {{xo + 4, abs_op, 0}, x, TaskStatus::kInvalidRange, 0, "y starts inside x"},
      {{xo - 4, abs_op, 0}, x, TaskStatus::kInvalidRange, 0, "y ends inside x"},
      {{yo, blas1::kMapOpCount, 0}, x, TaskStatus::kInvalidArgs, 1, "op 6"},
      {{yo, 1ull << 32, 0}, x, TaskStatus::kInvalidArgs, 1, "op 2^32"},
      {{yo, ~0ull, 0}, x, TaskStatus::kInvalidArgs, 1, "op ~0"},
      {{yo, abs_op, 1}, x, TaskStatus::kInvalidArgs, 2, "abs with args[2]"},
      {{yo, static_cast<std::uint64_t>(MapOp::kSquare), 1ull << 63},
       x,
       TaskStatus::kInvalidArgs,
       2,
       "square with args[2]"},
      {{~0ull, ~0ull, ~0ull},
       arena.view(xo, 7),
       TaskStatus::kInvalidRange,
       kDataRangeDetail,
       "everything bad: data first"},
      {{xo + 4, ~0ull, ~0ull}, x, TaskStatus::kInvalidRange, 0, "then y"},
      {{yo, ~0ull, ~0ull}, x, TaskStatus::kInvalidArgs, 1, "then op"},
      {{~0ull, abs_op, 5},
       arena.view(xo, 0),
       TaskStatus::kInvalidArgs,
       2,
       "no elements: args still checked"},
  };
  for (const Case& c : cases) {
    expect_failure(run("map_f32", c.args, whole, c.data), c.status, c.detail, c.what);
    for (std::size_t i = 0; i < kN; ++i) ASSERT_EQ(bits(arena.y()[i]), bits(y[i])) << c.what;
    EXPECT_TRUE(arena.sentinels_intact()) << c.what;
  }
  // Affine takes any args[2]; every op accepts y adjacent to x, or y = x.
  const Args affine{yo, static_cast<std::uint64_t>(MapOp::kAffine), ~0ull};
  expect_ok(run("map_f32", affine, whole, x), kN, "affine with any args[2]");
  expect_ok(run("map_f32", {xo + kN * sizeof(float), abs_op, 0}, whole, x), kN, "adjacent");
  expect_ok(run("map_f32", {xo, abs_op, 0}, whole, x), kN, "in place");
  expect_ok(run("map_f32", {~0ull, abs_op, 0}, whole, arena.view(xo, 0)), 0, "empty");
}

// ---- every kernel: cancellation ----

TEST_F(Blas1, ACancelledTaskStopsAndSaysSo) {
  constexpr std::size_t kN = 1000;
  Arena arena(kN);
  arena.set_x(random_floats(kN, 13));
  const std::atomic<bool> stop{true};
  const auto abs_op = static_cast<std::uint64_t>(MapOp::kAbs);
  const std::pair<const char*, Args> calls[] = {
      {"sum_f32", {}},
      {"dot_f32", {arena.y_offset()}},
      {"saxpy_f32", {arena.y_offset(), f32_arg(2.0f)}},
      {"map_f32", {arena.y_offset(), abs_op, 0}},
  };
  for (const auto& [name, args] : calls) {
    expect_failure(run(name, args, arena.whole(), arena.x_view(), &stop), TaskStatus::kDropped, 0,
                   name);
    // Nothing to do is done at once, cancelled or not.
    EXPECT_EQ(run(name, args, arena.whole(), arena.view(arena.x_offset(), 0), &stop).status,
              TaskStatus::kOk)
        << name;
  }
}

// ---- every kernel: the same bits on a 2-worker scheduler ----

TEST_F(Blas1, ResultsOnTwoWorkersEqualTheSerialOnesWhateverWasStolen) {
  test::ScopedWatchdog watchdog("Blas1.TwoWorkers", 60);
  const Topology topo = test::machine_topology();
  constexpr std::size_t kN = 1'000'000;
  const int runs = test::kUnderThreadSanitizer ? 3 : 10;
  constexpr std::uint32_t kHeartbeatUs = 5;
  Arena arena(kN);
  const std::vector<float> x = random_floats(kN, 17);
  const std::vector<float> y = random_floats(kN, 19);
  arena.set_x(x);
  arena.set_y(y);
  const Args sum_args{};
  const Args dot_args{arena.y_offset()};
  const Args saxpy_args{arena.y_offset(), f32_arg(-0.625f)};
  const Args map_args{arena.y_offset(), static_cast<std::uint64_t>(MapOp::kAffine),
                      f32_arg(1.5f) | f32_arg(-2.0f) << 32};
  const std::uint64_t sum = run("sum_f32", sum_args, arena.whole(), arena.x_view()).value;
  const std::uint64_t dot = run("dot_f32", dot_args, arena.whole(), arena.x_view()).value;
  run("saxpy_f32", saxpy_args, arena.whole(), arena.x_view());
  const std::vector<float> saxpy_serial(arena.y().begin(), arena.y().end());
  run("map_f32", map_args, arena.whole(), arena.x_view());
  const std::vector<float> map_serial(arena.y().begin(), arena.y().end());

  std::uint64_t steals = 0;
  for (const bool inline_forks : {true, false}) {
    // A 5 us heartbeat (default 100): a 10^6-element task runs for a few
    // hundred us, and more heartbeats split it more often.
    sched::SchedulerOptions o = test::unpinned_options(2, 100, kHeartbeatUs);
    o.inline_forks = inline_forks;
    sched::Scheduler s(o, topo);
    ASSERT_TRUE(s.start());
    for (int i = 0; i < runs; ++i) {
      SCOPED_TRACE("inline_forks " + std::to_string(inline_forks) + " run " + std::to_string(i));
      arena.set_y(y);
      expect_ok(run_on(s, "sum_f32", sum_args, arena.whole(), arena.x_view()), sum, "sum");
      expect_ok(run_on(s, "dot_f32", dot_args, arena.whole(), arena.x_view()), dot, "dot");
      expect_ok(run_on(s, "saxpy_f32", saxpy_args, arena.whole(), arena.x_view()), kN, "saxpy");
      ASSERT_TRUE(std::equal(arena.y().begin(), arena.y().end(), saxpy_serial.begin(),
                             [](float p, float q) { return bits(p) == bits(q); }));
      std::fill(arena.y().begin(), arena.y().end(), 0.0f);
      expect_ok(run_on(s, "map_f32", map_args, arena.whole(), arena.x_view()), kN, "map");
      ASSERT_TRUE(std::equal(arena.y().begin(), arena.y().end(), map_serial.begin(),
                             [](float p, float q) { return bits(p) == bits(q); }));
    }
    s.stop();
    steals += s.stats().steals;
  }
  EXPECT_TRUE(arena.sentinels_intact());
  // Informational: how much the runs above were actually split.
  std::cout << "[   INFO   ] steals across the scheduler runs: " << steals << '\n';
}

// ---- the SIMD forms against the scalar forms, on every target ----

TEST(Blas1Simd, SumHasTheSameBitsOnEveryTargetWithinTheBoundOfTheScalarForm) {
  for (const std::size_t n : all_sizes()) {
    const std::vector<float> x = random_floats(n, 1000 + n);
    const std::vector<float> ints = random_ints(n, 1100 + n, 1000);
    const Reference ref = sum_reference(x);
    EXPECT_TRUE(within(blas1::sum_scalar(x), ref, n * 0x1p-53L, n)) << "scalar form";
    const double ints_exact = static_cast<double>(sum_reference(ints).sum);
    EXPECT_EQ(blas1::sum_scalar(ints), ints_exact);
    const std::uint64_t first = bits(blas1::sum_simd(x));
    test::on_every_target(blas1::simd_target_name, [&] {
      const double s = blas1::sum_simd(x);
      EXPECT_EQ(bits(s), first) << "n " << n;
      EXPECT_TRUE(within(s, ref, kSumBound, n));
      EXPECT_EQ(blas1::sum_simd(ints), ints_exact) << "n " << n;
    });
  }
}

TEST(Blas1Simd, DotHasTheSameBitsOnTargetsOfOneKindWithinTheBoundOfTheScalarForm) {
  for (const std::size_t n : all_sizes()) {
    const std::vector<float> x = random_floats(n, 1200 + n);
    const std::vector<float> y = random_floats(n, 1300 + n);
    const std::vector<float> xi = random_ints(n, 1400 + n, 100);
    const std::vector<float> yi = random_ints(n, 1500 + n, 100);
    const Reference ref = dot_reference(x, y);
    EXPECT_TRUE(within(blas1::dot_scalar(x, y), ref, n * 0x1p-53L, n)) << "scalar form";
    const double ints_exact = static_cast<double>(dot_reference(xi, yi).sum);
    EXPECT_EQ(blas1::dot_scalar(xi, yi), ints_exact);
    std::map<bool, std::uint64_t> by_kind;  // simd_uses_fma() -> bits
    test::on_every_target(blas1::simd_target_name, [&] {
      const double d = blas1::dot_simd(x, y);
      const auto [it, first] = by_kind.emplace(blas1::simd_uses_fma(), bits(d));
      if (!first) {
        EXPECT_EQ(bits(d), it->second) << "n " << n;
      }
      EXPECT_TRUE(within(d, ref, kDotBound, n));
      EXPECT_EQ(blas1::dot_simd(xi, yi), ints_exact) << "n " << n;
    });
  }
}

TEST(Blas1Simd, SaxpyFormsGiveEachElementTheBitsOfTheirMode) {
  const float a = 0.8125f;
  for (const std::size_t n : all_sizes()) {
    const std::vector<float> x = random_floats(n, 1600 + n);
    const std::vector<float> y = random_floats(n, 1700 + n);
    std::vector<float> scalar = y;
    blas1::saxpy_scalar(a, x, scalar);
    // Unfused: this build's baseline code has no FMA instruction (blas1.hpp).
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_EQ(bits(scalar[i]), bits(axpy_reference(a, x[i], y[i], false))) << "scalar " << i;
    test::on_every_target(blas1::simd_target_name, [&] {
      const bool fused = blas1::simd_uses_fma();
      std::vector<float> simd = y;
      blas1::saxpy_simd(a, x, simd);
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_EQ(bits(simd[i]), bits(axpy_reference(a, x[i], y[i], fused)))
            << "n " << n << " i " << i;
    });
  }
}

TEST(Blas1Simd, MapFormsAgreeOnEveryOpAndTarget) {
  const float a = 2.5f;
  const float b = -0.75f;
  for (const MapOp op : kOps) {
    for (const std::size_t n : all_sizes()) {
      const std::vector<float> x = map_input(n, 1800 + n);
      std::vector<float> scalar(n);
      blas1::map_scalar(op, a, b, x, scalar);
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_TRUE(same_result(op, scalar[i], map_reference(op, a, b, x[i], false)))
            << "scalar op " << static_cast<int>(op) << " i " << i;
      test::on_every_target(blas1::simd_target_name, [&] {
        const bool fused = blas1::simd_uses_fma();
        std::vector<float> simd(n, -1.0f);
        blas1::map_simd(op, a, b, x, simd);
        std::vector<float> in_place = x;
        blas1::map_simd(op, a, b, in_place, in_place);
        for (std::size_t i = 0; i < n; ++i) {
          const float want = map_reference(op, a, b, x[i], fused);
          ASSERT_TRUE(same_result(op, simd[i], want))
              << "op " << static_cast<int>(op) << " n " << n << " i " << i << " x " << x[i];
          ASSERT_TRUE(same_result(op, in_place[i], want)) << "in place, i " << i;
          if (op != MapOp::kAffine || !fused) {
            ASSERT_TRUE(same_result(op, simd[i], scalar[i])) << "simd vs scalar, i " << i;
          }
        }
      });
    }
  }
}

}  // namespace
}  // namespace beat
