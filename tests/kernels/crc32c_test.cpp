// Unit tests of the crc32c kernel (kernels/crc32c.cpp), called through the
// registry as a worker calls it, against a bitwise CRC-32C written here.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "kernels/kernel_registry.hpp"

namespace beat {
namespace {

// The reference: CRC-32C one bit at a time (reflected polynomial
// 0x82F63B78, register preset to ~0 and complemented at the end), continued
// from the standard CRC `init` of the bytes before.
std::uint32_t crc32c_bitwise(const std::byte* p, std::size_t n, std::uint32_t init = 0) {
  constexpr std::uint32_t kPolynomial = 0x82F6'3B78;
  std::uint32_t reg = ~init;
  for (std::size_t i = 0; i < n; ++i) {
    reg ^= static_cast<std::uint32_t>(p[i]);
    for (int bit = 0; bit < 8; ++bit) reg = (reg >> 1) ^ ((reg & 1u) != 0 ? kPolynomial : 0u);
  }
  return ~reg;
}

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n + 1);  // +1: data() is non-null even for n == 0
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

class Crc32cKernel : public ::testing::Test {
 protected:
  Crc32cKernel() { register_crc32c_kernels(registry_); }

  KernelResult run(std::uint64_t init, const std::byte* p, std::size_t n,
                   const std::atomic<bool>* closing = nullptr) {
    const auto id = registry_.find("crc32c");
    EXPECT_TRUE(id.has_value());
    if (!id) return KernelResult::error(0xDEAD);
    // The arena is the data range itself (the kernel names no other range).
    const ArenaView data{const_cast<std::byte*>(p), n};
    TaskContext ctx(nullptr, 1, data, nullptr, closing);
    std::array<std::uint64_t, kInlineArgs> args{init, 0, 0};
    return registry_.at(*id).fn(ctx, KernelArgs(args), data);
  }

  KernelRegistry registry_;
};

TEST_F(Crc32cKernel, IsRegisteredBatchable) {
  const auto id = registry_.find("crc32c");
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(registry_.at(*id).batchable);
}

TEST_F(Crc32cKernel, CheckValueOf123456789) {
  constexpr std::string_view kCheck = "123456789";
  const auto* p = reinterpret_cast<const std::byte*>(kCheck.data());
  ASSERT_EQ(crc32c_bitwise(p, kCheck.size()), 0xE306'9283u) << "the reference itself";
  const KernelResult r = run(0, p, kCheck.size());
  EXPECT_EQ(r.status, TaskStatus::kOk);
  EXPECT_EQ(r.detail, 0u);
  EXPECT_EQ(r.value, 0xE306'9283u);
}

TEST_F(Crc32cKernel, EmptyRangeReturnsTheInitialCrc) {
  for (std::uint64_t init :
       {std::uint64_t{0}, std::uint64_t{0x1234'5678}, std::uint64_t{0xFFFF'FFFF}}) {
    const KernelResult r = run(init, nullptr, 0);
    EXPECT_EQ(r.status, TaskStatus::kOk);
    EXPECT_EQ(r.value, init);
  }
}

TEST_F(Crc32cKernel, MatchesTheBitwiseReferenceOnEverySizeAndAlignment) {
  constexpr std::size_t kMaxMisalignment = 7;
  // 3 MiB + 5 crosses the kernel's 1 MiB chunks twice and ends in a tail.
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64},
                           std::size_t{1000}, std::size_t{1'000'000}, (std::size_t{3} << 20) + 5}) {
    const std::vector<std::byte> buf = random_bytes(size + kMaxMisalignment, size);
    for (std::size_t start = 0; start <= kMaxMisalignment; ++start) {
      // The big sizes at two starts only: the bitwise reference is slow.
      if (size > 1000 && start != 0 && start != 3) continue;
      const std::uint32_t expected = crc32c_bitwise(buf.data() + start, size);
      const KernelResult r = run(0, buf.data() + start, size);
      EXPECT_EQ(r.status, TaskStatus::kOk) << "size " << size << " start " << start;
      EXPECT_EQ(r.value, expected) << "size " << size << " start " << start;
    }
  }
}

TEST_F(Crc32cKernel, ChainsThroughTheInitialCrc) {
  const std::vector<std::byte> buf = random_bytes(5000, 99);
  const std::size_t n = 5000;
  const std::uint32_t whole = crc32c_bitwise(buf.data(), n);
  for (std::size_t split : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64},
                            std::size_t{2500}, std::size_t{4999}, n}) {
    const KernelResult head = run(0, buf.data(), split);
    ASSERT_EQ(head.status, TaskStatus::kOk);
    const KernelResult tail = run(head.value, buf.data() + split, n - split);
    EXPECT_EQ(tail.status, TaskStatus::kOk);
    EXPECT_EQ(tail.value, whole) << "split at " << split;
  }
  // A non-zero initial CRC is continued, not used as a bare register.
  const KernelResult r = run(0xDEAD'BEEF, buf.data(), 64);
  EXPECT_EQ(r.value, crc32c_bitwise(buf.data(), 64, 0xDEAD'BEEF));
  EXPECT_NE(r.value, crc32c_bitwise(buf.data(), 64));
}

TEST_F(Crc32cKernel, DependsOnEveryByte) {
  std::vector<std::byte> buf(1000, std::byte{0x11});
  const std::uint64_t base = run(0, buf.data(), buf.size()).value;
  buf[999] = std::byte{0x12};
  EXPECT_NE(run(0, buf.data(), buf.size()).value, base);
  buf[999] = std::byte{0x11};
  buf[0] = std::byte{0x10};
  EXPECT_NE(run(0, buf.data(), buf.size()).value, base);
}

TEST_F(Crc32cKernel, InitialCrcAbove32BitsIsInvalidArgZero) {
  const std::vector<std::byte> buf = random_bytes(64, 1);
  for (std::uint64_t init :
       {std::uint64_t{1} << 32, std::uint64_t{0x1'0000'0001}, ~std::uint64_t{0}}) {
    for (std::size_t size : {std::size_t{0}, std::size_t{64}}) {
      const KernelResult r = run(init, buf.data(), size);
      EXPECT_EQ(r.status, TaskStatus::kInvalidArgs) << init;
      EXPECT_EQ(r.detail, 0u);
      EXPECT_EQ(r.value, 0u);
    }
  }
}

TEST_F(Crc32cKernel, StopsWhenCancelled) {
  const std::vector<std::byte> buf = random_bytes(64, 2);
  const std::atomic<bool> closing{true};
  const KernelResult r = run(0, buf.data(), 64, &closing);
  EXPECT_EQ(r.status, TaskStatus::kDropped);
  EXPECT_EQ(r.value, 0u);
}

}  // namespace
}  // namespace beat
