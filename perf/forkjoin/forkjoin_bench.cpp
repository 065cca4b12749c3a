// beat-forkjoin-bench: Beat's work-stealing scheduler against oneTBB, OpenMP
// tasks (libgomp) and serial code, in one process, on the same fork-join
// workloads (kernels/workloads/: fib, nqueens, uts, skynet, matmul), at 1 and
// 2 workers. The questions it answers:
//
//   1. fib(35) on 2 workers: how does Beat's cost per join compare with
//      oneTBB's (rows fib/35/beat/2 vs fib/35/tbb/2)?
//   2. fib(35) on 1 worker: how close does heartbeat scheduling come to the
//      plain serial recursion (beat/1 vs serial with "impl":"fib_serial")?
//      That is the overhead a program pays for being written in parallel.
//   3. Each runtime's speedup from 1 to 2 workers on each workload (the
//      runtime's own 1-worker row vs its 2-worker row), and how the peers'
//      speedups compare.
//   The other workloads put the same questions to coarser grains (skynet,
//   nqueens: parallel_for fan-out), irregular trees (uts) and memory-bound
//   recursive work (matmul).
//
// Peers (each in its own translation unit; runtime.hpp):
//   serial  SerialExecutor (workers 1 only); for fib also fib_serial, the
//           recursion without joins ("impl":"fib_serial"), the baseline of
//           question 2.
//   tbb     tbb_executor.hpp: task_group joins, parallel_for over a
//           blocked_range, in a task_arena of `workers` slots.
//   beat    Beat's scheduler (daemon/scheduler/scheduler.hpp), options at
//           their defaults but `workers` (and --beat-heartbeat-us).
//   omp     omp_executor.hpp: `omp task` + taskwait joins, taskloop
//           parallel_for, tied tasks, in a parallel region of `workers`.
// Nothing here pins a thread: each runtime does what it does by default
// (Beat pins its workers, TBB and libgomp pin nothing).
//
// Method. For each runtime (always in the order serial, tbb, beat, omp), for
// each worker count, for each workload: one unmeasured warm-up run, then
// --reps measured runs, each timed on the calling thread around the whole
// root (so the hand-off to the runtime's threads and back is included) and
// each result checked against the workload's known value: fib_reference,
// nqueens_known, uts_known, skynet_reference, MatmulProblem::verify. A wrong
// result ends the program with status 1 and a message naming workload,
// runtime, what it got and what was expected. Matmul clears C before every
// run, outside the timed region.
//
// Keeping the runtimes out of each other's way: they run one after another,
// never concurrently, with a 100 ms pause between blocks. OpenMP runs last
// because libgomp's threads spin after a parallel region (OMP_WAIT_POLICY is
// left at its default, as an OpenMP user would have it, so the peer is not
// slowed by sleeping workers); after it no other runtime runs. TBB's worker
// threads and Beat's workers park when idle (Beat after idle_spin_us). Every
// row also reports "threads_seen": the distinct threads that ran bodies of a
// probe parallel_for on that runtime and worker count; more than `workers`
// is an error (that is how "1 worker" is known to mean one thread working).
//
// Output: one JSON object per line per measurement, e.g.
//   {"workload":"fib","param":35,"runtime":"beat","impl":"heartbeat",
//    "workers":2,"seconds":0.0123,"min_seconds":0.0121,"reps":5,
//    "threads_seen":2,"steal_rate":0.0001,"others_cpus":0.02,
//    "heartbeat_us":100,"idle_spin_us":100,"pin":true}
//   param         fib's n, nqueens' n, uts' tree ("T1"), skynet's leaves,
//                 matmul's n.
//   impl          the peer's variant: fib_serial or SerialExecutor (serial),
//                 task_group or parallel_invoke (tbb), tied or untied (omp),
//                 heartbeat (beat).
//   seconds       median of the measured runs (the mean of the middle two
//                 for an even count); min_seconds the fastest.
//   threads_seen  see above; fewer than `workers` means some worker ran no
//                 probe body (seen for beat while another process kept a
//                 vCPU busy).
//   steal_rate    beat only: steals / spawns summed over the measured runs
//                 (SchedulerStats deltas).
//   others_cpus   the average number of CPUs that other processes (and the
//                 hypervisor's steal) used while the runs were measured
//                 (CpuClock below); absent when the measured runs took less
//                 than 250 ms in all (too short for /proc/stat's ticks). On
//                 a 2-vCPU machine a row with others_cpus well above 0 was
//                 contended; compare such rows with care or re-run them.
//   heartbeat_us, idle_spin_us, pin
//                 beat only: the SchedulerOptions the scheduler ran with.
//
// Sizes: default fib 35, nqueens 12, uts T1, skynet 10^6, matmul 1024, 5
// reps; --quick fib 30, nqueens 10, uts T1, skynet 10^5, matmul 256, 3 reps
// (a smoke test: 25 s wall on the 2-vCPU dev VM; the full set 105 s; both
// with every runtime).
#include <sched.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/workloads/fib.hpp"
#include "kernels/workloads/matmul.hpp"
#include "kernels/workloads/nqueens.hpp"
#include "kernels/workloads/skynet.hpp"
#include "kernels/workloads/uts.hpp"
#include "perf/forkjoin/runtime.hpp"

