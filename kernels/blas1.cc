// BLAS-1 and elementwise-map kernels on float32 arrays in the client's arena
// (the operations, their blocking and error bounds: kernels/blas1.hpp). The
// argument conventions are kernel_args.hpp's; arguments a kernel does not
// list below are ignored. Checks run in the order listed; the first failure
// is the task's result.
//
//   sum_f32    data = x (f32 array; misaligned or a partial element ->
//              invalid_range(kDataRangeDetail)). Result = the binary64 bits
//              (std::bit_cast<uint64_t>(double)) of sum x_i.
//   dot_f32    data = x (as sum_f32). args[0] = arena offset of y, as many
//              f32 as x (outside the arena or misaligned -> invalid_range(0);
//              y may overlap x). Result = the binary64 bits of sum x_i*y_i.
//   saxpy_f32  data = x (as sum_f32). args[0] = arena offset of y, as many
//              f32 as x, y <- a*x + y in place (outside the arena,
//              misaligned or sharing any byte with x -> invalid_range(0)).
//              args[1] = a's f32 bits in the low 32 bits (high 32 bits not
//              0 -> invalid_args(1)). Result = element count.
//   map_f32    data = x (as sum_f32). args[0] = arena offset of the output
//              y, as many f32 as x (outside the arena or misaligned ->
//              invalid_range(0); y may be exactly x, in place, but any other
//              overlap -> invalid_range(0)). args[1] = op: 0 affine
//              (a*x + b), 1 abs, 2 neg, 3 sqrt, 4 relu, 5 square (other ->
//              invalid_args(1)). args[2] = for affine, a's f32 bits in the
//              low 32 bits and b's in the high 32; for other ops it must be 0
//              (else invalid_args(2)). Result = element count.
//
// An empty x is valid for every kernel (y's offset is then not checked):
// sum and dot return the bits of +0.0, saxpy and map return 0.
//
// Work split: sum and dot fork at the inner nodes of the fixed reduction
// tree of blas1.hpp (TaskContext::join), so the result is the same bits
// however the work was stolen, and equals sum_simd / dot_simd on the
// same target. saxpy and map run TaskContext::parallel_for over blocks of
// kElementwiseBlock elements, grain 1 block. Every leaf and block first
// checks TaskContext::cancelled(); a cancelled task returns
// KernelResult::cancelled(), with y partly written for saxpy and map.
//
// Highway rules followed (as in daemon/batching/similarity.cc): foreach_target.h in this
// .cc only, no namespace-scope or static vector values (each function
// builds its constants inside), no -m flags. No gathers or scatters.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/blas1.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must follow foreach_target.h.
#include "hwy/highway.h"
#include "kernels/blas1.hpp"

