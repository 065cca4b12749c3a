// Similarity of task fingerprints (shared/fingerprint.hpp): a distance, a
// structure-of-arrays table of fingerprints, and the kernels that compare
// one fingerprint against many and many against many, in SIMD with Google
// Highway's runtime dispatch (AVX-512, AVX2, SSE4, ... whatever the CPU
// best supports; similarity.cc) or in plain C++ (the scalar path, forced by
// set_simd_path or the config's batching.simd = "scalar").
//
// Distance (small is similar; the batch former groups a task with the open
// batch nearest to it when the distance is at most its threshold):
//
//   different kernels                 kFarDistance
//   otherwise   kSizeClassWeight x |size class difference|
//             + min(|region difference in pages|, kRegionCap)
//             + kArgsWeight if the argument hashes differ
//
// Every term is an integer and at most 0xFFFF in all, so the SIMD kernels
// work on 32-bit lanes without overflow; both paths give identical values
// (tests/daemon/batching/similarity_test.cpp, on every target this CPU
// supports). The hot loop does no gather, no scatter and no division.
//
// Thread-safety: a FingerprintTable is used by one thread at a time (the
// batch former's worker). The kernels are pure functions of their inputs;
// set_simd_path may be called from any thread (a relaxed atomic: a call in
// progress may still use the previous path).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string>

#include "hwy/aligned_allocator.h"
#include "shared/fingerprint.hpp"

namespace beat::batching {

inline constexpr std::uint32_t kFarDistance = 0xFFFF;
inline constexpr std::uint32_t kSizeClassWeight = 4;  // a factor of 2 in data length
inline constexpr std::uint32_t kRegionCap = 255;      // pages (~1 MiB): "elsewhere"
inline constexpr std::uint32_t kArgsWeight = 16;

static_assert(kSizeClassWeight * kFingerprintSizeMask + kRegionCap + kArgsWeight < kFarDistance,
              "a same-kernel distance must stay below kFarDistance");

// The reference distance: what both paths compute for one pair.
constexpr std::uint32_t distance(const FingerprintFields& a, const FingerprintFields& b) noexcept {
  if (a.kernel != b.kernel) return kFarDistance;
  const std::uint32_t size =
      a.size_class > b.size_class ? a.size_class - b.size_class : b.size_class - a.size_class;
  const std::uint32_t pages = a.region > b.region ? a.region - b.region : b.region - a.region;
  return kSizeClassWeight * size + (pages < kRegionCap ? pages : kRegionCap) +
         (a.args != b.args ? kArgsWeight : 0);
}

// Fingerprints as four aligned int32 columns. The columns are padded to a
// multiple of kLanePad entries, and padding rows hold kernel -1, which no
// fingerprint has (kernel ids are 16-bit), so the SIMD kernels run whole
// vectors and padding lanes come out at kFarDistance.
//
// Every fingerprint given to the table or to the kernels below, rows and
// queries alike, has its fields in range (fields_in_range: what the
// daemon's fingerprints have by construction). Then distances stay below
// 2^16 and no query matches a padding row; checked by assert().
class FingerprintTable {
 public:
  // Lanes of the widest vector any target uses (AVX-512: 16 x int32).
  static constexpr std::size_t kLanePad = 16;

  // Room for `capacity` rows (at least one vector's worth). Throws
  // std::bad_alloc.
  explicit FingerprintTable(std::size_t capacity);
  FingerprintTable(const FingerprintTable&) = delete;
  FingerprintTable& operator=(const FingerprintTable&) = delete;

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  // size() rounded up to kLanePad: how many entries the kernels read.
  std::size_t padded_size() const noexcept { return (size_ + kLanePad - 1) / kLanePad * kLanePad; }

  void clear() noexcept;
  // REQUIRES: size() < capacity().
  void push_back(const FingerprintFields& f) noexcept {
    set(size_, f);
    ++size_;
  }
  // REQUIRES: i < size() (or i == size() from push_back).
  void set(std::size_t i, const FingerprintFields& f) noexcept {
    assert(fields_in_range(f));
    kernel_[i] = static_cast<std::int32_t>(f.kernel);
    size_class_[i] = static_cast<std::int32_t>(f.size_class);
    region_[i] = static_cast<std::int32_t>(f.region);
    args_[i] = static_cast<std::int32_t>(f.args);
  }
  FingerprintFields get(std::size_t i) const noexcept {
    return {static_cast<std::uint32_t>(kernel_[i]), static_cast<std::uint32_t>(size_class_[i]),
            static_cast<std::uint32_t>(region_[i]), static_cast<std::uint32_t>(args_[i])};
  }
  // Removes row i by moving the last row into it (order is not kept).
  void swap_remove(std::size_t i) noexcept;

