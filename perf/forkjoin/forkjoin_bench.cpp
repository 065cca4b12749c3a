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
//   4. Through the daemon: fib(30) submitted by a client to a real beatd,
//      end-to-end time against the same scheduler in this process, at the
//      same worker count (runtime beatd, "ratio").
//   The other workloads put questions 1-3 to coarser grains (skynet,
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
//           their defaults but `workers` (and --beat-heartbeat-us,
//           --beat-inline-forks).
//   beatd   beatd_peer.hpp: a beatd child process (BEAT_BEATD_PATH, or
//           --beatd) with `workers` workers and the beat peer's scheduler
//           settings, on a socket in a fresh temporary directory, and one
//           beat::Client session (ClientOptions' defaults: it spins 50 us
//           on the CQ, then parks). fib(30) only, whatever --quick says:
//           the daemon's kernels are fixed and the question is question 4;
//           the other workloads are skipped for it (--workloads without
//           fib skips the runtime). See "The beatd block" below.
//   omp     omp_executor.hpp: `omp task` + taskwait joins, taskloop
//           parallel_for, tied tasks, in a parallel region of `workers`.
// Nothing here pins a thread: each runtime does what it does by default
// (Beat pins its workers, in process and in beatd; TBB and libgomp pin
// nothing).
//
// Method. For each runtime (always in the order serial, tbb, beat, beatd,
// omp), for each worker count, for each workload: one unmeasured warm-up
// run, then --reps measured runs, each timed on the calling thread around
// the whole root (so the hand-off to the runtime's threads and back is
// included) and each result checked against the workload's known value:
// fib_reference, nqueens_known, uts_known, skynet_reference,
// MatmulProblem::verify. A wrong result ends the program with status 1 and
// a message naming workload, runtime, what it got and what was expected.
// Matmul clears C before every run, outside the timed region.
//
// Keeping the runtimes out of each other's way: they run one after another,
// never concurrently, with a 100 ms pause between blocks (beatd's child has
// exited before the next block starts). OpenMP runs last because libgomp's
// threads spin after a parallel region (OMP_WAIT_POLICY is left at its
// default, as an OpenMP user would have it, so the peer is not slowed by
// sleeping workers); after it no other runtime runs. TBB's worker
// threads and Beat's workers park when idle (Beat after idle_spin_us). Every
// row also reports "threads_seen": the distinct threads that ran bodies of a
// probe parallel_for on that runtime and worker count; more than `workers`
// is an error (that is how "1 worker" is known to mean one thread working).
//
// The beatd block, per worker count: (1) fib(30) on the beat peer in this
// process, warm-up and --reps runs as above, not printed as a row but kept
// as the reference (so it exists even with --runtimes beatd alone); its
// workers are stopped. (2) After the pause, beatd starts (its CPU mask set
// to the one this program started with, so it cannot inherit a pin), the
// client connects, and one task at a time fib(30) is submitted
// (args[0] = 30) and waited for: one warm-up task, then --reps tasks, each
// timed on the client from just before submit to the return of wait, and
// each completion checked (status ok, result fib_reference(30) = 832040).
// (3) SIGTERM; the daemon must exit 0. A failure anywhere ends the program
// with status 1 and a message naming it.
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
//                 heartbeat (beat), client (beatd).
//   seconds       median of the measured runs (the mean of the middle two
//                 for an even count); min_seconds the fastest.
//   threads_seen  see above; fewer than `workers` means some worker ran no
//                 probe body (seen for beat while another process kept a
//                 vCPU busy). Absent from beatd rows: the probe is not a
//                 daemon kernel.
//   steal_rate    beat: steals over the measured runs (SchedulerStats
//                 delta) / tasks in them, where a run's tasks are its joins
//                 plus its parallel_for iterations, counted once per
//                 workload on CountingExecutor (counting_executor.hpp);
//                 beatd: the same with the daemon's STATS ("steals"), each
//                 client task one more task.
//   spawns_per_task
//                 beat and beatd: the scheduler's "spawns" (forks and
//                 iterations that went through frames, or were counted by
//                 the polling clone) per task: 1 with inline_forks off,
//                 far below with inline subtrees.
//   in_process_seconds, ratio
//                 beatd only: the median of fib(30) on the beat peer in
//                 this process at the same worker count, measured in the
//                 same run, and seconds / in_process_seconds.
//   others_cpus   the average number of CPUs that other processes (and the
//                 hypervisor's steal) used while the runs were measured
//                 (cpu_clock.hpp; for beatd the daemon's CPU counts as the
//                 benchmark's own); absent when the measured runs took less
//                 than 250 ms in all (too short for /proc/stat's ticks). On
//                 a 2-vCPU machine a row with others_cpus well above 0 was
//                 contended; compare such rows with care or re-run them.
//   heartbeat_us, idle_spin_us, pin, inline_forks
//                 beat and beatd: the SchedulerOptions the scheduler ran
//                 with (beatd's written to its config file).
//
// Sizes: default fib 35, nqueens 12, uts T1, skynet 10^6, matmul 1024, 5
// reps; --quick fib 30, nqueens 10, uts T1, skynet 10^5, matmul 256, 3 reps
// (a smoke test: 25 s wall on the 2-vCPU dev VM; the full set 105 s; both
// with every runtime). The beatd block is fib(30) in both (about 0.5 s of
// wall time at 5 reps, daemon start and stop included).
#include <sched.h>
#include <sys/types.h>

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

