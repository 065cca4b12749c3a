// Unit tests of shared/segment_layout.hpp: compute_layout's limits and
// offsets, and the initialize_header / check_header round trip.
#include "shared/segment_layout.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "tests/support/shared_mapping.hpp"

namespace beat {
namespace {

constexpr std::uint32_t kU32Max = std::numeric_limits<std::uint32_t>::max();

TEST(SegmentLayout, RejectsSqEntriesThatAreNotPowersOfTwoInRange) {
  for (std::uint32_t bad : {0u, 1u, 4u, 7u, 12u, 4095u, 4097u, kMaxRingEntries + 1,
                            kMaxRingEntries * 2, kU32Max, 1u << 31})
    EXPECT_EQ(compute_layout(bad, 8, 0), std::nullopt) << "sq_entries " << bad;
}

TEST(SegmentLayout, RejectsCqEntriesThatAreNotPowersOfTwoInRange) {
  for (std::uint32_t bad : {0u, 1u, 4u, 7u, 12u, 4095u, 4097u, kMaxRingEntries + 1,
                            kMaxRingEntries * 2, kU32Max, 1u << 31})
    EXPECT_EQ(compute_layout(8, bad, 0), std::nullopt) << "cq_entries " << bad;
}

TEST(SegmentLayout, RejectsArenaAboveLimit) {
  EXPECT_EQ(compute_layout(8, 8, kMaxArenaBytes + 1), std::nullopt);
  EXPECT_EQ(compute_layout(8, 8, std::numeric_limits<std::uint64_t>::max()), std::nullopt);
  EXPECT_NE(compute_layout(8, 8, kMaxArenaBytes), std::nullopt);
}

TEST(SegmentLayout, AcceptsBoundsInclusive) {
  EXPECT_NE(compute_layout(kMinRingEntries, kMinRingEntries, 0), std::nullopt);
  EXPECT_NE(compute_layout(kMaxRingEntries, kMaxRingEntries, 0), std::nullopt);
  EXPECT_EQ(kMinRingEntries, 8u);
  EXPECT_EQ(kMaxRingEntries, 1u << 20);
}

TEST(SegmentLayout, SmallestLayoutHasExactOffsets) {
  const auto l = compute_layout(8, 8, 0);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->sq_entries, 8u);
  EXPECT_EQ(l->cq_entries, 8u);
  EXPECT_EQ(l->sq_offset, 4096u);
  EXPECT_EQ(l->sq_stamp_offset, 4096u + 8 * 64);
  EXPECT_EQ(l->cq_offset, 8192u);      // 4096 + 8*64 + 8*8 rounded up to a page
  EXPECT_EQ(l->arena_offset, 12288u);  // 8192 + 8*32 rounded up to a page
  EXPECT_EQ(l->arena_bytes, 0u);
  EXPECT_EQ(l->total_bytes, 12288u);
}

TEST(SegmentLayout, DefaultRequestHasExactOffsets) {
  const SegmentRequest r;
  const auto l = compute_layout(r.sq_entries, r.cq_entries, r.arena_bytes);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->sq_offset, 4096u);
  EXPECT_EQ(l->sq_stamp_offset, 4096u + 4096u * 64u);
  EXPECT_EQ(l->cq_offset, 4096u + 4096u * 64u + 4096u * 8u);
  EXPECT_EQ(l->arena_offset, 4096u + 4096u * 64u + 4096u * 8u + 8192u * 32u);
  EXPECT_EQ(l->arena_bytes, 16u << 20);
  EXPECT_EQ(l->total_bytes, 4096u + 4096u * 64u + 4096u * 8u + 8192u * 32u + (16u << 20));
}

TEST(SegmentLayout, ArenaIsRoundedUpToWholePages) {
  EXPECT_EQ(compute_layout(8, 8, 1)->arena_bytes, 4096u);
  EXPECT_EQ(compute_layout(8, 8, 4096)->arena_bytes, 4096u);
  EXPECT_EQ(compute_layout(8, 8, 4097)->arena_bytes, 8192u);
  EXPECT_EQ(compute_layout(8, 8, kMaxArenaBytes)->arena_bytes, kMaxArenaBytes);
}

