// BatchFormer: groups one intake chunk of tasks (up to workers.intake_batch
// descriptors taken from one client's submission ring) into batches of
// similar tasks, which the intake then runs as the units of its
// parallel_for: one worker runs a batch's tasks back to back, with the
// caches the first one warmed (daemon/worker_pool.cpp).
//
// Grouping:
//   similarity  each task joins the open batch whose representative is
//               nearest to its fingerprint (similarity.hpp, SIMD over the
//               open batches' structure-of-arrays table) if that distance
//               is at most `threshold` and the batch has room; otherwise it
//               opens a batch. The task that brings a batch's size to a
//               power of four moves the representative's size class and
//               region a quarter of the way towards its own (integer
//               shifts; kernel and argument hash stay the first task's),
//               without looking at the batch's other tasks.
//               A batch that reaches its limit is dispatched at once; when
//               `max_open` batches are open, the oldest is dispatched to
//               make room; at the end of the chunk every open batch is.
//               A chunk whose tasks all share kernel, size class and
//               region, with argument hashes the threshold does not tell
//               apart, comes out as fifo's batches; form() sees that in one
//               pass and skips the searches (uniform() below).
//   fifo        consecutive tasks, in submission order, `limit` at a time.
// Ordered tasks (kTaskFlagOrdered) go, in submission order, into one batch
// of their own that is never reordered.
//
// Size: `form` is given a target size (the intake's adaptive choice between
// min_batch and max_batch, smaller when workers are idle), every batch's
// limit. Storage comes from pre-allocated templates in size classes (5,
// 20, 50, 100, 256): a similarity batch starts in the 20s (the 5s when
// its limit is 5 or less) and moves to the next class when it fills below
// its limit (a copy of at most 100 indices, at most three times per
// batch); a fifo batch takes the smallest class that holds its limit. A
// class k > 1 template then only ever holds more tasks than class k-1
// could, which bounds how many templates a chunk can need (classes 0 and
// 1: one per task); that many are allocated and touched when the former
// is built and recycled after the chunk has run: forming allocates
// nothing. (Starting in the 5s made a busy chunk's batches grow once
// each, a copy and a mispredicted branch: 10 % of forming 100 tasks of 8
// kinds.)
//
// Batches live only within one chunk: a worker must not hold a client's
// tasks past its own quiescent point (worker_pool.hpp, invariant 2), so
// "dispatched when its age passes a bound" is "by the end of the chunk".
//
// Thread-safety: one former per worker and intake nesting level, used by
// that worker's thread only; the batches it returns are read by thieves
// running parts of the chunk's parallel_for, which the deque's release
// (push) and acquire (steal) order after their construction, and recycled
// only after that parallel_for returned (every part done).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "daemon/batching/similarity.hpp"
#include "shared/fingerprint.hpp"

namespace beat::batching {

enum class Grouping : std::uint8_t { kSimilarity, kFifo };

// "similarity", "fifo": the config's and STATS' names.
std::string_view to_string(Grouping grouping) noexcept;
// The grouping of that name, or nullopt.
std::optional<Grouping> parse_grouping(std::string_view name) noexcept;

// Template sizes; the largest bounds max_batch.
inline constexpr std::array<std::uint32_t, 5> kBatchSizeClasses = {5, 20, 50, 100, 256};
inline constexpr std::uint32_t kMaxBatchSize = kBatchSizeClasses.back();
inline constexpr std::uint32_t kMaxOpenBatches = 64;
// Chunks are bounded by workers.intake_batch (config.hpp's kMaxIntakeBatch);
// task indices are 16-bit.
inline constexpr std::uint32_t kMaxChunkTasks = 4096;

struct BatchFormerOptions {
  Grouping grouping = Grouping::kSimilarity;
  std::uint32_t threshold = 24;  // largest distance that still joins a batch
  std::uint32_t max_open = 16;   // 1..kMaxOpenBatches
};

// One batch: indices into the chunk, in the order they run.
struct Batch {
  std::uint16_t* tasks;
  std::uint32_t count;
  std::uint32_t limit;      // dispatched when count reaches it
  bool ordered;             // the chunk's ordered tasks, in submission order
  std::uint8_t size_class;  // index into kBatchSizeClasses; 0xFF: the ordered batch
  std::span<const std::uint16_t> span() const noexcept { return {tasks, count}; }
};

class BatchFormer {
 public:
  // Pre-allocates templates for chunks of up to `max_chunk` tasks.
  // REQUIRES: 1 <= max_chunk <= kMaxChunkTasks; 1 <= options.max_open <= kMaxOpenBatches.
  BatchFormer(const BatchFormerOptions& options, std::uint32_t max_chunk);
  BatchFormer(const BatchFormer&) = delete;
  BatchFormer& operator=(const BatchFormer&) = delete;

