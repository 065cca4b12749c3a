// daemon/batching/batch_former.hpp: seeded random task streams (property
// tests) in which every task lands in exactly one batch, batches respect
// their limit and hold one kernel, ordered tasks keep their order in one
// batch; fifo batches are consecutive runs; uniform chunks, which skip the
// search, form what the search would; the SIMD and scalar paths form
// identical batches on every Highway target; the worst cases of template
// use do not run the pools dry.
#include "daemon/batching/batch_former.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "hwy/targets.h"

namespace beat::batching {
namespace {

struct Chunk {
  std::vector<FingerprintFields> fps;
  std::vector<std::uint8_t> ordered;
};

// `n` tasks of `kernels` kernels over a few data blocks; every `ordered_every`
// -th task ordered (0: none).
Chunk random_chunk(std::mt19937_64& rng, std::uint32_t n, std::uint32_t kernels,
                   std::uint32_t ordered_every) {
  Chunk c;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto block = static_cast<std::uint32_t>(rng() % 6);
    c.fps.push_back({static_cast<std::uint32_t>(rng() % kernels),
                     static_cast<std::uint32_t>(10 + rng() % 3),
                     block * 4096 + static_cast<std::uint32_t>(rng() % 4),
                     static_cast<std::uint32_t>(rng() % 2)});
    c.ordered.push_back(ordered_every != 0 && rng() % ordered_every == 0 ? 1 : 0);
  }
  return c;
}

// The batches as lists of task indices, in dispatch order.
std::vector<std::vector<std::uint16_t>> snapshot(std::span<Batch* const> batches) {
  std::vector<std::vector<std::uint16_t>> out;
  for (const Batch* b : batches) out.emplace_back(b->span().begin(), b->span().end());
  return out;
}

// The properties every formed chunk must have.
void expect_well_formed(const Chunk& c, std::span<Batch* const> batches, std::uint32_t limit,
                        const BatchFormerOptions& options) {
  std::vector<int> seen(c.fps.size(), 0);
  std::size_t ordered_batches = 0;
  for (const Batch* b : batches) {
    ASSERT_GT(b->count, 0u) << "an empty batch";
    if (b->ordered) {
      ++ordered_batches;
      for (std::uint32_t k = 0; k < b->count; ++k) {
        ASSERT_EQ(c.ordered[b->tasks[k]], 1) << "an unordered task in the ordered batch";
        if (k > 0) {
          ASSERT_LT(b->tasks[k - 1], b->tasks[k]) << "ordered tasks out of order";
        }
      }
    } else {
      ASSERT_LE(b->count, limit) << "a batch over its limit";
      for (std::uint32_t k = 0; k < b->count; ++k) {
        ASSERT_EQ(c.ordered[b->tasks[k]], 0) << "an ordered task outside the ordered batch";
        if (options.grouping == Grouping::kSimilarity && options.threshold < kFarDistance) {
          ASSERT_EQ(c.fps[b->tasks[k]].kernel, c.fps[b->tasks[0]].kernel)
              << "two kernels in one similarity batch";
        }
      }
    }
    for (std::uint32_t k = 0; k < b->count; ++k) ++seen[b->tasks[k]];
  }
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << "task " << i;
  EXPECT_LE(ordered_batches, 1u);
}

TEST(BatchFormer, RandomStreamsPlaceEveryTaskInExactlyOneBatch) {
  std::mt19937_64 rng(2026);
  for (const Grouping grouping : {Grouping::kSimilarity, Grouping::kFifo}) {
    for (const std::uint32_t max_open : {1u, 4u, 16u, 64u}) {
      const BatchFormerOptions options{grouping, 24, max_open};
      BatchFormer former(options, 512);
      for (int round = 0; round < 200; ++round) {
        const auto n = static_cast<std::uint32_t>(1 + rng() % 512);
        const Chunk c = random_chunk(rng, n, 1 + rng() % 5, round % 3 == 0 ? 7 : 0);
        const auto target = static_cast<std::uint32_t>(1 + rng() % 300);
        const auto batches = former.form(c.fps, c.ordered, target);
        expect_well_formed(c, batches, target > kMaxBatchSize ? kMaxBatchSize : target, options);
        former.recycle();
      }
    }
  }
}

TEST(BatchFormer, FifoBatchesAreConsecutiveRunsOfTheLimit) {
  std::mt19937_64 rng(5);
  BatchFormer former({Grouping::kFifo, 24, 16}, 100);
  const Chunk c = random_chunk(rng, 100, 3, 0);
  const auto batches = snapshot(former.form(c.fps, c.ordered, 30));
  ASSERT_EQ(batches.size(), 4u);
  std::uint16_t next = 0;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    EXPECT_EQ(batches[b].size(), b < 3 ? 30u : 10u);
    for (const std::uint16_t t : batches[b]) EXPECT_EQ(t, next++);
  }
  former.recycle();
}

