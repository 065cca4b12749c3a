// Unit tests of shared/control_message.hpp over a socketpair: framing,
// SCM_RIGHTS descriptor passing, rejection of bad frames with messages that
// name the bad value, ERROR payloads, and the fixed-size string fields.
#include "shared/control_message.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

// A connected AF_UNIX stream pair, closed on destruction.
class SocketPair : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0)
        << std::strerror(errno);
  }
  void TearDown() override {
    for (int& fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  void close_end(int i) {
    ::close(fds_[i]);
    fds_[i] = -1;
  }
  int a() const { return fds_[0]; }
  int b() const { return fds_[1]; }

  // Writes raw bytes (a hand-made, possibly malformed frame), optionally
  // with a descriptor attached the way send_frame attaches one.
  void write_raw(const void* bytes, std::size_t n, int pass_fd = -1) {
    iovec iov{const_cast<void*>(bytes), n};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ASSERT_EQ(::sendmsg(a(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(n)) << std::strerror(errno);
  }

  int fds_[2] = {-1, -1};
};

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

TEST(ControlMessage, WireStructSizesAreFixed) {
  EXPECT_EQ(sizeof(FrameHeader), 16u);
  EXPECT_EQ(sizeof(HelloRequest), 56u);
  EXPECT_EQ(sizeof(HelloReply), 136u);
  EXPECT_EQ(sizeof(ErrorReply), 264u);
  EXPECT_EQ(kFrameMagic, 0x54414542u);
}

TEST_F(SocketPair, HelloRequestRoundTrips) {
  HelloRequest req{};
  req.version = kProtocolVersion;
  req.sq_entries = 1024;
  req.cq_entries = 2048;
  req.arena_bytes = 1ull << 24;
  copy_fixed(req.client_name, "unit-test");
  ASSERT_TRUE(send_frame(a(), MessageType::kHello, as_bytes_of(req)));
  auto f = recv_frame(b());
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->type, MessageType::kHello);
  EXPECT_EQ(f->fd, -1);
  ASSERT_EQ(f->payload.size(), sizeof(HelloRequest));
  HelloRequest got;
  std::memcpy(&got, f->payload.data(), sizeof(got));
  EXPECT_EQ(got.version, kProtocolVersion);
  EXPECT_EQ(got.sq_entries, 1024u);
  EXPECT_EQ(got.cq_entries, 2048u);
  EXPECT_EQ(got.arena_bytes, 1ull << 24);
  EXPECT_EQ(read_fixed(got.client_name), "unit-test");
}

TEST_F(SocketPair, EmptyPayloadFramesRoundTripInOrder) {
  ASSERT_TRUE(send_frame(a(), MessageType::kKernels, {}));
  ASSERT_TRUE(send_frame(a(), MessageType::kStatsOk, bytes_of("{\"clients\":0}")));
  ASSERT_TRUE(send_frame(a(), MessageType::kBye, {}));
  auto k = recv_frame(b());
  auto s = recv_frame(b());
  auto y = recv_frame(b());
  ASSERT_TRUE(k && s && y);
  EXPECT_EQ(k->type, MessageType::kKernels);
  EXPECT_TRUE(k->payload.empty());
  EXPECT_EQ(s->type, MessageType::kStatsOk);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(s->payload.data()), s->payload.size()),
            "{\"clients\":0}");
  EXPECT_EQ(y->type, MessageType::kBye);
  EXPECT_TRUE(y->payload.empty());
}

TEST_F(SocketPair, PassesDescriptorWithScmRights) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_TRUE(send_frame(a(), MessageType::kHelloOk, bytes_of("reply"), pipe_fds[1]));
  ::close(pipe_fds[1]);  // the only write end left is the one in flight
  auto f = recv_frame(b());
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->type, MessageType::kHelloOk);
  ASSERT_GE(f->fd, 0);
  EXPECT_NE(::fcntl(f->fd, F_GETFD) & FD_CLOEXEC, 0)
      << "received descriptors must be close-on-exec";
  ASSERT_EQ(::write(f->fd, "through", 7), 7);
  ::close(f->fd);
  char buf[16] = {};
  ASSERT_EQ(::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(::read(pipe_fds[0], buf, sizeof(buf)), 7);
  EXPECT_STREQ(buf, "through");
  // 0 = EOF: no copy of the write end is left open (-1/EAGAIN if one leaked).
  EXPECT_EQ(::read(pipe_fds[0], buf, sizeof(buf)), 0) << "write end should be fully closed";
  ::close(pipe_fds[0]);
}

