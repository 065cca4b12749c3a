// The fork-join benchmark kernels (kernels/benchmark_kernels.cpp) through a
// real beatd: known answers on one and two workers, many fork-join tasks
// in one batch, argument checking, stealing as STATS reports it under both
// steal policies and with inline subtrees on and off, `beatctl run`, and an orphaned long task that
// must not wedge the scheduler, another client's task served while a long fork-join task keeps
// every worker busy, and two regressions of intake chunks: a fast task's completion held behind a
// slow one, and a chunk of slow tasks not shared with a parked worker.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "client/client.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/integration/edited_config.hpp"
#include "tests/integration/stats_json.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;
using test::json_number;
using test::kUnderThreadSanitizer;
using test::stats_when;
using test::sum_over_workers;
using test::top_level;

// Sizes: ThreadSanitizer slows the daemon ~7x on fib (its inline subtrees
// touch little memory TSan watches: fib(40) takes 1.6 s on 2 workers, 0.08
// s native) and ~80x on matmul's float loops (uts T1 2 s, matmul(1024)
// 15 s on 2 workers), so the big problems shrink there; the whole file
// stays under ~20 s in release and ~90 s under TSan on 2 cores.
constexpr unsigned kStealFibN = kUnderThreadSanitizer ? 30 : 32;
constexpr int kStealRounds = 5;  // a loaded 2-core box may not run worker 2 at once
// The orphan must outlive the survivor's task by far (fib(44): ~0.5 s
// native on 2 workers; fib(39): ~1 s under TSan), yet SIGTERM waits for
// it to finish.
constexpr unsigned kOrphanFibN = kUnderThreadSanitizer ? 39 : 44;
// Kernel error detail (kernels/kernel.hpp kWrongAnswer): a self-check failed.
constexpr std::uint32_t kWrongAnswer = 1;

// Joins fib(n) performs, one per call with n >= 2: J(n) = 1 + J(n-1) + J(n-2).
std::uint64_t fib_joins(unsigned n) {
  std::uint64_t older = 0, old = 0;  // J(k-2), J(k-1)
  for (unsigned k = 2; k <= n; ++k) {
    const std::uint64_t next = 1 + old + older;
    older = old;
    old = next;
  }
  return n < 2 ? 0 : old;
}

// fib(n), iteratively.
std::uint64_t fib_value(unsigned n) {
  std::uint64_t a = 0, b = 1;  // fib(k), fib(k+1)
  for (unsigned k = 0; k < n; ++k) {
    const std::uint64_t next = a + b;
    a = b;
    b = next;
  }
  return a;
}

// The matmul kernel's checksum, computed independently: C = A B with
//   A[i][k] = ((3 i + k) mod 5) - 2,  B[k][j] = ((k + 2 j) mod 7) - 3,
// so sum(C) = sum_k (column sum k of A) (row sum k of B), O(n^2).
std::int64_t matmul_checksum(std::int64_t n) {
  std::int64_t sum = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    std::int64_t column = 0, row = 0;
    for (std::int64_t i = 0; i < n; ++i) column += (3 * i + k) % 5 - 2;
    for (std::int64_t j = 0; j < n; ++j) row += (k + 2 * j) % 7 - 3;
    sum += column * row;
  }
  return sum;
}

// ---- tasks with known answers ----

struct KnownAnswer {
  const char* kernel;
  std::uint64_t arg;
  std::uint64_t result;
};

