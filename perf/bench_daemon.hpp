// A private beatd for end-to-end benchmarks (perf/roundtrip.cpp,
// perf/metrics_cost.cpp): a child process on its own socket and segment
// prefix, and a noop throughput loop through it.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"

namespace beat::bench {

struct DaemonOptions {
  unsigned workers = 1;
  unsigned idle_spin_us = 100;
  std::string metrics_address;  // "" = no exposer
};

// A beatd child on a private socket; SIGTERM and reap on destruction.
class Daemon {
 public:
  Daemon(const std::string& beatd, const DaemonOptions& o) {
    socket_ = "/tmp/beat-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) +
              ".sock";
    const std::string prefix = "beatbench" + std::to_string(::getpid());
    pid_ = ::fork();
    if (pid_ == 0) {
      // A benchmark may pin itself to one CPU; the daemon must not inherit
      // that (beatd honours its affinity mask), or its workers would share
      // the client's CPU.
      cpu_set_t all;
      CPU_ZERO(&all);
      for (long cpu = 0; cpu < ::sysconf(_SC_NPROCESSORS_ONLN) && cpu < CPU_SETSIZE; ++cpu)
        CPU_SET(cpu, &all);
      ::sched_setaffinity(0, sizeof(all), &all);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDERR_FILENO);
      ::dup2(null, STDOUT_FILENO);
      const std::string w = std::to_string(o.workers), spin = std::to_string(o.idle_spin_us);
      // Worker 0 goes on CPU 0 (hwloc pinning).
      ::execl(beatd.c_str(), beatd.c_str(), "--socket", socket_.c_str(), "--segment-prefix",
              prefix.c_str(), "--workers", w.c_str(), "--idle-spin-us", spin.c_str(),
              "--metrics-address", o.metrics_address.c_str(), "--log-level", "warn",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 1000; ++i) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", socket_.c_str());
      const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
      ::close(fd);
      if (ok) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::fprintf(stderr, "beatd (%s) did not start\n", beatd.c_str());
    std::exit(1);
  }
  ~Daemon() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }

 private:
  static inline int counter_ = 0;
  std::string socket_;
  pid_t pid_ = -1;
};

inline std::unique_ptr<Client> connect_or_die(const std::string& socket,
                                              std::chrono::microseconds spin, const char* name) {
  ClientOptions o;
  o.socket_path = socket;
  o.name = name;
  o.spin = spin;
  auto c = Client::connect(o);
  if (!c) {
    std::fprintf(stderr, "connect %s: %s\n", socket.c_str(), c.status().message().c_str());
    std::exit(1);
  }
  return std::move(c).value();
}

struct Throughput {
  double seconds = 0;
  double tasks_per_second = 0;
  std::uint64_t errors = 0;  // completions whose result is not their tag
};

// `tasks` noop tasks from this thread in batches of `batch`, at most a CQ's
// worth in flight, each checked on completion.
inline Throughput noop_throughput(Client& c, std::uint64_t tasks, std::size_t batch) {
  using Clock = std::chrono::steady_clock;
  const std::uint32_t noop = *c.kernel_id("noop");
  const std::uint64_t window = c.layout().cq_entries;
  std::vector<TaskDescriptor> descriptors(batch);
  std::vector<Completion> out(1024);
  std::uint64_t submitted = 0, reaped = 0;
  Throughput r;
  const auto t0 = Clock::now();
  while (reaped < tasks) {
    while (submitted < tasks && submitted - reaped + batch <= window) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(batch, tasks - submitted));
      for (std::size_t k = 0; k < n; ++k)
        descriptors[k] = make_task(noop, submitted + k, {submitted + k});
      if (!c.submit({descriptors.data(), n})) std::exit(1);
      submitted += n;
    }
    auto got = c.wait(out, 1);
    if (!got) std::exit(1);
    for (std::size_t k = 0; k < *got; ++k) r.errors += out[k].result != out[k].tag ? 1 : 0;
    reaped += *got;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.tasks_per_second = static_cast<double>(tasks) / r.seconds;
  return r;
}

}  // namespace beat::bench
