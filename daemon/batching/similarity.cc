// The SIMD kernels of similarity.hpp, compiled once per Highway target
// (foreach_target.h re-includes this file) and chosen at run time
// (HWY_DYNAMIC_DISPATCH), and the scalar reference path.
//
// Highway rules followed (libhwy 1.0.3): foreach_target.h in this
// .cc only, no namespace-scope or static vector values (each kernel builds
// its constants inside), built at -O2 or higher with no -m flags.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "daemon/batching/similarity.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must follow foreach_target.h.
#include "daemon/batching/similarity.hpp"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace beat::batching {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One fingerprint against a table's columns: the distance of every row,
// one vector of rows per step. `one` is passed as four ints (the dispatch
// table's signature must be the same on every target).
template <class D, class Out>
HWY_INLINE void for_each_distance(D d, std::int32_t kernel, std::int32_t size_class,
                                  std::int32_t region, std::int32_t args,
                                  const FingerprintTable& many, Out&& out) {
  const auto vkernel = hn::Set(d, kernel);
  const auto vsize = hn::Set(d, size_class);
  const auto vregion = hn::Set(d, region);
  const auto vargs = hn::Set(d, args);
  const auto region_cap = hn::Set(d, static_cast<std::int32_t>(kRegionCap));
  const auto args_weight = hn::Set(d, static_cast<std::int32_t>(kArgsWeight));
  const auto far = hn::Set(d, static_cast<std::int32_t>(kFarDistance));
  const auto zero = hn::Zero(d);
  static_assert(kSizeClassWeight == 4, "the size term is a shift by 2");
  const std::size_t n = many.padded_size();
  for (std::size_t i = 0; i < n; i += hn::Lanes(d)) {
    const auto k = hn::Load(d, many.kernel() + i);
    const auto s = hn::Load(d, many.size_class() + i);
    const auto r = hn::Load(d, many.region() + i);
    const auto a = hn::Load(d, many.args() + i);
    // |x - y| as max - min: fields are non-negative 32-bit ints.
    const auto size_term = hn::ShiftLeft<2>(hn::Sub(hn::Max(s, vsize), hn::Min(s, vsize)));
    const auto region_term = hn::Min(hn::Sub(hn::Max(r, vregion), hn::Min(r, vregion)), region_cap);
    const auto args_term = hn::IfThenElse(hn::Eq(a, vargs), zero, args_weight);
    const auto sum = hn::Add(hn::Add(size_term, region_term), args_term);
    out(i, hn::IfThenElse(hn::Eq(k, vkernel), sum, far));
  }
}

void DistancesImpl(std::int32_t kernel, std::int32_t size_class, std::int32_t region,
                   std::int32_t args, const FingerprintTable* many, std::uint32_t* out) {
  // At most kLanePad lanes (a wider SVE or RVV vector would read past the
  // padding).
  const hn::CappedTag<std::int32_t, FingerprintTable::kLanePad> d;
  // Distances are below 2^16: the int32 lanes store as the same uint32.
  auto* dst = reinterpret_cast<std::int32_t*>(out);
  for_each_distance(d, kernel, size_class, region, args, *many,
                    [&](std::size_t i, auto v) { hn::StoreU(v, d, dst + i); });
}