#include "daemon/scheduler/scheduler.hpp"
#include "kernels/workloads/fib.hpp"
#include "kernels/workloads/matmul.hpp"
#include "kernels/workloads/nqueens.hpp"
#include "kernels/workloads/skynet.hpp"
#include "kernels/workloads/uts.hpp"
#include "perf/forkjoin/beatd_peer.hpp"
#include "perf/forkjoin/counting_executor.hpp"
#include "perf/forkjoin/cpu_clock.hpp"
#include "perf/forkjoin/median.hpp"
#include "perf/forkjoin/runtime.hpp"
#include "perf/forkjoin/workload_sizes.hpp"

namespace {

namespace fj = beat::perf::forkjoin;
using fj::median;
namespace wl = beat::workloads;
using Clock = std::chrono::steady_clock;
using fj::CpuClock;

// The runtimes, in the order they run (OpenMP last: see the header comment).
const std::vector<std::string> kRuntimeOrder = {"serial", "tbb", "beat", "beatd", "omp"};
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

struct Sizes : fj::WorkloadSizes {
  unsigned reps;
};

constexpr Sizes kFullSizes{fj::kFullWorkloads, 5};
constexpr Sizes kQuickSizes{fj::kQuickWorkloads, 3};

struct Options {
  Sizes sizes = kFullSizes;
  std::vector<std::uint32_t> workers = {1, 2};
  std::vector<std::string> runtimes = kRuntimeOrder;
  std::vector<std::string> workloads = kWorkloadOrder;
  fj::TbbJoin tbb_join = kDefaultTbbJoin;
  fj::OmpTasks omp_tasks = kDefaultOmpTasks;
  std::uint32_t beat_heartbeat_us = 0;  // 0: SchedulerOptions' default
  bool beat_inline_forks = beat::sched::SchedulerOptions{}.inline_forks;
  std::string beatd_path = BEAT_BEATD_PATH;
};

// The beatd block measures fib at this n whatever the sizes (the issue's
// question: fib(30) submitted by a client), so that --quick and the full
// set answer the same question.
constexpr unsigned kBeatdFibN = 30;

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

std::string mismatch_message(const Case& c, const std::string& got, const std::string& expected) {
  return "wrong result: workload " + c.workload + "(" + c.param_json + ") on runtime " + c.runtime +
         " (" + c.impl + ") with " + std::to_string(c.workers) + " workers: got " + got +
         ", expected " + expected;
}

[[noreturn]] void fail_mismatch(const Case& c, const std::string& got,
                                const std::string& expected) {
  std::fprintf(stderr, "beat-forkjoin-bench: %s\n", mismatch_message(c, got, expected).c_str());
  std::exit(1);
}

struct Timing {
  double median_s = 0;
  double min_s = 0;
  std::optional<fj::StealCounters> delta;  // over the measured runs (beat)
  std::optional<double> others_cpus;       // see CpuClock
};

// One warm-up run and `reps` measured runs of `run` (which returns the
// workload's result), each preceded by `prepare` (untimed) and followed by
// `check(result)` (untimed), which exits on a wrong result. `counters()`
// (an std::optional<fj::StealCounters>) is read, untimed, before the first
// and after the last measured run; `child` is a process whose CPU time is
// the measurement's own (CpuClock::now), 0 for none.
template <class Counters, class Prepare, class Run, class Check>
Timing measure_with(Counters&& counters, pid_t child, unsigned reps, Prepare&& prepare, Run&& run,
                    Check&& check) {
  std::vector<double> seconds;
  std::optional<fj::StealCounters> before;
  CpuClock::Sample cpu_before;
  for (unsigned rep = 0; rep <= reps; ++rep) {  // rep 0 is the warm-up
    prepare();
    if (rep == 1) {
      before = counters();
      cpu_before = CpuClock::now(child);
    }
    const Clock::time_point start = Clock::now();
    auto result = run();
    const Clock::time_point stop = Clock::now();
    check(result);
    if (rep > 0) seconds.push_back(std::chrono::duration<double>(stop - start).count());
  }
  Timing t;
  t.others_cpus = CpuClock::others_cpus(cpu_before, CpuClock::now(child));
  t.median_s = median(seconds);
  t.min_s = *std::min_element(seconds.begin(), seconds.end());
  if (const std::optional<fj::StealCounters> after = counters(); after && before) {
    t.delta = fj::StealCounters{after->spawns - before->spawns, after->steals - before->steals};
  }
  return t;
}

// measure_with on a Runtime in this process: its own steal counters.
template <class Prepare, class Run, class Check>
Timing measure(const fj::Runtime& runtime, unsigned reps, Prepare&& prepare, Run&& run,
               Check&& check) {
  return measure_with([&runtime] { return runtime.steal_counters(); }, 0, reps,
                      std::forward<Prepare>(prepare), std::forward<Run>(run),
                      std::forward<Check>(check));
}

struct Row {
  Case c;
  Timing timing;
  unsigned reps;
  std::optional<std::size_t> threads_seen;  // none for beatd (no probe through the daemon)
  std::string settings_json;                // Runtime::settings_json()
  std::string extra_json = {};      // more members, each preceded by a comma (beatd's comparison)
  std::uint64_t tasks_per_run = 0;  // joins + parallel_for iterations; 0 when not counted
};

// Tasks (joins plus parallel_for iterations) of one run of `root`, run on a
// CountingExecutor. Untimed; only rows with steal counters need it.
template <class Root>
std::uint64_t count_tasks(Root&& root) {
  fj::CountingExecutor counter;
  root(counter);
  return counter.tasks();
}

void print_row(const Row& r) {
  std::string line = "{\"workload\":\"" + r.c.workload + "\",\"param\":" + r.c.param_json +
                     ",\"runtime\":\"" + r.c.runtime + "\",\"impl\":\"" + r.c.impl +
                     "\",\"workers\":" + std::to_string(r.c.workers);
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"seconds\":%.6g,\"min_seconds\":%.6g", r.timing.median_s,
                r.timing.min_s);
  line += buf;
  line += ",\"reps\":" + std::to_string(r.reps);
  if (r.threads_seen) line += ",\"threads_seen\":" + std::to_string(*r.threads_seen);
  line += r.extra_json;
  if (r.timing.delta && r.tasks_per_run != 0) {
    const double tasks = static_cast<double>(r.tasks_per_run) * r.reps;
    std::snprintf(buf, sizeof buf, ",\"steal_rate\":%.6g,\"spawns_per_task\":%.6g",
                  static_cast<double>(r.timing.delta->steals) / tasks,
                  static_cast<double>(r.timing.delta->spawns) / tasks);
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
  // Steal rates need the task count; only Beat reports steals.
  const bool counted = runtime.steal_counters().has_value();

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
      if (counted) row.tasks_per_run = count_tasks([n](auto& ex) { return wl::fib(ex, n); });
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
      if (counted) row.tasks_per_run = count_tasks([n](auto& ex) { return wl::nqueens(ex, n); });
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
      if (counted) row.tasks_per_run = count_tasks([&](auto& ex) { return wl::uts(ex, s.uts); });
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
      if (counted)
        row.tasks_per_run = count_tasks([leaves](auto& ex) { return wl::skynet(ex, leaves); });
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
      if (counted) {
        // C is cleared before every measured run (prepare).
        row.tasks_per_run = count_tasks([&](auto& ex) {
          problem.multiply(ex);
          return 0;
        });
      }
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

// The beatd block at one worker count: fib(kBeatdFibN) on Beat's scheduler
// in this process (the reference, measured here so that it exists whatever
// --runtimes says; not printed as a row of its own), then the same through
// a beatd child with the same scheduler settings, submitted by a client one
// task at a time. Prints one beatd row that carries the in-process median
// and the ratio of the two. Exits 1 on a wrong in-process result; throws
// std::runtime_error on a wrong completion from the daemon, when the daemon
// cannot start, a task cannot be submitted or waited for, or the daemon
// does not exit 0 on SIGTERM.
void run_beatd(std::uint32_t workers, const Options& opt, const cpu_set_t& startup_cpus) {
  const unsigned n = kBeatdFibN;
  const std::uint64_t expected = wl::fib_reference(n);
  const unsigned reps = opt.sizes.reps;

  Timing in_process;
  {
    std::unique_ptr<fj::Runtime> runtime =
        fj::make_beat_runtime(workers, opt.beat_heartbeat_us, opt.beat_inline_forks);
    const Case c{"fib", std::to_string(n), runtime->name(), runtime->impl(), workers};
    in_process = measure(
        *runtime, reps, [] {}, [&] { return runtime->fib(n); },
        [&](std::uint64_t got) {
          if (got != expected) fail_mismatch(c, std::to_string(got), std::to_string(expected));
        });
  }  // its workers are gone before the daemon's start
  std::this_thread::sleep_for(kSettle);

  const beat::sched::SchedulerOptions defaults;
  fj::BeatdSettings settings;
  settings.workers = workers;
  settings.heartbeat_us =
      opt.beat_heartbeat_us != 0 ? opt.beat_heartbeat_us : defaults.heartbeat_us;
  settings.idle_spin_us = defaults.idle_spin_us;
  settings.pin = defaults.pin;
  settings.inline_forks = opt.beat_inline_forks;
  settings.cpus = startup_cpus;
  fj::BeatdPeer peer(opt.beatd_path, settings);

  Row row{Case{"fib", std::to_string(n), "beatd", "client", workers}, Timing{}, reps, std::nullopt,
          ",\"heartbeat_us\":" + std::to_string(settings.heartbeat_us) +
              ",\"idle_spin_us\":" + std::to_string(settings.idle_spin_us) +
              ",\"pin\":" + (settings.pin ? "true" : "false") +
              ",\"inline_forks\":" + (settings.inline_forks ? "true" : "false")};
  // The client's task is one more task than the kernel's forks.
  row.tasks_per_run = 1 + count_tasks([n](auto& ex) { return wl::fib(ex, n); });
  row.timing = measure_with(
      [&peer] { return std::optional<fj::StealCounters>(peer.steal_counters()); }, peer.pid(), reps,
      [] {}, [&] { return peer.fib(n); },
      [&](const beat::Completion& got) {
        // Thrown, not exited on: unwinding stops the daemon (~BeatdPeer).
        if (got.status != beat::TaskStatus::kOk || got.result != expected) {
          throw std::runtime_error(mismatch_message(
              row.c,
              "status " + std::string(beat::to_string(got.status)) + " (detail " +
                  std::to_string(got.detail) + "), result " + std::to_string(got.result),
              "status ok, result " + std::to_string(expected)));
        }
      });
  peer.stop();  // throws unless beatd exits 0 on SIGTERM

  char buf[96];
  std::snprintf(buf, sizeof buf, ",\"in_process_seconds\":%.6g,\"ratio\":%.4g", in_process.median_s,
                row.timing.median_s / in_process.median_s);
  row.extra_json = buf;
  print_row(row);
}

std::unique_ptr<fj::Runtime> make_runtime(const std::string& name, std::uint32_t workers,
                                          const Options& opt) {
  if (name == "serial") return fj::make_serial_runtime();
  if (name == "tbb") return fj::make_tbb_runtime(workers, opt.tbb_join);
  if (name == "omp") return fj::make_omp_runtime(workers, opt.omp_tasks);
  if (name == "beat")
    return fj::make_beat_runtime(workers, opt.beat_heartbeat_us, opt.beat_inline_forks);
  throw std::invalid_argument("unknown runtime '" + name + "'");  // the CLI checks names
}

cpu_set_t allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) CPU_ZERO(&set);
  return set;
}