  const std::int32_t* kernel() const noexcept { return kernel_.get(); }
  const std::int32_t* size_class() const noexcept { return size_class_.get(); }
  const std::int32_t* region() const noexcept { return region_.get(); }
  const std::int32_t* args() const noexcept { return args_.get(); }

 private:
  std::size_t size_ = 0;
  std::size_t capacity_;  // padded
  hwy::AlignedFreeUniquePtr<std::int32_t[]> kernel_;
  hwy::AlignedFreeUniquePtr<std::int32_t[]> size_class_;
  hwy::AlignedFreeUniquePtr<std::int32_t[]> region_;
  hwy::AlignedFreeUniquePtr<std::int32_t[]> args_;
};

enum class SimdPath : std::uint8_t {
  kAuto,    // Highway's dynamic dispatch: the best target this CPU supports
  kScalar,  // plain C++ (the reference)
};

void set_simd_path(SimdPath path) noexcept;
SimdPath simd_path() noexcept;
// The path's name for STATS and benchmarks: Highway's target name
// ("AVX3", "AVX2", "SSE4", ...) under kAuto, "scalar" under kScalar.
std::string simd_target_name();

// out[i] = distance(one, many[i]) for i < many.padded_size() (padding rows
// give kFarDistance). REQUIRES: out has room for many.padded_size().
void distances(const FingerprintFields& one, const FingerprintTable& many, std::uint32_t* out);

struct Nearest {
  std::size_t index;  // kNone when `many` is empty
  std::uint32_t distance;
  static constexpr std::size_t kNone = ~std::size_t{0};
};
// The row of `many` nearest to `one`; the lowest index among equals.
// (Tables of more than 65,536 rows take the scalar path.)
Nearest nearest(const FingerprintFields& one, const FingerprintTable& many);

// nearest() on the scalar path: the reference, and what the batch former
// uses for a table of a few rows, where a SIMD call's fixed cost is more
// than the scalar loop. (Out of line on purpose: inlined into the former's
// loop it made forming 100 tasks of 8 kinds 6 % slower.)
Nearest nearest_scalar(const FingerprintFields& one, const FingerprintTable& many) noexcept;

// nearest() bound once to a path and, for kAuto, to the target Highway's
// dispatch chose, for code that searches many times in a row (the batch
// former, once per task): the same answers without the dispatch on every
// call. Cheap to construct; a value.
class NearestSearch {
 public:
  explicit NearestSearch(SimdPath path);
  Nearest operator()(const FingerprintFields& one, const FingerprintTable& many) const {
    assert(fields_in_range(one));
    // Inline: the batch former calls it once per task, and the call into
    // the target's kernel is the only one it needs.
    if (simd_ == nullptr || many.size() == 0 || many.padded_size() > kMaxSimdRows) [[unlikely]]
      return fallback(one, many);
    const std::uint32_t key =
        simd_(static_cast<std::int32_t>(one.kernel), static_cast<std::int32_t>(one.size_class),
              static_cast<std::int32_t>(one.region), static_cast<std::int32_t>(one.args), &many);
    // Padding rows are at kFarDistance and come after every real row, so a
    // real row always wins a tie with them.
    return {static_cast<std::size_t>(key & 0xFFFF), key >> 16};
  }

 private:
  // The kernel's keys are distance << 16 | row: rows must fit 16 bits.
  static constexpr std::size_t kMaxSimdRows = std::size_t{1} << 16;
  // The scalar search, and the answer for an empty table.
  static Nearest fallback(const FingerprintFields& one, const FingerprintTable& many);

  // The target's kernel (similarity.cc's NearestImpl), or null: scalar.
  std::uint32_t (*simd_)(std::int32_t, std::int32_t, std::int32_t, std::int32_t,
                         const FingerprintTable*) = nullptr;
};

// out[i * many.padded_size() + j] = distance(ones[i], many[j]) for every
// row i of `ones` and j < many.padded_size().
// REQUIRES: out has room for ones.size() * many.padded_size().
void distance_matrix(const FingerprintTable& ones, const FingerprintTable& many,
                     std::uint32_t* out);

// The same three under a given path, for tests and benchmarks that compare
// them in one process (the functions above use simd_path()).
void distances(SimdPath path, const FingerprintFields& one, const FingerprintTable& many,
               std::uint32_t* out);
Nearest nearest(SimdPath path, const FingerprintFields& one, const FingerprintTable& many);

}  // namespace beat::batching
