// beatctl against a real daemon: discovery and the bench workloads, whose
// verification (every tag once, checksums recomputed) lives in beatctl.
#include <gtest/gtest.h>

#include "tests/integration/daemon_process.hpp"

namespace beat {
namespace {

using test::DaemonProcess;
using test::run_program;

TEST(Beatctl, KernelsJsonListsTheBuiltIns) {
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  std::string out;
  ASSERT_EQ(run_program({BEAT_BEATCTL_PATH, "--socket", d->socket_path(), "kernels", "--json"}, out,
                        std::chrono::seconds(10)),
            0)
      << out;
  for (const char* name : {"noop", "spin", "checksum", "crc32c", "sort_u64"})
    EXPECT_NE(out.find("{\"name\":\"" + std::string(name) + "\",\"id\":"), std::string::npos)
        << out;
  EXPECT_NE(out.find("{\"name\":\"noop\",\"id\":0,\"origin\":\"built-in\",\"description\":"),
            std::string::npos)
      << out;
  // The table names every column.
  ASSERT_EQ(run_program({BEAT_BEATCTL_PATH, "--socket", d->socket_path(), "kernels"}, out,
                        std::chrono::seconds(10)),
            0)
      << out;
  EXPECT_EQ(out.rfind("ID   NAME", 0), 0u) << out;
  EXPECT_NE(out.find(" ORIGIN "), std::string::npos) << out;
  EXPECT_NE(out.find(" built-in "), std::string::npos) << out;
}

TEST(Beatctl, ChecksumBenchVerifiesEveryResult) {
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  std::string out;
  ASSERT_EQ(run_program({BEAT_BEATCTL_PATH, "--socket", d->socket_path(), "bench", "--kernel",
                         "checksum", "--tasks", "20000", "--batch", "64", "--clients", "2",
                         "--threads", "2", "--data-bytes", "4096", "--json"},
                        out, std::chrono::seconds(120)),
            0)
      << out;
  EXPECT_NE(out.find("\"tasks\":20000"), std::string::npos) << out;
  EXPECT_NE(out.find("\"verified\":true"), std::string::npos) << out;
  EXPECT_NE(out.find("\"errors\":0"), std::string::npos) << out;
}

TEST(Beatctl, SocketOptionWorksAfterTheCommandToo) {
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  std::string out;
  ASSERT_EQ(
      run_program({BEAT_BEATCTL_PATH, "run", "noop", "41", "--socket", d->socket_path(), "--json"},
                  out, std::chrono::seconds(10)),
      0)
      << out;
  EXPECT_NE(out.find("\"result\":41"), std::string::npos) << out;
}

TEST(Beatctl, UnreachableSocketIsAUsageErrorNamingThePath) {
  std::string out;
  EXPECT_EQ(run_program({BEAT_BEATCTL_PATH, "--socket", "/tmp/beat-no-such.sock", "status"}, out,
                        std::chrono::seconds(10)),
            2);
  EXPECT_NE(out.find("/tmp/beat-no-such.sock"), std::string::npos) << out;
}

}  // namespace
}  // namespace beat
