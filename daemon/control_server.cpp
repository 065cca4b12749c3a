#include "daemon/control_server.hpp"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstring>
#include <sstream>

#include "daemon/batching/similarity.hpp"
#include "shared/control_message.hpp"
#include "shared/json_text.hpp"

namespace beat {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {

// Housekeeping cadence: slow when there is nothing to reclaim (an idle
// daemon must use no measurable CPU), fast while sessions wait for their
// grace period or the daemon drains.
constexpr auto kIdleHousekeeping = std::chrono::milliseconds(250);
constexpr auto kBusyHousekeeping = std::chrono::milliseconds(1);

// Pause before accepting again after accept() failed (out of descriptors).
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

// Connections allowed beyond daemon.max_clients: beatctl and other tools
// that ask KERNELS or STATS without a segment.
constexpr std::size_t kExtraConnections = 16;

// Rounds a client's ring request to a power of two inside [min, max];
// 0 means "the default".
std::uint32_t clamp_entries(std::uint32_t requested, std::uint32_t fallback, std::uint32_t max) {
  std::uint64_t v = requested == 0 ? fallback : requested;
  if (v < kMinRingEntries) v = kMinRingEntries;
  if (v > max) v = max;
  std::uint64_t p = 1;
  while (p < v) p <<= 1;
  if (p > max) p = max;  // max is a power of two (validated)
  return static_cast<std::uint32_t>(p);
}

std::string printable(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return s;
}

}  // namespace

struct ControlServer::Connection {
  explicit Connection(stream::socket s) : socket(std::move(s)) {}
  stream::socket socket;
  FrameHeader header{};
  std::vector<std::byte> payload;
  PeerCredentials peer{};
  std::unique_ptr<ClientSession> session;
  bool closed = false;
};

ControlServer::ControlServer(asio::io_context& io, Config& config, std::string config_path,
                             std::function<void(Config&)> apply_flags,
                             const KernelRegistry& kernels, PluginLoader& plugins, WorkerPool& pool,
                             ClientMetrics& client_metrics, std::uint64_t daemon_instance)
    : io_(io),
      config_(config),
      config_path_(std::move(config_path)),
      apply_flags_(std::move(apply_flags)),
      kernels_(kernels),
      plugins_(plugins),
      pool_(pool),
      client_metrics_(client_metrics),
      daemon_instance_(daemon_instance),
      acceptor_(io),
      signals_(io, SIGTERM, SIGINT, SIGHUP),
      housekeeping_timer_(io),
      accept_retry_timer_(io),
      watchdog_timer_(io),
      health_(pool.scheduler(), std::chrono::milliseconds(config.stuck_after_ms)) {}

ControlServer::~ControlServer() {
  // Normal exit goes through finish_shutdown(); this covers start-up failures.
  pool_.stop();
  for (auto& c : connections_) destroy(std::move(c->session));
  for (auto& r : retired_) destroy(std::move(r.session));
  retired_.clear();
  if (listening_) ::unlink(config_.socket.c_str());
}

Status ControlServer::listen() {
  const std::string& path = config_.socket;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Status(ErrorCode::kInvalidArgument,
                    "socket path '" + path + "' exists and is not a socket");
    // A live daemon answers; a stale file from a crash does not.
    stream::socket probe(io_);
    boost::system::error_code ec;
    probe.connect(stream::endpoint(path), ec);
    if (!ec)
      return Status(ErrorCode::kInvalidArgument, "another beatd is listening on '" + path + "'");
    ::unlink(path.c_str());
  }
  boost::system::error_code ec;
  acceptor_.open(stream(), ec);
  if (!ec) acceptor_.bind(stream::endpoint(path), ec);
  if (ec)
    return Status(ErrorCode::kIo, "cannot bind control socket '" + path + "': " + ec.message());
  listening_ = true;
  if (::chmod(path.c_str(), config_.socket_mode) != 0)
    return Status(ErrorCode::kIo,
                  "cannot chmod control socket '" + path + "': " + std::strerror(errno));
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot listen on '" + path + "': " + ec.message());
  return Status::ok();
}

