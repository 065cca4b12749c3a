// Unit tests of kernels/kernel_registry.hpp: name rules, duplicate refusal,
// dense ids in registration order, the KERNELS listing format, the
// capacity bound, and readers that look entries up while the control thread
// adds more (plugins loaded on SIGHUP).
#include "kernels/kernel_registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

namespace beat {
namespace {

KernelResult returns_one(TaskContext&, KernelArgs, ArenaView) { return KernelResult::ok(1); }
KernelResult returns_two(TaskContext&, KernelArgs, ArenaView) { return KernelResult::ok(2); }

// prefix + i (appended: GCC 12's -Wrestrict misfires on "literal" + string).
std::string numbered(const char* prefix, std::uint32_t i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

TEST(KernelRegistry, IdsAreDenseInRegistrationOrder) {
  KernelRegistry r;
  EXPECT_EQ(r.size(), 0u);
  auto a = r.add("alpha", "first", returns_one);
  auto b = r.add("beta", "second", returns_two, "/opt/plugins/libbeta.so");
  auto c = r.add("gamma.v2-x_y", "third", returns_one);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(*a, 0u);
  EXPECT_EQ(*b, 1u);
  EXPECT_EQ(*c, 2u);
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.find("alpha"), 0u);
  EXPECT_EQ(r.find("beta"), 1u);
  EXPECT_EQ(r.find("gamma.v2-x_y"), 2u);
  EXPECT_EQ(r.find("delta"), std::nullopt);
  EXPECT_EQ(r.find("Alpha"), std::nullopt);  // case-sensitive
  EXPECT_EQ(r.at(1).name, "beta");
  EXPECT_EQ(r.at(1).origin, "/opt/plugins/libbeta.so");
  EXPECT_EQ(r.at(0).origin, "built-in");
  EXPECT_EQ(r.at(1).fn, &returns_two);
  EXPECT_EQ(r.all().size(), 3u);
}

TEST(KernelRegistry, DuplicateNameIsRefusedAndNothingIsAdded) {
  KernelRegistry r;
  ASSERT_TRUE(r.add("alpha", "first", returns_one));
  auto dup = r.add("alpha", "again", returns_two);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(dup.status().message(), "kernel 'alpha' is already registered");
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.at(0).fn, &returns_one);
  // The next successful add still gets the next dense id.
  auto next = r.add("beta", "second", returns_two);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 1u);
}

TEST(KernelRegistry, MalformedNamesAreRefusedNamingThem) {
  struct Case {
    std::string name;
    std::string message;
  };
  const std::string too_long(48, 'k');
  const Case cases[] = {
      {"", "kernel name '' must have 1 to 47 characters"},
      {too_long, "kernel name '" + too_long + "' must have 1 to 47 characters"},
      {"has space", "kernel name 'has space' may only use letters, digits, '_', '.', '-'"},
      {"a/b", "kernel name 'a/b' may only use letters, digits, '_', '.', '-'"},
      {"tab\tname", "kernel name 'tab\tname' may only use letters, digits, '_', '.', '-'"},
      {"ünï", "kernel name 'ünï' may only use letters, digits, '_', '.', '-'"},
  };
  KernelRegistry r;
  for (const Case& c : cases) {
    auto id = r.add(c.name, "d", returns_one);
    ASSERT_FALSE(id) << c.name;
    EXPECT_EQ(id.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(id.status().message(), c.message);
  }
  EXPECT_EQ(r.size(), 0u);
  EXPECT_TRUE(r.add(std::string(47, 'k'), "longest allowed", returns_one));
}

TEST(KernelRegistry, DescriptionMustBeOneLineWithoutTabs) {
  KernelRegistry r;
  for (const char* bad : {"two\nlines", "a\ttab", "carriage\rreturn"}) {
    auto id = r.add("k", bad, returns_one);
    ASSERT_FALSE(id) << bad;
    EXPECT_EQ(id.status().message(), "description of kernel 'k' must be one line without tabs");
  }
  EXPECT_TRUE(r.add("k", "", returns_one));
}

TEST(KernelRegistry, NullFunctionIsRefused) {
  KernelRegistry r;
  auto id = r.add("empty", "no function", nullptr);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.status().message(),
            "kernel 'empty' needs exactly one function (built-in or plugin)");
  KernelInfo both;
  both.name = "both";
  both.fn = returns_one;
  both.plugin_fn = [](beat_kernel_context*, const std::uint64_t*, beat_arena_view) {
    return beat_kernel_ok(0);
  };
  id = r.add(std::move(both));
  ASSERT_FALSE(id);
  EXPECT_EQ(id.status().message(), "kernel 'both' needs exactly one function (built-in or plugin)");
  EXPECT_EQ(r.size(), 0u);
}

TEST(KernelRegistry, DescriptionAndOriginLengthsAreBounded) {
  KernelRegistry r;
  auto id = r.add("long", std::string(kMaxDescriptionBytes + 1, 'd'), returns_one);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.status().message(),
            "description of kernel 'long' has 161 bytes; at most 160 are allowed");
  id = r.add("far", "d", returns_one, "/" + std::string(kMaxOriginBytes, 'p'));
  ASSERT_FALSE(id);
  EXPECT_EQ(id.status().message(),
            "origin of kernel 'far' must be one line without tabs of at most 256 bytes");
  id = r.add("tabbed", "d", returns_one, "/a\tb.so");
  ASSERT_FALSE(id);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_TRUE(r.add("long", std::string(kMaxDescriptionBytes, 'd'), returns_one,
                    "/" + std::string(kMaxOriginBytes - 1, 'p')));
}