std::vector<KnownAnswer> known_answers() {
  std::vector<KnownAnswer> v = {
      {"fib", 25, 75'025},
      {"fib", 30, 832'040},
      {"nqueens", 8, 92},
      {"nqueens", 10, 724},
      {"skynet", 100'000, 4'999'950'000},
      {"skynet", 0, 499'999'500'000},  // 0 = 10^6 leaves
      {"matmul", 256, static_cast<std::uint64_t>(matmul_checksum(256))},
      {"uts", 1, 4'130'071},  // 0.35-0.6 s native, 2 s under TSan
  };
  if (!kUnderThreadSanitizer) {
    v.push_back({"uts", 3, 4'112'897});
    v.push_back({"matmul", 0, static_cast<std::uint64_t>(matmul_checksum(1024))});  // 0 = 1024
  }
  return v;
}

// Submits every task of `answers` in one batch (tag = index) and checks each
// completes once, kOk, with its known result.
void expect_known_answers(Client& c, const std::vector<KnownAnswer>& answers) {
  std::vector<TaskDescriptor> tasks;
  for (const KnownAnswer& a : answers) {
    auto id = c.kernel_id(a.kernel);
    ASSERT_TRUE(id) << id.status().message();
    tasks.push_back(make_task(*id, tasks.size(), {a.arg}));
  }
  const std::vector<Completion> out = test::run_all(c, tasks);
  ASSERT_EQ(out.size(), tasks.size());
  std::vector<int> seen(tasks.size(), 0);
  for (const Completion& x : out) {
    ASSERT_LT(x.tag, answers.size());
    ++seen[x.tag];
    const KnownAnswer& a = answers[x.tag];
    EXPECT_EQ(x.status, TaskStatus::kOk)
        << a.kernel << "(" << a.arg << "): status " << static_cast<unsigned>(x.status) << " detail "
        << x.detail << (x.detail == kWrongAnswer ? " (wrong answer)" : "");
    EXPECT_EQ(x.result, a.result) << a.kernel << "(" << a.arg << ")";
  }
  for (std::size_t i = 0; i < seen.size(); ++i)
    EXPECT_EQ(seen[i], 1) << answers[i].kernel << "(" << answers[i].arg << ")";
}

void known_answers_on(unsigned workers) {
  auto d = DaemonProcess::start(
      {.workers = workers, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = ""});
  ASSERT_NE(d, nullptr);
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "known-answers"});
  ASSERT_TRUE(c) << c.status().message();
  ASSERT_EQ((*c)->worker_count(), workers);
  expect_known_answers(**c, known_answers());
}

TEST(ForkJoinKernels, TestHelpersAgreeWithBruteForce) {
  // The test's own O(n^2) expectation against O(n^3) at a size that is
  // not a multiple of either period.
  constexpr std::int64_t kN = 37;
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < kN; ++i)
    for (std::int64_t j = 0; j < kN; ++j)
      for (std::int64_t k = 0; k < kN; ++k) sum += ((3 * i + k) % 5 - 2) * ((k + 2 * j) % 7 - 3);
  EXPECT_EQ(matmul_checksum(kN), sum);
  EXPECT_EQ(fib_joins(0), 0u);
  EXPECT_EQ(fib_joins(2), 1u);
  EXPECT_EQ(fib_joins(5), 7u);  // fib(6) - 1
  EXPECT_EQ(fib_joins(32), 3'524'577u);
  EXPECT_EQ(fib_value(25), 75'025u);
  EXPECT_EQ(fib_value(32), 2'178'309u);
}

TEST(ForkJoinKernels, EveryKernelReturnsItsKnownAnswerOnOneWorker) {
  test::ScopedWatchdog watchdog("ForkJoinKernels.KnownAnswersOneWorker", 120);
  known_answers_on(1);
}

TEST(ForkJoinKernels, EveryKernelReturnsItsKnownAnswerOnTwoWorkers) {
  test::ScopedWatchdog watchdog("ForkJoinKernels.KnownAnswersTwoWorkers", 120);
  known_answers_on(2);
}

TEST(ForkJoinKernels, ThreeHundredForkJoinTasksInOneBatchCompleteExactlyOnce) {
  test::ScopedWatchdog watchdog("ForkJoinKernels.ManyTasks", 120);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "many"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  const std::uint32_t fib = *c.kernel_id("fib");
  const std::uint32_t nqueens = *c.kernel_id("nqueens");
  // 200 fib(18) and 100 nqueens(8), interleaved: every third is nqueens.
  constexpr std::uint64_t kTasks = 300;
  const auto is_nqueens = [](std::uint64_t tag) { return tag % 3 == 2; };
  std::vector<TaskDescriptor> tasks;
  for (std::uint64_t tag = 0; tag < kTasks; ++tag)
    tasks.push_back(is_nqueens(tag) ? make_task(nqueens, tag, {8}) : make_task(fib, tag, {18}));
  const std::vector<Completion> out = test::run_all(c, tasks);
  ASSERT_EQ(out.size(), kTasks);
  std::vector<int> seen(kTasks, 0);
  for (const Completion& x : out) {
    ASSERT_LT(x.tag, kTasks);
    ++seen[x.tag];
    EXPECT_EQ(x.status, TaskStatus::kOk) << "tag " << x.tag << " detail " << x.detail;
    EXPECT_EQ(x.result, is_nqueens(x.tag) ? 92u : 2584u) << "tag " << x.tag;
  }
  for (std::uint64_t tag = 0; tag < kTasks; ++tag) EXPECT_EQ(seen[tag], 1) << "tag " << tag;
  Completion extra[1];
  EXPECT_EQ(c.poll(extra), 0u);
  const std::string stats = stats_when(
      c, [&](const std::string& s) { return top_level(s, "tasks_completed") >= kTasks; });
  EXPECT_EQ(top_level(stats, "tasks_completed"), kTasks) << stats;
  EXPECT_EQ(top_level(stats, "tasks_failed"), 0u) << stats;
  // Every client task is one iteration of an intake loop, and fib(18) is
  // deep enough for inline subtrees (the default scheduler.inline_forks).
  EXPECT_GE(top_level(stats, "spawns"), kTasks) << stats;
  EXPECT_GT(top_level(stats, "inline_subtrees"), 0u) << stats;
}

TEST(ForkJoinKernels, BadArgumentsAreInvalidArgsNamingArgumentZero) {
  test::ScopedWatchdog watchdog("ForkJoinKernels.BadArguments", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "bad-args"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  struct Bad {
    const char* kernel;
    std::uint64_t arg;
  };
  const Bad bad[] = {{"fib", 61},   {"nqueens", 0},  {"nqueens", 17}, {"uts", 2},      {"uts", 0},
                     {"skynet", 7}, {"matmul", 100}, {"matmul", 32},  {"matmul", 8192}};
  std::vector<TaskDescriptor> tasks;
  for (const Bad& b : bad)
    tasks.push_back(make_task(*c.kernel_id(b.kernel), tasks.size(), {b.arg}));
  const std::vector<Completion> out = test::run_all(c, tasks);
  ASSERT_EQ(out.size(), tasks.size());
  std::vector<int> seen(tasks.size(), 0);
  for (const Completion& x : out) {
    ASSERT_LT(x.tag, tasks.size());
    ++seen[x.tag];
    const Bad& b = bad[x.tag];
    EXPECT_EQ(x.status, TaskStatus::kInvalidArgs)
        << b.kernel << "(" << b.arg << "): status " << static_cast<unsigned>(x.status);
    EXPECT_EQ(x.detail, 0u) << b.kernel << "(" << b.arg << ")";
    EXPECT_EQ(x.result, 0u) << b.kernel << "(" << b.arg << ")";
  }
  for (int s : seen) EXPECT_EQ(s, 1);

  // The daemon keeps serving, fork-join tasks included.
  expect_known_answers(c, {{"fib", 20, 6'765}, {"nqueens", 6, 4}, {"skynet", 1'000, 499'500}});
  const std::string stats = stats_when(c, [&](const std::string& s) {
    return top_level(s, "tasks_completed") >= std::size(bad) + 3;
  });
  EXPECT_EQ(top_level(stats, "tasks_completed"), std::size(bad) + 3) << stats;
  EXPECT_EQ(top_level(stats, "tasks_failed"), std::size(bad)) << stats;
}

// Whether the daemon under test records every fork (scheduler.inline_forks
// = false) or runs deep ones as inline subtrees (the default).
enum class Forks { kAllRecorded, kInline };

// Runs rounds of two fib(kStealFibN) tasks on `c` until STATS shows a steal
// (at most kStealRounds); checks every result and the fork counters: with
// every fork recorded, at least one spawn per join performed; with inline
// subtrees, some subtrees and fewer spawns than joins (that is their point).
// Returns the last STATS.
std::string run_until_stolen(Client& c, Forks forks) {
  const std::uint32_t fib = *c.kernel_id("fib");
  std::uint64_t tasks_done = 0, joins = 0;
  std::string stats;
  for (int round = 0; round < kStealRounds; ++round) {
    const std::vector<TaskDescriptor> tasks = {make_task(fib, 0, {kStealFibN}),
                                               make_task(fib, 1, {kStealFibN})};
    const std::vector<Completion> out = test::run_all(c, tasks);
    EXPECT_EQ(out.size(), tasks.size());
    for (const Completion& x : out) {
      EXPECT_EQ(x.status, TaskStatus::kOk) << "detail " << x.detail;
      EXPECT_EQ(x.result, fib_value(kStealFibN));
    }
    tasks_done += tasks.size();
    joins += tasks.size() * fib_joins(kStealFibN);
    stats = stats_when(c, [&](const std::string& s) {
      return top_level(s, "tasks_completed") >= tasks_done &&
             (forks == Forks::kInline || top_level(s, "spawns") >= joins);
    });
    if (top_level(stats, "steals") > 0) break;
  }
  if (forks == Forks::kAllRecorded) {
    EXPECT_GE(top_level(stats, "spawns"), joins) << stats;
    EXPECT_EQ(top_level(stats, "inline_subtrees"), 0u) << stats;
  } else {
    EXPECT_GT(top_level(stats, "inline_subtrees"), 0u) << stats;
    EXPECT_LT(top_level(stats, "spawns"), joins) << stats;
  }
  EXPECT_GT(top_level(stats, "steals"), 0u)
      << "no steal in " << kStealRounds << " rounds of 2 x fib(" << kStealFibN << "): " << stats;
  EXPECT_GE(top_level(stats, "steal_attempts"), top_level(stats, "steals")) << stats;
  const auto rate = json_number(stats, "steal_rate", stats.find("\"clients_connected\":"));
  EXPECT_TRUE(rate.has_value()) << stats;
  EXPECT_GT(rate.value_or(0.0), 0.0) << stats;
  EXPECT_LE(rate.value_or(0.0), 1.0) << stats;
  // The top-level figures are the workers' sums.
  EXPECT_EQ(sum_over_workers(stats, "spawns"), top_level(stats, "spawns")) << stats;
  EXPECT_EQ(sum_over_workers(stats, "inline_subtrees"), top_level(stats, "inline_subtrees"))
      << stats;
  EXPECT_EQ(sum_over_workers(stats, "steals"), top_level(stats, "steals")) << stats;
  EXPECT_EQ(sum_over_workers(stats, "steal_attempts"), top_level(stats, "steal_attempts")) << stats;
  return stats;
}

TEST(ForkJoinKernels, TwoWorkersStealAndStatsCountEveryJoin) {
  test::ScopedWatchdog watchdog("ForkJoinKernels.Steals", 120);
  const test::EditedConfig config({{"inline_forks = true", "inline_forks = false"}});
  auto d = config.start_daemon();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "steals"});
  ASSERT_TRUE(client) << client.status().message();
  const std::string stats = run_until_stolen(**client, Forks::kAllRecorded);
  EXPECT_NE(stats.find("\"steal_policy\":\"topology\""), std::string::npos) << stats;
  // Stolen work was run somewhere: some worker ran jobs it took.
  EXPECT_GT(sum_over_workers(stats, "jobs_stolen_run"), 0u) << stats;
}

TEST(ForkJoinKernels, TwoWorkersStealWithInlineSubtrees) {
  test::ScopedWatchdog watchdog("ForkJoinKernels.InlineSteals", 120);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "inline-steals"});
  ASSERT_TRUE(client) << client.status().message();
  const std::string stats = run_until_stolen(**client, Forks::kInline);
  EXPECT_GT(sum_over_workers(stats, "jobs_stolen_run"), 0u) << stats;
}

TEST(ForkJoinKernels, RandomStealPolicyFromConfigStealsAndStaysCorrect) {
  test::ScopedWatchdog watchdog("ForkJoinKernels.RandomPolicy", 120);
  const test::EditedConfig config({{"steal_policy = \"topology\"", "steal_policy = \"random\""}});
  auto d = config.start_daemon();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "random"});
  ASSERT_TRUE(client) << client.status().message();
  auto first = (*client)->stats_json();
  ASSERT_TRUE(first);
  EXPECT_NE(first->find("\"steal_policy\":\"random\""), std::string::npos) << *first;
  run_until_stolen(**client, Forks::kInline);
  expect_known_answers(**client,
                       {{"fib", 30, 832'040},
                        {"nqueens", 10, 724},
                        {"skynet", 100'000, 4'999'950'000},
                        {"matmul", 128, static_cast<std::uint64_t>(matmul_checksum(128))}});
}

