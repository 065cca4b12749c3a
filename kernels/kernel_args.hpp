// Arena ranges a task names: its data range, and arrays whose offsets are
// inline arguments. Every built-in kernel that reads or writes arena data
// validates each range through these helpers before touching it, and a bad
// one fails the task with TaskStatus::kInvalidRange and a detail naming it:
//
//   detail 0, 1, 2     the range whose offset is args[0], args[1], args[2]
//   kDataRangeDetail   the descriptor's data range (data_offset, data_length)
//
// A range is bad when it leaves the arena, when its offset is not a multiple
// of the element's alignment, when its length is not a whole number of
// elements, or when an output overlaps an input it may not alias.
//
// The arena is shared with the client, which may write it while a kernel
// runs (kernels/kernel.hpp): these helpers read nothing from it, and the
// spans they return are only ever indexed by the kernel's own counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "kernels/kernel.hpp"

namespace beat {

// KernelResult::detail of a kInvalidRange completion naming the data range.
inline constexpr std::uint32_t kDataRangeDetail = kInlineArgs;

constexpr KernelResult invalid_range(std::uint32_t which) noexcept {
  return {TaskStatus::kInvalidRange, which, 0};
}

// The task's data range as an array of T. Empty (not nullopt) when the task
// carries no data. nullopt when the range is misaligned for T or not a whole
// number of Ts.
template <class T>
std::optional<std::span<T>> data_array(ArenaView data) noexcept {
  if (data.size == 0) return std::span<T>{};
  if (reinterpret_cast<std::uintptr_t>(data.data) % alignof(T) != 0 || data.size % sizeof(T) != 0)
    return std::nullopt;
  return std::span<T>(reinterpret_cast<T*>(data.data),
                      static_cast<std::size_t>(data.size / sizeof(T)));
}

// `count` Ts at arena offset `offset` (an inline argument), or nullopt when
// they do not fit in the arena or the offset is misaligned for T. A count of
// zero gives an empty span whatever the offset.
template <class T>
std::optional<std::span<T>> arena_array(const TaskContextBase& ctx, std::uint64_t offset,
                                        std::uint64_t count) noexcept {
  if (count == 0) return std::span<T>{};
  if (count > ctx.arena().size / sizeof(T)) return std::nullopt;  // also bounds count * sizeof(T)
  const ArenaView v = ctx.arena_range(offset, count * sizeof(T));
  if (v.data == nullptr || reinterpret_cast<std::uintptr_t>(v.data) % alignof(T) != 0)
    return std::nullopt;
  return std::span<T>(reinterpret_cast<T*>(v.data), static_cast<std::size_t>(count));
}

// True when the two ranges share at least one byte.
template <class A, class B>
bool overlaps(std::span<A> a, std::span<B> b) noexcept {
  if (a.empty() || b.empty()) return false;
  const auto a0 = reinterpret_cast<std::uintptr_t>(a.data());
  const auto b0 = reinterpret_cast<std::uintptr_t>(b.data());
  return a0 < b0 + b.size_bytes() && b0 < a0 + a.size_bytes();
}

// True when the two ranges are the same bytes (an in-place operation).
template <class A, class B>
bool same_range(std::span<A> a, std::span<B> b) noexcept {
  return static_cast<const void*>(a.data()) == static_cast<const void*>(b.data()) &&
         a.size_bytes() == b.size_bytes();
}

}  // namespace beat
