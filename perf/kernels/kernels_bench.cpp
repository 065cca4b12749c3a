// beat-kernels-bench: how fast are Beat's built-in data kernels, against
// their scalar forms, the obvious peers and this machine's memory bandwidth,
// on one core and through the daemon on 2 workers? (Issue #5.)
//
// Part 1, "kernel_1core" (in_process.cpp): the thread pinned to one CPU
// (sched_setaffinity), every kernel called as beatd calls it, through a
// KernelRegistry (register_builtin_kernels) with TaskContext(nullptr, 0,
// arena): forks run serially, over a buffer this program allocates as the
// "arena". Per question, every variant is timed round-robin (round_robin.hpp:
// a warm-up call each, then --rounds rounds, medians reported, ratios taken
// per round) next to two bandwidth references in the same rounds (peers.hpp:
// a STREAM-like copy and a read-only pass over a working set of the same
// size):
//   sum_f32, dot_f32, saxpy_f32, map_f32 (affine): the kernel (Highway, the
//     best target of this CPU) vs beat::blas1's scalar form. GB/s of the
//     bytes the operation must move: sum 4n, dot 8n, saxpy 12n (x and y
//     read, y written), map 8n (x read, y written; like the copy's, its
//     write-allocate read is not counted).
//   crc32c: the kernel (ISA-L) vs the SSE4.2 crc32 instruction in one chain
//     vs a byte-table CRC (Sarwate; at working sets past --slow-peer-bytes,
//     64 MiB, each call covers the next slice of that size, as it runs at
//     ~0.35 GB/s from any level of memory); checksum (XXH3-64) for
//     reference. GB/s of data read.
//   histogram_u8: the kernel vs ++counts[byte] over one array. GB/s read.
//   Sizes: working sets of --stream-bytes (default 256 KiB, in L2; 1 GiB,
//     well past this VM's ~300 MiB L3); every array a call touches counts.
//   sort_u64, sort_f32: the kernel run serially (merge sort over Highway's
//     VQSort leaves, with a scratch range) vs std::sort, on the same random
//     keys restored before every call (untimed); M keys/s and GB/s of keys.
//     --sort-elements (default 16 Ki keys: 128 KiB of u64, in L2; 8 Mi:
//     64 MiB of u64 + 64 MiB of scratch, past L2 but inside L3: both sorts
//     run at a fraction of a GB/s, far from any memory limit, and the larger
//     sizes would cost half a minute more per run).
//   matmul_f32: the kernel (matmul_tile's blocked SIMD engine) vs the naive
//     i-j-k loop (matmul_tile::naive, up to --naive-max = 512: at 1024 it
//     takes 5 s a call) vs OpenBLAS cblas_sgemm on one thread (when built
//     with OpenBLAS), n x n for --matmul-sizes (64, 256, 512, 1024),
//     GFLOP/s = 2n^3 / s. OpenBLAS 0.3.21 takes this CPU for a Prescott
//     (SSE3) and picks its kernels when the library loads, before main:
//     unless OPENBLAS_CORETYPE is set, the program sets it from the CPU's
//     features (SkylakeX with AVX-512, Haswell with AVX2) and re-executes
//     itself; the "openblas" rows name the core type used.
//   Each kernel's result is checked against its peer before timing (exact
//   for integers and wherever the forms must agree bit for bit, within the
//   documented bound elsewhere).
//
// Part 2, "kernel_beatd" (through_beatd.cpp, targets.hpp): two private beatd
// children, one with 1 worker and one with 2, each with one client whose
// arena holds the same data; per round, the whole workload is submitted to
// each daemon and timed from the first submit to the last completion. In
// the same rounds, rotated: the same descriptors run in this process by 1
// and 2 pinned threads (a static split, calling the kernels directly: what
// the work costs without rings and scheduler), and for the streaming
// workloads a 1-thread and a 2-thread copy of the same working set:
//   sum_f32, crc32c, histogram_u8 over --daemon-bytes (default 1 GiB) in
//   tasks of --chunk-bytes (4 MiB); matmul_f32 on --matmul-tasks (128)
//   256 x 256 x 256 tiles; sort_u64 of --sort-tasks (8) tasks of
//   --sort-task-elements (2 Mi) keys, restored before each run, untimed.
//   Every completion is checked: exactly against this process's result,
//   for sum_f32 and matmul_f32 too, whose kernels promise the same bits on
//   any number of workers.
//
// Output: one JSON object per measurement on stdout ("bench":
// "kernel_1core", "kernel_1core_ratio", "kernel_1core_check",
// "kernel_beatd", "kernel_beatd_ratio"), progress and a summary on stderr.
// Exit status 1 on any wrong result or failed task.
//
// Run time: 104-114 s with the defaults on the 2-core development VM, peak
// RSS 3.9 GB (the 1 GiB working sets, twice, plus both daemons' arenas,
// which this process maps); --quick (3 rounds, 64 MiB out-of-cache working
// sets, sorts of 2 Mi keys, matmul up to 256, 128 MiB through the daemons)
// about 17 s.
//
// Usage: beat-kernels-bench [--quick] [--rounds N] [--parts inproc,daemon]
//        [--kernels sum_f32,...] [--cpu N] [--stream-bytes B,...]
//        [--slow-peer-bytes B] [--matmul-sizes N,...] [--naive-max N]
//        [--sort-elements N,...] [--daemon-bytes B] [--chunk-bytes B]
//        [--matmul-tasks N] [--sort-tasks N] [--sort-task-elements N]
//        [--grouping similarity|fifo] [--beatd PATH] [--min-sample-ms MS]
#include "perf/kernels/kernels_bench.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>