namespace {

namespace fj = beat::perf::forkjoin;
namespace wl = beat::workloads;
using Clock = std::chrono::steady_clock;

// The runtimes, in the order they run (OpenMP last: see the header comment).
const std::vector<std::string> kRuntimeOrder = {"serial", "tbb", "beat", "omp"};
const std::vector<std::string> kWorkloadOrder = {"fib", "nqueens", "uts", "skynet", "matmul"};

// The peer variants measured as defaults (the others stay selectable with
// --tbb-join and --omp-tasks; the figures that chose them are in
// tbb_executor.hpp and omp_executor.hpp).
constexpr fj::TbbJoin kDefaultTbbJoin = fj::TbbJoin::kTaskGroup;
constexpr fj::OmpTasks kDefaultOmpTasks = fj::OmpTasks::kTied;
const std::map<std::string, fj::TbbJoin> kTbbJoinNames = {
    {"task_group", fj::TbbJoin::kTaskGroup}, {"parallel_invoke", fj::TbbJoin::kParallelInvoke}};
const std::map<std::string, fj::OmpTasks> kOmpTasksNames = {{"tied", fj::OmpTasks::kTied},
                                                            {"untied", fj::OmpTasks::kUntied}};

template <class Enum>
std::string name_of(const std::map<std::string, Enum>& names, Enum value) {
  for (const auto& [name, v] : names) {
    if (v == value) return name;
  }
  return "?";
}

// Pause between two runtime blocks, so that one runtime's threads have gone
// idle (spun out, parked) before the next is timed.
constexpr std::chrono::milliseconds kSettle{100};

struct Sizes {
  unsigned fib;
  unsigned nqueens;
  wl::UtsTree uts;
  std::uint64_t skynet;
  std::uint64_t matmul;
  unsigned reps;
};

constexpr Sizes kFullSizes{35, 12, wl::UtsTree::kT1, 1'000'000, 1024, 5};
constexpr Sizes kQuickSizes{30, 10, wl::UtsTree::kT1, 100'000, 256, 3};

struct Options {
  Sizes sizes = kFullSizes;
  std::vector<std::uint32_t> workers = {1, 2};
  std::vector<std::string> runtimes = kRuntimeOrder;
  std::vector<std::string> workloads = kWorkloadOrder;
  fj::TbbJoin tbb_join = kDefaultTbbJoin;
  fj::OmpTasks omp_tasks = kDefaultOmpTasks;
  std::uint32_t beat_heartbeat_us = 0;  // 0: SchedulerOptions' default
};

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string uts_name(wl::UtsTree tree) { return tree == wl::UtsTree::kT1 ? "T1" : "T3"; }

std::string to_string(const wl::UtsCount& c) {
  return "{nodes " + std::to_string(c.nodes) + ", leaves " + std::to_string(c.leaves) +
         ", max_depth " + std::to_string(c.max_depth) + "}";
}

// What one measurement is: which workload at which size, on what.
struct Case {
  std::string workload;
  std::string param_json;  // the JSON value: 35 or "T1"
  std::string runtime;
  std::string impl;
  std::uint32_t workers;
};

[[noreturn]] void fail_mismatch(const Case& c, const std::string& got,
                                const std::string& expected) {
  std::fprintf(stderr,
               "beat-forkjoin-bench: wrong result: workload %s(%s) on runtime %s (%s) with %u "
               "workers: got %s, expected %s\n",
               c.workload.c_str(), c.param_json.c_str(), c.runtime.c_str(), c.impl.c_str(),
               c.workers, got.c_str(), expected.c_str());
  std::exit(1);
}

struct Timing {
  double median_s = 0;
  double min_s = 0;
  std::optional<fj::StealCounters> delta;  // over the measured runs (beat)
  std::optional<double> others_cpus;       // see CpuClock
};

// How busy the rest of the machine was: CPU time every CPU spent outside
// idle (/proc/stat: user, nice, system, irq, softirq, steal) minus this
// process's own (getrusage, all its threads). others_cpus(a, b) is that
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
    Clock::time_point wall;
    double machine_busy_s = 0;
    double self_s = 0;
    bool valid = false;
  };

