// StealPolicy: which worker an idle worker (the thief) tries to steal from.
//
// A steal round is a sequence of victim() calls by one thief, attempt = 0, 1,
// 2, ..., each naming a victim the thief then tries to steal from, until the
// policy answers kNoVictim (or the thief got work and stops early). Policies
// are immutable after construction: one instance serves every worker, and all
// per-thief mutable state (the random generator and the position of the round
// in progress) lives in the thief's own StealState.
//
// Policies:
//   RandomPolicy    uniform random victims, workers-1 attempts per round
//                   (the classic randomized work stealing of Blumofe and
//                   Leiserson, JACM 1999).
//   TopologyPolicy  hierarchical: victims that share the closest level of
//                   the cache/memory hierarchy first (same core, L2, L3,
//                   NUMA node, package, machine), a few random ones per level,
//                   in the spirit of locality-aware stealing (Olivier et al.,
//                   "Scheduling task parallelism on multi-socket multicore
//                   systems", ROSS 2011) and TBB's/Taskflow's affinity steals.
//
// Thread-safety: a policy's methods are const and read only what the
// constructor built: any thread may call them concurrently. victim() writes
// only the StealState passed to it, which belongs to the thief's thread.
// Hot path: victim() neither allocates, locks nor makes a syscall.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "daemon/topology.hpp"
#include "shared/status.hpp"

namespace beat::sched {

enum class WorkerState : std::uint8_t { kBusy, kIdle, kParked };

// What a policy may read about the workers. Any thread; every value is a racy
// snapshot (relaxed loads) that may be stale by the time it is used.
class LoadView {
 public:
  virtual ~LoadView() = default;
  virtual std::uint32_t workers() const noexcept = 0;
  // Approximate number of jobs that could be stolen from `worker`.
  virtual std::uint32_t queue_size(std::uint32_t worker) const noexcept = 0;
  virtual WorkerState state(std::uint32_t worker) const noexcept = 0;
};

// SplitMix64 (Steele, Lea and Flood, OOPSLA 2014): one add and a mix per
// draw, any seed (0 included) is fine. Owned by one thread.
struct StealRng {
  std::uint64_t state = 0;

  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) by multiply-shift range reduction (Lemire, "Fast
  // random integer generation in an interval", TOMACS 2019) without its
  // rejection step: the bias is below bound / 2^32, irrelevant for picking
  // victims, and no division is made. REQUIRES: bound > 0.
  std::uint32_t below(std::uint32_t bound) noexcept {
    return static_cast<std::uint32_t>(((next() >> 32) * bound) >> 32);
  }
};

// Where the thief's round in progress stands. Scratch for level-walking
// policies: written only by victim(), which resets it at attempt 0; its
// meaning is the policy's own, callers only keep it alive between calls.
struct StealRound {
  std::uint32_t level = 0;   // index of the level being walked
  std::uint32_t taken = 0;   // victims named in that level so far
  std::uint32_t swept = 0;   // position of the last victim named, in sweep order
  std::uint32_t offset = 0;  // random start of the level's sweep
  bool started = false;      // whether the level's sweep has begun
  bool loaded_only = false;  // whether the sweep names only victims that look non-empty
};

// A thief's private steal state. One per worker, touched only by its thread.
struct StealState {
  StealRng rng;
  StealRound round;
};

class StealPolicy {
 public:
  static constexpr std::uint32_t kNoVictim = ~0u;
  virtual ~StealPolicy() = default;

  // The victim for attempt `attempt` of the current round of `thief`, or
  // kNoVictim when the round is over (the policy then answers kNoVictim to
  // any later attempt until attempt 0 starts a new round). Never `thief`.
  // REQUIRES: thief < workers(); attempts of one round come in order 0, 1,
  // 2, ... with the same `state`. Called only by the thief's thread.
  virtual std::uint32_t victim(std::uint32_t thief, std::uint32_t attempt, const LoadView& load,
                               StealState& state) const noexcept = 0;
  virtual std::uint32_t workers() const noexcept = 0;
  virtual std::string_view name() const noexcept = 0;
};

// Each round makes workers-1 attempts (none with one worker), each at a
// victim drawn uniformly from the workers other than the thief,
// independently (a victim may repeat within a round). Ignores the LoadView.
class RandomPolicy final : public StealPolicy {
 public:
  explicit RandomPolicy(std::uint32_t workers) noexcept : workers_(workers) {}
  std::uint32_t victim(std::uint32_t thief, std::uint32_t attempt, const LoadView& load,
                       StealState& state) const noexcept override;
  std::uint32_t workers() const noexcept override { return workers_; }
  std::string_view name() const noexcept override { return "random"; }

