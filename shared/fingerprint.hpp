// Task fingerprint: a 64-bit summary of what a task will do and touch, so
// that the daemon can group similar tasks into batches a worker runs back to
// back with warm caches (daemon/batching/). Defined here, once: the client
// library computes it when it publishes a descriptor whose fingerprint is 0
// (client/client.cpp), and the daemon recomputes every field it must not
// trust from the descriptor's validated fields (daemon/worker_pool.cpp).
//
// Layout, most significant bit first:
//
//   63        48 47      42 41                   18 17          0
//   | kernel id | size class |   arena region (page) | args hash  |
//       16 bits     6 bits           24 bits             18 bits
//
//   kernel id    TaskDescriptor::kernel_id, saturated at 0xFFFF.
//   size class   bit_width(data_length): 0 without data, 1 for one byte,
//                k for [2^(k-1), 2^k) bytes; at most 37 for a valid
//                range (kMaxArenaBytes), saturated at 63 for any other.
//   region       the 4 KiB arena page the data starts in (data_offset >>
//                12; kMaxArenaBytes / 4 KiB = 2^24 pages fit exactly); 0
//                without data.
//   args hash    the top 18 bits of XXH3-64 of the three inline argument
//                words (24 bytes, little-endian as stored).
//
// Which parts the daemon trusts: kernel id, size class and region come from
// fields it validates anyway, so it recomputes them. The args hash would cost
// a hash per task to recompute; a wrong one only changes how that client's
// own tasks are grouped (never what they compute or what memory they touch),
// so the daemon takes the client's bits as they are. A client may therefore
// put its own grouping key there (the low 18 bits) on purpose.
//
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

#include "shared/protocol.hpp"

namespace beat {

inline constexpr unsigned kFingerprintKernelShift = 48;
inline constexpr unsigned kFingerprintSizeShift = 42;
inline constexpr unsigned kFingerprintRegionShift = 18;
inline constexpr std::uint64_t kFingerprintKernelMask = 0xFFFF;
inline constexpr std::uint64_t kFingerprintSizeMask = 0x3F;
inline constexpr std::uint64_t kFingerprintRegionMask = 0xFF'FFFF;
inline constexpr std::uint64_t kFingerprintArgsMask = 0x3'FFFF;
// log2 of the region granularity: one 4 KiB page.
inline constexpr unsigned kFingerprintPageShift = 12;

static_assert((kMaxArenaBytes >> kFingerprintPageShift) - 1 <= kFingerprintRegionMask,
              "every arena page must have a region number of its own");
static_assert(std::bit_width(kMaxArenaBytes) <= kFingerprintSizeMask,
              "every data length must have a size class");

// A fingerprint's fields, unpacked (the daemon's structure-of-arrays rows).
struct FingerprintFields {
  std::uint32_t kernel;
  std::uint32_t size_class;
  std::uint32_t region;
  std::uint32_t args;

  friend bool operator==(const FingerprintFields&, const FingerprintFields&) = default;
};

// Whether every field fits its width (what fingerprint_fields and
// unpack_fingerprint produce; what the similarity kernels require).
constexpr bool fields_in_range(const FingerprintFields& f) noexcept {
  return f.kernel <= kFingerprintKernelMask && f.size_class <= kFingerprintSizeMask &&
         f.region <= kFingerprintRegionMask && f.args <= kFingerprintArgsMask;
}

constexpr std::uint64_t pack_fingerprint(const FingerprintFields& f) noexcept {
  return (std::uint64_t{f.kernel} & kFingerprintKernelMask) << kFingerprintKernelShift |
         (std::uint64_t{f.size_class} & kFingerprintSizeMask) << kFingerprintSizeShift |
         (std::uint64_t{f.region} & kFingerprintRegionMask) << kFingerprintRegionShift |
         (std::uint64_t{f.args} & kFingerprintArgsMask);
}

constexpr FingerprintFields unpack_fingerprint(std::uint64_t fp) noexcept {
  return {static_cast<std::uint32_t>(fp >> kFingerprintKernelShift & kFingerprintKernelMask),
          static_cast<std::uint32_t>(fp >> kFingerprintSizeShift & kFingerprintSizeMask),
          static_cast<std::uint32_t>(fp >> kFingerprintRegionShift & kFingerprintRegionMask),
          static_cast<std::uint32_t>(fp & kFingerprintArgsMask)};
}

// The fields that follow from a descriptor's kernel and data range, with
// `args` as given. REQUIRES (for a meaningful region): the range was
// validated (validate_descriptor); any values are safe to pass.
constexpr FingerprintFields fingerprint_fields(const TaskDescriptor& d,
                                               std::uint32_t args) noexcept {
  const bool data = (d.flags & kTaskFlagUsesData) != 0;
  const std::uint64_t length = data ? d.data_length : 0;
  const std::uint64_t page = data ? d.data_offset >> kFingerprintPageShift : 0;
  return {d.kernel_id > kFingerprintKernelMask ? static_cast<std::uint32_t>(kFingerprintKernelMask)
                                               : d.kernel_id,
          // Saturated: an unvalidated length may be up to 2^64 - 1 (bit width 64).
          static_cast<std::uint32_t>(
              std::min<int>(std::bit_width(length), static_cast<int>(kFingerprintSizeMask))),
          static_cast<std::uint32_t>(page > kFingerprintRegionMask ? kFingerprintRegionMask : page),
          args & static_cast<std::uint32_t>(kFingerprintArgsMask)};
}

// The args hash of a descriptor: top 18 bits of XXH3-64 over args[0..2].
std::uint32_t fingerprint_args_hash(const TaskDescriptor& d) noexcept;

// The whole fingerprint, as the client library computes it.
inline std::uint64_t make_fingerprint(const TaskDescriptor& d) noexcept {
  return pack_fingerprint(fingerprint_fields(d, fingerprint_args_hash(d)));
}

// The daemon's view of a task it has validated: kernel, size class and
// region recomputed, the args bits taken from the client's fingerprint
// (see the header comment). `corrected` is set when the client's other
// bits disagreed (a client bug, counted in STATS; 0 counts as "not set").
constexpr FingerprintFields daemon_fingerprint(const TaskDescriptor& d, bool& corrected) noexcept {
  const std::uint32_t args = static_cast<std::uint32_t>(d.fingerprint & kFingerprintArgsMask);
  const FingerprintFields f = fingerprint_fields(d, args);
  corrected = d.fingerprint != 0 && pack_fingerprint(f) != d.fingerprint;
  return f;
}

}  // namespace beat
