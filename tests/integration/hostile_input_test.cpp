// The daemon treats everything a client writes as hostile: malformed
// descriptors get error completions, corrupt rings get the client
// disconnected, and neither disturbs the daemon or its other clients.
// Bad configuration stops beatd with a message naming the key and value.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "client/client.hpp"
#include "shared/control_message.hpp"
#include "shared/segment_layout.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/integration/scrape.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;

using test::run_all;

TEST(HostileInput, MalformedDescriptorsGetErrorCompletionsAndDaemonKeepsServing) {
  test::ScopedWatchdog watchdog("HostileInput.Malformed", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto client = Client::connect({.socket_path = d->socket_path(), .name = "malformed"});
  ASSERT_TRUE(client) << client.status().message();
  Client& c = **client;
  const std::uint32_t noop = *c.kernel_id("noop");
  const std::uint32_t spin = *c.kernel_id("spin");
  const std::uint32_t checksum = *c.kernel_id("checksum");
  const std::uint64_t arena = c.arena_bytes();

  auto t = [](std::uint64_t tag, std::uint32_t kernel, std::uint32_t flags, std::uint64_t off,
              std::uint64_t len, std::uint64_t a0 = 0) {
    TaskDescriptor d{};
    d.tag = tag;
    d.kernel_id = kernel;
    d.flags = flags;
    d.data_offset = off;
    d.data_length = len;
    d.args[0] = a0;
    return d;
  };
  const std::vector<TaskDescriptor> tasks = {
      t(1, 9999, 0, 0, 0),                                       // unknown kernel
      t(2, checksum, kTaskFlagUsesData, arena + 64, 8),          // offset past the arena
      t(3, checksum, kTaskFlagUsesData, 64, ~std::uint64_t{0}),  // offset + length overflows
      t(4, checksum, kTaskFlagUsesData, arena - 8, 16),          // runs off the end
      t(5, noop, 1u << 7, 0, 0),                                 // unknown flag bit
      t(6, noop, 0, 5, 0),                                       // data offset without the flag
      t(7, spin, 0, 0, 0, 20'000'000'000ull),                    // spin longer than 10 s
      t(8, noop, 0, 0, 0, 77),                                   // a good one after all that
      t(9, checksum, kTaskFlagUsesData, arena - 8, 8, 3),        // the last 8 bytes: valid
  };
  const std::map<std::uint64_t, std::pair<TaskStatus, std::uint32_t>> want = {
      {1, {TaskStatus::kInvalidKernel, 0}},
      {2, {TaskStatus::kInvalidRange, 0}},
      {3, {TaskStatus::kInvalidRange, 0}},
      {4, {TaskStatus::kInvalidRange, 0}},
      {5, {TaskStatus::kInvalidFlags, 0}},
      {6, {TaskStatus::kInvalidFlags, 0}},
      {7, {TaskStatus::kInvalidArgs, 0}},
      {8, {TaskStatus::kOk, 0}},
      {9, {TaskStatus::kOk, 0}}};
  const auto out = run_all(c, tasks);
  ASSERT_EQ(out.size(), tasks.size());
  std::map<std::uint64_t, int> seen;
  for (const Completion& x : out) {
    ++seen[x.tag];
    ASSERT_TRUE(want.count(x.tag)) << x.tag;
    EXPECT_EQ(x.status, want.at(x.tag).first) << "tag " << x.tag << ": " << to_string(x.status);
    EXPECT_EQ(x.detail, want.at(x.tag).second) << "tag " << x.tag;
    if (x.tag == 8) {
      EXPECT_EQ(x.result, 77u);
    }
    if (x.status != TaskStatus::kOk) {
      EXPECT_EQ(x.result, 0u);
    }
  }
  for (auto& [tag, n] : seen) EXPECT_EQ(n, 1) << tag;
  // Still serving.
  const auto again = run_all(c, {make_task(noop, 100, {5})});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].result, 5u);
  EXPECT_TRUE(d->alive());
}

