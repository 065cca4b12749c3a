// beat-batching-bench: what batch formation (daemon/batching/) costs and
// what it buys. JSON lines on stdout, one per measurement:
//
//   {"bench":"formation","grouping":"similarity","tasks":100,"p50_ns":..,"p99_ns":..}
//     The intake's whole formation step for one chunk of `tasks` tasks, as
//     WorkerPool::intake runs it: the daemon's fingerprint of every
//     descriptor (daemon_fingerprint), BatchFormer::form with the target the
//     intake would pick on a busy daemon (the whole chunk), and recycle.
//     Timed per chunk with steady_clock (its ~25 ns read included), over
//     chunks drawn from 64 random ones of `kinds` kinds of task (random_chunk:
//     8 kinds, a client's typical handful; 32, more than max_open; 1, one
//     batch; 4,096, nearly every task a kind of its own and alone: the
//     worst case, every task searching, opening a batch and evicting one).
//     Goal (issue #4): p50 < 2 us for 100 tasks.
//
//   {"bench":"similarity","path":"simd","target":"AVX3","comparisons_per_second":..}
//     One fingerprint against a table of 1,024, `distances`, repeated:
//     fingerprint pairs compared per second, on every Highway target this
//     CPU supports (forced with hwy::SetSupportedTargetsForTest) and on the
//     scalar path ("path":"scalar"), in the same run. A last line,
//     {"bench":"similarity_ratio","target":..,"simd_over_scalar":..}, gives
//     the best target's speed over the scalar path's. Goal: >= 4x.
//
//   {"bench":"locality","grouping":"similarity"|"fifo","tasks":..,"seconds":..}
//     End to end through a real beatd (BEAT_BEATD_PATH; 1 worker, so the
//     order one worker runs a chunk in is the whole story): a client
//     submits, 64 at a time (one intake chunk), tasks that each checksum
//     (XXH3) the whole of one of kHotBlocks blocks of 16 MiB in its arena,
//     block by block in turn, so consecutive tasks never share data. One
//     block is 4x this machine's L2; a chunk's eight blocks, 128 MiB, are
//     more than its L3 holds for one core (XXH3 here: 15 GB/s from L2, 14
//     from a 16 MiB working set, 6.5 from 128 MiB and up). "similarity"
//     groups each block's tasks into one batch, so seven of eight find the
//     block in cache; "fifo" runs them in submission order. Every result is
//     checked against XXH3 computed here. A last line, {"bench":
//     "locality_ratio","fifo_over_similarity":..}, is the time ratio. Cache
//     misses: perf stat's counters are not available in this VM (no PMU),
//     so none are reported.
//
// --quick: fewer rounds and tasks, well under a minute.
#include <sched.h>
#include <xxhash.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.hpp"
#include "daemon/batching/batch_former.hpp"
#include "daemon/batching/similarity.hpp"
#include "hwy/targets.h"
#include "perf/forkjoin/beatd_peer.hpp"
#include "shared/fingerprint.hpp"

namespace {

namespace batching = beat::batching;
using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto at = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(at, v.size() - 1)];
}

// A random chunk of `n` descriptors as a client would send them, of
// `kinds` kinds (kernel x data block: kernels 0..kinds/8, blocks of 1 MiB),
// shuffled: each task reads its block from one of its first 4 pages, with a
// length fixed per kind between 4 KiB and 512 KiB, and random arguments, so
// tasks of one kind are within distance 19 of each other and any two kinds
// are farther apart than the default threshold (24).
std::vector<beat::TaskDescriptor> random_chunk(std::mt19937_64& rng, std::uint32_t n,
                                               std::uint32_t kinds) {
  std::vector<beat::TaskDescriptor> chunk(n);
  for (beat::TaskDescriptor& d : chunk) {
    d = beat::TaskDescriptor{};
    const auto kind = static_cast<std::uint32_t>(rng() % kinds);
    d.kernel_id = kind / 8;
    d.flags = beat::kTaskFlagUsesData;
    const std::uint64_t block = kind % 8;
    d.data_offset = block * (1u << 20) + (rng() % 4) * 4096;
    d.data_length = std::uint64_t{4096} << ((d.kernel_id + block) % 8);
    d.args[0] = rng();
    d.fingerprint = beat::make_fingerprint(d);
  }
  return chunk;
}