  static Sample now() {
    Sample s;
    s.wall = Clock::now();
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
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

// One warm-up run and `reps` measured runs of `run` (which returns the
// workload's result), each preceded by `prepare` (untimed) and followed by
// `check(result)` (untimed), which exits on a wrong result.
template <class Prepare, class Run, class Check>
Timing measure(const fj::Runtime& runtime, unsigned reps, Prepare&& prepare, Run&& run,
               Check&& check) {
  std::vector<double> seconds;
  std::optional<fj::StealCounters> before;
  CpuClock::Sample cpu_before;
  for (unsigned rep = 0; rep <= reps; ++rep) {  // rep 0 is the warm-up
    prepare();
    if (rep == 1) {
      before = runtime.steal_counters();
      cpu_before = CpuClock::now();
    }
    const Clock::time_point start = Clock::now();
    auto result = run();
    const Clock::time_point stop = Clock::now();
    check(result);
    if (rep > 0) seconds.push_back(std::chrono::duration<double>(stop - start).count());
  }
  Timing t;
  t.others_cpus = CpuClock::others_cpus(cpu_before, CpuClock::now());
  t.median_s = median(seconds);
  t.min_s = *std::min_element(seconds.begin(), seconds.end());
  if (const auto after = runtime.steal_counters(); after && before) {
    t.delta = fj::StealCounters{after->spawns - before->spawns, after->steals - before->steals};
  }
  return t;
}

struct Row {
  Case c;
  Timing timing;
  unsigned reps;
  std::size_t threads_seen;
  std::string settings_json;  // Runtime::settings_json()
};

void print_row(const Row& r) {
  std::string line = "{\"workload\":\"" + r.c.workload + "\",\"param\":" + r.c.param_json +
                     ",\"runtime\":\"" + r.c.runtime + "\",\"impl\":\"" + r.c.impl +
                     "\",\"workers\":" + std::to_string(r.c.workers);
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"seconds\":%.6g,\"min_seconds\":%.6g", r.timing.median_s,
                r.timing.min_s);
  line += buf;
  line +=
      ",\"reps\":" + std::to_string(r.reps) + ",\"threads_seen\":" + std::to_string(r.threads_seen);
  if (r.timing.delta) {
    const double rate = r.timing.delta->spawns == 0
                            ? 0.0
                            : static_cast<double>(r.timing.delta->steals) /
                                  static_cast<double>(r.timing.delta->spawns);
    std::snprintf(buf, sizeof buf, ",\"steal_rate\":%.6g", rate);
    line += buf;
  }
  if (r.timing.others_cpus) {
    std::snprintf(buf, sizeof buf, ",\"others_cpus\":%.2f", *r.timing.others_cpus);
    line += buf;
  }
  line += r.settings_json;
  line += "}\n";
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);  // rows appear as they are measured
}

