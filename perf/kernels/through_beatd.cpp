// Part 2 of beat-kernels-bench: the kernels through real beatd children
// with 1 and 2 workers, against the same tasks run in process on 1 and 2
// pinned threads and, for the streaming kernels, 1- and 2-thread
// STREAM-like copies of the same working set, all in the same rounds
// (kernels_bench.cpp's header says what and why; targets.hpp how each
// target runs the tasks).
//
// Both daemons run for the whole part, each with one client session whose
// arena holds the same data at the same offsets in its own block; a daemon
// that is not being measured has its workers parked (idle_spin_us = 100),
// so it takes no CPU from the other. The in-process targets work in the
// 1-worker daemon's block while that daemon is idle.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "kernels/blas1.hpp"
#include "kernels/matmul_tile.hpp"
#include "perf/kernels/kernels_bench.hpp"
#include "perf/kernels/peers.hpp"
#include "perf/kernels/round_robin.hpp"
#include "perf/kernels/targets.hpp"

namespace beat::perf::kernels {

namespace {

constexpr std::uint64_t kSeedFloats = 11;
constexpr std::uint64_t kSeedBytes = 12;
constexpr std::uint64_t kSeedA = 13;
constexpr std::uint64_t kSeedB = 14;
constexpr std::uint64_t kSeedKeys = 15;
constexpr std::uint64_t kTile = 256;  // matmul tasks are kTile x kTile x kTile
constexpr std::uint64_t kTileBytes = kTile * kTile * sizeof(float);
constexpr std::uint64_t kCountersBytes = 256 * sizeof(std::uint64_t);
constexpr std::uint64_t kAlign = 4096;
// A poison byte for outputs before each run, so a task that wrote nothing
// cannot pass as one that wrote last round's right answer.
constexpr int kPoison = 0xFF;

std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }

// Where everything lives in a client's block (offsets from the block).
struct Layout {
  std::uint64_t stream = 0;  // daemon_bytes of data, chunk after chunk
  std::uint64_t counters = 0;
  std::uint64_t mat_b = 0;
  std::uint64_t mat_a = 0;  // matmul_tasks tiles of A, then as many of C
  std::uint64_t mat_c = 0;
  std::uint64_t sort_data = 0;
  std::uint64_t sort_scratch = 0;
  std::uint64_t total = 0;

  explicit Layout(const Options& o) {
    const std::uint64_t chunks = o.daemon_bytes / o.chunk_bytes;
    const std::uint64_t sort_bytes = o.sort_tasks * o.sort_task_elements * 8;
    counters = round_up(o.daemon_bytes, kAlign);
    mat_b = round_up(counters + chunks * kCountersBytes, kAlign);
    mat_a = mat_b + kTileBytes;
    mat_c = mat_a + o.matmul_tasks * kTileBytes;
    sort_data = mat_c + o.matmul_tasks * kTileBytes;
    sort_scratch = sort_data + round_up(sort_bytes, kAlign);
    total = sort_scratch + round_up(sort_bytes, kAlign);
  }
};

// The CRC-32C a task must return: the crc32 instruction's, or the table's
// on a CPU without SSE4.2.
std::uint32_t crc32c_reference(std::span<const std::byte> data) {
  const std::optional<std::uint32_t> fast = crc32c_instruction(data);
  return fast ? *fast : crc32c_table(data);
}

// Throws unless every completion of d's last run has its tag's index, kOk
// and ok(index, completion).
void check_completions(const Target& d, const char* kernel,
                       const std::function<bool(std::size_t, const Completion&)>& ok) {
  const std::vector<Completion>& done = d.completions();
  for (std::size_t i = 0; i < done.size(); ++i) {
    const Completion& c = done[i];
    if (c.tag != i || c.status != TaskStatus::kOk || !ok(i, c))
      throw std::runtime_error(format(
          "%s on %s: task %zu completed with tag %llu, status %u, detail "
          "%u, result %llu: wrong",
          kernel, d.name().c_str(), i, static_cast<unsigned long long>(c.tag),
          static_cast<unsigned>(c.status), c.detail, static_cast<unsigned long long>(c.result)));
  }
}

struct Workload {
  const char* kernel;
  std::string label;  // for the summary: "1 GiB in 256 tasks"
  double bytes = 0;   // counted bytes per run (0: no GB/s)
  double flops = 0;
  double elements = 0;
  bool with_copies = false;  // a streaming workload: measured next to the copies
  std::function<std::vector<TaskDescriptor>(Target&)> tasks;
  std::function<void(Target&)> prepare;  // untimed, before each run; may be empty
  std::function<void(const Target&)> verify;
};

// The part's state: both daemons, the in-process targets, and the copies'
// buffer (daemon_bytes: half read, half written, the streaming workloads'
// working set).
struct ThroughBeatd {
  explicit ThroughBeatd(const Options& options)
      : o(options),
        layout(options),
        copy(options.daemon_bytes),
        w1(options.beatd, 1, options.cpus, layout.total, toml(options)),
        w2(options.beatd, 2, options.cpus, layout.total, toml(options)),
        in1(w1, one_cpu(options)),
        in2(w1, options.cpus) {}

