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
#include <utility>
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

using Batches = std::vector<std::vector<std::uint16_t>>;

// The grouping rules of batch_former.hpp in the plainest code: a linear
// search with scalar distances, vectors of tasks, no templates, no early
// search, no memo and no uniform shortcut. BatchFormer must form exactly
// these batches in exactly this order.
Batches reference_form(const Chunk& c, std::uint32_t target, const BatchFormerOptions& options) {
  const std::uint32_t limit = std::clamp<std::uint32_t>(target, 1, kMaxBatchSize);
  Batches out;
  std::vector<std::uint16_t> ordered;
  if (options.grouping == Grouping::kFifo) {
    std::vector<std::uint16_t> b;
    for (std::size_t i = 0; i < c.fps.size(); ++i) {
      if (c.ordered[i] != 0) {
        ordered.push_back(static_cast<std::uint16_t>(i));
        continue;
      }
      b.push_back(static_cast<std::uint16_t>(i));
      if (b.size() == limit) out.push_back(std::exchange(b, {}));
    }
    if (!b.empty()) out.push_back(b);
  } else {
    struct Open {
      FingerprintFields rep;
      std::vector<std::uint16_t> tasks;
      std::uint32_t opened;
    };
    std::vector<Open> open;  // slot order as the former keeps it: swap-remove
    std::uint32_t opened = 0;
    auto dispatch = [&](std::size_t slot) {
      out.push_back(open[slot].tasks);
      open[slot] = open.back();
      open.pop_back();
    };
    auto oldest = [&] {
      std::size_t best = 0;
      for (std::size_t s = 1; s < open.size(); ++s)
        if (open[s].opened < open[best].opened) best = s;
      return best;
    };
    auto ease = [](std::uint32_t v, std::uint32_t to) {
      return to >= v ? v + (to - v) / 4 : v - (v - to) / 4;
    };
    for (std::size_t i = 0; i < c.fps.size(); ++i) {
      const auto task = static_cast<std::uint16_t>(i);
      if (c.ordered[i] != 0) {
        ordered.push_back(task);
        continue;
      }
      const FingerprintFields& f = c.fps[i];
      std::size_t best = open.size();
      std::uint32_t best_distance = 0;
      for (std::size_t s = 0; s < open.size(); ++s) {
        const std::uint32_t d = distance(f, open[s].rep);
        if (best == open.size() || d < best_distance) {
          best = s;
          best_distance = d;
        }
      }
      if (best < open.size() && best_distance <= options.threshold) {
        Open& b = open[best];
        b.tasks.push_back(task);
        const std::size_t n = b.tasks.size();
        if (n == limit) {
          dispatch(best);
        } else if (n == 4 || n == 16 || n == 64) {
          b.rep.size_class = ease(b.rep.size_class, f.size_class);
          b.rep.region = ease(b.rep.region, f.region);
        }
        continue;
      }
      if (open.size() == options.max_open) dispatch(oldest());
      if (limit == 1) {
        out.push_back({task});
        continue;
      }
      open.push_back({f, {task}, opened++});
    }
    while (!open.empty()) dispatch(oldest());
  }
  if (!ordered.empty()) out.push_back(ordered);
  return out;
}

// The batches as lists of task indices, in dispatch order.
Batches snapshot(std::span<Batch* const> batches) {
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

TEST(BatchFormer, FormsExactlyWhatThePlainRulesForm) {
  // Random streams with runs of repeated fingerprints (the memo), similar
  // neighbours (the early search), uniform stretches, ordered tasks, every
  // threshold from "nothing joins" to "any same-kernel task joins", and
  // every max_open, on both paths; one former reused across chunks.
  std::mt19937_64 rng(8086);
  for (const SimdPath path : {SimdPath::kScalar, SimdPath::kAuto}) {
    set_simd_path(path);
    for (int round = 0; round < 1500; ++round) {
      const BatchFormerOptions options{round % 5 == 0 ? Grouping::kFifo : Grouping::kSimilarity,
                                       static_cast<std::uint32_t>(rng() % 60),
                                       static_cast<std::uint32_t>(1 + rng() % 64)};
      BatchFormer former(options, 600);
      for (int chunk = 0; chunk < 3; ++chunk) {
        const auto n = static_cast<std::uint32_t>(1 + rng() % 600);
        const auto kinds = static_cast<std::uint32_t>(1 + rng() % 12);
        const bool uniform = rng() % 8 == 0;
        Chunk c;
        for (std::uint32_t i = 0; i < n; ++i) {
          FingerprintFields f;
          if (i > 0 && rng() % 3 == 0) {
            f = c.fps.back();
          } else if (uniform) {
            // Now and then one field off: nearly uniform chunks must search.
            const auto off = static_cast<std::uint32_t>(rng() % 64);
            f = {off == 0 ? 1u : 2u, off == 1 ? 12u : 9u, off == 2 ? 140u : 100u,
                 static_cast<std::uint32_t>(rng() % 3)};
          } else {
            const auto k = static_cast<std::uint32_t>(rng() % kinds);
            f = {k % 3, static_cast<std::uint32_t>(8 + rng() % 4),
                 static_cast<std::uint32_t>((k / 3) * 40 + rng() % 30),
                 static_cast<std::uint32_t>(rng() % 3)};
          }
          c.fps.push_back(f);
          c.ordered.push_back(rng() % 17 == 0 ? 1 : 0);
        }
        const auto target = static_cast<std::uint32_t>(1 + rng() % 300);
        const Batches got = snapshot(former.form(c.fps, c.ordered, target));
        former.recycle();
        ASSERT_EQ(got, reference_form(c, target, options))
            << "round " << round << ", chunk " << chunk << ", threshold " << options.threshold
            << ", max_open " << options.max_open << ", target " << target;
      }
    }
  }
  set_simd_path(SimdPath::kAuto);
}

TEST(BatchFormer, OpeningNumbersDoNotWrapOverAFormersLife) {
  // "Dispatch the oldest" compares opening numbers packed into 24 bits:
  // they must restart with every chunk. Chunks in which every task opens a
  // batch, 2^24 - 2,048 openings in all, then a chunk of 4,096 whose
  // openings would cross 2^24 halfway: it must come out as a fresh former
  // forms it.
  constexpr std::uint32_t kChunk = kMaxChunkTasks;
  const BatchFormerOptions options{Grouping::kSimilarity, 0, 16};
  BatchFormer used(options, kChunk);
  Chunk c;
  for (std::uint32_t i = 0; i < kChunk; ++i) {
    c.fps.push_back({i % 3, 0, i, 0});  // neighbours apart: every task opens a batch
    c.ordered.push_back(0);
  }
  const std::span<const FingerprintFields> half(c.fps.data(), kChunk / 2);
  used.form(half, std::span<const std::uint8_t>(c.ordered.data(), kChunk / 2), 8);
  used.recycle();
  for (std::uint32_t chunk = 1; chunk < (1u << 24) / kChunk; ++chunk) {
    used.form(c.fps, c.ordered, 8);
    used.recycle();
  }
  BatchFormer fresh(options, kChunk);
  EXPECT_EQ(snapshot(used.form(c.fps, c.ordered, 8)), snapshot(fresh.form(c.fps, c.ordered, 8)));
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
      if (b + 1 < runs) {
        ASSERT_EQ(uniform[b].size(), std::min(target, kMaxBatchSize)) << "round " << round;
      } else {
        ASSERT_GE(uniform[b].size(), 1u) << "round " << round;
        ASSERT_LE(uniform[b].size(), std::min(target, kMaxBatchSize)) << "round " << round;
      }
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