  // Groups tasks 0..fps.size() of a chunk (fps[i] is task i's fingerprint;
  // ordered[i] its kTaskFlagOrdered) into batches of at most `target`
  // tasks (clamped to [1, kMaxBatchSize]). Every task is in exactly one
  // batch. Returns the batches in dispatch order, valid until recycle().
  // REQUIRES: fps.size() == ordered.size() <= max_chunk; the previous
  // chunk's batches were recycled.
  std::span<Batch* const> form(std::span<const FingerprintFields> fps,
                               std::span<const std::uint8_t> ordered, std::uint32_t target);
  // Returns every batch of the last form() to its template pool.
  void recycle() noexcept;

  const BatchFormerOptions& options() const noexcept { return options_; }

 private:
  struct Pool {
    std::uint32_t size = 0;                    // tasks per template
    std::unique_ptr<std::uint16_t[]> storage;  // all templates' task arrays
    std::vector<Batch> templates;
    std::vector<Batch*> free;  // reserved to templates.size(): push_back never allocates
  };

  // A template of class `cls` with `limit`, from its pool.
  Batch* take(std::size_t cls, std::uint32_t limit) noexcept;
  void give_back(Batch* b) noexcept;
  // An open similarity batch's hot state, next to its row in reps_: a
  // task joining it touches this line only (the Batch gets its count when
  // it is dispatched).
  struct OpenBatch {
    std::uint16_t* tasks;
    std::uint32_t count;
    std::uint32_t capacity;  // its template's size class
    std::uint32_t limit;
    Batch* batch;
  };
  // Moves a full open batch to a template of the next class.
  void grow(OpenBatch& open) noexcept;
  void dispatch_open(std::size_t slot) noexcept;
  // Whether every pair of the chunk's tasks is within the threshold in a
  // way that leaves similarity grouping nothing to choose: the same kernel,
  // size class and region, and argument hashes that are equal or that the
  // threshold does not tell apart. Then at most one batch is ever open (a
  // task is within the threshold of it, or it was dispatched full), its
  // representative never moves, and the batches are consecutive runs of the
  // limit: fifo's, which form() builds without searching (a client
  // submitting one kind of task with varying arguments, the common case).
  bool uniform(std::span<const FingerprintFields> fps) const noexcept;
  // The slot of the batch open longest.
  std::size_t oldest_open() const noexcept;
  void form_similar(std::span<const FingerprintFields> fps, std::span<const std::uint8_t> ordered,
                    std::uint32_t limit);
  void form_fifo(std::span<const FingerprintFields> fps, std::span<const std::uint8_t> ordered,
                 std::uint32_t limit);

  const BatchFormerOptions options_;
  const std::uint32_t max_chunk_;
  std::array<Pool, kBatchSizeClasses.size()> pools_;
  Batch ordered_;  // its own storage: it may hold the whole chunk
  std::unique_ptr<std::uint16_t[]> ordered_storage_;
  // Open batches (similarity): representatives as a SIMD table, the batch
  // of each row and when it opened (for "dispatch the oldest").
  FingerprintTable reps_;
  std::vector<OpenBatch> open_;
  std::vector<std::uint32_t> opened_at_;  // contiguous: oldest_open() vectorises
  // Formed batches of the current chunk, in dispatch order.
  std::vector<Batch*> formed_;
};

}  // namespace beat::batching