TEST(ForkJoinKernels, BeatctlRunFibPrintsOneJsonLineWithResultAndWallTime) {
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  std::string out;
  ASSERT_EQ(test::run_program(
                {BEAT_BEATCTL_PATH, "--socket", d->socket_path(), "run", "fib", "25", "--json"},
                out, std::chrono::seconds(30)),
            0)
      << out;
  const std::string prefix =
      "{\"kernel\":\"fib\",\"tag\":1,\"status\":\"ok\",\"detail\":0,\"result\":75025,\"wall_us\":";
  ASSERT_EQ(out.rfind(prefix, 0), 0u) << out;
  ASSERT_GE(out.size(), prefix.size() + 2);
  EXPECT_EQ(out.substr(out.size() - 2), "}\n") << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "more than one line: " << out;
  const std::string wall = out.substr(prefix.size(), out.size() - 2 - prefix.size());
  std::size_t used = 0;
  const double wall_us = std::stod(wall, &used);
  EXPECT_EQ(used, wall.size()) << wall;
  EXPECT_GT(wall_us, 0.0) << out;
  EXPECT_LT(wall_us, 30e6) << out;

  // A refused argument is a failed run (exit 1) that still prints the completion.
  ASSERT_EQ(test::run_program(
                {BEAT_BEATCTL_PATH, "--socket", d->socket_path(), "run", "fib", "61", "--json"},
                out, std::chrono::seconds(30)),
            1)
      << out;
  EXPECT_EQ(out.rfind("{\"kernel\":\"fib\",\"tag\":1,\"status\":\"invalid_args\",\"detail\":0,"
                      "\"result\":0,\"wall_us\":",
                      0),
            0u)
      << out;
}

