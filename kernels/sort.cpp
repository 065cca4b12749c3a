// Sort kernels (algorithm, limits and the hostile-input argument:
// kernels/sort.hpp).
//
//   sort_u64  data = u64 array (misaligned or a partial element ->
//             invalid_range(kDataRangeDetail)), sorted ascending in place.
//             args[0] = arena offset of a scratch range of the same byte
//             length, required when the count is 2 or more (out of the
//             arena, not 8-byte aligned or overlapping the data ->
//             invalid_range(0)), ignored below 2; its contents are
//             overwritten. args[1], args[2] unused. Result = element count.
//   sort_f32  the same for f32 (scratch 4-byte aligned), in IEEE-754
//             totalOrder: -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN,
//             bit patterns kept exactly.
//
// Checked in the order data, args[0]. A cancelled task stops at its next
// leaf or merge chunk and returns KernelResult::cancelled(); a worker that
// cannot allocate its leaf buffer fails the task with
// error(kOutOfMemory); either way data and scratch are left partly
// rearranged.
#include "kernels/sort.hpp"

#include <hwy/contrib/sort/vqsort.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <utility>

#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"

namespace beat {

namespace sort {

namespace {

// How a value type orders: Key is an unsigned integer whose order is the
// sort order, key() maps a value to it and value() back, bit for bit.
struct U64Order {
  using Value = std::uint64_t;
  using Key = std::uint64_t;
  static Key key(Value v) noexcept { return v; }
  static Value value(Key k) noexcept { return k; }
};

static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == sizeof(std::uint32_t),
              "sort_f32 orders IEEE-754 binary32 bit patterns");

struct F32Order {
  using Value = float;
  using Key = std::uint32_t;
  static constexpr Key kSignBit = Key{1} << 31;
  // totalOrder as an unsigned order: a negative (sign set) flips every bit,
  // so larger magnitudes (and -NaN above all) come first and all of them
  // fall below 2^31; a positive flips the sign bit only, landing above
  // every negative in magnitude order, +NaN last.
  static Key key(Value v) noexcept {
    const Key bits = std::bit_cast<Key>(v);
    return bits ^ ((Key{0} - (bits >> 31)) | kSignBit);
  }
  // A key with the top bit set came from a positive (flip the sign bit
  // back), one without from a negative (flip every bit back).
  static Value value(Key k) noexcept {
    return std::bit_cast<Value>(k ^ (((k >> 31) - Key{1}) | kSignBit));
  }
};

// One sort's shared state.
template <class Order>
struct SortJob {
  using Value = typename Order::Value;

  Value* data;
  Value* scratch;
  // Set by a leaf or merge chunk that saw cancellation or could not get its
  // buffer; read by later merges (to skip their work) and by sort_array
  // after the root returned. Relaxed: the flags only cut work short and
  // publish nothing, and the final read follows the root's joins, which
  // order every branch before them (a stolen branch's completion
  // synchronises with its join).
  std::atomic<bool> cancelled{false};
  std::atomic<bool> out_of_memory{false};

