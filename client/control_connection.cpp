#include "client/control_connection.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace beat {

namespace {

constexpr const char* kDefaultSocketPath = "/run/beat/beatd.sock";

std::string_view type_name(MessageType t) {
  switch (t) {
    case MessageType::kHello: return "HELLO";
    case MessageType::kHelloOk: return "HELLO_OK";
    case MessageType::kError: return "ERROR";
    case MessageType::kKernels: return "KERNELS";
    case MessageType::kKernelsOk: return "KERNELS_OK";
    case MessageType::kStats: return "STATS";
    case MessageType::kStatsOk: return "STATS_OK";
    case MessageType::kBye: return "BYE";
    case MessageType::kByeOk: return "BYE_OK";
  }
  return "unknown";
}

std::string describe(MessageType t) {
  return std::string(type_name(t)) + " (" + std::to_string(static_cast<std::uint32_t>(t)) + ")";
}

}  // namespace

std::string default_socket_path() {
  const char* env = std::getenv("BEAT_SOCKET");
  if (env != nullptr && env[0] != '\0') return env;
  return kDefaultSocketPath;
}

Result<std::vector<KernelListing>> parse_kernel_listing(std::string_view text) {
  std::vector<KernelListing> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    const auto malformed = [&] {
      return Status(ErrorCode::kProtocol, "malformed KERNELS line " + std::to_string(line_no) +
                                              ": '" + std::string(line) + "'");
    };
    // "<id>\t<name>\t<origin>\t<description>": id, name and origin non-empty.
    std::string_view fields[4];
    std::string_view rest = line;
    for (int i = 0; i < 3; ++i) {
      const std::size_t tab = rest.find('\t');
      if (tab == std::string_view::npos || tab == 0) return malformed();
      fields[i] = rest.substr(0, tab);
      rest = rest.substr(tab + 1);
    }
    if (rest.find('\t') != std::string_view::npos) return malformed();
    fields[3] = rest;
    KernelListing k;
    const auto [end, ec] =
        std::from_chars(fields[0].data(), fields[0].data() + fields[0].size(), k.id);
    if (ec != std::errc{} || end != fields[0].data() + fields[0].size()) return malformed();
    k.name = std::string(fields[1]);
    k.origin = std::string(fields[2]);
    k.description = std::string(fields[3]);
    out.push_back(std::move(k));
  }
  return out;
}

Result<ControlConnection> ControlConnection::open(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path))
    return Status(ErrorCode::kInvalidArgument, "socket path '" + socket_path + "' must be 1 to " +
                                                   std::to_string(sizeof(addr.sun_path) - 1) +
                                                   " bytes long");
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return Status(ErrorCode::kIo, std::string("socket(AF_UNIX) failed: ") + std::strerror(errno));
  int r;
  do {
    r = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    const int err = errno;
    ::close(fd);
    const bool absent = err == ENOENT || err == ECONNREFUSED;
    return Status(absent ? ErrorCode::kNotFound
                         : (err == EACCES ? ErrorCode::kPermissionDenied : ErrorCode::kIo),
                  "cannot connect to beatd at " + socket_path + ": " + std::strerror(err) +
                      (absent ? " (is beatd running? set --socket or BEAT_SOCKET)" : ""));
  }
  ControlConnection c(fd, socket_path);
  c.set_reply_timeout(std::chrono::duration_cast<std::chrono::milliseconds>(kDefaultReplyTimeout));
  return c;
}

ControlConnection::ControlConnection(ControlConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), socket_path_(std::move(other.socket_path_)) {}

ControlConnection& ControlConnection::operator=(ControlConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    socket_path_ = std::move(other.socket_path_);
  }
  return *this;
}

ControlConnection::~ControlConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void ControlConnection::set_reply_timeout(std::chrono::milliseconds timeout) noexcept {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

Result<ReceivedFrame> ControlConnection::request(MessageType type,
                                                 std::span<const std::byte> payload,
                                                 MessageType expected) {
  if (Status s = send_frame(fd_, type, payload); !s)
    return Status(
        s.code() == ErrorCode::kIo ? ErrorCode::kShuttingDown : s.code(),
        "sending " + describe(type) + " to beatd at " + socket_path_ + ": " + s.message());
  Result<ReceivedFrame> reply = recv_frame(fd_);
  if (!reply) {
    const Status& s = reply.status();
    const bool timed_out = s.code() == ErrorCode::kIo && (errno == EAGAIN || errno == EWOULDBLOCK);
    return Status(timed_out ? ErrorCode::kTimedOut : s.code(),
                  "waiting for the reply to " + describe(type) + " from beatd at " + socket_path_ +
                      ": " + s.message());
  }
  ReceivedFrame& f = reply.value();
  if (f.type == expected) return reply;
  if (f.fd >= 0) {
    ::close(f.fd);
    f.fd = -1;
  }
  if (f.type == MessageType::kError) {
    const Status e = parse_error_payload(f.payload);
    return Status(e.code(),
                  "beatd at " + socket_path_ + " refused " + describe(type) + ": " + e.message());
  }
  return Status(ErrorCode::kProtocol, "beatd at " + socket_path_ + " answered " + describe(type) +
                                          " with " + describe(f.type) + ", expected " +
                                          describe(expected));
}

Result<std::vector<KernelListing>> ControlConnection::kernels() {
  auto reply = request(MessageType::kKernels, {}, MessageType::kKernelsOk);
  if (!reply) return reply.status();
  const auto& p = reply->payload;
  return parse_kernel_listing(std::string_view(reinterpret_cast<const char*>(p.data()), p.size()));
}

Result<std::string> ControlConnection::stats_json() {
  auto reply = request(MessageType::kStats, {}, MessageType::kStatsOk);
  if (!reply) return reply.status();
  const auto& p = reply->payload;
  return std::string(reinterpret_cast<const char*>(p.data()), p.size());
}

void ControlConnection::say_goodbye(std::chrono::milliseconds timeout) noexcept {
  if (fd_ < 0 || peer_closed()) return;
  set_reply_timeout(timeout);
  try {
    // The reply (BYE_OK, or EOF from a daemon already gone) is not needed:
    // waiting for it only lets the daemon finish the session in order.
    (void)request(MessageType::kBye, {}, MessageType::kByeOk);
  } catch (...) {
    // Allocation failure while building an error message: nothing to do.
  }
}

bool ControlConnection::peer_closed() const noexcept {
  if (fd_ < 0) return true;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return false;
  return (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace beat
