// beat-ipc-floor: how fast can two execution contexts on this machine hand a
// word back and forth at all? These are the floors under Beat's
// submit -> complete round trip, measured the same way (one round trip per
// sample, timed on the initiating side), so an end-to-end figure can be read
// as "floor + Beat's own cost".
//
//   cacheline_pingpong  two threads, pinned to two CPUs, bounce one atomic
//                       word on one cache line (spinning). The hardware floor:
//                       what a fully spinning daemon and client could reach.
//   uds_pingpong        two processes over a Unix-domain socketpair, 8 bytes
//                       each way, blocking read(2). The classic IPC peer.
//   futex_pingpong      two processes over a MAP_SHARED word, each side parks
//                       in futex_wait at once and is woken by futex_wake
//                       (shared/doorbell.hpp). The parked-to-parked floor:
//                       what Beat pays when both sides sleep.
//
// Output: one JSON object per line and measurement:
//   {"bench":"futex_pingpong","round_trips":50000,"p50_ns":...,"p99_ns":...,
//    "mean_ns":...,"min_ns":...,"pinned":true,"cpus":"0,1"}
// Both sides are pinned to the first two CPUs of the process's affinity mask
// when it has two or more ("pinned":false otherwise; spinning then yields so
// the single CPU is shared). Each bench first runs a tenth of its iterations
// (at most 10000) unrecorded, to warm caches, page tables and the scheduler.
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "shared/doorbell.hpp"
#include "shared/protocol.hpp"
#include "shared/ring.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kDefaultSpinIterations = 200'000;
constexpr std::uint64_t kDefaultSyscallIterations = 50'000;
constexpr std::uint64_t kQuickDivisor = 10;
constexpr std::uint64_t kMaxWarmupIterations = 10'000;
// Spins before yielding when both sides share one CPU (no pinning possible):
// without a yield each wait would last a whole scheduler quantum.
constexpr int kSpinsBeforeYieldOnOneCpu = 64;

std::int64_t ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "beat-ipc-floor: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

// The CPUs the two sides run on, or none when fewer than two are allowed.
struct Placement {
  std::optional<int> initiator_cpu;
  std::optional<int> responder_cpu;
  cpu_set_t original{};

  bool pinned() const { return initiator_cpu.has_value(); }
  std::string cpus() const {
    if (!pinned()) return "";
    return std::to_string(*initiator_cpu) + "," + std::to_string(*responder_cpu);
  }
};

Placement choose_placement() {
  Placement p;
  if (sched_getaffinity(0, sizeof(p.original), &p.original) != 0) die("sched_getaffinity");
  std::vector<int> allowed;
  for (int cpu = 0; cpu < CPU_SETSIZE && allowed.size() < 2; ++cpu)
    if (CPU_ISSET(cpu, &p.original)) allowed.push_back(cpu);
  if (allowed.size() == 2) {
    p.initiator_cpu = allowed[0];
    p.responder_cpu = allowed[1];
  }
  return p;
}

