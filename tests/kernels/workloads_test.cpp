// Tests of the fork-join benchmark workloads (kernels/workloads/): every
// workload's exact result, with SerialExecutor and with ThreadedExecutor, a
// test-only executor that really runs join's second callable (and halves of
// parallel_for ranges) on other threads, so a data race in a workload shows
// under ThreadSanitizer (the tsan preset runs these tests too).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <thread>

#include "kernels/workloads/fib.hpp"
#include "kernels/workloads/fork_join.hpp"
#include "kernels/workloads/matmul.hpp"
#include "kernels/workloads/nqueens.hpp"
#include "kernels/workloads/skynet.hpp"
#include "kernels/workloads/uts.hpp"
#include "tests/support/watchdog.hpp"

namespace beat::workloads {
namespace {

// Joins nested fewer than this deep fork a std::thread; deeper ones run
// serially. 3 gives up to 8 threads at a time per workload call, enough for
// TSan to see every sharing pattern without thousands of thread starts.
constexpr unsigned kThreadedForkDepth = 3;

// A fork-join executor for tests: join runs b on a new std::thread (and a on
// the calling thread) while fewer than kThreadedForkDepth joins enclose the
// call, and serially below that. parallel_for splits its range in halves with
// join down to `grain` indices. Thread starts and joins give TSan the
// happens-before edges the contract promises, and nothing more.
// Thread-safety: an instance belongs to the thread it was handed to.
class ThreadedExecutor {
 public:
  ThreadedExecutor() = default;
  explicit ThreadedExecutor(unsigned depth) : depth_(depth) {}

  template <class A, class B>
  void join(A&& a, B&& b) {
    if (depth_ >= kThreadedForkDepth) {
      a(*this);
      b(*this);
      return;
    }
    ThreadedExecutor ex_a(depth_ + 1);
    ThreadedExecutor ex_b(depth_ + 1);
    std::thread thread([&b, &ex_b] { b(ex_b); });
    a(ex_a);
    thread.join();
  }

  template <class Body>
  void parallel_for(std::uint64_t begin, std::uint64_t end, std::uint64_t grain, Body&& body) {
    if (begin >= end) return;
    if (end - begin <= std::max<std::uint64_t>(grain, 1)) {
      for (std::uint64_t i = begin; i < end; ++i) body(*this, i);
      return;
    }
    const std::uint64_t middle = begin + (end - begin) / 2;
    join([&](ThreadedExecutor& e) { e.parallel_for(begin, middle, grain, body); },
         [&](ThreadedExecutor& e) { e.parallel_for(middle, end, grain, body); });
  }