// Whether the task a client called `name` submitted has been taken by a
// worker ("inflight":1 in its STATS entry), re-reading STATS for up to 10 s.
bool wait_until_running(Client& observer, std::string_view name) {
  const std::string key = "\"name\":\"" + std::string(name) + "\"";
  const auto running = [&](const std::string& s) {
    const std::size_t at = s.find(key);
    return at != std::string::npos && s.find("\"inflight\":1", at) != std::string::npos;
  };
  const std::string stats = stats_when(observer, running);
  EXPECT_TRUE(running(stats)) << name << "'s task never ran: " << stats;
  return running(stats);
}

TEST(ForkJoinKernels, OrphanedForkJoinTaskDoesNotWedgeTheScheduler) {
  test::ScopedWatchdog watchdog("ForkJoinKernels.Orphan", 120);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "survivor"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;

  // A child submits one long fib and is killed once a worker has taken it.
  // Kernels do not poll for cancellation, so the orphan runs to its end.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    auto doomed = Client::connect({.socket_path = d->socket_path(), .name = "doomed"});
    if (!doomed) _exit(2);
    const TaskDescriptor t = make_task(*(*doomed)->kernel_id("fib"), 1, {kOrphanFibN});
    if (!(*doomed)->submit({&t, 1})) _exit(3);
    const char x = 'x';
    (void)!::write(ready[1], &x, 1);
    ::pause();
    _exit(0);
  }
  ::close(ready[1]);
  char x;
  ASSERT_EQ(::read(ready[0], &x, 1), 1);
  ::close(ready[0]);
  // The control socket answers STATS while the workers are busy with it.
  ASSERT_TRUE(wait_until_running(c, "doomed"));
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  const auto killed_at = std::chrono::steady_clock::now();

  // Another client is served while the orphan still runs (the next test
  // pins that down without a timer).
  const TaskDescriptor t = make_task(*c.kernel_id("fib"), 7, {20});
  ASSERT_TRUE(c.submit({&t, 1}));
  const auto out = test::reap(c, 1, std::chrono::seconds(30));
  ASSERT_EQ(out.size(), 1u) << d->log();
  EXPECT_EQ(out[0].tag, 7u);
  EXPECT_EQ(out[0].status, TaskStatus::kOk);
  EXPECT_EQ(out[0].result, 6'765u);
  const auto served_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - killed_at)
                             .count();
  RecordProperty("survivor_served_ms", std::to_string(served_ms));
  EXPECT_NE(d->log().find("'doomed' disconnected"), std::string::npos) << d->log();

  // SIGTERM (the orphan may still run) drains within shutdown_timeout_ms
  // (30 s in config/beatd.toml) and exits 0.
  const auto term_at = std::chrono::steady_clock::now();
  EXPECT_EQ(d->signal_and_wait(SIGTERM, std::chrono::seconds(60)), 0) << d->log();
  EXPECT_LT(std::chrono::steady_clock::now() - term_at, std::chrono::seconds(30)) << d->log();
}