TEST(SegmentLayout, RegionsArePageAlignedAndDoNotOverlap) {
  for (std::uint32_t sq : {8u, 16u, 64u, 128u, 4096u, kMaxRingEntries})
    for (std::uint32_t cq : {8u, 32u, 8192u, kMaxRingEntries})
      for (std::uint64_t arena : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{12345},
                                  std::uint64_t{16} << 20, kMaxArenaBytes}) {
        const auto l = compute_layout(sq, cq, arena);
        ASSERT_TRUE(l) << sq << " " << cq << " " << arena;
        SCOPED_TRACE(testing::Message() << "sq " << sq << " cq " << cq << " arena " << arena);
        EXPECT_EQ(l->sq_offset % kPageBytes, 0u);
        EXPECT_EQ(l->cq_offset % kPageBytes, 0u);
        EXPECT_EQ(l->arena_offset % kPageBytes, 0u);
        EXPECT_EQ(l->total_bytes % kPageBytes, 0u);
        EXPECT_GE(l->sq_offset, kSegmentHeaderBytes);
        // The stamps follow the SQ slots directly; the CQ follows the stamps.
        EXPECT_EQ(l->sq_stamp_offset, l->sq_offset + std::uint64_t{sq} * sizeof(TaskDescriptor));
        EXPECT_EQ(l->sq_stamp_offset % alignof(std::uint64_t), 0u);
        EXPECT_GE(l->cq_offset,
                  l->sq_stamp_offset + std::uint64_t{sq} * sizeof(std::uint64_t));
        EXPECT_GE(l->arena_offset, l->cq_offset + std::uint64_t{cq} * sizeof(CompletionEntry));
        EXPECT_GE(l->arena_bytes, arena);
        EXPECT_EQ(l->total_bytes, l->arena_offset + l->arena_bytes);
        // No slack larger than a page between regions.
        EXPECT_LT(l->cq_offset -
                      (l->sq_stamp_offset + std::uint64_t{sq} * sizeof(std::uint64_t)),
                  kPageBytes);
        EXPECT_LT(l->arena_offset - (l->cq_offset + std::uint64_t{cq} * sizeof(CompletionEntry)),
                  kPageBytes);
      }
}

TEST(SegmentLayout, IsUsableAtCompileTime) {
  constexpr auto l = compute_layout(8, 8, 0);
  static_assert(l.has_value() && l->total_bytes == 12288);
  static_assert(!compute_layout(12, 8, 0).has_value());
  SUCCEED();
}

TEST(SegmentLayout, HeaderFieldsSitWhereTheStaticAssertsSay) {
  EXPECT_LE(sizeof(SegmentHeader), kSegmentHeaderBytes);
  EXPECT_EQ(offsetof(SegmentHeader, magic), 0u);
  EXPECT_EQ(offsetof(SegmentHeader, sq) % kCacheLine, 0u);
  EXPECT_EQ(offsetof(SegmentHeader, sq_bell) % kCacheLine, 0u);
  EXPECT_EQ(offsetof(SegmentHeader, sq_space) % kCacheLine, 0u);
  EXPECT_EQ(offsetof(SegmentHeader, cq) % kCacheLine, 0u);
  EXPECT_EQ(offsetof(SegmentHeader, cq_bell) % kCacheLine, 0u);
  EXPECT_EQ(offsetof(SegmentHeader, daemon_state) % kCacheLine, 0u);
}

// A page-aligned, garbage-filled header, as a recycled mapping might be.
class SegmentHeaderTest : public ::testing::Test {
 protected:
  SegmentHeaderTest() : mem_(kSegmentHeaderBytes) {
    std::memset(mem_.data(), 0xA5, kSegmentHeaderBytes);
    header_ = static_cast<SegmentHeader*>(mem_.data());
    layout_ = *compute_layout(64, 128, 1 << 20);
  }
  test::SharedMapping mem_;
  SegmentHeader* header_ = nullptr;
  SegmentLayout layout_{};
};

TEST_F(SegmentHeaderTest, InitializeThenCheckRoundTrips) {
  initialize_header(*header_, layout_, 0x1122334455667788ull, 42);
  EXPECT_EQ(check_header(*header_, layout_), "");
  EXPECT_EQ(header_->magic, kSegmentMagic);
  EXPECT_EQ(header_->version, kProtocolVersion);
  EXPECT_EQ(header_->header_bytes, kSegmentHeaderBytes);
  EXPECT_EQ(header_->daemon_instance, 0x1122334455667788ull);
  EXPECT_EQ(header_->client_id, 42u);
  EXPECT_EQ(header_->reserved0_, 0u);
  for (const RingIndices* r : {&header_->sq, &header_->cq}) {
    EXPECT_EQ(r->head.value.load(), 0u);
    EXPECT_EQ(r->tail.value.load(), 0u);
    EXPECT_EQ(r->reserve.value.load(), 0u);
  }
  for (const Doorbell* b : {&header_->sq_bell, &header_->sq_space, &header_->cq_bell}) {
    EXPECT_EQ(b->needs_wakeup.load(), 0u);
    EXPECT_EQ(b->seq.load(), 0u);
  }
  EXPECT_EQ(header_->daemon_state.load(), static_cast<std::uint32_t>(DaemonState::kRunning));
}

