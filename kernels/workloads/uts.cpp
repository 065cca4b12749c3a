// UTS's SHA-1 RNG and tree rules (see uts.hpp for the definitions, and
// uts-1.1's rng/brg_sha1.c and uts.c for the originals).
#include "kernels/workloads/uts.hpp"

#include <nettle/sha1.h>

#include <cmath>
#include <cstring>

namespace beat::workloads {

namespace {

static_assert(SHA1_DIGEST_SIZE == detail::kUtsStateBytes, "a UTS state is one SHA-1 digest");

constexpr std::uint32_t kPositiveMask = 0x7fffffff;  // rng_rand's POS_MASK
constexpr double kRandRange = 2147483648.0;          // 2^31: rng_toProb's divisor
constexpr std::uint32_t kMaxNumChildren = 100;       // uts.h MAXNUMCHILDREN
constexpr std::size_t kSeedOffset = 16;              // rng_init: 16 zero bytes, then the seed
constexpr std::size_t kSpawnMessageBytes = detail::kUtsStateBytes + 4;

// T1: -t 1 (GEO) -a 3 (FIXED) -d 10 -b 4 -r 19.
constexpr std::int32_t kT1Seed = 19;
constexpr double kT1BranchingFactor = 4.0;  // b_0
constexpr std::uint32_t kT1GenMax = 10;     // gen_mx (-d)

// T3: -t 0 (BIN) -b 2000 -q 0.124875 -m 8 -r 42.
constexpr std::int32_t kT3Seed = 42;
constexpr double kT3RootBranchingFactor = 2000.0;   // b_0
constexpr double kT3NonLeafProbability = 0.124875;  // q
constexpr std::uint32_t kT3NonLeafChildren = 8;     // m

void put_big_endian(std::uint8_t* out, std::uint32_t v) {
  out[0] = static_cast<std::uint8_t>(v >> 24);
  out[1] = static_cast<std::uint8_t>(v >> 16);
  out[2] = static_cast<std::uint8_t>(v >> 8);
  out[3] = static_cast<std::uint8_t>(v);
}

detail::UtsState sha1_of(const std::uint8_t* message, std::size_t length) {
  sha1_ctx ctx;
  sha1_init(&ctx);
  sha1_update(&ctx, length, message);
  detail::UtsState digest;
  sha1_digest(&ctx, digest.bytes.size(), digest.bytes.data());
  return digest;
}

// rng_rand: the last 4 state bytes, big-endian, as a non-negative int.
std::uint32_t rng_rand(const detail::UtsState& state) {
  const auto& b = state.bytes;
  const std::uint32_t v = (std::uint32_t{b[16]} << 24) | (std::uint32_t{b[17]} << 16) |
                          (std::uint32_t{b[18]} << 8) | std::uint32_t{b[19]};
  return v & kPositiveMask;
}

double to_prob(std::uint32_t r) { return static_cast<double>(r) / kRandRange; }

// uts_numChildren_geo with shape FIXED, then the MAXNUMCHILDREN cap.
std::uint32_t geometric_children(const detail::UtsState& state, std::uint32_t height) {
  if (height >= kT1GenMax) return 0;  // b_i = 0: p = 1, floor(log(1-u) / -inf) = 0
  // Same expression and evaluation order as uts.c, so the double results
  // (and their floors) are identical.
  const double p = 1.0 / (1.0 + kT1BranchingFactor);
  const double u = to_prob(rng_rand(state));
  const double children = std::floor(std::log(1.0 - u) / std::log(1.0 - p));
  // u < 1 so children is finite and >= 0; cap before converting.
  return children >= kMaxNumChildren ? kMaxNumChildren : static_cast<std::uint32_t>(children);
}

// uts_numChildren for BIN: floor(b_0) at the root, else m with probability q.
std::uint32_t binomial_children(const detail::UtsState& state, std::uint32_t height) {
  if (height == 0) return static_cast<std::uint32_t>(std::floor(kT3RootBranchingFactor));
  return to_prob(rng_rand(state)) < kT3NonLeafProbability ? kT3NonLeafChildren : 0;
}

}  // namespace

UtsCount uts_known(UtsTree tree) {
  switch (tree) {
    case UtsTree::kT1: return {4'130'071, 3'305'118, 10};
    case UtsTree::kT3: return {4'112'897, 3'599'034, 1572};
  }
  return {};
}

namespace detail {

UtsState uts_root_state(UtsTree tree) {
  const std::int32_t seed = tree == UtsTree::kT1 ? kT1Seed : kT3Seed;
  std::array<std::uint8_t, kUtsStateBytes> message{};  // 16 zero bytes, then the seed
  put_big_endian(message.data() + kSeedOffset, static_cast<std::uint32_t>(seed));
  return sha1_of(message.data(), message.size());
}

UtsState uts_spawn(const UtsState& parent, std::uint32_t child_index) {
  // brg_sha1.c hashes the two parts in two calls; one call over the
  // concatenation yields the same digest.
  std::array<std::uint8_t, kSpawnMessageBytes> message;
  std::memcpy(message.data(), parent.bytes.data(), kUtsStateBytes);
  put_big_endian(message.data() + kUtsStateBytes, child_index);
  return sha1_of(message.data(), message.size());
}

std::uint32_t uts_num_children(UtsTree tree, const UtsState& state, std::uint32_t height) {
  return tree == UtsTree::kT1 ? geometric_children(state, height)
                              : binomial_children(state, height);
}

}  // namespace detail

}  // namespace beat::workloads