// Lowest index of the smallest distance, packed as (distance << 16 | row):
// one unsigned minimum over such keys picks the smallest distance and,
// among equal ones, the lowest row, with a single lane reduction at the
// end. REQUIRES: many->padded_size() <= 65536 (rows fit 16 bits).
std::uint32_t NearestImpl(std::int32_t kernel, std::int32_t size_class, std::int32_t region,
                          std::int32_t args, const FingerprintTable* many) {
  // At most kLanePad lanes (a wider SVE or RVV vector would read past the
  // padding).
  const hn::CappedTag<std::int32_t, FingerprintTable::kLanePad> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  auto best = hn::Set(du, 0xFFFF'FFFFu);
  const auto lane = hn::Iota(du, 0u);
  for_each_distance(d, kernel, size_class, region, args, *many, [&](std::size_t i, auto v) {
    const auto rows = hn::Add(lane, hn::Set(du, static_cast<std::uint32_t>(i)));
    best = hn::Min(best, hn::Or(hn::ShiftLeft<16>(hn::BitCast(du, v)), rows));
  });
  return hn::GetLane(hn::MinOfLanes(du, best));
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace beat::batching
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <atomic>
#include <cassert>
#include <new>

namespace beat::batching {

HWY_EXPORT(DistancesImpl);
HWY_EXPORT(NearestImpl);
HWY_EXPORT(TargetNameImpl);

namespace {

// Relaxed: a switch read before each call; no data hangs on it.
std::atomic<SimdPath> g_path{SimdPath::kAuto};

void distances_scalar(const FingerprintFields& one, const FingerprintTable& many,
                      std::uint32_t* out) {
  const std::size_t n = many.padded_size();
  for (std::size_t i = 0; i < n; ++i) {
    // Padding rows (kernel -1) never equal a real kernel: kFarDistance.
    out[i] = many.kernel()[i] < 0 ? kFarDistance : distance(one, many.get(i));
  }
}

}  // namespace

Nearest nearest_scalar(const FingerprintFields& one, const FingerprintTable& many) noexcept {
  Nearest best{Nearest::kNone, kFarDistance};
  for (std::size_t i = 0; i < many.size(); ++i) {
    const std::uint32_t d = distance(one, many.get(i));
    if (best.index == Nearest::kNone || d < best.distance) best = {i, d};
  }
  return best;
}

FingerprintTable::FingerprintTable(std::size_t capacity)
    // At least one vector: the kernels read whole vectors (and Highway
    // refuses zero-byte allocations).
    : capacity_(capacity == 0 ? kLanePad : (capacity + kLanePad - 1) / kLanePad * kLanePad),
      kernel_(hwy::AllocateAligned<std::int32_t>(capacity_)),
      size_class_(hwy::AllocateAligned<std::int32_t>(capacity_)),
      region_(hwy::AllocateAligned<std::int32_t>(capacity_)),
      args_(hwy::AllocateAligned<std::int32_t>(capacity_)) {
  if (!kernel_ || !size_class_ || !region_ || !args_) throw std::bad_alloc();
  size_ = capacity_;  // write every row once: padding, and first touch
  clear();
}

void FingerprintTable::clear() noexcept {
  for (std::size_t i = 0; i < capacity_; ++i) {
    kernel_[i] = -1;
    size_class_[i] = region_[i] = args_[i] = 0;
  }
  size_ = 0;
}

void FingerprintTable::swap_remove(std::size_t i) noexcept {
  const std::size_t last = size_ - 1;
  if (i != last) set(i, get(last));
  kernel_[last] = -1;
  size_class_[last] = region_[last] = args_[last] = 0;
  size_ = last;
}

void set_simd_path(SimdPath path) noexcept { g_path.store(path, std::memory_order_relaxed); }
SimdPath simd_path() noexcept { return g_path.load(std::memory_order_relaxed); }

std::string simd_target_name() {
  if (simd_path() == SimdPath::kScalar) return "scalar";
  return HWY_DYNAMIC_DISPATCH(TargetNameImpl)();
}

void distances(SimdPath path, const FingerprintFields& one, const FingerprintTable& many,
               std::uint32_t* out) {
  assert(fields_in_range(one));
  if (path == SimdPath::kScalar) return distances_scalar(one, many, out);
  HWY_DYNAMIC_DISPATCH(DistancesImpl)
  (static_cast<std::int32_t>(one.kernel), static_cast<std::int32_t>(one.size_class),
   static_cast<std::int32_t>(one.region), static_cast<std::int32_t>(one.args), &many, out);
}

NearestSearch::NearestSearch(SimdPath path) {
  // The dispatch table's entry for the chosen target (the first call
  // through it may be Highway's chooser, which then calls the same).
  if (path == SimdPath::kAuto) simd_ = HWY_DYNAMIC_DISPATCH(NearestImpl);
}

Nearest NearestSearch::fallback(const FingerprintFields& one, const FingerprintTable& many) {
  if (many.size() == 0) return {Nearest::kNone, kFarDistance};
  return nearest_scalar(one, many);
}

Nearest nearest(SimdPath path, const FingerprintFields& one, const FingerprintTable& many) {
  return NearestSearch(path)(one, many);
}

void distances(const FingerprintFields& one, const FingerprintTable& many, std::uint32_t* out) {
  distances(simd_path(), one, many, out);
}

Nearest nearest(const FingerprintFields& one, const FingerprintTable& many) {
  return nearest(simd_path(), one, many);
}

void distance_matrix(const FingerprintTable& ones, const FingerprintTable& many,
                     std::uint32_t* out) {
  const SimdPath path = simd_path();
  const std::size_t stride = many.padded_size();
  for (std::size_t i = 0; i < ones.size(); ++i)
    distances(path, ones.get(i), many, out + i * stride);
}

}  // namespace beat::batching
#endif  // HWY_ONCE