TEST(BatchFormer, SimilarityGroupsInterleavedKernelsAndBlocks) {
  // 4 kernels x 2 data blocks, interleaved task by task: fifo mixes them,
  // similarity puts each (kernel, block) pair in batches of its own.
  std::vector<FingerprintFields> fps;
  std::vector<std::uint8_t> ordered;
  for (std::uint32_t i = 0; i < 256; ++i) {
    fps.push_back({i % 4, 16, (i / 4) % 2 == 0 ? 100u : 900u, 0});
    ordered.push_back(0);
  }
  BatchFormer similar({Grouping::kSimilarity, 24, 16}, 256);
  const auto grouped = snapshot(similar.form(fps, ordered, 256));
  EXPECT_EQ(grouped.size(), 8u);
  for (const auto& batch : grouped) {
    ASSERT_EQ(batch.size(), 32u);
    for (const std::uint16_t t : batch) {
      EXPECT_EQ(fps[t].kernel, fps[batch[0]].kernel);
      EXPECT_EQ(fps[t].region, fps[batch[0]].region);
    }
  }
  similar.recycle();
}

TEST(BatchFormer, UniformChunksFormWhatTheSearchWouldForm) {
  // A uniform chunk (one kernel, size class and region; argument hashes
  // equal, or different with a threshold that admits that) skips the
  // search. Appending one task of another kernel makes the chunk
  // non-uniform, so the search runs: the uniform tasks must come out in the
  // same batches, the odd task alone after them, the ordered batch last.
  std::mt19937_64 rng(404);
  for (int round = 0; round < 300; ++round) {
    const auto n = static_cast<std::uint32_t>(1 + rng() % 300);
    const bool same_args = round % 2 == 0;
    const std::uint32_t threshold = same_args
                                        ? static_cast<std::uint32_t>(rng() % 40)
                                        : kArgsWeight + static_cast<std::uint32_t>(rng() % 20);
    const auto target = static_cast<std::uint32_t>(1 + rng() % 300);
    Chunk c;
    for (std::uint32_t i = 0; i < n; ++i) {
      c.fps.push_back({3, 12, 777, same_args ? 5u : static_cast<std::uint32_t>(rng() % 1000)});
      c.ordered.push_back(round % 3 == 0 && rng() % 5 == 0 ? 1 : 0);
    }
    BatchFormer former(
        {Grouping::kSimilarity, threshold, 1 + static_cast<std::uint32_t>(rng() % 16)}, 301);
    auto uniform = snapshot(former.form(c.fps, c.ordered, target));
    former.recycle();
    Chunk odd = c;
    odd.fps.push_back({4, 12, 777, 5});
    odd.ordered.push_back(0);
    const auto searched = snapshot(former.form(odd.fps, odd.ordered, target));
    former.recycle();

    auto expected = uniform;
    const bool has_ordered =
        !expected.empty() &&
        std::any_of(c.ordered.begin(), c.ordered.end(), [](std::uint8_t o) { return o != 0; });
    expected.insert(has_ordered ? expected.end() - 1 : expected.end(),
                    std::vector<std::uint16_t>{static_cast<std::uint16_t>(n)});
    ASSERT_EQ(searched, expected) << "round " << round;
    // And the uniform batches are consecutive runs of the limit.
    std::uint16_t next = 0;
    const std::size_t runs = has_ordered ? uniform.size() - 1 : uniform.size();
    for (std::size_t b = 0; b < runs; ++b) {
      ASSERT_EQ(uniform[b].size(),
                b + 1 < runs ? std::min(target, kMaxBatchSize) : uniform[b].size());
      for (const std::uint16_t t : uniform[b]) {
        while (c.ordered[next] != 0) ++next;
        ASSERT_EQ(t, next++) << "round " << round;
      }
    }
  }
}

