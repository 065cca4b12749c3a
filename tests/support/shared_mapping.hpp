// Test support: anonymous MAP_SHARED memory and forked children, for tests
// that exercise the protocol across a process boundary the way the daemon
// and a client do (both map the same pages; atomics and futexes must work on
// them).
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

namespace beat::test {

// Owns one MAP_SHARED | MAP_ANONYMOUS mapping, zero-filled, inherited by
// fork() children at the same address.
class SharedMapping {
 public:
  explicit SharedMapping(std::size_t bytes) : bytes_(bytes) {
    base_ = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base_ == MAP_FAILED)
      throw std::runtime_error("mmap of " + std::to_string(bytes) +
                               " shared bytes failed: " + std::strerror(errno));
  }
  ~SharedMapping() { ::munmap(base_, bytes_); }
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  void* data() const noexcept { return base_; }
  std::size_t size() const noexcept { return bytes_; }

 private:
  void* base_ = nullptr;
  std::size_t bytes_ = 0;
};

// Forks a child that runs `body` and _exit()s with its int result (gtest
// assertions do not cross the fork: the child reports through its exit
// code). The child arms its own alarm(2) of `time_limit_s` seconds, since
// alarms are not inherited, and dies of SIGALRM if it hangs.
template <typename Body>
pid_t fork_child(unsigned time_limit_s, Body&& body) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    ::signal(SIGALRM, SIG_DFL);
    ::alarm(time_limit_s);
    int code = 1;
    try {
      code = body();
    } catch (...) {
      code = 2;
    }
    ::_exit(code);
  }
  return pid;
}

// Result of waiting for a child: its exit code, 128 + signal number when it
// was killed, or -1 when it outlived `timeout` (it is then SIGKILLed and
// reaped).
inline int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -2;
    }
    if (r < 0 && errno != EINTR) return -3;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace beat::test