void ControlServer::start() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (!ec) handle_signal(signo);
  });
  accept_next();
  schedule_housekeeping();
  spdlog::info("listening on {} ({} workers)", config_.socket, pool_.worker_count());
  sd_notify(0, "READY=1\nSTATUS=accepting clients");
  // systemd's watchdog (WatchdogSec): ping at half its period, from the
  // control thread, only while no worker is stuck (daemon/health_check.hpp).
  std::uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec != 0) {
    watchdog_period_ = std::chrono::microseconds(watchdog_usec / 2);
    spdlog::info("systemd watchdog: WATCHDOG=1 every {} ms while no worker is stuck for {} ms",
                 watchdog_period_.count() / 1000, config_.stuck_after_ms);
    watchdog_tick();
  }
}

void ControlServer::watchdog_tick() {
  if (finished_) return;
  const std::vector<HealthCheck::Stuck> stuck = health_.check(std::chrono::steady_clock::now());
  if (stuck.empty()) {
    if (stuck_reported_) {
      spdlog::info("watchdog: no worker is stuck any more; WATCHDOG=1 resumes");
      sd_notify(0, draining_ ? "STATUS=draining" : "STATUS=accepting clients");
      stuck_reported_ = false;
    }
    sd_notify(0, "WATCHDOG=1");
  } else if (!stuck_reported_) {
    std::string which;
    for (const HealthCheck::Stuck& s : stuck)
      which += (which.empty() ? "" : ", ") + std::to_string(s.worker) + " (" +
               std::to_string(s.without_progress.count()) + " ms)";
    spdlog::error(
        "watchdog: worker {} busy without a sign of life for more than {} ms (a kernel that "
        "neither returns, forks nor polls for cancellation); withholding WATCHDOG=1",
        which, health_.stuck_after().count());
    sd_notify(0, ("STATUS=stuck workers: " + which).c_str());
    stuck_reported_ = true;
  }
  watchdog_timer_.expires_after(watchdog_period_);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) watchdog_tick();
  });
}

void ControlServer::handle_signal(int signo) {
  if (signo == SIGHUP) {
    reload_config();
  } else {
    begin_shutdown(signo == SIGTERM ? "SIGTERM" : "SIGINT");
  }
  if (!finished_)
    signals_.async_wait([this](const boost::system::error_code& ec, int s) {
      if (!ec) handle_signal(s);
    });
}

void ControlServer::reload_config() {
  sd_notify(0, "RELOADING=1");
  if (config_path_.empty()) {
    spdlog::warn("SIGHUP: no config file was given; rescanning the plugin directories only");
  } else if (auto next = load_config_file(config_path_); !next) {
    spdlog::error("SIGHUP: keeping the running configuration: {}", next.status().message());
  } else {
    if (apply_flags_) apply_flags_(*next);
    if (Status s = validate_config(*next); !s)
      spdlog::error("SIGHUP: keeping the running configuration: {}", s.message());
    else
      apply_reloaded(*next);
  }
  rescan_plugins();
  sd_notify(0, "READY=1");
}

