#include "client/beatctl_bench.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/beatctl_format.hpp"
#include "client/client.hpp"

namespace beat::ctl {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Checksum tasks reuse this many arena blocks round-robin: enough that
// consecutive tasks rarely share a block, few enough to stay in cache.
constexpr std::uint32_t kMaxChecksumBlocks = 64;
// Latency samples a child keeps in memory (8 bytes each, split among its
// threads; beyond it, reservoir sampling) and sends to the parent.
constexpr std::size_t kMaxSamplesPerProcess = std::size_t{1} << 21;
constexpr std::size_t kMaxSamplesPerChild = 200'000;
// Completions reaped per wait()/poll() call.
constexpr std::size_t kReapBufferEntries = 1024;
// Bound on one wait() so a thread re-checks abort and stall conditions.
constexpr std::chrono::milliseconds kReapWait{100};
// Problems printed per client process; the rest are only counted.
constexpr int kMaxReportedProblems = 10;
// Tags are (thread << 32) | index-within-thread.
constexpr unsigned kTagThreadShift = 32;
constexpr std::uint64_t kTagIndexMask = (std::uint64_t{1} << kTagThreadShift) - 1;
// Submit-time table marker for a task whose completion has been seen.
constexpr std::int64_t kCompleted = -1;

constexpr std::uint32_t kReadyMagic = 0x59444552;   // "REDY"
constexpr std::uint32_t kReportMagic = 0x54504552;  // "REPT"

enum class KernelKind { kNoop, kSpin, kChecksum, kOther };

KernelKind kind_of(const std::string& name) {
  if (name == "noop") return KernelKind::kNoop;
  if (name == "spin") return KernelKind::kSpin;
  if (name == "checksum") return KernelKind::kChecksum;
  return KernelKind::kOther;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// SplitMix64 (Steele, Lea, Flood 2014): deterministic bytes for the arena
// and cheap randomness for sampling.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint32_t next_pow2(std::uint64_t v) {
  std::uint64_t p = 1;
  while (p < v && p < kMaxRingEntries) p <<= 1;
  return static_cast<std::uint32_t>(p);
}

// ---- child -> parent pipe messages ----

struct ReadyMessage {
  std::uint32_t magic;
  std::uint32_t ok;  // 0: setup failed, the child exits
};

struct ChildReport {
  std::uint32_t magic;
  std::uint32_t worker_count;
  std::uint64_t completed;  // completions matched to a submitted task
  std::uint64_t errors;
  std::int64_t finish_ns;        // steady clock, comparable across processes
  std::uint64_t max_latency_ns;  // exact, not sampled
  std::uint64_t sample_count;    // uint64 latencies (ns) that follow
};

bool write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t r = ::write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Splits `total` into `parts` near-equal shares.
std::vector<std::uint64_t> split(std::uint64_t total, std::uint32_t parts) {
  std::vector<std::uint64_t> out(parts, total / parts);
  for (std::uint64_t i = 0; i < total % parts; ++i) ++out[i];
  return out;
}

// ---------------------------------------------------------------------------
// One client process: its threads, its tag table, its verification.
// ---------------------------------------------------------------------------

class BenchProcess {
 public:
  BenchProcess(Client& client, const BenchOptions& options, std::uint32_t client_index,
               KernelKind kind, std::uint32_t kernel_id, std::uint64_t total,
               std::vector<ArenaBlock> blocks)
      : client_(client),
        options_(options),
        client_index_(client_index),
        kind_(kind),
        kernel_id_(kernel_id),
        total_(total),
        thread_count_(split(total, options.threads)),
        blocks_(std::move(blocks)),
        in_flight_cap_(client.layout().cq_entries),
        batch_(static_cast<std::uint32_t>(std::min<std::uint64_t>(options.batch, in_flight_cap_))),
        submitted_(new std::atomic<std::int64_t>[total]),
        stats_(options.threads) {
    std::uint64_t base = 0;
    for (std::uint64_t c : thread_count_) {
      thread_base_.push_back(base);
      base += c;
    }
    for (std::uint64_t i = 0; i < total_; ++i) submitted_[i].store(0, std::memory_order_relaxed);
    const std::size_t cap = std::max<std::size_t>(
        1, std::min<std::size_t>(total_, kMaxSamplesPerProcess / options.threads));
    for (std::uint32_t t = 0; t < options.threads; ++t) {
      stats_[t].samples.reserve(cap);
      stats_[t].sample_cap = cap;
      stats_[t].rng = 0x5eed0000ULL + t * 7919 + client_index;
    }
    last_progress_ns_.store(now_ns(), std::memory_order_relaxed);
  }