TEST_F(SocketPair, PassesDescriptorWithEmptyPayload) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_TRUE(send_frame(a(), MessageType::kHelloOk, {}, pipe_fds[0]));
  auto f = recv_frame(b());
  ASSERT_TRUE(f);
  ASSERT_GE(f->fd, 0);
  ASSERT_EQ(::write(pipe_fds[1], "x", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(f->fd, &c, 1), 1);
  EXPECT_EQ(c, 'x');
  ::close(f->fd);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST_F(SocketPair, RejectsBadMagicNamingIt) {
  const FrameHeader h{0xDEADBEEF, static_cast<std::uint32_t>(MessageType::kHello), 0, 0};
  write_raw(&h, sizeof(h));
  auto f = recv_frame(b());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.status().code(), ErrorCode::kProtocol);
  EXPECT_EQ(f.status().message(), "bad frame magic 3735928559");
}

TEST_F(SocketPair, RejectsOversizedLengthNamingIt) {
  const FrameHeader h{kFrameMagic, static_cast<std::uint32_t>(MessageType::kHello),
                      kMaxFramePayload + 1, 0};
  write_raw(&h, sizeof(h));
  auto f = recv_frame(b());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.status().code(), ErrorCode::kProtocol);
  EXPECT_EQ(f.status().message(), "frame length 1048577 exceeds 1048576");
}

TEST_F(SocketPair, RejectedFrameClosesTheDescriptorItCarried) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const FrameHeader h{0x12345678, 1, 0, 0};
  write_raw(&h, sizeof(h), pipe_fds[1]);
  ::close(pipe_fds[1]);
  auto f = recv_frame(b());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.status().message(), "bad frame magic 305419896");
  // EOF proves the receiver closed its copy of the write end; a leaked copy
  // would make the non-blocking read fail with EAGAIN instead.
  ASSERT_EQ(::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK), 0);
  char c;
  EXPECT_EQ(::read(pipe_fds[0], &c, 1), 0) << "passed descriptor leaked";
  ::close(pipe_fds[0]);
}

TEST_F(SocketPair, SendRefusesOversizedPayloadNamingIt) {
  std::vector<std::byte> big(kMaxFramePayload + 1);
  const Status s = send_frame(a(), MessageType::kStatsOk, big);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "frame payload of 1048577 bytes exceeds 1048576");
}

TEST_F(SocketPair, MaximumPayloadRoundTrips) {
  test::ScopedWatchdog watchdog("SocketPair.MaximumPayloadRoundTrips", 60);
  std::vector<std::byte> big(kMaxFramePayload);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 131 + 7);
  Status sent;
  // Larger than the socket buffer: the sender must run concurrently.
  std::thread sender([&] { sent = send_frame(a(), MessageType::kStatsOk, big); });
  auto f = recv_frame(b());
  sender.join();
  EXPECT_TRUE(sent) << sent.message();
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->payload, big);
}