void ControlServer::apply_reloaded(const Config& n) {
  if (n.log_level != config_.log_level) {
    spdlog::set_level(spdlog::level::from_str(n.log_level));
    spdlog::info("SIGHUP: daemon.log_level {} -> {}", config_.log_level, n.log_level);
    config_.log_level = n.log_level;
  }
  if (n.idle_spin_us != config_.idle_spin_us) {
    pool_.set_idle_spin_us(n.idle_spin_us);
    spdlog::info("SIGHUP: workers.idle_spin_us {} -> {}", config_.idle_spin_us, n.idle_spin_us);
    config_.idle_spin_us = n.idle_spin_us;
  }
  if (n.stuck_after_ms != config_.stuck_after_ms) {
    health_.set_stuck_after(std::chrono::milliseconds(n.stuck_after_ms));
    spdlog::info("SIGHUP: workers.stuck_after_ms {} -> {}", config_.stuck_after_ms,
                 n.stuck_after_ms);
    config_.stuck_after_ms = n.stuck_after_ms;
  }
  if (n.heartbeat_us != config_.heartbeat_us) {
    pool_.set_heartbeat_us(n.heartbeat_us);
    spdlog::info("SIGHUP: scheduler.heartbeat_us {} -> {}", config_.heartbeat_us, n.heartbeat_us);
    config_.heartbeat_us = n.heartbeat_us;
  }
  if (n.plugin_directories != config_.plugin_directories) {
    const auto list = [](const std::vector<std::string>& dirs) {
      std::string out = "[";
      for (const auto& d : dirs) out += (out.size() == 1 ? "\"" : ", \"") + d + "\"";
      return out + "]";
    };
    spdlog::info("SIGHUP: plugins.directories {} -> {}", list(config_.plugin_directories),
                 list(n.plugin_directories));
    config_.plugin_directories = n.plugin_directories;
  }
  if (n.min_batch != config_.min_batch || n.max_batch != config_.max_batch) {
    pool_.set_batch_bounds(n.min_batch, n.max_batch);  // validated: min <= max
    spdlog::info("SIGHUP: batching.min_batch {} -> {}, batching.max_batch {} -> {}",
                 config_.min_batch, n.min_batch, config_.max_batch, n.max_batch);
    config_.min_batch = n.min_batch;
    config_.max_batch = n.max_batch;
  }
  if (n.steal_policy != config_.steal_policy ||
      n.steal_attempts_per_level != config_.steal_attempts_per_level) {
    pool_.set_steal_policy(n.steal_policy, n.steal_attempts_per_level);
    spdlog::info(
        "SIGHUP: scheduler.steal_policy {} -> {}, scheduler.steal_attempts_per_level {} "
        "-> {}",
        sched::to_string(config_.steal_policy), sched::to_string(n.steal_policy),
        config_.steal_attempts_per_level, n.steal_attempts_per_level);
    config_.steal_policy = n.steal_policy;
    config_.steal_attempts_per_level = n.steal_attempts_per_level;
  }
  // Read by this thread only, at the next HELLO or SIGTERM.
  const auto live = [](const char* key, auto& current, const auto& next) {
    if (current == next) return;
    spdlog::info("SIGHUP: {} {} -> {}", key, current, next);
    current = next;
  };
  live("clients.sq_entries_max", config_.sq_entries_max, n.sq_entries_max);
  live("clients.cq_entries_max", config_.cq_entries_max, n.cq_entries_max);
  live("clients.arena_bytes_max", config_.arena_bytes_max, n.arena_bytes_max);
  live("daemon.shutdown_timeout_ms", config_.shutdown_timeout_ms, n.shutdown_timeout_ms);
  // Everything else is fixed for the daemon's life: name what changed.
  std::vector<std::string> restart;
  const auto needs = [&restart](bool changed, const char* key) {
    if (changed) restart.emplace_back(key);
  };
  needs(n.socket != config_.socket, "daemon.socket");
  needs(n.socket_mode != config_.socket_mode, "daemon.socket_mode");
  needs(n.segment_prefix != config_.segment_prefix, "daemon.segment_prefix");
  needs(n.max_clients != config_.max_clients, "daemon.max_clients");
  needs(n.worker_count != config_.worker_count, "workers.count");
  needs(n.intake_batch != config_.intake_batch, "workers.intake_batch");
  needs(n.pin != config_.pin, "workers.pin");
  needs(n.inline_forks != config_.inline_forks, "scheduler.inline_forks");
  needs(n.grouping != config_.grouping, "batching.grouping");
  needs(n.simd != config_.simd, "batching.simd");
  needs(n.batch_threshold != config_.batch_threshold, "batching.threshold");
  needs(n.max_open_batches != config_.max_open_batches, "batching.max_open");
  needs(n.metrics_address != config_.metrics_address, "metrics.address");
  if (!restart.empty()) {
    std::string keys;
    for (const auto& k : restart) keys += (keys.empty() ? "" : ", ") + k;
    spdlog::warn("SIGHUP: changed, but take effect only after a restart: {}", keys);
  }
}

void ControlServer::rescan_plugins() {
  if (config_.plugin_directories.empty()) return;
  const std::uint32_t before = kernels_.size();
  const auto r = plugins_.scan(config_.plugin_directories);
  spdlog::info("SIGHUP: plugins: {} loaded ({} kernels), {} refused; {} kernels in all (was {})",
               r.loaded, r.kernels, r.refused, kernels_.size(), before);
}