  std::uint32_t effective_batch() const { return batch_; }

  void abort() { abort_.store(true, std::memory_order_relaxed); }

  // Thread t's whole life: submit its share, then help reap until the
  // process has seen a completion for every task.
  void run_thread(std::uint32_t t) {
    ThreadStats& ts = stats_[t];
    std::vector<TaskDescriptor> batch(batch_);
    std::vector<Completion> reaped(kReapBufferEntries);
    const std::uint64_t count = thread_count_[t];
    const std::uint64_t base = thread_base_[t];
    std::uint64_t i = 0;
    while (i < count && !abort_.load(std::memory_order_relaxed)) {
      const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(batch_, count - i));
      if (!acquire_credit(n, ts, reaped)) break;
      for (std::uint32_t j = 0; j < n; ++j) {
        const std::uint64_t index = i + j;
        const std::uint64_t tag = (std::uint64_t{t} << kTagThreadShift) | index;
        batch[j] = describe(tag, base + index);
      }
      const std::int64_t t0 = now_ns();
      for (std::uint32_t j = 0; j < n; ++j)
        submitted_[base + i + j].store(t0, std::memory_order_relaxed);
      if (Status s = client_.submit({batch.data(), n}, SubmitMode::kBlock); !s) {
        fatal("submit of " + std::to_string(n) + " tasks failed: " + s.message());
        break;
      }
      i += n;
      handle(ts, reaped.data(), client_.poll(reaped));
    }
    while (reaped_.load(std::memory_order_relaxed) < total_ &&
           !abort_.load(std::memory_order_relaxed))
      reap_wait(ts, reaped);
  }

  // After every thread joined: counts tasks that never completed.
  void account_missing() {
    std::uint64_t missing = 0;
    std::uint64_t first_missing_tag = 0;
    for (std::uint32_t t = 0; t < options_.threads; ++t) {
      for (std::uint64_t i = 0; i < thread_count_[t]; ++i) {
        if (submitted_[thread_base_[t] + i].load(std::memory_order_relaxed) != kCompleted) {
          if (missing == 0) first_missing_tag = (std::uint64_t{t} << kTagThreadShift) | i;
          ++missing;
        }
      }
    }
    if (missing > 0) {
      errors_.fetch_add(missing - 1, std::memory_order_relaxed);
      problem(std::to_string(missing) + " of " + std::to_string(total_) +
              " tasks never completed (first: tag " + std::to_string(first_missing_tag) + ")");
    }
  }

  std::uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

  std::uint64_t max_latency_ns() const {
    std::uint64_t m = 0;
    for (const auto& s : stats_) m = std::max(m, s.max_ns);
    return m;
  }

  // All threads' samples, at most `limit` of them (uniformly chosen).
  std::vector<std::uint64_t> samples(std::size_t limit) {
    std::vector<std::uint64_t> all;
    for (auto& s : stats_) all.insert(all.end(), s.samples.begin(), s.samples.end());
    if (all.size() > limit) {
      std::uint64_t rng = 0xfeedULL + client_index_;
      for (std::size_t i = 0; i < limit; ++i) {
        const std::size_t j = i + splitmix64(rng) % (all.size() - i);
        std::swap(all[i], all[j]);
      }
      all.resize(limit);
    }
    return all;
  }

 private:
  struct alignas(64) ThreadStats {  // written by its thread only
    std::vector<std::uint64_t> samples;
    std::size_t sample_cap = 0;
    std::uint64_t seen = 0;
    std::uint64_t max_ns = 0;
    std::uint64_t rng = 0;
  };

  TaskDescriptor describe(std::uint64_t tag, std::uint64_t slot) const {
    switch (kind_) {
      case KernelKind::kNoop: return make_task(kernel_id_, tag, {tag});
      case KernelKind::kSpin: return make_task(kernel_id_, tag, {options_.spin_ns});
      case KernelKind::kChecksum:
        return make_task(kernel_id_, tag, {tag}, blocks_[slot % blocks_.size()]);
      case KernelKind::kOther: break;
    }
    return make_task(kernel_id_, tag);
  }

