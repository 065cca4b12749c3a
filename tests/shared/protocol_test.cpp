// Unit tests of shared/protocol.hpp: wire struct layout and every branch of
// validate_descriptor, including the overflow and arena-boundary cases the
// daemon relies on when it trusts nothing a client wrote.
#include "shared/protocol.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>

namespace beat {
namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t kKernels = 3;
constexpr std::uint64_t kArena = 1 << 20;

TaskDescriptor with_data(std::uint64_t offset, std::uint64_t length) {
  TaskDescriptor d{};
  d.kernel_id = 0;
  d.flags = kTaskFlagUsesData;
  d.data_offset = offset;
  d.data_length = length;
  return d;
}

TEST(Protocol, WireStructLayout) {
  EXPECT_EQ(sizeof(TaskDescriptor), 64u);
  EXPECT_EQ(offsetof(TaskDescriptor, tag), 0u);
  EXPECT_EQ(offsetof(TaskDescriptor, kernel_id), 8u);
  EXPECT_EQ(offsetof(TaskDescriptor, flags), 12u);
  EXPECT_EQ(offsetof(TaskDescriptor, data_offset), 16u);
  EXPECT_EQ(offsetof(TaskDescriptor, data_length), 24u);
  EXPECT_EQ(offsetof(TaskDescriptor, args), 32u);
  EXPECT_EQ(offsetof(TaskDescriptor, fingerprint), 56u);
  EXPECT_EQ(sizeof(CompletionEntry), 32u);
  EXPECT_EQ(offsetof(CompletionEntry, status), 8u);
  EXPECT_EQ(offsetof(CompletionEntry, detail), 12u);
  EXPECT_EQ(offsetof(CompletionEntry, result), 16u);
  EXPECT_EQ(kKnownTaskFlags, 0x80000007u);
}

TEST(ValidateDescriptor, PlainTaskWithoutDataIsOk) {
  TaskDescriptor d{};
  d.kernel_id = kKernels - 1;
  d.args[0] = kU64Max;  // inline args are the kernel's business
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kOk);
}

TEST(ValidateDescriptor, UnknownFlagBitsAreInvalidFlags) {
  for (std::uint32_t bit = 0; bit < 32; ++bit) {
    TaskDescriptor d{};
    d.flags = 1u << bit;
    const bool known = (d.flags & kKnownTaskFlags) != 0;
    EXPECT_EQ(validate_descriptor(d, kKernels, kArena),
              known ? TaskStatus::kOk : TaskStatus::kInvalidFlags)
        << "flag bit " << bit;
  }
}

TEST(ValidateDescriptor, FlagsAreCheckedBeforeKernelAndRange) {
  TaskDescriptor d = with_data(kArena, 1);  // also a bad range
  d.flags |= 1u << 5;
  d.kernel_id = kKernels;  // also a bad kernel
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kInvalidFlags);
}

TEST(ValidateDescriptor, KernelIdMustBeBelowKernelCount) {
  TaskDescriptor d{};
  d.kernel_id = kKernels;
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kInvalidKernel);
  d.kernel_id = std::numeric_limits<std::uint32_t>::max();
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kInvalidKernel);
  d.kernel_id = 0;
  EXPECT_EQ(validate_descriptor(d, 0, kArena), TaskStatus::kInvalidKernel);
  EXPECT_EQ(validate_descriptor(d, 1, kArena), TaskStatus::kOk);
}

TEST(ValidateDescriptor, KernelIsCheckedBeforeRange) {
  TaskDescriptor d = with_data(kArena, 1);
  d.kernel_id = kKernels;
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kInvalidKernel);
}

TEST(ValidateDescriptor, DataFieldsWithoutUsesDataFlagAreInvalidFlags) {
  TaskDescriptor d{};
  d.data_offset = 1;
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kInvalidFlags);
  d.data_offset = 0;
  d.data_length = 1;
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kInvalidFlags);
  d.flags = kTaskFlagCancelled;
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kInvalidFlags);
}

TEST(ValidateDescriptor, RangesInsideTheArenaAreOk) {
  EXPECT_EQ(validate_descriptor(with_data(0, 0), kKernels, kArena), TaskStatus::kOk);
  EXPECT_EQ(validate_descriptor(with_data(0, kArena), kKernels, kArena), TaskStatus::kOk);
  EXPECT_EQ(validate_descriptor(with_data(kArena - 1, 1), kKernels, kArena), TaskStatus::kOk);
  EXPECT_EQ(validate_descriptor(with_data(kArena, 0), kKernels, kArena), TaskStatus::kOk);
  EXPECT_EQ(validate_descriptor(with_data(4096, 8192), kKernels, kArena), TaskStatus::kOk);
}