void ControlServer::accept_next() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted && !draining_) {
        // EMFILE and friends persist until a descriptor frees: retry after a
        // pause rather than spin on accept (and flood the log).
        spdlog::warn("accept failed: {}; retrying in {} ms", ec.message(),
                     kAcceptRetryDelay.count());
        accept_retry_timer_.expires_after(kAcceptRetryDelay);
        accept_retry_timer_.async_wait([this](const boost::system::error_code& e) {
          if (!e && !draining_) accept_next();
        });
      }
      return;
    }
    if (connections_.size() >= config_.max_clients + kExtraConnections) {
      // Bounded: each connection may hold a request buffer and a session.
      const auto payload = make_error_payload(
          ErrorCode::kResourceExhausted,
          "beatd has " + std::to_string(connections_.size()) +
              " connections (daemon.max_clients=" + std::to_string(config_.max_clients) + " plus " +
              std::to_string(kExtraConnections) + " for tools)");
      (void)send_frame(socket.native_handle(), MessageType::kError, payload, -1, 0);
      boost::system::error_code ignored;
      socket.close(ignored);
      if (!draining_) accept_next();
      return;
    }
    auto c = std::make_shared<Connection>(std::move(socket));
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(c->socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      spdlog::warn("SO_PEERCRED failed: {}; refusing connection", std::strerror(errno));
    } else {
      c->peer = {cred.pid, cred.uid, cred.gid};
      connections_.push_back(c);
      read_header(c);
    }
    if (!draining_) accept_next();
  });
}

void ControlServer::read_header(const ConnectionPtr& c) {
  asio::async_read(c->socket, asio::buffer(&c->header, sizeof(c->header)),
                   [this, c](const boost::system::error_code& ec, std::size_t) {
                     if (ec) {
                       close_connection(c, ec == asio::error::eof ? "closed" : "read error");
                       return;
                     }
                     if (c->header.magic != kFrameMagic) {
                       reply_error(c, ErrorCode::kProtocol,
                                   "bad frame magic " + std::to_string(c->header.magic), true);
                       return;
                     }
                     if (c->header.length > kMaxFramePayload) {
                       reply_error(c, ErrorCode::kProtocol,
                                   "frame length " + std::to_string(c->header.length) +
                                       " exceeds " + std::to_string(kMaxFramePayload),
                                   true);
                       return;
                     }
                     read_payload(c);
                   });
}

void ControlServer::read_payload(const ConnectionPtr& c) {
  c->payload.resize(c->header.length);
  if (c->header.length == 0) {
    handle_frame(c);
    return;
  }
  asio::async_read(c->socket, asio::buffer(c->payload),
                   [this, c](const boost::system::error_code& ec, std::size_t) {
                     if (ec) {
                       close_connection(c, "read error");
                       return;
                     }
                     handle_frame(c);
                   });
}

void ControlServer::handle_frame(const ConnectionPtr& c) {
  const int fd = c->socket.native_handle();
  const auto type = static_cast<MessageType>(c->header.type);
  switch (type) {
    case MessageType::kHello: handle_hello(c); return;
    case MessageType::kKernels: {
      const std::string text = kernels_.listing();
      if (!send_frame(fd, MessageType::kKernelsOk, std::as_bytes(std::span(text)), -1,
                      kReplyTimeoutMs))
        return close_connection(c, "reply not read");
      break;
    }
    case MessageType::kStats: {
      const std::string text = stats_json();
      if (!send_frame(fd, MessageType::kStatsOk, std::as_bytes(std::span(text)), -1,
                      kReplyTimeoutMs))
        return close_connection(c, "reply not read");
      break;
    }
    case MessageType::kBye:
      (void)send_frame(fd, MessageType::kByeOk, {}, -1, kReplyTimeoutMs);
      close_connection(c, "BYE");
      return;
    default:
      reply_error(c, ErrorCode::kProtocol, "unknown message type " + std::to_string(c->header.type),
                  true);
      return;
  }
  read_header(c);
}

