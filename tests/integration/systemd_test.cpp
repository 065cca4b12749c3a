// beatd under systemd's eyes: systemd/beatd.service passes
// `systemd-analyze verify`, and a real beatd speaks the notify protocol to a
// datagram socket the test owns (NOTIFY_SOCKET, as PID 1 here is not
// systemd): READY=1 once it listens, WATCHDOG=1 while no worker is stuck (a
// kernel that polls for cancellation is not stuck however long it runs), a
// STATUS= line and no WATCHDOG=1 while a kernel hangs without a sign of
// life, WATCHDOG=1 again after it returns, and STOPPING=1 on SIGTERM.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/integration/edited_config.hpp"
#include "tests/integration/plugin_dir.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(SystemdUnit, PassesSystemdAnalyzeVerify) {
  // The unit as CMake configured it (systemd/beatd.service.in).
  const std::string unit = read_file(BEAT_UNIT_PATH);
  ASSERT_FALSE(unit.empty());
  const std::string installed = BEAT_INSTALLED_BEATD;
  for (const std::string& line :
       {std::string("Type=notify\n"), std::string("WatchdogSec="),
        std::string("RuntimeDirectory=beat\n"), std::string("User=beat\n"),
        std::string("ExecReload=/bin/kill -HUP $MAINPID\n"),
        "ExecStart=" + installed + " --config "})
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  // verify wants ExecStart's binary to exist: point it at the one just built.
  std::string local = unit;
  local.replace(local.find(installed), installed.size(), BEAT_BEATD_PATH);
  char dir[] = "/tmp/beat-unit-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/beatd.service";
  std::ofstream(path) << local;
  std::string out;
  const int rc = test::run_program({"/usr/bin/systemd-analyze", "verify", path}, out,
                                   std::chrono::seconds(60));
  std::filesystem::remove_all(dir);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "systemd-analyze verify complained";
}

// A datagram socket standing in for systemd's notify socket.
class NotifySocket {
 public:
  NotifySocket() {
    char dir[] = "/tmp/beat-notify-XXXXXX";
    if (::mkdtemp(dir) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    dir_ = dir;
    path_ = dir_ + "/notify.sock";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      ADD_FAILURE() << "bind " << path_ << ": " << std::strerror(errno);
  }
  ~NotifySocket() {
    ::close(fd_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }

  // The next message, or nullopt after `timeout`.
  std::optional<std::string> next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }
  // Messages until one contains `needle` (returned last), or all of them
  // up to `timeout` when none does (the last then lacks it).
  std::vector<std::string> until(const std::string& needle, std::chrono::seconds timeout) {
    std::vector<std::string> got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = next(std::chrono::milliseconds(100));
      if (!m) continue;
      got.push_back(*m);
      if (m->find(needle) != std::string::npos) break;
    }
    return got;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

int count_with(const std::vector<std::string>& messages, const std::string& needle) {
  int n = 0;
  for (const auto& m : messages) n += m.find(needle) != std::string::npos ? 1 : 0;
  return n;
}

TEST(SystemdNotify, ReadyWatchdogWithheldWhileAWorkerIsStuckAndStopping) {
  test::ScopedWatchdog watchdog("SystemdNotify.Protocol", 120);
  NotifySocket notify;
  // The faults plugin's faults.hang: a kernel that neither returns, forks
  // nor polls for a while.
  test::PluginDir plugins;
  plugins.add(BEAT_TEST_FAULTS_PLUGIN, "faults.so");
  test::EditedConfig config({{"stuck_after_ms = 60000", "stuck_after_ms = 300"}});

  ::setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "100000", 1);  // pings every 50 ms
  auto d = DaemonProcess::start({.workers = 2,
                                 .metrics_address = "",
                                 .extra_args = {"--plugin-dir", plugins.path()},
                                 .cpus = {},
                                 .config_path = config.path()});
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(d);

  std::vector<std::string> m = notify.until("READY=1", std::chrono::seconds(10));
  ASSERT_FALSE(m.empty());
  EXPECT_NE(m.back().find("READY=1"), std::string::npos);
  // Pings come while nothing runs...
  int pings = 0;
  for (int i = 0; i < 200 && pings < 3; ++i) {
    auto msg = notify.next(std::chrono::milliseconds(100));
    if (msg && *msg == "WATCHDOG=1") ++pings;
  }
  EXPECT_EQ(pings, 3);

  auto client = Client::connect({.socket_path = d->socket_path(), .name = "watchdog"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  const auto spin = c.kernel_id("spin");
  const auto hang = c.kernel_id("faults.hang");
  ASSERT_TRUE(spin && hang);

  // ...and while a kernel runs 1 s that polls for cancellation: healthy.
  ASSERT_TRUE(c.submit(std::vector<TaskDescriptor>{make_task(*spin, 1, {1'000'000'000})}));
  const std::vector<Completion> spun = test::reap(c, 1);
  ASSERT_EQ(spun.size(), 1u);
  EXPECT_EQ(spun[0].status, TaskStatus::kOk);

  // A kernel busy 1.5 s without a sign of life: stuck after 300 ms.
  ASSERT_TRUE(c.submit(std::vector<TaskDescriptor>{make_task(*hang, 2, {1500})}));
  m = notify.until("STATUS=stuck workers: ", std::chrono::seconds(10));
  ASSERT_FALSE(m.empty());
  ASSERT_NE(m.back().find("STATUS=stuck workers: "), std::string::npos);
  // Every message so far: pings, none of them after a stuck report.
  EXPECT_EQ(count_with(m, "STATUS=stuck"), 1);
  // Until it returns: no ping, then the recovery, then pings again.
  m = notify.until("STATUS=accepting clients", std::chrono::seconds(10));
  ASSERT_FALSE(m.empty());
  EXPECT_NE(m.back().find("STATUS=accepting clients"), std::string::npos);
  EXPECT_EQ(count_with(m, "WATCHDOG=1"), 0) << "a ping while a worker was stuck";
  m = notify.until("WATCHDOG=1", std::chrono::seconds(10));
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.back(), "WATCHDOG=1");
  const std::vector<Completion> hung = test::reap(c, 1);
  ASSERT_EQ(hung.size(), 1u);
  EXPECT_EQ(hung[0].status, TaskStatus::kOk);
  EXPECT_EQ(hung[0].result, 1500u);
  const std::string log = d->log();
  EXPECT_NE(log.find("watchdog: worker "), std::string::npos) << log;
  EXPECT_NE(log.find("withholding WATCHDOG=1"), std::string::npos) << log;

  client->reset();
  EXPECT_EQ(d->signal_and_wait(SIGTERM, std::chrono::seconds(20)), 0);
  // The datagrams wait in the socket: STOPPING=1 came before the exit.
  m = notify.until("STOPPING=1", std::chrono::seconds(5));
  ASSERT_FALSE(m.empty());
  EXPECT_NE(m.back().find("STOPPING=1"), std::string::npos);
}

}  // namespace
}  // namespace beat