HWY_BEFORE_NAMESPACE();
namespace beat::blas1 {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Step 2 of blas1.hpp: the 64 lane sums widened to double and added
// pairwise, lane j with lane j + half, halving until one is left. Only
// double additions in a fixed order: the same bits on every target.
HWY_INLINE double PairwiseLaneSum(const float* lanes) {
  constexpr std::size_t kHalf = kReduceLanes / 2;
  double t[kHalf];
  for (std::size_t j = 0; j < kHalf; ++j)
    t[j] = static_cast<double>(lanes[j]) + static_cast<double>(lanes[j + kHalf]);
  for (std::size_t half = kHalf / 2; half >= 1; half /= 2)
    for (std::size_t j = 0; j < half; ++j) t[j] += t[j + half];
  return t[0];
}

// Step 1 of blas1.hpp for one block of n <= kReduceBlock elements: logical
// lane j accumulates elements j, j + 64, j + 128, ... in float32. Vector k
// of a stripe of 64 holds lanes [k*N, (k+1)*N), so a lane's chain is the
// same on every target; the last partial stripe goes lane by lane through
// one-lane vectors (the same operations as the full ones: MulAdd stays
// fused where the target fuses). kDot: x_i * y_i instead of x_i.
template <bool kDot, class D>
HWY_INLINE double BlockSum(D d, const float* x, const float* y, std::size_t n) {
  static_assert(!HWY_HAVE_SCALABLE, "the lane layout needs a compile-time vector length");
  constexpr std::size_t kN = hn::MaxLanes(d);
  static_assert(kReduceLanes % kN == 0, "a stripe is a whole number of vectors");
  constexpr std::size_t kVecs = kReduceLanes / kN;
  // The loops over the kVecs accumulators unroll fully, so they stay in
  // registers: HWY_UNROLL takes a literal, 64 = kReduceLanes, the most
  // vectors a stripe has (one-lane SCALAR target).
  static_assert(kVecs <= 64, "HWY_UNROLL(64) must cover every accumulator");
  using V = hn::Vec<D>;
  V acc[kVecs];
  HWY_UNROLL(64)
  for (std::size_t k = 0; k < kVecs; ++k) acc[k] = hn::Zero(d);
  std::size_t i = 0;
  for (; i + kReduceLanes <= n; i += kReduceLanes) {
    HWY_UNROLL(64)
    for (std::size_t k = 0; k < kVecs; ++k) {
      const V xv = hn::LoadU(d, x + i + k * kN);
      if constexpr (kDot)
        acc[k] = hn::MulAdd(xv, hn::LoadU(d, y + i + k * kN), acc[k]);
      else
        acc[k] = hn::Add(acc[k], xv);
    }
  }
  HWY_ALIGN float lanes[kReduceLanes];
  HWY_UNROLL(64)
  for (std::size_t k = 0; k < kVecs; ++k) hn::Store(acc[k], d, lanes + k * kN);
  const hn::CappedTag<float, 1> d1;
  for (std::size_t j = 0; i + j < n; ++j) {
    const auto lane = hn::LoadU(d1, lanes + j);
    const auto xv = hn::LoadU(d1, x + i + j);
    if constexpr (kDot)
      hn::StoreU(hn::MulAdd(xv, hn::LoadU(d1, y + i + j), lane), d1, lanes + j);
    else
      hn::StoreU(hn::Add(lane, xv), d1, lanes + j);
  }
  return PairwiseLaneSum(lanes);
}

// A leaf of step 3: the blocks of x[0, n) summed left to right from 0.0.
double SumBlocksImpl(const float* x, std::size_t n) {
  const hn::ScalableTag<float> d;
  double s = 0.0;
  for (std::size_t b = 0; b < n; b += kReduceBlock)
    s += BlockSum<false>(d, x + b, nullptr, HWY_MIN(kReduceBlock, n - b));
  return s;
}

double DotBlocksImpl(const float* x, const float* y, std::size_t n) {
  const hn::ScalableTag<float> d;
  double s = 0.0;
  for (std::size_t b = 0; b < n; b += kReduceBlock)
    s += BlockSum<true>(d, x + b, y + b, HWY_MIN(kReduceBlock, n - b));
  return s;
}

// y[i] = op(d, x[i]) by whole vectors, then one lane at a time. x may be y.
template <class Op>
HWY_INLINE void MapLoop(const float* x, float* y, std::size_t n, const Op& op) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(op(d, hn::LoadU(d, x + i)), d, y + i);
  const hn::CappedTag<float, 1> d1;
  for (; i < n; ++i) hn::StoreU(op(d1, hn::LoadU(d1, x + i)), d1, y + i);
}

void SaxpyImpl(float a, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto va = hn::Set(d, a);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  const hn::CappedTag<float, 1> d1;
  const auto va1 = hn::Set(d1, a);
  for (; i < n; ++i)
    hn::StoreU(hn::MulAdd(va1, hn::LoadU(d1, x + i), hn::LoadU(d1, y + i)), d1, y + i);
}