  // Takes room for n more tasks in flight (<= the CQ size, so the daemon
  // never stalls on a full CQ that nobody reaps), reaping while there is none.
  bool acquire_credit(std::uint32_t n, ThreadStats& ts, std::vector<Completion>& reaped) {
    std::uint64_t cur = in_flight_.load(std::memory_order_relaxed);
    while (!abort_.load(std::memory_order_relaxed)) {
      if (cur + n <= in_flight_cap_) {
        if (in_flight_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed)) return true;
        continue;
      }
      reap_wait(ts, reaped);
      cur = in_flight_.load(std::memory_order_relaxed);
    }
    return false;
  }

  void reap_wait(ThreadStats& ts, std::vector<Completion>& reaped) {
    auto got = client_.wait(reaped, 1, kReapWait);
    if (got) {
      handle(ts, reaped.data(), got.value());
      return;
    }
    if (got.status().code() != ErrorCode::kTimedOut) {
      fatal("waiting for completions failed: " + got.status().message());
      return;
    }
    const std::int64_t idle = now_ns() - last_progress_ns_.load(std::memory_order_relaxed);
    const std::int64_t limit = std::int64_t{options_.stall_timeout_s} * 1'000'000'000;
    if (idle > limit && in_flight_.load(std::memory_order_relaxed) > 0)
      fatal("no completion for " + std::to_string(options_.stall_timeout_s) + " s with " +
            std::to_string(in_flight_.load(std::memory_order_relaxed)) + " tasks in flight");
  }

  void handle(ThreadStats& ts, const Completion* c, std::size_t n) {
    if (n == 0) return;
    const std::int64_t now = now_ns();
    std::uint64_t matched = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint64_t tag = c[k].tag;
      const std::uint64_t t = tag >> kTagThreadShift;
      const std::uint64_t i = tag & kTagIndexMask;
      if (t >= options_.threads || i >= thread_count_[t]) {
        problem("completion carries tag " + std::to_string(tag) + ", which was never submitted");
        continue;
      }
      const std::uint64_t slot = thread_base_[t] + i;
      const std::int64_t submitted =
          submitted_[slot].exchange(kCompleted, std::memory_order_relaxed);
      if (submitted == kCompleted) {
        problem("tag " + std::to_string(tag) + " completed more than once");
        continue;
      }
      if (submitted == 0) {
        problem("tag " + std::to_string(tag) + " completed before it was submitted");
        continue;
      }
      ++matched;
      record_latency(ts, static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - submitted)));
      verify(c[k], slot);
    }
    in_flight_.fetch_sub(n, std::memory_order_relaxed);
    completed_.fetch_add(matched, std::memory_order_relaxed);
    reaped_.fetch_add(n, std::memory_order_relaxed);
    last_progress_ns_.store(now, std::memory_order_relaxed);
  }

  void record_latency(ThreadStats& ts, std::uint64_t ns) {
    ts.max_ns = std::max(ts.max_ns, ns);
    ++ts.seen;
    if (ts.samples.size() < ts.sample_cap) {
      ts.samples.push_back(ns);
    } else {
      // Reservoir sampling (Vitter's Algorithm R).
      const std::uint64_t j = splitmix64(ts.rng) % ts.seen;
      if (j < ts.sample_cap) ts.samples[j] = ns;
    }
  }

  void verify(const Completion& c, std::uint64_t slot) {
    if (c.status != TaskStatus::kOk) {
      problem("tag " + std::to_string(c.tag) + " failed: status " +
              std::string(to_string(c.status)) + ", detail " + std::to_string(c.detail));
      return;
    }
    switch (kind_) {
      case KernelKind::kNoop:
        if (c.result != c.tag)
          problem("noop tag " + std::to_string(c.tag) + " returned " + std::to_string(c.result) +
                  ", expected the tag");
        break;
      case KernelKind::kSpin:
        if (c.result < options_.spin_ns)
          problem("spin tag " + std::to_string(c.tag) + " spun " + std::to_string(c.result) +
                  " ns, asked for " + std::to_string(options_.spin_ns));
        break;
      case KernelKind::kChecksum: {
        const ArenaBlock& b = blocks_[slot % blocks_.size()];
        const std::uint64_t want = XXH3_64bits_withSeed(b.data, b.length, c.tag);
        if (c.result != want)
          problem("checksum tag " + std::to_string(c.tag) + " returned " +
                  std::to_string(c.result) + ", expected " + std::to_string(want));
        break;
      }
      case KernelKind::kOther: break;
    }
  }

  void problem(const std::string& what) {
    const std::uint64_t n = errors_.fetch_add(1, std::memory_order_relaxed);
    if (n < kMaxReportedProblems) {
      std::lock_guard lock(print_mutex_);
      std::fprintf(stderr, "beatctl bench: client %u: %s\n", client_index_, what.c_str());
    } else if (n == kMaxReportedProblems) {
      std::lock_guard lock(print_mutex_);
      std::fprintf(stderr, "beatctl bench: client %u: further problems only counted\n",
                   client_index_);
    }
  }

  void fatal(const std::string& what) {
    if (!abort_.exchange(true, std::memory_order_relaxed)) problem(what);
  }

  Client& client_;
  const BenchOptions& options_;
  const std::uint32_t client_index_;
  const KernelKind kind_;
  const std::uint32_t kernel_id_;
  const std::uint64_t total_;
  const std::vector<std::uint64_t> thread_count_;
  std::vector<std::uint64_t> thread_base_;
  const std::vector<ArenaBlock> blocks_;
  const std::uint64_t in_flight_cap_;
  const std::uint32_t batch_;
  // Per task: its submit time (steady ns), 0 before submit, kCompleted after.
  std::unique_ptr<std::atomic<std::int64_t>[]> submitted_;
  std::vector<ThreadStats> stats_;

  alignas(64) std::atomic<std::uint64_t> in_flight_{0};
  alignas(64) std::atomic<std::uint64_t> reaped_{0};
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::int64_t> last_progress_ns_{0};
  alignas(64) std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> abort_{false};
  std::mutex print_mutex_;
};