// Measures every selected workload on `runtime` and prints one row each.
void run_workloads(fj::Runtime& runtime, const Options& opt) {
  const Sizes& s = opt.sizes;
  const unsigned reps = s.reps;
  const std::size_t threads_seen = runtime.threads_seen();
  if (threads_seen > runtime.workers()) {
    std::fprintf(stderr,
                 "beat-forkjoin-bench: runtime %s (%s) asked for %u workers ran a parallel_for on "
                 "%zu threads\n",
                 runtime.name().c_str(), runtime.impl().c_str(), runtime.workers(), threads_seen);
    std::exit(1);
  }
  auto make_row = [&](std::string workload, std::string param_json) {
    return Row{Case{std::move(workload), std::move(param_json), runtime.name(), runtime.impl(),
                    runtime.workers()},
               Timing{}, reps, threads_seen, runtime.settings_json()};
  };
  auto nothing = [] {};

  for (const std::string& workload : kWorkloadOrder) {
    if (!contains(opt.workloads, workload)) continue;
    if (workload == "fib") {
      const unsigned n = s.fib;
      const std::uint64_t expected = wl::fib_reference(n);
      if (runtime.name() == "serial") {
        // The baseline of question 2: the recursion with plain calls.
        Row row = make_row("fib", std::to_string(n));
        row.c.impl = "fib_serial";
        row.timing = measure(
            runtime, reps, nothing, [n] { return wl::fib_serial(n); },
            [&](std::uint64_t got) {
              if (got != expected)
                fail_mismatch(row.c, std::to_string(got), std::to_string(expected));
            });
        print_row(row);
      }
      Row row = make_row("fib", std::to_string(n));
      row.timing = measure(
          runtime, reps, nothing, [&] { return runtime.fib(n); },
          [&](std::uint64_t got) {
            if (got != expected)
              fail_mismatch(row.c, std::to_string(got), std::to_string(expected));
          });
      print_row(row);
    } else if (workload == "nqueens") {
      const unsigned n = s.nqueens;
      const std::uint64_t expected = *wl::nqueens_known(n);
      Row row = make_row("nqueens", std::to_string(n));
      row.timing = measure(
          runtime, reps, nothing, [&] { return runtime.nqueens(n); },
          [&](std::uint64_t got) {
            if (got != expected)
              fail_mismatch(row.c, std::to_string(got), std::to_string(expected));
          });
      print_row(row);
    } else if (workload == "uts") {
      const wl::UtsCount expected = wl::uts_known(s.uts);
      Row row = make_row("uts", "\"" + uts_name(s.uts) + "\"");
      row.timing = measure(
          runtime, reps, nothing, [&] { return runtime.uts(s.uts); },
          [&](const wl::UtsCount& got) {
            if (!(got == expected)) fail_mismatch(row.c, to_string(got), to_string(expected));
          });
      print_row(row);
    } else if (workload == "skynet") {
      const std::uint64_t leaves = s.skynet;
      const std::uint64_t expected = wl::skynet_reference(leaves);
      Row row = make_row("skynet", std::to_string(leaves));
      row.timing = measure(
          runtime, reps, nothing, [&] { return runtime.skynet(leaves); },
          [&](std::uint64_t got) {
            if (got != expected)
              fail_mismatch(row.c, std::to_string(got), std::to_string(expected));
          });
      print_row(row);
    } else if (workload == "matmul") {
      wl::MatmulProblem problem(s.matmul);
      Row row = make_row("matmul", std::to_string(s.matmul));
      row.timing = measure(
          runtime, reps, [&] { problem.clear_result(); },
          [&] {
            runtime.matmul(problem);
            return &problem;  // the result is C, checked (untimed) below
          },
          [&](const wl::MatmulProblem* done) {
            if (!done->verify()) {
              fail_mismatch(row.c, "C with checksum " + std::to_string(done->checksum()),
                            "C = A * B (MatmulProblem::verify() failed)");
            }
          });
      print_row(row);
    }
  }
}

