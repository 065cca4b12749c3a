// daemon/batching/similarity.hpp: the reference distance on hand-computed
// pairs, and the SIMD kernels against it on every Highway target this CPU
// supports (hwy::SetSupportedTargetsForTest), so the AVX-512, AVX2, SSE4
// and emulated paths are all checked, not only the best one.
#include "daemon/batching/similarity.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "tests/support/highway_targets.hpp"

namespace beat::batching {
namespace {

TEST(Distance, HandComputedPairs) {
  const FingerprintFields a{7, 10, 100, 5};
  EXPECT_EQ(distance(a, a), 0u);
  EXPECT_EQ(distance(a, {8, 10, 100, 5}), kFarDistance) << "another kernel";
  EXPECT_EQ(distance(a, {7, 12, 100, 5}), 2 * kSizeClassWeight);
  EXPECT_EQ(distance(a, {7, 10, 97, 5}), 3u);
  EXPECT_EQ(distance(a, {7, 10, 100'000, 5}), kRegionCap) << "far regions saturate";
  EXPECT_EQ(distance(a, {7, 10, 100, 6}), kArgsWeight);
  EXPECT_EQ(distance(a, {7, 0, 0, 0}), 10 * kSizeClassWeight + 100 + kArgsWeight);
  // Symmetric.
  EXPECT_EQ(distance({7, 0, 0, 0}, a), distance(a, {7, 0, 0, 0}));
}

FingerprintFields random_fields(std::mt19937_64& rng) {
  // Few kernels and nearby values, so that all three terms vary.
  return {static_cast<std::uint32_t>(rng() % 4), static_cast<std::uint32_t>(rng() % 40),
          static_cast<std::uint32_t>(rng() % 600), static_cast<std::uint32_t>(rng() % 3)};
}

TEST(Similarity, SimdDistancesEqualTheScalarPathOnEveryTarget) {
  std::mt19937_64 rng(12345);
  for (const std::size_t rows : {0u, 1u, 15u, 16u, 17u, 64u, 100u}) {
    FingerprintTable table(rows);
    for (std::size_t i = 0; i < rows; ++i) table.push_back(random_fields(rng));
    for (int probe = 0; probe < 20; ++probe) {
      const FingerprintFields one = random_fields(rng);
      std::vector<std::uint32_t> scalar(table.padded_size() + 1, 0xDEAD);
      distances(SimdPath::kScalar, one, table, scalar.data());
      for (std::size_t i = 0; i < rows; ++i)
        ASSERT_EQ(scalar[i], distance(one, table.get(i))) << "row " << i;
      for (std::size_t i = rows; i < table.padded_size(); ++i)
        ASSERT_EQ(scalar[i], kFarDistance) << "padding row " << i;
      EXPECT_EQ(scalar[table.padded_size()], 0xDEADu) << "wrote past the padding";
      test::on_every_target(simd_target_name, [&] {
        std::vector<std::uint32_t> simd(table.padded_size() + 1, 0xDEAD);
        distances(SimdPath::kAuto, one, table, simd.data());
        ASSERT_EQ(simd, scalar) << rows << " rows";
      });
    }
  }
}

TEST(Similarity, NearestIsTheLowestIndexOfTheSmallestDistanceOnEveryTarget) {
  std::mt19937_64 rng(777);
  for (const std::size_t rows : {1u, 3u, 16u, 33u, 64u}) {
    FingerprintTable table(rows);
    for (std::size_t i = 0; i < rows; ++i) table.push_back(random_fields(rng));
    for (int probe = 0; probe < 50; ++probe) {
      const FingerprintFields one = random_fields(rng);
      std::size_t best = 0;
      for (std::size_t i = 1; i < rows; ++i)
        if (distance(one, table.get(i)) < distance(one, table.get(best))) best = i;
      const Nearest scalar = nearest(SimdPath::kScalar, one, table);
      ASSERT_EQ(scalar.index, best);
      ASSERT_EQ(scalar.distance, distance(one, table.get(best)));
      test::on_every_target(simd_target_name, [&] {
        const Nearest simd = nearest(SimdPath::kAuto, one, table);
        ASSERT_EQ(simd.index, scalar.index) << rows << " rows";
        ASSERT_EQ(simd.distance, scalar.distance);
      });
    }
  }
}

TEST(Similarity, TiesGoToTheFirstRowAndAnEmptyTableHasNone) {
  FingerprintTable table(40);
  for (int i = 0; i < 40; ++i) table.push_back({1, 1, 1, 1});
  test::on_every_target(simd_target_name, [&] {
    const Nearest n = nearest(SimdPath::kAuto, {1, 1, 1, 1}, table);
    EXPECT_EQ(n.index, 0u);
    EXPECT_EQ(n.distance, 0u);
  });
  FingerprintTable empty(8);
  EXPECT_EQ(nearest(SimdPath::kAuto, {1, 1, 1, 1}, empty).index, Nearest::kNone);
  EXPECT_EQ(nearest(SimdPath::kScalar, {1, 1, 1, 1}, empty).index, Nearest::kNone);
}

TEST(Similarity, AllFarStillNamesARealRow) {
  // Every row has another kernel: the nearest is a real row at kFarDistance,
  // never a padding row.
  FingerprintTable table(5);
  for (int i = 0; i < 5; ++i) table.push_back({2, 0, 0, 0});
  test::on_every_target(simd_target_name, [&] {
    const Nearest n = nearest(SimdPath::kAuto, {1, 0, 0, 0}, table);
    EXPECT_EQ(n.index, 0u);
    EXPECT_EQ(n.distance, kFarDistance);
  });
}

TEST(Similarity, SwapRemoveKeepsTheOtherRowsAndClearsTheLast) {
  FingerprintTable table(4);
  table.push_back({1, 1, 1, 1});
  table.push_back({2, 2, 2, 2});
  table.push_back({3, 3, 3, 3});
  table.swap_remove(0);
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table.get(0), (FingerprintFields{3, 3, 3, 3}));
  EXPECT_EQ(table.get(1), (FingerprintFields{2, 2, 2, 2}));
  EXPECT_EQ(table.kernel()[2], -1) << "the freed row is padding again";
  table.swap_remove(1);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.get(0), (FingerprintFields{3, 3, 3, 3}));
}

TEST(Similarity, MatrixRowsAreOneAgainstMany) {
  std::mt19937_64 rng(99);
  FingerprintTable ones(7), many(21);
  for (int i = 0; i < 7; ++i) ones.push_back(random_fields(rng));
  for (int i = 0; i < 21; ++i) many.push_back(random_fields(rng));
  std::vector<std::uint32_t> matrix(ones.size() * many.padded_size());
  distance_matrix(ones, many, matrix.data());
  for (std::size_t i = 0; i < ones.size(); ++i)
    for (std::size_t j = 0; j < many.size(); ++j)
      ASSERT_EQ(matrix[i * many.padded_size() + j], distance(ones.get(i), many.get(j)));
}

TEST(Similarity, TheScalarSwitchIsGlobalAndNamed) {
  set_simd_path(SimdPath::kScalar);
  EXPECT_EQ(simd_path(), SimdPath::kScalar);
  EXPECT_EQ(simd_target_name(), "scalar");
  set_simd_path(SimdPath::kAuto);
  EXPECT_NE(simd_target_name(), "scalar");
}

}  // namespace
}  // namespace beat::batching
