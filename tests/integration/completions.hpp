// Reaping helpers shared by the integration tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "client/client.hpp"

namespace beat::test {

// Reaps exactly `count` completions, or fails the test (and returns what it
// got) when `timeout` passes or the client reports an error.
inline std::vector<Completion> reap(Client& c, std::size_t count,
                                    std::chrono::seconds timeout = std::chrono::seconds(30)) {
  std::vector<Completion> out(count);
  std::size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got < count && std::chrono::steady_clock::now() < deadline) {
    auto n = c.wait(std::span(out).subspan(got), 1, std::chrono::milliseconds(100));
    if (!n) {
      if (n.status().code() == ErrorCode::kTimedOut) continue;
      ADD_FAILURE() << n.status().message();
      break;
    }
    got += *n;
  }
  EXPECT_EQ(got, count) << "completions missing after " << timeout.count() << " s";
  out.resize(got);
  return out;
}

// Submits `tasks` (blocking mode) and reaps as many completions.
inline std::vector<Completion> run_all(Client& c, const std::vector<TaskDescriptor>& tasks) {
  const Status s = c.submit(tasks);
  EXPECT_TRUE(s) << s.message();
  if (!s) return {};
  return reap(c, tasks.size());
}

}  // namespace beat::test
