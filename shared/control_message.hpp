// Control-socket protocol (Unix stream socket, default /run/beat/beatd.sock).
//
// Every message is one frame: FrameHeader then `length` payload bytes.
// Requests and replies strictly alternate on a connection; the daemon never
// sends unsolicited frames. A closed connection ends the client's session:
// its segment is unlinked and its remaining tasks are dropped.
//
//   HELLO      HelloRequest            -> HELLO_OK HelloReply + segment fd (SCM_RIGHTS)
//                                         | ERROR
//   KERNELS    (empty)                 -> KERNELS_OK text, one kernel a line:
//                                         "<id>\t<name>\t<description>\n"
//   STATS      (empty)                 -> STATS_OK one JSON object (text)
//   BYE        (empty)                 -> BYE_OK, then the daemon closes
//   anything malformed                 -> ERROR ErrorReply, then the daemon closes
//
// HELLO must come first on a connection that wants a segment; KERNELS and
// STATS work without one (beatctl uses them that way).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shared/protocol.hpp"
#include "shared/status.hpp"

namespace beat {

enum class MessageType : std::uint32_t {
  kHello = 1,
  kHelloOk = 2,
  kError = 3,
  kKernels = 4,
  kKernelsOk = 5,
  kStats = 6,
  kStatsOk = 7,
  kBye = 8,
  kByeOk = 9,
};

inline constexpr std::uint32_t kFrameMagic = 0x54414542;  // "BEAT"
inline constexpr std::uint32_t kMaxFramePayload = 1u << 20;

struct FrameHeader {
  std::uint32_t magic;   // kFrameMagic
  std::uint32_t type;    // MessageType
  std::uint32_t length;  // payload bytes, <= kMaxFramePayload
  std::uint32_t reserved;
};
static_assert(sizeof(FrameHeader) == 16);

inline constexpr std::size_t kClientNameBytes = 32;
inline constexpr std::size_t kSegmentNameBytes = 64;
inline constexpr std::size_t kErrorMessageBytes = 256;

struct HelloRequest {
  std::uint32_t version;     // kProtocolVersion
  std::uint32_t sq_entries;  // power of two; the daemon may clamp
  std::uint32_t cq_entries;  // power of two; the daemon may clamp
  std::uint32_t reserved;
  std::uint64_t arena_bytes;           // the daemon may clamp
  char client_name[kClientNameBytes];  // NUL-padded, printable; for logs and STATS
};
static_assert(sizeof(HelloRequest) == 56);

struct HelloReply {
  std::uint32_t version;
  std::uint32_t client_id;
  std::uint64_t daemon_instance;
  std::uint32_t sq_entries;
  std::uint32_t cq_entries;
  std::uint64_t sq_offset;
  std::uint64_t cq_offset;
  std::uint64_t arena_offset;
  std::uint64_t arena_bytes;
  std::uint64_t total_bytes;
  std::uint32_t worker_count;
  std::uint32_t reserved;
  char segment_name[kSegmentNameBytes];  // for diagnostics; map the passed fd
};
static_assert(sizeof(HelloReply) == 136);

struct ErrorReply {
  std::uint32_t code;  // ErrorCode
  std::uint32_t reserved;
  char message[kErrorMessageBytes];  // NUL-terminated
};

// Blocking frame I/O for the client and beatctl (the daemon frames with Asio).
// `pass_fd` >= 0 is sent with SCM_RIGHTS alongside the frame.
// `timeout_ms` bounds how long a full socket buffer may block the call
// (< 0: forever); the daemon passes kReplyTimeoutMs so a peer that stops
// reading cannot stall its control thread. kTimedOut when it passes.
Status send_frame(int socket_fd, MessageType type, std::span<const std::byte> payload,
                  int pass_fd = -1, int timeout_ms = -1);

// How long the daemon waits for a peer to make room for a reply.
inline constexpr int kReplyTimeoutMs = 1000;

struct ReceivedFrame {
  MessageType type{};
  std::vector<std::byte> payload;
  int fd = -1;  // a descriptor passed with SCM_RIGHTS, owned by the caller
};
// Reads exactly one frame; rejects bad magic and oversized payloads.
Result<ReceivedFrame> recv_frame(int socket_fd);

// Builds the payload of an ERROR frame.
std::vector<std::byte> make_error_payload(ErrorCode code, std::string_view message);
// Parses an ERROR payload into a Status (code and message).
Status parse_error_payload(std::span<const std::byte> payload);

template <typename T>
std::span<const std::byte> as_bytes_of(const T& v) noexcept {
  return {reinterpret_cast<const std::byte*>(&v), sizeof(T)};
}

// Copies `s` into a fixed NUL-padded field, truncating; always terminated.
template <std::size_t N>
void copy_fixed(char (&dst)[N], std::string_view s) noexcept {
  const std::size_t n = s.size() < N - 1 ? s.size() : N - 1;
  for (std::size_t i = 0; i < N; ++i) dst[i] = i < n ? s[i] : '\0';
}
// Reads a fixed field written by an untrusted peer: stops at NUL or N.
template <std::size_t N>
std::string read_fixed(const char (&src)[N]) {
  std::size_t n = 0;
  while (n < N && src[n] != '\0') ++n;
  return std::string(src, n);
}

}  // namespace beat