void bench_formation(batching::Grouping grouping, std::uint32_t tasks, std::uint32_t kinds,
                     unsigned rounds) {
  batching::BatchFormer former({grouping, 24, 16}, tasks);
  std::mt19937_64 rng(1);
  std::vector<std::vector<beat::TaskDescriptor>> chunks;
  for (int i = 0; i < 64; ++i) chunks.push_back(random_chunk(rng, tasks, kinds));
  std::vector<beat::FingerprintFields> fps(tasks);
  std::vector<std::uint8_t> ordered(tasks);
  std::vector<double> ns;
  std::uint64_t batches = 0;
  for (unsigned r = 0; r < rounds + 100; ++r) {  // the first 100: warm-up
    const auto& chunk = chunks[r % chunks.size()];
    const Clock::time_point start = Clock::now();
    for (std::uint32_t i = 0; i < tasks; ++i) {
      bool corrected = false;
      fps[i] = beat::daemon_fingerprint(chunk[i], corrected);
      ordered[i] = (chunk[i].flags & beat::kTaskFlagOrdered) != 0 ? 1 : 0;
    }
    batches += former.form(fps, ordered, tasks).size();
    former.recycle();
    const Clock::time_point stop = Clock::now();
    if (r >= 100) ns.push_back(std::chrono::duration<double, std::nano>(stop - start).count());
  }
  const std::string_view name = batching::to_string(grouping);
  std::printf(
      "{\"bench\":\"formation\",\"grouping\":\"%.*s\",\"tasks\":%u,\"kinds\":%u,\"rounds\":%u,"
      "\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"batches_per_chunk\":%.2f,\"simd\":\"%s\"}\n",
      static_cast<int>(name.size()), name.data(), tasks, kinds, rounds, percentile(ns, 0.5),
      percentile(ns, 0.99), static_cast<double>(batches) / (rounds + 100),
      batching::simd_target_name().c_str());
  std::fflush(stdout);
}

