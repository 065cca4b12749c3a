#include "daemon/batching/batch_former.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace beat::batching {

namespace {

constexpr std::uint8_t kOrderedClass = 0xFF;

// The smallest class whose templates hold `limit` tasks.
std::size_t class_for(std::uint32_t limit) noexcept {
  for (std::size_t k = 0; k < kBatchSizeClasses.size(); ++k)
    if (kBatchSizeClasses[k] >= limit) return k;
  return kBatchSizeClasses.size() - 1;
}

// Open batches up to which the nearest one is found with scalar code: the
// SIMD kernel's fixed cost (a dispatch, two lane reductions) is more than a
// few scalar distances (beat-batching-bench; a stream of no-op tasks, one
// open batch at a time, spent 40 % of the daemon's time in the SIMD search
// before). Both give the same answer (similarity_test.cpp).
constexpr std::size_t kScalarNearestUpTo = 4;

// The class a similarity batch opens in when its limit is above the
// smallest class's size (see the header).
constexpr std::size_t kOpenClass = 1;

// Moves `value` a quarter of the way towards `towards` (integer shifts).
std::uint32_t ease(std::uint32_t value, std::uint32_t towards) noexcept {
  return towards >= value ? value + ((towards - value) >> 2) : value - ((value - towards) >> 2);
}

}  // namespace

std::string_view to_string(Grouping grouping) noexcept {
  return grouping == Grouping::kFifo ? "fifo" : "similarity";
}

std::optional<Grouping> parse_grouping(std::string_view name) noexcept {
  for (const Grouping g : {Grouping::kSimilarity, Grouping::kFifo})
    if (name == to_string(g)) return g;
  return std::nullopt;
}

BatchFormer::BatchFormer(const BatchFormerOptions& options, std::uint32_t max_chunk)
    : options_(options), max_chunk_(max_chunk), reps_(options.max_open) {
  if (max_chunk < 1 || max_chunk > kMaxChunkTasks)
    throw std::invalid_argument("batch former: chunk of " + std::to_string(max_chunk) +
                                " tasks, must be in [1, " + std::to_string(kMaxChunkTasks) + "]");
  if (options.max_open < 1 || options.max_open > kMaxOpenBatches)
    throw std::invalid_argument("batch former: max_open " + std::to_string(options.max_open) +
                                ", must be in [1, " + std::to_string(kMaxOpenBatches) + "]");
  // Class k > kOpenClass only ever holds batches of more than
  // kBatchSizeClasses[k - 1] tasks (see the header), so a chunk needs at
  // most max_chunk / (that + 1) of them, plus the one being filled; the
  // classes batches open in may hold one per task.
  for (std::size_t k = 0; k < kBatchSizeClasses.size(); ++k) {
    Pool& pool = pools_[k];
    pool.size = kBatchSizeClasses[k];
    const std::uint32_t smaller = k <= kOpenClass ? 0 : kBatchSizeClasses[k - 1];
    const std::size_t count = max_chunk / (smaller + 1) + 1;
    pool.storage = std::make_unique<std::uint16_t[]>(count * pool.size);  // zeroed: touched
    pool.templates.resize(count);
    pool.free.reserve(count);
    for (std::size_t t = 0; t < count; ++t) {
      pool.templates[t] =
          Batch{pool.storage.get() + t * pool.size, 0, 0, false, static_cast<std::uint8_t>(k)};
      pool.free.push_back(&pool.templates[t]);
    }
  }
  ordered_storage_ = std::make_unique<std::uint16_t[]>(max_chunk);
  ordered_ = Batch{ordered_storage_.get(), 0, max_chunk, true, kOrderedClass};
  open_.reserve(options.max_open);
  opened_at_.reserve(options.max_open);
  // At most one batch per task, plus the ordered one.
  formed_.reserve(std::size_t{max_chunk} + 1);
}

Batch* BatchFormer::take(std::size_t cls, std::uint32_t limit) noexcept {
  Pool& pool = pools_[cls];
  // The counts in the constructor bound what one chunk takes; running out
  // would be a broken bound, not a load condition: stop loudly.
  if (pool.free.empty()) [[unlikely]] {
    std::fputs("beat batch former: template pool exhausted; aborting\n", stderr);
    std::abort();
  }
  Batch* b = pool.free.back();
  pool.free.pop_back();
  b->count = 0;
  b->limit = limit;
  return b;
}

