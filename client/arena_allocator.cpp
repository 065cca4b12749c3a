#include "client/arena_allocator.hpp"

#include <cassert>
#include <iterator>

#include "shared/ring.hpp"

namespace beat {

namespace {
constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t a) noexcept {
  return (v + a - 1) & ~(a - 1);
}
}  // namespace

ArenaAllocator::ArenaAllocator(std::uint64_t capacity, std::uintptr_t base_address)
    // A tail shorter than one granule can never be handed out: leave it off.
    : capacity_(capacity & ~(kArenaGranule - 1)), base_address_(base_address) {
  if (capacity_ > 0) free_.emplace(0, capacity_);
}

std::optional<ArenaAllocator::Range> ArenaAllocator::allocate(std::uint64_t bytes,
                                                              std::uint64_t alignment) {
  assert(bytes > 0 && is_power_of_two(alignment));
  if (alignment < kArenaGranule) alignment = kArenaGranule;
  if (bytes > capacity_) return std::nullopt;
  const std::uint64_t need = round_up(bytes, kArenaGranule);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    const std::uint64_t start = it->first;
    const std::uint64_t length = it->second;
    // Align the address (base + offset); the base is page aligned, so for
    // alignments up to a page this equals aligning the offset.
    const std::uint64_t aligned =
        round_up(base_address_ + start, alignment) - static_cast<std::uint64_t>(base_address_);
    const std::uint64_t pad = aligned - start;
    if (pad > length || length - pad < need) continue;
    const std::uint64_t end = start + length;
    // Split: [start, aligned) stays free, [aligned+need, end) becomes free.
    if (pad == 0) {
      free_.erase(it);
    } else {
      it->second = pad;
    }
    if (aligned + need < end) free_.emplace(aligned + need, end - (aligned + need));
    allocated_.emplace(aligned, need);
    in_use_ += need;
    return Range{aligned, need};
  }
  return std::nullopt;
}

bool ArenaAllocator::release(std::uint64_t offset) {
  const auto found = allocated_.find(offset);
  if (found == allocated_.end()) return false;
  std::uint64_t start = offset;
  std::uint64_t length = found->second;
  allocated_.erase(found);
  in_use_ -= length;

  // Coalesce with the following free range, then with the preceding one.
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + length) {
    length += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      prev->second += length;
      return true;
    }
  }
  free_.emplace_hint(next, start, length);
  return true;
}

std::uint64_t ArenaAllocator::largest_free_range() const noexcept {
  std::uint64_t best = 0;
  for (const auto& [offset, length] : free_) {
    // Ranges start on a granule, so alignment 64 never needs padding.
    if (length > best) best = length;
  }
  return best;
}

}  // namespace beat
