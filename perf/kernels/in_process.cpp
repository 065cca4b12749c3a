// Part 1 of beat-kernels-bench: every kernel on one pinned core, in process,
// as beatd calls it, against its scalar form, its peers and a STREAM-like
// copy and read (what is measured and why: kernels_bench.cpp's header).
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/blas1.hpp"
#include "kernels/kernel_registry.hpp"
#include "kernels/matmul_tile.hpp"
#include "perf/kernels/kernels_bench.hpp"
#include "perf/kernels/peers.hpp"
#include "perf/kernels/round_robin.hpp"

#ifdef BEAT_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace beat::perf::kernels {

namespace {

using Args = std::array<std::uint64_t, kInlineArgs>;

// The seeds of the arrays (any distinct values).
constexpr std::uint64_t kSeedX = 1;
constexpr std::uint64_t kSeedY = 2;
constexpr std::uint64_t kSeedBytes = 3;
constexpr std::uint64_t kSeedKeys = 4;
// saxpy's a and map's affine a, b: powers of two, so a*x is exact and the
// fused (SIMD) and unfused (scalar) forms round the same sum once each:
// their results must be the same bits.
constexpr float kSaxpyA = 0x1p-10f;
constexpr float kMapA = 0.5f;
constexpr float kMapB = 0.25f;
// Where histogram_u8's 256 counters go: after the data, on their own page.
constexpr std::uint64_t kCountersBytes = 256 * sizeof(std::uint64_t);
constexpr std::uint64_t kPage = 4096;

std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }

// What one row of a question measured: its variant's work per call.
struct Row {
  std::string variant;
  std::string what;     // the implementation, for the JSON line
  double bytes = 0;     // counted bytes per call (0: not a streaming row)
  double flops = 0;     // floating-point operations per call (matmul)
  double elements = 0;  // keys per call (sort)
};

// Calls kernels as a beatd worker does, on a TaskContext without a worker
// (forks run serially) whose arena is the whole buffer.
class KernelCaller {
 public:
  explicit KernelCaller(const PageBuffer& arena)
      : arena_(arena), ctx_(nullptr, 0, ArenaView{arena.data(), arena.size()}) {
    register_builtin_kernels(registry_);
  }

  KernelFn fn(const std::string& name) const {
    const std::optional<std::uint32_t> id = registry_.find(name);
    if (!id) throw std::runtime_error("no built-in kernel named " + name);
    return registry_.at(*id).fn;
  }

  // Runs `fn` on the arena range [offset, offset + length); throws unless
  // the task succeeds.
  std::uint64_t call(KernelFn fn, const char* name, std::uint64_t offset, std::uint64_t length,
                     const Args& args) {
    const KernelResult r = fn(ctx_, KernelArgs(args), ArenaView{arena_.data() + offset, length});
    if (r.status != TaskStatus::kOk)
      throw std::runtime_error(format("%s failed: status %u, detail %u", name,
                                      static_cast<unsigned>(r.status), r.detail));
    return r.value;
  }

 private:
  const PageBuffer& arena_;
  KernelRegistry registry_;
  TaskContext ctx_;
};

