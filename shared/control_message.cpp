#include "shared/control_message.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace beat {

namespace {

Status io_error(const char* what) {
  return Status(ErrorCode::kIo, std::string(what) + ": " + std::strerror(errno));
}

// Reads exactly n bytes; collects a passed descriptor if one arrives.
Status read_exact(int fd, std::byte* dst, std::size_t n, int* passed_fd) {
  std::size_t got = 0;
  while (got < n) {
    iovec iov{dst + got, n - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0) {
      if (errno == EINTR) continue;
      return io_error("recvmsg on control socket");
    }
    if (r == 0) return Status(ErrorCode::kShuttingDown, "control socket closed by peer");
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int received = -1;
        std::memcpy(&received, CMSG_DATA(c), sizeof(int));
        if (passed_fd != nullptr && *passed_fd < 0) {
          *passed_fd = received;
        } else {
          ::close(received);  // unexpected extra descriptor
        }
      }
    }
    got += static_cast<std::size_t>(r);
  }
  return Status::ok();
}

}  // namespace

Status send_frame(int socket_fd, MessageType type, std::span<const std::byte> payload, int pass_fd,
                  int timeout_ms) {
  if (payload.size() > kMaxFramePayload)
    return Status(ErrorCode::kInvalidArgument,
                  "frame payload of " + std::to_string(payload.size()) + " bytes exceeds " +
                      std::to_string(kMaxFramePayload));
  FrameHeader h{kFrameMagic, static_cast<std::uint32_t>(type),
                static_cast<std::uint32_t>(payload.size()), 0};
  iovec iov[2] = {{&h, sizeof(h)}, {const_cast<std::byte*>(payload.data()), payload.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  if (pass_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  std::size_t total = sizeof(h) + payload.size();
  std::size_t sent = 0;
  while (sent < total) {
    const ssize_t r = sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // Non-blocking socket with a full buffer: wait for room, bounded.
        pollfd p{socket_fd, POLLOUT, 0};
        const int r = ::poll(&p, 1, timeout_ms);
        if (r == 0)
          return Status(ErrorCode::kTimedOut, "peer did not read its control socket for " +
                                                  std::to_string(timeout_ms) + " ms");
        if (r < 0 && errno != EINTR) return io_error("poll on control socket");
        continue;
      }
      return io_error("sendmsg on control socket");
    }
    sent += static_cast<std::size_t>(r);
    // The descriptor travels with the first byte only.
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
    // Advance the iovecs past what was sent.
    std::size_t skip = static_cast<std::size_t>(r);
    while (msg.msg_iovlen > 0 && skip >= msg.msg_iov[0].iov_len) {
      skip -= msg.msg_iov[0].iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + skip;
      msg.msg_iov[0].iov_len -= skip;
    }
  }
  return Status::ok();
}

Result<ReceivedFrame> recv_frame(int socket_fd) {
  ReceivedFrame f;
  FrameHeader h{};
  if (Status s = read_exact(socket_fd, reinterpret_cast<std::byte*>(&h), sizeof(h), &f.fd); !s)
    return s;
  if (h.magic != kFrameMagic) {
    if (f.fd >= 0) ::close(f.fd);
    return Status(ErrorCode::kProtocol, "bad frame magic " + std::to_string(h.magic));
  }
  if (h.length > kMaxFramePayload) {
    if (f.fd >= 0) ::close(f.fd);
    return Status(ErrorCode::kProtocol, "frame length " + std::to_string(h.length) + " exceeds " +
                                            std::to_string(kMaxFramePayload));
  }
  f.type = static_cast<MessageType>(h.type);
  f.payload.resize(h.length);
  if (h.length > 0) {
    if (Status s = read_exact(socket_fd, f.payload.data(), h.length, &f.fd); !s) {
      if (f.fd >= 0) ::close(f.fd);
      return s;
    }
  }
  return f;
}

std::vector<std::byte> make_error_payload(ErrorCode code, std::string_view message) {
  ErrorReply e{};
  e.code = static_cast<std::uint32_t>(code);
  copy_fixed(e.message, message);
  const auto bytes = as_bytes_of(e);
  return {bytes.begin(), bytes.end()};
}

Status parse_error_payload(std::span<const std::byte> payload) {
  if (payload.size() != sizeof(ErrorReply))
    return Status(ErrorCode::kProtocol, "ERROR frame of " + std::to_string(payload.size()) +
                                            " bytes, expected " +
                                            std::to_string(sizeof(ErrorReply)));
  ErrorReply e;
  std::memcpy(&e, payload.data(), sizeof(e));
  auto code = static_cast<ErrorCode>(e.code);
  if (code == ErrorCode::kOk) code = ErrorCode::kProtocol;
  return Status(code, read_fixed(e.message));
}

}  // namespace beat