void ControlServer::handle_hello(const ConnectionPtr& c) {
  if (c->payload.size() != sizeof(HelloRequest))
    return reply_error(c, ErrorCode::kProtocol,
                       "HELLO payload of " + std::to_string(c->payload.size()) +
                           " bytes, expected " + std::to_string(sizeof(HelloRequest)),
                       true);
  HelloRequest req;
  std::memcpy(&req, c->payload.data(), sizeof(req));
  if (req.version != kProtocolVersion)
    return reply_error(c, ErrorCode::kProtocol,
                       "protocol version " + std::to_string(req.version) +
                           " not supported (beatd speaks " + std::to_string(kProtocolVersion) + ")",
                       true);
  if (c->session)
    return reply_error(c, ErrorCode::kProtocol, "HELLO sent twice on one connection", true);
  if (draining_) return reply_error(c, ErrorCode::kShuttingDown, "beatd is shutting down", true);

  const SegmentRequest defaults;
  const std::uint32_t sq =
      clamp_entries(req.sq_entries, defaults.sq_entries, config_.sq_entries_max);
  const std::uint32_t cq =
      clamp_entries(req.cq_entries, defaults.cq_entries, config_.cq_entries_max);
  std::uint64_t arena = req.arena_bytes == 0 ? defaults.arena_bytes : req.arena_bytes;
  if (arena > config_.arena_bytes_max) arena = config_.arena_bytes_max;
  const auto layout = compute_layout(sq, cq, arena);
  if (!layout)
    return reply_error(c, ErrorCode::kInvalidArgument, "cannot lay out a segment for this HELLO",
                       true);

  const std::uint32_t id = next_client_id_++;
  const std::string name = printable(read_fixed(req.client_name));
  const std::string segment =
      config_.segment_prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(id);
  auto session = ClientSession::create(segment, *layout, daemon_instance_, id, c->peer, name);
  if (!session) {
    spdlog::error("client {} ({}, pid {}): {}", id, name, c->peer.pid, session.status().message());
    return reply_error(c, ErrorCode::kResourceExhausted, session.status().message(), true);
  }
  if (!pool_.add_client(session->get()))
    return reply_error(c, ErrorCode::kResourceExhausted,
                       "beatd already serves daemon.max_clients=" +
                           std::to_string(config_.max_clients) + " clients",
                       true);
  c->session = std::move(session).value();
  client_metrics_.attach(*c->session);
  ++sessions_total_;

  HelloReply r{};
  r.version = kProtocolVersion;
  r.client_id = id;
  r.daemon_instance = daemon_instance_;
  r.sq_entries = layout->sq_entries;
  r.cq_entries = layout->cq_entries;
  r.sq_offset = layout->sq_offset;
  r.cq_offset = layout->cq_offset;
  r.arena_offset = layout->arena_offset;
  r.arena_bytes = layout->arena_bytes;
  r.total_bytes = layout->total_bytes;
  r.worker_count = pool_.worker_count();
  copy_fixed(r.segment_name, segment);
  if (Status s = send_frame(c->socket.native_handle(), MessageType::kHelloOk, as_bytes_of(r),
                            c->session->segment_fd(), kReplyTimeoutMs);
      !s)
    return close_connection(c, "HELLO reply not sent");
  spdlog::info("client {} '{}' connected: pid {} uid {}, segment {} ({} SQ, {} CQ, {} arena bytes)",
               id, name, c->peer.pid, c->peer.uid, segment, layout->sq_entries, layout->cq_entries,
               layout->arena_bytes);
  read_header(c);
}

void ControlServer::reply_error(const ConnectionPtr& c, ErrorCode code, const std::string& message,
                                bool close) {
  spdlog::warn("client connection (pid {}): {}", c->peer.pid, message);
  (void)send_frame(c->socket.native_handle(), MessageType::kError,
                   make_error_payload(code, message), -1, kReplyTimeoutMs);
  if (close) close_connection(c, "protocol error");
}

void ControlServer::close_connection(const ConnectionPtr& c, const char* why) {
  if (c->closed) return;
  c->closed = true;
  boost::system::error_code ignored;
  c->socket.close(ignored);
  if (c->session) {
    spdlog::info("client {} '{}' disconnected ({}): {} tasks completed", c->session->client_id(),
                 c->session->client_name(), why,
                 c->session->tasks_completed_.load(std::memory_order_relaxed));
    retire(std::move(c->session));
  }
  connections_.remove(c);
  if (draining_) check_drain();
}

void ControlServer::retire(std::unique_ptr<ClientSession> session) {
  const std::uint64_t epoch = pool_.retire_client(session.get());
  retired_.push_back({std::move(session), epoch});
  schedule_housekeeping();
}

void ControlServer::destroy(std::unique_ptr<ClientSession> session) {
  if (!session) return;
  client_metrics_.detach(*session);  // its counters are final: no worker uses it
  session.reset();                   // unmaps the segment
}

