// Beat wire protocol: the one place the daemon and its clients agree on
// constants, task descriptors and completion entries.
//
// Both sides compile this header; neither redefines any of it. Everything a
// client writes into shared memory is untrusted by the daemon: a descriptor
// is copied out once (copy_entry in ring.hpp) and validated
// (validate_descriptor below) before any field is used.
//
// Versioning: kProtocolVersion changes whenever a struct in shared/ changes
// size, layout or meaning, or a control reply changes format (3: KERNELS
// lines carry each kernel's origin; 4: kTaskFlagStamped, the segment's
// stamp per SQ slot and the client's arena_used_bytes). HELLO carries the client's version;
// the daemon refuses any other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace beat {

inline constexpr std::uint32_t kProtocolVersion = 4;

// "BEATSEG1" little-endian: the first word of every segment.
inline constexpr std::uint64_t kSegmentMagic = 0x3147455354414542ULL;

inline constexpr std::size_t kCacheLine = 64;

// Ring sizes are powers of two so that index -> slot is a mask, never a
// modulus (hot path). Bounds keep a segment's size sane whatever a client asks.
inline constexpr std::uint32_t kMinRingEntries = 8;
inline constexpr std::uint32_t kMaxRingEntries = 1u << 20;
inline constexpr std::uint64_t kMaxArenaBytes = 1ull << 36;  // 64 GiB

// ---------------------------------------------------------------------------
// Task descriptor: client -> daemon, one submission-ring slot.
// ---------------------------------------------------------------------------

// Flags a client may set. Any other bit is rejected with kInvalidFlags.
enum TaskFlags : std::uint32_t {
  kTaskFlagNone = 0,
  // The descriptor refers to arena data [data_offset, data_offset+data_length).
  // Without it data_offset/data_length must be zero.
  kTaskFlagUsesData = 1u << 0,
  // Ordered: this client's ordered tasks start and complete in submission
  // order, each after the previous one finished, and their completions
  // appear on the CQ in that order. Unordered tasks are grouped and
  // reordered freely (daemon/batching/). An ordered task at the head of the
  // SQ waits for the previous ordered one, and the tasks behind it wait too.
  kTaskFlagOrdered = 1u << 1,
  // Set by the client library, never by applications: the task is a
  // latency sample, and the stamp at its SQ index (segment_layout.hpp)
  // holds when it was published. The library marks the first task of a
  // submit call when the coarse clock has moved since its last sample, so
  // a client sends a few hundred samples a second at most, and every task
  // when it submits less often than that.
  kTaskFlagStamped = 1u << 2,
  // Written by a client thread that reserved slots after the daemon started
  // draining (see SegmentHeader::daemon_state): the slot carries no task and
  // produces no completion. Never set by applications.
  kTaskFlagCancelled = 1u << 31,
};
inline constexpr std::uint32_t kKnownTaskFlags =
    kTaskFlagUsesData | kTaskFlagOrdered | kTaskFlagStamped | kTaskFlagCancelled;

inline constexpr std::size_t kInlineArgs = 3;

struct TaskDescriptor {
  std::uint64_t tag;                // caller's cookie, echoed in the completion
  std::uint32_t kernel_id;          // from the daemon's kernel registry (KERNELS)
  std::uint32_t flags;              // TaskFlags
  std::uint64_t data_offset;        // byte offset into the client's arena
  std::uint64_t data_length;        // bytes
  std::uint64_t args[kInlineArgs];  // kernel-specific inline arguments
  std::uint64_t fingerprint;        // shared/fingerprint.hpp; 0: the client library fills it
};
static_assert(std::is_standard_layout_v<TaskDescriptor>);
static_assert(std::is_trivially_copyable_v<TaskDescriptor>);
static_assert(sizeof(TaskDescriptor) == 64, "a descriptor is exactly one cache line");

// ---------------------------------------------------------------------------
// Completion entry: daemon -> client, one completion-ring slot.
// ---------------------------------------------------------------------------

enum class TaskStatus : std::uint32_t {
  kOk = 0,
  kKernelError = 1,    // the kernel ran and reported failure; `detail` is its code
  kInvalidKernel = 2,  // kernel_id is not registered
  kInvalidRange = 3,   // data range outside the arena, or overflowing
  kInvalidFlags = 4,   // unknown flag bits, or data fields without kTaskFlagUsesData
  kInvalidArgs = 5,    // the kernel refused its inline arguments; `detail` names which
  kDropped = 6,        // the client's session ended before the task ran
};

struct CompletionEntry {
  std::uint64_t tag;     // TaskDescriptor::tag
  std::uint32_t status;  // TaskStatus
  std::uint32_t detail;  // reason code: argument index, kernel error code, ...
  std::uint64_t result;  // kernel's 64-bit result word (0 on error)
  // Ring index of this entry + 1 (as a 64-bit value), stored last with
  // release (ring rule 5): a consumer may poll the next slot's seq instead of
  // cq.tail, so a completion crosses cores as one cache line, not two (the
  // phase tag of NVMe completion queues). Lap-unique: the slot's previous
  // entry carries index - entries + 1.
  std::uint64_t seq;
};
static_assert(offsetof(CompletionEntry, seq) % sizeof(std::uint64_t) == 0,
              "seq is accessed through std::atomic_ref<uint64_t>");
static_assert(std::is_standard_layout_v<CompletionEntry>);
static_assert(std::is_trivially_copyable_v<CompletionEntry>);
static_assert(sizeof(CompletionEntry) == 32, "two completions per cache line");

constexpr std::string_view to_string(TaskStatus s) noexcept {
  switch (s) {
    case TaskStatus::kOk: return "ok";
    case TaskStatus::kKernelError: return "kernel_error";
    case TaskStatus::kInvalidKernel: return "invalid_kernel";
    case TaskStatus::kInvalidRange: return "invalid_range";
    case TaskStatus::kInvalidFlags: return "invalid_flags";
    case TaskStatus::kInvalidArgs: return "invalid_args";
    case TaskStatus::kDropped: return "dropped";
  }
  return "unknown";
}

// Structural validation of a descriptor the daemon has already copied out of
// shared memory. Kernel-specific argument checks happen in the kernel.
// Returns kOk or the reason the task must fail; never reads shared memory.
constexpr TaskStatus validate_descriptor(const TaskDescriptor& d, std::uint32_t kernel_count,
                                         std::uint64_t arena_bytes) noexcept {
  if ((d.flags & ~kKnownTaskFlags) != 0) return TaskStatus::kInvalidFlags;
  if (d.kernel_id >= kernel_count) return TaskStatus::kInvalidKernel;
  if ((d.flags & kTaskFlagUsesData) != 0) {
    // Written so that offset + length cannot overflow.
    if (d.data_offset > arena_bytes || d.data_length > arena_bytes - d.data_offset)
      return TaskStatus::kInvalidRange;
  } else if (d.data_offset != 0 || d.data_length != 0) {
    return TaskStatus::kInvalidFlags;
  }
  return TaskStatus::kOk;
}

}  // namespace beat