  static std::string toml(const Options& o) {
    return o.grouping.empty() ? "" : "[batching]\ngrouping = \"" + o.grouping + "\"\n";
  }
  static cpu_set_t one_cpu(const Options& o) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(o.cpu, &one);
    return one;
  }

  // Times `w` on every target, round-robin with the copies when it streams.
  void measure(const Workload& w);
  // Copies w1's bytes [local, local + length) to the same place in w2's.
  void mirror(std::uint64_t local, std::uint64_t length) {
    std::memcpy(w2.at(local), w1.at(local), length);
  }
  void stop() {
    w1.stop();
    w2.stop();
  }

  const Options& o;
  Layout layout;
  PageBuffer copy;
  BeatdTarget w1;
  BeatdTarget w2;
  InProcessTarget in1;
  InProcessTarget in2;
};

void ThroughBeatd::measure(const Workload& w) {
  std::vector<Variant> variants;
  const std::uint64_t words = copy.size() / 2 / 8;
  const std::span<const std::uint64_t> src(copy.as<std::uint64_t>(), words);
  const std::span<std::uint64_t> dst(copy.as<std::uint64_t>(words * 8), words);
  const cpu_set_t one = one_cpu(o);
  if (w.with_copies) {
    variants.push_back({"copy1", [=] { stream_copy_parallel(src, dst, one); }, {}, {}});
    variants.push_back({"copy2", [=, this] { stream_copy_parallel(src, dst, o.cpus); }, {}, {}});
  }
  std::vector<std::shared_ptr<std::vector<TaskDescriptor>>> task_lists;
  for (Target* target : std::initializer_list<Target*>{&in1, &in2, &w1, &w2}) {
    auto tasks = std::make_shared<std::vector<TaskDescriptor>>(w.tasks(*target));
    task_lists.push_back(tasks);
    Variant v{target->name(),
              [target, tasks] { target->run(*tasks); },
              {},
              [&w, target] { w.verify(*target); }};
    if (w.prepare) v.prepare = [&w, target] { w.prepare(*target); };
    variants.push_back(std::move(v));
  }
  const RoundTimes t = run_round_robin(variants, o.rounds, o.min_sample);

  const double copy_bytes = 2.0 * 8 * static_cast<double>(words);
  std::string summary = format("%s, %s:", w.kernel, w.label.c_str());
  for (const std::string& name : t.names) {
    const bool is_copy = name.rfind("copy", 0) == 0;
    const bool is_beatd = name.rfind("beatd", 0) == 0;
    const double s = median(t.seconds[t.index(name)]);
    const unsigned threads = name.back() == '1' ? 1 : 2;
    std::string line = format(
        "{\"bench\":\"kernel_beatd\",\"kernel\":\"%s\",\"variant\":\"%s\",\"%s\":%u,"
        "\"tasks\":%zu,\"rounds\":%zu,\"median_s\":%.6g",
        w.kernel, name.c_str(), is_beatd ? "workers" : "threads", threads,
        is_copy ? std::size_t{0} : task_lists[0]->size(), t.seconds[t.index(name)].size(), s);
    std::string part = " " + name;
    const double bytes = is_copy ? copy_bytes : w.bytes;
    if (bytes > 0) {
      line += format(",\"bytes\":%.0f,\"gbps\":%.4g", bytes, bytes / s / 1e9);
      part += format(" %.2f GB/s", bytes / s / 1e9);
      if (w.with_copies && !is_copy) {
        const std::string copy_name = threads == 1 ? "copy1" : "copy2";
        const double x = median_rate_ratio(t, name, bytes, copy_name, copy_bytes);
        line += format(",\"over_%s\":%.4g", copy_name.c_str(), x);
        part += format(" (%.2f %s)", x, copy_name.c_str());
      }
    }
    if (!is_copy && w.elements > 0) {
      line += format(",\"melems_per_s\":%.4g", w.elements / s / 1e6);
      part += format(" %.1f Melem/s", w.elements / s / 1e6);
    }
    if (!is_copy && w.flops > 0) {
      line += format(",\"gflops\":%.4g", w.flops / s / 1e9);
      part += format(" %.2f GFLOP/s", w.flops / s / 1e9);
    }
    emit_json(line + "}");
    summary += part + ";";
  }
  // 1 -> 2 through the daemon and in process (the machine's own scaling
  // for this work), and each daemon against its in-process ceiling.
  std::vector<std::pair<std::string, std::string>> ratios = {{"beatd_w2", "beatd_w1"},
                                                             {"inproc2", "inproc1"},
                                                             {"beatd_w1", "inproc1"},
                                                             {"beatd_w2", "inproc2"}};
  if (w.with_copies) ratios.push_back({"copy2", "copy1"});
  for (const auto& [of, over] : ratios) {
    const double x = median_rate_ratio(t, of, 1, over, 1);
    emit_json(
        format("{\"bench\":\"kernel_beatd_ratio\",\"kernel\":\"%s\",\"of\":\"%s\","
               "\"over\":\"%s\",\"median_speed_ratio\":%.4g}",
               w.kernel, of.c_str(), over.c_str(), x));
    summary += format(" %s/%s %.2fx", of.c_str(), over.c_str(), x);
  }
  summary_line(summary);
}

}  // namespace

