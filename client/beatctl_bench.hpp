// `beatctl bench`: a closed-loop load generator and verifier.
//
// C client processes (fork; each its own beat::Client session) x T submitter
// threads each submit N tasks in total, in blocking batches of B, and reap
// completions. Any thread may reap any completion of its process: a
// per-process table indexed by tag holds each task's submit time, so every
// completion is matched to its task, timed, and checked to arrive exactly
// once. Results are verified per kernel:
//   noop      args[0] = tag; result must equal the tag
//   spin      args[0] = --spin-ns; result (ns spun) must be >= it
//   checksum  data = one of up to 64 arena blocks of --data-bytes filled with
//             deterministic pseudo-random bytes; seed = tag; result must equal
//             XXH3_64bits_withSeed computed here
//   others    no arguments; only the status is checked (verified = false)
// Children report to the parent through a pipe (counts, finish time, up to
// kMaxSamplesPerChild latency samples); the parent prints one summary.
#pragma once

#include <cstdint>
#include <string>

namespace beat::ctl {

struct BenchOptions {
  std::string socket_path;
  std::string kernel = "noop";
  std::uint64_t tasks = 100000;
  std::uint32_t batch = 64;
  std::uint32_t clients = 1;
  std::uint32_t threads = 1;
  std::uint64_t spin_ns = 1000;
  std::uint64_t data_bytes = 4096;
  std::uint32_t stall_timeout_s = 30;
  bool json = false;
};

// Runs the benchmark and prints its summary (one JSON line with json).
// Returns the process exit code: 0 all tasks completed once, ok and
// verified; 1 any task failed, was lost, duplicated or wrong; 2 usage or
// connection error (message on stderr names the socket path or argument).
int run_bench(const BenchOptions& options);

}  // namespace beat::ctl