// A client that skips the library and writes the segment directly.
class RawSession {
 public:
  explicit RawSession(const std::string& socket) {
    fd_ = test::connect_unix(socket);
    if (fd_ < 0) return;
    HelloRequest req{};
    req.version = kProtocolVersion;
    req.sq_entries = 64;
    req.cq_entries = 128;
    req.arena_bytes = 1 << 16;
    copy_fixed(req.client_name, "raw");
    if (!send_frame(fd_, MessageType::kHello, as_bytes_of(req))) return;
    auto f = recv_frame(fd_);
    if (!f || f->type != MessageType::kHelloOk || f->fd < 0) return;
    HelloReply r;
    std::memcpy(&r, f->payload.data(), sizeof(r));
    auto layout = compute_layout(r.sq_entries, r.cq_entries, r.arena_bytes);
    bytes_ = layout->total_bytes;
    base_ = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    segment_fd_ = f->fd;
    if (base_ == MAP_FAILED) base_ = nullptr;
    if (base_ != nullptr) view_ = SegmentView::over(base_, *layout);
  }
  ~RawSession() {
    if (base_ != nullptr) ::munmap(base_, bytes_);
    if (segment_fd_ >= 0) ::close(segment_fd_);
    if (fd_ >= 0) ::close(fd_);
  }
  int segment_fd() const { return segment_fd_; }
  std::uint64_t segment_bytes() const { return bytes_; }
  bool ok() const { return base_ != nullptr; }
  SegmentView& view() { return view_; }
  // True once the daemon closed our connection (EOF) within `timeout`.
  bool closed_by_daemon(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char b;
    return ::recv(fd_, &b, 1, MSG_DONTWAIT) == 0;
  }
  void publish(std::uint32_t tail) {
    view_.header->sq.reserve.value.store(tail, std::memory_order_relaxed);
    view_.header->sq.tail.value.store(tail, std::memory_order_release);
    view_.header->sq_bell.seq.fetch_add(1, std::memory_order_release);
    futex_wake(&view_.header->sq_bell.seq, 1);
  }

 private:
  int fd_ = -1;
  int segment_fd_ = -1;
  void* base_ = nullptr;
  std::uint64_t bytes_ = 0;
  SegmentView view_{};
};

