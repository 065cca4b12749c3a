// What the two parts of beat-kernels-bench share: its options, the memory
// it measures in, and how it reports (JSON lines on stdout, a summary on
// stderr). The program's header comment (kernels_bench.cpp) says what it
// measures.
//
// Thread-safety: one thread (the benchmark's main thread).
#pragma once

#include <sched.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace beat::perf::kernels {

struct Options {
  // ---- both parts ----
  unsigned rounds = 7;  // timed rounds after the warm-up
  // Shortest timed sample of one variant (calls are repeated to reach it).
  std::chrono::duration<double> min_sample{0.02};
  cpu_set_t cpus{};  // the CPUs the program started with

  // ---- one core, in process ----
  int cpu = -1;  // the CPU part 1 pins its thread to; -1: the first of `cpus`
  // Working sets of the streaming kernels (every array a call touches).
  std::vector<std::uint64_t> stream_bytes = {std::uint64_t{256} << 10, std::uint64_t{1} << 30};
  // Bytes per call of the slowest peer (the table CRC, ~0.35 GB/s) at
  // larger working sets: it covers them slice by slice.
  std::uint64_t slow_peer_bytes = std::uint64_t{64} << 20;
  std::vector<std::uint64_t> matmul_sizes = {64, 256, 512, 1024};
  std::uint64_t naive_max = 512;  // largest n the naive triple loop runs at
  std::vector<std::uint64_t> sort_elements = {std::uint64_t{1} << 14, std::uint64_t{1} << 23};

  // ---- through beatd ----
  std::string beatd;
  std::uint64_t daemon_bytes = std::uint64_t{1} << 30;  // data streamed per run
  std::uint64_t chunk_bytes = std::uint64_t{4} << 20;   // data per task
  std::uint64_t matmul_tasks = 128;                     // 256 x 256 tiles
  std::uint64_t sort_tasks = 8;
  std::uint64_t sort_task_elements = std::uint64_t{1} << 21;
  // The daemons' [batching] grouping ("similarity", "fifo"); empty: the
  // daemon's default.
  std::string grouping;

  std::vector<std::string> kernels;  // which to run (names as in `beatctl kernels`)

  bool wants(const std::string& kernel) const;
};

// Part 1: each kernel's SIMD form, scalar form and peers on one pinned
// core, in this process, against a STREAM-like copy and read. Throws
// std::runtime_error on a wrong result or a failed call.
void run_in_process(const Options& options);

// Part 2: the kernels through private beatd children with 1 and 2 workers,
// against 1- and 2-thread copies. Throws std::runtime_error on a wrong
// result, a failed task or a daemon that fails.
void run_through_beatd(const Options& options);

// Writes one JSON line to stdout and flushes it.
void emit_json(const std::string& line);

// Keeps a line for the summary printed on stderr at the end, and prints it
// now as progress.
void summary_line(const std::string& line);
const std::vector<std::string>& summary_lines();

// printf into a std::string.
[[gnu::format(printf, 1, 2)]] std::string format(const char* fmt, ...);

// "256 KiB", "1 GiB": the sizes of the summary.
std::string bytes_name(std::uint64_t bytes);

// Page-aligned anonymous memory, faulted in (written) at construction so
// that no timed call takes page faults; unmapped on destruction. Ordinary
// 4 KiB pages, like the memfd arena beatd shares with a client (this VM's
// shmem_enabled is "never"): in-process and daemon runs see the same TLB
// behaviour. Throws std::runtime_error when mmap fails.
class PageBuffer {
 public:
  explicit PageBuffer(std::uint64_t bytes);
  ~PageBuffer();
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  std::byte* data() const noexcept { return data_; }
  std::uint64_t size() const noexcept { return size_; }
  template <class T>
  T* as(std::uint64_t offset = 0) const noexcept {
    return reinterpret_cast<T*>(data_ + offset);
  }

 private:
  std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
};

// Deterministic pseudo-random contents (SplitMix64 of the index and seed),
// so that a check can regenerate what an array held before a kernel ran.
std::uint64_t random_word(std::uint64_t seed, std::uint64_t index) noexcept;
// Uniform in [-1, 1), a multiple of 2^-23: finite, never -0.
float random_float(std::uint64_t seed, std::uint64_t index) noexcept;
void fill_random_words(std::uint64_t* words, std::uint64_t count, std::uint64_t seed) noexcept;
void fill_random_floats(float* values, std::uint64_t count, std::uint64_t seed) noexcept;

}  // namespace beat::perf::kernels
