// Integration tests of beatd's Prometheus metrics (daemon/metrics.cpp,
// daemon/client_metrics.cpp): a real daemon, real clients, a real HTTP
// scrape, and exact counts.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/integration/scrape.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;
using Samples = std::map<std::string, double>;

class Metrics : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = DaemonProcess::start({.workers = 2,
                                    .metrics_address = "127.0.0.1:0",
                                    .extra_args = {},
                                    .cpus = {},
                                    .config_path = ""});
    ASSERT_NE(daemon_, nullptr);
  }

  std::unique_ptr<Client> connect(const std::string& name) {
    auto c = Client::connect({.socket_path = daemon_->socket_path(), .name = name});
    EXPECT_TRUE(c) << c.status().message();
    return c ? std::move(c).value() : nullptr;
  }

  Samples scrape(Client& c) {
    if (port_ < 0) {
      auto stats = c.stats_json();
      EXPECT_TRUE(stats);
      if (stats) port_ = test::metrics_port(*stats);
    }
    const std::string response = test::http_get(port_);
    EXPECT_NE(response.find("200 OK"), std::string::npos) << response;
    return test::parse_samples(response);
  }

  // Scrapes until `done` holds (the figures the workers publish may trail
  // the completions the client already reaped by a few microseconds).
  Samples scrape_until(Client& c, const std::function<bool(const Samples&)>& done) {
    Samples s;
    for (int i = 0; i < 200; ++i) {
      s = scrape(c);
      if (done(s)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return s;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  int port_ = -1;
};

double at(const Samples& s, const std::string& series) {
  const auto it = s.find(series);
  EXPECT_NE(it, s.end()) << "no series " << series;
  return it == s.end() ? -1 : it->second;
}

TEST_F(Metrics, CountsTasksByKernelAndByClientExactly) {
  test::ScopedWatchdog watchdog("Metrics.CountsTasksByKernelAndByClientExactly", 60);
  auto alpha = connect("alpha");
  auto beta = connect("beta");
  ASSERT_TRUE(alpha && beta);
  const std::uint32_t noop = *alpha->kernel_id("noop");
  const std::uint32_t checksum = *alpha->kernel_id("checksum");
  // alpha: 300 noops, 100 checksums of a range outside the arena (each
  // fails with invalid_range), 200 tasks naming no kernel.
  std::vector<TaskDescriptor> tasks;
  for (std::uint64_t i = 0; i < 300; ++i) tasks.push_back(make_task(noop, i));
  for (std::uint64_t i = 0; i < 100; ++i) {
    TaskDescriptor d = make_task(checksum, 1000 + i);
    d.flags |= kTaskFlagUsesData;
    d.data_offset = alpha->arena_bytes();
    d.data_length = 64;
    tasks.push_back(d);
  }
  for (std::uint64_t i = 0; i < 200; ++i) tasks.push_back(make_task(0xFFFF'0000u, 2000 + i));
  const std::vector<Completion> a = test::run_all(*alpha, tasks);
  ASSERT_EQ(a.size(), 600u);
  std::size_t failed = 0;
  for (const Completion& c : a) failed += c.status == TaskStatus::kOk ? 0 : 1;
  ASSERT_EQ(failed, 300u);
  // beta: 50 noops.
  std::vector<TaskDescriptor> more;
  for (std::uint64_t i = 0; i < 50; ++i) more.push_back(make_task(noop, i));
  ASSERT_EQ(test::run_all(*beta, more).size(), 50u);

  const Samples s = scrape_until(*alpha, [](const Samples& x) {
    return test::sum_family(x, "beat_tasks_completed_total") == 650 &&
           test::sum_family(x, "beat_task_latency_seconds_count") == 2;
  });
  EXPECT_EQ(at(s, R"(beat_tasks_submitted_total{kernel="noop"})"), 350);
  EXPECT_EQ(at(s, R"(beat_tasks_completed_total{kernel="noop"})"), 350);
  EXPECT_EQ(at(s, R"(beat_tasks_failed_total{kernel="noop"})"), 0);
  EXPECT_EQ(at(s, R"(beat_tasks_submitted_total{kernel="checksum"})"), 100);
  EXPECT_EQ(at(s, R"(beat_tasks_completed_total{kernel="checksum"})"), 100);
  EXPECT_EQ(at(s, R"(beat_tasks_failed_total{kernel="checksum"})"), 100);
  EXPECT_EQ(at(s, R"m(beat_tasks_submitted_total{kernel="(unregistered)"})m"), 200);
  EXPECT_EQ(at(s, R"m(beat_tasks_completed_total{kernel="(unregistered)"})m"), 200);
  EXPECT_EQ(at(s, R"m(beat_tasks_failed_total{kernel="(unregistered)"})m"), 200);
  EXPECT_EQ(test::sum_family(s, "beat_tasks_submitted_total"), 650);
  EXPECT_EQ(test::sum_family(s, "beat_tasks_completed_total"), 650);
  EXPECT_EQ(test::sum_family(s, "beat_worker_tasks_completed_total"), 650);

  EXPECT_EQ(at(s, R"(beat_client_tasks_submitted_total{client="alpha"})"), 600);
  EXPECT_EQ(at(s, R"(beat_client_tasks_completed_total{client="alpha"})"), 600);
  EXPECT_EQ(at(s, R"(beat_client_tasks_failed_total{client="alpha"})"), 300);
  EXPECT_EQ(at(s, R"(beat_client_tasks_submitted_total{client="beta"})"), 50);
  EXPECT_EQ(at(s, R"(beat_client_tasks_completed_total{client="beta"})"), 50);
  EXPECT_EQ(at(s, R"(beat_client_tasks_failed_total{client="beta"})"), 0);

  // Latency samples: each client's first submit call is one (the client
  // library marks the first task of a call when its coarse clock moved
  // since its last sample; a new client has none). Buckets are cumulative,
  // and the reaped tasks took well under a second.
  EXPECT_EQ(at(s, "beat_task_latency_seconds_count"), 2);
  EXPECT_EQ(at(s, R"(beat_task_latency_seconds_bucket{le="+Inf"})"), 2);
  EXPECT_EQ(at(s, R"(beat_task_latency_seconds_bucket{le="1"})"), 2);
  EXPECT_LE(at(s, R"(beat_task_latency_seconds_bucket{le="1e-06"})"),
            at(s, R"(beat_task_latency_seconds_bucket{le="0.001024"})"));
  EXPECT_GT(at(s, "beat_task_latency_seconds_sum"), 0);
  EXPECT_LT(at(s, "beat_task_latency_seconds_sum"), 2.0);
  // Every task went through batch formation once.
  EXPECT_EQ(at(s, "beat_batch_size_sum"), 650);
  EXPECT_EQ(at(s, "beat_batch_size_count"), at(s, "beat_batches_total"));
  EXPECT_EQ(at(s, "beat_workers"), 2);
  EXPECT_EQ(at(s, "beat_connected_clients"), 2);
  // beat_build_info carries the version STATS reports.
  auto stats = alpha->stats_json();
  ASSERT_TRUE(stats);
  const auto v = stats->find("\"version\":\"");
  ASSERT_NE(v, std::string::npos);
  const std::string version = stats->substr(v + 11, stats->find('"', v + 11) - (v + 11));
  EXPECT_EQ(at(s, "beat_build_info{version=\"" + version + "\"}"), 1);
}

TEST_F(Metrics, QueueDepthsAndArenaUseFollowOneClient) {
  test::ScopedWatchdog watchdog("Metrics.QueueDepthsAndArenaUseFollowOneClient", 60);
  auto c = connect("depths");
  ASSERT_TRUE(c);
  const std::uint32_t spin = *c->kernel_id("spin");
  const std::uint32_t noop = *c->kernel_id("noop");
  auto block = c->allocate(64 * 1024);
  auto small = c->allocate(100);  // one granule rounds it to 128 bytes
  ASSERT_TRUE(block && small);

  // An ordered 1.5 s spin, then (once it runs) 10 ordered noops: intake
  // holds ordered tasks back while an ordered batch is in flight, so all
  // 10 wait in the submission ring.
  TaskDescriptor hold = make_task(spin, 1, {1'500'000'000});
  hold.flags |= kTaskFlagOrdered;
  ASSERT_TRUE(c->submit({&hold, 1}));
  Samples s = scrape_until(*c, [](const Samples& x) {
    return x.contains(R"(beat_tasks_submitted_total{kernel="spin"})") &&
           x.at(R"(beat_tasks_submitted_total{kernel="spin"})") == 1;
  });
  std::vector<TaskDescriptor> queued;
  for (std::uint64_t i = 0; i < 10; ++i) {
    queued.push_back(make_task(noop, 100 + i));
    queued.back().flags |= kTaskFlagOrdered;
  }
  ASSERT_TRUE(c->submit(queued));
  s = scrape(*c);
  EXPECT_EQ(at(s, R"(beat_queue_depth{client="depths",queue="submission"})"), 10);
  EXPECT_EQ(at(s, R"(beat_arena_bytes{client="depths"})"), static_cast<double>(c->arena_bytes()));
  EXPECT_EQ(at(s, R"(beat_arena_used_bytes{client="depths"})"), 64 * 1024 + 128);

  // Nothing reaped yet: once all 11 ran, their completions wait in the CQ.
  s = scrape_until(*c, [](const Samples& x) {
    return x.contains(R"(beat_client_tasks_completed_total{client="depths"})") &&
           x.at(R"(beat_client_tasks_completed_total{client="depths"})") == 11;
  });
  EXPECT_EQ(at(s, R"(beat_queue_depth{client="depths",queue="submission"})"), 0);
  EXPECT_EQ(at(s, R"(beat_queue_depth{client="depths",queue="completion"})"), 11);
  ASSERT_EQ(test::reap(*c, 11).size(), 11u);
  c->release(*small);
  s = scrape(*c);
  EXPECT_EQ(at(s, R"(beat_queue_depth{client="depths",queue="completion"})"), 0);
  EXPECT_EQ(at(s, R"(beat_arena_used_bytes{client="depths"})"), 64 * 1024);
  // The spin was the client's first submit call, so a latency sample: it
  // ran 1.5 s, past the last finite bucket. The noops' call may be one too
  // (if the coarse clock ticked in between): submitted just after the spin
  // started, it waited nearly as long, well over 0.52 s.
  const double samples = at(s, "beat_task_latency_seconds_count");
  EXPECT_GE(samples, 1);
  EXPECT_LE(samples, 2);
  EXPECT_LE(at(s, R"(beat_task_latency_seconds_bucket{le="1"})"), samples - 1);
  EXPECT_EQ(at(s, R"(beat_task_latency_seconds_bucket{le="0.524288"})"), 0);
  EXPECT_GE(at(s, "beat_task_latency_seconds_sum"), 1.5);
}

TEST_F(Metrics, ApplicationsCannotMarkTheirOwnLatencySamples) {
  test::ScopedWatchdog watchdog("Metrics.ApplicationsCannotMarkTheirOwnLatencySamples", 30);
  auto c = connect("marker");
  ASSERT_TRUE(c);
  const std::uint32_t noop = *c->kernel_id("noop");
  TaskDescriptor forged = make_task(noop, 7);
  forged.flags |= kTaskFlagStamped;
  const Status st = c->submit({&forged, 1});
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("task 0 (tag 7) sets kTaskFlagStamped"), std::string::npos)
      << st.message();
  // Nothing was submitted: the next task is the only completion.
  const auto out = test::run_all(*c, {make_task(noop, 8, {8})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 8u);
  const Samples s = scrape_until(*c, [](const Samples& x) {
    return test::sum_family(x, "beat_client_tasks_completed_total") == 1;
  });
  EXPECT_EQ(at(s, R"(beat_client_tasks_submitted_total{client="marker"})"), 1);
}

TEST_F(Metrics, ClientLabelsAreBoundedAndOutliveTheirSessions) {
  test::ScopedWatchdog watchdog("Metrics.ClientLabelsAreBoundedAndOutliveTheirSessions", 90);
  // 34 clients with distinct names, one after another, one noop each.
  for (int i = 0; i < 34; ++i) {
    auto c = connect("c" + std::to_string(100 + i));
    ASSERT_TRUE(c);
    const std::uint32_t noop = *c->kernel_id("noop");
    ASSERT_EQ(test::run_all(*c, {make_task(noop, 1)}).size(), 1u);
  }
  auto probe = connect("c100");  // a name that already has a label
  ASSERT_TRUE(probe);
  const Samples s = scrape_until(*probe, [](const Samples& x) {
    return test::sum_family(x, "beat_client_tasks_completed_total") == 34;
  });
  std::size_t labels = 0;
  for (const auto& [series, value] : s)
    if (series.rfind("beat_client_tasks_completed_total{", 0) == 0) ++labels;
  // 32 names, then "(other)" for the 33rd and 34th.
  EXPECT_EQ(labels, 33u);
  EXPECT_EQ(at(s, R"(beat_client_tasks_completed_total{client="c100"})"), 1);
  EXPECT_EQ(at(s, R"(beat_client_tasks_completed_total{client="c131"})"), 1);
  EXPECT_EQ(at(s, R"m(beat_client_tasks_completed_total{client="(other)"})m"), 2);
  EXPECT_FALSE(s.contains(R"(beat_client_tasks_completed_total{client="c132"})"));
  EXPECT_EQ(test::sum_family(s, "beat_client_tasks_submitted_total"), 34);
  EXPECT_EQ(at(s, "beat_connected_clients"), 1);
}

}  // namespace
}  // namespace beat
