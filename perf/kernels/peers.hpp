// The peers and bandwidth references of beat-kernels-bench: what a user
// would write instead of calling a Beat kernel, and what this machine's
// memory can move, measured in the same run.
//
// Bandwidth references (STREAM-like, McCalpin's "Copy", plus a read-only
// pass for the kernels that write nothing):
//   stream_copy  dst[i] = src[i] over u64 words: 2 x bytes moved by
//                STREAM's convention (read src, write dst). Ordinary
//                stores, as STREAM compiled by GCC uses: the write-allocate
//                read of dst is real traffic that the convention does not
//                count, so a kernel that also reads what it writes (saxpy)
//                can move more counted bytes per second than the copy.
//   stream_read  sum of the u64 words (a reduction the compiler
//                vectorizes): bytes read.
// Both are compiled for AVX-512, AVX2 and baseline x86-64 and pick the
// widest this CPU has (GCC target_clones), so that from L2 they are not
// held back by 16-byte SSE2 moves next to Highway's AVX-512 kernels; their
// file is compiled with -fno-tree-loop-distribute-patterns so that GCC
// does not turn the copy loop into a memcpy call (glibc's memcpy switches
// to non-temporal stores above ~3/4 of the L3, which would change what is
// measured with the size).
//
// Peers of the kernels (plain C++, one core):
//   crc32c_table        CRC-32C one byte at a time through a 256-entry
//                       table (Sarwate's algorithm): the textbook software
//                       CRC.
//   crc32c_instruction  the SSE4.2 crc32 instruction over 8-byte words, one
//                       dependency chain (3-cycle latency): what a user of
//                       _mm_crc32_u64 writes. nullopt when the CPU lacks
//                       SSE4.2.
//   histogram_naive     ++counts[byte] over one array of 256 u64 counters.
//
// Thread-safety: every function is reentrant; stream_copy_parallel starts
// and joins its own threads.
#pragma once

#include <sched.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace beat::perf::kernels {

// dst[i] = src[i]. REQUIRES: same sizes, disjoint.
void stream_copy(std::span<const std::uint64_t> src, std::span<std::uint64_t> dst) noexcept;

// The wrapping sum of the words (returned so the reads cannot be dropped).
std::uint64_t stream_read(std::span<const std::uint64_t> src) noexcept;

// stream_copy split into one contiguous part per CPU of `cpus`, each run by
// a thread pinned to its CPU; returns the seconds from releasing the
// threads (all pinned and waiting) to the last one finishing. Throws
// std::runtime_error when a thread cannot be pinned.
// REQUIRES: CPU_COUNT(&cpus) >= 1; same sizes, disjoint.
double stream_copy_parallel(std::span<const std::uint64_t> src, std::span<std::uint64_t> dst,
                            const cpu_set_t& cpus);

// CRC-32C (Castagnoli, reflected 0x82F63B78), standard conditioning:
// crc32c("123456789") == 0xE3069283, like the crc32c kernel with args[0] = 0.
std::uint32_t crc32c_table(std::span<const std::byte> data) noexcept;
std::optional<std::uint32_t> crc32c_instruction(std::span<const std::byte> data) noexcept;

// counts[b] = how many bytes of `data` equal b.
void histogram_naive(std::span<const std::byte> data,
                     std::span<std::uint64_t, 256> counts) noexcept;

// Pins the calling thread to `cpu`; false when sched_setaffinity fails
// (for threads that report it to their creator instead of throwing).
bool try_pin_to_cpu(int cpu) noexcept;
// Pins the calling thread to `cpu`. Throws std::runtime_error naming the
// CPU and errno when sched_setaffinity fails.
void pin_to_cpu(int cpu);

}  // namespace beat::perf::kernels