TEST(BatchFormer, ArgumentsTheThresholdTellsApartAreNotUniform) {
  // One kernel, size class and region, two argument hashes, a threshold
  // below kArgsWeight: each batch must hold one hash (a fifo shortcut
  // would mix them).
  std::mt19937_64 rng(77);
  Chunk c;
  for (std::uint32_t i = 0; i < 200; ++i) {
    c.fps.push_back({3, 12, 777, static_cast<std::uint32_t>(rng() % 2)});
    c.ordered.push_back(0);
  }
  BatchFormer former({Grouping::kSimilarity, kArgsWeight - 1, 16}, 200);
  const auto batches = snapshot(former.form(c.fps, c.ordered, 64));
  for (const auto& batch : batches)
    for (const std::uint16_t t : batch) EXPECT_EQ(c.fps[t].args, c.fps[batch[0]].args);
  former.recycle();
}

TEST(BatchFormer, ThePathsFormIdenticalBatchesOnEveryTarget) {
  std::mt19937_64 rng(31337);
  for (int round = 0; round < 30; ++round) {
    const Chunk c = random_chunk(rng, 1 + rng() % 400, 1 + rng() % 4, round % 2 == 0 ? 11 : 0);
    const auto target = static_cast<std::uint32_t>(1 + rng() % 256);
    BatchFormer former({Grouping::kSimilarity, static_cast<std::uint32_t>(rng() % 40), 16}, 400);
    set_simd_path(SimdPath::kScalar);
    const auto reference = snapshot(former.form(c.fps, c.ordered, target));
    former.recycle();
    set_simd_path(SimdPath::kAuto);
    for (const std::int64_t t : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(t);
      EXPECT_EQ(snapshot(former.form(c.fps, c.ordered, target)), reference)
          << hwy::TargetName(t) << ", round " << round;
      former.recycle();
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

TEST(BatchFormer, WorstCasesDoNotRunTheTemplatesDry) {
  // All dissimilar (every task alone) with the largest target; all alike
  // with every target; one kernel per task pair: each chunk as large as
  // the former allows, many times over (recycling must return everything).
  constexpr std::uint32_t kChunk = kMaxChunkTasks;
  for (const Grouping grouping : {Grouping::kSimilarity, Grouping::kFifo}) {
    BatchFormer former({grouping, 0, kMaxOpenBatches}, kChunk);
    std::vector<std::uint8_t> ordered(kChunk, 0);
    std::vector<FingerprintFields> distinct(kChunk), alike(kChunk, FingerprintFields{1, 1, 1, 1});
    for (std::uint32_t i = 0; i < kChunk; ++i) distinct[i] = {i, 0, 0, 0};
    // Alike but for the last task: not uniform, so similarity searches and
    // its batches grow through every class.
    std::vector<FingerprintFields> nearly_alike = alike;
    nearly_alike.back().kernel = 2;
    for (int rep = 0; rep < 3; ++rep) {
      for (const std::uint32_t target : {1u, 5u, 6u, 20u, 21u, 100u, 101u, 256u}) {
        for (const auto* fps : {&distinct, &alike, &nearly_alike}) {
          const auto batches = former.form(*fps, ordered, target);
          std::size_t tasks = 0;
          for (const Batch* b : batches) tasks += b->count;
          ASSERT_EQ(tasks, kChunk);
          former.recycle();
        }
      }
    }
  }
}

TEST(BatchFormer, OptionsOutOfRangeAreRefusedByName) {
  EXPECT_THROW(BatchFormer({Grouping::kSimilarity, 24, 0}, 64), std::invalid_argument);
  EXPECT_THROW(BatchFormer({Grouping::kSimilarity, 24, kMaxOpenBatches + 1}, 64),
               std::invalid_argument);
  EXPECT_THROW(BatchFormer({Grouping::kSimilarity, 24, 16}, kMaxChunkTasks + 1),
               std::invalid_argument);
}

}  // namespace
}  // namespace beat::batching