TEST_F(SegmentHeaderTest, MagicIsBeatseg1InLittleEndian) {
  initialize_header(*header_, layout_, 1, 1);
  EXPECT_EQ(std::memcmp(header_, "BEATSEG1", 8), 0);
}

TEST_F(SegmentHeaderTest, CheckNamesEachMismatchedFieldWithBothValues) {
  struct Case {
    std::string expected_message;
    void (*corrupt)(SegmentHeader&);
  };
  const Case cases[] = {
      {"segment header field magic is 1, expected 3550883055403091266",
       [](SegmentHeader& h) { h.magic = 1; }},
      {"segment header field version is " + std::to_string(kProtocolVersion + 1) + ", expected " +
           std::to_string(kProtocolVersion),
       [](SegmentHeader& h) { h.version = kProtocolVersion + 1; }},
      {"segment header field header_bytes is 8192, expected 4096",
       [](SegmentHeader& h) { h.header_bytes = 8192; }},
      {"segment header field sq_entries is 32, expected 64",
       [](SegmentHeader& h) { h.sq_entries = 32; }},
      {"segment header field cq_entries is 256, expected 128",
       [](SegmentHeader& h) { h.cq_entries = 256; }},
      {"segment header field sq_offset is 0, expected 4096",
       [](SegmentHeader& h) { h.sq_offset = 0; }},
      {"segment header field cq_offset is 4096, expected 12288",
       [](SegmentHeader& h) { h.cq_offset = 4096; }},
      {"segment header field arena_offset is 1, expected 16384",
       [](SegmentHeader& h) { h.arena_offset = 1; }},
      {"segment header field arena_bytes is 18446744073709551615, expected 1048576",
       [](SegmentHeader& h) { h.arena_bytes = ~std::uint64_t{0}; }},
      {"segment header field total_bytes is 12288, expected 1064960",
       [](SegmentHeader& h) { h.total_bytes = 12288; }},
  };
  // 4096 + 64 x 64 (SQ) + 64 x 8 (stamps), then 128 x 32 (CQ), page-aligned.
  ASSERT_EQ(layout_.cq_offset, 12288u);
  ASSERT_EQ(layout_.arena_offset, 16384u);
  ASSERT_EQ(layout_.total_bytes, 1064960u);
  for (const Case& c : cases) {
    initialize_header(*header_, layout_, 7, 3);
    c.corrupt(*header_);
    EXPECT_EQ(check_header(*header_, layout_), c.expected_message);
  }
}

TEST_F(SegmentHeaderTest, CheckAgainstADifferentLayoutNamesTheFirstDifference) {
  initialize_header(*header_, layout_, 7, 3);
  const SegmentLayout other = *compute_layout(64, 128, 2 << 20);
  EXPECT_EQ(check_header(*header_, other),
            "segment header field arena_bytes is 1048576, expected 2097152");
}

TEST_F(SegmentHeaderTest, CheckIgnoresDaemonInstanceClientIdAndLiveState) {
  initialize_header(*header_, layout_, 7, 3);
  header_->sq.tail.value.store(99);
  header_->cq_bell.seq.store(5);
  header_->daemon_state.store(static_cast<std::uint32_t>(DaemonState::kDraining));
  EXPECT_EQ(check_header(*header_, layout_), "");
}

TEST(SegmentView, PointsIntoTheMappingAtTheLayoutOffsets) {
  const SegmentLayout l = *compute_layout(16, 32, 8192);
  test::SharedMapping mem(l.total_bytes);
  const SegmentView v = SegmentView::over(mem.data(), l);
  auto* base = static_cast<std::byte*>(mem.data());
  EXPECT_EQ(reinterpret_cast<std::byte*>(v.header), base);
  EXPECT_EQ(reinterpret_cast<std::byte*>(v.sq_slots), base + l.sq_offset);
  EXPECT_EQ(reinterpret_cast<std::byte*>(v.cq_slots), base + l.cq_offset);
  EXPECT_EQ(v.arena, base + l.arena_offset);
  EXPECT_EQ(v.layout.total_bytes, l.total_bytes);
  // The last byte of the arena is the last byte of the mapping.
  v.arena[l.arena_bytes - 1] = std::byte{0x5A};
  EXPECT_EQ(base[l.total_bytes - 1], std::byte{0x5A});
}

}  // namespace
}  // namespace beat
