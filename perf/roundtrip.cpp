// beat-roundtrip-bench: what does one task cost end to end, client -> beatd
// -> client, against the hand-off floors of this machine measured in the
// same run?
//
//   1. Peers: runs beat-ipc-floor (cache-line ping-pong between two cores,
//      Unix-socket ping-pong between two processes, futex ping-pong) and
//      forwards its JSON lines.
//   2. Round trip: one noop task in flight at a time through a real beatd
//      with one worker, the client thread pinned to another core:
//        mode "spinning": daemon idle_spin_us = 1 s and the client spins on
//                         the CQ (nobody parks between tasks);
//        mode "parked":   daemon idle_spin_us = 0 and client spin = 0
//                         (both sides sleep on futexes every time).
//   3. Throughput: noop tasks in batches of 256 from one client thread, with
//      1 and 2 workers (`beatctl bench` measures multi-client shapes).
//   4. Idle CPU: a daemon with one connected, idle client, over 10 s
//      (3 s with --quick), from /proc/<pid>/stat.
//   5. Ratios of 2 against 1, one JSON line each.
//
// Usage: beat-roundtrip-bench [--iterations N] [--tasks N] [--quick]
//        [--beatd PATH] [--ipc-floor PATH]
// Output: JSON lines on stdout; progress on stderr.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "perf/bench_daemon.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Percentiles {
  double p50 = 0, p99 = 0, mean = 0;
};

Percentiles percentiles(std::vector<std::int64_t>& v) {
  std::sort(v.begin(), v.end());
  Percentiles p;
  if (v.empty()) return p;
  p.p50 = static_cast<double>(v[v.size() / 2]);
  p.p99 = static_cast<double>(v[std::min(v.size() - 1, v.size() * 99 / 100)]);
  double sum = 0;
  for (auto x : v) sum += static_cast<double>(x);
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

std::map<std::string, double>& results() {
  static std::map<std::string, double> r;
  return r;
}

using beat::bench::Daemon;

std::unique_ptr<beat::Client> connect_or_die(const std::string& socket,
                                             std::chrono::microseconds spin) {
  return beat::bench::connect_or_die(socket, spin, "roundtrip-bench");
}

void roundtrip(const std::string& beatd, const char* mode, unsigned idle_spin_us,
               std::chrono::microseconds client_spin, std::uint64_t iterations) {
  Daemon d(beatd, {.workers = 1, .idle_spin_us = idle_spin_us, .metrics_address = ""});
  pin_self(1);
  auto c = connect_or_die(d.socket(), client_spin);
  const std::uint32_t noop = *c->kernel_id("noop");
  std::vector<std::int64_t> samples;
  samples.reserve(iterations);
  beat::Completion out[1];
  const std::uint64_t warmup = std::min<std::uint64_t>(iterations / 10, 10'000);
  for (std::uint64_t i = 0; i < warmup + iterations; ++i) {
    const beat::TaskDescriptor t = beat::make_task(noop, i, {i});
    const auto t0 = Clock::now();
    if (!c->submit({&t, 1})) std::exit(1);
    auto n = c->wait(out, 1);
    const auto t1 = Clock::now();
    if (!n || *n != 1 || out[0].tag != i || out[0].result != i) {
      std::fprintf(stderr, "round trip %llu went wrong\n", static_cast<unsigned long long>(i));
      std::exit(1);
    }
    if (i >= warmup)
      samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  const Percentiles p = percentiles(samples);
  std::printf(
      "{\"bench\":\"beat_roundtrip\",\"mode\":\"%s\",\"round_trips\":%zu,\"p50_ns\":%.0f,\"p99_"
      "ns\":%.0f,"
      "\"mean_ns\":%.0f}\n",
      mode, samples.size(), p.p50, p.p99, p.mean);
  std::fflush(stdout);
  std::map<std::string, double>& r = results();
  r[std::string(mode) + "_p50"] = p.p50;
  r[std::string(mode) + "_p99"] = p.p99;
}

void throughput(const std::string& beatd, unsigned workers, std::uint64_t tasks) {
  // Default spin: workers park only when idle, as in production.
  Daemon d(beatd, {.workers = workers, .idle_spin_us = 100, .metrics_address = ""});
  auto c = connect_or_die(d.socket(), std::chrono::microseconds(50));
  constexpr std::size_t kBatch = 256;
  const beat::bench::Throughput t = beat::bench::noop_throughput(*c, tasks, kBatch);
  std::printf(
      "{\"bench\":\"beat_throughput\",\"kernel\":\"noop\",\"workers\":%u,\"batch\":%zu,\"client_"
      "threads\":1,"
      "\"tasks\":%llu,\"seconds\":%.4f,\"tasks_per_second\":%.0f,\"errors\":%llu}\n",
      workers, kBatch, static_cast<unsigned long long>(tasks), t.seconds, t.tasks_per_second,
      static_cast<unsigned long long>(t.errors));
  std::fflush(stdout);
  results()["throughput_w" + std::to_string(workers)] = t.tasks_per_second;
}

// utime + stime of `pid` in clock ticks (/proc/<pid>/stat fields 14, 15).
long cpu_ticks(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return -1;
  char buf[4096];
  const std::size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return -1;
  long utime = 0, stime = 0;
  // After ") " come fields 3.. ; skip 11 of them to reach utime (14).
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) !=
      2)
    return -1;
  return utime + stime;
}

// CPU an idle daemon uses: default worker count, one connected client that
// submits nothing (so parked workers wait on its doorbell too), `seconds`
// of wall time, read from /proc.
void idle_cpu(const std::string& beatd, double seconds) {
  Daemon d(beatd, {.workers = 0, .idle_spin_us = 100, .metrics_address = ""});
  auto c = connect_or_die(d.socket(), std::chrono::microseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let workers park
  const long hz = ::sysconf(_SC_CLK_TCK);
  const long before = cpu_ticks(d.pid());
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const long used = cpu_ticks(d.pid()) - before;
  const double cpu_seconds = static_cast<double>(used) / static_cast<double>(hz);
  std::printf(
      "{\"bench\":\"idle_cpu\",\"seconds\":%.2f,\"cpu_seconds\":%.3f,\"percent_of_one_core\":%.3f,"
      "\"clock_ticks_per_second\":%ld}\n",
      wall, cpu_seconds, 100.0 * cpu_seconds / wall, hz);
  std::fflush(stdout);
}

// Runs beat-ipc-floor, forwards its lines, and keeps each bench's p50.
void run_peers(const std::string& ipc_floor, bool quick) {
  const std::string cmd = ipc_floor + (quick ? " --quick" : "");
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot run %s\n", cmd.c_str());
    std::exit(1);
  }
  char line[1024];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    std::fputs(line, stdout);
    const std::string l(line);
    const auto b = l.find("\"bench\":\"");
    const auto p50 = l.find("\"p50_ns\":");
    if (b == std::string::npos || p50 == std::string::npos) continue;
    const std::string bench = l.substr(b + 9, l.find('"', b + 9) - (b + 9));
    results()[bench + "_p50"] = std::stod(l.substr(p50 + 9));
  }
  if (::pclose(f) != 0) {
    std::fprintf(stderr, "%s failed\n", cmd.c_str());
    std::exit(1);
  }
  std::fflush(stdout);
}

