#include "perf/kernels/peers.hpp"

#include <nmmintrin.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace beat::perf::kernels {

namespace {

// CRC-32C's reflected polynomial (Castagnoli et al., 1993; RFC 3720 B.4).
constexpr std::uint32_t kCastagnoli = 0x82F6'3B78u;

constexpr std::array<std::uint32_t, 256> make_crc_table() noexcept {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) != 0 ? kCastagnoli : 0u);
    table[b] = crc;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> kCrcTable = make_crc_table();

// The widest vectors this CPU has, chosen at load time (an ifunc). Copy
// and read are one loop each; the clones differ only in the instructions
// GCC picks for it.
[[gnu::target_clones("avx512f", "avx2", "default")]] void copy_words(
    const std::uint64_t* __restrict src, std::uint64_t* __restrict dst, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
}

[[gnu::target_clones("avx512f", "avx2", "default")]] std::uint64_t read_words(
    const std::uint64_t* src, std::size_t n) noexcept {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += src[i];
  return sum;
}

[[gnu::target("sse4.2")]] std::uint32_t crc32c_sse42(const unsigned char* p,
                                                     std::size_t n) noexcept {
  std::uint64_t reg = 0xFFFF'FFFFu;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, p + i, 8);
    reg = _mm_crc32_u64(reg, word);
  }
  auto reg32 = static_cast<std::uint32_t>(reg);
  for (; i < n; ++i) reg32 = _mm_crc32_u8(reg32, p[i]);
  return ~reg32;
}

}  // namespace

void stream_copy(std::span<const std::uint64_t> src, std::span<std::uint64_t> dst) noexcept {
  copy_words(src.data(), dst.data(), src.size());
}

std::uint64_t stream_read(std::span<const std::uint64_t> src) noexcept {
  return read_words(src.data(), src.size());
}

double stream_copy_parallel(std::span<const std::uint64_t> src, std::span<std::uint64_t> dst,
                            const cpu_set_t& cpus) {
  std::vector<int> ids;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &cpus)) ids.push_back(cpu);
  const std::size_t parts = ids.size();
  std::latch ready(static_cast<std::ptrdiff_t>(parts) + 1);
  std::latch go(1);
  std::vector<int> pin_errors(parts, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < parts; ++t) {
    threads.emplace_back([&, t] {
      if (!try_pin_to_cpu(ids[t])) pin_errors[t] = 1;
      const std::size_t begin = src.size() * t / parts;
      const std::size_t end = src.size() * (t + 1) / parts;
      ready.arrive_and_wait();
      go.wait();
      copy_words(src.data() + begin, dst.data() + begin, end - begin);
    });
  }
  ready.arrive_and_wait();
  const auto start = std::chrono::steady_clock::now();
  go.count_down();
  for (std::thread& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (std::size_t t = 0; t < parts; ++t)
    if (pin_errors[t] != 0)
      throw std::runtime_error("stream_copy_parallel: cannot pin a thread to CPU " +
                               std::to_string(ids[t]));
  return seconds;
}

std::uint32_t crc32c_table(std::span<const std::byte> data) noexcept {
  std::uint32_t crc = 0xFFFF'FFFFu;
  for (const std::byte b : data)
    crc = kCrcTable[(crc ^ static_cast<std::uint32_t>(b)) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

std::optional<std::uint32_t> crc32c_instruction(std::span<const std::byte> data) noexcept {
  if (!__builtin_cpu_supports("sse4.2")) return std::nullopt;
  return crc32c_sse42(reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

void histogram_naive(std::span<const std::byte> data,
                     std::span<std::uint64_t, 256> counts) noexcept {
  std::fill(counts.begin(), counts.end(), 0);
  for (const std::byte b : data) ++counts[static_cast<std::uint8_t>(b)];
}

bool try_pin_to_cpu(int cpu) noexcept {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return ::sched_setaffinity(0, sizeof one, &one) == 0;  // 0: the calling thread
}

void pin_to_cpu(int cpu) {
  if (!try_pin_to_cpu(cpu))
    throw std::runtime_error("sched_setaffinity to CPU " + std::to_string(cpu) + ": " +
                             std::strerror(errno));
}

}  // namespace beat::perf::kernels
