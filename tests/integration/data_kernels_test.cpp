// The built-in data kernels through a real 2-worker beatd: every kernel of
// the library (kernels/*.cc, *.cpp) on data in a client's arena, with the
// arena ranges named in its inline arguments, all submitted at once so the
// workers run them concurrently; each result checked exactly against a
// reference computed here (the float inputs are small integers, so every
// float result is exact). The unit tests (tests/kernels/) cover sizes,
// tails and every refusal; this checks what only a daemon adds: offsets
// resolved in the client's arena, completions routed by tag, exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <span>
#include <vector>

#include "client/client.hpp"
#include "daemon/batching/similarity.hpp"
#include "shared/fingerprint.hpp"
#include "tests/integration/completions.hpp"
#include "tests/integration/daemon_process.hpp"
#include "tests/support/watchdog.hpp"

namespace beat {
namespace {

using test::DaemonProcess;

// What one task must complete with.
struct Expect {
  TaskStatus status = TaskStatus::kOk;
  std::uint32_t detail = 0;
  std::uint64_t result = 0;
};

class DataKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = DaemonProcess::start();
    ASSERT_TRUE(daemon_);
    ClientOptions o{.socket_path = daemon_->socket_path(), .name = "data-kernels"};
    o.segment.arena_bytes = 96ull << 20;
    auto c = Client::connect(o);
    ASSERT_TRUE(c) << c.status().message();
    client_ = std::move(*c);
  }

  template <class T>
  std::span<T> alloc(std::size_t count) {
    auto b = client_->allocate(std::max<std::size_t>(count, 1) * sizeof(T), 64);
    EXPECT_TRUE(b) << b.status().message();
    if (!b) return {};
    blocks_[reinterpret_cast<std::byte*>(b->data)] = *b;
    return {reinterpret_cast<T*>(b->data), count};
  }
  // The arena range of a span allocated by alloc().
  template <class T>
  ArenaBlock block(std::span<T> s) const {
    const ArenaBlock& b = blocks_.at(reinterpret_cast<std::byte*>(s.data()));
    return {b.offset, s.size_bytes(), b.data};
  }
  template <class T>
  std::uint64_t offset(std::span<T> s) const {
    return block(s).offset;
  }

  void add(const char* kernel, std::initializer_list<std::uint64_t> args,
           std::optional<ArenaBlock> data, Expect expect) {
    const auto id = client_->kernel_id(kernel);
    ASSERT_TRUE(id) << id.status().message();
    const std::uint64_t tag = tasks_.size();
    tasks_.push_back(make_task(*id, tag, args, data));
    names_.push_back(kernel);
    expected_.push_back(expect);
  }

  // Runs everything added; checks each completion and that each tag came once.
  void run_and_check() {
    const std::vector<Completion> out = test::run_all(*client_, tasks_);
    ASSERT_EQ(out.size(), tasks_.size());
    std::vector<int> seen(tasks_.size(), 0);
    for (const Completion& c : out) {
      ASSERT_LT(c.tag, tasks_.size());
      ++seen[c.tag];
      const Expect& e = expected_[c.tag];
      EXPECT_EQ(c.status, e.status) << names_[c.tag] << " (tag " << c.tag << ")";
      EXPECT_EQ(c.detail, e.detail) << names_[c.tag] << " (tag " << c.tag << ")";
      EXPECT_EQ(c.result, e.result) << names_[c.tag] << " (tag " << c.tag << ")";
    }
    for (std::size_t t = 0; t < seen.size(); ++t) EXPECT_EQ(seen[t], 1) << names_[t];
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::map<std::byte*, ArenaBlock> blocks_;
  std::vector<TaskDescriptor> tasks_;
  std::vector<const char*> names_;
  std::vector<Expect> expected_;
};

std::uint32_t crc32c_reference(std::span<const std::uint8_t> bytes) {
  std::uint32_t table[256];
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) != 0 ? 0x82F63B78u : 0);
    table[i] = c;
  }
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const std::uint8_t b : bytes) crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF];
  return ~crc;
}

std::uint64_t f64_bits(double d) { return std::bit_cast<std::uint64_t>(d); }
std::uint64_t f32_bits(float f) { return std::bit_cast<std::uint32_t>(f); }

