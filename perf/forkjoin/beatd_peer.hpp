// BeatdPeer: the "beatd" peer of beat-forkjoin-bench. A real beatd child
// process, started on a socket in a fresh temporary directory, and one
// beat::Client session on it that submits fork-join kernels one task at a
// time and waits for each completion: the same scheduler as the "beat" peer,
// reached through the daemon's rings, doorbells and completion queue.
//
// Only fib is offered: the question it answers is what a client pays end to
// end for fib(30) against the in-process scheduler (forkjoin_bench.cpp's
// beatd block). It is not a Runtime (runtime.hpp): the daemon's kernels are
// fixed, so the other workloads and the threads_seen probe cannot be run
// through it.
//
// Thread-safety: one thread (the benchmark's main thread).
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "client/client.hpp"
#include "perf/forkjoin/runtime.hpp"

namespace beat::perf::forkjoin {

// What the daemon runs with, written to its config file (so that no system
// config, /usr/local/etc/beat/beatd.toml, leaks in) and reported with each
// row. The defaults are SchedulerOptions' (daemon/scheduler/scheduler.hpp),
// which the "beat" peer runs with.
struct BeatdSettings {
  std::uint32_t workers = 1;  // >= 1
  std::uint32_t heartbeat_us = 100;
  std::uint32_t idle_spin_us = 100;
  bool pin = true;
  bool inline_forks = true;  // [scheduler] inline_forks
  // More TOML sections, appended to the generated config as they are (e.g.
  // "[batching]\ngrouping = \"fifo\"\n"); empty for none.
  std::string extra_toml;
  // The client's arena, bytes (0: the library's default).
  std::uint64_t arena_bytes = 0;
  // The CPUs the daemon may run on (set before exec). beatd places its
  // workers on the cores of its affinity mask, so it must not inherit
  // whatever mask the benchmark's main thread has when it forks (a runtime
  // that pinned it); pass the mask the benchmark started with.
  cpu_set_t cpus{};
};

class BeatdPeer {
 public:
  // How long start-up may take to accept on the socket, one task may take,
  // and SIGTERM may take to end the daemon.
  static constexpr std::chrono::seconds kStartTimeout{10};
  static constexpr std::chrono::seconds kTaskTimeout{60};
  static constexpr std::chrono::seconds kStopTimeout{20};

  // Starts `beatd_path` with `settings`, waits for its socket and connects.
  // Throws std::runtime_error naming what failed (mkdtemp, fork, the daemon
  // exiting or not listening in time, with its log; the connection; a
  // missing "fib" kernel).
  BeatdPeer(const std::string& beatd_path, const BeatdSettings& settings);
  // Best-effort stop (SIGTERM, then SIGKILL after kStopTimeout) when stop()
  // was not called, and removal of the temporary directory.
  ~BeatdPeer();
  BeatdPeer(const BeatdPeer&) = delete;
  BeatdPeer& operator=(const BeatdPeer&) = delete;

  // Submits fib(n) as one task (args[0] = n) and waits for its completion,
  // which it returns unchecked (the caller checks status and result).
  // Throws std::runtime_error when submit or wait fails, the wait takes
  // longer than kTaskTimeout, or the completion carries another tag.
  // REQUIRES: no other task in flight (one at a time).
  Completion fib(unsigned n);

  // The daemon's scheduler counters summed over its workers (STATS, the
  // top-level "spawns" and "steals"; client tasks count as spawns), through
  // the control socket. Throws std::runtime_error when STATS fails or lacks
  // them.
  StealCounters steal_counters();

  pid_t pid() const noexcept { return pid_; }
  // The peer's client session, for benchmarks that submit their own tasks.
  // REQUIRES: no fib() in flight.
  Client& client() noexcept { return *client_; }
  const BeatdSettings& settings() const noexcept { return settings_; }

  // Closes the client session, sends SIGTERM and waits up to kStopTimeout.
  // Throws std::runtime_error, with the daemon's log, unless it exited with
  // status 0. Called at most once.
  void stop();

 private:
  // SIGTERM (SIGKILL after kStopTimeout) unless reaped, removes the
  // temporary directory. Errors are ignored.
  void shut_down() noexcept;
  // The end of the daemon's log (stdout and stderr), for error messages.
  std::string log() const;
  // Waits up to `timeout` for the child to exit: its exit code, or 128 +
  // the signal that ended it; kRunning when it still runs; kLost when it
  // cannot be waited for (waitpid failed, or it was reaped already).
  static constexpr int kRunning = -1;
  static constexpr int kLost = -2;
  int reap(std::chrono::milliseconds timeout);

  BeatdSettings settings_;
  std::string dir_;  // the temporary directory: socket, config, log
  std::string socket_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::unique_ptr<Client> client_;
  std::uint32_t fib_kernel_ = 0;
  std::uint64_t next_tag_ = 1;
};

}  // namespace beat::perf::forkjoin