// Comparisons per second of `distances` on the current path and target.
double comparisons_per_second(batching::SimdPath path, const batching::FingerprintTable& table,
                              unsigned reps) {
  std::vector<std::uint32_t> out(table.padded_size());
  std::mt19937_64 rng(3);
  std::uint64_t sink = 0;
  double best = 0;
  for (int trial = 0; trial < 5; ++trial) {
    const Clock::time_point start = Clock::now();
    for (unsigned r = 0; r < reps; ++r) {
      const beat::FingerprintFields one{static_cast<std::uint32_t>(r % 4), 12, r % 900, r % 3};
      batching::distances(path, one, table, out.data());
      sink += out[r % table.size()];
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::max(best, static_cast<double>(reps) * static_cast<double>(table.size()) / s);
  }
  if (sink == 42) std::fputs("", stdout);  // keep the results live
  return best;
}

void bench_similarity(unsigned reps) {
  std::mt19937_64 rng(2);
  batching::FingerprintTable table(1024);
  for (int i = 0; i < 1024; ++i)
    table.push_back({static_cast<std::uint32_t>(rng() % 4), static_cast<std::uint32_t>(rng() % 30),
                     static_cast<std::uint32_t>(rng() % 1000),
                     static_cast<std::uint32_t>(rng() % 3)});
  const double scalar = comparisons_per_second(batching::SimdPath::kScalar, table, reps);
  std::printf(
      "{\"bench\":\"similarity\",\"path\":\"scalar\",\"target\":\"scalar\","
      "\"comparisons_per_second\":%.4g}\n",
      scalar);
  double best = 0;
  std::string best_target;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const double simd = comparisons_per_second(batching::SimdPath::kAuto, table, reps);
    std::printf(
        "{\"bench\":\"similarity\",\"path\":\"simd\",\"target\":\"%s\","
        "\"comparisons_per_second\":%.4g}\n",
        hwy::TargetName(target), simd);
    if (simd > best) {
      best = simd;
      best_target = hwy::TargetName(target);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  std::printf("{\"bench\":\"similarity_ratio\",\"target\":\"%s\",\"simd_over_scalar\":%.3g}\n",
              best_target.c_str(), best / scalar);
  std::fflush(stdout);
}

constexpr std::uint32_t kHotBlocks = 8;
constexpr std::uint64_t kBlockBytes = std::uint64_t{16} << 20;
constexpr std::uint64_t kTaskBytes = kBlockBytes;

double locality_run(const std::string& beatd, const cpu_set_t& cpus, bool similarity,
                    std::uint32_t tasks) {
  beat::perf::forkjoin::BeatdSettings settings;
  settings.workers = 1;
  settings.cpus = cpus;
  settings.arena_bytes = std::uint64_t{256} << 20;  // the hot blocks, and room to spare
  // The whole submission in one chunk per intake, so grouping sees it all.
  settings.extra_toml =
      std::string("[batching]\ngrouping = \"") + (similarity ? "similarity" : "fifo") + "\"\n";
  beat::perf::forkjoin::BeatdPeer peer(beatd, settings);
  beat::Client& c = peer.client();
  const auto checksum = c.kernel_id("checksum");
  if (!checksum) throw std::runtime_error("beatd has no checksum kernel");
  std::mt19937_64 rng(5);
  std::vector<beat::ArenaBlock> blocks;
  for (std::uint32_t b = 0; b < kHotBlocks; ++b) {
    auto block = c.allocate(kBlockBytes);
    if (!block) throw std::runtime_error(block.status().message());
    for (std::uint64_t i = 0; i < kBlockBytes; i += 8) {
      const std::uint64_t v = rng();
      std::memcpy(block->data + i, &v, 8);
    }
    blocks.push_back(*block);
  }
  std::vector<std::uint64_t> expected(kHotBlocks);
  for (std::uint32_t b = 0; b < kHotBlocks; ++b)
    expected[b] = XXH3_64bits_withSeed(blocks[b].data, kTaskBytes, 9);
  // Submit in slices of 64 (the default intake_batch), block after block.
  double seconds = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<beat::TaskDescriptor> batch;
    for (std::uint32_t t = 0; t < tasks; ++t) {
      beat::ArenaBlock range = blocks[t % kHotBlocks];
      range.length = kTaskBytes;
      batch.push_back(beat::make_task(*checksum, t, {9}, range));
    }
    const Clock::time_point start = Clock::now();
    for (std::size_t from = 0; from < batch.size(); from += 64) {
      const std::size_t n = std::min<std::size_t>(64, batch.size() - from);
      if (beat::Status s = c.submit({batch.data() + from, n}); !s)
        throw std::runtime_error(s.message());
      std::vector<beat::Completion> out(n);
      std::size_t got = 0;
      while (got < n) {
        auto r = c.wait(std::span(out).subspan(got), 1, std::chrono::seconds(30));
        if (!r) throw std::runtime_error(r.status().message());
        got += *r;
      }
      for (const beat::Completion& x : out)
        if (x.status != beat::TaskStatus::kOk || x.result != expected[x.tag % kHotBlocks])
          throw std::runtime_error("locality: wrong checksum for task " + std::to_string(x.tag));
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (rep == 0 || s < seconds) seconds = s;  // best of 3
  }
  peer.stop();
  std::printf(
      "{\"bench\":\"locality\",\"grouping\":\"%s\",\"tasks\":%u,\"task_bytes\":%llu,"
      "\"blocks\":%u,\"block_bytes\":%llu,\"seconds\":%.4g}\n",
      similarity ? "similarity" : "fifo", tasks, static_cast<unsigned long long>(kTaskBytes),
      kHotBlocks, static_cast<unsigned long long>(kBlockBytes), seconds);
  std::fflush(stdout);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string beatd = BEAT_BEATD_PATH;
  const std::vector<std::string> all = {"formation", "similarity", "locality"};
  std::vector<std::string> benches = all;
  CLI::App app{
      "beat-batching-bench: batch formation cost, SIMD similarity speed, and what "
      "grouping buys end to end; JSON lines on stdout"};
  app.add_flag("--quick", quick, "fewer rounds and tasks (well under a minute)");
  app.add_option("--beatd", beatd, "the beatd binary of the locality run")->capture_default_str();
  app.add_option("--benches", benches,
                 "which to run, comma-separated (formation,similarity,locality)")
      ->delimiter(',')
      ->check(CLI::IsMember(all));
  CLI11_PARSE(app, argc, argv);

  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0) CPU_ZERO(&cpus);
  try {
    auto wanted = [&](const char* name) {
      return std::find(benches.begin(), benches.end(), name) != benches.end();
    };
    if (wanted("formation")) {
      const unsigned rounds = quick ? 2'000 : 20'000;
      for (const std::uint32_t kinds : {8u, 32u, 1u, 4096u}) {
        for (const std::uint32_t tasks : {100u, 20u, 256u}) {
          bench_formation(batching::Grouping::kSimilarity, tasks, kinds, rounds);
          bench_formation(batching::Grouping::kFifo, tasks, kinds, rounds);
        }
      }
    }
    if (wanted("similarity")) bench_similarity(quick ? 20'000 : 200'000);
    if (wanted("locality")) {
      const std::uint32_t tasks = quick ? 64 : 256;
      const double similar = locality_run(beatd, cpus, true, tasks);
      const double fifo = locality_run(beatd, cpus, false, tasks);
      std::printf("{\"bench\":\"locality_ratio\",\"fifo_over_similarity\":%.3g}\n", fifo / similar);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beat-batching-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