// Writes the JSON lines and the summary line of one question.
void report(const char* kernel, const std::string& size_label, std::uint64_t size_value,
            const char* size_key, const RoundTimes& t, const std::vector<Row>& rows,
            const std::vector<std::pair<std::string, std::string>>& ratios) {
  const auto row_of = [&](const std::string& name) -> const Row* {
    for (const Row& r : rows)
      if (r.variant == name) return &r;
    return nullptr;
  };
  const Row* copy = row_of("copy");
  const Row* read = row_of("read");
  std::string summary = format("%s @ %s:", kernel, size_label.c_str());
  for (const Row& r : rows) {
    const std::size_t v = t.index(r.variant);
    const double s = median(t.seconds[v]);
    std::string line = format(
        "{\"bench\":\"kernel_1core\",\"kernel\":\"%s\",\"variant\":\"%s\",\"what\":\"%s\","
        "\"%s\":%llu,\"rounds\":%zu,\"calls_per_sample\":%zu,\"median_s\":%.6g",
        kernel, r.variant.c_str(), r.what.c_str(), size_key,
        static_cast<unsigned long long>(size_value), t.seconds[v].size(), t.calls[v], s);
    std::string part = format(" %s", r.variant.c_str());
    if (r.bytes > 0) {
      line += format(",\"bytes_per_call\":%.0f,\"gbps\":%.4g", r.bytes, r.bytes / s / 1e9);
      part += format(" %.2f GB/s", r.bytes / s / 1e9);
      const bool is_ref = r.variant == "copy" || r.variant == "read";
      if (copy != nullptr && r.variant != "copy") {
        const double x = median_rate_ratio(t, r.variant, r.bytes, "copy", copy->bytes);
        line += format(",\"over_copy\":%.4g", x);
        if (!is_ref) part += format(" (%.2f copy", x);
      }
      if (read != nullptr && r.variant != "read") {
        const double x = median_rate_ratio(t, r.variant, r.bytes, "read", read->bytes);
        line += format(",\"over_read\":%.4g", x);
        if (!is_ref) part += format(", %.2f read)", x);
      }
    }
    if (r.elements > 0) {
      line += format(",\"melems_per_s\":%.4g", r.elements / s / 1e6);
      part += format(" %.1f Melem/s", r.elements / s / 1e6);
    }
    if (r.flops > 0) {
      line += format(",\"gflops\":%.4g", r.flops / s / 1e9);
      part += format(" %.2f GFLOP/s", r.flops / s / 1e9);
    }
    emit_json(line + "}");
    summary += part + ";";
  }
  const auto work = [&](const std::string& name) {
    const Row* r = row_of(name);
    return r->bytes > 0 ? r->bytes : r->flops > 0 ? r->flops : r->elements;
  };
  for (const auto& [of, over] : ratios) {
    const double x = median_rate_ratio(t, of, work(of), over, work(over));
    emit_json(
        format("{\"bench\":\"kernel_1core_ratio\",\"kernel\":\"%s\",\"%s\":%llu,\"of\":\"%s\","
               "\"over\":\"%s\",\"median_speed_ratio\":%.4g}",
               kernel, size_key, static_cast<unsigned long long>(size_value), of.c_str(),
               over.c_str(), x));
    summary += format(" %s/%s %.2fx", of.c_str(), over.c_str(), x);
  }
  summary_line(summary);
}

class InProcess {
 public:
  InProcess(const Options& o, std::uint64_t arena_bytes, std::uint64_t copy_bytes)
      : o_(o),
        arena_(arena_bytes),
        copy_(std::max<std::uint64_t>(copy_bytes, kPage)),
        caller_(arena_) {}
  ~InProcess() {
    if (sink_ == 42) std::fputs("", stderr);  // the results are used
  }
  InProcess(const InProcess&) = delete;
  InProcess& operator=(const InProcess&) = delete;

  void streaming(std::uint64_t w);
  void sort_u64(std::uint64_t n);
  void sort_f32(std::uint64_t n);
  void matmul(std::uint64_t n);

 private:
  // The bandwidth references over a working set of `w` bytes of the copy
  // buffer: copy (half read, half written) and read.
  void add_references(std::uint64_t w, std::vector<Variant>& variants, std::vector<Row>& rows);
  void measure(const char* kernel, std::uint64_t w, std::vector<Variant> variants,
               const std::vector<Row>& rows,
               const std::vector<std::pair<std::string, std::string>>& ratios) {
    const RoundTimes t = run_round_robin(variants, o_.rounds, o_.min_sample);
    report(kernel, bytes_name(w), w, "working_set_bytes", t, rows, ratios);
  }
  template <class Key>
  void sort(const char* kernel, std::uint64_t n);

  const Options& o_;
  PageBuffer arena_;
  PageBuffer copy_;
  KernelCaller caller_;
  std::uint64_t sink_ = 0;  // keeps reference results live
};

void InProcess::add_references(std::uint64_t w, std::vector<Variant>& variants,
                               std::vector<Row>& rows) {
  const std::uint64_t words = w / 2 / sizeof(std::uint64_t);
  const std::span<const std::uint64_t> src(copy_.as<std::uint64_t>(), words);
  const std::span<std::uint64_t> dst(copy_.as<std::uint64_t>(w / 2), words);
  const std::span<const std::uint64_t> all(copy_.as<std::uint64_t>(), 2 * words);
  variants.push_back({"copy", [=] { stream_copy(src, dst); }, {}, {}});
  variants.push_back({"read", [this, all] { sink_ += stream_read(all); }, {}, {}});
  rows.push_back({"copy", "STREAM-like copy, u64 words, widest vectors", 2.0 * 8 * words});
  rows.push_back({"read", "sum of u64 words, widest vectors", 2.0 * 8 * words});
}