TEST(HostileInput, RandomDescriptorBytesNeverCrashTheDaemon) {
  test::ScopedWatchdog watchdog("HostileInput.RandomBytes", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  RawSession raw(d->socket_path());
  ASSERT_TRUE(raw.ok());
  std::mt19937_64 rng(7);
  constexpr std::uint32_t kTasks = 48;
  std::map<std::uint64_t, int> expected;  // tag -> count (random tags may repeat)
  for (std::uint32_t i = 0; i < kTasks; ++i) {
    TaskDescriptor garbage;
    auto* words = reinterpret_cast<std::uint64_t*>(&garbage);
    for (std::size_t w = 0; w < sizeof(garbage) / 8; ++w) words[w] = rng();
    if (i % 4 == 0) garbage.kernel_id = i % 3;  // some hit real kernels with wild ranges
    if ((garbage.flags & kTaskFlagCancelled) == 0) ++expected[garbage.tag];
    std::memcpy(&raw.view().sq_slots[i], &garbage, sizeof(garbage));
  }
  raw.publish(kTasks);
  std::uint32_t want = 0;
  for (auto& [tag, n] : expected) want += static_cast<std::uint32_t>(n);
  // Read the CQ by hand.
  auto& h = *raw.view().header;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (h.cq.tail.value.load(std::memory_order_acquire) < want &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(h.cq.tail.value.load(std::memory_order_acquire), want);
  std::map<std::uint64_t, int> got;
  for (std::uint32_t i = 0; i < want; ++i) {
    const CompletionEntry& e = raw.view().cq_slots[i];
    ++got[e.tag];
    EXPECT_LE(e.status, static_cast<std::uint32_t>(TaskStatus::kDropped));
  }
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(d->alive());
}

// Latency stamps are the client's word: a forged one may skew that client's
// samples within its session's lifetime, nothing more. One older than the
// session is no sample, one in the future counts as no wait; the tasks
// themselves run normally.
TEST(HostileInput, ForgedLatencyStampsSkewOnlyTheirOwnSamples) {
  test::ScopedWatchdog watchdog("HostileInput.ForgedStamps", 60);
  auto d = DaemonProcess::start({.workers = 2,
                                 .metrics_address = "127.0.0.1:0",
                                 .extra_args = {},
                                 .cpus = {},
                                 .config_path = ""});
  ASSERT_NE(d, nullptr);
  auto probe = Client::connect({.socket_path = d->socket_path(), .name = "probe"});
  ASSERT_TRUE(probe);
  auto stats = (*probe)->stats_json();
  ASSERT_TRUE(stats);
  const int port = test::metrics_port(*stats);
  ASSERT_GT(port, 0);
  // The probe connected and asked for STATS only: no sample of its own.
  RawSession raw(d->socket_path());
  ASSERT_TRUE(raw.ok());
  const std::uint32_t noop = *(*probe)->kernel_id("noop");
  // So that "1 ms ago" is after the session began.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto now =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  const std::uint64_t stamps[] = {1, ~std::uint64_t{0}, now - 1'000'000, 0};
  for (std::uint32_t i = 0; i < 4; ++i) {
    TaskDescriptor t = make_task(noop, i, {i});
    t.flags |= kTaskFlagStamped;
    std::memcpy(&raw.view().sq_slots[i], &t, sizeof(t));
    std::memcpy(&raw.view().sq_stamps[i], &stamps[i], sizeof(stamps[i]));
  }
  raw.publish(4);
  auto& h = *raw.view().header;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (h.cq.tail.value.load(std::memory_order_acquire) < 4 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(h.cq.tail.value.load(std::memory_order_acquire), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(raw.view().cq_slots[i].status, static_cast<std::uint32_t>(TaskStatus::kOk));
    EXPECT_EQ(raw.view().cq_slots[i].result, raw.view().cq_slots[i].tag);
  }
  // Samples: the future stamp (no wait) and the 1 ms old one; the stamps
  // from before the session (1, and 0) are none.
  std::map<std::string, double> s;
  for (int i = 0; i < 200; ++i) {
    s = test::parse_samples(test::http_get(port));
    if (s["beat_task_latency_seconds_count"] == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(s["beat_task_latency_seconds_count"], 2);
  EXPECT_EQ(s[R"(beat_task_latency_seconds_bucket{le="1e-06"})"], 1);
  EXPECT_EQ(s[R"(beat_task_latency_seconds_bucket{le="1"})"], 2);
  EXPECT_GE(s["beat_task_latency_seconds_sum"], 0.001);
  EXPECT_TRUE(d->alive());
}

TEST(HostileInput, CorruptRingIndicesDisconnectOnlyThatClient) {
  test::ScopedWatchdog watchdog("HostileInput.CorruptRing", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  auto good = Client::connect({.socket_path = d->socket_path(), .name = "good"});
  ASSERT_TRUE(good);
  RawSession raw(d->socket_path());
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(d->segments().size(), 2u);
  // A tail a million entries past the head: no honest ring looks like that.
  raw.publish(1'000'000);
  EXPECT_TRUE(raw.closed_by_daemon(std::chrono::seconds(5)));
  // Its segment goes; the good client's stays and it keeps working.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (d->segments().size() != 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(d->segments().size(), 1u);
  EXPECT_EQ(d->segments()[0], (*good)->segment_name());
  const auto out = run_all(**good, {make_task(*(*good)->kernel_id("noop"), 1, {42})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].result, 42u);
  EXPECT_NE(d->log().find("corrupted its rings"), std::string::npos);
}

TEST(HostileInput, ClientCannotResizeItsSegmentUnderTheDaemon) {
  test::ScopedWatchdog watchdog("HostileInput.Resize", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  RawSession raw(d->socket_path());
  ASSERT_TRUE(raw.ok());
  // Shrinking would make the daemon's next access to the mapping fault
  // (SIGBUS); the segment is sealed against both directions.
  EXPECT_EQ(::ftruncate(raw.segment_fd(), 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::ftruncate(raw.segment_fd(), static_cast<off_t>(raw.segment_bytes() * 2)), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::fcntl(raw.segment_fd(), F_ADD_SEALS, F_SEAL_WRITE), -1) << "seals are final";
  // The daemon still reads the segment (STATS walks every header) and serves.
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "after"});
  ASSERT_TRUE(c) << c.status().message();
  auto stats = (*c)->stats_json();
  ASSERT_TRUE(stats) << stats.status().message();
  EXPECT_NE(stats->find("\"name\":\"raw\""), std::string::npos) << *stats;
  const auto out = run_all(**c, {make_task(*(*c)->kernel_id("noop"), 1, {9})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].result, 9u);
  EXPECT_TRUE(d->alive());
}

TEST(HostileInput, PipelinedRequestsNeverReadCannotStallTheDaemon) {
  test::ScopedWatchdog watchdog("HostileInput.Pipelined", 60);
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  const int fd = test::connect_unix(d->socket_path());
  ASSERT_GE(fd, 0);
  // Hundreds of STATS requests whose replies we never read: the daemon's
  // reply buffer fills; it must give up on us, not block its control thread.
  const FrameHeader stats{kFrameMagic, static_cast<std::uint32_t>(MessageType::kStats), 0, 0};
  for (int i = 0; i < 2000; ++i)
    if (::send(fd, &stats, sizeof(stats), MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof(stats)) break;
  // Meanwhile another client is served promptly.
  auto c = Client::connect({.socket_path = d->socket_path(), .name = "bystander"});
  ASSERT_TRUE(c) << c.status().message();
  const auto out = run_all(**c, {make_task(*(*c)->kernel_id("noop"), 1, {3})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].result, 3u);
  ::close(fd);
  EXPECT_TRUE(d->alive());
}

TEST(HostileInput, WrongProtocolVersionIsRefusedByName) {
  auto d = DaemonProcess::start();
  ASSERT_NE(d, nullptr);
  const int fd = test::connect_unix(d->socket_path());
  ASSERT_GE(fd, 0);
  HelloRequest req{};
  req.version = 99;
  ASSERT_TRUE(send_frame(fd, MessageType::kHello, as_bytes_of(req)));
  auto f = recv_frame(fd);
  ASSERT_TRUE(f);
  ASSERT_EQ(f->type, MessageType::kError);
  const Status s = parse_error_payload(f->payload);
  EXPECT_EQ(s.code(), ErrorCode::kProtocol);
  EXPECT_NE(s.message().find("protocol version 99"), std::string::npos) << s.message();
  ::close(fd);
  EXPECT_TRUE(d->segments().empty());
}

struct BadConfigCase {
  const char* toml;
  std::vector<std::string> flags;
  const char* must_mention;
};

TEST(HostileInput, BadConfigAndFlagsExitNonZeroNamingKeyAndValue) {
  const std::vector<BadConfigCase> cases = {
      {"[workers]\ncuont = 2\n", {}, "unknown key 'workers.cuont'"},
      {"[workers]\ncount = \"two\"\n", {}, "'workers.count' must be an integer, got \"two\""},
      {"[daemon]\nmax_clients = 500\n", {}, "'daemon.max_clients' is 500"},
      {"[daemon]\nlog_level = \"loud\"\n", {}, "'daemon.log_level' is \"loud\""},
      {"[clients]\nsq_entries_max = 1000\n",
       {},
       "'clients.sq_entries_max' is 1000: must be a power of two"},
      {"[metrics]\naddress = \"localhost\"\n", {}, "'metrics.address' is \"localhost\""},
      {"[workers\n", {}, ":1:"},
      {"", {"--workers", "-3"}, "--workers is -3"},
      {"", {"--idle-spin-us", "5000000"}, "--idle-spin-us is 5000000"},
  };
  for (const auto& k : cases) {
    char path[] = "/tmp/beat-badcfg-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, k.toml, std::strlen(k.toml)), static_cast<ssize_t>(std::strlen(k.toml)));
    ::close(fd);
    std::vector<std::string> argv = {BEAT_BEATD_PATH, "--config", path, "--socket",
                                     "/tmp/beat-badcfg.sock"};
    argv.insert(argv.end(), k.flags.begin(), k.flags.end());
    std::string output;
    const int rc = test::run_program(argv, output, std::chrono::seconds(10));
    ::unlink(path);
    EXPECT_EQ(rc, 1) << k.toml << output;
    EXPECT_NE(output.find(k.must_mention), std::string::npos)
        << "expected '" << k.must_mention << "' in: " << output;
  }
}

}  // namespace
}  // namespace beat