void BatchFormer::give_back(Batch* b) noexcept { pools_[b->size_class].free.push_back(b); }

void BatchFormer::grow(OpenBatch& open) noexcept {
  Batch* bigger = take(static_cast<std::size_t>(open.batch->size_class) + 1, open.limit);
  std::memcpy(bigger->tasks, open.tasks, open.count * sizeof(std::uint16_t));
  give_back(open.batch);
  open.batch = bigger;
  open.tasks = bigger->tasks;
  open.capacity = kBatchSizeClasses[bigger->size_class];
}

std::size_t BatchFormer::oldest_open() const noexcept {
  // Branch-free (the compiler vectorises it): the smallest of (opening
  // number << 8 | slot), slots being < kMaxOpenBatches <= 256 and opening
  // numbers < 2^24 (one per task of a chunk).
  static_assert(kMaxOpenBatches <= 256 && kMaxChunkTasks < (1u << 24));
  std::uint32_t best = ~std::uint32_t{0};
  for (std::size_t s = 0; s < open_.size(); ++s)
    best = std::min(best, opened_at_[s] << 8 | static_cast<std::uint32_t>(s));
  return best & 0xFF;
}

void BatchFormer::dispatch_open(std::size_t slot) noexcept {
  const OpenBatch& open = open_[slot];
  open.batch->count = open.count;
  formed_.push_back(open.batch);
  // Keep the three arrays in step: the last row moves into `slot`.
  reps_.swap_remove(slot);
  open_[slot] = open_.back();
  open_.pop_back();
  opened_at_[slot] = opened_at_.back();
  opened_at_.pop_back();
}

bool BatchFormer::uniform(std::span<const FingerprintFields> fps) const noexcept {
  if (fps.empty()) return true;
  // Branch-free ORs of differences (the compiler vectorises it).
  const FingerprintFields& first = fps[0];
  std::uint32_t place = 0;
  std::uint32_t args = 0;
  for (const FingerprintFields& f : fps) {
    place |=
        (f.kernel ^ first.kernel) | (f.size_class ^ first.size_class) | (f.region ^ first.region);
    args |= f.args ^ first.args;
  }
  return place == 0 && (args == 0 || options_.threshold >= kArgsWeight);
}

std::span<Batch* const> BatchFormer::form(std::span<const FingerprintFields> fps,
                                          std::span<const std::uint8_t> ordered,
                                          std::uint32_t target) {
  const std::uint32_t limit = std::clamp<std::uint32_t>(target, 1, kMaxBatchSize);
  if (options_.grouping == Grouping::kSimilarity && !uniform(fps))
    form_similar(fps, ordered, limit);
  else
    form_fifo(fps, ordered, limit);
  if (ordered_.count != 0) formed_.push_back(&ordered_);
  return formed_;
}

