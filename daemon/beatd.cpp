// beatd: the Beat daemon. Owns the machine's cores (one pinned worker per
// core) and runs tasks that local clients submit through shared memory.
//
// Exit status: 0 after a clean SIGTERM/SIGINT drain; 1 on a start-up error
// (bad config or flag, socket in use, ...), with a message naming the key,
// flag or path and the bad value.
#include <prometheus/exposer.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string_view>

#include "daemon/batching/similarity.hpp"
#include "daemon/config.hpp"
#include "daemon/control_server.hpp"
#include "daemon/metrics.hpp"
#include "daemon/plugin_loader.hpp"
#include "daemon/topology.hpp"
#include "daemon/worker_pool.hpp"
#include "kernels/kernel_registry.hpp"

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "beatd: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"beatd: node-local task scheduler daemon"};
  app.set_version_flag("--version", "beatd " BEAT_VERSION);
  std::string config_path;
  std::string socket, metrics_address, segment_prefix, log_level;
  std::int64_t workers = -1, idle_spin_us = -1;
  std::vector<std::string> plugin_dirs;
  bool check_only = false;
  app.add_option("--config", config_path,
                 "TOML configuration file (default: " BEAT_DEFAULT_CONFIG
                 " if it exists, else built-in defaults)");
  app.add_option("--socket", socket, "control socket path (daemon.socket)");
  app.add_option("--workers", workers, "worker threads, 0 = one per allowed core (workers.count)");
  app.add_option("--metrics-address", metrics_address,
                 "Prometheus exposer HOST:PORT, \"\" disables (metrics.address)");
  app.add_option("--segment-prefix", segment_prefix,
                 "shared-memory segment name prefix (daemon.segment_prefix)");
  app.add_option("--log-level", log_level,
                 "trace|debug|info|warn|error|critical|off (daemon.log_level)");
  app.add_option("--idle-spin-us", idle_spin_us,
                 "spin before parking, microseconds (workers.idle_spin_us)");
  app.add_option("--plugin-dir", plugin_dirs,
                 "kernel plugin directory, repeatable; replaces plugins.directories");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }

  beat::Config config;
  if (config_path.empty() && std::filesystem::exists(BEAT_DEFAULT_CONFIG))
    config_path = BEAT_DEFAULT_CONFIG;
  if (!config_path.empty()) {
    auto loaded = beat::load_config_file(config_path);
    if (!loaded) return fail(loaded.status().message());
    config = *loaded;
  }
  // Numeric flags: range-checked here, naming the flag, before they reach
  // the Config fields they override.
  const auto numeric_flag_ok = [&](const char* flag, std::int64_t value, std::uint32_t max) {
    if (app.count(flag) == 0 || (value >= 0 && value <= max)) return true;
    std::fprintf(stderr, "beatd: %s is %lld, must be in [0, %u]\n", flag,
                 static_cast<long long>(value), max);
    return false;
  };
  if (!numeric_flag_ok("--workers", workers, beat::kMaxWorkers) ||
      !numeric_flag_ok("--idle-spin-us", idle_spin_us, beat::kMaxIdleSpinUs))
    return 1;
  // Flags override the file, at start and again on every SIGHUP reload.
  const auto apply_flags = [&app, socket, metrics_address, segment_prefix, log_level, plugin_dirs,
                            workers, idle_spin_us](beat::Config& c) {
    if (!socket.empty()) c.socket = socket;
    if (app.count("--metrics-address") > 0) c.metrics_address = metrics_address;
    if (!segment_prefix.empty()) c.segment_prefix = segment_prefix;
    if (!log_level.empty()) c.log_level = log_level;
    if (!plugin_dirs.empty()) c.plugin_directories = plugin_dirs;
    if (app.count("--workers") > 0) c.worker_count = static_cast<std::uint32_t>(workers);
    if (app.count("--idle-spin-us") > 0) c.idle_spin_us = static_cast<std::uint32_t>(idle_spin_us);
  };
  apply_flags(config);
  if (beat::Status s = beat::validate_config(config); !s) return fail(s.message());
  if (check_only) {
    std::printf("configuration OK\n");
    return 0;
  }

  auto logger = spdlog::stderr_color_mt("beatd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  auto topology = beat::Topology::load();
  if (!topology) return fail(topology.status().message());

  beat::KernelRegistry kernels;
  beat::register_builtin_kernels(kernels);
  beat::PluginLoader plugins(kernels);
  if (!config.plugin_directories.empty()) {
    const auto r = plugins.scan(config.plugin_directories);
    spdlog::info("plugins: {} loaded ({} kernels), {} refused; {} kernels in all", r.loaded,
                 r.kernels, r.refused, kernels.size());
  }

  // batching.simd, or BEAT_SIMD=scalar from the environment (diagnosis).
  const char* simd_env = std::getenv("BEAT_SIMD");
  const bool scalar =
      !config.simd || (simd_env != nullptr && std::string_view(simd_env) == "scalar");
  beat::batching::set_simd_path(scalar ? beat::batching::SimdPath::kScalar
                                       : beat::batching::SimdPath::kAuto);
  spdlog::info("batching: {} grouping, fingerprints compared with {}",
               beat::batching::to_string(config.grouping), beat::batching::simd_target_name());

  std::random_device rd;
  const std::uint64_t instance =
      (std::uint64_t{rd()} << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid());

  // Declared before the pool and the server: both use it until they are gone.
  beat::ClientMetrics client_metrics;
  beat::WorkerPool pool(config, kernels, *topology);
  boost::asio::io_context io;
  beat::ControlServer server(io, config, config_path, apply_flags, kernels, plugins, pool,
                             client_metrics, instance);
  if (beat::Status s = server.listen(); !s) return fail(s.message());

  // The workers first: a scrape reads their counters, which exist once
  // start() has returned (Scheduler::worker_stats).
  if (beat::Status s = pool.start(); !s) return fail(s.message());
  std::unique_ptr<prometheus::Exposer> exposer;
  auto metrics = std::make_shared<beat::PoolMetrics>(pool, kernels, client_metrics);
  if (!config.metrics_address.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(config.metrics_address);
    } catch (const std::exception& e) {
      return fail("cannot serve metrics on metrics.address \"" + config.metrics_address +
                  "\": " + e.what());
    }
    exposer->RegisterCollectable(metrics);
    const auto ports = exposer->GetListeningPorts();
    const std::string host = config.metrics_address.substr(0, config.metrics_address.rfind(':'));
    const std::string endpoint =
        host + ":" + (ports.empty() ? std::string("?") : std::to_string(ports.front()));
    server.set_metrics_endpoint(endpoint);
    spdlog::info("metrics on http://{}/metrics", endpoint);
  }

  server.start();
  io.run();
  exposer.reset();
  return 0;
}