void run_through_beatd(const Options& o) {
  if (o.daemon_bytes % o.chunk_bytes != 0 || o.chunk_bytes % 64 != 0)
    throw std::runtime_error(
        format("--daemon-bytes (%llu) must be a whole number of "
               "--chunk-bytes (%llu), a multiple of 64",
               static_cast<unsigned long long>(o.daemon_bytes),
               static_cast<unsigned long long>(o.chunk_bytes)));
  if (!o.wants("sum_f32") && !o.wants("crc32c") && !o.wants("histogram_u8") &&
      !o.wants("matmul_f32") && !o.wants("sort_u64"))
    return;  // none of this part's workloads was asked for
  const Layout layout(o);
  std::fprintf(stderr, "part 2: through beatd (%s), 1 and 2 workers; %s of arena each; %u rounds\n",
               o.beatd.c_str(), bytes_name(layout.total).c_str(), o.rounds);
  ThroughBeatd b(o);
  const std::uint64_t chunks = o.daemon_bytes / o.chunk_bytes;
  const std::uint64_t chunk = o.chunk_bytes;
  const std::string stream_label =
      format("%s in %llu tasks of %s", bytes_name(o.daemon_bytes).c_str(),
             static_cast<unsigned long long>(chunks), bytes_name(chunk).c_str());

  if (o.wants("sum_f32")) {
    float* x = reinterpret_cast<float*>(b.w1.at(layout.stream));
    fill_random_floats(x, o.daemon_bytes / 4, kSeedFloats);
    b.mirror(layout.stream, o.daemon_bytes);
    std::vector<std::uint64_t> want(chunks);
    for (std::uint64_t i = 0; i < chunks; ++i)
      want[i] = std::bit_cast<std::uint64_t>(
          blas1::sum_simd(std::span<const float>(x + i * chunk / 4, chunk / 4)));
    Workload w{"sum_f32", stream_label, static_cast<double>(o.daemon_bytes), 0, 0, true, {}, {},
               {}};
    w.tasks = [&](Target& d) {
      const std::uint32_t id = d.kernel("sum_f32");
      std::vector<TaskDescriptor> t;
      for (std::uint64_t i = 0; i < chunks; ++i)
        t.push_back(make_task(id, i, {}, d.range(layout.stream + i * chunk, chunk)));
      return t;
    };
    w.verify = [&](const Target& d) {
      check_completions(d, "sum_f32",
                        [&](std::size_t i, const Completion& c) { return c.result == want[i]; });
    };
    b.measure(w);
  }
  if (o.wants("crc32c") || o.wants("histogram_u8")) {
    const std::byte* data = b.w1.at(layout.stream);
    fill_random_words(reinterpret_cast<std::uint64_t*>(b.w1.at(layout.stream)), o.daemon_bytes / 8,
                      kSeedBytes);
    b.mirror(layout.stream, o.daemon_bytes);
    if (o.wants("crc32c")) {
      std::vector<std::uint64_t> want(chunks);
      for (std::uint64_t i = 0; i < chunks; ++i)
        want[i] = crc32c_reference(std::span<const std::byte>(data + i * chunk, chunk));
      Workload w{"crc32c", stream_label, static_cast<double>(o.daemon_bytes), 0, 0, true, {}, {},
                 {}};
      w.tasks = [&](Target& d) {
        const std::uint32_t id = d.kernel("crc32c");
        std::vector<TaskDescriptor> t;
        for (std::uint64_t i = 0; i < chunks; ++i)
          t.push_back(make_task(id, i, {0}, d.range(layout.stream + i * chunk, chunk)));
        return t;
      };
      w.verify = [&](const Target& d) {
        check_completions(d, "crc32c",
                          [&](std::size_t i, const Completion& c) { return c.result == want[i]; });
      };
      b.measure(w);
    }
    if (o.wants("histogram_u8")) {
      std::vector<std::array<std::uint64_t, 256>> want(chunks);
      for (std::uint64_t i = 0; i < chunks; ++i)
        histogram_naive(std::span<const std::byte>(data + i * chunk, chunk), want[i]);
      Workload w{"histogram_u8",
                 stream_label,
                 static_cast<double>(o.daemon_bytes),
                 0,
                 0,
                 true,
                 {},
                 {},
                 {}};
      w.tasks = [&](Target& d) {
        const std::uint32_t id = d.kernel("histogram_u8");
        std::vector<TaskDescriptor> t;
        for (std::uint64_t i = 0; i < chunks; ++i)
          t.push_back(make_task(id, i, {d.offset(layout.counters + i * kCountersBytes)},
                                d.range(layout.stream + i * chunk, chunk)));
        return t;
      };
      w.prepare = [&](Target& d) {
        std::memset(d.at(layout.counters), kPoison, chunks * kCountersBytes);
      };
      w.verify = [&](const Target& d) {
        check_completions(d, "histogram_u8", [&](std::size_t i, const Completion& c) {
          return c.result == chunk && std::memcmp(d.at(layout.counters + i * kCountersBytes),
                                                  want[i].data(), kCountersBytes) == 0;
        });
      };
      b.measure(w);
    }
  }
  if (o.wants("matmul_f32")) {
    float* bm = reinterpret_cast<float*>(b.w1.at(layout.mat_b));
    float* a = reinterpret_cast<float*>(b.w1.at(layout.mat_a));
    fill_random_floats(bm, kTile * kTile, kSeedB);
    fill_random_floats(a, o.matmul_tasks * kTile * kTile, kSeedA);
    b.mirror(layout.mat_b, (1 + o.matmul_tasks) * kTileBytes);
    // The kernel promises the same bits serially and on any number of
    // workers (matmul_tile.hpp): the reference is the same engine here.
    std::vector<float> want(o.matmul_tasks * kTile * kTile);
    for (std::uint64_t i = 0; i < o.matmul_tasks; ++i)
      if (!matmul_tile::blocked(a + i * kTile * kTile, bm, want.data() + i * kTile * kTile, kTile,
                                kTile, kTile))
        throw std::runtime_error("matmul_tile::blocked could not allocate its workspace");
    const double flops = 2.0 * kTile * kTile * kTile * static_cast<double>(o.matmul_tasks);
    Workload w{
        "matmul_f32",
        format("%llu tiles of 256 x 256 x 256", static_cast<unsigned long long>(o.matmul_tasks)),
        0,
        flops,
        0,
        false,
        {},
        {},
        {}};
    w.tasks = [&](Target& d) {
      const std::uint32_t id = d.kernel("matmul_f32");
      std::vector<TaskDescriptor> t;
      for (std::uint64_t i = 0; i < o.matmul_tasks; ++i)
        t.push_back(make_task(
            id, i,
            {d.offset(layout.mat_b), d.offset(layout.mat_c + i * kTileBytes), kTile | kTile << 32},
            d.range(layout.mat_a + i * kTileBytes, kTileBytes)));
      return t;
    };
    w.prepare = [&](Target& d) {
      std::memset(d.at(layout.mat_c), kPoison, o.matmul_tasks * kTileBytes);
    };
    w.verify = [&](const Target& d) {
      check_completions(d, "matmul_f32", [&](std::size_t i, const Completion& c) {
        return c.result == kTile && std::memcmp(d.at(layout.mat_c + i * kTileBytes),
                                                want.data() + i * kTile * kTile, kTileBytes) == 0;
      });
    };
    b.measure(w);
  }
  if (o.wants("sort_u64")) {
    const std::uint64_t n = o.sort_task_elements;
    const std::uint64_t bytes = n * 8;
    std::vector<std::uint64_t> pristine(o.sort_tasks * n);
    fill_random_words(pristine.data(), pristine.size(), kSeedKeys);
    std::vector<std::uint64_t> want(pristine);
    for (std::uint64_t i = 0; i < o.sort_tasks; ++i)
      std::sort(want.begin() + static_cast<std::ptrdiff_t>(i * n),
                want.begin() + static_cast<std::ptrdiff_t>((i + 1) * n));
    Workload w{"sort_u64",
               format("%llu tasks of %llu keys", static_cast<unsigned long long>(o.sort_tasks),
                      static_cast<unsigned long long>(n)),
               static_cast<double>(o.sort_tasks * bytes),
               0,
               static_cast<double>(o.sort_tasks * n),
               false,
               {},
               {},
               {}};
    w.tasks = [&](Target& d) {
      const std::uint32_t id = d.kernel("sort_u64");
      std::vector<TaskDescriptor> t;
      for (std::uint64_t i = 0; i < o.sort_tasks; ++i)
        t.push_back(make_task(id, i, {d.offset(layout.sort_scratch + i * bytes)},
                              d.range(layout.sort_data + i * bytes, bytes)));
      return t;
    };
    w.prepare = [&](Target& d) {
      std::memcpy(d.at(layout.sort_data), pristine.data(), pristine.size() * 8);
    };
    w.verify = [&](const Target& d) {
      check_completions(d, "sort_u64", [&](std::size_t i, const Completion& c) {
        return c.result == n &&
               std::memcmp(d.at(layout.sort_data + i * bytes), want.data() + i * n, bytes) == 0;
      });
    };
    b.measure(w);
  }
  b.stop();
}

}  // namespace beat::perf::kernels
