#include "tests/integration/daemon_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace beat::test {

namespace {

std::atomic<int> g_daemon_counter{0};

bool socket_accepts(const std::string& path) {
  const int fd = connect_unix(path);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// Waits for `pid` to exit within `timeout`; returns its raw wait status or
// nullopt-like -1 on timeout.
int wait_for(pid_t pid, std::chrono::milliseconds timeout, bool& exited) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      exited = true;
      return status;
    }
    if (r < 0) {
      exited = true;
      return 0;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      exited = false;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::vector<std::string> shm_entries(const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d))
      if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) out.emplace_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

std::unique_ptr<DaemonProcess> DaemonProcess::start(const Options& options) {
  std::unique_ptr<DaemonProcess> d(new DaemonProcess());
  char tmpl[] = "/tmp/beat-it-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    return nullptr;
  }
  d->dir_ = tmpl;
  d->socket_ = d->dir_ + "/beatd.sock";
  d->log_path_ = d->dir_ + "/beatd.log";
  d->prefix_ = "beatit" + std::to_string(::getpid()) + "x" + std::to_string(g_daemon_counter++);

  std::vector<std::string> args = {BEAT_BEATD_PATH,
                                   "--config",
                                   options.config_path.empty()
                                       ? std::string(BEAT_SOURCE_DIR "/config/beatd.toml")
                                       : options.config_path,
                                   "--socket",
                                   d->socket_,
                                   "--segment-prefix",
                                   d->prefix_,
                                   "--workers",
                                   std::to_string(options.workers),
                                   "--metrics-address",
                                   options.metrics_address};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());

  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    if (!options.cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int cpu : options.cpus) CPU_SET(cpu, &set);
      if (::sched_setaffinity(0, sizeof(set), &set) != 0) ::_exit(126);
    }
    const int log = ::open(d->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) {
      ::dup2(log, STDERR_FILENO);
      ::dup2(log, STDOUT_FILENO);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  d->pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!socket_accepts(d->socket_)) {
    bool exited = false;
    const int status = wait_for(pid, std::chrono::milliseconds(10), exited);
    if (exited) {
      d->reaped_ = true;
      ADD_FAILURE() << "beatd exited with status " << decode(status) << " before listening:\n"
                    << d->log();
      return nullptr;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "beatd did not listen on " << d->socket_ << " within 10 s:\n" << d->log();
      return nullptr;
    }
  }
  return d;
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && !reaped_) {
    const int status = signal_and_wait(SIGTERM, std::chrono::seconds(20));
    if (status != 0) ADD_FAILURE() << "beatd did not stop cleanly (" << status << "):\n" << log();
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

int DaemonProcess::signal_and_wait(int signo, std::chrono::seconds timeout) {
  if (reaped_) return -1;
  ::kill(pid_, signo);
  bool exited = false;
  int status = wait_for(pid_, timeout, exited);
  if (!exited) {
    ::kill(pid_, SIGKILL);
    wait_for(pid_, std::chrono::seconds(5), exited);
    reaped_ = true;
    return -1;
  }
  reaped_ = true;
  return decode(status);
}

bool DaemonProcess::alive() {
  if (reaped_) return false;
  bool exited = false;
  wait_for(pid_, std::chrono::milliseconds(0), exited);
  if (exited) reaped_ = true;
  return !exited;
}

std::string DaemonProcess::log() const {
  std::ifstream in(log_path_);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::vector<std::string> DaemonProcess::log_lines(const std::string& needle) const {
  std::vector<std::string> out;
  std::istringstream in(log());
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

bool DaemonProcess::wait_for_log(const std::string& needle,
                                 std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (log().find(needle) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::vector<std::string> DaemonProcess::segments() const {
  std::vector<std::string> out;
  const std::string dir = "/proc/" + std::to_string(pid_) + "/fd";
  const std::string want = "/memfd:" + prefix_ + "-";
  if (DIR* d = reaped_ ? nullptr : ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      char target[512];
      const ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      std::string t(target, static_cast<std::size_t>(n));
      if (t.rfind(want, 0) != 0) continue;
      t = t.substr(std::strlen("/memfd:"));
      if (const auto sp = t.find(' '); sp != std::string::npos) t.resize(sp);  // " (deleted)"
      out.push_back(t);
    }
    ::closedir(d);
  }
  // Nothing may ever be named in /dev/shm either.
  for (auto& name : shm_entries(prefix_)) out.push_back("/dev/shm/" + name);
  return out;
}

int run_program(const std::vector<std::string>& argv_in, std::string& output,
                std::chrono::seconds timeout) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    std::vector<std::string> args = argv_in;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  output.clear();
  // Read until EOF on a helper thread so a chatty child cannot block on a
  // full pipe while we wait for it.
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0)
      output.append(buf, static_cast<std::size_t>(n));
  });
  bool exited = false;
  int status = wait_for(pid, timeout, exited);
  if (!exited) {
    ::kill(pid, SIGKILL);
    wait_for(pid, std::chrono::seconds(5), exited);
    status = -1;
  }
  reader.join();
  ::close(pipe_fds[0]);
  return status == -1 ? -1 : decode(status);
}

}  // namespace beat::test
