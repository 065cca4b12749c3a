// MatmulProblem: the known problem and its exact check (see matmul.hpp).
#include "kernels/workloads/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace beat::workloads {

namespace {

// |A| <= 2 and |B| <= 3, so |C[i][j]| <= 6 n.
constexpr std::int64_t kMaxAbsProduct = 6;

// The generators of A and B, as exact integers.
std::int64_t a_value(std::uint64_t i, std::uint64_t k) {
  return static_cast<std::int64_t>((3 * i + k) % 5) - 2;
}
std::int64_t b_value(std::uint64_t k, std::uint64_t j) {
  return static_cast<std::int64_t>((k + 2 * j) % 7) - 3;
}

// A fixed pseudo-random sequence (Knuth's MMIX LCG), so the sampled entries
// differ across n but are the same in every run.
struct SampleSequence {
  std::uint64_t x;
  std::uint64_t next(std::uint64_t bound) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (x >> 33) % bound;
  }
};
constexpr std::uint64_t kSampleSeed = 0x5eed;

}  // namespace

MatmulProblem::MatmulProblem(std::uint64_t n) : n_(n) {
  if (!matmul_valid_n(n)) {
    throw std::invalid_argument("matmul: n must be a power of two in [64, 4096], not " +
                                std::to_string(n));
  }
  a_ = allocate(n);
  b_ = allocate(n);
  c_ = allocate(n);
  for (std::uint64_t row = 0; row < n; ++row) {
    for (std::uint64_t col = 0; col < n; ++col) {
      a_[row * n + col] = static_cast<float>(a_value(row, col));
      b_[row * n + col] = static_cast<float>(b_value(row, col));
    }
  }
  clear_result();
}

MatmulProblem::Matrix MatmulProblem::allocate(std::uint64_t n) {
  // Floats are implicit-lifetime types: the aligned storage is usable as
  // float[n * n] without constructing each element.
  return Matrix(static_cast<float*>(
      ::operator new[](n* n * sizeof(float), std::align_val_t{kMatmulAlignment})));
}

void MatmulProblem::clear_result() { std::fill_n(c_.get(), n_ * n_, 0.0f); }

bool MatmulProblem::verify() const {
  const std::uint64_t n = n_;
  const float* c = c_.get();
  const float bound = static_cast<float>(kMaxAbsProduct * static_cast<std::int64_t>(n));

  // Every entry an integer in range (NaN fails the first comparison), and
  // the total, exactly.
  std::int64_t total = 0;
  for (std::uint64_t idx = 0; idx < n * n; ++idx) {
    const float v = c[idx];
    if (!(std::fabs(v) <= bound) || std::trunc(v) != v) return false;
    total += static_cast<std::int64_t>(v);
  }

  // sum_ij C[i][j] = sum_k (sum_i A[i][k]) (sum_j B[k][j]), from the stored
  // A and B (exact small integers).
  std::vector<std::int64_t> a_col_sum(n, 0);
  std::vector<std::int64_t> b_row_sum(n, 0);
  for (std::uint64_t row = 0; row < n; ++row) {
    for (std::uint64_t col = 0; col < n; ++col) {
      a_col_sum[col] += static_cast<std::int64_t>(a_[row * n + col]);
      b_row_sum[row] += static_cast<std::int64_t>(b_[row * n + col]);
    }
  }
  std::int64_t expected_total = 0;
  for (std::uint64_t k = 0; k < n; ++k) expected_total += a_col_sum[k] * b_row_sum[k];
  if (total != expected_total) return false;

  // Sampled entries, the four corners first.
  SampleSequence sequence{kSampleSeed};
  for (unsigned s = 0; s < kMatmulVerifySamples; ++s) {
    std::uint64_t i;
    std::uint64_t j;
    if (s < 4) {
      i = (s & 1) != 0 ? n - 1 : 0;
      j = (s & 2) != 0 ? n - 1 : 0;
    } else {
      i = sequence.next(n);
      j = sequence.next(n);
    }
    std::int64_t dot = 0;
    for (std::uint64_t k = 0; k < n; ++k) {
      dot += static_cast<std::int64_t>(a_[i * n + k]) * static_cast<std::int64_t>(b_[k * n + j]);
    }
    if (static_cast<std::int64_t>(c[i * n + j]) != dot) return false;
  }
  return true;
}

std::int64_t MatmulProblem::checksum() const {
  std::int64_t total = 0;
  for (std::uint64_t idx = 0; idx < n_ * n_; ++idx) total += std::llround(c_[idx]);
  return total;
}

}  // namespace beat::workloads