// Body of one forked client process. Returns its exit code.
int child_main(const BenchOptions& o, std::uint32_t client_index, std::uint64_t tasks,
               int report_fd, int go_fd) {
  const KernelKind kind = kind_of(o.kernel);
  auto not_ready = [&](const std::string& why) {
    std::fprintf(stderr, "beatctl bench: client %u: %s\n", client_index, why.c_str());
    const ReadyMessage m{kReadyMagic, 0};
    (void)write_all(report_fd, &m, sizeof(m));
    return kExitUsage;
  };

  ClientOptions co;
  co.socket_path = o.socket_path;
  co.name = "beatctl-bench-" + std::to_string(client_index);
  co.segment.sq_entries = std::max<std::uint32_t>(co.segment.sq_entries, next_pow2(o.batch));
  co.segment.cq_entries = std::max<std::uint32_t>(
      co.segment.cq_entries, next_pow2(std::uint64_t{2} * o.batch * o.threads));
  const std::uint64_t block_stride =
      align_up(std::max<std::uint64_t>(o.data_bytes, 1), kArenaGranule);
  if (kind == KernelKind::kChecksum)
    co.segment.arena_bytes = std::min<std::uint64_t>(
        kMaxArenaBytes,
        std::max<std::uint64_t>(co.segment.arena_bytes,
                                align_up(block_stride * kMaxChecksumBlocks, kPageBytes)));
  auto connected = Client::connect(co);
  if (!connected) return not_ready(connected.status().message());
  Client& client = *connected.value();
  auto kernel = client.kernel_id(o.kernel);
  if (!kernel) return not_ready(kernel.status().message());

  std::vector<ArenaBlock> blocks;
  if (kind == KernelKind::kChecksum) {
    const std::uint64_t fit = client.arena_bytes() / block_stride;
    const std::uint64_t n = std::min<std::uint64_t>({fit, kMaxChecksumBlocks, tasks});
    if (n == 0)
      return not_ready("--data-bytes " + std::to_string(o.data_bytes) +
                       " does not fit the arena of " + std::to_string(client.arena_bytes()) +
                       " bytes the daemon granted");
    for (std::uint64_t b = 0; b < n; ++b) {
      auto block = client.allocate(o.data_bytes);
      if (!block) return not_ready(block.status().message());
      std::uint64_t state = 0xbea7ULL * (b + 1);
      for (std::uint64_t off = 0; off < block->length; off += sizeof(std::uint64_t)) {
        const std::uint64_t word = splitmix64(state);
        std::memcpy(block->data + off, &word,
                    std::min<std::uint64_t>(sizeof(word), block->length - off));
      }
      blocks.push_back(block.value());
    }
  }

  BenchProcess process(client, o, client_index, kind, kernel.value(), tasks, std::move(blocks));
  if (client_index == 0 && process.effective_batch() < o.batch)
    std::fprintf(stderr, "beatctl bench: batch clamped to %u, the completion ring size\n",
                 process.effective_batch());
  std::latch start(1);
  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < o.threads; ++t)
    threads.emplace_back([&, t] {
      start.wait();
      process.run_thread(t);
    });

  const ReadyMessage ready{kReadyMagic, 1};
  char go = 0;
  const bool started =
      write_all(report_fd, &ready, sizeof(ready)) && read_all(go_fd, &go, 1) && go == 'g';
  if (!started) process.abort();
  start.count_down();
  for (auto& th : threads) th.join();
  const std::int64_t finish = now_ns();
  if (!started) return kExitUsage;

  process.account_missing();
  const std::vector<std::uint64_t> samples = process.samples(kMaxSamplesPerChild);
  ChildReport report{};
  report.magic = kReportMagic;
  report.worker_count = client.worker_count();
  report.completed = process.completed();
  report.errors = process.errors();
  report.finish_ns = finish;
  report.max_latency_ns = process.max_latency_ns();
  report.sample_count = samples.size();
  if (!write_all(report_fd, &report, sizeof(report)) ||
      !write_all(report_fd, samples.data(), samples.size() * sizeof(std::uint64_t)))
    return kExitFailure;
  return report.errors == 0 ? kExitOk : kExitFailure;
}