struct AffineOp {
  float a, b;
  template <class D, class V>
  HWY_INLINE V operator()(D d, V v) const {
    return hn::MulAdd(hn::Set(d, a), v, hn::Set(d, b));
  }
};
struct AbsOp {
  template <class D, class V>
  HWY_INLINE V operator()(D, V v) const {
    return hn::Abs(v);
  }
};
struct NegOp {
  template <class D, class V>
  HWY_INLINE V operator()(D, V v) const {
    return hn::Neg(v);
  }
};
struct SqrtOp {
  template <class D, class V>
  HWY_INLINE V operator()(D, V v) const {
    return hn::Sqrt(v);
  }
};
// x if x > 0, else +0: a NaN or -0 compares false and gives +0.
struct ReluOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V v) const {
    return hn::IfThenElseZero(hn::Gt(v, hn::Zero(d)), v);
  }
};
struct SquareOp {
  template <class D, class V>
  HWY_INLINE V operator()(D, V v) const {
    return hn::Mul(v, v);
  }
};

// op: a MapOp's value (the dispatch table's signature is the same on every
// target, so it travels as an integer).
void MapImpl(std::uint32_t op, float a, float b, const float* x, float* y, std::size_t n) {
  switch (static_cast<MapOp>(op)) {
    case MapOp::kAffine: return MapLoop(x, y, n, AffineOp{a, b});
    case MapOp::kAbs: return MapLoop(x, y, n, AbsOp{});
    case MapOp::kNeg: return MapLoop(x, y, n, NegOp{});
    case MapOp::kSqrt: return MapLoop(x, y, n, SqrtOp{});
    case MapOp::kRelu: return MapLoop(x, y, n, ReluOp{});
    case MapOp::kSquare: return MapLoop(x, y, n, SquareOp{});
  }
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }
bool UsesFmaImpl() { return HWY_NATIVE_FMA != 0; }

}  // namespace HWY_NAMESPACE
}  // namespace beat::blas1
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>

#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"

namespace beat {
namespace blas1 {

HWY_EXPORT(SumBlocksImpl);
HWY_EXPORT(DotBlocksImpl);
HWY_EXPORT(SaxpyImpl);
HWY_EXPORT(MapImpl);
HWY_EXPORT(TargetNameImpl);
HWY_EXPORT(UsesFmaImpl);

namespace {

// The executor of the *_simd forms: the kernels' fork tree with every fork
// a plain call, so one core computes the same bits.
struct Serial {
  template <class A, class B>
  void join(A&& a, B&& b) {
    a(*this);
    b(*this);
  }
  bool cancelled() const noexcept { return false; }
};

constexpr std::size_t blocks_of(std::size_t n, std::size_t block) noexcept {
  return n / block + (n % block != 0 ? 1 : 0);
}

// Step 3 of blas1.hpp: the block sums of x (or of x*y) added along the
// fixed tree, forking at its inner nodes.
struct Reduction {
  const float* x;
  const float* y;  // null: sum of x
  std::size_t n;
  // Set by a leaf that found the task cancelled. Relaxed: it only cuts the
  // work short, and the joins order every leaf before the kernel reads it.
  std::atomic<bool>* stopped;

  template <class Ctx>
  double run(Ctx& c, std::size_t first_block, std::size_t last_block) const {
    if (last_block - first_block <= kReduceLeafBlocks) {
      if (c.cancelled()) {
        stopped->store(true, std::memory_order_relaxed);
        return 0.0;
      }
      const std::size_t begin = first_block * kReduceBlock;
      const std::size_t end = std::min(n, last_block * kReduceBlock);
      if (y == nullptr) return HWY_DYNAMIC_DISPATCH(SumBlocksImpl)(x + begin, end - begin);
      return HWY_DYNAMIC_DISPATCH(DotBlocksImpl)(x + begin, y + begin, end - begin);
    }
    const std::size_t mid = first_block + (last_block - first_block) / 2;
    double left = 0.0;
    double right = 0.0;
    c.join([&](auto& ca) { left = run(ca, first_block, mid); },
           [&](auto& cb) { right = run(cb, mid, last_block); });
    return left + right;
  }