void InProcess::streaming(std::uint64_t w) {
  const std::string target = blas1::simd_target_name();
  if (o_.wants("sum_f32")) {
    const std::uint64_t n = w / sizeof(float);
    float* x = arena_.as<float>();
    fill_random_floats(x, n, kSeedX);
    const std::span<const float> xs(x, n);
    const KernelFn fn = caller_.fn("sum_f32");
    const double simd = blas1::sum_simd(xs);
    const double scalar = blas1::sum_scalar(xs);
    double abs_sum = 0;
    for (const float v : xs) abs_sum += std::fabs(v);
    const std::uint64_t bits = caller_.call(fn, "sum_f32", 0, n * 4, {});
    if (bits != std::bit_cast<std::uint64_t>(simd))
      throw std::runtime_error(format("sum_f32 over %s: kernel %.17g != sum_simd %.17g",
                                      bytes_name(w).c_str(), std::bit_cast<double>(bits), simd));
    // blas1.hpp's bound, plus the scalar double loop's own n * 2^-53.
    const double bound = (64 * 0x1p-24 + static_cast<double>(n) * 0x1p-52) * abs_sum;
    if (std::fabs(simd - scalar) > bound)
      throw std::runtime_error(
          format("sum_f32: kernel %.17g and scalar %.17g differ by more "
                 "than %.3g",
                 simd, scalar, bound));
    std::vector<Variant> variants;
    std::vector<Row> rows;
    add_references(w, variants, rows);
    variants.push_back(
        {"simd", [this, fn, n] { sink_ += caller_.call(fn, "sum_f32", 0, n * 4, {}); }, {}, {}});
    variants.push_back(
        {"scalar",
         [this, xs] { sink_ += std::bit_cast<std::uint64_t>(blas1::sum_scalar(xs)); },
         {},
         {}});
    rows.push_back({"simd", "sum_f32 kernel, Highway " + target, 4.0 * n});
    rows.push_back({"scalar", "blas1::sum_scalar (double accumulator)", 4.0 * n});
    measure("sum_f32", w, std::move(variants), rows, {{"simd", "scalar"}});
  }
  if (o_.wants("dot_f32")) {
    const std::uint64_t n = w / 2 / sizeof(float);
    float* x = arena_.as<float>();
    float* y = arena_.as<float>(n * 4);
    fill_random_floats(x, n, kSeedX);
    fill_random_floats(y, n, kSeedY);
    const std::span<const float> xs(x, n), ys(y, n);
    const KernelFn fn = caller_.fn("dot_f32");
    const double simd = blas1::dot_simd(xs, ys);
    const double scalar = blas1::dot_scalar(xs, ys);
    double abs_sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) abs_sum += std::fabs(double{x[i]} * y[i]);
    const std::uint64_t bits = caller_.call(fn, "dot_f32", 0, n * 4, {n * 4});
    if (bits != std::bit_cast<std::uint64_t>(simd))
      throw std::runtime_error(
          format("dot_f32: kernel %.17g != dot_simd %.17g", std::bit_cast<double>(bits), simd));
    const double bound = (65 * 0x1p-24 + static_cast<double>(n) * 0x1p-52) * abs_sum;
    if (std::fabs(simd - scalar) > bound)
      throw std::runtime_error(
          format("dot_f32: kernel %.17g and scalar %.17g differ by more "
                 "than %.3g",
                 simd, scalar, bound));
    std::vector<Variant> variants;
    std::vector<Row> rows;
    add_references(w, variants, rows);
    variants.push_back({"simd",
                        [this, fn, n] { sink_ += caller_.call(fn, "dot_f32", 0, n * 4, {n * 4}); },
                        {},
                        {}});
    variants.push_back(
        {"scalar",
         [this, xs, ys] { sink_ += std::bit_cast<std::uint64_t>(blas1::dot_scalar(xs, ys)); },
         {},
         {}});
    rows.push_back({"simd", "dot_f32 kernel, Highway " + target, 8.0 * n});
    rows.push_back({"scalar", "blas1::dot_scalar (double accumulator)", 8.0 * n});
    measure("dot_f32", w, std::move(variants), rows, {{"simd", "scalar"}});
  }
  if (o_.wants("saxpy_f32")) {
    const std::uint64_t n = w / 2 / sizeof(float);
    float* x = arena_.as<float>();
    float* y = arena_.as<float>(n * 4);
    fill_random_floats(x, n, kSeedX);
    fill_random_floats(y, n, kSeedY);
    const KernelFn fn = caller_.fn("saxpy_f32");
    const Args args = {n * 4, std::bit_cast<std::uint32_t>(kSaxpyA), 0};
    caller_.call(fn, "saxpy_f32", 0, n * 4, args);
    for (std::uint64_t i = 0; i < n; ++i) {
      const float want = kSaxpyA * x[i] + random_float(kSeedY, i);
      if (std::bit_cast<std::uint32_t>(y[i]) != std::bit_cast<std::uint32_t>(want))
        throw std::runtime_error(format("saxpy_f32: y[%llu] = %.9g, want %.9g",
                                        static_cast<unsigned long long>(i), y[i], want));
    }
    // Timed calls keep adding a*x to y: |y| grows by at most 2^-10 a call.
    std::vector<Variant> variants;
    std::vector<Row> rows;
    add_references(w, variants, rows);
    variants.push_back(
        {"simd", [this, fn, n, args] { caller_.call(fn, "saxpy_f32", 0, n * 4, args); }, {}, {}});
    variants.push_back({"scalar",
                        [x, y, n] {
                          blas1::saxpy_scalar(kSaxpyA, std::span<const float>(x, n),
                                              std::span<float>(y, n));
                        },
                        {},
                        {}});
    rows.push_back({"simd", "saxpy_f32 kernel, Highway " + target, 12.0 * n});
    rows.push_back({"scalar", "blas1::saxpy_scalar", 12.0 * n});
    measure("saxpy_f32", w, std::move(variants), rows, {{"simd", "scalar"}});
  }
  if (o_.wants("map_f32")) {
    const std::uint64_t n = w / 2 / sizeof(float);
    float* x = arena_.as<float>();
    float* y = arena_.as<float>(n * 4);
    fill_random_floats(x, n, kSeedX);
    const KernelFn fn = caller_.fn("map_f32");
    const Args args = {n * 4, static_cast<std::uint64_t>(blas1::MapOp::kAffine),
                       std::bit_cast<std::uint32_t>(kMapA) |
                           std::uint64_t{std::bit_cast<std::uint32_t>(kMapB)} << 32};
    caller_.call(fn, "map_f32", 0, n * 4, args);
    for (std::uint64_t i = 0; i < n; ++i) {
      const float want = kMapA * x[i] + kMapB;
      if (std::bit_cast<std::uint32_t>(y[i]) != std::bit_cast<std::uint32_t>(want))
        throw std::runtime_error(format("map_f32 affine: y[%llu] = %.9g, want %.9g",
                                        static_cast<unsigned long long>(i), y[i], want));
    }
    std::vector<Variant> variants;
    std::vector<Row> rows;
    add_references(w, variants, rows);
    variants.push_back(
        {"simd", [this, fn, n, args] { caller_.call(fn, "map_f32", 0, n * 4, args); }, {}, {}});
    variants.push_back({"scalar",
                        [x, y, n] {
                          blas1::map_scalar(blas1::MapOp::kAffine, kMapA, kMapB,
                                            std::span<const float>(x, n), std::span<float>(y, n));
                        },
                        {},
                        {}});
    rows.push_back({"simd", "map_f32 kernel (affine), Highway " + target, 8.0 * n});
    rows.push_back({"scalar", "blas1::map_scalar (affine)", 8.0 * n});
    measure("map_f32", w, std::move(variants), rows, {{"simd", "scalar"}});
  }
  if (o_.wants("crc32c")) {
    fill_random_words(arena_.as<std::uint64_t>(), w / 8, kSeedBytes);
    const std::span<const std::byte> data(arena_.data(), w);
    const KernelFn crc = caller_.fn("crc32c");
    const KernelFn checksum = caller_.fn("checksum");
    // The table CRC runs at a fraction of a GB/s wherever its bytes come
    // from, so at large sizes each of its calls covers one slice of
    // --slow-peer-bytes, the next call the next slice (wrapping): a few
    // seconds per round saved, the rate the same.
    const std::uint64_t slice = std::min(w, o_.slow_peer_bytes);
    const std::uint64_t isal = caller_.call(crc, "crc32c", 0, w, {});
    const std::uint64_t isal_slice = caller_.call(crc, "crc32c", 0, slice, {});
    const std::uint32_t table = crc32c_table(data.first(slice));
    const std::optional<std::uint32_t> instruction = crc32c_instruction(data);
    if (isal_slice != table || (instruction && *instruction != isal))
      throw std::runtime_error(format(
          "crc32c over %s: kernel %08llx, crc32 instruction %08x; over the first %s: kernel "
          "%08llx, table %08x",
          bytes_name(w).c_str(), static_cast<unsigned long long>(isal), instruction.value_or(0),
          bytes_name(slice).c_str(), static_cast<unsigned long long>(isal_slice), table));
    const std::uint64_t xxh = caller_.call(checksum, "checksum", 0, w, {});
    if (xxh != XXH3_64bits_withSeed(data.data(), data.size(), 0))
      throw std::runtime_error("checksum: kernel and XXH3_64bits_withSeed differ");
    std::vector<Variant> variants;
    std::vector<Row> rows;
    std::vector<std::pair<std::string, std::string>> ratios = {{"isal", "table"}};
    add_references(w, variants, rows);
    variants.push_back(
        {"isal", [=, this] { sink_ += caller_.call(crc, "crc32c", 0, w, {}); }, {}, {}});
    rows.push_back({"isal", "crc32c kernel (ISA-L crc32_iscsi)", static_cast<double>(w)});
    if (instruction) {
      variants.push_back(
          {"instruction", [this, data] { sink_ += *crc32c_instruction(data); }, {}, {}});
      rows.push_back(
          {"instruction", "SSE4.2 crc32 over u64 words, one chain", static_cast<double>(w)});
      ratios.push_back({"isal", "instruction"});
    }
    auto next_slice = std::make_shared<std::uint64_t>(0);
    variants.push_back({"table",
                        [this, data, slice, next_slice] {
                          const std::uint64_t at = (*next_slice)++ % (data.size() / slice);
                          sink_ += crc32c_table(data.subspan(at * slice, slice));
                        },
                        {},
                        {}});
    rows.push_back({"table",
                    "byte-at-a-time table CRC (Sarwate), " + bytes_name(slice) + " per call",
                    static_cast<double>(slice)});
    variants.push_back(
        {"xxh3", [=, this] { sink_ += caller_.call(checksum, "checksum", 0, w, {}); }, {}, {}});
    rows.push_back({"xxh3", "checksum kernel (XXH3-64)", static_cast<double>(w)});
    measure("crc32c", w, std::move(variants), rows, ratios);
  }
  if (o_.wants("histogram_u8")) {
    fill_random_words(arena_.as<std::uint64_t>(), w / 8, kSeedBytes);
    const std::span<const std::byte> data(arena_.data(), w);
    const std::uint64_t counters = round_up(w, kPage);
    const KernelFn fn = caller_.fn("histogram_u8");
    auto naive = std::make_shared<std::array<std::uint64_t, 256>>();
    caller_.call(fn, "histogram_u8", 0, w, {counters});
    histogram_naive(data, *naive);
    if (std::memcmp(arena_.data() + counters, naive->data(), kCountersBytes) != 0)
      throw std::runtime_error("histogram_u8 over " + bytes_name(w) +
                               ": kernel and naive counts differ");
    std::vector<Variant> variants;
    std::vector<Row> rows;
    add_references(w, variants, rows);
    variants.push_back(
        {"kernel", [=, this] { caller_.call(fn, "histogram_u8", 0, w, {counters}); }, {}, {}});
    variants.push_back({"naive", [data, naive] { histogram_naive(data, *naive); }, {}, {}});
    rows.push_back({"kernel", "histogram_u8 kernel (4 sub-histograms)", static_cast<double>(w)});
    rows.push_back({"naive", "++counts[byte], one array", static_cast<double>(w)});
    measure("histogram_u8", w, std::move(variants), rows, {{"kernel", "naive"}});
  }
}