#ifdef BEAT_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace beat::perf::kernels {

namespace {

std::vector<std::string>& summary_storage() {
  static std::vector<std::string> lines;
  return lines;
}

constexpr std::uint64_t kSplitMixGamma = 0x9E37'79B9'7F4A'7C15ull;

#ifdef BEAT_HAVE_OPENBLAS
// OpenBLAS reads OPENBLAS_CORETYPE in its load-time constructor, so setting
// it must precede the library's loading: set it and exec this program
// again (the variable being set ends the recursion).
void ensure_openblas_coretype(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* core = nullptr;
  if (__builtin_cpu_supports("avx512f")) {
    core = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2")) {
    core = "Haswell";
  }
  if (core == nullptr) return;  // OpenBLAS's own detection is all there is
  ::setenv("OPENBLAS_CORETYPE", core, 1);
  ::setenv("BEAT_KERNELS_BENCH_SET_CORETYPE", "1", 1);
  ::execv("/proc/self/exe", argv);
  std::fprintf(stderr, "beat-kernels-bench: re-exec with OPENBLAS_CORETYPE=%s failed: %s\n", core,
               std::strerror(errno));
}
#endif

}  // namespace

bool Options::wants(const std::string& kernel) const {
  return kernels.empty() || std::find(kernels.begin(), kernels.end(), kernel) != kernels.end();
}

void emit_json(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void summary_line(const std::string& line) {
  summary_storage().push_back(line);
  std::fprintf(stderr, "  %s\n", line.c_str());
}

const std::vector<std::string>& summary_lines() { return summary_storage(); }

std::string format(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, args);
  va_end(args);
  std::string out(n > 0 ? static_cast<std::size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, again);
  va_end(again);
  return out;
}

std::string bytes_name(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int unit = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024 && unit < 3) {
    v /= 1024;
    ++unit;
  }
  return v == static_cast<double>(static_cast<std::uint64_t>(v))
             ? format("%.0f %s", v, units[unit])
             : format("%.1f %s", v, units[unit]);
}

PageBuffer::PageBuffer(std::uint64_t bytes) : size_(bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error("mmap " + std::to_string(bytes) + " bytes: " + std::strerror(errno));
  data_ = static_cast<std::byte*>(p);
  std::memset(data_, 0, bytes);
}

PageBuffer::~PageBuffer() { ::munmap(data_, size_); }

std::uint64_t random_word(std::uint64_t seed, std::uint64_t index) noexcept {
  // SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) at position index.
  std::uint64_t z = seed * kSplitMixGamma + (index + 1) * kSplitMixGamma;
  z = (z ^ (z >> 30)) * 0xBF58'476D'1CE4'E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D0'49BB'1331'11EBull;
  return z ^ (z >> 31);
}

float random_float(std::uint64_t seed, std::uint64_t index) noexcept {
  // 24 random bits as an integer in [-2^23, 2^23), scaled by 2^-23: exact.
  const auto k = static_cast<std::int32_t>(random_word(seed, index) >> 40) - (1 << 23);
  return static_cast<float>(k) * 0x1p-23f;
}

void fill_random_words(std::uint64_t* words, std::uint64_t count, std::uint64_t seed) noexcept {
  for (std::uint64_t i = 0; i < count; ++i) words[i] = random_word(seed, i);
}

void fill_random_floats(float* values, std::uint64_t count, std::uint64_t seed) noexcept {
  for (std::uint64_t i = 0; i < count; ++i) values[i] = random_float(seed, i);
}

}  // namespace beat::perf::kernels