void ControlServer::reap_retired() {
  for (auto it = retired_.begin(); it != retired_.end();) {
    if (pool_.grace_passed(it->epoch)) {
      destroy(std::move(it->session));
      it = retired_.erase(it);
    } else {
      ++it;
    }
  }
}

void ControlServer::schedule_housekeeping() {
  const auto period = (retired_.empty() && !draining_) ? kIdleHousekeeping : kBusyHousekeeping;
  const auto when = std::chrono::steady_clock::now() + period;
  // Re-arm only if this brings the next tick forward (or none is pending).
  if (housekeeping_timer_.expiry() > std::chrono::steady_clock::now() &&
      housekeeping_timer_.expiry() <= when)
    return;
  housekeeping_timer_.expires_at(when);
  housekeeping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) housekeeping();
  });
}

void ControlServer::housekeeping() {
  if (finished_) return;
  reap_retired();
  // Clients whose rings a worker found corrupt are disconnected. Collected
  // first: closing one may finish a drain, which clears connections_.
  std::vector<ConnectionPtr> broken;
  for (const auto& c : connections_)
    if (c->session && c->session->broken_.load(std::memory_order_relaxed)) broken.push_back(c);
  for (const auto& c : broken) {
    if (finished_) return;
    spdlog::warn("client {} '{}' corrupted its rings; disconnecting", c->session->client_id(),
                 c->session->client_name());
    close_connection(c, "corrupt rings");
  }
  if (finished_) return;
  if (draining_) check_drain();
  if (!finished_) schedule_housekeeping();
}

void ControlServer::begin_shutdown(const char* why) {
  if (draining_) {
    spdlog::info("{} again while draining; still waiting for accepted tasks", why);
    return;
  }
  draining_ = true;
  drain_deadline_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.shutdown_timeout_ms);
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
  spdlog::info("{}: draining ({} clients connected)", why, connections_.size());
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& c : connections_) {
    if (!c->session) continue;
    SegmentHeader& h = *c->session->view().header;
    // SYNC POINT (Dekker with the client's submit): state store, then read
    // reserve, both seq_cst. A client reserving after our read sees
    // kDraining and cancels; everything below the reserve we read counts as
    // accepted and is run.
    h.daemon_state.store(static_cast<std::uint32_t>(DaemonState::kDraining),
                         std::memory_order_seq_cst);
    const std::uint32_t reserved = h.sq.reserve.value.load(std::memory_order_seq_cst);
    c->session->drain_until_.store(reserved, std::memory_order_relaxed);
    c->session->draining_.store(true, std::memory_order_release);
    // Wake client threads parked on a full SQ or an empty CQ so they notice.
    for (Doorbell* bell : {&h.sq_space, &h.cq_bell}) {
      bell->seq.fetch_add(1, std::memory_order_release);
      futex_wake(&bell->seq, INT_MAX);
    }
  }
  pool_.wake_all();
  check_drain();  // may finish the shutdown at once (nothing in flight)
  if (!finished_) schedule_housekeeping();
}

void ControlServer::check_drain() {
  if (finished_) return;
  bool done = true;
  for (auto& c : connections_) {
    if (!c->session) continue;
    const ClientSession& s = *c->session;
    // Acquire on the head mirror first: it carries the cq_taken_mirror_
    // value stored before it (ClientSession), which inflight() then compares
    // with the committed completions (acquire on cq_commit_).
    const std::uint32_t consumed = s.sq_head_mirror_.load(std::memory_order_acquire);
    const std::uint32_t until = s.drain_until_.load(std::memory_order_relaxed);
    const bool consumed_all = static_cast<std::int32_t>(consumed - until) >= 0;
    if (!consumed_all || s.inflight() != 0) {
      done = false;
      break;
    }
  }
  if (!done && std::chrono::steady_clock::now() < drain_deadline_) return;
  if (!done)
    spdlog::warn("daemon.shutdown_timeout_ms={} passed; dropping unfinished tasks",
                 config_.shutdown_timeout_ms);
  finish_shutdown();
}