void ratio(const char* what, const std::string& num, const std::string& den) {
  auto& r = results();
  if (!r.count(num) || !r.count(den) || r[den] == 0) return;
  std::printf("{\"bench\":\"ratio\",\"what\":\"%s\",\"value\":%.3f}\n", what, r[num] / r[den]);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"beat-roundtrip-bench: end-to-end task cost vs. this machine's hand-off floors"};
  std::uint64_t iterations = 100'000, tasks = 10'000'000;
  bool quick = false;
  std::string beatd = BEAT_BEATD_PATH, ipc_floor = BEAT_IPC_FLOOR_PATH;
  app.add_option("--iterations", iterations, "round trips per mode");
  app.add_option("--tasks", tasks, "noop tasks per throughput run");
  app.add_flag("--quick", quick, "reduced sizes (under a minute)");
  app.add_option("--beatd", beatd, "beatd binary");
  app.add_option("--ipc-floor", ipc_floor, "beat-ipc-floor binary");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    iterations = std::min<std::uint64_t>(iterations, 20'000);
    tasks = std::min<std::uint64_t>(tasks, 2'000'000);
  }
  std::fprintf(stderr, "peers...\n");
  run_peers(ipc_floor, quick);
  std::fprintf(stderr, "round trip, spinning...\n");
  roundtrip(beatd, "spinning", 1'000'000, std::chrono::seconds(1), iterations);
  std::fprintf(stderr, "round trip, parked...\n");
  roundtrip(beatd, "parked", 0, std::chrono::microseconds(0), iterations / 4);
  for (unsigned w : {1u, 2u}) {
    std::fprintf(stderr, "throughput, %u worker(s)...\n", w);
    throughput(beatd, w, tasks);
  }
  std::fprintf(stderr, "idle CPU...\n");
  idle_cpu(beatd, quick ? 3.0 : 10.0);
  ratio("spinning_p50_over_cacheline_p50", "spinning_p50", "cacheline_pingpong_p50");
  ratio("uds_p50_over_spinning_p50", "uds_pingpong_p50", "spinning_p50");
  ratio("parked_p50_over_uds_p50", "parked_p50", "uds_pingpong_p50");
  ratio("parked_p50_over_futex_p50", "parked_p50", "futex_pingpong_p50");
  return 0;
}
