// CpuClock: how busy the rest of the machine was while beat-forkjoin-bench
// measured a row (its "others_cpus"), from /proc/stat, getrusage and, for a
// child process such as the beatd peer's daemon, /proc/<pid>/stat.
//
// Thread-safety: stateless; now() and others_cpus() may be called from any
// thread (the benchmark calls them from its main thread only).
#pragma once

#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

namespace beat::perf::forkjoin {

// How busy the rest of the machine was: CPU time every CPU spent outside
// idle (/proc/stat: user, nice, system, irq, softirq, steal) minus this
// process's own (getrusage, all its threads) and, for the beatd rows, the
// daemon's (/proc/<pid>/stat utime + stime). others_cpus(a, b) is that
// difference over the wall time between two samples: the average number of
// CPUs that other processes (or the hypervisor, as steal) took while the
// runs were measured. On a shared 2-vCPU machine it tells which rows were
// contended. /proc/stat counts in clock ticks (10 ms) per CPU, so over a
// window shorter than kMinWindow the figure would be mostly rounding: none
// is reported then.
class CpuClock {
 public:
  // Rounding: about a tick per CPU at each end, <= 0.08 CPUs on 2 CPUs.
  static constexpr std::chrono::milliseconds kMinWindow{250};

  struct Sample {
    std::chrono::steady_clock::time_point wall;
    double machine_busy_s = 0;
    double self_s = 0;
    bool valid = false;
  };

  // `child`: a process whose CPU time counts as this process's (0: none).
  static Sample now(pid_t child = 0) {
    Sample s;
    s.wall = std::chrono::steady_clock::now();
    std::FILE* stat = std::fopen("/proc/stat", "r");
    if (stat == nullptr) return s;
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                       steal = 0;
    const int fields = std::fscanf(stat, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user,
                                   &nice, &system, &idle, &iowait, &irq, &softirq, &steal);
    std::fclose(stat);
    rusage self{};
    if (fields != 8 || getrusage(RUSAGE_SELF, &self) != 0) return s;
    static const double tick_s = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
    s.machine_busy_s = static_cast<double>(user + nice + system + irq + softirq + steal) * tick_s;
    s.self_s = seconds(self.ru_utime) + seconds(self.ru_stime);
    if (child != 0) {
      const std::optional<unsigned long long> child_ticks = process_ticks(child);
      if (!child_ticks) return s;
      s.self_s += static_cast<double>(*child_ticks) * tick_s;
    }
    s.valid = true;
    return s;
  }

  static std::optional<double> others_cpus(const Sample& a, const Sample& b) {
    if (!a.valid || !b.valid || b.wall - a.wall < kMinWindow) return std::nullopt;
    const double wall = std::chrono::duration<double>(b.wall - a.wall).count();
    const double others = (b.machine_busy_s - a.machine_busy_s) - (b.self_s - a.self_s);
    return std::max(0.0, others / wall);
  }

 private:
  static double seconds(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
  }

  // utime + stime of `pid` in clock ticks (/proc/<pid>/stat fields 14, 15,
  // counted after the parenthesised command name, which may hold spaces).
  static std::optional<unsigned long long> process_ticks(pid_t pid) {
    std::FILE* stat = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (stat == nullptr) return std::nullopt;
    std::array<char, 1024> buf{};
    const std::size_t n = std::fread(buf.data(), 1, buf.size() - 1, stat);
    std::fclose(stat);
    const std::string text(buf.data(), n);
    const std::size_t paren = text.rfind(')');
    unsigned long long utime = 0, stime = 0;
    if (paren == std::string::npos ||
        std::sscanf(text.c_str() + paren + 1,
                    " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                    &stime) != 2) {
      return std::nullopt;
    }
    return utime + stime;
  }
};

}  // namespace beat::perf::forkjoin
