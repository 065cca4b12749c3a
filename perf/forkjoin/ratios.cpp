// beat-forkjoin-ratios: the ratios behind issue #3's goals, measured so that
// they survive a noisy machine. Where beat-forkjoin-bench runs each runtime
// as a block (all of serial, then all of Beat), this program runs the
// configurations round-robin, one run each per round, and reports for each
// ratio the median of its per-round values: a slow minute of the host
// (on the 2-vCPU development VM the same serial fib(35) takes 14 ms in one
// minute and 25 ms in the next) then slows both sides of a ratio alike.
//
// Questions:
//   1. Heartbeat overhead on one worker: Beat at 1 worker vs the same
//      workload on SerialExecutor (joins as plain calls) and, for fib, vs
//      fib_serial (the recursion without joins), "beat1_over_serial" and
//      "beat1_over_fib_serial".
//   2. Speedup from 1 to 2 workers: Beat at 1 worker / Beat at 2 workers,
//      "speedup".
//   3. What inline subtrees buy: the same two with scheduler.inline_forks
//      off ("frames1_over_serial", "frames_speedup") and
//      "frames1_over_beat1".
//   4. What 2 workers can give on this machine at all: the serial run is
//      also timed on the second CPU ("serial_cpu2_s"), and "ideal_speedup"
//      is 1 + serial / serial_cpu2 per round (2.0 when both CPUs are
//      equally fast; a VM's vCPUs need not be: on the development VM the
//      second ran plain code 1.6x slower than the first for minutes on
//      end). "speedup_of_ideal" is speedup / ideal_speedup, round by
//      round.
//
// Method. Five runtimes live side by side (perf/forkjoin/runtime.hpp):
// serial, Beat 1 and 2 workers, Beat 1 and 2 workers with inline_forks off
// (--no-frames drops the last two). Beat pins its workers to the first
// cores of this process's CPU mask, and this program pins its main thread,
// which runs the serial peers, to the first CPU of that mask (the second
// for serial_cpu2): the serial runs share the core of Beat's first worker
// (idle Beat workers park after idle_spin_us, so nothing else runs there).
// Each Beat run therefore starts with its workers parked, as a daemon's
// task does after a quiet spell: waking them is part of the time. Per workload: one warm-up
// round, then --rounds rounds; a round runs each configuration once, in the
// order fib_serial (fib only), serial, serial_cpu2, beat1, beat2, frames1,
// frames2, each
// timed around the whole root on the main thread and each result checked
// (a wrong one exits 1, naming it). Times are medians over rounds; every
// ratio is the median over rounds of that round's ratio.
//
// Output: one JSON object per workload, e.g.
//   {"workload":"fib","param":35,"rounds":11,"serial_s":0.0062,
//    "fib_serial_s":0.014,"beat1_s":0.011,"beat2_s":0.0058,
//    "frames1_s":0.080,"frames2_s":0.041,"beat1_over_serial":1.6,
//    "beat1_over_fib_serial":0.78,"speedup":1.95,"ideal_speedup":1.98,
//    "speedup_of_ideal":0.98,"frames1_over_serial":12,"frames_speedup":1.98,
//    "frames1_over_beat1":7.1,"cpus":[0,1]}
// Sizes as beat-forkjoin-bench's full set (fib 35, nqueens 12, uts T1,
// skynet 10^6, matmul 1024), 11 rounds: about 50 s on the development VM;
// --quick: its --quick sizes, 5 rounds.
#include <sched.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/workloads/fib.hpp"
#include "kernels/workloads/matmul.hpp"
#include "kernels/workloads/nqueens.hpp"
#include "kernels/workloads/skynet.hpp"
#include "kernels/workloads/uts.hpp"
#include "perf/forkjoin/median.hpp"
#include "perf/forkjoin/runtime.hpp"
#include "perf/forkjoin/workload_sizes.hpp"

namespace {

namespace fj = beat::perf::forkjoin;
using fj::median;
namespace wl = beat::workloads;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kWorkloads = {"fib", "nqueens", "uts", "skynet", "matmul"};

struct Sizes : fj::WorkloadSizes {
  unsigned rounds;
};
constexpr Sizes kFullSizes{fj::kFullWorkloads, 11};
constexpr Sizes kQuickSizes{fj::kQuickWorkloads, 5};

// One configuration: what to do before a run (untimed), the run (timed),
// and the check of its result (untimed; false: wrong). `cpu`: the CPU the
// main thread runs it on.
struct Config {
  std::string name;
  std::function<void()> prepare;
  std::function<void()> run;
  std::function<bool()> check;
  std::vector<double> seconds = {};
  int cpu = 0;
};

// The first two CPUs of this process's mask (-1 where there is none).
std::pair<int, int> first_allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::pair<int, int> cpus{-1, -1};
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    if (cpus.first < 0) {
      cpus.first = cpu;
    } else {
      cpus.second = cpu;
      break;
    }
  }
  return cpus;
}