  template <class Ctx>
  double run(Ctx& c) const {
    return run(c, 0, blocks_of(n, kReduceBlock));
  }
};

}  // namespace

double sum_simd(std::span<const float> x) noexcept {
  std::atomic<bool> unused{false};
  Serial serial;
  return Reduction{x.data(), nullptr, x.size(), &unused}.run(serial);
}

double sum_scalar(std::span<const float> x) noexcept {
  double s = 0.0;
  for (const float v : x) s += v;
  return s;
}

double dot_simd(std::span<const float> x, std::span<const float> y) noexcept {
  std::atomic<bool> unused{false};
  Serial serial;
  return Reduction{x.data(), y.data(), x.size(), &unused}.run(serial);
}

double dot_scalar(std::span<const float> x, std::span<const float> y) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) s += static_cast<double>(x[i]) * y[i];
  return s;
}

void saxpy_simd(float a, std::span<const float> x, std::span<float> y) noexcept {
  HWY_DYNAMIC_DISPATCH(SaxpyImpl)(a, x.data(), y.data(), x.size());
}

void saxpy_scalar(float a, std::span<const float> x, std::span<float> y) noexcept {
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = a * x[i] + y[i];
}

void map_simd(MapOp op, float a, float b, std::span<const float> x, std::span<float> y) noexcept {
  HWY_DYNAMIC_DISPATCH(MapImpl)(static_cast<std::uint32_t>(op), a, b, x.data(), y.data(), x.size());
}

void map_scalar(MapOp op, float a, float b, std::span<const float> x, std::span<float> y) noexcept {
  const std::size_t n = x.size();
  switch (op) {
    case MapOp::kAffine:
      for (std::size_t i = 0; i < n; ++i) y[i] = a * x[i] + b;
      return;
    case MapOp::kAbs:
      for (std::size_t i = 0; i < n; ++i) y[i] = std::fabs(x[i]);
      return;
    case MapOp::kNeg:
      for (std::size_t i = 0; i < n; ++i) y[i] = -x[i];
      return;
    case MapOp::kSqrt:
      for (std::size_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
      return;
    case MapOp::kRelu:
      for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
      return;
    case MapOp::kSquare:
      for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
      return;
  }
}

const char* simd_target_name() noexcept { return HWY_DYNAMIC_DISPATCH(TargetNameImpl)(); }
bool simd_uses_fma() noexcept { return HWY_DYNAMIC_DISPATCH(UsesFmaImpl)(); }

// The kernels.
namespace {

// args[1] of saxpy_f32, args[2]'s halves of map_f32: an f32 in 32 bits.
constexpr std::uint64_t kLow32 = 0xFFFF'FFFFull;

float f32_from_bits(std::uint64_t bits) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits & kLow32));
}

// Calls block(begin, end) for the blocks of kElementwiseBlock elements of
// [0, n) through ctx.parallel_for, grain one block. False when a block
// found the task cancelled (the blocks after it may or may not have run).
template <class Block>
bool for_each_block(TaskContext& ctx, std::size_t n, const Block& block) {
  std::atomic<bool> stopped{false};
  ctx.parallel_for(0, blocks_of(n, kElementwiseBlock), 1, [&](auto& c, std::uint64_t b) {
    if (c.cancelled()) {
      // Relaxed: only cuts the work short; parallel_for's return orders
      // every block before the load below.
      stopped.store(true, std::memory_order_relaxed);
      return;
    }
    const std::size_t begin = static_cast<std::size_t>(b) * kElementwiseBlock;
    block(begin, std::min(n, begin + kElementwiseBlock));
  });
  return !stopped.load(std::memory_order_relaxed);
}

KernelResult reduction_result(const Reduction& r, TaskContext& ctx) {
  const double s = r.run(ctx);
  // Relaxed: the tree's joins ordered every leaf's store before this load.
  if (r.stopped->load(std::memory_order_relaxed)) return KernelResult::cancelled();
  return KernelResult::ok(std::bit_cast<std::uint64_t>(s));
}

KernelResult sum_kernel(TaskContext& ctx, KernelArgs, ArenaView data) {
  const auto x = data_array<const float>(data);
  if (!x) return invalid_range(kDataRangeDetail);
  if (x->empty()) return KernelResult::ok(std::bit_cast<std::uint64_t>(0.0));
  std::atomic<bool> stopped{false};
  return reduction_result(Reduction{x->data(), nullptr, x->size(), &stopped}, ctx);
}

