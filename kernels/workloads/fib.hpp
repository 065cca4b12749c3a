// fib: naive recursive Fibonacci with a join at every level, the classic
// measure of raw fork/join overhead (Cilk's fib; BOTS "fib" without its
// cut-off). fib(n) makes fib_reference(n + 1) - 1 joins, each guarding two
// additions' worth of work, so the figure is almost pure scheduler cost.
//
// There is deliberately no sequential cut-off: the schedulers are compared
// on what a spawn costs them, not on how well a cut-off hides it.
//
// Valid n: 0..93 (fib(93) is the largest that fits in 64 bits); the
// recursive versions make ~1.6^n calls, so in practice n <= 45 or so.
#pragma once

#include <cstdint>

#include "kernels/workloads/fork_join.hpp"

namespace beat::workloads {

// fib(n) by the recursion fib(n) = fib(n-1) + fib(n-2), the two calls joined
// with ex.join. fib(0) = 0, fib(1) = 1.
// Complexity: O(1.62^n) calls and joins; stack depth n.
template <ForkJoinExecutor Ex>
std::uint64_t fib(Ex& ex, unsigned n) {
  if (n < 2) return n;
  std::uint64_t x;
  std::uint64_t y;
  ex.join([&x, n](auto& e) { x = fib(e, n - 1); }, [&y, n](auto& e) { y = fib(e, n - 2); });
  return x + y;
}

// fib(n) by iteration, O(n): the known value fib() is checked against.
constexpr std::uint64_t fib_reference(unsigned n) {
  std::uint64_t a = 0;  // fib(i)
  std::uint64_t b = 1;  // fib(i + 1)
  for (unsigned i = 0; i < n; ++i) {
    const std::uint64_t next = a + b;
    a = b;
    b = next;
  }
  return a;
}

namespace detail {

inline std::uint64_t fib_serial_recursion(unsigned n) {
  if (n < 2) return n;
  return fib_serial_recursion(n - 1) + fib_serial_recursion(n - 2);
}

}  // namespace detail

// The "serial" baseline of the fib benchmarks: the same recursion as fib()
// with plain calls instead of joins.
// The empty asm hides n's value from the optimiser, so a call with a
// constant argument (fib_serial(35) in a benchmark) cannot be folded or
// specialised into something cheaper than the recursion being measured.
inline std::uint64_t fib_serial(unsigned n) {
  asm volatile("" : "+r"(n));
  return detail::fib_serial_recursion(n);
}

}  // namespace beat::workloads
