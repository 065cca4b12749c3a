// The top-k fingerprint kernel: the daemon's batching similarity
// (daemon/batching/similarity.hpp) exposed to clients.
//
//   topk_fingerprints  data = table of u64 task fingerprints
//                      (shared/fingerprint.hpp), one per row (misaligned,
//                      a partial row, or more than 2^32 - 1 rows ->
//                      invalid_range(kDataRangeDetail)). args[0] = the query
//                      fingerprint (any u64). args[1] = k (1..1024, else
//                      invalid_args(1)). args[2] = arena offset of k u64
//                      output entries (out of the arena, not 8-byte aligned
//                      or overlapping the data -> invalid_range(2)). Output:
//                      the k rows nearest to the query by
//                      batching::distance, as distance << 32 | row,
//                      ascending (nearest first, the lower row first among
//                      equals); entries past the table's rows are
//                      UINT64_MAX. Result = min(k, rows). Checked in the
//                      order args[1], data, args[2].
//
// Every u64 is a fingerprint: unpack_fingerprint cuts it into bit fields,
// each masked to its width, so the fields are in range
// (fields_in_range, what the similarity kernels require) whatever the
// client wrote; the static_assert below checks the widest value.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>

#include "daemon/batching/similarity.hpp"
#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"
#include "shared/fingerprint.hpp"

namespace beat {

namespace {

// The best k live in a heap array on the stack: 1024 entries are 8 KiB,
// in L1 beside a block's columns (below). Nearest-neighbour queries want a
// handful; a caller wanting a full ranking sorts the distances instead.
constexpr std::uint64_t kMaxK = 1024;
// Rows are numbered in the low 32 bits of an output entry.
constexpr std::uint64_t kMaxRows = 0xFFFF'FFFF;
constexpr unsigned kDistanceShift = 32;
constexpr std::uint64_t kNoEntry = ~std::uint64_t{0};
// Rows per FingerprintTable block: 1024 rows are 16 KiB of int32 columns
// and 4 KiB of distances, in L1 next to the 8 KiB heap, while one SIMD
// call's dispatch is spread over 1024 rows.
constexpr std::size_t kBlockRows = 1024;

static_assert(fields_in_range(unpack_fingerprint(~std::uint64_t{0})),
              "every u64 must unpack to in-range fields");
static_assert(batching::kFarDistance < (std::uint64_t{1} << (64 - kDistanceShift)),
              "a distance must fit above the row");
static_assert(kBlockRows % batching::FingerprintTable::kLanePad == 0,
              "a full block's padded size must be the block");

// One thread's scratch: the block's table, its distances and the heap.
// Thread-local, allocated on a thread's first call (the only allocation;
// the steady state allocates nothing). Sharing it per thread is safe
// because this kernel never forks: a worker runs other work only while
// it waits at a join or between tasks, so on one thread at most one call
// uses the workspace at a time.
struct Workspace {
  batching::FingerprintTable table{kBlockRows};
  std::array<std::uint32_t, kBlockRows> distances;  // room for table.padded_size()
  // The best keys so far, a max-heap (the worst of them on top).
  std::array<std::uint64_t, kMaxK> heap;
};

// This thread's workspace, or null when it could not be allocated.
Workspace* thread_workspace() noexcept {
  thread_local std::unique_ptr<Workspace> workspace;
  if (!workspace) {
    try {
      workspace = std::make_unique<Workspace>();
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
  return workspace.get();
}

// Makes `table` hold `rows`, reading each once; only shrinking the table
// rewrites its padding (clear()), a full block overwrites the rows in place.
void load_block(batching::FingerprintTable& table, std::span<const std::uint64_t> rows) noexcept {
  if (table.size() > rows.size()) table.clear();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const FingerprintFields f = unpack_fingerprint(rows[i]);
    if (i < table.size())
      table.set(i, f);
    else
      table.push_back(f);
  }
}

// Replaces the heap's top (its largest key) with a smaller `key` and
// sifts it down. REQUIRES: n >= 1, key < heap[0].
void replace_top(std::uint64_t* heap, std::size_t n, std::uint64_t key) noexcept {
  std::size_t i = 0;
  for (;;) {
    const std::size_t left = 2 * i + 1;
    if (left >= n) break;
    const std::size_t right = left + 1;
    const std::size_t child = right < n && heap[right] > heap[left] ? right : left;
    if (heap[child] <= key) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = key;
}

// Keeping the best k: a bounded max-heap of keys, whose top is the k-th
// best so far. A row that is no better costs one comparison with the top;
// a better one O(log k). A sorted array would cost O(k) moves per
// insertion: a table ordered from far to near inserts every row, 10^6 x
// 512 moves at k = 1024, where the heap does 10^6 x 10 steps. Keys are
// distance << 32 | row, all distinct, so one integer comparison orders by
// distance and then row; rows arrive in ascending order, so a later row
// at the top's distance is larger than the top and never displaces it.
KernelResult topk_fingerprints_kernel(TaskContext& ctx, KernelArgs args, ArenaView data) {
  if (args[1] < 1 || args[1] > kMaxK) return KernelResult::invalid_args(1);
  const auto k = static_cast<std::size_t>(args[1]);
  const auto rows = data_array<const std::uint64_t>(data);
  if (!rows || rows->size() > kMaxRows) return invalid_range(kDataRangeDetail);
  const auto out = arena_array<std::uint64_t>(ctx, args[2], k);
  if (!out || overlaps(*out, *rows)) return invalid_range(2);

  Workspace* ws = thread_workspace();
  if (ws == nullptr) return KernelResult::error(kOutOfMemory);
  const FingerprintFields query = unpack_fingerprint(args[0]);
  std::uint64_t* heap = ws->heap.data();
  std::size_t size = 0;
  for (std::size_t first = 0; first < rows->size(); first += kBlockRows) {
    // One relaxed load per block: a 2^32-row table stops within a block.
    if (ctx.cancelled()) return KernelResult::cancelled();
    const std::size_t n = std::min(kBlockRows, rows->size() - first);
    load_block(ws->table, rows->subspan(first, n));
    batching::distances(query, ws->table, ws->distances.data());
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t key = std::uint64_t{ws->distances[i]} << kDistanceShift | (first + i);
      if (size < k) {
        heap[size++] = key;
        std::push_heap(heap, heap + size);
      } else if (key < heap[0]) {
        replace_top(heap, size, key);
      }
    }
  }
  std::sort_heap(heap, heap + size);
  std::copy(heap, heap + size, out->begin());
  std::fill(out->begin() + static_cast<std::ptrdiff_t>(size), out->end(), kNoEntry);
  return KernelResult::ok(size);
}

}  // namespace

void register_topk_kernels(KernelRegistry& registry) {
  add_builtin(registry, "topk_fingerprints",
              "k (args[1]) table rows nearest to fingerprint args[0], to args[2]",
              topk_fingerprints_kernel);
}

}  // namespace beat