 private:
  std::uint32_t workers_;
};

// Victims grouped per thief by how close they sit in the hardware: for each
// thief, levels kCore (same core or same PU: SMT siblings, or workers
// sharing a PU), kL2, kL3, kNuma, kPackage, kMachine, in that order, each
// group holding the workers whose closest shared level with the thief is that
// level (so no worker is in two groups); empty levels are skipped.
//
// A round walks the levels in order. In a level of n victims it sweeps them
// from a random offset (wrapping) and names at most
// min(n, attempts_per_level) distinct victims, then goes to the next level;
// after the last level it answers kNoVictim.
//
// Load awareness: when the level is started, the sweep looks for a victim
// whose load.queue_size() is non-zero. If one exists, the level names only
// victims that look non-empty when the sweep reaches them (ending the level
// early when no further one does); if none does, it names victims blindly
// (the snapshot may be stale, so an empty-looking level is still tried).
// Either way each level reads queue_size() at most n times per round.
//
// Construction is O(workers^2) time and memory; victim() is O(1) amortised
// per call plus the queue_size reads above.
class TopologyPolicy final : public StealPolicy {
 public:
  // `worker_os_pu[w]`: OS index of the PU worker w runs on (several workers
  // may share one). `attempts_per_level` caps the victims named per level;
  // 0 means no cap (every victim of each level).
  TopologyPolicy(const Topology& topology, const std::vector<std::uint32_t>& worker_os_pu,
                 std::uint32_t attempts_per_level);
  std::uint32_t victim(std::uint32_t thief, std::uint32_t attempt, const LoadView& load,
                       StealState& state) const noexcept override;
  std::uint32_t workers() const noexcept override { return workers_; }
  std::string_view name() const noexcept override { return "topology"; }

  // For tests and reporting: the number of non-empty levels of `thief`, and
  // the ShareLevel and victims of its level `index` (< level_count(thief)).
  std::uint32_t level_count(std::uint32_t thief) const noexcept;
  ShareLevel level_kind(std::uint32_t thief, std::uint32_t index) const noexcept;
  std::vector<std::uint32_t> level_victims(std::uint32_t thief, std::uint32_t index) const;

 private:
  // Thief t's victims are victims_[t * (workers_ - 1) ...], sorted by level;
  // level i of t spans [begin(t, i), end[i]) relative to that base.
  struct ThiefLevels {
    std::uint32_t count = 0;
    std::array<std::uint32_t, kShareLevelCount> end{};
    std::array<ShareLevel, kShareLevelCount> kind{};
  };
  std::uint32_t workers_;
  std::uint32_t attempts_per_level_;  // never 0: "no cap" is stored as ~0u
  std::vector<std::uint32_t> victims_;
  std::vector<ThiefLevels> levels_;
};

enum class StealPolicyKind : std::uint8_t { kRandom, kTopology };

// The policy of `kind` for workers pinned to `worker_os_pu` (its size is the
// worker count). `topology` and `attempts_per_level` are used by kTopology.
std::unique_ptr<StealPolicy> make_steal_policy(StealPolicyKind kind, const Topology& topology,
                                               const std::vector<std::uint32_t>& worker_os_pu,
                                               std::uint32_t attempts_per_level);

// "random" / "topology" (the names to_string gives). An unknown name is
// kInvalidArgument, with a message naming it and the valid ones.
Result<StealPolicyKind> parse_steal_policy(std::string_view text);
std::string_view to_string(StealPolicyKind kind) noexcept;

}  // namespace beat::sched
