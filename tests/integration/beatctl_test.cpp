// beatctl against a real daemon: discovery, status, and the bench workloads,
// whose verification (every tag once, checksums recomputed) lives in beatctl.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "tests/integration/completions.hpp"
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

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// The rows of the table whose header line starts with `header`, up to the
// blank line that ends it.
std::vector<std::vector<std::string>> table_rows(const std::string& text,
                                                 const std::string& header) {
  std::vector<std::vector<std::string>> rows;
  const std::vector<std::string> lines = lines_of(text);
  std::size_t i = 0;
  while (i < lines.size() && lines[i].rfind(header, 0) != 0) ++i;
  for (++i; i < lines.size() && !lines[i].empty(); ++i) rows.push_back(words_of(lines[i]));
  return rows;
}

// `beatctl status` output, re-run until `done` holds or 10 s pass: the
// daemon notices a client's arrival and departure on its control thread.
std::string status_when(const std::string& socket,
                        const std::function<bool(const std::string&)>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string out;
  for (;;) {
    EXPECT_EQ(test::run_program({BEAT_BEATCTL_PATH, "--socket", socket, "status"}, out,
                                std::chrono::seconds(10)),
              0)
        << out;
    if (done(out) || std::chrono::steady_clock::now() >= deadline) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(Beatctl, StatusShowsHeaderOneRowPerWorkerAndTheConnectedClient) {
  auto d = DaemonProcess::start();  // 2 workers
  ASSERT_NE(d, nullptr);
  // What the daemon says about itself, raw: the human view must agree.
  std::string json;
  ASSERT_EQ(run_program({BEAT_BEATCTL_PATH, "--socket", d->socket_path(), "status", "--json"}, json,
                        std::chrono::seconds(10)),
            0)
      << json;
  ASSERT_EQ(json.rfind("{\"version\":\"", 0), 0u) << json;
  ASSERT_EQ(json.find('\n'), json.size() - 1) << "--json must print one line: " << json;
  const std::string version = json.substr(12, json.find('"', 12) - 12);
  std::size_t json_workers = 0;
  for (std::size_t at = json.find("{\"index\":"); at != std::string::npos;
       at = json.find("{\"index\":", at + 1))
    ++json_workers;
  EXPECT_EQ(json_workers, 2u) << json;

  auto client = Client::connect({.socket_path = d->socket_path(), .name = "status-probe"});
  ASSERT_TRUE(client) << client.status().message();
  auto noop = (*client)->kernel_id("noop");
  ASSERT_TRUE(noop) << noop.status().message();
  ASSERT_EQ(test::run_all(**client, {make_task(*noop, 1)}).size(), 1u);

  const std::string pid = std::to_string(::getpid());
  auto probe_row = [&](const std::string& out) {
    for (const auto& row : table_rows(out, "CLIENT  NAME"))
      if (row.size() >= 2 && row[1] == "status-probe") return row;
    return std::vector<std::string>{};
  };
  // The client's one task counts once its completion is reaped.
  const std::string out = status_when(d->socket_path(), [&](const std::string& text) {
    const auto row = probe_row(text);
    return row.size() > 6 && row[6] == "1";
  });

  const std::vector<std::string> lines = lines_of(out);
  ASSERT_GE(lines.size(), 4u) << out;
  EXPECT_TRUE(std::regex_match(
      lines[0],
      std::regex("beatd " + version + " \\(protocol [0-9]+\\), pid " + std::to_string(d->pid()) +
                 ", up ([0-9]+d[0-9]{2}h[0-9]{2}m[0-9]{2}s|[0-9]+h[0-9]{2}m[0-9]{2}s|"
                 "[0-9]+m[0-9]{2}s|[0-9]+s), running")))
      << out;
  EXPECT_EQ(lines[1].rfind("socket " + d->socket_path() + ", metrics ", 0), 0u) << out;

  const auto workers = table_rows(out, "WORKER  CORE");
  EXPECT_EQ(workers.size(), json_workers) << out;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    ASSERT_FALSE(workers[i].empty()) << out;
    EXPECT_EQ(workers[i][0], std::to_string(i)) << out;
  }

  // CLIENT NAME PID SQ-DEPTH CQ-DEPTH INFLIGHT COMPLETED FAILED ARENA
  const auto row = probe_row(out);
  ASSERT_GE(row.size(), 8u) << out;
  EXPECT_EQ(row[2], pid) << out;
  EXPECT_EQ(row[5], "0") << "in flight: " << out;
  EXPECT_EQ(row[6], "1") << "completed: " << out;
  EXPECT_EQ(row[7], "0") << "failed: " << out;

  client->reset();  // disconnects
  const std::string after = status_when(d->socket_path(), [](const std::string& text) {
    return text.find("\nno clients connected\n") != std::string::npos;
  });
  EXPECT_NE(after.find("\nno clients connected\n"), std::string::npos) << after;
  EXPECT_EQ(after.find("status-probe"), std::string::npos) << after;
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
