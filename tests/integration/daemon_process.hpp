// DaemonProcess: the one fixture every integration test starts beatd through.
//
// Starts the real `beatd` binary (BEAT_BEATD_PATH) as a child process on a
// socket in a fresh temporary directory, with a segment prefix unique to the
// test process, the repository's default config (config/beatd.toml) and the
// metrics exposer on an ephemeral loopback port; waits until the socket
// accepts connections; and on destruction stops it (SIGTERM, then SIGKILL
// after a bound) and removes the directory.
//
// Thread-safety: one thread (the test's).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace beat::test {

class DaemonProcess {
 public:
  struct Options {
    unsigned workers = 2;
    // The exposer's HTTP server takes ~2 s to stop (civetweb's poll quantum),
    // so tests enable it only where they scrape it ("127.0.0.1:0").
    std::string metrics_address = "";
    std::vector<std::string> extra_args;  // appended after the defaults
    // CPUs the daemon may run on (sched_setaffinity before exec); empty = all.
    std::vector<int> cpus = {};
    // Config file; empty = the repository's config/beatd.toml.
    std::string config_path = "";
  };

  // Starts beatd and waits (up to 10 s) for its socket. Fails the current
  // test (ADD_FAILURE with the daemon's log) and returns nullptr otherwise.
  static std::unique_ptr<DaemonProcess> start(const Options& options);
  static std::unique_ptr<DaemonProcess> start() { return start(Options{}); }
  ~DaemonProcess();

  const std::string& socket_path() const noexcept { return socket_; }
  const std::string& segment_prefix() const noexcept { return prefix_; }
  pid_t pid() const noexcept { return pid_; }

  // Sends `signo` and waits for exit; returns the exit status (WEXITSTATUS),
  // 128+signal if killed by one, or -1 when it did not exit within `timeout`
  // (it is then SIGKILLed).
  int signal_and_wait(int signo, std::chrono::seconds timeout);
  // Whether the daemon process is still running.
  bool alive();
  // The daemon's stderr so far.
  std::string log() const;
  // Its lines containing `needle`.
  std::vector<std::string> log_lines(const std::string& needle) const;
  // Waits up to `timeout` for `needle` to appear in the log.
  bool wait_for_log(const std::string& needle,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // Client segments the daemon holds: names of its memfds (from
  // /proc/<pid>/fd) that start with this daemon's segment prefix. Empty once
  // the daemon has exited.
  std::vector<std::string> segments() const;

 private:
  DaemonProcess() = default;
  std::string dir_;
  std::string socket_;
  std::string prefix_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Runs a program to completion, capturing stdout+stderr; returns its exit
// status (or -1 when it did not finish within `timeout`).
int run_program(const std::vector<std::string>& argv, std::string& output,
                std::chrono::seconds timeout);

// Names in /dev/shm starting with `prefix`.
std::vector<std::string> shm_entries(const std::string& prefix);

// A raw Unix stream socket connected to `path` (for tests that speak the
// control protocol by hand), or -1 when nothing accepts there. The caller
// closes it.
int connect_unix(const std::string& path);

}  // namespace beat::test