TEST(ValidateDescriptor, RangesCrossingTheArenaEndAreInvalidRange) {
  EXPECT_EQ(validate_descriptor(with_data(0, kArena + 1), kKernels, kArena),
            TaskStatus::kInvalidRange);
  EXPECT_EQ(validate_descriptor(with_data(kArena - 1, 2), kKernels, kArena),
            TaskStatus::kInvalidRange);
  EXPECT_EQ(validate_descriptor(with_data(kArena, 1), kKernels, kArena), TaskStatus::kInvalidRange);
  EXPECT_EQ(validate_descriptor(with_data(kArena + 1, 0), kKernels, kArena),
            TaskStatus::kInvalidRange);
}

TEST(ValidateDescriptor, OffsetPlusLengthOverflowIsInvalidRange) {
  // offset + length wraps to kArena - 2 (< kArena) if computed naively.
  EXPECT_EQ(validate_descriptor(with_data(kArena - 1, kU64Max), kKernels, kArena),
            TaskStatus::kInvalidRange);
  EXPECT_EQ(validate_descriptor(with_data(kU64Max, 1), kKernels, kArena),
            TaskStatus::kInvalidRange);
  EXPECT_EQ(validate_descriptor(with_data(1, kU64Max), kKernels, kArena),
            TaskStatus::kInvalidRange);
  EXPECT_EQ(validate_descriptor(with_data(kU64Max, kU64Max), kKernels, kArena),
            TaskStatus::kInvalidRange);
}

TEST(ValidateDescriptor, EmptyArenaAcceptsOnlyTheEmptyRangeAtZero) {
  EXPECT_EQ(validate_descriptor(with_data(0, 0), kKernels, 0), TaskStatus::kOk);
  EXPECT_EQ(validate_descriptor(with_data(0, 1), kKernels, 0), TaskStatus::kInvalidRange);
  EXPECT_EQ(validate_descriptor(with_data(1, 0), kKernels, 0), TaskStatus::kInvalidRange);
}

TEST(ValidateDescriptor, LargestArenaBoundaries) {
  EXPECT_EQ(validate_descriptor(with_data(0, kMaxArenaBytes), kKernels, kMaxArenaBytes),
            TaskStatus::kOk);
  EXPECT_EQ(validate_descriptor(with_data(kMaxArenaBytes - 1, 1), kKernels, kMaxArenaBytes),
            TaskStatus::kOk);
  EXPECT_EQ(validate_descriptor(with_data(kMaxArenaBytes - 1, 2), kKernels, kMaxArenaBytes),
            TaskStatus::kInvalidRange);
  EXPECT_EQ(validate_descriptor(with_data(kMaxArenaBytes - 1, kU64Max), kKernels, kMaxArenaBytes),
            TaskStatus::kInvalidRange);
  // arena_bytes itself may be anything the daemon passes, up to 2^64 - 1.
  EXPECT_EQ(validate_descriptor(with_data(kU64Max, 0), kKernels, kU64Max), TaskStatus::kOk);
  EXPECT_EQ(validate_descriptor(with_data(kU64Max, 1), kKernels, kU64Max),
            TaskStatus::kInvalidRange);
}

TEST(ValidateDescriptor, CancelledFlagIsStructurallyValid) {
  TaskDescriptor d{};
  d.flags = kTaskFlagCancelled;
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kOk);
  d.flags = kTaskFlagCancelled | kTaskFlagUsesData;
  d.data_length = 16;
  EXPECT_EQ(validate_descriptor(d, kKernels, kArena), TaskStatus::kOk);
}

TEST(ValidateDescriptor, IsUsableAtCompileTime) {
  constexpr TaskDescriptor bad{0, 0, kTaskFlagUsesData, kArena - 1, kU64Max, {0, 0, 0}, 0};
  static_assert(validate_descriptor(bad, kKernels, kArena) == TaskStatus::kInvalidRange);
  SUCCEED();
}

TEST(TaskStatus, ToStringNamesEveryStatus) {
  EXPECT_EQ(to_string(TaskStatus::kOk), "ok");
  EXPECT_EQ(to_string(TaskStatus::kKernelError), "kernel_error");
  EXPECT_EQ(to_string(TaskStatus::kInvalidKernel), "invalid_kernel");
  EXPECT_EQ(to_string(TaskStatus::kInvalidRange), "invalid_range");
  EXPECT_EQ(to_string(TaskStatus::kInvalidFlags), "invalid_flags");
  EXPECT_EQ(to_string(TaskStatus::kInvalidArgs), "invalid_args");
  EXPECT_EQ(to_string(TaskStatus::kDropped), "dropped");
  EXPECT_EQ(to_string(static_cast<TaskStatus>(99)), "unknown");
}

}  // namespace
}  // namespace beat