void BatchFormer::form_similar(std::span<const FingerprintFields> fps,
                               std::span<const std::uint8_t> ordered, std::uint32_t limit) {
  const NearestSearch search(simd_path());  // one dispatch per chunk
  // Opening numbers count from 0 in every chunk (no batch is open between
  // chunks): oldest_open() needs them below 2^24.
  std::uint32_t opened = 0;
  auto find = [&](const FingerprintFields& f) {
    return open_.size() <= kScalarNearestUpTo ? nearest_scalar(f, reps_) : search(f, reps_);
  };
  // Software pipelining: task i + 1's search runs against the table as it
  // is before task i is placed, so that the two overlap (a search is a
  // chain of dependent vector steps, and placing a task waits for its
  // result), unless task i opens a batch. When placing task i changes the
  // table (a new batch, a moved representative, a dispatched batch:
  // `changes` moves), the early answer is stale and task i + 1 searches
  // again: the answer is always the one the table gives when the task's
  // turn comes.
  //
  // Runs of equal fingerprints (a client submitting one kind of task, the
  // common case) search once: the last answer is kept with the `changes`
  // value it was computed at, and a task with the same fingerprint reuses
  // it while the table is unchanged. The same table and the same query give
  // the same answer, so this too is exactly what a search would return.
  std::uint64_t changes = 0;
  Nearest early{};
  std::size_t early_for = fps.size();  // no early answer
  std::uint64_t early_at = 0;
  FingerprintFields last{};
  Nearest last_near{};
  std::uint64_t last_at = ~std::uint64_t{0};  // no last answer
  for (std::size_t i = 0; i < fps.size(); ++i) {
    const auto task = static_cast<std::uint16_t>(i);
    if (ordered[i] != 0) {
      ordered_.tasks[ordered_.count++] = task;
      continue;
    }
    const FingerprintFields& f = fps[i];
    Nearest near;
    if (last_at == changes && f == last)
      near = last_near;
    else
      near = early_for == i && early_at == changes ? early : find(f);
    last = f;
    last_near = near;
    last_at = changes;
    // A task that opens a batch changes the table for certain: searching
    // early for the next one would be wasted (a chunk of dissimilar tasks
    // searched twice per task).
    const bool joins = near.index != Nearest::kNone && near.distance <= options_.threshold;
    if (joins && i + 1 < fps.size() && ordered[i + 1] == 0 && !(fps[i + 1] == f)) {
      early = find(fps[i + 1]);
      early_for = i + 1;
      early_at = changes;
    }
    if (joins) {
      const std::size_t slot = near.index;
      OpenBatch& b = open_[slot];
      if (b.count == b.capacity) grow(b);
      b.tasks[b.count++] = task;
      if (b.count == b.limit) {
        dispatch_open(slot);
        ++changes;
        continue;
      }
      // The representative moves when the batch's size reaches a power of
      // four (4, 16, 64, 256): a few updates per batch, not one per task.
      // Each update is a scalar store into a row the next search reads as
      // part of a vector, which the CPU cannot forward and must wait out:
      // updating on every join made forming 100 tasks of 8 kinds 2.4x
      // slower, and at powers of two 1.2x (beat-batching-bench).
      if ((b.count & (b.count - 1)) == 0 && (b.count & 0x5555'5555u) != 0) {
        // Only a move that changes the row counts as a change: a task a
        // few pages from the representative moves it by a quarter of
        // that, which rounds to nothing, and the searches already made
        // stay good.
        const FingerprintFields rep = reps_.get(slot);
        const std::uint32_t size_class = ease(rep.size_class, f.size_class);
        const std::uint32_t region = ease(rep.region, f.region);
        if (size_class != rep.size_class || region != rep.region) {
          reps_.set(slot, {rep.kernel, size_class, region, rep.args});
          ++changes;
        }
      }
      continue;
    }
    // Make room: dispatch the batch that has been open longest.
    if (open_.size() == options_.max_open) dispatch_open(oldest_open());
    Batch* b = take(limit <= kBatchSizeClasses[0] ? 0 : kOpenClass, limit);
    b->tasks[b->count++] = task;
    ++changes;
    if (b->count == limit) {
      formed_.push_back(b);
      continue;
    }
    reps_.push_back(f);
    open_.push_back({b->tasks, b->count, kBatchSizeClasses[b->size_class], limit, b});
    opened_at_.push_back(opened++);
  }
  // The end of the chunk is every open batch's age bound: oldest first.
  while (!open_.empty()) dispatch_open(oldest_open());
}

void BatchFormer::form_fifo(std::span<const FingerprintFields> fps,
                            std::span<const std::uint8_t> ordered, std::uint32_t limit) {
  const std::size_t cls = class_for(limit);
  Batch* b = nullptr;
  for (std::size_t i = 0; i < fps.size(); ++i) {
    const auto task = static_cast<std::uint16_t>(i);
    if (ordered[i] != 0) {
      ordered_.tasks[ordered_.count++] = task;
      continue;
    }
    if (b == nullptr) b = take(cls, limit);
    b->tasks[b->count++] = task;
    if (b->count == limit) {
      formed_.push_back(b);
      b = nullptr;
    }
  }
  if (b != nullptr) formed_.push_back(b);
}

void BatchFormer::recycle() noexcept {
  for (Batch* b : formed_)
    if (b != &ordered_) give_back(b);
  formed_.clear();
  ordered_.count = 0;
}

}  // namespace beat::batching