template <class Key>
void InProcess::sort(const char* kernel, std::uint64_t n) {
  Key* data = arena_.as<Key>();
  const std::uint64_t scratch = n * sizeof(Key);
  auto pristine = std::make_shared<std::vector<Key>>(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<Key, float>) {
      // Uniform floats with every exponent from 2^-20 to 2^20, both signs.
      const int e = static_cast<int>(random_word(kSeedKeys + 1, i) % 41) - 20;
      (*pristine)[i] = std::ldexp(random_float(kSeedKeys, i), e);
    } else {
      (*pristine)[i] = random_word(kSeedKeys, i);
    }
  }
  std::vector<Key> expected(*pristine);
  std::sort(expected.begin(), expected.end());
  const KernelFn fn = caller_.fn(kernel);
  const auto restore = [data, pristine] {
    std::memcpy(data, pristine->data(), pristine->size() * sizeof(Key));
  };
  const auto check = [&](const char* who) {
    if (std::memcmp(data, expected.data(), n * sizeof(Key)) != 0)
      throw std::runtime_error(format("%s of %llu keys: %s's output is not the sorted input",
                                      kernel, static_cast<unsigned long long>(n), who));
  };
  restore();
  caller_.call(fn, kernel, 0, n * sizeof(Key), {scratch});
  check("the kernel");
  restore();
  std::sort(data, data + n);
  check("std::sort");
  const std::vector<Variant> variants = {
      {"beat", [=, this] { caller_.call(fn, kernel, 0, n * sizeof(Key), {scratch}); }, restore, {}},
      {"std_sort", [data, n] { std::sort(data, data + n); }, restore, {}}};
  const double bytes = static_cast<double>(n * sizeof(Key));
  const std::vector<Row> rows = {
      {"beat", std::string(kernel) + " kernel, serial (merge sort over Highway VQSort leaves)",
       bytes, 0, static_cast<double>(n)},
      {"std_sort", "std::sort (libstdc++ introsort)", bytes, 0, static_cast<double>(n)}};
  const RoundTimes t = run_round_robin(variants, o_.rounds, o_.min_sample);
  report(kernel, format("%llu keys", static_cast<unsigned long long>(n)), n, "elements", t, rows,
         {{"beat", "std_sort"}});
}

