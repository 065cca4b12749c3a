// The f32 matrix-multiply tile kernel, on client data:
//
//   matmul_f32  C = A B, row-major f32, contiguous. data range = A (m x k);
//               args[0] = arena offset of B (k x n); args[1] = arena offset
//               of C (m x n, overwritten); args[2] = k | n << 32. k or n of
//               0: invalid_args(2). A not a whole number of aligned rows of
//               k floats: invalid_range(kDataRangeDetail); m = its rows (0
//               is allowed: nothing to do). B outside the arena or
//               misaligned: invalid_range(0). C outside the arena,
//               misaligned, or overlapping A or B: invalid_range(1).
//               Result = m. Cancellable (kDropped) between chunks of work.
//
// The engine (matmul_tile.hpp) is compiled once per Highway target
// (foreach_target.h re-includes this file) and chosen at run time
// (HWY_DYNAMIC_DISPATCH). Highway rules followed (libhwy 1.0.3):
// foreach_target.h in this .cc only, no namespace-scope or static vector
// values, no -m flags.
//
// Blocking (Goto & van de Geijn, "Anatomy of high-performance matrix
// multiplication", TOMS 2008; BLIS's loop order), for one tile of C of at
// most kTileRows x kTileCols, over k in panels of depth kc:
//   1. pack the tile's A block (rows x kc) into micro-panels of kMr rows,
//      interleaved by k (the micro-kernel reads kMr floats per step, in
//      order), zero-padded to whole micro-panels;
//   2. pack the B panel (kc x cols) into slivers of nr = kNv vectors,
//      zero-padded to whole slivers (the micro-kernel loads whole
//      vectors, aligned);
//   3. for each sliver, for each micro-panel: the micro-kernel keeps
//      kMr x kNv accumulators in registers over the kc steps (per step:
//      kNv loads, kMr broadcasts, kMr * kNv FMAs), then adds them to C
//      (or stores them, for the first panel of k).
// Sizes: the B sliver (kc x nr floats) is reused by every micro-panel of
// the tile and should stay in L1: kc = kL1SliverBytes / (nr * 4), at most
// kKcMax = 256 (AVX-512: 128; AVX2: 256; narrower: 256, capped), so the
// sliver takes at most 16 KiB, half of a 32 KiB L1d, leaving room for the
// A stream and C's lines. (On the development VM, 48 KiB L1d, a 32 KiB
// sliver measured the same, within noise.) The A block (at most 96 x 256
// floats = 96 KiB) is re-read for every sliver and stays in L2 (>= 512
// KiB on current x86 servers), as does the B panel (<= 256 KiB) the
// packing just wrote. Packing costs kc * (rows +
// cols) copies per kc * rows * cols FMAs: about 1.4 % for a full tile.
//
// Registers: kMr rows x kNv = 2 vectors of B. 16-register targets (AVX2,
// SSE4, ...): 6 x 2 = 12 accumulators + 2 B vectors + 1 broadcast = 15
// (BLIS's Haswell 6 x 16 kernel). 32-register targets (AVX-512, NEON):
// 12 x 2 = 24 + 2 + 1 = 27.
//
// Sizeless vector targets (SVE, RVV) are not compiled here: the
// accumulators are an array of vectors, which sizeless types cannot form.
// Those CPUs run the NEON (resp. scalar) code. The dispatch index is
// computed against this file's target list (hwy/targets.h, GetIndex), so
// leaving targets out of one file is safe.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_tile.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must follow foreach_target.h.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"
#include "kernels/matmul_tile.hpp"

// Declarations every target's code shares: this part is read once, though
// foreach_target.h includes the file once per target.
#ifndef BEAT_KERNELS_MATMUL_TILE_CC_SHARED_
#define BEAT_KERNELS_MATMUL_TILE_CC_SHARED_
namespace beat::matmul_tile::detail {

// One call of a target's TileImpl: C[row0, row0+rows) x [col0, col0+cols)
// over k in [p_begin, p_end), added to C unless p_begin == 0 (then
// stored). REQUIRES: rows <= kTileRows, cols <= kTileCols, the ranges
// inside the matrices, p_begin < p_end <= k.
struct TileJob {
  const float* a;
  const float* b;
  float* c;
  std::uint64_t k, n;
  std::uint64_t row0, rows;
  std::uint64_t col0, cols;
  std::uint64_t p_begin, p_end;
};

// The calling thread's packing workspace, grown to at least `floats`
// floats aligned to HWY_ALIGNMENT; null when that allocation failed.
float* workspace(std::size_t floats) noexcept;

}  // namespace beat::matmul_tile::detail
#endif  // BEAT_KERNELS_MATMUL_TILE_CC_SHARED_