TEST_F(DataKernels, EveryBuiltinGivesTheReferenceAnswerThroughTheDaemon) {
  test::ScopedWatchdog watchdog("DataKernels.Every", 120);
  std::mt19937_64 rng(5);
  constexpr std::size_t kN = 1'000'000;

  // crc32c over random bytes.
  auto bytes = alloc<std::uint8_t>(kN);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
  add("crc32c", {0}, block(bytes), {.result = crc32c_reference(bytes)});

  // BLAS-1 over small integers: every partial sum is exact in f32.
  auto x = alloc<float>(kN), y = alloc<float>(kN), ax = alloc<float>(kN), ys = alloc<float>(kN);
  double sum = 0, dot = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    x[i] = static_cast<float>(static_cast<int>(rng() % 17) - 8);
    y[i] = static_cast<float>(static_cast<int>(rng() % 9) - 4);
    ys[i] = y[i];
    sum += x[i];
    dot += static_cast<double>(x[i]) * y[i];
  }
  add("sum_f32", {}, block(x), {.result = f64_bits(sum)});
  add("dot_f32", {offset(y)}, block(x), {.result = f64_bits(dot)});
  add("saxpy_f32", {offset(ys), f32_bits(2.0f)}, block(x), {.result = kN});
  add("map_f32", {offset(ax), 1, 0}, block(x), {.result = kN});  // abs

  // A 64 x 48 x 80 matrix product of small integers (exact in f32).
  constexpr std::size_t kM = 64, kK = 48, kCols = 80;
  auto a = alloc<float>(kM * kK), b = alloc<float>(kK * kCols), c = alloc<float>(kM * kCols);
  for (auto& v : a) v = static_cast<float>(static_cast<int>(rng() % 7) - 3);
  for (auto& v : b) v = static_cast<float>(static_cast<int>(rng() % 7) - 3);
  add("matmul_f32", {offset(b), offset(c), kK | (std::uint64_t{kCols} << 32)}, block(a),
      {.result = kM});

  // Sorts with scratch: u64, and f32 with NaNs, infinities and signed zeros.
  auto keys = alloc<std::uint64_t>(kN), scratch = alloc<std::uint64_t>(kN);
  for (auto& k : keys) k = rng() % 100'000;  // many duplicates
  std::vector<std::uint64_t> sorted_keys(keys.begin(), keys.end());
  std::sort(sorted_keys.begin(), sorted_keys.end());
  add("sort_u64", {offset(scratch)}, block(keys), {.result = kN});
  constexpr std::size_t kF = 100'000;
  auto floats = alloc<float>(kF), fscratch = alloc<float>(kF);
  const float specials[] = {std::bit_cast<float>(0xFFC00000u), -INFINITY, -0.0f, 0.0f, INFINITY,
                            std::bit_cast<float>(0x7FC00000u)};
  for (std::size_t i = 0; i < kF; ++i)
    floats[i] = i % 1000 < 6 ? specials[i % 1000]
                             : static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 8;
  // totalOrder: order by the bits mapped to a monotone key.
  const auto total_key = [](float f) {
    const auto u = std::bit_cast<std::uint32_t>(f);
    return (u & 0x80000000u) != 0 ? ~u : u | 0x80000000u;
  };
  std::vector<std::uint32_t> sorted_floats;
  for (float f : floats) sorted_floats.push_back(total_key(f));
  std::sort(sorted_floats.begin(), sorted_floats.end());
  add("sort_f32", {offset(fscratch)}, block(floats), {.result = kF});

  // Histograms.
  auto counts8 = alloc<std::uint64_t>(256);
  std::vector<std::uint64_t> expect8(256, 0);
  for (auto v : bytes) ++expect8[v];
  add("histogram_u8", {offset(counts8)}, block(bytes), {.result = kN});
  constexpr std::uint32_t kBins = 1000, kShift = 2;
  auto values = alloc<std::uint32_t>(kN);
  auto counts32 = alloc<std::uint64_t>(kBins);
  std::vector<std::uint64_t> expect32(kBins, 0);
  std::uint64_t outside = 0;
  for (auto& v : values) {
    v = static_cast<std::uint32_t>(rng() % 5000);
    if ((v >> kShift) < kBins)
      ++expect32[v >> kShift];
    else
      ++outside;
  }
  add("histogram_u32", {offset(counts32), kBins, kShift}, block(values), {.result = outside});

  // Top-k over a table of fingerprints: the query's own row comes first.
  constexpr std::size_t kRows = 10'000, kTopK = 8;
  auto table = alloc<std::uint64_t>(kRows);
  auto nearest = alloc<std::uint64_t>(kTopK);
  for (auto& f : table) f = rng();
  const std::uint64_t query = table[4321];
  std::vector<std::uint64_t> expect_topk;
  for (std::size_t r = 0; r < kRows; ++r)
    expect_topk.push_back(
        std::uint64_t{batching::distance(unpack_fingerprint(query), unpack_fingerprint(table[r]))}
            << 32 |
        r);
  std::sort(expect_topk.begin(), expect_topk.end());
  add("topk_fingerprints", {query, kTopK, offset(nearest)}, block(table), {.result = kTopK});

  // Refusals name the range: y past the arena's end, a misaligned x.
  add("dot_f32", {client_->layout().arena_bytes - 8}, block(x),
      {.status = TaskStatus::kInvalidRange, .detail = 0});
  const ArenaBlock bx = block(x);
  add("sum_f32", {}, ArenaBlock{bx.offset + 2, 8, bx.data + 2},
      {.status = TaskStatus::kInvalidRange, .detail = kInlineArgs});

  run_and_check();

  for (std::size_t i = 0; i < kN; ++i) {
    ASSERT_EQ(ys[i], 2.0f * x[i] + y[i]) << i;
    ASSERT_EQ(ax[i], std::abs(x[i])) << i;
  }
  for (std::size_t i = 0; i < kM; ++i)
    for (std::size_t j = 0; j < kCols; ++j) {
      float ref = 0;
      for (std::size_t p = 0; p < kK; ++p) ref += a[i * kK + p] * b[p * kCols + j];
      ASSERT_EQ(c[i * kCols + j], ref) << i << "," << j;
    }
  EXPECT_TRUE(std::equal(keys.begin(), keys.end(), sorted_keys.begin()));
  for (std::size_t i = 0; i < kF; ++i) ASSERT_EQ(total_key(floats[i]), sorted_floats[i]) << i;
  EXPECT_TRUE(std::equal(counts8.begin(), counts8.end(), expect8.begin()));
  EXPECT_TRUE(std::equal(counts32.begin(), counts32.end(), expect32.begin()));
  EXPECT_TRUE(std::equal(nearest.begin(), nearest.end(), expect_topk.begin()));
  EXPECT_EQ(nearest[0], 4321u);  // distance 0, its own row
}

}  // namespace
}  // namespace beat