// Pins the calling thread (pid 0 = caller). No-op without a CPU.
void pin_self(std::optional<int> cpu) {
  if (!cpu) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(*cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    die("sched_setaffinity to CPU " + std::to_string(*cpu));
}

void restore_affinity(const Placement& p) {
  if (sched_setaffinity(0, sizeof(p.original), &p.original) != 0) die("restoring affinity");
}

// Spin-wait step: pause, and on a shared single CPU let the other side run.
inline void spin_step(bool single_cpu, int& spins) {
  beat::cpu_relax();
  if (single_cpu && ++spins >= kSpinsBeforeYieldOnOneCpu) {
    spins = 0;
    std::this_thread::yield();
  }
}

void print_result(const char* bench, std::vector<std::int64_t>& samples, const Placement& p) {
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  long double sum = 0;
  for (std::int64_t s : samples) sum += static_cast<long double>(s);
  const std::size_t p99_index = std::min(n - 1, (n * 99) / 100);
  std::printf(
      "{\"bench\":\"%s\",\"round_trips\":%zu,\"p50_ns\":%lld,\"p99_ns\":%lld,\"mean_ns\":%.1f,"
      "\"min_ns\":%lld,\"pinned\":%s,\"cpus\":\"%s\"}\n",
      bench, n, static_cast<long long>(samples[n / 2]), static_cast<long long>(samples[p99_index]),
      static_cast<double>(sum / static_cast<long double>(n)), static_cast<long long>(samples[0]),
      p.pinned() ? "true" : "false", p.cpus().c_str());
  std::fflush(stdout);
}

std::uint64_t warmup_for(std::uint64_t iterations) {
  return std::min(iterations / 10, kMaxWarmupIterations);
}

// ---------------------------------------------------------------------------
// cacheline_pingpong: the initiator stores an odd value, the responder
// answers with the next even one. Each side only ever waits for the other's
// store, so one round trip = two cache-line transfers.
// ---------------------------------------------------------------------------
struct alignas(beat::kCacheLine) PingPongLine {
  std::atomic<std::uint64_t> word{0};  // odd: written by initiator; even: by responder
};

void cacheline_pingpong(std::uint64_t iterations, const Placement& p) {
  const std::uint64_t warmup = warmup_for(iterations);
  const std::uint64_t total = warmup + iterations;
  const bool single_cpu = !p.pinned();
  PingPongLine line;
  std::atomic<bool> responder_ready{false};
  std::thread responder([&] {
    pin_self(p.responder_cpu);
    responder_ready.store(true, std::memory_order_release);
    int spins = 0;
    for (std::uint64_t i = 1; i <= total; ++i) {
      // Acquire/release are not needed for one word; they keep the measured
      // cost representative of a ring index hand-off, which needs them.
      while (line.word.load(std::memory_order_acquire) != 2 * i - 1) spin_step(single_cpu, spins);
      line.word.store(2 * i, std::memory_order_release);
    }
  });
  pin_self(p.initiator_cpu);
  while (!responder_ready.load(std::memory_order_acquire)) std::this_thread::yield();

  std::vector<std::int64_t> samples;
  samples.reserve(iterations);
  int spins = 0;
  for (std::uint64_t i = 1; i <= total; ++i) {
    const auto t0 = Clock::now();
    line.word.store(2 * i - 1, std::memory_order_release);
    while (line.word.load(std::memory_order_acquire) != 2 * i) spin_step(single_cpu, spins);
    const auto t1 = Clock::now();
    if (i > warmup) samples.push_back(ns_between(t0, t1));
  }
  responder.join();
  restore_affinity(p);
  print_result("cacheline_pingpong", samples, p);
}

// Forks the responder process. It dies with the parent (PR_SET_PDEATHSIG)
// so an interrupted benchmark leaves nothing behind.
template <typename Body>
pid_t fork_responder(const Placement& p, Body&& body) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pin_self(p.responder_cpu);
    _exit(body());
  }
  return pid;
}

void reap(pid_t pid, const char* bench) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) die(std::string("waitpid for ") + bench + " responder");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "beat-ipc-floor: %s responder exited with status %d\n", bench, status);
    std::exit(1);
  }
}