std::unique_ptr<fj::Runtime> make_runtime(const std::string& name, std::uint32_t workers,
                                          const Options& opt) {
  if (name == "serial") return fj::make_serial_runtime();
  if (name == "tbb") return fj::make_tbb_runtime(workers, opt.tbb_join);
  if (name == "omp") return fj::make_omp_runtime(workers, opt.omp_tasks);
  if (name == "beat") return fj::make_beat_runtime(workers, opt.beat_heartbeat_us);
  throw std::invalid_argument("unknown runtime '" + name + "'");  // the CLI checks names
}

int allowed_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  return CPU_COUNT(&set);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  bool quick = false;
  std::optional<unsigned> reps;

  CLI::App app{
      "beat-forkjoin-bench: Beat's scheduler vs oneTBB, OpenMP tasks and serial on "
      "fork-join workloads; JSON lines on stdout"};
  app.add_flag("--quick", quick,
               "smaller sizes and 3 reps (fib 30, nqueens 10, uts T1, skynet 1e5, matmul 256)");
  app.add_option("--workers", opt.workers, "worker counts, comma-separated")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--runtimes", opt.runtimes,
                 "runtimes to run, comma-separated (serial,tbb,beat,omp)")
      ->delimiter(',')
      ->check(CLI::IsMember(kRuntimeOrder));
  app.add_option("--workloads", opt.workloads,
                 "workloads to run, comma-separated (fib,nqueens,uts,skynet,matmul)")
      ->delimiter(',')
      ->check(CLI::IsMember(kWorkloadOrder));
  app.add_option("--reps", reps, "measured runs per row, after one warm-up (default 5, quick 3)")
      ->check(CLI::PositiveNumber);
  app.add_option("--tbb-join", opt.tbb_join,
                 "oneTBB's fork for join (default " + name_of(kTbbJoinNames, kDefaultTbbJoin) + ")")
      ->transform(CLI::CheckedTransformer(kTbbJoinNames))
      ->option_text("task_group|parallel_invoke");
  app.add_option("--omp-tasks", opt.omp_tasks,
                 "OpenMP task kind (default " + name_of(kOmpTasksNames, kDefaultOmpTasks) + ")")
      ->transform(CLI::CheckedTransformer(kOmpTasksNames))
      ->option_text("tied|untied");
  app.add_option("--beat-heartbeat-us", opt.beat_heartbeat_us,
                 "Beat's heartbeat period in us (0: the scheduler's default)");
  CLI11_PARSE(app, argc, argv);

  if (quick) opt.sizes = kQuickSizes;
  if (reps) opt.sizes.reps = *reps;

  const int cpus_at_start = allowed_cpu_count();
  try {
    bool first_block = true;
    for (const std::string& name : kRuntimeOrder) {
      if (!contains(opt.runtimes, name)) continue;
      for (const std::uint32_t workers : opt.workers) {
        // serial has one row set, reported as 1 worker.
        if (name == "serial" && workers != opt.workers.front()) break;
        std::unique_ptr<fj::Runtime> runtime = make_runtime(name, workers, opt);
        if (!first_block) std::this_thread::sleep_for(kSettle);
        first_block = false;
        run_workloads(*runtime, opt);
      }
      if (allowed_cpu_count() != cpus_at_start) {
        std::fprintf(stderr,
                     "beat-forkjoin-bench: runtime %s changed the main thread's CPU affinity "
                     "(%d CPUs allowed, %d at start); later rows are suspect\n",
                     name.c_str(), allowed_cpu_count(), cpus_at_start);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beat-forkjoin-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
