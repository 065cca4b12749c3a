// matmul: recursive blocked square matrix multiply, C += A * B, on
// row-major float matrices (the cache-oblivious divide-and-conquer of
// Cilk-5's examples/matmul).
//
// Each level splits A, B and C into quadrants and runs the 8 half-size
// products in two rounds of 4 independent ones (each round writes the four
// C quadrants once, so the rounds' members never share an output):
//   round 1: C00 += A00 B00, C01 += A00 B01, C10 += A10 B00, C11 += A10 B01
//   round 2: C00 += A01 B10, C01 += A01 B11, C10 += A11 B10, C11 += A11 B11
// each round as nested joins, join(join(p, q), join(r, s)). Below
// kMatmulBlock the product is an i-k-j loop whose inner loop the compiler
// vectorises.
//
// MatmulProblem owns a known problem (A, B filled with small integers so
// every sum is exact in float) and checks a result exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "kernels/workloads/fork_join.hpp"

namespace beat::workloads {

// Side of the base-case block: 64, chosen over 32 by measurement. Serial
// matmul(1024), best of 10, release build (-O3, SSE2 code) on the dev box
// (Xeon, 48 KiB L1d): block 64 0.084-0.092 s, block 32 0.096-0.106 s. With
// 64 the base-case loop runs twice as long per call and its three 16 KiB
// blocks still fit L1d/L2.
inline constexpr std::uint64_t kMatmulBlock = 64;
inline constexpr std::uint64_t kMatmulMinN = 64;
inline constexpr std::uint64_t kMatmulMaxN = 4096;   // keeps every sum exact in float (< 2^24)
inline constexpr std::size_t kMatmulAlignment = 64;  // bytes; one cache line
// How many entries of C MatmulProblem::verify() recomputes by a dot product.
inline constexpr unsigned kMatmulVerifySamples = 48;

static_assert(kMatmulMinN >= kMatmulBlock, "the recursion must bottom out at exactly one block");

// True iff n is a power of two in [kMatmulMinN, kMatmulMaxN].
constexpr bool matmul_valid_n(std::uint64_t n) {
  return n >= kMatmulMinN && n <= kMatmulMaxN && (n & (n - 1)) == 0;
}

namespace detail {

// c[0..kMatmulBlock)^2 += a * b for kMatmulBlock-square blocks in matrices
// with leading dimension ld. i-k-j order: the inner loop streams a row of b
// into a row of c, which the compiler vectorises.
inline void matmul_block(const float* __restrict a, const float* __restrict b, float* __restrict c,
                         std::uint64_t ld) {
  for (std::uint64_t i = 0; i < kMatmulBlock; ++i) {
    float* __restrict c_row = c + i * ld;
    const float* __restrict a_row = a + i * ld;
    for (std::uint64_t k = 0; k < kMatmulBlock; ++k) {
      const float a_ik = a_row[k];
      const float* __restrict b_row = b + k * ld;
      for (std::uint64_t j = 0; j < kMatmulBlock; ++j) c_row[j] += a_ik * b_row[j];
    }
  }
}

template <ForkJoinExecutor Ex>
void matmul_add(Ex& ex, const float* a, const float* b, float* c, std::uint64_t n,
                std::uint64_t ld);

// One round: the four C quadrants of `c` (side 2h) each get one product,
//   C00 += a_top b_left, C01 += a_top b_right,
//   C10 += a_bottom b_left, C11 += a_bottom b_right.
template <ForkJoinExecutor Ex>
void matmul_round(Ex& ex, const float* a_top, const float* a_bottom, const float* b_left,
                  const float* b_right, float* c, std::uint64_t h, std::uint64_t ld) {
  float* const c_bottom = c + h * ld;
  ex.join(
      [&](auto& e) {
        e.join([&](auto& f) { matmul_add(f, a_top, b_left, c, h, ld); },
               [&](auto& f) { matmul_add(f, a_top, b_right, c + h, h, ld); });
      },
      [&](auto& e) {
        e.join([&](auto& f) { matmul_add(f, a_bottom, b_left, c_bottom, h, ld); },
               [&](auto& f) { matmul_add(f, a_bottom, b_right, c_bottom + h, h, ld); });
      });
}

// c += a * b for n-square submatrices with leading dimension ld.
// REQUIRES: n is kMatmulBlock times a power of two; c overlaps neither a nor b.
template <ForkJoinExecutor Ex>
void matmul_add(Ex& ex, const float* a, const float* b, float* c, std::uint64_t n,
                std::uint64_t ld) {
  if (n == kMatmulBlock) {
    matmul_block(a, b, c, ld);
    return;
  }
  const std::uint64_t h = n / 2;
  const std::uint64_t down = h * ld;  // offset of the bottom quadrants
  // Round 1 uses A's left column of quadrants and B's top row; round 2 the
  // others. Round 2 must follow round 1: both write every C quadrant.
  matmul_round(ex, a, a + down, b, b + h, c, h, ld);
  matmul_round(ex, a + h, a + down + h, b + down, b + down + h, c, h, ld);
}

}  // namespace detail

// c += a * b for row-major n x n matrices with leading dimension ld (the
// distance in floats between consecutive rows).
// REQUIRES: matmul_valid_n(n); ld >= n; c overlaps neither a nor b.
// Complexity: 2 n^3 flops; (n / kMatmulBlock)^3 base blocks, 7 joins per
// 8 sub-products; stack depth log2(n / kMatmulBlock).
template <ForkJoinExecutor Ex>
void matmul(Ex& ex, const float* a, const float* b, float* c, std::uint64_t n, std::uint64_t ld) {
  detail::matmul_add(ex, a, b, c, n, ld);
}

// A known multiplication problem with an exact check:
//   A[i][k] = ((3 i + k) mod 5) - 2,   B[k][j] = ((k + 2 j) mod 7) - 3,
// C zero. Every product is a small integer and every sum stays below 2^24,
// so C = A B is exact in float whatever the summation order.
// Thread-safety: none of its own; a parallel multiply() writes C from the
// executor's threads, and the caller must not touch C meanwhile.
class MatmulProblem {
 public:
  // Allocates and fills A, B (n*n floats each, kMatmulAlignment-aligned) and
  // a zeroed C. Throws std::invalid_argument unless matmul_valid_n(n), and
  // std::bad_alloc (3 * 4 n^2 bytes: 192 MiB at n = 4096).
  explicit MatmulProblem(std::uint64_t n);