int main(int argc, char** argv) {
  namespace k = beat::perf::kernels;
#ifdef BEAT_HAVE_OPENBLAS
  k::ensure_openblas_coretype(argv);
#endif
  k::Options o;
  o.beatd = BEAT_BEATD_PATH;
  bool quick = false;
  double min_sample_ms = 20;
  const std::vector<std::string> all_parts = {"inproc", "daemon"};
  std::vector<std::string> parts = all_parts;
  const std::vector<std::string> all_kernels = {"sum_f32",  "dot_f32",  "saxpy_f32",
                                                "map_f32",  "crc32c",   "histogram_u8",
                                                "sort_u64", "sort_f32", "matmul_f32"};
  CLI::App app{
      "beat-kernels-bench: Beat's data kernels vs their scalar forms, peers and memory "
      "bandwidth, on one core and through beatd; JSON lines on stdout"};
  app.add_flag("--quick", quick,
               "3 rounds, 64 MiB out-of-cache working sets, matmul up to 256, smaller sorts "
               "and daemon workloads (~17 s); explicit options still win");
  auto* rounds = app.add_option("--rounds", o.rounds, "timed rounds (median reported)")
                     ->check(CLI::Range(1u, 1000u))
                     ->capture_default_str();
  app.add_option("--min-sample-ms", min_sample_ms, "shortest timed sample of one variant, ms")
      ->check(CLI::Range(0.0, 10'000.0))
      ->capture_default_str();
  app.add_option("--parts", parts, "which parts to run (inproc,daemon)")
      ->delimiter(',')
      ->check(CLI::IsMember(all_parts));
  app.add_option("--kernels", o.kernels, "which kernels to run (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember(all_kernels));
  app.add_option("--cpu", o.cpu, "CPU of the one-core part (default: the first one allowed)");
  auto* stream = app.add_option("--stream-bytes", o.stream_bytes,
                                "working sets of the streaming kernels, bytes")
                     ->delimiter(',')
                     ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 36));
  auto* matmul = app.add_option("--matmul-sizes", o.matmul_sizes, "n of the n x n matmuls")
                     ->delimiter(',')
                     ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{8192}));
  app.add_option("--slow-peer-bytes", o.slow_peer_bytes,
                 "bytes per call of the table CRC at larger working sets")
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 36))
      ->capture_default_str();
  app.add_option("--naive-max", o.naive_max, "largest n the naive matmul runs at")
      ->capture_default_str();
  auto* sort = app.add_option("--sort-elements", o.sort_elements, "elements of the one-core sorts")
                   ->delimiter(',')
                   ->check(CLI::Range(std::uint64_t{2}, std::uint64_t{1} << 31));
  auto* daemon_bytes =
      app.add_option("--daemon-bytes", o.daemon_bytes, "data streamed per daemon run, bytes")
          ->check(CLI::Range(std::uint64_t{1} << 20, std::uint64_t{1} << 34))
          ->capture_default_str();
  app.add_option("--chunk-bytes", o.chunk_bytes, "data per streaming task, bytes")
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 30))
      ->capture_default_str();
  auto* matmul_tasks =
      app.add_option("--matmul-tasks", o.matmul_tasks, "256 x 256 matmul tasks per daemon run")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{4096}))
          ->capture_default_str();
  app.add_option("--sort-tasks", o.sort_tasks, "sort_u64 tasks per daemon run")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1024}))
      ->capture_default_str();
  auto* sort_task =
      app.add_option("--sort-task-elements", o.sort_task_elements, "keys per sort_u64 task")
          ->check(CLI::Range(std::uint64_t{2}, std::uint64_t{1} << 28))
          ->capture_default_str();
  app.add_option("--grouping", o.grouping,
                 "the daemons' [batching] grouping (default: the daemon's own)")
      ->check(CLI::IsMember({"similarity", "fifo"}));
  app.add_option("--beatd", o.beatd, "the beatd binary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (quick) {
    if (rounds->count() == 0) o.rounds = 3;
    if (stream->count() == 0) o.stream_bytes = {std::uint64_t{256} << 10, std::uint64_t{64} << 20};
    if (matmul->count() == 0) o.matmul_sizes = {64, 256};
    if (sort->count() == 0) o.sort_elements = {std::uint64_t{1} << 14, std::uint64_t{1} << 21};
    if (daemon_bytes->count() == 0) o.daemon_bytes = std::uint64_t{128} << 20;
    if (matmul_tasks->count() == 0) o.matmul_tasks = 32;
    if (sort_task->count() == 0) o.sort_task_elements = std::uint64_t{1} << 20;
  }
  o.min_sample = std::chrono::duration<double>(min_sample_ms / 1000);
  CPU_ZERO(&o.cpus);
  if (::sched_getaffinity(0, sizeof o.cpus, &o.cpus) != 0) {
    std::fprintf(stderr, "beat-kernels-bench: sched_getaffinity: %s\n", std::strerror(errno));
    return 1;
  }
  if (o.cpu < 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &o.cpus)) {
        o.cpu = cpu;
        break;
      }
    }
  }
#ifdef BEAT_HAVE_OPENBLAS
  // The pthread build of OpenBLAS starts its thread pool when it loads;
  // every sgemm here runs on the calling thread.
  openblas_set_num_threads(1);
#endif

  try {
    const auto wanted = [&](const char* part) {
      return std::find(parts.begin(), parts.end(), part) != parts.end();
    };
    if (wanted("inproc")) k::run_in_process(o);
    if (wanted("daemon")) k::run_through_beatd(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beat-kernels-bench: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "\nsummary (medians of %u rounds; ratios are per-round medians):\n",
               o.rounds);
  for (const std::string& line : k::summary_lines()) std::fprintf(stderr, "  %s\n", line.c_str());
  return 0;
}
