// Layout of one client's shared-memory segment.
//
//   [0, 4 KiB)            SegmentHeader: identity, ring indices, doorbells
//   [sq_offset, ...)      sq_entries x TaskDescriptor   (client -> daemon)
//   [sq_stamp_offset, ...) sq_entries x uint64, parallel to the SQ slots:
//                         CLOCK_MONOTONIC ns at which the client published
//                         the task in the same slot, read only for tasks
//                         flagged kTaskFlagStamped (client -> daemon; the
//                         latency metric's samples)
//   [cq_offset, ...)      cq_entries x CompletionEntry  (daemon -> client)
//   [arena_offset, ...)   arena_bytes of client data, page aligned
//
// The daemon creates the segment (owner-only permissions, owned by the
// daemon's user), writes the identity fields, and hands the descriptor to the
// client over the control socket (SCM_RIGHTS). Identity fields are immutable
// afterwards; the daemon keeps its own copy of them and never rereads them
// from the segment (the client can write anywhere in it).
//
// Who writes what (everything else is read-only for the other side):
//   client: sq.reserve, sq.tail, SQ slots, SQ stamps, sq_bell.seq,
//           sq_space.needs_wakeup, cq.head, cq_bell.needs_wakeup, cq_space.seq,
//           arena_used_bytes, arena
//   daemon: sq.head, sq_bell.needs_wakeup, sq_space.seq, cq.tail, CQ slots,
//           cq_bell.seq, cq_space.needs_wakeup, daemon_state
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "shared/doorbell.hpp"
#include "shared/protocol.hpp"
#include "shared/ring.hpp"

namespace beat {

inline constexpr std::size_t kSegmentHeaderBytes = 4096;

inline constexpr std::size_t kPageBytes = 4096;

enum class DaemonState : std::uint32_t {
  kRunning = 0,
  // The daemon stopped accepting tasks (SIGTERM). A client that reserved SQ
  // slots and then sees this state cancels them (kTaskFlagCancelled) and
  // reports "shutting down"; tasks committed before it are still run.
  kDraining = 1,
};

struct SegmentHeader {
  // ---- identity: written once by the daemon before the client maps it ----
  std::uint64_t magic;         // kSegmentMagic
  std::uint32_t version;       // kProtocolVersion
  std::uint32_t header_bytes;  // kSegmentHeaderBytes
  std::uint32_t sq_entries;    // power of two
  std::uint32_t cq_entries;    // power of two
  std::uint64_t sq_offset;
  std::uint64_t cq_offset;
  std::uint64_t arena_offset;
  std::uint64_t arena_bytes;
  std::uint64_t total_bytes;
  std::uint64_t daemon_instance;  // random per daemon start
  std::uint32_t client_id;        // daemon-assigned, unique per daemon run
  std::uint32_t reserved0_;

  // ---- submission ring ----
  alignas(kCacheLine) RingIndices sq;
  // needs_wakeup: daemon sets it when workers park; seq: client bumps it.
  Doorbell sq_bell;
  // needs_wakeup: a client submitter waiting for space sets it; seq: daemon
  // bumps it after advancing sq.head.
  Doorbell sq_space;

  // ---- completion ring ---- (cq.reserve unused: the daemon keeps its own)
  RingIndices cq;
  // needs_wakeup: a client thread waiting for completions sets it; seq:
  // daemon bumps it after advancing cq.tail.
  Doorbell cq_bell;
  // needs_wakeup: the daemon sets it when it stopped taking this client's
  // tasks because the CQ has no room for their completions; seq: the client
  // bumps it after advancing cq.head, so a parked worker resumes intake.
  Doorbell cq_space;

  // ---- lifecycle ----
  alignas(kCacheLine) std::atomic<std::uint32_t> daemon_state;  // DaemonState; daemon writes