bool pin_self_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// The runtimes one workload is measured on; frames1/frames2 may be null.
struct Runtimes {
  std::unique_ptr<fj::Runtime> serial;
  std::unique_ptr<fj::Runtime> beat1;
  std::unique_ptr<fj::Runtime> beat2;
  std::unique_ptr<fj::Runtime> frames1;
  std::unique_ptr<fj::Runtime> frames2;
};

// Configurations of `workload` on `rt`, each checking its own result.
std::vector<Config> configs_for(const std::string& workload, const Sizes& s, Runtimes& rt,
                                wl::MatmulProblem* problem, std::pair<int, int> cpus) {
  std::vector<std::pair<std::string, fj::Runtime*>> runtimes = {
      {"serial", rt.serial.get()}, {"beat1", rt.beat1.get()}, {"beat2", rt.beat2.get()}};
  if (rt.frames1) {
    runtimes.emplace_back("frames1", rt.frames1.get());
    runtimes.emplace_back("frames2", rt.frames2.get());
  }
  std::vector<Config> configs;
  auto nothing = [] {};
  // Each configuration's last result, read by its check.
  auto result = std::make_shared<std::uint64_t>(0);
  auto uts_result = std::make_shared<wl::UtsCount>();
  if (workload == "fib") {
    const unsigned n = s.fib;
    configs.push_back({"fib_serial", nothing, [n, result] { *result = wl::fib_serial(n); },
                       [n, result] { return *result == wl::fib_reference(n); }});
  }
  for (const auto& [name, r] : runtimes) {
    fj::Runtime* runtime = r;
    const std::size_t first = configs.size();
    if (workload == "fib") {
      const unsigned n = s.fib;
      configs.push_back({name, nothing, [runtime, n, result] { *result = runtime->fib(n); },
                         [n, result] { return *result == wl::fib_reference(n); }});
    } else if (workload == "nqueens") {
      const unsigned n = s.nqueens;
      configs.push_back({name, nothing, [runtime, n, result] { *result = runtime->nqueens(n); },
                         [n, result] { return *result == *wl::nqueens_known(n); }});
    } else if (workload == "uts") {
      const wl::UtsTree t = s.uts;
      configs.push_back({name, nothing, [runtime, t, uts_result] { *uts_result = runtime->uts(t); },
                         [t, uts_result] { return *uts_result == wl::uts_known(t); }});
    } else if (workload == "skynet") {
      const std::uint64_t l = s.skynet;
      configs.push_back({name, nothing, [runtime, l, result] { *result = runtime->skynet(l); },
                         [l, result] { return *result == wl::skynet_reference(l); }});
    } else {
      configs.push_back({name, [problem] { problem->clear_result(); },
                         [runtime, problem] { runtime->matmul(*problem); },
                         [problem] { return problem->verify(); }});
    }
    configs[first].cpu = cpus.first;
    if (name == "serial" && cpus.second >= 0) {
      Config on_second = configs[first];
      on_second.name = "serial_cpu2";
      on_second.cpu = cpus.second;
      configs.push_back(std::move(on_second));
    }
  }
  for (Config& c : configs)
    if (c.name == "fib_serial") c.cpu = cpus.first;
  return configs;
}