HWY_BEFORE_NAMESPACE();
namespace beat::matmul_tile {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM_A64
constexpr std::size_t kMr = 12;  // 32 vector registers
#else
constexpr std::size_t kMr = 6;  // 16 vector registers
#endif
constexpr std::size_t kNv = 2;
static_assert(kTileRows % kMr == 0, "a full tile is whole micro-panels");

constexpr std::size_t kL1SliverBytes = 16 * 1024;
constexpr std::size_t kKcMax = 256;
static_assert(kChunkDepth % kKcMax == 0, "chunks must not cut a panel short");

// Panel depth for slivers of `nr` floats (nr is a power of two on every
// compiled target, so kc is one too and divides kKcMax).
constexpr std::size_t panel_depth(std::size_t nr) noexcept {
  return std::min(kKcMax, kL1SliverBytes / (nr * sizeof(float)));
}

constexpr std::size_t round_up(std::size_t x, std::size_t to) noexcept {
  return (x + to - 1) / to * to;
}

// Packs A[rows, kc) at `a` (leading dimension lda) into micro-panels:
// element (r, p) of micro-panel q at ap[q * kc * kMr + p * kMr + r].
// Rows past `rows` up to a whole micro-panel are zeros.
void pack_a(const float* HWY_RESTRICT a, std::size_t lda, std::size_t rows, std::size_t kc,
            float* HWY_RESTRICT ap) {
  for (std::size_t q = 0; q * kMr < rows; ++q) {
    float* panel = ap + q * kc * kMr;
    for (std::size_t r = 0; r < kMr; ++r) {
      const std::size_t row = q * kMr + r;
      if (row < rows) {
        const float* src = a + row * lda;
        for (std::size_t p = 0; p < kc; ++p) panel[p * kMr + r] = src[p];
      } else {
        for (std::size_t p = 0; p < kc; ++p) panel[p * kMr + r] = 0.0f;
      }
    }
  }
}

// Packs B[kc, cols) at `b` (leading dimension ldb) into slivers of nr
// columns: element (p, j) of sliver s at bp[s * kc * nr + p * nr + j].
// Columns past `cols` up to a whole sliver are zeros.
template <class D>
void pack_b(D d, const float* HWY_RESTRICT b, std::size_t ldb, std::size_t kc, std::size_t cols,
            float* HWY_RESTRICT bp) {
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t nr = kNv * lanes;
  const std::size_t full = cols / nr * nr;
  for (std::size_t p = 0; p < kc; ++p) {
    const float* src = b + p * ldb;
    std::size_t j = 0;
    for (; j < full; j += nr) {
      float* dst = bp + (j / nr) * kc * nr + p * nr;
      for (std::size_t v = 0; v < kNv; ++v)
        hn::Store(hn::LoadU(d, src + j + v * lanes), d, dst + v * lanes);
    }
    if (j < cols) {
      float* dst = bp + (j / nr) * kc * nr + p * nr;
      for (std::size_t t = 0; t < nr; ++t) dst[t] = j + t < cols ? src[j + t] : 0.0f;
    }
  }
}

// C[rows, cols) at `c` (leading dimension ldc) = (overwrite ? 0 : C) +
// the product of one packed micro-panel of A and one packed sliver of B
// over kc steps. REQUIRES: rows <= kMr, cols <= kNv * Lanes(d); ap and bp
// aligned to the vector size.
// Not inlined: inlined into TileImpl, GCC 12 kept one of AVX-512's 24
// accumulators on the stack (a load and a store per step); on its own
// every accumulator stays in a register. One call per kc steps.
template <class D>
HWY_NOINLINE void micro_kernel(D d, const float* HWY_RESTRICT ap, const float* HWY_RESTRICT bp,
                               std::size_t kc, float* c, std::size_t ldc, std::size_t rows,
                               std::size_t cols, bool overwrite) {
  using V = hn::Vec<D>;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t nr = kNv * lanes;
  V acc[kMr][kNv];
  for (std::size_t r = 0; r < kMr; ++r) {
    for (std::size_t v = 0; v < kNv; ++v) acc[r][v] = hn::Zero(d);
  }
  for (std::size_t p = 0; p < kc; ++p, ap += kMr, bp += nr) {
    V bv[kNv];
    for (std::size_t v = 0; v < kNv; ++v) bv[v] = hn::Load(d, bp + v * lanes);
    for (std::size_t r = 0; r < kMr; ++r) {
      const V av = hn::Set(d, ap[r]);
      for (std::size_t v = 0; v < kNv; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
  }
  if (rows == kMr && cols == nr) {
    for (std::size_t r = 0; r < kMr; ++r) {
      for (std::size_t v = 0; v < kNv; ++v) {
        float* dst = c + r * ldc + v * lanes;
        hn::StoreU(overwrite ? acc[r][v] : hn::Add(hn::LoadU(d, dst), acc[r][v]), d, dst);
      }
    }
    return;
  }
  // An edge of C: only [rows, cols) exist. Through a buffer, with the same
  // one rounding per element as the vector path (a masked store would read
  // and write past the edge on targets without one).
  HWY_ALIGN float part[kMr * kNv * HWY_MAX_BYTES / sizeof(float)];
  for (std::size_t r = 0; r < kMr; ++r) {
    for (std::size_t v = 0; v < kNv; ++v) hn::Store(acc[r][v], d, part + r * nr + v * lanes);
  }
  for (std::size_t r = 0; r < rows; ++r) {
    float* dst = c + r * ldc;
    const float* src = part + r * nr;
    for (std::size_t j = 0; j < cols; ++j) dst[j] = overwrite ? src[j] : dst[j] + src[j];
  }
}

bool TileImpl(const detail::TileJob* job) {
  const hn::ScalableTag<float> d;
  const std::size_t nr = kNv * hn::Lanes(d);
  const std::size_t kc_max = panel_depth(nr);
  // Room for a full tile on this target, so that the workspace is
  // allocated once per thread whatever the first tile's size.
  constexpr std::size_t kAlignFloats = HWY_ALIGNMENT / sizeof(float);
  const std::size_t a_floats = round_up(round_up(kTileRows, kMr) * kc_max, kAlignFloats);
  const std::size_t b_floats = round_up(kTileCols, nr) * kc_max;
  float* const ap = detail::workspace(a_floats + b_floats);
  if (ap == nullptr) return false;
  float* const bp = ap + a_floats;

  const std::size_t k = job->k, n = job->n, rows = job->rows, cols = job->cols;
  const float* const a = job->a + job->row0 * k;
  const float* const b = job->b + job->col0;
  float* const c = job->c + job->row0 * n + job->col0;
  for (std::size_t pc = job->p_begin; pc < job->p_end; pc += kc_max) {
    const std::size_t kc = std::min(kc_max, static_cast<std::size_t>(job->p_end) - pc);
    const bool overwrite = pc == 0;
    pack_a(a + pc, k, rows, kc, ap);
    pack_b(d, b + pc * n, n, kc, cols, bp);
    for (std::size_t j = 0; j < cols; j += nr) {
      const float* sliver = bp + (j / nr) * kc * nr;
      for (std::size_t i = 0; i < rows; i += kMr) {
        micro_kernel(d, ap + (i / kMr) * kc * kMr, sliver, kc, c + i * n + j, n,
                     std::min(kMr, rows - i), std::min(nr, cols - j), overwrite);
      }
    }
  }
  return true;
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace beat::matmul_tile
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <atomic>

#include "kernels/kernel_args.hpp"
#include "kernels/kernel_registry.hpp"

namespace beat::matmul_tile {

HWY_EXPORT(TileImpl);
HWY_EXPORT(TargetNameImpl);

namespace detail {

float* workspace(std::size_t floats) noexcept {
  // Per thread, so workers never share one; a call of TileImpl packs and
  // reads it without forking or running anything else in between, so a
  // worker that runs another task while waiting at a join (kernel.hpp)
  // never does so in the middle of a use. Allocated on the thread's first
  // tile, not per call: the steady-state path does not allocate.
  struct Workspace {
    hwy::AlignedFreeUniquePtr<float[]> data;
    std::size_t capacity = 0;
  };
  thread_local Workspace ws;
  if (ws.capacity < floats) {
    ws.data = hwy::AllocateAligned<float>(floats);
    ws.capacity = ws.data ? floats : 0;
  }
  return ws.data.get();
}

}  // namespace detail

namespace {

// The matrices of one product; a tile index t names C's tile (t /
// tiles_n, t % tiles_n).
struct Problem {
  const float* a;
  const float* b;
  float* c;
  std::uint64_t m, k, n;

  std::uint64_t tiles_m() const noexcept { return (m + kTileRows - 1) / kTileRows; }
  std::uint64_t tiles_n() const noexcept { return (n + kTileCols - 1) / kTileCols; }
};

enum class TileOutcome { kDone, kStopped, kNoWorkspace };

// Computes tile t over all of k, chunk by chunk, calling stop() before
// each chunk. The kernel and blocked() both go through here, so they cut
// the work, and round, the same way. REQUIRES: p.k > 0.
template <class Stop>
TileOutcome run_tile(const Problem& p, std::uint64_t t, Stop&& stop) {
  const std::uint64_t row0 = t / p.tiles_n() * kTileRows;
  const std::uint64_t col0 = t % p.tiles_n() * kTileCols;
  detail::TileJob job{.a = p.a,
                      .b = p.b,
                      .c = p.c,
                      .k = p.k,
                      .n = p.n,
                      .row0 = row0,
                      .rows = std::min(kTileRows, p.m - row0),
                      .col0 = col0,
                      .cols = std::min(kTileCols, p.n - col0),
                      .p_begin = 0,
                      .p_end = 0};
  for (std::uint64_t p0 = 0; p0 < p.k; p0 += kChunkDepth) {
    if (stop()) return TileOutcome::kStopped;
    job.p_begin = p0;
    job.p_end = std::min(p.k, p0 + kChunkDepth);
    if (!HWY_DYNAMIC_DISPATCH(TileImpl)(&job)) return TileOutcome::kNoWorkspace;
  }
  return TileOutcome::kDone;
}

// A parallel leaf should be worth far more than a steal (a few us): 2^21
// FMAs are 30-200 us on one core (blocked() measured on the development
// VM, one core, n = 256: about 120, 75 and 24 GFLOP/s on AVX3, AVX2 and
// SSE4), so a leaf costs the scheduler a few % at most. Leaves are whole tiles; smaller problems
// stay on one worker (parallel_for does not split fewer than 2 * grain tiles).
constexpr std::uint64_t kLeafMinFmas = std::uint64_t{1} << 21;

KernelResult matmul_f32_kernel(TaskContext& ctx, KernelArgs args, ArenaView data) {
  const std::uint64_t k = args[2] & 0xFFFF'FFFFu;
  const std::uint64_t n = args[2] >> 32;
  if (k == 0 || n == 0) return KernelResult::invalid_args(2);
  const auto a = data_array<const float>(data);
  if (!a || a->size() % k != 0) return invalid_range(kDataRangeDetail);
  const std::uint64_t m = a->size() / k;
  // k and n are below 2^32: k * n cannot overflow.
  const auto b = arena_array<const float>(ctx, args[0], k * n);
  if (!b) return invalid_range(0);
  // m * n could overflow for a large m (k == 1) and n: compare n with what
  // the arena can hold per row first.
  if (m != 0 && n > ctx.arena().size / sizeof(float) / m) return invalid_range(1);
  const auto c = arena_array<float>(ctx, args[1], m * n);
  if (!c || overlaps(*c, *a) || overlaps(*c, *b)) return invalid_range(1);
  if (m == 0) return KernelResult::ok(0);

  const Problem p{a->data(), b->data(), c->data(), m, k, n};
  // At most 96 * 256 * 2^32 < 2^47: no overflow.
  const std::uint64_t tile_fmas = std::min(m, kTileRows) * std::min(n, kTileCols) * k;
  const std::uint64_t grain = (kLeafMinFmas + tile_fmas - 1) / tile_fmas;
  // Relaxed: set by leaves, read after parallel_for returned, which orders
  // every leaf before it.
  std::atomic<bool> no_workspace{false};
  ctx.parallel_for(0, p.tiles_m() * p.tiles_n(), grain, [&](auto& leaf, std::uint64_t t) {
    if (run_tile(p, t, [&leaf] { return leaf.cancelled(); }) == TileOutcome::kNoWorkspace)
      no_workspace.store(true, std::memory_order_relaxed);
  });
  // cancelled() never goes back to false: a leaf that stopped early left
  // it true.
  if (ctx.cancelled()) return KernelResult::cancelled();
  if (no_workspace.load(std::memory_order_relaxed)) return KernelResult::error(kOutOfMemory);
  return KernelResult::ok(m);
}

}  // namespace

bool blocked(const float* a, const float* b, float* c, std::uint64_t m, std::uint64_t k,
             std::uint64_t n) noexcept {
  if (m == 0 || n == 0) return true;
  if (k == 0) {
    std::fill(c, c + m * n, 0.0f);
    return true;
  }
  const Problem p{a, b, c, m, k, n};
  const std::uint64_t tiles = p.tiles_m() * p.tiles_n();
  for (std::uint64_t t = 0; t < tiles; ++t) {
    if (run_tile(p, t, [] { return false; }) != TileOutcome::kDone) return false;
  }
  return true;
}

void naive(const float* a, const float* b, float* c, std::uint64_t m, std::uint64_t k,
           std::uint64_t n) noexcept {
  for (std::uint64_t i = 0; i < m; ++i) {
    for (std::uint64_t j = 0; j < n; ++j) {
      float sum = 0.0f;
      for (std::uint64_t p = 0; p < k; ++p) sum += a[i * k + p] * b[p * n + j];
      c[i * n + j] = sum;
    }
  }
}

const char* simd_target_name() noexcept { return HWY_DYNAMIC_DISPATCH(TargetNameImpl)(); }

}  // namespace beat::matmul_tile

namespace beat {

void register_matmul_tile_kernels(KernelRegistry& registry) {
  add_builtin(registry, "matmul_f32",
              "C = A B, f32 row-major: data = A (m x k), args[0] = B offset, "
              "args[1] = C offset, args[2] = k | n << 32; returns m",
              matmul_tile::matmul_f32_kernel);
}

}  // namespace beat
#endif  // HWY_ONCE