KernelResult dot_kernel(TaskContext& ctx, KernelArgs args, ArenaView data) {
  const auto x = data_array<const float>(data);
  if (!x) return invalid_range(kDataRangeDetail);
  const auto y = arena_array<const float>(ctx, args[0], x->size());
  if (!y) return invalid_range(0);
  if (x->empty()) return KernelResult::ok(std::bit_cast<std::uint64_t>(0.0));
  std::atomic<bool> stopped{false};
  return reduction_result(Reduction{x->data(), y->data(), x->size(), &stopped}, ctx);
}

KernelResult saxpy_kernel(TaskContext& ctx, KernelArgs args, ArenaView data) {
  const auto x = data_array<const float>(data);
  if (!x) return invalid_range(kDataRangeDetail);
  const auto y = arena_array<float>(ctx, args[0], x->size());
  if (!y || overlaps(*x, *y)) return invalid_range(0);
  if ((args[1] & ~kLow32) != 0) return KernelResult::invalid_args(1);
  const float a = f32_from_bits(args[1]);
  const float* xp = x->data();
  float* yp = y->data();
  const bool done = for_each_block(ctx, x->size(), [&](std::size_t begin, std::size_t end) {
    HWY_DYNAMIC_DISPATCH(SaxpyImpl)(a, xp + begin, yp + begin, end - begin);
  });
  if (!done) return KernelResult::cancelled();
  return KernelResult::ok(x->size());
}

KernelResult map_kernel(TaskContext& ctx, KernelArgs args, ArenaView data) {
  const auto x = data_array<const float>(data);
  if (!x) return invalid_range(kDataRangeDetail);
  const auto y = arena_array<float>(ctx, args[0], x->size());
  if (!y || (overlaps(*x, *y) && !same_range(*x, *y))) return invalid_range(0);
  const std::optional<MapOp> op = map_op_from(args[1]);
  if (!op) return KernelResult::invalid_args(1);
  float a = 0.0f;
  float b = 0.0f;
  if (*op == MapOp::kAffine) {
    a = f32_from_bits(args[2]);
    b = f32_from_bits(args[2] >> 32);
  } else if (args[2] != 0) {
    return KernelResult::invalid_args(2);
  }
  const auto op_value = static_cast<std::uint32_t>(*op);
  const float* xp = x->data();
  float* yp = y->data();
  const bool done = for_each_block(ctx, x->size(), [&](std::size_t begin, std::size_t end) {
    HWY_DYNAMIC_DISPATCH(MapImpl)(op_value, a, b, xp + begin, yp + begin, end - begin);
  });
  if (!done) return KernelResult::cancelled();
  return KernelResult::ok(x->size());
}

void must_add(KernelRegistry& r, const char* name, const char* description, KernelFn fn) {
  // Batchable: the work is linear in the data range (y, where there is one,
  // has its length), so kBatchableDataBytes bounds it as for checksum.
  add_builtin(r, name, description, fn, /*batchable=*/true);
}

}  // namespace
}  // namespace blas1

void register_blas1_kernels(KernelRegistry& registry) {
  using blas1::must_add;
  must_add(registry, "sum_f32", "sum of the f32 data range (blocked, deterministic); f64 bits",
           blas1::sum_kernel);
  must_add(registry, "dot_f32",
           "dot of the f32 data range with args[0]'s array (blocked, deterministic); f64 bits",
           blas1::dot_kernel);
  must_add(registry, "saxpy_f32",
           "y = a*x + y: x the f32 data range, y at args[0], a = f32 bits args[1]; returns count",
           blas1::saxpy_kernel);
  must_add(registry, "map_f32",
           "y = op(x), op args[1]: 0 a*x+b (args[2] = a | b << 32), 1 abs, 2 neg, 3 sqrt, "
           "4 relu, 5 square; y at args[0]",
           blas1::map_kernel);
}

}  // namespace beat
#endif  // HWY_ONCE
