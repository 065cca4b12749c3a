// ControlServer: the daemon's control plane on the main thread (Boost.Asio).
//
// Accepts clients on the Unix socket, checks their credentials
// (SO_PEERCRED), creates their segments and hands them over (SCM_RIGHTS),
// answers KERNELS and STATS, and tears a client down when its connection
// closes: the session is retired from the worker pool and destroyed (segment
// unmapped and unlinked) once the pool's grace period has passed.
//
// Shutdown (SIGTERM/SIGINT): stop accepting, mark every segment draining,
// wait until every task accepted before that has completed (or
// shutdown_timeout_ms), stop the workers, unlink every segment, remove the
// socket, and stop the io_context so main() exits 0.
//
// Thread-safety: every method runs on the io_context thread.
#pragma once

// clang-format off
// <utility> before Asio: Boost 1.74's Asio with GCC 12 and C++20 uses
// std::exchange without including it (TOOLCHAIN pitfall).
#include <utility>
#include <boost/asio.hpp>
// clang-format on
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "daemon/client_metrics.hpp"
#include "daemon/client_session.hpp"
#include "daemon/config.hpp"
#include "daemon/health_check.hpp"
#include "daemon/plugin_loader.hpp"
#include "daemon/worker_pool.hpp"
#include "kernels/kernel_registry.hpp"

namespace beat {

class ControlServer {
 public:
  // `apply_flags` re-applies the command line's overrides to a config read
  // from `config_path` on SIGHUP (flags win over the file, as at start).
  ControlServer(boost::asio::io_context& io, Config& config, std::string config_path,
                std::function<void(Config&)> apply_flags, const KernelRegistry& kernels,
                PluginLoader& plugins, WorkerPool& pool, ClientMetrics& client_metrics,
                std::uint64_t daemon_instance);
  ~ControlServer();

  // Binds and listens. Fails when
  // another daemon already listens on the socket.
  Status listen();
  // Starts accepting, signal handling and housekeeping timers.
  void start();
  // Beginning of SIGTERM handling; also used by tests through signals.
  void begin_shutdown(const char* why);
  // The STATS document.
  std::string stats_json() const;
  // STATS' "batching" object: the workers' batch formation counters summed.
  std::string batching_json() const;
  // Address the metrics exposer reports in STATS ("" when disabled).
  void set_metrics_endpoint(std::string endpoint) { metrics_endpoint_ = std::move(endpoint); }

 private:
  struct Connection;
  using ConnectionPtr = std::shared_ptr<Connection>;

  void accept_next();
  void read_header(const ConnectionPtr& c);
  void read_payload(const ConnectionPtr& c);
  void handle_frame(const ConnectionPtr& c);
  void handle_hello(const ConnectionPtr& c);
  void reply_error(const ConnectionPtr& c, ErrorCode code, const std::string& message, bool close);
  void close_connection(const ConnectionPtr& c, const char* why);
  void retire(std::unique_ptr<ClientSession> session);
  // Destroys a session no worker can reach any more (grace period passed,
  // or the pool stopped), after folding its counters into the metrics.
  void destroy(std::unique_ptr<ClientSession> session);
  void reap_retired();
  void schedule_housekeeping();
  void housekeeping();
  void check_drain();
  void finish_shutdown();
  // SIGHUP: re-reads the config file, applies what can change live, and
  // loads new plugins from plugins.directories.
  void reload_config();
  void apply_reloaded(const Config& next);
  void rescan_plugins();
  // Sends WATCHDOG=1 when no worker is stuck, and re-arms itself.
  void watchdog_tick();
  void handle_signal(int signo);

  boost::asio::io_context& io_;
  Config& config_;
  std::string config_path_;
  std::function<void(Config&)> apply_flags_;
  const KernelRegistry& kernels_;  // plugins_ adds to it (this thread only)
  PluginLoader& plugins_;
  WorkerPool& pool_;
  ClientMetrics& client_metrics_;
  std::uint64_t daemon_instance_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer housekeeping_timer_;
  boost::asio::steady_timer accept_retry_timer_;
  boost::asio::steady_timer watchdog_timer_;
  std::chrono::microseconds watchdog_period_{0};
  HealthCheck health_;
  bool stuck_reported_ = false;  // an error line and STATUS= were sent for the current episode
  std::list<ConnectionPtr> connections_;
  struct Retired {
    std::unique_ptr<ClientSession> session;
    std::uint64_t epoch;
  };
  std::list<Retired> retired_;
  std::uint32_t next_client_id_ = 1;
  bool listening_ = false;
  bool draining_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  std::string metrics_endpoint_;
  std::uint64_t sessions_total_ = 0;
};

}  // namespace beat