double percentile_us(const std::vector<std::uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  // Nearest rank.
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

}  // namespace

int run_bench(const BenchOptions& o) {
  auto usage = [](const std::string& why) {
    std::fprintf(stderr, "beatctl bench: %s\n", why.c_str());
    return kExitUsage;
  };
  if (o.tasks == 0) return usage("--tasks must be at least 1");
  if (o.batch == 0) return usage("--batch must be at least 1");
  if (o.clients == 0) return usage("--clients must be at least 1");
  if (o.threads == 0) return usage("--threads must be at least 1");
  if (o.tasks / o.clients / o.threads >= kTagIndexMask)
    return usage("--tasks " + std::to_string(o.tasks) + " gives a thread more than 2^32 tasks");
  const KernelKind kind = kind_of(o.kernel);
  if (kind == KernelKind::kChecksum &&
      (o.data_bytes == 0 || o.data_bytes > kMaxArenaBytes / kMaxChecksumBlocks))
    return usage("--data-bytes " + std::to_string(o.data_bytes) + " must be in [1, " +
                 std::to_string(kMaxArenaBytes / kMaxChecksumBlocks) + "]");

  // Check the daemon and the kernel name once, before forking anything.
  {
    auto control = ControlConnection::open(o.socket_path);
    if (!control) return usage(control.status().message());
    auto kernels = control->kernels();
    if (!kernels) return usage(kernels.status().message());
    const bool known = std::any_of(kernels->begin(), kernels->end(),
                                   [&](const KernelListing& k) { return k.name == o.kernel; });
    if (!known)
      return usage("beatd at " + o.socket_path + " has no kernel named '" + o.kernel + "'");
  }

  int go_pipe[2];
  if (::pipe2(go_pipe, O_CLOEXEC) != 0)
    return usage(std::string("pipe2 failed: ") + std::strerror(errno));
  const std::vector<std::uint64_t> per_client = split(o.tasks, o.clients);
  std::vector<pid_t> pids;
  std::vector<int> report_fds;
  std::fflush(stdout);
  std::fflush(stderr);
  for (std::uint32_t c = 0; c < o.clients; ++c) {
    int report_pipe[2];
    if (::pipe2(report_pipe, O_CLOEXEC) != 0) {
      std::fprintf(stderr, "beatctl bench: pipe2 failed: %s\n", std::strerror(errno));
      break;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(report_pipe[0]);
      ::close(go_pipe[1]);
      for (int fd : report_fds) ::close(fd);
      const int code = child_main(o, c, per_client[c], report_pipe[1], go_pipe[0]);
      std::fflush(stdout);
      std::fflush(stderr);
      ::_exit(code);
    }
    ::close(report_pipe[1]);
    if (pid < 0) {
      std::fprintf(stderr, "beatctl bench: fork failed: %s\n", std::strerror(errno));
      ::close(report_pipe[0]);
      break;
    }
    pids.push_back(pid);
    report_fds.push_back(report_pipe[0]);
  }
  ::close(go_pipe[0]);

  bool all_ready = pids.size() == o.clients;
  for (int fd : report_fds) {
    ReadyMessage m{};
    if (!read_all(fd, &m, sizeof(m)) || m.magic != kReadyMagic || m.ok != 1) all_ready = false;
  }
  const std::int64_t start = now_ns();
  if (all_ready) {
    const std::string go(o.clients, 'g');
    all_ready = write_all(go_pipe[1], go.data(), go.size());
  }
  ::close(go_pipe[1]);  // children still waiting read EOF and give up

  std::uint64_t completed = 0;
  std::uint64_t errors = 0;
  std::uint64_t max_ns = 0;
  std::uint32_t workers = 0;
  std::int64_t finish = start;
  std::vector<std::uint64_t> samples;
  bool reports_ok = all_ready;
  for (std::size_t c = 0; c < report_fds.size(); ++c) {
    if (all_ready) {
      ChildReport r{};
      if (read_all(report_fds[c], &r, sizeof(r)) && r.magic == kReportMagic &&
          r.sample_count <= kMaxSamplesPerChild) {
        const std::size_t old = samples.size();
        samples.resize(old + r.sample_count);
        if (!read_all(report_fds[c], samples.data() + old,
                      r.sample_count * sizeof(std::uint64_t))) {
          samples.resize(old);
          reports_ok = false;
        }
        completed += r.completed;
        errors += r.errors;
        max_ns = std::max(max_ns, r.max_latency_ns);
        finish = std::max(finish, r.finish_ns);
        workers = r.worker_count;
      } else {
        std::fprintf(stderr, "beatctl bench: client %zu sent no report\n", c);
        reports_ok = false;
        ++errors;
      }
    }
    ::close(report_fds[c]);
  }
  int worst_exit = kExitOk;
  for (std::size_t c = 0; c < pids.size(); ++c) {
    int status = 0;
    while (::waitpid(pids[c], &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) {
      std::fprintf(stderr, "beatctl bench: client %zu was killed by signal %d\n", c,
                   WTERMSIG(status));
      worst_exit = std::max(worst_exit, kExitFailure);
    } else if (WIFEXITED(status)) {
      worst_exit = std::max(worst_exit, WEXITSTATUS(status));
    }
  }
  if (!all_ready) return kExitUsage;  // a child could not connect; it said why

  std::sort(samples.begin(), samples.end());
  const double seconds = static_cast<double>(finish - start) / 1e9;
  const double rate = seconds > 0 ? static_cast<double>(completed) / seconds : 0.0;
  const double p50 = percentile_us(samples, 0.50);
  const double p99 = percentile_us(samples, 0.99);
  const double max_us = static_cast<double>(max_ns) / 1000.0;
  const bool ok = reports_ok && errors == 0 && completed == o.tasks && worst_exit == kExitOk;
  const bool verified = ok && kind != KernelKind::kOther;

  if (o.json) {
    JsonObject j;
    j.add("kernel", o.kernel)
        .add("tasks", completed)
        .add("seconds", seconds)
        .add("tasks_per_second", rate)
        .add("latency_p50_us", p50)
        .add("latency_p99_us", p99)
        .add("latency_max_us", max_us)
        .add("errors", errors)
        .add("batch", o.batch)
        .add("clients", o.clients)
        .add("threads", o.threads)
        .add("workers", workers)
        .add("verified", verified);
    if (kind == KernelKind::kSpin) j.add("spin_ns", o.spin_ns);
    if (kind == KernelKind::kChecksum) j.add("data_bytes", o.data_bytes);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf(
        "%s: %llu tasks in %s s = %s tasks/s; latency p50 %s us, p99 %s us, max %s us; "
        "%llu errors; batch %u, %u clients x %u threads, %u workers; %s\n",
        o.kernel.c_str(), static_cast<unsigned long long>(completed), fixed(seconds, 3).c_str(),
        fixed(rate, 0).c_str(), fixed(p50, 1).c_str(), fixed(p99, 1).c_str(),
        fixed(max_us, 1).c_str(), static_cast<unsigned long long>(errors), o.batch, o.clients,
        o.threads, workers,
        verified ? "verified" : (ok ? "not verified (unknown kernel: status only)" : "FAILED"));
  }
  std::fflush(stdout);
  return ok ? kExitOk : kExitFailure;
}

}  // namespace beat::ctl
