// Unit tests of the metrics plumbing that needs no daemon process: the time
// histogram's bucketing (daemon/worker_pool.hpp) and the per-client label
// table (daemon/client_metrics.hpp) over real sessions.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "daemon/client_metrics.hpp"
#include "daemon/client_session.hpp"
#include "daemon/worker_pool.hpp"

namespace beat {
namespace {

TEST(TimeBucket, BoundsAreOneMicrosecondTimesPowersOfTwoThenOneSecond) {
  EXPECT_EQ(time_bucket_bound_ns(0), 1000u);
  EXPECT_EQ(time_bucket_bound_ns(1), 2000u);
  EXPECT_EQ(time_bucket_bound_ns(19), 524'288'000u);
  EXPECT_EQ(time_bucket_bound_ns(20), 1'000'000'000u);
  EXPECT_EQ(kTimeBuckets, 22u);  // 21 bounds and +Inf
}

TEST(TimeBucket, EachBoundIsInItsBucketAndOneMoreIsInTheNext) {
  EXPECT_EQ(time_bucket(0), 0u);
  EXPECT_EQ(time_bucket(1), 0u);
  for (std::size_t b = 0; b + 1 < kTimeBuckets; ++b) {
    SCOPED_TRACE(b);
    EXPECT_EQ(time_bucket(time_bucket_bound_ns(b)), b);
    EXPECT_EQ(time_bucket(time_bucket_bound_ns(b) + 1), b + 1);
    if (b > 0) {
      EXPECT_EQ(time_bucket(time_bucket_bound_ns(b) - 1), b);
    }
  }
  EXPECT_EQ(time_bucket(std::numeric_limits<std::uint64_t>::max()), kTimeBuckets - 1);
}

TEST(TimeBucket, AgreesWithALinearScanOverEveryBound) {
  // The bit_width shortcut against the obvious definition, on values
  // around every bound and a spread in between.
  const auto scan = [](std::uint64_t ns) {
    std::size_t b = 0;
    while (b + 1 < kTimeBuckets && ns > time_bucket_bound_ns(b)) ++b;
    return b;
  };
  for (std::uint64_t ns = 0; ns < 5000; ++ns) ASSERT_EQ(time_bucket(ns), scan(ns)) << ns;
  for (std::size_t b = 0; b + 1 < kTimeBuckets; ++b)
    for (std::int64_t d = -3; d <= 3; ++d) {
      const std::uint64_t ns = time_bucket_bound_ns(b) + static_cast<std::uint64_t>(d);
      ASSERT_EQ(time_bucket(ns), scan(ns)) << ns;
    }
  for (std::uint64_t ns = 1; ns < 4'000'000'000ull; ns = ns * 3 + 7)
    ASSERT_EQ(time_bucket(ns), scan(ns)) << ns;
}

class ClientMetricsTest : public ::testing::Test {
 protected:
  std::unique_ptr<ClientSession> session(const std::string& name) {
    const auto layout = compute_layout(8, 8, 64 * 1024);
    auto s = ClientSession::create("beat-metrics-test-" + std::to_string(next_id_), *layout, 1,
                                   next_id_, PeerCredentials{}, name);
    ++next_id_;
    EXPECT_TRUE(s) << s.status().message();
    return s ? std::move(s).value() : nullptr;
  }
  static const ClientMetrics::Row* find(const std::vector<ClientMetrics::Row>& rows,
                                        const std::string& client) {
    for (const auto& r : rows)
      if (r.client == client) return &r;
    return nullptr;
  }
  std::uint32_t next_id_ = 1;
};

TEST_F(ClientMetricsTest, LiveSessionsAreSummedByNameAndFoldedOnDetach) {
  ClientMetrics m;
  auto a1 = session("app");
  auto a2 = session("app");
  auto b = session("");
  m.attach(*a1);
  m.attach(*a2);
  m.attach(*b);
  a1->tasks_taken_.store(10);
  a1->tasks_completed_.store(7);
  a1->tasks_failed_.store(2);
  a2->tasks_taken_.store(5);
  a2->tasks_completed_.store(5);
  b->tasks_taken_.store(1);
  std::vector<ClientMetrics::Row> rows = m.rows();
  ASSERT_EQ(rows.size(), 2u);
  const ClientMetrics::Row* app = find(rows, "app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->submitted, 15u);
  EXPECT_EQ(app->completed, 12u);
  EXPECT_EQ(app->failed, 2u);
  EXPECT_EQ(app->sessions, 2u);
  EXPECT_EQ(app->arena_bytes, 2u * 64 * 1024);
  ASSERT_NE(find(rows, ClientMetrics::kUnnamedLabel), nullptr);
  EXPECT_EQ(find(rows, ClientMetrics::kUnnamedLabel)->submitted, 1u);

  // a1 goes: its final counts stay with "app"; its gauges leave.
  a1->tasks_completed_.store(10);
  m.detach(*a1);
  a1.reset();
  rows = m.rows();
  app = find(rows, "app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->submitted, 15u);
  EXPECT_EQ(app->completed, 15u);
  EXPECT_EQ(app->sessions, 1u);
  EXPECT_EQ(app->arena_bytes, 64u * 1024);
  m.detach(*a2);
  m.detach(*b);
  m.detach(*b);  // a second detach changes nothing
  rows = m.rows();
  EXPECT_EQ(find(rows, "app")->completed, 15u);
  EXPECT_EQ(find(rows, "app")->sessions, 0u);
  EXPECT_EQ(find(rows, ClientMetrics::kUnnamedLabel)->submitted, 1u);
}

TEST_F(ClientMetricsTest, NamesBeyondTheLimitShareTheOtherLabel) {
  ClientMetrics m;
  std::vector<std::unique_ptr<ClientSession>> sessions;
  for (std::size_t i = 0; i < ClientMetrics::kMaxNames + 3; ++i) {
    sessions.push_back(session("n" + std::to_string(i)));
    sessions.back()->tasks_taken_.store(1);
    m.attach(*sessions.back());
  }
  const std::vector<ClientMetrics::Row> rows = m.rows();
  ASSERT_EQ(rows.size(), ClientMetrics::kMaxNames + 1);
  ASSERT_NE(find(rows, ClientMetrics::kOtherLabel), nullptr);
  EXPECT_EQ(find(rows, ClientMetrics::kOtherLabel)->submitted, 3u);
  EXPECT_EQ(find(rows, ClientMetrics::kOtherLabel)->sessions, 3u);
  EXPECT_NE(find(rows, "n31"), nullptr);
  EXPECT_EQ(find(rows, "n32"), nullptr);
  // A name that already has a label keeps it.
  auto again = session("n0");
  m.attach(*again);
  EXPECT_EQ(find(m.rows(), "n0")->sessions, 2u);
  for (auto& s : sessions) m.detach(*s);
  m.detach(*again);
}

TEST_F(ClientMetricsTest, ClientWrittenFiguresAreClamped) {
  ClientMetrics m;
  auto s = session("hostile");
  m.attach(*s);
  SegmentHeader& h = *s->view().header;
  // Indices far apart and an arena use larger than the arena: a client
  // can write anything there.
  h.sq.tail.value.store(0x8000'0000u);
  h.cq.head.value.store(12345);
  h.arena_used_bytes.store(~std::uint64_t{0});
  std::vector<ClientMetrics::Row> rows = m.rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].sq_depth, 0u);
  EXPECT_EQ(rows[0].cq_depth, 0u);
  EXPECT_EQ(rows[0].arena_used_bytes, s->view().layout.arena_bytes);
  // Plausible values pass through.
  h.sq.tail.value.store(3);
  h.cq.head.value.store(0);
  s->cq_commit_.store(5);
  h.arena_used_bytes.store(4096);
  rows = m.rows();
  EXPECT_EQ(rows[0].sq_depth, 3u);
  EXPECT_EQ(rows[0].cq_depth, 5u);
  EXPECT_EQ(rows[0].arena_used_bytes, 4096u);
  m.detach(*s);
}

}  // namespace
}  // namespace beat
