// Unit tests of render_stats (client/beatctl_format.hpp), the human view of
// `beatctl status`: fixed STATS objects in, the exact text out. A daemon of
// another version may omit or retype fields; those print as "-".
#include "client/beatctl_format.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace beat::ctl {
namespace {

// What beatd 0.1.0 sends (ControlServer::stats_json), two workers and two
// clients, with the per-worker "queue_size" and "state" a later daemon adds.
constexpr const char* kFullStats = R"({"version":"0.1.0","protocol":3,"pid":1234,
"uptime_seconds":3723.9,"state":"running","socket":"/run/beat/beatd.sock",
"metrics_endpoint":"127.0.0.1:9464","parked_workers":1,"workers":[
{"index":0,"core":0,"os_pu":0,"pinned":true,"tasks":61728,"failed":0,"intake_chunks":10,
 "spawns":5000,"inline_subtrees":0,"promotions":0,"steal_attempts":900,"steals":170,
 "steal_rate":0.034,"jobs_stolen_run":170,"parks":3,"busy_seconds":3600.1,"idle_seconds":100,
 "parked_seconds":23,"busy_ratio":0.96714,"queue_size":4,"state":"busy"},
{"index":1,"core":1,"os_pu":2,"pinned":false,"tasks":123,"failed":12,"intake_chunks":1,
 "spawns":5000,"inline_subtrees":0,"promotions":0,"steal_attempts":9100,"steals":175,
 "steal_rate":0.035,"jobs_stolen_run":175,"parks":40,"busy_seconds":1e-05,"idle_seconds":1,
 "parked_seconds":3700,"busy_ratio":2.6e-09,"queue_size":0,"state":"parked"}],
"clients":[
{"id":1,"name":"bench-0","pid":4321,"uid":1000,"segment":"beat-1-1","sq_entries":256,
 "cq_entries":512,"arena_bytes":1048576,"sq_depth":3,"cq_depth":0,"inflight":7,
 "tasks_completed":61000,"tasks_failed":2},
{"id":12,"name":"a\u001b[2Jb","pid":5,"uid":0,"segment":"beat-1-12","sq_entries":64,
 "cq_entries":64,"arena_bytes":1572864,"sq_depth":0,"cq_depth":64,"inflight":0,
 "tasks_completed":851,"tasks_failed":10}],
"clients_connected":2,"sessions_total":9,"tasks_completed":61851,"tasks_failed":12,
"spawns":10000,"inline_subtrees":0,"steal_attempts":10000,"steals":345,"steal_rate":0.0345,
"steal_policy":"topology","kernels":12,"batching":{"grouping":"similarity","simd":"AVX2",
"batches":40,"tasks_grouped":1000,"tasks_alone":30,"fingerprints_corrected":0,
"batch_size":{"1":30,"2-5":4,"6-256":6},"formation_ns":{"le_250":5,"le_500":0,"gt_500":1}}})";

TEST(RenderStats, FullStatsGiveHeaderWorkerTableAndClientTable) {
  EXPECT_EQ(render_stats(kFullStats),
            "beatd 0.1.0 (protocol 3), pid 1234, up 1h02m03s, running\n"
            "socket /run/beat/beatd.sock, metrics http://127.0.0.1:9464/metrics\n"
            "tasks 61851 completed, 12 failed; steals 345 of 10000 spawns (3.45 %), "
            "policy topology\n"
            "workers 2 (1 parked), clients 2 connected (9 since start), kernels 12\n"
            "batching similarity, simd AVX2: 40 batches, 1000 tasks grouped, 30 alone, "
            "0 fingerprints corrected\n"
            "  batch sizes   1:30 2-5:4 6-256:6\n"
            "  formation ns  le_250:5 gt_500:1\n"
            "\n"
            "WORKER  CORE  PU  PINNED  TASKS  FAILED  STEALS  STEAL%  BUSY%  QUEUE  STATE\n"
            "0       0     0   yes     61728  0       170     3.40    96.7   4      busy\n"
            "1       1     2   no      123    12      175     3.50    0.0    0      parked\n"
            "\n"
            "CLIENT  NAME     PID   SQ DEPTH  CQ DEPTH  INFLIGHT  COMPLETED  FAILED  ARENA\n"
            "1       bench-0  4321  3/256     0/512     7         61000      2       1 MiB\n"
            "12      a?[2Jb   5     0/64      64/64     0         851        10      1.5 MiB\n");
}