std::string param_json(const std::string& workload, const Sizes& s) {
  if (workload == "fib") return std::to_string(s.fib);
  if (workload == "nqueens") return std::to_string(s.nqueens);
  if (workload == "uts") return s.uts == wl::UtsTree::kT1 ? "\"T1\"" : "\"T3\"";
  if (workload == "skynet") return std::to_string(s.skynet);
  return std::to_string(s.matmul);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool no_frames = false;
  std::optional<unsigned> rounds;
  std::vector<std::string> workloads = kWorkloads;
  CLI::App app{
      "beat-forkjoin-ratios: Beat (1 and 2 workers, inline subtrees on and off) against serial, "
      "round-robin; median per-round ratios as JSON lines"};
  app.add_flag("--quick", quick, "smaller sizes and 5 rounds");
  app.add_flag("--no-frames", no_frames, "skip the inline_forks = false configurations");
  app.add_option("--rounds", rounds, "measured rounds per workload (default 11, quick 5)")
      ->check(CLI::PositiveNumber);
  app.add_option("--workloads", workloads, "comma-separated (fib,nqueens,uts,skynet,matmul)")
      ->delimiter(',')
      ->check(CLI::IsMember(kWorkloads));
  CLI11_PARSE(app, argc, argv);
  Sizes sizes = quick ? kQuickSizes : kFullSizes;
  if (rounds) sizes.rounds = *rounds;

  std::pair<int, int> cpus{-1, -1};
  try {
    Runtimes rt;
    rt.serial = fj::make_serial_runtime();
    rt.beat1 = fj::make_beat_runtime(1, 0, true);
    rt.beat2 = fj::make_beat_runtime(2, 0, true);
    if (!no_frames) {
      rt.frames1 = fj::make_beat_runtime(1, 0, false);
      rt.frames2 = fj::make_beat_runtime(2, 0, false);
    }
    // Only now: Beat sizes and places its workers from this thread's mask.
    cpus = first_allowed_cpus();
    if (cpus.first < 0) {
      std::fprintf(stderr, "beat-forkjoin-ratios: cannot read this process's CPU mask\n");
      return 1;
    }
    for (const std::string& workload : kWorkloads) {
      if (std::find(workloads.begin(), workloads.end(), workload) == workloads.end()) continue;
      std::unique_ptr<wl::MatmulProblem> problem;
      if (workload == "matmul") problem = std::make_unique<wl::MatmulProblem>(sizes.matmul);
      std::vector<Config> configs = configs_for(workload, sizes, rt, problem.get(), cpus);
      for (unsigned round = 0; round <= sizes.rounds; ++round) {  // round 0: warm-up
        for (Config& c : configs) {
          if (!pin_self_to(c.cpu)) {
            std::fprintf(stderr, "beat-forkjoin-ratios: cannot pin the main thread to CPU %d\n",
                         c.cpu);
            return 1;
          }
          c.prepare();
          const Clock::time_point start = Clock::now();
          c.run();
          const double took = std::chrono::duration<double>(Clock::now() - start).count();
          if (!c.check()) {
            std::fprintf(stderr, "beat-forkjoin-ratios: wrong result: %s(%s) on %s\n",
                         workload.c_str(), param_json(workload, sizes).c_str(), c.name.c_str());
            return 1;
          }
          if (round > 0) c.seconds.push_back(took);
        }
      }
      auto find = [&](const std::string& name) -> const Config* {
        for (const Config& c : configs)
          if (c.name == name) return &c;
        return nullptr;
      };
      // Median over rounds of a / b.
      auto ratio = [&](const std::string& a, const std::string& b) {
        const Config* x = find(a);
        const Config* y = find(b);
        std::vector<double> r;
        for (std::size_t i = 0; i < x->seconds.size(); ++i)
          r.push_back(x->seconds[i] / y->seconds[i]);
        return median(r);
      };
      std::string line = "{\"workload\":\"" + workload +
                         "\",\"param\":" + param_json(workload, sizes) +
                         ",\"rounds\":" + std::to_string(sizes.rounds);
      char buf[96];
      for (const Config& c : configs) {
        std::snprintf(buf, sizeof buf, ",\"%s_s\":%.6g", c.name.c_str(), median(c.seconds));
        line += buf;
      }
      auto add = [&](const char* key, double v) {
        std::snprintf(buf, sizeof buf, ",\"%s\":%.4g", key, v);
        line += buf;
      };
      add("beat1_over_serial", ratio("beat1", "serial"));
      if (workload == "fib") add("beat1_over_fib_serial", ratio("beat1", "fib_serial"));
      add("speedup", ratio("beat1", "beat2"));
      if (find("serial_cpu2") != nullptr) {
        const Config& one = *find("serial");
        const Config& two = *find("serial_cpu2");
        const Config& b1 = *find("beat1");
        const Config& b2 = *find("beat2");
        std::vector<double> ideal, share;
        for (std::size_t i = 0; i < one.seconds.size(); ++i) {
          ideal.push_back(1 + one.seconds[i] / two.seconds[i]);
          share.push_back(b1.seconds[i] / b2.seconds[i] / ideal.back());
        }
        add("ideal_speedup", median(ideal));
        add("speedup_of_ideal", median(share));
      }
      if (!no_frames) {
        add("frames1_over_serial", ratio("frames1", "serial"));
        add("frames_speedup", ratio("frames1", "frames2"));
        add("frames1_over_beat1", ratio("frames1", "beat1"));
      }
      line +=
          ",\"cpus\":[" + std::to_string(cpus.first) + "," + std::to_string(cpus.second) + "]}\n";
      std::fputs(line.c_str(), stdout);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beat-forkjoin-ratios: %s\n", e.what());
    return 1;
  }
  return 0;
}
