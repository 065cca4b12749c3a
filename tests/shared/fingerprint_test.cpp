// shared/fingerprint.hpp: the layout of every field, saturation at the
// edges, the args hash, and what the daemon recomputes versus keeps.
#include "shared/fingerprint.hpp"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdint>

namespace beat {
namespace {

TaskDescriptor with_data(std::uint32_t kernel, std::uint64_t offset, std::uint64_t length) {
  TaskDescriptor d{};
  d.kernel_id = kernel;
  d.flags = kTaskFlagUsesData;
  d.data_offset = offset;
  d.data_length = length;
  return d;
}

TEST(Fingerprint, FieldsLandWhereTheLayoutSays) {
  const FingerprintFields f{0xABCD, 0x2A, 0x12'3456, 0x2'BEEF};
  const std::uint64_t fp = pack_fingerprint(f);
  EXPECT_EQ(fp, 0xABCD'0000'0000'0000ull | 0x2Aull << 42 | 0x12'3456ull << 18 | 0x2'BEEFull);
  EXPECT_EQ(unpack_fingerprint(fp), f);
}

TEST(Fingerprint, PackMasksEveryFieldToItsWidth) {
  const FingerprintFields wide{0x1'FFFF, 0x7F, 0x1FF'FFFF, 0x7'FFFF};
  EXPECT_EQ(unpack_fingerprint(pack_fingerprint(wide)),
            (FingerprintFields{0xFFFF, 0x3F, 0xFF'FFFF, 0x3'FFFF}));
}

TEST(Fingerprint, SizeClassIsTheBitWidthOfTheLength) {
  EXPECT_EQ(fingerprint_fields(with_data(1, 0, 0), 0).size_class, 0u);
  EXPECT_EQ(fingerprint_fields(with_data(1, 0, 1), 0).size_class, 1u);
  EXPECT_EQ(fingerprint_fields(with_data(1, 0, 4095), 0).size_class, 12u);
  EXPECT_EQ(fingerprint_fields(with_data(1, 0, 4096), 0).size_class, 13u);
  EXPECT_EQ(fingerprint_fields(with_data(1, 0, kMaxArenaBytes), 0).size_class, 37u);
  // An unvalidated length saturates at the field's width (bit width 64 would not fit).
  EXPECT_EQ(fingerprint_fields(with_data(1, 0, ~std::uint64_t{0}), 0).size_class, 63u);
  EXPECT_TRUE(fields_in_range(
      fingerprint_fields(with_data(~0u, ~std::uint64_t{0}, ~std::uint64_t{0}), ~0u)));
}

TEST(Fingerprint, RegionIsTheStartPageAndSaturates) {
  EXPECT_EQ(fingerprint_fields(with_data(1, 4095, 1), 0).region, 0u);
  EXPECT_EQ(fingerprint_fields(with_data(1, 4096, 1), 0).region, 1u);
  EXPECT_EQ(fingerprint_fields(with_data(1, kMaxArenaBytes - 1, 1), 0).region, 0xFF'FFFFu);
  // Unvalidated values cannot overflow the field.
  EXPECT_EQ(fingerprint_fields(with_data(1, ~std::uint64_t{0}, 1), 0).region, 0xFF'FFFFu);
}

TEST(Fingerprint, NoDataMeansNoSizeAndNoRegionWhateverTheFields) {
  TaskDescriptor d{};
  d.kernel_id = 3;
  d.data_offset = 1 << 20;  // invalid without the flag; ignored here
  d.data_length = 99;
  const FingerprintFields f = fingerprint_fields(d, 7);
  EXPECT_EQ(f, (FingerprintFields{3, 0, 0, 7}));
}

TEST(Fingerprint, KernelIdSaturates) {
  TaskDescriptor d{};
  d.kernel_id = 0x1'0000;
  EXPECT_EQ(fingerprint_fields(d, 0).kernel, 0xFFFFu);
}

TEST(Fingerprint, ArgsHashIsTheTopBitsOfXxh3OverTheArguments) {
  TaskDescriptor d{};
  d.args[0] = 1;
  d.args[1] = 2;
  d.args[2] = 3;
  const std::uint64_t expected = XXH3_64bits(d.args, sizeof(d.args)) >> 46;
  EXPECT_EQ(fingerprint_args_hash(d), expected);
  TaskDescriptor e = d;
  e.args[2] = 4;
  EXPECT_NE(fingerprint_args_hash(e), fingerprint_args_hash(d));
  // Everything but the arguments is left out of the hash.
  e = d;
  e.kernel_id = 9;
  e.tag = 77;
  EXPECT_EQ(fingerprint_args_hash(e), fingerprint_args_hash(d));
}

TEST(Fingerprint, MakeCombinesTheFieldsAndTheHash) {
  TaskDescriptor d = with_data(5, 3 * 4096 + 17, 1000);
  d.args[0] = 42;
  EXPECT_EQ(unpack_fingerprint(make_fingerprint(d)),
            (FingerprintFields{5, 10, 3, fingerprint_args_hash(d)}));
}

TEST(Fingerprint, TheDaemonRecomputesAllButTheArgsBits) {
  TaskDescriptor d = with_data(5, 3 * 4096, 1000);
  d.fingerprint = make_fingerprint(d);
  bool corrected = true;
  FingerprintFields f = daemon_fingerprint(d, corrected);
  EXPECT_FALSE(corrected);
  EXPECT_EQ(pack_fingerprint(f), d.fingerprint);

  // A lying client: wrong kernel, size and region bits, a key of its own.
  d.fingerprint = pack_fingerprint({9, 30, 12345, 0x1234});
  f = daemon_fingerprint(d, corrected);
  EXPECT_TRUE(corrected);
  EXPECT_EQ(f, (FingerprintFields{5, 10, 3, 0x1234}));

  // 0: not set, nothing to correct; the args bits are 0.
  d.fingerprint = 0;
  f = daemon_fingerprint(d, corrected);
  EXPECT_FALSE(corrected);
  EXPECT_EQ(f, (FingerprintFields{5, 10, 3, 0}));
}

}  // namespace
}  // namespace beat