void ControlServer::finish_shutdown() {
  finished_ = true;
  pool_.stop();  // joins: no worker touches any segment after this
  std::size_t segments = retired_.size();
  for (auto& r : retired_) destroy(std::move(r.session));
  retired_.clear();
  for (auto& c : connections_) {
    if (c->session) {
      ++segments;
      destroy(std::move(c->session));
    }
    boost::system::error_code ignored;
    c->socket.close(ignored);
  }
  connections_.clear();
  if (listening_) {
    ::unlink(config_.socket.c_str());
    listening_ = false;
  }
  housekeeping_timer_.cancel();
  accept_retry_timer_.cancel();
  watchdog_timer_.cancel();
  signals_.cancel();
  spdlog::info("stopped: {} segment(s) unlinked, socket {} removed", segments, config_.socket);
  io_.stop();
}

namespace {
// Successful steals per spawned task (forks, parallel_for iterations and
// client tasks all count as spawns, except the forks inside inline subtrees
// that ran as plain calls, which no thief could take): how much of the work
// moved.
const char* worker_state_name(sched::WorkerState s) {
  switch (s) {
    case sched::WorkerState::kBusy: return "busy";
    case sched::WorkerState::kIdle: return "idle";
    case sched::WorkerState::kParked: return "parked";
  }
  return "unknown";
}

double steal_rate(std::uint64_t steals, std::uint64_t spawns) {
  return spawns == 0 ? 0.0 : static_cast<double>(steals) / static_cast<double>(spawns);
}
}  // namespace

std::string ControlServer::batching_json() const {
  std::uint64_t batches = 0, grouped = 0, alone = 0, corrected = 0;
  std::array<std::uint64_t, kBatchSizeBuckets.size()> sizes{};
  std::array<std::uint64_t, kTimeBuckets> formation{};
  for (std::uint32_t i = 0; i < pool_.worker_count(); ++i) {
    const WorkerCounters& k = pool_.counters(i);
    batches += k.batches.load(std::memory_order_relaxed);
    grouped += k.tasks_grouped.load(std::memory_order_relaxed);
    alone += k.tasks_alone.load(std::memory_order_relaxed);
    corrected += k.fingerprints_corrected.load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < sizes.size(); ++b)
      sizes[b] += k.batch_sizes[b].load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < formation.size(); ++b)
      formation[b] += k.formation[b].load(std::memory_order_relaxed);
  }
  std::ostringstream os;
  os << "{\"grouping\":\"" << batching::to_string(config_.grouping)
     << "\",\"simd\":" << json_quote(batching::simd_target_name()) << ",\"batches\":" << batches
     << ",\"tasks_grouped\":" << grouped << ",\"tasks_alone\":" << alone
     << ",\"fingerprints_corrected\":" << corrected << ",\"batch_size\":{";
  // Bucket names: the range of sizes each counts ("1", "2-5", ...).
  for (std::size_t b = 0; b < sizes.size(); ++b) {
    const std::uint32_t lo = b == 0 ? 1 : kBatchSizeBuckets[b - 1] + 1;
    os << (b ? "," : "") << "\"" << lo;
    if (kBatchSizeBuckets[b] != lo) os << "-" << kBatchSizeBuckets[b];
    os << "\":" << sizes[b];
  }
  // Formation time of sampled chunks, by upper bound in ns ("le_250", ...).
  os << "},\"formation_ns\":{";
  for (std::size_t b = 0; b < formation.size(); ++b) {
    os << (b ? "," : "") << "\"";
    if (b + 1 == formation.size())
      os << "gt_" << time_bucket_bound_ns(b - 1);
    else
      os << "le_" << time_bucket_bound_ns(b);
    os << "\":" << formation[b];
  }
  os << "}}";
  return os.str();
}

