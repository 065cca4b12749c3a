// Unit tests of kernels/kernel_registry.hpp: name rules, duplicate refusal,
// dense ids in registration order, and the KERNELS listing format.
#include "kernels/kernel_registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace beat {
namespace {

KernelResult returns_one(TaskContext&, KernelArgs, ArenaView) { return KernelResult::ok(1); }
KernelResult returns_two(TaskContext&, KernelArgs, ArenaView) { return KernelResult::ok(2); }

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
  EXPECT_EQ(id.status().message(), "kernel 'empty' has no function");
  EXPECT_EQ(r.size(), 0u);
}

TEST(KernelRegistry, ListingIsIdTabNameTabDescriptionPerLine) {
  KernelRegistry r;
  EXPECT_EQ(r.listing(), "");
  ASSERT_TRUE(r.add("alpha", "first kernel", returns_one));
  ASSERT_TRUE(r.add("beta", "", returns_two));
  EXPECT_EQ(r.listing(), "0\talpha\tfirst kernel\n1\tbeta\t\n");
}

TEST(KernelRegistry, BuiltinsRegisterInAFixedOrder) {
  KernelRegistry r;
  register_builtin_kernels(r);
  const char* expected[] = {"noop",    "spin", "checksum", "fib",
                            "nqueens", "uts",  "skynet",   "matmul"};
  ASSERT_EQ(r.size(), std::size(expected));
  for (std::uint32_t i = 0; i < std::size(expected); ++i) EXPECT_EQ(r.find(expected[i]), i);
  const std::string listing = r.listing();
  EXPECT_EQ(listing.rfind("0\tnoop\t", 0), 0u) << listing;
  EXPECT_NE(listing.find("\n1\tspin\t"), std::string::npos) << listing;
  EXPECT_NE(listing.find("\n2\tchecksum\t"), std::string::npos) << listing;
  EXPECT_NE(listing.find("\n7\tmatmul\t"), std::string::npos) << listing;
  EXPECT_EQ(std::count(listing.begin(), listing.end(), '\n'), 8);
  EXPECT_EQ(std::count(listing.begin(), listing.end(), '\t'), 16);
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