// Regression: a worker waiting at a join only stole and a thief ran its
// stolen branch to the end, neither polling the client rings, so while one
// client's fork-join task kept every worker busy another client's task
// waited until a stolen branch (often most of the task) finished: on 2
// workers a noop behind fib(43) waited 1.0-1.2 s. Now busy workers poll the
// rings once per heartbeat and waiting workers poll them too (nested
// intake). Asserted by order, not time: the noop completes while fib runs.
TEST(ForkJoinKernels, AnotherClientsTaskIsNotHeldBehindALongForkJoinTask) {
  // ~1.4 s native on 2 workers, ~1.6 s under TSan.
  constexpr unsigned kLongFibN = kUnderThreadSanitizer ? 40 : 46;
  test::ScopedWatchdog watchdog("ForkJoinKernels.HeadOfLine", 120);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto long_client = Client::connect({.socket_path = d->socket_path(), .name = "long"});
  ASSERT_TRUE(long_client) << long_client.status().message();
  auto short_client = Client::connect({.socket_path = d->socket_path(), .name = "short"});
  ASSERT_TRUE(short_client) << short_client.status().message();
  const TaskDescriptor long_task = make_task(*(*long_client)->kernel_id("fib"), 1, {kLongFibN});
  ASSERT_TRUE((*long_client)->submit({&long_task, 1}));
  ASSERT_TRUE(wait_until_running(**short_client, "long"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both workers in it

  const auto submitted_at = std::chrono::steady_clock::now();
  const TaskDescriptor noop = make_task(*(*short_client)->kernel_id("noop"), 2, {5});
  ASSERT_TRUE((*short_client)->submit({&noop, 1}));
  const auto out = test::reap(**short_client, 1, std::chrono::seconds(30));
  const auto waited = std::chrono::steady_clock::now() - submitted_at;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].result, 5u);
  auto stats = (*short_client)->stats_json();
  ASSERT_TRUE(stats);
  EXPECT_EQ(top_level(*stats, "tasks_completed"), 1u)
      << "the noop was served only after fib(" << kLongFibN << ") finished";
  RecordProperty(
      "noop_waited_ms",
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()));
  const auto long_out = test::reap(**long_client, 1, std::chrono::seconds(60));
  ASSERT_EQ(long_out.size(), 1u);
  EXPECT_EQ(long_out[0].result, fib_value(kLongFibN));
}

