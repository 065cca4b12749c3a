#include "perf/forkjoin/beatd_peer.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace beat::perf::forkjoin {

namespace {

// How often start-up and stop poll the socket and the child.
constexpr std::chrono::milliseconds kPoll{5};
// The end of the daemon's log that error messages quote.
constexpr std::size_t kLogTail = 4000;
// The child's exit status when it cannot become beatd (the shell's codes).
constexpr int kExitAffinityFailed = 126;
constexpr int kExitExecFailed = 127;

int next_daemon_index = 0;

bool socket_accepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string config_text(const BeatdSettings& s) {
  return "[workers]\nidle_spin_us = " + std::to_string(s.idle_spin_us) +
         "\npin = " + (s.pin ? "true" : "false") +
         "\n[scheduler]\nheartbeat_us = " + std::to_string(s.heartbeat_us) +
         "\ninline_forks = " + (s.inline_forks ? "true" : "false") + "\n" + s.extra_toml;
}

// The value of the last member called `key` in STATS' JSON: the top-level
// totals come after the per-worker array, whose objects use the same names.
std::optional<std::uint64_t> last_uint_member(const std::string& json, std::string_view key) {
  std::string needle = "\"";  // built by appends: GCC 12 warns (-Wrestrict) on "\"" + key
  needle.append(key).append("\":");
  const std::size_t at = json.rfind(needle);
  if (at == std::string::npos) return std::nullopt;
  const char* begin = json.c_str() + at + needle.size();
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(begin, &end, 10);
  if (end == begin || errno != 0) return std::nullopt;
  return value;
}

}  // namespace

BeatdPeer::BeatdPeer(const std::string& beatd_path, const BeatdSettings& settings)
    : settings_(settings) {
  char dir_template[] = "/tmp/beat-forkjoin-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) {
    throw std::runtime_error(std::string("beatd peer: mkdtemp /tmp/beat-forkjoin-XXXXXX: ") +
                             std::strerror(errno));
  }
  dir_ = dir_template;
  socket_ = dir_ + "/beatd.sock";
  log_path_ = dir_ + "/beatd.log";
  const std::string config_path = dir_ + "/beatd.toml";
  try {
    std::ofstream(config_path) << config_text(settings);
    const std::string prefix =
        "beatfj" + std::to_string(::getpid()) + "x" + std::to_string(next_daemon_index++);
    std::vector<std::string> args = {beatd_path,
                                     "--config",
                                     config_path,
                                     "--socket",
                                     socket_,
                                     "--segment-prefix",
                                     prefix,
                                     "--workers",
                                     std::to_string(settings.workers),
                                     "--metrics-address",
                                     "",
                                     "--log-level",
                                     "warn"};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec: the benchmark
      // has threads (TBB's, Beat's) whose locks the child cannot trust.
      if (CPU_COUNT(&settings.cpus) > 0 &&
          ::sched_setaffinity(0, sizeof settings.cpus, &settings.cpus) != 0) {
        ::_exit(kExitAffinityFailed);
      }
      const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) {
        ::dup2(log, STDERR_FILENO);
        ::dup2(log, STDOUT_FILENO);
        if (log > STDERR_FILENO) ::close(log);
      }
      ::execv(argv[0], argv.data());
      ::_exit(kExitExecFailed);
    }

    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (!socket_accepts(socket_)) {
      if (const int status = reap(kPoll); status != kRunning) {
        std::string why = "exited with status " + std::to_string(status);
        if (status == kExitAffinityFailed) why += " (sched_setaffinity failed in the child)";
        if (status == kExitExecFailed) why += " (exec failed: no such binary?)";
        throw std::runtime_error(beatd_path + " " + why + " before listening on " + socket_ +
                                 ":\n" + log());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error(beatd_path + " did not listen on " + socket_ + " within " +
                                 std::to_string(kStartTimeout.count()) + " s:\n" + log());
      }
    }

    ClientOptions options;
    options.socket_path = socket_;
    options.name = "forkjoin-bench";
    if (settings_.arena_bytes != 0) options.segment.arena_bytes = settings_.arena_bytes;
    Result<std::unique_ptr<Client>> client = Client::connect(options);
    if (!client) throw std::runtime_error("connect: " + client.status().message());
    client_ = std::move(client).value();
    Result<std::uint32_t> fib = client_->kernel_id("fib");
    if (!fib) throw std::runtime_error("kernel_id(\"fib\"): " + fib.status().message());
    fib_kernel_ = *fib;
  } catch (const std::exception& e) {
    shut_down();  // a throwing constructor runs no destructor
    throw std::runtime_error("beatd peer with " + std::to_string(settings.workers) +
                             " workers: " + e.what());
  }
}

