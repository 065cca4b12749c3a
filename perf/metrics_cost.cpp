// beat-metrics-cost-bench: what do beatd's Prometheus metrics cost a task?
//
// Noop tasks (the worst case: nothing to hide the bookkeeping behind) from
// one client thread in batches of 256, through two private beatds started
// side by side: one with the metrics off (--metrics-address "": no exposer,
// and the workers skip the per-kernel counts and latency samples), one with
// them on (an exposer on an ephemeral loopback port, scraped every
// --scrape-ms by a thread of this program, far more often than Prometheus
// would), at 1 and 2 workers. Each round runs both back to back, in
// alternating order (the idle daemon's workers are parked), so the host's
// drift hits both alike; the figure is the median over rounds of on / off.
// The client thread is pinned to the last CPU (beatd's worker 0 is on CPU 0).
//
// Usage: beat-metrics-cost-bench [--rounds N] [--tasks N] [--scrape-ms MS]
//        [--beatd PATH] [--control]
// --control runs the same rounds with both daemons off (an A/A run: how far
// the ratio strays from 1 on this host with nothing to measure).
// Output: one JSON line per run and one summary line per worker count.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "perf/bench_daemon.hpp"

namespace {

// Bytes of one GET /metrics from 127.0.0.1:port, or 0 when it failed.
std::size_t scrape_once(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::size_t bytes = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    static constexpr char kRequest[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, kRequest, sizeof(kRequest) - 1) == sizeof(kRequest) - 1) {
      char buf[16384];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) bytes += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  return bytes;
}

// Scrapes every `period` until destroyed; counts the scrapes that returned data.
class Scraper {
 public:
  Scraper(int port, std::chrono::milliseconds period)
      : thread_([this, port, period] {
          while (!stop_.load(std::memory_order_relaxed)) {
            if (scrape_once(port) > 0) scrapes_.fetch_add(1, std::memory_order_relaxed);
            std::this_thread::sleep_for(period);
          }
        }) {}
  ~Scraper() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
  }
  std::uint64_t scrapes() const { return scrapes_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> scrapes_{0};
  std::thread thread_;
};

int metrics_port(beat::Client& c) {
  auto stats = c.stats_json();
  static constexpr const char* kKey = "\"metrics_endpoint\":\"127.0.0.1:";
  const auto at = stats ? stats->find(kKey) : std::string::npos;
  if (at == std::string::npos) {
    std::fprintf(stderr, "beatd reports no metrics endpoint\n");
    std::exit(1);
  }
  return std::stoi(stats->substr(at + std::strlen(kKey)));
}

// One configuration's daemon and connected client, kept for every round:
// a round is then a short run through each, back to back, and the host's
// drift (this VM's throughput moves by a third over seconds) hardly
// separates the two runs of a round.
struct Setup {
  Setup(const std::string& beatd, unsigned workers, bool metrics,
        std::chrono::milliseconds scrape_every)
      : metrics(metrics),
        daemon(beatd, {.workers = workers,
                       .idle_spin_us = 100,
                       .metrics_address = metrics ? "127.0.0.1:0" : ""}),
        client(beat::bench::connect_or_die(daemon.socket(), std::chrono::microseconds(50),
                                           "metrics-cost-bench")) {
    if (metrics) scraper = std::make_unique<Scraper>(metrics_port(*client), scrape_every);
  }
  bool metrics;
  beat::bench::Daemon daemon;
  std::unique_ptr<beat::Client> client;
  std::unique_ptr<Scraper> scraper;
};

double run(Setup& s, unsigned workers, std::uint64_t tasks, unsigned round) {
  const beat::bench::Throughput t = beat::bench::noop_throughput(*s.client, tasks, 256);
  std::printf(
      "{\"bench\":\"metrics_cost\",\"workers\":%u,\"metrics\":\"%s\",\"round\":%u,\"tasks\":%llu,"
      "\"seconds\":%.4f,\"tasks_per_second\":%.0f,\"scrapes_so_far\":%llu,\"errors\":%llu}\n",
      workers, s.metrics ? "on" : "off", round, static_cast<unsigned long long>(tasks), t.seconds,
      t.tasks_per_second, static_cast<unsigned long long>(s.scraper ? s.scraper->scrapes() : 0),
      static_cast<unsigned long long>(t.errors));
  std::fflush(stdout);
  if (t.errors != 0) std::exit(1);
  return t.tasks_per_second;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"beat-metrics-cost-bench: noop throughput with beatd's metrics off and on"};
  unsigned rounds = 41;
  std::uint64_t tasks = 3'000'000;
  unsigned scrape_ms = 100;
  std::string beatd = BEAT_BEATD_PATH;
  app.add_option("--rounds", rounds, "off/on pairs per worker count")->check(CLI::Range(1u, 1000u));
  app.add_option("--tasks", tasks, "noop tasks per run")->check(CLI::Range(1000ull, 1ull << 40));
  app.add_option("--scrape-ms", scrape_ms, "scrape period while metrics are on")
      ->check(CLI::Range(1u, 60000u));
  app.add_option("--beatd", beatd, "beatd binary");
  bool control = false;
  app.add_flag("--control", control,
               "A/A control: the \"on\" daemon runs with the metrics off too, so the ratio "
               "shows the program's own noise");
  CLI11_PARSE(app, argc, argv);
  // The client on the last CPU, worker 0 on CPU 0 (hwloc): with one worker
  // they never share a core, whichever way the scheduler would place them.
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t last;
  CPU_ZERO(&last);
  CPU_SET(static_cast<int>(cpus - 1), &last);
  ::sched_setaffinity(0, sizeof(last), &last);
  for (const unsigned workers : {1u, 2u}) {
    Setup off_setup(beatd, workers, false, std::chrono::milliseconds(scrape_ms));
    Setup on_setup(beatd, workers, !control, std::chrono::milliseconds(scrape_ms));
    std::vector<double> off, on, ratios;
    std::fprintf(stderr, "%u worker(s), %u rounds...\n", workers, rounds);
    for (unsigned r = 0; r < rounds; ++r) {
      // Odd rounds run "on" first: an order effect then favours neither.
      if (r % 2 == 0) {
        off.push_back(run(off_setup, workers, tasks, r));
        on.push_back(run(on_setup, workers, tasks, r));
      } else {
        on.push_back(run(on_setup, workers, tasks, r));
        off.push_back(run(off_setup, workers, tasks, r));
      }
      ratios.push_back(on.back() / off.back());
    }
    std::printf(
        "{\"bench\":\"metrics_cost_summary\",\"workers\":%u,\"rounds\":%u,\"off_median\":%.0f,"
        "\"on_median\":%.0f,\"on_over_off_median\":%.4f,\"on_over_off_min\":%.4f,"
        "\"on_over_off_max\":%.4f}\n",
        workers, rounds, median(off), median(on), median(ratios),
        *std::min_element(ratios.begin(), ratios.end()),
        *std::max_element(ratios.begin(), ratios.end()));
    std::fflush(stdout);
  }
  return 0;
}