void InProcess::sort_u64(std::uint64_t n) { sort<std::uint64_t>("sort_u64", n); }
void InProcess::sort_f32(std::uint64_t n) { sort<float>("sort_f32", n); }

void InProcess::matmul(std::uint64_t n) {
  const std::uint64_t bytes = n * n * sizeof(float);
  float* a = arena_.as<float>();
  float* b = arena_.as<float>(bytes);
  float* c = arena_.as<float>(2 * bytes);
  fill_random_floats(a, n * n, kSeedX);
  fill_random_floats(b, n * n, kSeedY);
  const KernelFn fn = caller_.fn("matmul_f32");
  const Args args = {bytes, 2 * bytes, n | n << 32};
  caller_.call(fn, "matmul_f32", 0, bytes, args);
  const std::vector<float> blocked(c, c + n * n);
  // Every |a|, |b| < 1: each element's error is at most gamma_n * n in
  // either form (Higham, Accuracy and Stability, 3.5), a bound on garbage
  // rather than a statement of accuracy; the JSON line reports the largest
  // difference seen.
  const double bound = 2 * static_cast<double>(n) * 0x1p-24 * static_cast<double>(n);
  const auto max_diff = [&] {
    double d = 0;
    for (std::uint64_t i = 0; i < n * n; ++i)
      d = std::max(d, std::fabs(static_cast<double>(c[i]) - blocked[i]));
    return d;
  };
  std::vector<Variant> variants = {
      {"blocked", [=, this] { caller_.call(fn, "matmul_f32", 0, bytes, args); }, {}, {}}};
  const double flops =
      2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
  std::vector<Row> rows = {
      {"blocked",
       std::string("matmul_f32 kernel, Highway ") + matmul_tile::simd_target_name() + ", serial", 0,
       flops}};
  std::vector<std::pair<std::string, std::string>> ratios;
  std::string diffs;
  if (n <= o_.naive_max) {
    matmul_tile::naive(a, b, c, n, n, n);
    const double d = max_diff();
    if (!(d <= bound))
      throw std::runtime_error(format("matmul %llu: naive and blocked differ by %.3g > %.3g",
                                      static_cast<unsigned long long>(n), d, bound));
    diffs += format(",\"naive_max_abs_diff\":%.3g", d);
    variants.push_back({"naive", [=] { matmul_tile::naive(a, b, c, n, n, n); }, {}, {}});
    rows.push_back({"naive", "matmul_tile::naive (i-j-k, float sums)", 0, flops});
    ratios.push_back({"blocked", "naive"});
  }
#ifdef BEAT_HAVE_OPENBLAS
  const auto sgemm = [=] {
    const auto ni = static_cast<blasint>(n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, a, ni, b, ni, 0.0f, c,
                ni);
  };
  sgemm();
  const double d = max_diff();
  if (!(d <= bound))
    throw std::runtime_error(format("matmul %llu: OpenBLAS and blocked differ by %.3g > %.3g",
                                    static_cast<unsigned long long>(n), d, bound));
  diffs += format(",\"openblas_max_abs_diff\":%.3g", d);
  variants.push_back({"openblas", sgemm, {}, {}});
  rows.push_back(
      {"openblas",
       format("OpenBLAS cblas_sgemm, 1 thread, core %s (OPENBLAS_CORETYPE %s)",
              openblas_get_corename(),
              std::getenv("BEAT_KERNELS_BENCH_SET_CORETYPE") != nullptr ? "set by this program"
                                                                        : "as found"),
       0, flops});
  ratios.push_back({"blocked", "openblas"});
#endif
  const RoundTimes t = run_round_robin(variants, o_.rounds, o_.min_sample);
  report("matmul_f32", format("n=%llu", static_cast<unsigned long long>(n)), n, "n", t, rows,
         ratios);
  if (!diffs.empty())
    emit_json(
        format("{\"bench\":\"kernel_1core_check\",\"kernel\":\"matmul_f32\",\"n\":%llu%s,"
               "\"bound\":%.3g}",
               static_cast<unsigned long long>(n), diffs.c_str(), bound));
}

}  // namespace