BeatdPeer::~BeatdPeer() { shut_down(); }

void BeatdPeer::shut_down() noexcept {
  client_.reset();
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGTERM);
    if (reap(kStopTimeout) == kRunning) {
      ::kill(pid_, SIGKILL);
      reap(kStopTimeout);
    }
  }
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
  }
}

Completion BeatdPeer::fib(unsigned n) {
  const std::uint64_t tag = next_tag_++;
  const TaskDescriptor task = make_task(fib_kernel_, tag, {n});
  if (Status submitted = client_->submit({&task, 1}); !submitted) {
    throw std::runtime_error("beatd peer: submit fib(" + std::to_string(n) +
                             "): " + submitted.message());
  }
  Completion done[1];
  Result<std::size_t> got = client_->wait(done, 1, kTaskTimeout);
  if (!got || *got != 1) {
    throw std::runtime_error("beatd peer: waiting for fib(" + std::to_string(n) +
                             "): " + (got ? "no completion" : got.status().message()));
  }
  if (done[0].tag != tag) {
    throw std::runtime_error("beatd peer: fib(" + std::to_string(n) + ") completed with tag " +
                             std::to_string(done[0].tag) + ", expected " + std::to_string(tag));
  }
  return done[0];
}

StealCounters BeatdPeer::steal_counters() {
  Result<std::string> stats = client_->stats_json();
  if (!stats) throw std::runtime_error("beatd peer: STATS: " + stats.status().message());
  const std::optional<std::uint64_t> spawns = last_uint_member(*stats, "spawns");
  const std::optional<std::uint64_t> steals = last_uint_member(*stats, "steals");
  if (!spawns || !steals) {
    throw std::runtime_error("beatd peer: STATS lacks \"spawns\" or \"steals\": " + *stats);
  }
  return {*spawns, *steals};
}

void BeatdPeer::stop() {
  client_.reset();  // BYE first, so the daemon has no session to drain
  ::kill(pid_, SIGTERM);
  const int status = reap(kStopTimeout);
  if (status != 0) {
    const std::string log_text = log();
    std::string what = "exited with status " + std::to_string(status);
    if (status == kRunning) {
      what = "did not exit within " + std::to_string(kStopTimeout.count()) + " s of SIGTERM";
    } else if (status == kLost) {
      what = "could not be waited for (waitpid failed)";
    }
    throw std::runtime_error("beatd peer with " + std::to_string(settings_.workers) +
                             " workers (pid " + std::to_string(pid_) + ") " + what + ":\n" +
                             log_text);
  }
}

std::string BeatdPeer::log() const {
  std::ifstream in(log_path_);
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  if (s.size() > kLogTail) s = "..." + s.substr(s.size() - kLogTail);
  return s.empty() ? "(empty log)" : s;
}

int BeatdPeer::reap(std::chrono::milliseconds timeout) {
  if (reaped_) return kLost;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || r < 0) {
      reaped_ = true;
      if (r < 0) return kLost;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return kLost;
    }
    if (std::chrono::steady_clock::now() >= deadline) return kRunning;
    std::this_thread::sleep_for(kPoll);
  }
}

}  // namespace beat::perf::forkjoin