// Reads or writes exactly 8 bytes; false on EOF or error.
bool read_word(int fd, std::uint64_t& v) {
  std::size_t got = 0;
  auto* b = reinterpret_cast<char*>(&v);
  while (got < sizeof(v)) {
    const ssize_t r = read(fd, b + got, sizeof(v) - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}
bool write_word(int fd, std::uint64_t v) {
  std::size_t put = 0;
  const auto* b = reinterpret_cast<const char*>(&v);
  while (put < sizeof(v)) {
    const ssize_t r = write(fd, b + put, sizeof(v) - put);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    put += static_cast<std::size_t>(r);
  }
  return true;
}

// ---------------------------------------------------------------------------
// uds_pingpong: 8 bytes each way over a connected AF_UNIX stream pair (the
// control socket's kind), both sides blocked in read(2) between messages.
// ---------------------------------------------------------------------------
void uds_pingpong(std::uint64_t iterations, const Placement& p) {
  const std::uint64_t warmup = warmup_for(iterations);
  const std::uint64_t total = warmup + iterations;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) die("socketpair");
  const pid_t child = fork_responder(p, [&] {
    close(fds[0]);
    std::uint64_t v = 0;
    while (read_word(fds[1], v))
      if (!write_word(fds[1], v + 1)) return 3;
    return 0;  // EOF: the initiator is done
  });
  close(fds[1]);
  pin_self(p.initiator_cpu);

  std::vector<std::int64_t> samples;
  samples.reserve(iterations);
  for (std::uint64_t i = 1; i <= total; ++i) {
    std::uint64_t reply = 0;
    const auto t0 = Clock::now();
    if (!write_word(fds[0], i)) die("write to uds responder");
    if (!read_word(fds[0], reply)) die("read from uds responder");
    const auto t1 = Clock::now();
    if (reply != i + 1) {
      std::fprintf(stderr, "beat-ipc-floor: uds responder answered %llu to %llu\n",
                   static_cast<unsigned long long>(reply), static_cast<unsigned long long>(i));
      std::exit(1);
    }
    if (i > warmup) samples.push_back(ns_between(t0, t1));
  }
  close(fds[0]);
  reap(child, "uds_pingpong");
  restore_affinity(p);
  print_result("uds_pingpong", samples, p);
}

// ---------------------------------------------------------------------------
// futex_pingpong: two words in MAP_SHARED memory, one per direction. Each
// side publishes its counter, futex_wake()s the other unconditionally, and
// parks in futex_wait() at once (no spin, no needs_wakeup shortcut): every
// round trip is two wake-ups of a sleeping process.
// ---------------------------------------------------------------------------
struct FutexPingPong {
  alignas(beat::kCacheLine) std::atomic<std::uint32_t> ping{0};  // written by initiator
  alignas(beat::kCacheLine) std::atomic<std::uint32_t> pong{0};  // written by responder
};

// Parks until `word` == want. `word` only moves forward, one step at a time.
void park_until(std::atomic<std::uint32_t>& word, std::uint32_t want) {
  for (;;) {
    // Acquire: pairs with the other side's release store of this word.
    const std::uint32_t seen = word.load(std::memory_order_acquire);
    if (seen == want) return;
    beat::futex_wait(&word, seen);
  }
}

void futex_pingpong(std::uint64_t iterations, const Placement& p) {
  const std::uint64_t warmup = warmup_for(iterations);
  const std::uint64_t total = warmup + iterations;
  if (total > UINT32_MAX) throw std::invalid_argument("futex_pingpong iterations exceed 2^32 - 1");
  void* mem = mmap(nullptr, sizeof(FutexPingPong), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap of the futex words");
  auto* pp = ::new (mem) FutexPingPong{};
  const auto rounds = static_cast<std::uint32_t>(total);
  const pid_t child = fork_responder(p, [&] {
    for (std::uint32_t i = 1; i <= rounds; ++i) {
      park_until(pp->ping, i);
      pp->pong.store(i, std::memory_order_release);
      beat::futex_wake(&pp->pong, 1);
    }
    return 0;
  });
  pin_self(p.initiator_cpu);

  std::vector<std::int64_t> samples;
  samples.reserve(iterations);
  for (std::uint32_t i = 1; i <= rounds; ++i) {
    const auto t0 = Clock::now();
    pp->ping.store(i, std::memory_order_release);
    beat::futex_wake(&pp->ping, 1);
    park_until(pp->pong, i);
    const auto t1 = Clock::now();
    if (i > warmup) samples.push_back(ns_between(t0, t1));
  }
  reap(child, "futex_pingpong");
  munmap(mem, sizeof(FutexPingPong));
  restore_affinity(p);
  print_result("futex_pingpong", samples, p);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"beat-ipc-floor: round-trip floors of this machine (JSON lines on stdout)"};
  std::uint64_t iterations = 0;
  bool quick = false;
  std::vector<std::string> benches;
  app.add_option("--iterations", iterations,
                 "measured round trips per bench (default 200000 for cacheline_pingpong, "
                 "50000 for the syscall benches)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--quick", quick, "a tenth of the default iterations (smoke test)");
  app.add_option("--bench", benches, "run only these benches (repeatable)")
      ->check(CLI::IsMember({"cacheline_pingpong", "uds_pingpong", "futex_pingpong"}));
  CLI11_PARSE(app, argc, argv);

  auto count = [&](std::uint64_t default_iterations) {
    if (iterations != 0) return iterations;
    return quick ? default_iterations / kQuickDivisor : default_iterations;
  };
  auto selected = [&](const char* name) {
    return benches.empty() || std::find(benches.begin(), benches.end(), name) != benches.end();
  };

  const Placement placement = choose_placement();
  if (!placement.pinned())
    std::fprintf(stderr, "beat-ipc-floor: fewer than 2 CPUs allowed; running unpinned\n");
  try {
    if (selected("cacheline_pingpong"))
      cacheline_pingpong(count(kDefaultSpinIterations), placement);
    if (selected("uds_pingpong")) uds_pingpong(count(kDefaultSyscallIterations), placement);
    if (selected("futex_pingpong")) futex_pingpong(count(kDefaultSyscallIterations), placement);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beat-ipc-floor: %s\n", e.what());
    return 1;
  }
  return 0;
}
