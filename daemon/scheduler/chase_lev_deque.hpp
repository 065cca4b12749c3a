// ChaseLevDeque: the work-stealing deque of one worker.
//
// Algorithm: Chase and Lev, "Dynamic circular work-stealing deque" (SPAA
// 2005), with the C11 memory orderings proven correct by Lê, Pop, Cohen and
// Zappa Nardelli, "Correct and efficient work-stealing for weak memory
// models" (PPoPP 2013, figure 1). Departures from the paper are marked
// DEPARTURE below; each one is at least as strong as the paper's ordering.
//
// Thread-safety:
//  - push(), pop(): the owner thread only.
//  - steal(), size_hint(): any thread.
//  Elements are pointers the deque does not own.
//
// Invariants:
//  1. top_ only grows (thieves and the owner's last-element pop move it by
//     CAS); bottom_ is written by the owner only.
//  2. Elements in [top_, bottom_) are live; slot i lives at buffer[i & mask].
//  3. A buffer is never freed while the deque lives: a thief may still read
//     a slot of a buffer the owner has replaced (grow), so replaced buffers
//     are kept in retired_ until destruction (the paper's "garbage"). The
//     total is below twice the largest capacity.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "shared/ring.hpp"  // kCacheLine

namespace beat::sched {

template <class T>
class ChaseLevDeque {
  static_assert(std::atomic<T*>::is_always_lock_free, "deque slots must be lock-free pointers");
  static_assert(std::atomic<std::int64_t>::is_always_lock_free, "deque indices must be lock-free");

 public:
  // Promotions push at most a handful of jobs per fork depth, so deques
  // rarely hold more than a few dozen; 256 never grows in the benchmarks.
  static constexpr std::int64_t kInitialCapacity = 256;

  ChaseLevDeque() : buffer_(new Buffer(kInitialCapacity)) {}
  ~ChaseLevDeque() { delete buffer_.load(std::memory_order_relaxed); }
  ChaseLevDeque(const ChaseLevDeque&) = delete;
  ChaseLevDeque& operator=(const ChaseLevDeque&) = delete;

  // Owner only. Grows the buffer when full (allocation: the only one, rare).
  void push(T* item) {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // Acquire (paper): pairs with thieves' CAS on top_, so a slot a thief
    // has finished reading is not overwritten before its read.
    const std::int64_t t = top_.load(std::memory_order_acquire);
    Buffer* a = buffer_.load(std::memory_order_relaxed);
    if (b - t > a->capacity - 1) a = grow(a, t, b);
    a->at(b).store(item, std::memory_order_relaxed);
    // DEPARTURE: the paper has a release fence then a relaxed store of
    // bottom. A release store is equivalent here and TSan models it (it
    // does not model fences). SYNC POINT WRITE: the slot and everything the
    // owner wrote into *item before push, published to a thief's acquire
    // load of bottom_.
    bottom_.store(b + 1, std::memory_order_release);
  }

  // Owner only. Returns the newest element or nullptr when empty (or when a
  // thief won the race for the last element).
  T* pop() noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Buffer* a = buffer_.load(std::memory_order_relaxed);
    bottom_.store(b, std::memory_order_relaxed);
    // seq_cst fence (paper): orders the store of bottom_ before the load of
    // top_ against a thief's load of top_ then bottom_ (store-buffering):
    // either the thief sees the decremented bottom_ or we see its top_.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_relaxed);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    T* item = a->at(b).load(std::memory_order_relaxed);
    if (t == b) {
      // Last element: race the thieves for it with the same CAS they use.
      // seq_cst on success (paper); relaxed on failure, nothing is read.
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed))
        item = nullptr;
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return item;
  }

  // Any thread. Returns the oldest element, or nullptr when the deque looked
  // empty or another thread won the race (the caller moves on either way).
  T* steal() noexcept {
    // Acquire (paper).
    std::int64_t t = top_.load(std::memory_order_acquire);
    // seq_cst fence (paper): the thief's half of pop()'s store-buffering pair.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // SYNC POINT READ: pairs with push()'s release store of bottom_: the
    // slot and the element's contents are visible.
    const std::int64_t b = bottom_.load(std::memory_order_acquire);
    if (t >= b) return nullptr;
    // DEPARTURE: acquire instead of the paper's consume (compilers promote
    // consume to acquire anyway; TSan sees it). Pairs with grow()'s release.
    Buffer* a = buffer_.load(std::memory_order_acquire);
    T* item = a->at(t).load(std::memory_order_relaxed);
    // seq_cst (paper): claims slot t; failure means the owner or another
    // thief took it, and the value read above must not be used.
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed))
      return nullptr;
    return item;
  }

  // Any thread: a racy estimate of the element count (>= 0), for victim
  // selection and wake-up decisions. Relaxed: a hint, never trusted.
  std::uint32_t size_hint() const noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    return b > t ? static_cast<std::uint32_t>(b - t) : 0u;
  }

  // Owner only: the current capacity (tests).
  std::int64_t capacity() const noexcept {
    return buffer_.load(std::memory_order_relaxed)->capacity;
  }

 private:
  struct Buffer {
    explicit Buffer(std::int64_t cap)
        : capacity(cap), mask(cap - 1), slots(new std::atomic<T*>[static_cast<std::size_t>(cap)]) {}
    std::atomic<T*>& at(std::int64_t i) noexcept {
      return slots[static_cast<std::size_t>(i & mask)];
    }
    const std::int64_t capacity;  // a power of two
    const std::int64_t mask;
    std::unique_ptr<std::atomic<T*>[]> slots;
  };

  // Owner only: doubles the buffer, copying the live range [t, b).
  Buffer* grow(Buffer* old, std::int64_t t, std::int64_t b) {
    auto* bigger = new Buffer(old->capacity * 2);
    for (std::int64_t i = t; i < b; ++i)
      bigger->at(i).store(old->at(i).load(std::memory_order_relaxed), std::memory_order_relaxed);
    // SYNC POINT WRITE: the copied slots, published to a thief's acquire
    // load of buffer_ (invariant 3 keeps `old` readable meanwhile).
    buffer_.store(bigger, std::memory_order_release);
    retired_.emplace_back(old);
    return bigger;
  }

  // top_ is written by thieves, bottom_ by the owner: separate lines so
  // the owner's push/pop does not invalidate thieves' reads of top_.
  alignas(kCacheLine) std::atomic<std::int64_t> top_{0};
  alignas(kCacheLine) std::atomic<std::int64_t> bottom_{0};
  std::atomic<Buffer*> buffer_;
  std::vector<std::unique_ptr<Buffer>> retired_;  // owner only (invariant 3)
};

}  // namespace beat::sched
