// Histogram kernels (limits and work split: kernels/histogram.hpp).
//
//   histogram_u8   data = bytes. args[0] = arena offset of 256 u64 counters
//                  (output, overwritten: counter b = how many bytes equal b).
//                  Result = number of bytes counted (the data length).
//                  Output out of the arena, not 8-byte aligned or
//                  overlapping the data -> invalid_range(0).
//   histogram_u32  data = u32 array (misaligned or a partial element ->
//                  invalid_range(kDataRangeDetail)). args[1] = bins
//                  (1..65536, else invalid_args(1)); args[2] = shift (0..31,
//                  else invalid_args(2)); args[0] = arena offset of `bins`
//                  u64 counters (output, overwritten; checked as above ->
//                  invalid_range(0)). Value v counts in bin v >> shift when
//                  that is below bins. Result = number of values counted in
//                  no bin. Checked in the order args[1], args[2], data,
//                  args[0].
//
// Both count in parallel (ctx.parallel_for over leaves) when the data spans
// more than one leaf; histogram_u32 with more than kHistogramMaxPrivateBins
// bins counts serially. A cancelled task stops at the next leaf and returns
// KernelResult::cancelled(), its output partly written.
#include "kernels/histogram.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"

namespace beat {

namespace {

// Private sub-histograms per leaf. A run of equal values increments one
// counter over and over: each increment's load must wait for the previous
// increment's store to forward (~5 cycles on x86), a dependency chain that
// caps a single histogram at about one value per 5 cycles on skewed data.
// Spreading consecutive values over 4 copies makes 4 independent chains,
// which overlap; on uniform data the copies cost nothing but the merge.
constexpr std::size_t kSubHistograms = 4;
// Bytes a histogram_u8 leaf reads at a time (one load, eight counters).
constexpr std::size_t kWordBytes = sizeof(std::uint64_t);

static_assert(kHistogramLeafElements < (std::uint64_t{1} << 32),
              "a leaf's 32-bit private counters must not overflow");
static_assert(std::atomic_ref<std::uint64_t>::required_alignment == alignof(std::uint64_t),
              "arena_array's alignment check must be enough for atomic_ref");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "counters are added with lock-free atomics");

// histogram_u8's private counts.
using U8Counts = std::array<std::array<std::uint32_t, kHistogramU8Bins>, kSubHistograms>;
// histogram_u32's: bins [0, bins) plus, at index `bins`, the values outside
// (so the loop picks a slot with a conditional move, never a branch).
using U32Counts =
    std::array<std::array<std::uint32_t, kHistogramMaxPrivateBins + 1>, kSubHistograms>;

// How a leaf's counts reach the output: stored (the only leaf), or added
// to the zeroed output concurrently with other leaves.
enum class Merge { kStore, kAdd };

void put(std::uint64_t& counter, std::uint64_t count, Merge merge) noexcept {
  if (merge == Merge::kStore) {
    counter = count;
  } else if (count != 0) {
    // Relaxed: read-modify-writes of one counter are totally ordered, so no
    // leaf's count is lost whatever the interleaving, and nothing else is
    // published through the counter. The kernel reads no counter itself:
    // parallel_for returns only after every leaf returned (its join
    // synchronises with each stolen part's completion), which orders every
    // add before the task's completion is posted.
    std::atomic_ref<std::uint64_t>(counter).fetch_add(count, std::memory_order_relaxed);
  }
}

void count_u8(std::span<const std::uint8_t> bytes, U8Counts& c) noexcept {
  for (auto& sub : c) sub.fill(0);
  const std::uint8_t* p = bytes.data();
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  for (; i + kWordBytes <= n; i += kWordBytes) {
    // One read of the shared bytes; each byte indexes a 256-entry table,
    // so no value the client writes can index out of it.
    std::uint64_t w;
    std::memcpy(&w, p + i, kWordBytes);
    ++c[0][w & 0xFF];
    ++c[1][w >> 8 & 0xFF];
    ++c[2][w >> 16 & 0xFF];
    ++c[3][w >> 24 & 0xFF];
    ++c[0][w >> 32 & 0xFF];
    ++c[1][w >> 40 & 0xFF];
    ++c[2][w >> 48 & 0xFF];
    ++c[3][w >> 56];
  }
  for (; i < n; ++i) ++c[i % kSubHistograms][p[i]];
}

void merge_u8(const U8Counts& c, std::span<std::uint64_t> out, Merge merge) noexcept {
  for (std::size_t b = 0; b < kHistogramU8Bins; ++b) {
    std::uint64_t sum = 0;
    for (const auto& sub : c) sum += sub[b];
    put(out[b], sum, merge);
  }
}

// Counts values into c and returns how many fell outside [0, bins).
// REQUIRES: 1 <= bins <= kHistogramMaxPrivateBins, shift <= 31.
std::uint64_t count_u32(std::span<const std::uint32_t> values, std::uint32_t bins, unsigned shift,
                        U32Counts& c) noexcept {
  for (auto& sub : c) std::memset(sub.data(), 0, (bins + 1) * sizeof(std::uint32_t));
  const std::uint32_t* v = values.data();
  const std::size_t n = values.size();
  // Each value is read once into a local; the slot is clamped to `bins`,
  // inside the table whatever the client wrote.
  const auto slot = [bins, shift](std::uint32_t value) noexcept {
    const std::uint32_t b = value >> shift;
    return b < bins ? b : bins;
  };
  std::size_t i = 0;
  for (; i + kSubHistograms <= n; i += kSubHistograms) {
    const std::uint32_t v0 = v[i], v1 = v[i + 1], v2 = v[i + 2], v3 = v[i + 3];
    ++c[0][slot(v0)];
    ++c[1][slot(v1)];
    ++c[2][slot(v2)];
    ++c[3][slot(v3)];
  }
  for (; i < n; ++i) ++c[i % kSubHistograms][slot(v[i])];
  std::uint64_t outside = 0;
  for (const auto& sub : c) outside += sub[bins];
  return outside;
}

void merge_u32(const U32Counts& c, std::span<std::uint64_t> out, Merge merge) noexcept {
  for (std::size_t b = 0; b < out.size(); ++b) {
    std::uint64_t sum = 0;
    for (const auto& sub : c) sum += sub[b];
    put(out[b], sum, merge);
  }
}

// Runs leaf(first, count) over [0, n) in leaves of kHistogramLeafElements,
// in parallel, after zeroing `out` (the leaves add into it; the zeroing
// happens before every leaf, a stolen one included, since the fork that
// makes a leaf stealable publishes it with a release the thief acquires). Returns false when the
// task was cancelled (some leaves then did nothing).
template <class Leaf>
bool for_each_leaf(TaskContext& ctx, std::uint64_t n, std::span<std::uint64_t> out, Leaf&& leaf) {
  for (std::uint64_t& counter : out) counter = 0;
  const std::uint64_t leaves = (n + kHistogramLeafElements - 1) / kHistogramLeafElements;
  ctx.parallel_for(0, leaves, 1, [&](auto& c, std::uint64_t i) {
    if (c.cancelled()) return;
    const std::uint64_t first = i * kHistogramLeafElements;
    const std::uint64_t count =
        n - first < kHistogramLeafElements ? n - first : kHistogramLeafElements;
    leaf(first, count);
  });
  // A leaf that skipped saw the flag set before parallel_for returned, and
  // the flags are never cleared: this load sees it too (read-read
  // coherence across the join's happens-before).
  return !ctx.cancelled();
}

KernelResult histogram_u8_kernel(TaskContext& ctx, KernelArgs args, ArenaView data) {
  const auto bytes = data_array<const std::uint8_t>(data);  // bytes are always whole and aligned
  const auto out = arena_array<std::uint64_t>(ctx, args[0], kHistogramU8Bins);
  if (!out || overlaps(*out, *bytes)) return invalid_range(0);
  if (bytes->size() <= kHistogramLeafElements) {
    U8Counts c;
    count_u8(*bytes, c);
    merge_u8(c, *out, Merge::kStore);
    return KernelResult::ok(bytes->size());
  }
  const bool done =
      for_each_leaf(ctx, bytes->size(), *out, [&](std::uint64_t first, std::uint64_t count) {
        U8Counts c;  // on this leaf's stack: private even when leaves nest on one worker
        count_u8(bytes->subspan(first, count), c);
        merge_u8(c, *out, Merge::kAdd);
      });
  if (!done) return KernelResult::cancelled();
  return KernelResult::ok(bytes->size());
}

// histogram_u32 with more bins than a private copy may have: one pass
// straight into the output. A parallel version would need either a locked
// add per value (several times a plain increment, and contended on skewed
// data), or private sub-histograms of up to 1 MiB per leaf (4 x 65,536 u32) (too big for a worker
// stack where leaves nest, an allocation otherwise, and a merge as long as
// counting 64 Ki values). Serial costs skewed data the forwarding stall
// the sub-histograms avoid: 64 Ki equal values took ~170 us here against
// ~70 us through private copies (~105 us for uniform values). Returns false
// when cancelled.
bool count_u32_direct(const TaskContext& ctx, std::span<const std::uint32_t> values,
                      std::uint32_t bins, unsigned shift, std::span<std::uint64_t> out,
                      std::uint64_t& outside) noexcept {
  for (std::uint64_t& counter : out) counter = 0;
  outside = 0;
  for (std::size_t first = 0; first < values.size(); first += kHistogramLeafElements) {
    if (ctx.cancelled()) return false;
    const std::size_t end = values.size() - first < kHistogramLeafElements
                                ? values.size()
                                : first + kHistogramLeafElements;
    for (std::size_t i = first; i < end; ++i) {
      const std::uint32_t b = values[i] >> shift;  // read once, checked before use
      if (b < bins)
        ++out[b];
      else
        ++outside;
    }
  }
  return true;
}

KernelResult histogram_u32_kernel(TaskContext& ctx, KernelArgs args, ArenaView data) {
  if (args[1] < 1 || args[1] > kHistogramMaxBins) return KernelResult::invalid_args(1);
  if (args[2] > kHistogramMaxShift) return KernelResult::invalid_args(2);
  const auto bins = static_cast<std::uint32_t>(args[1]);
  const auto shift = static_cast<unsigned>(args[2]);
  const auto values = data_array<const std::uint32_t>(data);
  if (!values) return invalid_range(kDataRangeDetail);
  const auto out = arena_array<std::uint64_t>(ctx, args[0], bins);
  if (!out || overlaps(*out, *values)) return invalid_range(0);

  if (bins > kHistogramMaxPrivateBins) {
    std::uint64_t outside = 0;
    if (!count_u32_direct(ctx, *values, bins, shift, *out, outside))
      return KernelResult::cancelled();
    return KernelResult::ok(outside);
  }
  if (values->size() <= kHistogramLeafElements) {
    U32Counts c;
    const std::uint64_t outside = count_u32(*values, bins, shift, c);
    merge_u32(c, *out, Merge::kStore);
    return KernelResult::ok(outside);
  }
  // Relaxed: as the counters (put()); read after parallel_for returned.
  std::atomic<std::uint64_t> outside{0};
  const bool done =
      for_each_leaf(ctx, values->size(), *out, [&](std::uint64_t first, std::uint64_t count) {
        U32Counts c;  // on this leaf's stack: private even when leaves nest on one worker
        const std::uint64_t leaf_outside = count_u32(values->subspan(first, count), bins, shift, c);
        merge_u32(c, *out, Merge::kAdd);
        if (leaf_outside != 0) outside.fetch_add(leaf_outside, std::memory_order_relaxed);
      });
  if (!done) return KernelResult::cancelled();
  return KernelResult::ok(outside.load(std::memory_order_relaxed));
}

}  // namespace

void register_histogram_kernels(KernelRegistry& registry) {
  add_builtin(registry, "histogram_u8",
              "byte histogram of the data into 256 u64 counters at args[0]; returns bytes",
              histogram_u8_kernel);
  add_builtin(registry, "histogram_u32",
              "u32 histogram: bin v >> args[2] of args[1] u64 counters at args[0]; returns values "
              "outside",
              histogram_u32_kernel);
}

}  // namespace beat