  std::uint64_t n() const { return n_; }
  const float* a() const { return a_.get(); }
  const float* b() const { return b_.get(); }
  const float* c() const { return c_.get(); }
  float* c() { return c_.get(); }

  // C += A B with `ex`. Run once after construction or clear_result() for
  // verify() to hold.
  template <ForkJoinExecutor Ex>
  void multiply(Ex& ex) {
    matmul(ex, a_.get(), b_.get(), c_.get(), n_, n_);
  }

  // Zeroes C, so the problem can be run again.
  void clear_result();

  // True iff C holds exactly A B, as far as an O(n^2) check can tell: every
  // entry of C is an integer within the possible range; the sum of C equals
  // sum_k (column sum k of A) (row sum k of B), in 64-bit integers; and
  // kMatmulVerifySamples entries (the corners among them) equal their dot
  // products. A wrong entry changes the sum unless errors cancel.
  bool verify() const;

  // Sum of C's entries, each rounded to the nearest integer: a result
  // fingerprint that benchmarks print (it is exact when verify() holds).
  std::int64_t checksum() const;

 private:
  struct AlignedDelete {
    void operator()(float* p) const noexcept {
      ::operator delete[](p, std::align_val_t{kMatmulAlignment});
    }
  };
  using Matrix = std::unique_ptr<float[], AlignedDelete>;

  static Matrix allocate(std::uint64_t n);

  std::uint64_t n_;
  Matrix a_;
  Matrix b_;
  Matrix c_;
};

}  // namespace beat::workloads
