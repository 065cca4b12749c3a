// ControlConnection: the client end of beatd's control socket.
//
// One Unix stream connection; requests and replies strictly alternate (see
// shared/control_message.hpp). beat::Client owns one for its session (HELLO
// first, BYE last); beatctl opens one without HELLO for KERNELS and STATS.
//
// Thread-safety: none; callers serialize requests (beat::Client holds a
// mutex). peer_closed() may be called concurrently with a request: it only
// polls the descriptor and consumes nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shared/control_message.hpp"
#include "shared/status.hpp"

namespace beat {

// $BEAT_SOCKET when set and non-empty, else "/run/beat/beatd.sock".
std::string default_socket_path();

// One line of the KERNELS reply.
struct KernelListing {
  std::uint32_t id = 0;
  std::string name;
  std::string origin;  // "built-in" or the plugin's path
  std::string description;
};

// Parses a KERNELS_OK payload ("<id>\t<name>\t<origin>\t<description>\n"
// per kernel).
// Errors name the offending line.
Result<std::vector<KernelListing>> parse_kernel_listing(std::string_view text);

class ControlConnection {
 public:
  // How long a request waits for its reply before failing with kTimedOut.
  static constexpr std::chrono::seconds kDefaultReplyTimeout{10};

  // Connects to the daemon's socket. Errors (kInvalidArgument for a path too
  // long for sockaddr_un, kNotFound when nothing listens there, kIo
  // otherwise) name the path.
  static Result<ControlConnection> open(const std::string& socket_path);

  ControlConnection(ControlConnection&& other) noexcept;
  ControlConnection& operator=(ControlConnection&& other) noexcept;
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;
  ~ControlConnection();

  // Sends one request and reads its reply. An ERROR reply becomes its
  // Status; any reply type other than `expected` is kProtocol. A descriptor
  // passed with an unexpected reply is closed; with the expected one it is
  // returned in ReceivedFrame::fd and owned by the caller.
  Result<ReceivedFrame> request(MessageType type, std::span<const std::byte> payload,
                                MessageType expected);

  // KERNELS; works with or without a HELLO on this connection.
  Result<std::vector<KernelListing>> kernels();
  // STATS; the daemon's JSON object, unparsed.
  Result<std::string> stats_json();

  // Sends BYE and waits up to `timeout` for BYE_OK. Best effort: the session
  // ends when the connection closes anyway.
  void say_goodbye(std::chrono::milliseconds timeout) noexcept;

  // True once the daemon closed its end (EOF or error on the socket).
  // Never blocks and consumes nothing.
  bool peer_closed() const noexcept;

  // Bounds how long a later recv waits (SO_RCVTIMEO).
  void set_reply_timeout(std::chrono::milliseconds timeout) noexcept;

  const std::string& socket_path() const noexcept { return socket_path_; }
  int fd() const noexcept { return fd_; }

 private:
  ControlConnection(int fd, std::string socket_path) noexcept
      : fd_(fd), socket_path_(std::move(socket_path)) {}

  int fd_ = -1;
  std::string socket_path_;
};

}  // namespace beat
