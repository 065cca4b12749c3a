// The engine of the matmul_f32 kernel (kernels/matmul_tile.cc), over raw
// pointers, for the kernel and for benchmarks that compare it on one core
// with its peers: `naive` (the obvious triple loop) and OpenBLAS sgemm.
//
// Matrices are row-major f32, contiguous (leading dimension = columns):
// A is m x k, B is k x n, C is m x n. C = A B.
//
// Blocking (matmul_tile.cc has the reasons for each size): C is cut into
// tiles of kTileRows x kTileCols; a tile is one unit of work (the kernel's
// parallel leaf), computed over k in chunks of kChunkDepth (the kernel
// checks cancellation between chunks), each chunk in panels of depth kc
// (Highway target-dependent, at most 256) whose A block and B panel are
// packed into the calling thread's workspace, then multiplied by a SIMD
// register-blocked micro-kernel. Every C element is summed in the same
// order (k ascending, one partial sum per panel added to C) whatever the
// tile's place in the work, so the kernel gives the same bits serially and
// on any number of workers; the order depends on the Highway target only.
//
// Thread-safety: the functions are reentrant between threads. Each thread
// packs into its own workspace, allocated on its first call (about 0.4 MiB,
// kept until the thread exits); a call uses it from start to end without
// running anything else, so two calls never share it.
#pragma once

#include <cstdint>

namespace beat::matmul_tile {

// Rows and columns of C per tile. Multiples of every target's micro-kernel
// rows (6 or 12) and columns (2 vectors: 2 to 128 floats).
inline constexpr std::uint64_t kTileRows = 96;
inline constexpr std::uint64_t kTileCols = 256;
// Depth of k between two cancellation checks in the kernel (a multiple of
// every target's panel depth, so chunks never cut a panel short). A full
// 96 x 256 tile over 4096 of k is 10^8 FMAs: 1-2 ms with AVX-512, up to
// ~8 ms with SSE4, the longest a cancelled tile keeps its worker.
inline constexpr std::uint64_t kChunkDepth = 4096;

// C = A B with the SIMD blocked form, serially on the calling thread, using
// the best Highway target of this CPU (runtime dispatch).
// REQUIRES: a holds m*k floats, b k*n, c m*n; c overlaps neither a nor b
// (a and b may overlap). k == 0 sets C to zeros.
// The inputs may change while it runs (client shared memory): C then holds
// wrong numbers, but no access leaves the three arrays.
// Returns false only when this thread's workspace could not be allocated;
// C's contents are then unspecified.
[[nodiscard]] bool blocked(const float* a, const float* b, float* c, std::uint64_t m,
                           std::uint64_t k, std::uint64_t n) noexcept;

// C = A B by the i-j-k triple loop, one float sum per element in k order:
// the baseline benchmarks compare against. Same REQUIREMENTS as blocked().
void naive(const float* a, const float* b, float* c, std::uint64_t m, std::uint64_t k,
           std::uint64_t n) noexcept;

// Highway's name of the target blocked() runs on ("AVX3", "AVX2", ...).
const char* simd_target_name() noexcept;

}  // namespace beat::matmul_tile