void run_in_process(const Options& o) {
  // The arena holds the largest question's arrays; the copy buffer the
  // references' working set.
  std::uint64_t arena = kPage;
  std::uint64_t copy = 0;
  const bool any_stream = o.wants("sum_f32") || o.wants("dot_f32") || o.wants("saxpy_f32") ||
                          o.wants("map_f32") || o.wants("crc32c") || o.wants("histogram_u8");
  if (any_stream) {
    for (const std::uint64_t w : o.stream_bytes) {
      arena = std::max(arena, round_up(w, kPage) + kCountersBytes);
      copy = std::max(copy, w);
    }
  }
  if (o.wants("sort_u64") || o.wants("sort_f32"))
    for (const std::uint64_t n : o.sort_elements) arena = std::max(arena, 2 * 8 * n);
  if (o.wants("matmul_f32"))
    for (const std::uint64_t n : o.matmul_sizes) arena = std::max(arena, 3 * 4 * n * n);
  pin_to_cpu(o.cpu);
  std::fprintf(stderr,
               "part 1: one core (CPU %d), in process; arena %s, copy buffer %s; %u rounds\n",
               o.cpu, bytes_name(arena).c_str(), bytes_name(copy).c_str(), o.rounds);
  {
    InProcess p(o, round_up(arena, kPage), round_up(copy, kPage));
    if (any_stream)
      for (const std::uint64_t w : o.stream_bytes) {
        if (w % 64 != 0)
          throw std::runtime_error("--stream-bytes must be multiples of 64, not " +
                                   std::to_string(w));
        p.streaming(w);
      }
    for (const std::uint64_t n : o.sort_elements) {
      if (o.wants("sort_u64")) p.sort_u64(n);
      if (o.wants("sort_f32")) p.sort_f32(n);
    }
    if (o.wants("matmul_f32"))
      for (const std::uint64_t n : o.matmul_sizes) p.matmul(n);
  }
  // Part 2 runs unpinned: its daemons and copies place their own threads.
  if (::sched_setaffinity(0, sizeof o.cpus, &o.cpus) != 0)
    throw std::runtime_error("sched_setaffinity back to the starting CPUs failed");
}

}  // namespace beat::perf::kernels