 private:
  unsigned depth_ = 0;
};

static_assert(ForkJoinExecutor<ThreadedExecutor>);

// Every test here fails after this long instead of hanging ctest.
constexpr unsigned kWatchdogSeconds = 60;

// Each workload check below is a template run once per executor, as the
// cases <Workload>.Serial... and <Workload>.Threaded... (plain TESTs, so the
// ctest names stay Component.Scenario).

// ---- the executors themselves ----

template <class Ex>
void expect_parallel_for_calls_each_index_once() {
  test::ScopedWatchdog watchdog("ForkJoin parallel_for", kWatchdogSeconds);
  Ex ex;
  constexpr std::uint64_t kBegin = 5;
  constexpr std::uint64_t kEnd = 105;
  std::array<std::atomic<int>, kEnd> calls{};
  ex.parallel_for(kBegin, kEnd, 3,
                  [&](Ex&, std::uint64_t i) { calls[i].fetch_add(1, std::memory_order_relaxed); });
  for (std::uint64_t i = 0; i < kEnd; ++i) {
    EXPECT_EQ(calls[i].load(std::memory_order_relaxed), i < kBegin ? 0 : 1) << "index " << i;
  }
  // An empty range calls nothing.
  ex.parallel_for(7, 7, 1, [&](Ex&, std::uint64_t) { ADD_FAILURE(); });
}

template <class Ex>
void expect_join_runs_both_once() {
  test::ScopedWatchdog watchdog("ForkJoin join", kWatchdogSeconds);
  Ex ex;
  int a_calls = 0;
  int b_calls = 0;
  ex.join([&](Ex&) { ++a_calls; }, [&](Ex&) { ++b_calls; });
  EXPECT_EQ(a_calls, 1);
  EXPECT_EQ(b_calls, 1);
}

TEST(ForkJoin, SerialParallelForCallsEachIndexExactlyOnce) {
  expect_parallel_for_calls_each_index_once<SerialExecutor>();
}
TEST(ForkJoin, ThreadedParallelForCallsEachIndexExactlyOnce) {
  expect_parallel_for_calls_each_index_once<ThreadedExecutor>();
}
TEST(ForkJoin, SerialJoinRunsBothCallablesOnce) { expect_join_runs_both_once<SerialExecutor>(); }
TEST(ForkJoin, ThreadedJoinRunsBothCallablesOnce) {
  expect_join_runs_both_once<ThreadedExecutor>();
}

// ---- fib ----

static_assert(fib_reference(0) == 0);
static_assert(fib_reference(1) == 1);
static_assert(fib_reference(10) == 55);
static_assert(fib_reference(93) == 12200160415121876738ull);

constexpr unsigned kFibMaxTested = 25;

template <class Ex>
void expect_fib_matches_reference() {
  test::ScopedWatchdog watchdog("Fib", kWatchdogSeconds);
  Ex ex;
  for (unsigned n = 0; n <= kFibMaxTested; ++n) {
    EXPECT_EQ(fib(ex, n), fib_reference(n)) << "n = " << n;
  }
}

TEST(Fib, SerialMatchesReference) { expect_fib_matches_reference<SerialExecutor>(); }
TEST(Fib, ThreadedMatchesReference) { expect_fib_matches_reference<ThreadedExecutor>(); }

TEST(Fib, FibSerialMatchesReference) {
  for (unsigned n = 0; n <= kFibMaxTested; ++n) {
    EXPECT_EQ(fib_serial(n), fib_reference(n)) << "n = " << n;
  }
}

// ---- nqueens ----

constexpr unsigned kNqueensMaxTested = 10;

template <class Ex>
void expect_nqueens_matches_known() {
  test::ScopedWatchdog watchdog("Nqueens", kWatchdogSeconds);
  Ex ex;
  for (unsigned n = 1; n <= kNqueensMaxTested; ++n) {
    EXPECT_EQ(nqueens(ex, n), nqueens_known(n).value()) << "n = " << n;
  }
}

TEST(Nqueens, SerialMatchesKnownCounts) { expect_nqueens_matches_known<SerialExecutor>(); }
TEST(Nqueens, ThreadedMatchesKnownCounts) { expect_nqueens_matches_known<ThreadedExecutor>(); }

TEST(Nqueens, KnownCountsCoverExactlyOneToSixteen) {
  EXPECT_FALSE(nqueens_known(0).has_value());
  EXPECT_EQ(nqueens_known(1), 1u);
  EXPECT_EQ(nqueens_known(8), 92u);
  EXPECT_EQ(nqueens_known(16), 14772512u);
  EXPECT_FALSE(nqueens_known(17).has_value());
  EXPECT_FALSE(nqueens_valid_n(0));
  EXPECT_TRUE(nqueens_valid_n(16));
  EXPECT_FALSE(nqueens_valid_n(17));
}

// ---- uts ----

// Exact equality with the published counts validates the SHA-1 RNG and the
// tree rules: any deviation changes millions of nodes.
template <class Ex>
void expect_uts_t1_matches_known() {
  test::ScopedWatchdog watchdog("Uts T1", kWatchdogSeconds);
  Ex ex;
  const UtsCount count = uts(ex, UtsTree::kT1);
  EXPECT_EQ(count.nodes, 4'130'071u);
  EXPECT_EQ(count.leaves, 3'305'118u);
  EXPECT_EQ(count.max_depth, 10u);
  EXPECT_EQ(count, uts_known(UtsTree::kT1));
}

TEST(Uts, SerialT1MatchesKnownCounts) { expect_uts_t1_matches_known<SerialExecutor>(); }
TEST(Uts, ThreadedT1MatchesKnownCounts) { expect_uts_t1_matches_known<ThreadedExecutor>(); }

// T3 (1572 levels deep) once, serially: the point is the binomial rule.
TEST(Uts, SerialT3MatchesKnownCounts) {
  test::ScopedWatchdog watchdog("Uts T3", kWatchdogSeconds);
  SerialExecutor ex;
  const UtsCount count = uts(ex, UtsTree::kT3);
  EXPECT_EQ(count.nodes, 4'112'897u);
  EXPECT_EQ(count.leaves, 3'599'034u);
  EXPECT_EQ(count.max_depth, 1572u);
  EXPECT_EQ(count, uts_known(UtsTree::kT3));
}

// ---- skynet ----

static_assert(skynet_reference(1'000'000) == 499'999'500'000u);

template <class Ex>
void expect_skynet_matches_reference() {
  test::ScopedWatchdog watchdog("Skynet", kWatchdogSeconds);
  Ex ex;
  for (const std::uint64_t leaves : {1ull, 10ull, 10'000ull, 1'000'000ull}) {
    EXPECT_EQ(skynet(ex, leaves), skynet_reference(leaves)) << "leaves = " << leaves;
  }
}

TEST(Skynet, SerialMatchesReference) { expect_skynet_matches_reference<SerialExecutor>(); }
TEST(Skynet, ThreadedMatchesReference) { expect_skynet_matches_reference<ThreadedExecutor>(); }

TEST(Skynet, ValidLeavesArePowersOfTenUpToTenToTheEighth) {
  std::uint64_t power = 1;
  for (int k = 0; k <= 8; ++k, power *= 10) EXPECT_TRUE(skynet_valid_leaves(power)) << power;
  EXPECT_FALSE(skynet_valid_leaves(0));
  EXPECT_FALSE(skynet_valid_leaves(2));
  EXPECT_FALSE(skynet_valid_leaves(999));
  EXPECT_FALSE(skynet_valid_leaves(1'000'000'000));  // 10^9: too many
}

// ---- matmul ----

template <class Ex>
void expect_matmul_verifies() {
  test::ScopedWatchdog watchdog("Matmul", kWatchdogSeconds);
  Ex ex;
  for (const std::uint64_t n : {64u, 128u, 256u}) {
    MatmulProblem problem(n);
    problem.multiply(ex);
    EXPECT_TRUE(problem.verify()) << "n = " << n;
  }
}

TEST(Matmul, SerialProductVerifies) { expect_matmul_verifies<SerialExecutor>(); }
TEST(Matmul, ThreadedProductVerifies) { expect_matmul_verifies<ThreadedExecutor>(); }

// The same product by either executor, to the last bit.
TEST(Matmul, ChecksumIsTheSameForEveryExecutor) {
  test::ScopedWatchdog watchdog("Matmul checksum", kWatchdogSeconds);
  constexpr std::uint64_t kN = 128;
  MatmulProblem serial(kN);
  SerialExecutor serial_ex;
  serial.multiply(serial_ex);
  MatmulProblem threaded(kN);
  ThreadedExecutor threaded_ex;
  threaded.multiply(threaded_ex);
  EXPECT_EQ(serial.checksum(), threaded.checksum());
  EXPECT_TRUE(std::equal(serial.c(), serial.c() + kN * kN, threaded.c()));
}

// verify() can fail: one entry off by one, anywhere, is caught.
TEST(Matmul, CorruptedResultFailsVerify) {
  constexpr std::uint64_t kN = 64;
  MatmulProblem problem(kN);
  SerialExecutor ex;
  problem.multiply(ex);
  ASSERT_TRUE(problem.verify());
  for (const std::uint64_t index : {std::uint64_t{0}, kN * kN / 2 + 7, kN * kN - 1}) {
    problem.c()[index] += 1.0f;
    EXPECT_FALSE(problem.verify()) << "C[" << index << "] + 1";
    problem.c()[index] -= 1.0f;
  }
  problem.c()[kN + 3] += 0.5f;  // not an integer: no exact product can be
  EXPECT_FALSE(problem.verify());
  problem.c()[kN + 3] -= 0.5f;
  EXPECT_TRUE(problem.verify());
}

TEST(Matmul, UnmultipliedAndTwiceMultipliedFailVerify) {
  MatmulProblem problem(64);
  EXPECT_FALSE(problem.verify());  // C is zero
  SerialExecutor ex;
  problem.multiply(ex);
  problem.multiply(ex);  // C = 2 A B
  EXPECT_FALSE(problem.verify());
  problem.clear_result();
  problem.multiply(ex);
  EXPECT_TRUE(problem.verify());
}

TEST(Matmul, RejectsInvalidSizes) {
  EXPECT_THROW(MatmulProblem(32), std::invalid_argument);
  EXPECT_THROW(MatmulProblem(96), std::invalid_argument);
  EXPECT_THROW(MatmulProblem(8192), std::invalid_argument);
  EXPECT_TRUE(matmul_valid_n(64));
  EXPECT_TRUE(matmul_valid_n(4096));
  EXPECT_FALSE(matmul_valid_n(0));
  EXPECT_FALSE(matmul_valid_n(100));
}

}  // namespace
}  // namespace beat::workloads
