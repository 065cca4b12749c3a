// Unit tests of the built-in kernels (kernels/builtin_kernels.cpp), called
// through the registry exactly as a worker calls them.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/kernel_registry.hpp"

namespace beat {
namespace {

class BuiltinKernels : public ::testing::Test {
 protected:
  BuiltinKernels() { register_builtin_kernels(registry_); }

  KernelResult run(std::string_view name, std::array<std::uint64_t, kInlineArgs> args,
                   ArenaView data = {}) {
    const auto id = registry_.find(name);
    EXPECT_TRUE(id.has_value()) << name;
    if (!id) return KernelResult::error(0xDEAD);
    TaskContext ctx(nullptr, 1, data);
    return registry_.at(*id).fn(ctx, KernelArgs(args), data);
  }

  KernelRegistry registry_;
};

TEST_F(BuiltinKernels, NoopEchoesFirstArgument) {
  for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{42}, ~std::uint64_t{0}}) {
    const KernelResult r = run("noop", {v, 7, 9});
    EXPECT_EQ(r.status, TaskStatus::kOk);
    EXPECT_EQ(r.detail, 0u);
    EXPECT_EQ(r.value, v);
  }
}

TEST_F(BuiltinKernels, SpinReturnsAtLeastTheRequestedNanoseconds) {
  const auto t0 = std::chrono::steady_clock::now();
  const KernelResult r = run("spin", {1'000'000, 0, 0});
  const auto wall = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, TaskStatus::kOk);
  EXPECT_GE(r.value, 1'000'000u);
  EXPECT_GE(wall, std::chrono::nanoseconds(1'000'000));
  // The result is time actually spun, not the request echoed: it cannot
  // exceed the wall time around the call.
  EXPECT_LE(r.value, static_cast<std::uint64_t>(
                         std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count()));
}

TEST_F(BuiltinKernels, SpinOfZeroReturnsZero) {
  const KernelResult r = run("spin", {0, 0, 0});
  EXPECT_EQ(r.status, TaskStatus::kOk);
  EXPECT_EQ(r.value, 0u);
}

TEST_F(BuiltinKernels, SpinAboveTenSecondsIsInvalidArgZero) {
  for (std::uint64_t ns : {std::uint64_t{10'000'000'001}, ~std::uint64_t{0}}) {
    const auto t0 = std::chrono::steady_clock::now();
    const KernelResult r = run("spin", {ns, 0, 0});
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << "it spun";
    EXPECT_EQ(r.status, TaskStatus::kInvalidArgs);
    EXPECT_EQ(r.detail, 0u);
    EXPECT_EQ(r.value, 0u);
  }
}

TEST_F(BuiltinKernels, ChecksumOfNoBytesIsXxh3OfEmptyInput) {
  const KernelResult r = run("checksum", {0, 0, 0});
  EXPECT_EQ(r.status, TaskStatus::kOk);
  // Published XXH3-64 test vector: empty input, seed 0.
  EXPECT_EQ(r.value, 0x2D06800538D394C2ull);
}

TEST_F(BuiltinKernels, ChecksumEqualsXxh3WithSeedOverRandomData) {
  std::mt19937_64 rng(20240501);
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64},
                           std::size_t{1000}, std::size_t{1} << 20}) {
    std::vector<std::byte> buf(size + 1);  // +1: data() is non-null even for size 0
    for (auto& b : buf) b = static_cast<std::byte>(rng());
    for (std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{1}, rng()}) {
      const ArenaView view{buf.data(), size};
      const KernelResult r = run("checksum", {seed, 0, 0}, view);
      EXPECT_EQ(r.status, TaskStatus::kOk);
      EXPECT_EQ(r.value, XXH3_64bits_withSeed(buf.data(), size, seed))
          << "size " << size << " seed " << seed;
    }
  }
}

TEST_F(BuiltinKernels, ChecksumDependsOnSeedAndEveryByte) {
  std::vector<std::byte> buf(1000, std::byte{0x11});
  const ArenaView view{buf.data(), buf.size()};
  const std::uint64_t base = run("checksum", {5, 0, 0}, view).value;
  EXPECT_NE(run("checksum", {6, 0, 0}, view).value, base);
  buf[999] = std::byte{0x12};
  EXPECT_NE(run("checksum", {5, 0, 0}, view).value, base);
}

}  // namespace
}  // namespace beat