// A daemon that reports less: no version, a non-numeric pid, a worker
// without busy_ratio or placement, metrics off, no batching object, and no
// clients. Nothing throws; every absent field is "-".
TEST(RenderStats, MissingOrMistypedFieldsShowADash) {
  constexpr const char* kSparse = R"({"protocol":2,"pid":"n/a","uptime_seconds":59.99,
    "state":"draining","socket":"/tmp/b.sock","metrics_endpoint":"","workers":[
    {"index":0,"tasks":5,"failed":0,"steals":0,"steal_rate":0},
    {"index":1,"core":"x","pinned":null,"tasks":-1,"busy_ratio":"fast"}],
    "clients":[],"clients_connected":0,"tasks_completed":5,"steal_policy":"random"})";
  EXPECT_EQ(render_stats(kSparse),
            "beatd - (protocol 2), pid -, up 59s, draining\n"
            "socket /tmp/b.sock, metrics off\n"
            "tasks 5 completed, - failed; steals - of - spawns (-), policy random\n"
            "workers 2 (- parked), clients 0 connected (- since start), kernels -\n"
            "batching -\n"
            "\n"
            "WORKER  CORE  PU  PINNED  TASKS  FAILED  STEALS  STEAL%  BUSY%  QUEUE  STATE\n"
            "0       -     -   -       5      0       0       0.00    -      -      -\n"
            "1       -     -   -       -      -       -       -       -      -      -\n"
            "\n"
            "no clients connected\n");
}

TEST(RenderStats, AnObjectWithoutTheListsSaysSo) {
  EXPECT_EQ(render_stats(R"({"version":"9.9.9","workers":17})"),
            "beatd 9.9.9 (protocol -), pid -, up -, -\n"
            "socket -, metrics -\n"
            "tasks - completed, - failed; steals - of - spawns (-), policy -\n"
            "workers - (- parked), clients - connected (- since start), kernels -\n"
            "batching -\n"
            "\n"
            "workers not reported\n"
            "\n"
            "clients not reported\n");
}

TEST(RenderStats, TextThatIsNotJsonIsAnErrorNamingIt) {
  try {
    render_stats("{\"version\":");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("daemon STATS reply is not JSON: ", 0), 0u) << e.what();
  }
}

TEST(FormatUptime, PicksTheLargestUnitAndPadsTheRest) {
  EXPECT_EQ(format_uptime(0), "0s");
  EXPECT_EQ(format_uptime(59.999), "59s");
  EXPECT_EQ(format_uptime(60), "1m00s");
  EXPECT_EQ(format_uptime(3723.9), "1h02m03s");
  EXPECT_EQ(format_uptime(86400 + 7384), "1d02h03m04s");
  EXPECT_EQ(format_uptime(-1), "-");
  EXPECT_EQ(format_uptime(1e300), "-");
  EXPECT_EQ(format_uptime(std::numeric_limits<double>::quiet_NaN()), "-");
}

TEST(FormatBytes, BinaryUnitsWithAtMostOneDecimal) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1 KiB");
  EXPECT_EQ(format_bytes(65536), "64 KiB");
  EXPECT_EQ(format_bytes(1572864), "1.5 MiB");
  EXPECT_EQ(format_bytes(std::uint64_t{3} << 30), "3 GiB");
  EXPECT_EQ(format_bytes(~std::uint64_t{0}), "16 EiB");
}

}  // namespace
}  // namespace beat::ctl
