// Unit tests of parse_kernel_listing (client/control_connection.hpp): the
// KERNELS_OK payload, "<id>\t<name>\t<origin>\t<description>\n" per kernel,
// and the errors that name a malformed line.
#include "client/control_connection.hpp"

#include <gtest/gtest.h>

#include <string>

namespace beat {
namespace {

TEST(KernelListing, ParsesIdNameOriginAndDescription) {
  auto r = parse_kernel_listing(
      "0\tnoop\tbuilt-in\treturns args[0]\n"
      "7\tmine.add\t/usr/lib/beat/plugins/libmine.so\t\n"
      "\n"
      "12\tx\tbuilt-in\tspaces and: punctuation [ok]");
  ASSERT_TRUE(r) << r.status().message();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].id, 0u);
  EXPECT_EQ((*r)[0].name, "noop");
  EXPECT_EQ((*r)[0].origin, "built-in");
  EXPECT_EQ((*r)[0].description, "returns args[0]");
  EXPECT_EQ((*r)[1].id, 7u);
  EXPECT_EQ((*r)[1].origin, "/usr/lib/beat/plugins/libmine.so");
  EXPECT_EQ((*r)[1].description, "");
  EXPECT_EQ((*r)[2].id, 12u);
  EXPECT_EQ((*r)[2].description, "spaces and: punctuation [ok]");
  auto empty = parse_kernel_listing("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(KernelListing, MalformedLinesAreRefusedNamingTheLine) {
  const char* bad[] = {
      "0\tnoop\tbuilt-in",               // no description field
      "0\tnoop\treturns args[0]",        // the pre-version-3 format: no origin
      "0\t\tbuilt-in\td",                // empty name
      "0\tnoop\t\td",                    // empty origin
      "\tnoop\tbuilt-in\td",             // empty id
      "x1\tnoop\tbuilt-in\td",           // id not a number
      "1x\tnoop\tbuilt-in\td",           // trailing junk in the id
      "99999999999\tnoop\tbuilt-in\td",  // id past 32 bits
      "0\tnoop\tbuilt-in\td\textra",     // a fifth field
  };
  for (const char* line : bad) {
    const std::string text = std::string("1\tok\tbuilt-in\tfine\n") + line + "\n";
    auto r = parse_kernel_listing(text);
    ASSERT_FALSE(r) << line;
    EXPECT_EQ(r.status().code(), ErrorCode::kProtocol);
    EXPECT_EQ(r.status().message(), "malformed KERNELS line 2: '" + std::string(line) + "'");
  }
}

}  // namespace
}  // namespace beat