// Regression: a worker buffered its completions and posted them every
// kCompletionFlushEvery (16) tasks or at its chunk's end, so a noop's
// completion waited for a 3 s spin that followed it in the same batch. Now
// run_task posts what is pending before a non-batchable kernel
// (KernelInfo::batchable). One worker, so the spin cannot be stolen and
// run elsewhere while the noop's worker ends its part of the chunk early.
// Under the old behaviour both completions are posted together after the
// spin: STATS then counts 2 tasks completed and 0 in flight.
TEST(ForkJoinKernels, FastCompletionIsNotHeldBehindASlowTaskInTheSameChunk) {
  // Far longer than a STATS round trip, under TSan too (the spin reads the
  // clock, which TSan barely slows).
  constexpr std::uint64_t kSpinNs = 3'000'000'000;
  test::ScopedWatchdog watchdog("ForkJoinKernels.FastCompletion", 60);
  auto d = DaemonProcess::start(
      {.workers = 1, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = ""});
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "fast-then-slow"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  // One batch, so one intake chunk: the noop first, then the spin.
  const std::vector<TaskDescriptor> tasks = {make_task(*c.kernel_id("noop"), 1, {7}),
                                             make_task(*c.kernel_id("spin"), 2, {kSpinNs})};
  ASSERT_TRUE(c.submit(tasks));

  const std::vector<Completion> first = test::reap(c, 1);
  ASSERT_EQ(first.size(), 1u) << d->log();
  EXPECT_EQ(first[0].tag, 1u) << "the spin completed before the noop";
  EXPECT_EQ(first[0].status, TaskStatus::kOk) << "detail " << first[0].detail;
  EXPECT_EQ(first[0].result, 7u);
  // At once, while the spin still runs (it has seconds left).
  auto stats = c.stats_json();
  ASSERT_TRUE(stats) << stats.status().message();
  EXPECT_EQ(top_level(*stats, "tasks_completed"), 1u)
      << "the noop's completion was posted only after the spin finished: " << *stats;
  const std::size_t entry = stats->find("\"name\":\"fast-then-slow\"");
  ASSERT_NE(entry, std::string::npos) << *stats;
  EXPECT_EQ(json_number(*stats, "inflight", entry), std::optional<double>(1.0))
      << "the spin is no longer in flight: " << *stats;

  const std::vector<Completion> second = test::reap(c, 1);
  ASSERT_EQ(second.size(), 1u) << d->log();
  EXPECT_EQ(second[0].tag, 2u);
  EXPECT_EQ(second[0].status, TaskStatus::kOk) << "detail " << second[0].detail;
  EXPECT_GE(second[0].result, kSpinNs);  // the nanoseconds it spun
}