std::string ControlServer::stats_json() const {
  std::ostringstream os;
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
  std::uint64_t total_run = 0, total_failed = 0;
  os << "{\"version\":\"" << BEAT_VERSION << "\",\"protocol\":" << kProtocolVersion
     << ",\"pid\":" << ::getpid() << ",\"uptime_seconds\":" << uptime << ",\"state\":\""
     << (draining_ ? "draining" : "running") << "\""
     << ",\"socket\":" << json_quote(config_.socket)
     << ",\"metrics_endpoint\":" << json_quote(metrics_endpoint_)
     << ",\"parked_workers\":" << pool_.parked_workers() << ",\"workers\":[";
  std::uint64_t total_spawns = 0, total_inline = 0, total_steals = 0, total_attempts = 0;
  const sched::Scheduler& sched = pool_.scheduler();
  for (std::uint32_t i = 0; i < pool_.worker_count(); ++i) {
    const sched::WorkerPlacement& w = pool_.workers()[i];
    const WorkerCounters& k = pool_.counters(i);
    const sched::WorkerStats& ws = sched.worker_stats(i);
    const auto run = k.tasks_run.load(std::memory_order_relaxed);
    const auto failed = k.tasks_failed.load(std::memory_order_relaxed);
    const auto spawns = ws.spawns.load(std::memory_order_relaxed);
    const auto inline_runs = ws.inline_runs.load(std::memory_order_relaxed);
    const auto steals = ws.steals.load(std::memory_order_relaxed);
    const auto attempts = ws.steal_attempts.load(std::memory_order_relaxed);
    total_run += run;
    total_failed += failed;
    total_spawns += spawns;
    total_inline += inline_runs;
    total_steals += steals;
    total_attempts += attempts;
    std::uint64_t busy_ns = 0, idle_ns = 0, parked_ns = 0;
    sched.worker_times(i, busy_ns, idle_ns, parked_ns);
    const double busy = static_cast<double>(busy_ns) * 1e-9;
    os << (i ? "," : "") << "{\"index\":" << w.index << ",\"core\":" << w.core
       << ",\"os_pu\":" << w.os_pu << ",\"pinned\":" << (w.pinned ? "true" : "false")
       << ",\"tasks\":" << run << ",\"failed\":" << failed
       << ",\"intake_chunks\":" << k.intake_chunks.load(std::memory_order_relaxed)
       << ",\"spawns\":" << spawns << ",\"inline_subtrees\":" << inline_runs
       << ",\"promotions\":" << ws.promotions.load(std::memory_order_relaxed)
       << ",\"steal_attempts\":" << attempts << ",\"steals\":" << steals
       << ",\"steal_rate\":" << steal_rate(steals, spawns)
       << ",\"jobs_stolen_run\":" << ws.jobs_run.load(std::memory_order_relaxed)
       << ",\"parks\":" << ws.parks.load(std::memory_order_relaxed) << ",\"busy_seconds\":" << busy
       << ",\"idle_seconds\":" << static_cast<double>(idle_ns) * 1e-9
       << ",\"parked_seconds\":" << static_cast<double>(parked_ns) * 1e-9
       << ",\"busy_ratio\":" << (uptime > 0 ? busy / uptime : 0.0)
       << ",\"queue_size\":" << sched.loads().queue_size(i) << ",\"state\":\""
       << worker_state_name(sched.loads().state(i)) << "\"}";
  }
  os << "],\"clients\":[";
  std::size_t with_session = 0;
  for (const auto& c : connections_) {
    if (!c->session) continue;
    const ClientSession& s = *c->session;
    os << (with_session++ == 0 ? "" : ",") << "{\"id\":" << s.client_id()
       << ",\"name\":" << json_quote(s.client_name()) << ",\"pid\":" << s.peer().pid
       << ",\"uid\":" << s.peer().uid << ",\"segment\":" << json_quote(s.segment_name())
       << ",\"sq_entries\":" << s.view().layout.sq_entries
       << ",\"cq_entries\":" << s.view().layout.cq_entries
       << ",\"arena_bytes\":" << s.view().layout.arena_bytes << ",\"sq_depth\":" << s.sq_depth()
       << ",\"cq_depth\":" << s.cq_depth() << ",\"inflight\":" << s.inflight()
       << ",\"tasks_completed\":" << s.tasks_completed_.load(std::memory_order_relaxed)
       << ",\"tasks_failed\":" << s.tasks_failed_.load(std::memory_order_relaxed) << "}";
  }
  os << "],\"clients_connected\":" << with_session << ",\"sessions_total\":" << sessions_total_
     << ",\"tasks_completed\":" << total_run << ",\"tasks_failed\":" << total_failed
     << ",\"spawns\":" << total_spawns << ",\"inline_subtrees\":" << total_inline
     << ",\"steal_attempts\":" << total_attempts << ",\"steals\":" << total_steals
     << ",\"steal_rate\":" << steal_rate(total_steals, total_spawns) << ",\"steal_policy\":\""
     << sched.policy().name() << "\""
     << ",\"kernels\":" << kernels_.size() << ",\"batching\":" << batching_json() << "}";
  return os.str();
}

}  // namespace beat