TEST(KernelRegistry, AFullRegistryRefusesTheNextKernel) {
  KernelRegistry r;
  for (std::uint32_t i = 0; i < KernelRegistry::kMaxKernels; ++i)
    ASSERT_TRUE(r.add(numbered("k", i), "", returns_one));
  auto id = r.add("one_more", "", returns_one);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.status().message(),
            "kernel 'one_more' does not fit: 2048 kernels are registered already");
  EXPECT_EQ(r.size(), KernelRegistry::kMaxKernels);
  // The largest listing still fits a control frame (1 MiB).
  KernelRegistry big;
  for (std::uint32_t i = 0; i < KernelRegistry::kMaxKernels; ++i) {
    std::string name = std::to_string(i);
    name.resize(47, 'n');
    ASSERT_TRUE(big.add(name, std::string(kMaxDescriptionBytes, 'd'), returns_one,
                        "/" + std::string(kMaxOriginBytes - 1, 'p')));
  }
  EXPECT_LE(big.listing().size(), std::size_t{1} << 20);
}

// Readers resolve ids below size() while one thread adds: every entry they
// can see is complete (add()'s release store of the size, size()'s acquire
// load; run under TSan too).
TEST(KernelRegistry, ReadersSeeWholeEntriesWhileKernelsAreAdded) {
  KernelRegistry r;
  constexpr std::uint32_t kKernels = 1500;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> checked{0};
  std::atomic<int> started{0};
  auto reader = [&] {
    std::uint64_t n = 0;
    started.fetch_add(1, std::memory_order_relaxed);
    for (;;) {
      const bool last_pass = done.load(std::memory_order_acquire);
      const std::uint32_t size = r.size();
      for (std::uint32_t id = size > 8 ? size - 8 : 0; id < size; ++id) {
        const KernelInfo& k = r.at(id);
        ASSERT_EQ(k.name, numbered("k", id));
        ASSERT_EQ(k.description, numbered("kernel number ", id));
        ASSERT_EQ(k.fn, id % 2 == 0 ? &returns_one : &returns_two);
        ++n;
      }
      if (last_pass) break;
    }
    checked.fetch_add(n, std::memory_order_relaxed);
  };
  std::thread a(reader), b(reader);
  while (started.load(std::memory_order_relaxed) < 2) std::this_thread::yield();
  for (std::uint32_t i = 0; i < kKernels; ++i) {
    ASSERT_TRUE(r.add(numbered("k", i), numbered("kernel number ", i),
                      i % 2 == 0 ? returns_one : returns_two));
    if (i % 16 == 0) std::this_thread::yield();  // let the readers interleave
  }
  done.store(true, std::memory_order_release);
  a.join();
  b.join();
  EXPECT_EQ(r.size(), kKernels);
  EXPECT_GE(checked.load(), 16u);  // at least each reader's last pass
}

TEST(KernelRegistry, ListingIsIdNameOriginDescriptionPerLine) {
  KernelRegistry r;
  EXPECT_EQ(r.listing(), "");
  ASSERT_TRUE(r.add("alpha", "first kernel", returns_one));
  ASSERT_TRUE(r.add("beta", "", returns_two, "/usr/lib/beat/plugins/libbeta.so"));
  EXPECT_EQ(r.listing(),
            "0\talpha\tbuilt-in\tfirst kernel\n1\tbeta\t/usr/lib/beat/plugins/libbeta.so\t\n");
}

TEST(KernelRegistry, BuiltinsRegisterInAFixedOrder) {
  KernelRegistry r;
  register_builtin_kernels(r);
  // Ids are part of what clients see (beatctl kernels); new built-ins go
  // before the benchmark kernels, which stay last.
  const char* expected[] = {"noop",          "spin",
                            "checksum",      "crc32c",
                            "sum_f32",       "dot_f32",
                            "saxpy_f32",     "map_f32",
                            "matmul_f32",    "sort_u64",
                            "sort_f32",      "histogram_u8",
                            "histogram_u32", "topk_fingerprints",
                            "fib",           "nqueens",
                            "uts",           "skynet",
                            "matmul"};
  ASSERT_EQ(r.size(), std::size(expected));
  for (std::uint32_t i = 0; i < std::size(expected); ++i) EXPECT_EQ(r.find(expected[i]), i);
  const std::string listing = r.listing();
  EXPECT_EQ(listing.rfind("0\tnoop\tbuilt-in\t", 0), 0u) << listing;
  EXPECT_NE(listing.find("\n1\tspin\tbuilt-in\t"), std::string::npos) << listing;
  EXPECT_NE(listing.find("\n2\tchecksum\tbuilt-in\t"), std::string::npos) << listing;
  EXPECT_NE(listing.find("\n18\tmatmul\tbuilt-in\t"), std::string::npos) << listing;
  EXPECT_EQ(std::count(listing.begin(), listing.end(), '\n'), 19);
  EXPECT_EQ(std::count(listing.begin(), listing.end(), '\t'), 3 * 19);
  EXPECT_EQ(listing.back(), '\n');
  for (const KernelInfo& k : r.all()) EXPECT_EQ(k.origin, "built-in");
}

TEST(KernelRegistry, BuiltinsCannotBeRegisteredTwice) {
  KernelRegistry r;
  register_builtin_kernels(r);
  EXPECT_THROW(register_builtin_kernels(r), std::logic_error);
}

}  // namespace
}  // namespace beat