  // ---- client-reported figures, for metrics only (untrusted) ----
  // Bytes of the arena the client library's allocator has handed out.
  // Relaxed stores by the client; the daemon clamps it to arena_bytes.
  alignas(kCacheLine) std::atomic<std::uint64_t> arena_used_bytes;
};
static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(sizeof(SegmentHeader) <= kSegmentHeaderBytes);
static_assert(offsetof(SegmentHeader, sq) % kCacheLine == 0);
static_assert(offsetof(SegmentHeader, sq_bell) - offsetof(SegmentHeader, sq) == 3 * kCacheLine);
static_assert(offsetof(SegmentHeader, cq) % kCacheLine == 0);
static_assert(offsetof(SegmentHeader, daemon_state) % kCacheLine == 0);
static_assert(offsetof(SegmentHeader, arena_used_bytes) % kCacheLine == 0);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// Sizes a client asks for (HELLO) and the daemon clamps to its limits.
struct SegmentRequest {
  std::uint32_t sq_entries = 4096;
  std::uint32_t cq_entries = 8192;
  std::uint64_t arena_bytes = 16ull << 20;
};

// Offsets computed from a request; identical on both sides.
struct SegmentLayout {
  std::uint32_t sq_entries = 0;
  std::uint32_t cq_entries = 0;
  std::uint64_t sq_offset = 0;
  std::uint64_t sq_stamp_offset = 0;  // right after the SQ slots; not in the header
  std::uint64_t cq_offset = 0;
  std::uint64_t arena_offset = 0;
  std::uint64_t arena_bytes = 0;
  std::uint64_t total_bytes = 0;
};

constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) noexcept {
  return (v + a - 1) & ~(a - 1);
}

// Returns nullopt when entries are not powers of two within
// [kMinRingEntries, kMaxRingEntries] or the arena exceeds kMaxArenaBytes.
constexpr std::optional<SegmentLayout> compute_layout(std::uint32_t sq_entries,
                                                      std::uint32_t cq_entries,
                                                      std::uint64_t arena_bytes) noexcept {
  if (!is_power_of_two(sq_entries) || sq_entries < kMinRingEntries || sq_entries > kMaxRingEntries)
    return std::nullopt;
  if (!is_power_of_two(cq_entries) || cq_entries < kMinRingEntries || cq_entries > kMaxRingEntries)
    return std::nullopt;
  if (arena_bytes > kMaxArenaBytes) return std::nullopt;
  SegmentLayout l;
  l.sq_entries = sq_entries;
  l.cq_entries = cq_entries;
  l.sq_offset = kSegmentHeaderBytes;
  l.sq_stamp_offset = l.sq_offset + std::uint64_t{sq_entries} * sizeof(TaskDescriptor);
  l.cq_offset =
      align_up(l.sq_stamp_offset + std::uint64_t{sq_entries} * sizeof(std::uint64_t), kPageBytes);
  l.arena_offset =
      align_up(l.cq_offset + std::uint64_t{cq_entries} * sizeof(CompletionEntry), kPageBytes);
  l.arena_bytes = align_up(arena_bytes, kPageBytes);
  l.total_bytes = l.arena_offset + l.arena_bytes;
  return l;
}

// A mapped segment, as seen by either side: typed pointers into one mapping.
// Does not own the mapping.
struct SegmentView {
  SegmentHeader* header = nullptr;
  TaskDescriptor* sq_slots = nullptr;
  std::uint64_t* sq_stamps = nullptr;  // sq_entries submit stamps, parallel to sq_slots
  CompletionEntry* cq_slots = nullptr;
  std::byte* arena = nullptr;
  SegmentLayout layout{};

  static SegmentView over(void* base, const SegmentLayout& l) noexcept {
    auto* b = static_cast<std::byte*>(base);
    SegmentView v;
    v.header = reinterpret_cast<SegmentHeader*>(b);
    v.sq_slots = reinterpret_cast<TaskDescriptor*>(b + l.sq_offset);
    v.sq_stamps = reinterpret_cast<std::uint64_t*>(b + l.sq_stamp_offset);
    v.cq_slots = reinterpret_cast<CompletionEntry*>(b + l.cq_offset);
    v.arena = b + l.arena_offset;
    v.layout = l;
    return v;
  }
};

// Client side: checks a freshly mapped header against the layout the daemon
// announced in HELLO_OK. Returns an empty string when consistent, else what
// differs.
std::string check_header(const SegmentHeader& h, const SegmentLayout& expected);

// Daemon side: writes the identity fields and zeroes every index.
void initialize_header(SegmentHeader& h, const SegmentLayout& l, std::uint64_t daemon_instance,
                       std::uint32_t client_id) noexcept;

}  // namespace beat