  bool stopped() const noexcept {
    return cancelled.load(std::memory_order_relaxed) ||
           out_of_memory.load(std::memory_order_relaxed);
  }
};

// This thread's leaf buffer of kSortLeafElements keys: allocated by the
// thread's first leaf of this key type, kept until the thread exits; null
// if that allocation failed (the next leaf tries again).
//
// Why a thread_local buffer is safe: a worker waiting at a join runs other
// work meanwhile (stolen jobs, other tasks) nested on the same thread, so a
// buffer held across a fork could be overwritten by a leaf of that nested
// work. A leaf holds the buffer only from its copy-in to its copy-out and,
// in between, forks nothing, polls nothing and calls only VQSort (plain
// code): no other work can start on this thread while a leaf holds it.
template <class Key>
Key* leaf_buffer() noexcept {
  thread_local std::unique_ptr<Key[]> buffer;
  if (buffer == nullptr) [[unlikely]]
    buffer.reset(new (std::nothrow) Key[kSortLeafElements]);  // default-init: not zeroed
  return buffer.get();
}

// This thread's VQSort handle. Per thread because later Highway versions
// keep a work buffer in it; 1.0.3's constructor only stores a null pointer,
// so it cannot throw here.
const hwy::Sorter& thread_sorter() noexcept {
  thread_local const hwy::Sorter sorter;
  return sorter;
}

// Sorts data[begin, begin + n) into out[0, n). REQUIRES: n <=
// kSortLeafElements. Reads each input element once, into the private
// buffer: VQSort never sees shared memory.
template <class Order, class Ctx>
void sort_leaf(Ctx& c, SortJob<Order>& job, std::size_t begin, std::size_t n,
               typename Order::Value* out) noexcept {
  using Key = typename Order::Key;
  if (c.cancelled()) {
    job.cancelled.store(true, std::memory_order_relaxed);
    return;
  }
  Key* const keys = leaf_buffer<Key>();
  if (keys == nullptr) [[unlikely]] {
    job.out_of_memory.store(true, std::memory_order_relaxed);
    return;
  }
  const typename Order::Value* const in = job.data + begin;
  for (std::size_t i = 0; i < n; ++i) keys[i] = Order::key(in[i]);
  thread_sorter()(keys, n, hwy::SortAscending());
  for (std::size_t i = 0; i < n; ++i) out[i] = Order::value(keys[i]);
}

// `take_first ? first : second` (take_first is 0 or 1) without a branch.
// GCC compiles the plain conditional in the merge loops as a branch, and
// merge comparisons are coin tosses: the mispredictions made a serial
// 10^6-element u64 sort 41 ms instead of 19 on the development VM.
template <class Key>
Key select(std::size_t take_first, Key first, Key second) noexcept {
  const Key mask = Key{0} - static_cast<Key>(take_first);
  return (first & mask) | (second & ~mask);
}

// Merges a[0, na) and b[0, nb) into out[0, na + nb), from both ends at
// once: the front fills out[0, h) with the smallest elements and the back
// fills out[h, na + nb) with the largest, two independent dependency chains
// (load, compare, advance) that overlap, about twice as fast as one.
//
// Hostile data: every index is one of the loops' own counters, checked
// against its run's length and against h before use, so the front writes
// exactly out[0, h) and the back exactly out[h, na + nb) whatever the
// comparisons answer (unsorted runs only give an unsorted output). Each
// step writes the value it compared; equal keys are equal bits, so which
// run a tie takes from does not matter.
template <class Order>
void merge_serial(const typename Order::Value* a, std::size_t na, const typename Order::Value* b,
                  std::size_t nb, typename Order::Value* out) noexcept {
  const std::size_t h = (na + nb) / 2;
  std::size_t i = 0;  // front: a[0, i) and b[0, j) are in out[0, i + j)
  std::size_t j = 0;
  std::size_t ie = na;  // back: a[ie, na) and b[je, nb) are in out[ie + je, na + nb)
  std::size_t je = nb;
  // REQUIRES: i < na, j < nb.
  const auto front_step = [&] {
    const typename Order::Key x = Order::key(a[i]);
    const typename Order::Key y = Order::key(b[j]);
    const std::size_t take_b = y < x ? 1 : 0;
    out[i + j] = Order::value(select(take_b, y, x));
    j += take_b;
    i += 1 - take_b;
  };
  // REQUIRES: ie > 0, je > 0.
  const auto back_step = [&] {
    const typename Order::Key x = Order::key(a[ie - 1]);
    const typename Order::Key y = Order::key(b[je - 1]);
    const std::size_t take_a = y < x ? 1 : 0;
    out[ie + je - 1] = Order::value(select(take_a, x, y));
    ie -= take_a;
    je -= 1 - take_a;
  };
  // Both ends in step, in batches short enough that no run can run out
  // inside one: each step moves i or j (and ie or je) by exactly one, so
  // `steps` steps keep i < na, j < nb, ie > 0, je > 0 and i + j < h up to
  // the last one; and ie + je = na + nb - (i + j) > h holds throughout,
  // since h <= (na + nb) - h.
  for (;;) {
    std::size_t steps = std::min({h - (i + j), na - i, nb - j, ie, je});
    if (steps == 0) break;
    for (; steps > 0; --steps) {
      front_step();
      back_step();
    }
  }
  // One run ran out (or, on hostile data, the two ends met unevenly).
  while (i + j < h && i < na && j < nb) front_step();
  for (; i + j < h && i < na; ++i) out[i + j] = a[i];
  for (; i + j < h && j < nb; ++j) out[i + j] = b[j];
  while (ie + je > h && ie > 0 && je > 0) back_step();
  for (; ie + je > h && ie > 0; --ie) out[ie + je - 1] = a[ie - 1];
  for (; ie + je > h && je > 0; --je) out[ie + je - 1] = b[je - 1];
}

// The first position in b[0, nb) whose key is not below `pivot` when b is
// sorted. Over unsorted (hostile) data it is still a position in [0, nb]:
// lo and hi only move towards each other inside [0, nb] whatever the
// comparisons answer, so the split point is clamped by construction.
template <class Order>
std::size_t first_not_below(const typename Order::Value* b, std::size_t nb,
                            typename Order::Key pivot) noexcept {
  std::size_t lo = 0;
  std::size_t hi = nb;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (Order::key(b[mid]) < pivot)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static_assert(kSortMergeGrain >= 4, "a split merge's larger run must have two elements or more");

// merge_serial's result, in parallel: the larger run splits at its middle
// element, the other at that element's lower bound; the two halves of the
// output are disjoint and together cover out[0, na + nb), whatever the data.
template <class Order, class Ctx>
void merge_runs(Ctx& c, SortJob<Order>& job, const typename Order::Value* a, std::size_t na,
                const typename Order::Value* b, std::size_t nb,
                typename Order::Value* out) noexcept {
  if (na + nb <= kSortMergeGrain) {
    if (c.cancelled()) {
      job.cancelled.store(true, std::memory_order_relaxed);
      return;
    }
    merge_serial<Order>(a, na, b, nb, out);
    return;
  }
  if (na < nb) {
    std::swap(a, b);
    std::swap(na, nb);
  }
  // na > kSortMergeGrain / 2 >= 2, so 0 < ma < na: both halves are smaller
  // than the whole and the recursion ends.
  const std::size_t ma = na / 2;
  const std::size_t mb = first_not_below<Order>(b, nb, Order::key(a[ma]));
  c.join(
      [&](auto& x) { merge_runs<Order>(x, job, a, ma, b, mb, out); },
      [&](auto& x) { merge_runs<Order>(x, job, a + ma, na - ma, b + mb, nb - mb, out + ma + mb); });
}

// Sorts data[begin, begin + n) into to[begin, begin + n), where `to` is
// job.data or job.scratch. A leaf reads data; a split sorts its halves into
// the other array and merges them from there into `to`, so the arrays
// alternate level by level and the root (to == data) ends in data.
template <class Order, class Ctx>
void sort_range(Ctx& c, SortJob<Order>& job, std::size_t begin, std::size_t n,
                typename Order::Value* to) noexcept {
  if (n <= kSortLeafElements) {
    sort_leaf(c, job, begin, n, to + begin);
    return;
  }
  typename Order::Value* const other = to == job.data ? job.scratch : job.data;
  const std::size_t half = n / 2;
  c.join([&](auto& x) { sort_range(x, job, begin, half, other); },
         [&](auto& x) { sort_range(x, job, begin + half, n - half, other); });
  if (job.stopped()) return;
  merge_runs(c, job, other + begin, half, other + begin + half, n - half, to + begin);
}

template <class Order>
SortOutcome sort_array(TaskContext& ctx, std::span<typename Order::Value> data,
                       std::span<typename Order::Value> scratch) noexcept {
  const std::size_t n = data.size();
  if (n < 2) return SortOutcome::kSorted;
  if (scratch.size() < n || overlaps(data, scratch)) return SortOutcome::kBadScratch;
  SortJob<Order> job{data.data(), scratch.data()};
  sort_range(ctx, job, 0, n, job.data);
  if (job.out_of_memory.load(std::memory_order_relaxed)) return SortOutcome::kOutOfMemory;
  if (job.cancelled.load(std::memory_order_relaxed)) return SortOutcome::kCancelled;
  return SortOutcome::kSorted;
}

}  // namespace

SortOutcome sort_u64(TaskContext& ctx, std::span<std::uint64_t> data,
                     std::span<std::uint64_t> scratch) noexcept {
  return sort_array<U64Order>(ctx, data, scratch);
}

SortOutcome sort_f32(TaskContext& ctx, std::span<float> data, std::span<float> scratch) noexcept {
  return sort_array<F32Order>(ctx, data, scratch);
}

}  // namespace sort

namespace {

template <class Value,
          sort::SortOutcome (*kSort)(TaskContext&, std::span<Value>, std::span<Value>) noexcept>
KernelResult sort_kernel(TaskContext& ctx, KernelArgs args, ArenaView data_view) {
  const auto data = data_array<Value>(data_view);
  if (!data) return invalid_range(kDataRangeDetail);
  std::span<Value> scratch;
  if (data->size() >= 2) {
    const auto s = arena_array<Value>(ctx, args[0], data->size());
    if (!s || overlaps(*s, *data)) return invalid_range(0);
    scratch = *s;
  }
  switch (kSort(ctx, *data, scratch)) {
    case sort::SortOutcome::kSorted: return KernelResult::ok(data->size());
    case sort::SortOutcome::kCancelled: return KernelResult::cancelled();
    case sort::SortOutcome::kOutOfMemory: return KernelResult::error(kOutOfMemory);
    case sort::SortOutcome::kBadScratch: break;  // ruled out above
  }
  return invalid_range(0);
}

}  // namespace

void register_sort_kernels(KernelRegistry& registry) {
  add_builtin(registry, "sort_u64",
              "sorts the u64 data range ascending; args[0] = scratch offset; returns count",
              sort_kernel<std::uint64_t, sort::sort_u64>);
  add_builtin(
      registry, "sort_f32",
      "sorts the f32 data range in IEEE totalOrder; args[0] = scratch offset; returns count",
      sort_kernel<float, sort::sort_f32>);
}

}  // namespace beat