int allowed_cpu_count() {
  const cpu_set_t set = allowed_cpus();
  return CPU_COUNT(&set) == 0 ? -1 : CPU_COUNT(&set);
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
                 "runtimes to run, comma-separated (serial,tbb,beat,beatd,omp)")
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
                 "Beat's heartbeat period in us (0: the scheduler's default), in this process "
                 "and in beatd");
  app.add_option("--beat-inline-forks", opt.beat_inline_forks,
                 "Beat's scheduler.inline_forks (true: deep forks run as inline subtrees), in "
                 "this process and in beatd")
      ->capture_default_str();
  app.add_option("--beatd", opt.beatd_path, "the beatd binary of the beatd runtime")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (quick) opt.sizes = kQuickSizes;
  if (reps) opt.sizes.reps = *reps;

  const cpu_set_t startup_cpus = allowed_cpus();
  const int cpus_at_start = allowed_cpu_count();
  try {
    bool first_block = true;
    for (const std::string& name : kRuntimeOrder) {
      if (!contains(opt.runtimes, name)) continue;
      for (const std::uint32_t workers : opt.workers) {
        // serial has one row set, reported as 1 worker.
        if (name == "serial" && workers != opt.workers.front()) break;
        // beatd runs fib only (the daemon's question), and only when asked for.
        if (name == "beatd" && !contains(opt.workloads, "fib")) break;
        if (name == "beatd") {
          if (!first_block) std::this_thread::sleep_for(kSettle);
          first_block = false;
          run_beatd(workers, opt, startup_cpus);
          continue;
        }
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