// A per-worker counter, one entry per object of the "workers" array.
std::vector<std::uint64_t> per_worker(const std::string& json, std::string_view key) {
  const std::size_t end = json.find("\"clients\":[");
  std::vector<std::uint64_t> values;
  for (std::size_t at = json.find("{\"index\":"); at < end; at = json.find("{\"index\":", at + 1)) {
    const auto v = json_number(json, key, at);
    EXPECT_TRUE(v.has_value()) << "worker at " << at << " has no \"" << key << "\"";
    values.push_back(v ? static_cast<std::uint64_t>(*v) : 0);
  }
  return values;
}

// Regression: a chunk taken by a worker woken from park ran serially on it
// while the other worker stayed parked. The client's doorbell wakes one
// worker; a parked worker raises nobody's heartbeat, and a chunk of 8
// tasks never reaches the kSelfBeatPeriod (256) spawns of the self-check.
// Now the outermost frame of a task (the chunk loop) is split at once when
// workers are parked and none is searching (Worker::share_if_outermost).
// Under the old behaviour the round sees no steal and one worker runs all 8.
TEST(ForkJoinKernels, OneBatchOfSlowTasksIsSharedWithAParkedWorker) {
  constexpr std::uint64_t kTasks = 8;
  constexpr std::uint64_t kSpinNs = 20'000'000;  // 20 ms each: a thief has time to take some
  // A loaded 2-core box may keep the woken worker off-CPU until the first
  // one has run (and reclaimed) the whole chunk, so a round that shows no
  // sharing is retried, up to kRounds in all, before the test fails.
  constexpr int kRounds = 3;
  test::ScopedWatchdog watchdog("ForkJoinKernels.ShareWithParked", 120);
  auto d = DaemonProcess::start(
      {.workers = 2, .metrics_address = "", .extra_args = {}, .cpus = {}, .config_path = ""});
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "share"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  const std::uint32_t spin = *c.kernel_id("spin");

  std::uint64_t completed = 0, steals_before = 0;
  std::vector<std::uint64_t> tasks_before = {0, 0};
  std::string stats;
  bool shared = false;
  for (int round = 0; round < kRounds && !shared; ++round) {
    // Both workers parked, so none is searching and none would raise a
    // heartbeat flag (idle_spin_us is 100 us: this takes milliseconds).
    const auto both_parked = [](const std::string& s) {
      return json_number(s, "parked_workers") == std::optional<double>(2.0);
    };
    stats = stats_when(c, both_parked);
    ASSERT_TRUE(both_parked(stats)) << "the workers never both parked: " << stats;

    std::vector<TaskDescriptor> tasks;  // one batch, so one intake chunk
    for (std::uint64_t i = 0; i < kTasks; ++i)
      tasks.push_back(make_task(spin, completed + i, {kSpinNs}));
    const std::vector<Completion> out = test::run_all(c, tasks);
    ASSERT_EQ(out.size(), kTasks) << d->log();
    for (const Completion& x : out) {
      EXPECT_EQ(x.status, TaskStatus::kOk) << "tag " << x.tag << " detail " << x.detail;
      EXPECT_GE(x.result, kSpinNs) << "tag " << x.tag;
    }
    completed += kTasks;

    // This round's share: a steal, and each worker ran some of the 8. A
    // thief publishes its steal count just after posting its completions,
    // hence the re-reads.
    const auto split = [&](const std::string& s) {
      const std::vector<std::uint64_t> ran = per_worker(s, "tasks");
      return top_level(s, "tasks_completed") >= completed &&
             top_level(s, "steals") > steals_before && ran.size() == 2 &&
             ran[0] > tasks_before[0] && ran[1] > tasks_before[1];
    };
    stats = stats_when(c, split, std::chrono::seconds(2));
    shared = split(stats);
    steals_before = top_level(stats, "steals");
    tasks_before = per_worker(stats, "tasks");
    if (tasks_before.size() != 2) tasks_before.resize(2, 0);
    if (!shared) RecordProperty("unshared_round_" + std::to_string(round), stats);
  }
  EXPECT_TRUE(shared) << "in " << kRounds << " rounds of " << kTasks
                      << " spin tasks from one batch, no round was shared by both workers; last "
                      << "STATS: " << stats;
  EXPECT_EQ(top_level(stats, "tasks_completed"), completed) << stats;
  EXPECT_EQ(top_level(stats, "tasks_failed"), 0u) << stats;
}

}  // namespace
}  // namespace beat
