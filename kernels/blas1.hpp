// BLAS-1 and elementwise-map operations on float32 spans: the SIMD forms
// the kernels sum_f32, dot_f32, saxpy_f32 and map_f32 run (kernels/blas1.cc,
// Google Highway with runtime dispatch: AVX-512, AVX2, SSE4, SSSE3 or plain
// C++, whichever is the best this CPU supports), and the scalar forms a user
// would write, so that tests and benchmarks compare the two on one core.
//
// Reductions (sum, dot): fixed blocking, so the result is a function of the
// input alone, never of how the work was split across workers.
//   1. Block: kReduceBlock consecutive elements. Element i of a block goes
//      to logical lane i % kReduceLanes; each lane accumulates its elements
//      (at most kReduceBlock / kReduceLanes = 64 of them) in float32, in
//      index order. A target with N-lane vectors keeps kReduceLanes / N
//      vectors of lanes, so the lanes hold the same values on every target.
//   2. The block's lane sums are widened to double and added pairwise
//      (lane j + lane j+32, then j + j+16, ...): a fixed order.
//   3. Block sums are added in double along a fixed binary tree: a run of
//      more than kReduceLeafBlocks blocks splits at half its block count
//      (rounded down); a leaf adds its blocks left to right from 0.0. The
//      kernels fork at the tree's inner nodes (TaskContext::join).
// Error: |result - exact| <= (64 * 2^-24) * sum |x_i| for sum, and
// (65 * 2^-24) * sum |x_i * y_i| for dot (the float32 lane chains dominate:
// gamma_63, resp. gamma_64 with one rounding per product; the double steps
// add under 2^-46 relative). Lane partial sums are float32: a block whose
// partial sums pass FLT_MAX gives +-inf even where the double total would
// not. NaN in, NaN out.
// Bit-identity: sum_simd gives the same bits on every target. dot_simd uses
// a fused multiply-add where the target has one (simd_uses_fma(): AVX2 and
// AVX-512), separate multiply and add elsewhere, so its bits are the same
// among targets of one kind.
//
// Elementwise (saxpy, map): each output element depends only on the
// matching input elements, so any split gives the same bits. a*x+b and
// a*x+y are one fused multiply-add (rounded once) when simd_uses_fma(),
// else a rounded product plus a rounded sum: |r - exact| <= ulp(r)/2 fused,
// <= ulp(fl(a*x))/2 + ulp(r)/2 unfused (more than 1 ulp of r only under
// cancellation). abs, neg, sqrt, relu and square are exact or correctly
// rounded: the same bits on every target and in the scalar forms.
//
// Thread-safety: every function is a pure function of its arguments
// (writing only its output span) and may run concurrently with itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace beat::blas1 {

// Elements per reduction block. 4096: each float32 lane chain is then at
// most 64 long (error bound 64 * 2^-24 relative to sum |x|, like a plain
// float loop over 64 elements), while the block's end (store 64 lanes, 63
// double additions) stays cheap: sum_simd over 16 Ki floats in L1/L2 ran
// 5-15% slower than a bare 4-accumulator AVX-512 loop (Zen 5), and the two
// are equal once x streams from memory. Smaller blocks cost more ends for
// a tighter bound; larger ones loosen the bound in proportion.
inline constexpr std::size_t kReduceBlock = 4096;
// Logical float32 lanes of a block: 16 per AVX-512 vector x 4 vectors, so
// that AVX-512 keeps 4 additions in flight (8 on AVX2, 16 on SSE4).
inline constexpr std::size_t kReduceLanes = 64;
// Blocks per leaf of the reduction tree (64 KiB of x per leaf: a few
// microseconds of work, >= 1000 times the cost of a fork).
inline constexpr std::size_t kReduceLeafBlocks = 4;
// Elements per parallel_for iteration of saxpy_f32 and map_f32 (32 KiB
// read and written per iteration: ~1-3 us, so the per-iteration cost of a
// few ns is under 1%, while 2 workers balance to within one block).
inline constexpr std::size_t kElementwiseBlock = 8192;

static_assert(kReduceBlock % kReduceLanes == 0, "a full block fills every lane equally");
static_assert((kReduceLanes & (kReduceLanes - 1)) == 0 && kReduceLanes % 16 == 0,
              "the lanes must be whole AVX-512 vectors and halve down to one (pairwise sum)");

// map_f32's operations (its args[1]).
enum class MapOp : std::uint8_t {
  kAffine = 0,  // y = a*x + b
  kAbs = 1,     // y = |x| (clears the sign bit, NaN too)
  kNeg = 2,     // y = -x (flips the sign bit, NaN too)
  kSqrt = 3,    // y = sqrt(x), correctly rounded; NaN for x < 0
  kRelu = 4,    // y = x if x > 0, else +0 (also for -0 and NaN)
  kSquare = 5,  // y = x*x, correctly rounded
};
inline constexpr std::uint64_t kMapOpCount = 6;

// The MapOp numbered `op`, or nullopt when there is none.
constexpr std::optional<MapOp> map_op_from(std::uint64_t op) noexcept {
  if (op >= kMapOpCount) return std::nullopt;
  return static_cast<MapOp>(op);
}

// sum x_i by the blocked scheme above, serially: bit-identical to
// sum_f32's result for the same x. O(n).
double sum_simd(std::span<const float> x) noexcept;
// sum x_i as `double s = 0; for (v : x) s += v;`.
double sum_scalar(std::span<const float> x) noexcept;

// sum x_i * y_i by the blocked scheme, serially: bit-identical to dot_f32's
// result for the same inputs on the same target. REQUIRES: x.size() ==
// y.size(). x and y may overlap.
double dot_simd(std::span<const float> x, std::span<const float> y) noexcept;
// `double s = 0; for (i) s += double(x[i]) * y[i];` (each product exact).
// REQUIRES: x.size() == y.size().
double dot_scalar(std::span<const float> x, std::span<const float> y) noexcept;

// y_i <- a*x_i + y_i. REQUIRES: x.size() == y.size(), x and y disjoint.
void saxpy_simd(float a, std::span<const float> x, std::span<float> y) noexcept;
// `y[i] = a * x[i] + y[i];` as the compiler rounds it: unfused in this
// project's build, whose baseline x86-64 code has no FMA instruction (GCC
// would contract it in a build for an FMA baseline, e.g. -march=haswell).
// Same REQUIRES.
void saxpy_scalar(float a, std::span<const float> x, std::span<float> y) noexcept;

// y_i <- op(x_i); a and b are used by MapOp::kAffine only. REQUIRES:
// x.size() == y.size(); y is x (in place) or disjoint from it.
void map_simd(MapOp op, float a, float b, std::span<const float> x, std::span<float> y) noexcept;
// The same as a plain loop of std::fabs, -x, std::sqrt, x > 0 ? x : 0.0f,
// x * x, a * x + b (unfused, as saxpy_scalar). Same REQUIRES.
void map_scalar(MapOp op, float a, float b, std::span<const float> x, std::span<float> y) noexcept;

// The Highway target the *_simd forms dispatch to now (e.g. "AVX3",
// "AVX2", "SSE4", "SCALAR"), and whether it has a fused multiply-add.
const char* simd_target_name() noexcept;
bool simd_uses_fma() noexcept;

}  // namespace beat::blas1