TEST_F(SocketPair, HeaderArrivingInPiecesIsReassembled) {
  test::ScopedWatchdog watchdog("SocketPair.HeaderArrivingInPiecesIsReassembled", 30);
  const FrameHeader h{kFrameMagic, static_cast<std::uint32_t>(MessageType::kBye), 3, 0};
  std::vector<char> wire(sizeof(h) + 3);
  std::memcpy(wire.data(), &h, sizeof(h));
  std::memcpy(wire.data() + sizeof(h), "abc", 3);
  std::thread writer([&] {
    for (char c : wire) {
      ASSERT_EQ(::write(a(), &c, 1), 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  auto f = recv_frame(b());
  writer.join();
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->type, MessageType::kBye);
  EXPECT_EQ(f->payload, bytes_of("abc"));
}

TEST_F(SocketPair, PeerCloseIsShuttingDown) {
  close_end(0);
  auto f = recv_frame(b());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.status().code(), ErrorCode::kShuttingDown);
  EXPECT_EQ(f.status().message(), "control socket closed by peer");
}

TEST_F(SocketPair, TruncatedPayloadIsShuttingDown) {
  const FrameHeader h{kFrameMagic, static_cast<std::uint32_t>(MessageType::kStatsOk), 100, 0};
  write_raw(&h, sizeof(h));
  write_raw("0123456789", 10);
  close_end(0);
  auto f = recv_frame(b());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.status().code(), ErrorCode::kShuttingDown);
}

TEST_F(SocketPair, SendToClosedPeerIsIoErrorWithoutSigpipe) {
  close_end(1);
  const Status s = send_frame(a(), MessageType::kBye, {});
  EXPECT_EQ(s.code(), ErrorCode::kIo);
  EXPECT_EQ(s.message(), "sendmsg on control socket: Broken pipe");
}

TEST(ControlMessage, ErrorPayloadRoundTrips) {
  const auto payload = make_error_payload(ErrorCode::kNotFound, "kernel 'nope' is not registered");
  ASSERT_EQ(payload.size(), sizeof(ErrorReply));
  const Status s = parse_error_payload(payload);
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.message(), "kernel 'nope' is not registered");
}

TEST(ControlMessage, ErrorPayloadTruncatesLongMessagesTo255Bytes) {
  const std::string long_message(300, 'm');
  const Status s =
      parse_error_payload(make_error_payload(ErrorCode::kResourceExhausted, long_message));
  EXPECT_EQ(s.code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(s.message(), std::string(kErrorMessageBytes - 1, 'm'));
}

TEST(ControlMessage, ErrorPayloadOfWrongSizeIsProtocolError) {
  const std::vector<std::byte> short_payload(10);
  const Status s = parse_error_payload(short_payload);
  EXPECT_EQ(s.code(), ErrorCode::kProtocol);
  EXPECT_EQ(s.message(), "ERROR frame of 10 bytes, expected 264");
}

TEST(ControlMessage, ErrorPayloadWithOkCodeBecomesProtocolError) {
  const Status s = parse_error_payload(make_error_payload(ErrorCode::kOk, "not an error"));
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), ErrorCode::kProtocol);
  EXPECT_EQ(s.message(), "not an error");
}

TEST(ControlMessage, ErrorPayloadWithoutTerminatorStopsAtFieldEnd) {
  ErrorReply e{};
  e.code = static_cast<std::uint32_t>(ErrorCode::kPermissionDenied);
  std::memset(e.message, 'z', sizeof(e.message));  // a hostile peer: no NUL
  const auto bytes = as_bytes_of(e);
  const Status s = parse_error_payload(bytes);
  EXPECT_EQ(s.code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(s.message(), std::string(kErrorMessageBytes, 'z'));
}

TEST(ControlMessage, ReadFixedStopsAtNulOrFieldEnd) {
  const char full[4] = {'a', 'b', 'c', 'd'};
  EXPECT_EQ(read_fixed(full), "abcd");
  const char inner[6] = {'a', 'b', '\0', 'd', 'e', 'f'};
  EXPECT_EQ(read_fixed(inner), "ab");
  const char empty[3] = {'\0', 'x', 'y'};
  EXPECT_EQ(read_fixed(empty), "");
}

TEST(ControlMessage, CopyFixedTruncatesTerminatesAndPads) {
  char dst[5];
  std::memset(dst, 'X', sizeof(dst));
  copy_fixed(dst, "abcdefgh");
  EXPECT_EQ(std::string(dst, 5), std::string("abcd\0", 5));
  copy_fixed(dst, "ab");
  EXPECT_EQ(std::string(dst, 5), std::string("ab\0\0\0", 5));
  copy_fixed(dst, "");
  EXPECT_EQ(std::string(dst, 5), std::string(5, '\0'));
}

}  // namespace
}  // namespace beat
