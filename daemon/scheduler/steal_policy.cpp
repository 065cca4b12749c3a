#include "daemon/scheduler/steal_policy.hpp"

#include <algorithm>
#include <cassert>
#include <string>

namespace beat::sched {

std::uint32_t RandomPolicy::victim(std::uint32_t thief, std::uint32_t attempt,
                                   const LoadView& /*load*/, StealState& state) const noexcept {
  assert(thief < workers_);
  if (workers_ < 2 || attempt >= workers_ - 1) return kNoVictim;
  // Uniform over the workers_ - 1 others: draw from [0, workers_ - 1) and
  // step over the thief.
  const std::uint32_t v = state.rng.below(workers_ - 1);
  return v >= thief ? v + 1 : v;
}

TopologyPolicy::TopologyPolicy(const Topology& topology,
                               const std::vector<std::uint32_t>& worker_os_pu,
                               std::uint32_t attempts_per_level)
    : workers_(static_cast<std::uint32_t>(worker_os_pu.size())),
      attempts_per_level_(attempts_per_level == 0 ? ~0u : attempts_per_level),
      levels_(workers_) {
  if (workers_ < 2) return;
  const std::uint32_t per_thief = workers_ - 1;
  victims_.reserve(static_cast<std::size_t>(workers_) * per_thief);
  std::vector<std::pair<ShareLevel, std::uint32_t>> others;
  others.reserve(per_thief);
  for (std::uint32_t thief = 0; thief < workers_; ++thief) {
    others.clear();
    for (std::uint32_t w = 0; w < workers_; ++w)
      if (w != thief)
        others.emplace_back(topology.share_level(worker_os_pu[thief], worker_os_pu[w]), w);
    // Level order, then worker order: deterministic groups; the random
    // offset per round spreads thieves over a group.
    std::sort(others.begin(), others.end());
    ThiefLevels& lv = levels_[thief];
    for (std::uint32_t i = 0; i < per_thief; ++i) {
      victims_.push_back(others[i].second);
      if (lv.count == 0 || lv.kind[lv.count - 1] != others[i].first) {
        lv.kind[lv.count] = others[i].first;
        ++lv.count;
      }
      lv.end[lv.count - 1] = i + 1;
    }
  }
}

std::uint32_t TopologyPolicy::level_count(std::uint32_t thief) const noexcept {
  return thief < workers_ ? levels_[thief].count : 0;
}

ShareLevel TopologyPolicy::level_kind(std::uint32_t thief, std::uint32_t index) const noexcept {
  assert(index < level_count(thief));
  return levels_[thief].kind[index];
}

std::vector<std::uint32_t> TopologyPolicy::level_victims(std::uint32_t thief,
                                                         std::uint32_t index) const {
  assert(index < level_count(thief));
  const ThiefLevels& lv = levels_[thief];
  const std::uint32_t* base = victims_.data() + static_cast<std::size_t>(thief) * (workers_ - 1);
  const std::uint32_t begin = index == 0 ? 0 : lv.end[index - 1];
  return {base + begin, base + lv.end[index]};
}

std::uint32_t TopologyPolicy::victim(std::uint32_t thief, std::uint32_t attempt,
                                     const LoadView& load, StealState& state) const noexcept {
  assert(thief < workers_);
  if (thief >= workers_ || workers_ < 2) return kNoVictim;
  StealRound& r = state.round;
  if (attempt == 0) r = StealRound{};
  const ThiefLevels& lv = levels_[thief];
  const std::uint32_t* base = victims_.data() + static_cast<std::size_t>(thief) * (workers_ - 1);
  while (r.level < lv.count) {
    const std::uint32_t begin = r.level == 0 ? 0 : lv.end[r.level - 1];
    const std::uint32_t* group = base + begin;
    const std::uint32_t n = lv.end[r.level] - begin;
    // Sweep position j (0 <= j < n) is group member (offset + j) wrapped;
    // offset < n, so one conditional subtraction wraps it.
    const auto at = [&](std::uint32_t j) {
      const std::uint32_t k = r.offset + j;
      return group[k >= n ? k - n : k];
    };
    if (!r.started) {
      r.started = true;
      r.taken = 0;
      r.offset = state.rng.below(n);
      r.swept = 0;
      r.loaded_only = false;
      for (std::uint32_t j = 0; j < n; ++j) {
        if (load.queue_size(at(j)) != 0) {
          r.loaded_only = true;
          r.swept = j;
          break;
        }
      }
    } else if (r.taken >= attempts_per_level_) {
      r.swept = n;  // the level's cap is reached: read nothing more
    } else if (r.loaded_only) {
      // Reads each later member at most once: the level's reads stay <= n.
      std::uint32_t j = r.swept + 1;
      while (j < n && load.queue_size(at(j)) == 0) ++j;
      r.swept = j;
    } else {
      ++r.swept;
    }
    if (r.taken < attempts_per_level_ && r.swept < n) {
      ++r.taken;
      return at(r.swept);
    }
    ++r.level;
    r.started = false;
  }
  return kNoVictim;
}

std::unique_ptr<StealPolicy> make_steal_policy(StealPolicyKind kind, const Topology& topology,
                                               const std::vector<std::uint32_t>& worker_os_pu,
                                               std::uint32_t attempts_per_level) {
  switch (kind) {
    case StealPolicyKind::kRandom:
      return std::make_unique<RandomPolicy>(static_cast<std::uint32_t>(worker_os_pu.size()));
    case StealPolicyKind::kTopology:
      return std::make_unique<TopologyPolicy>(topology, worker_os_pu, attempts_per_level);
  }
  return nullptr;
}

Result<StealPolicyKind> parse_steal_policy(std::string_view text) {
  for (StealPolicyKind kind : {StealPolicyKind::kRandom, StealPolicyKind::kTopology})
    if (text == to_string(kind)) return kind;
  return Status(ErrorCode::kInvalidArgument,
                "unknown steal policy \"" + std::string(text) + "\" (valid: random, topology)");
}

std::string_view to_string(StealPolicyKind kind) noexcept {
  switch (kind) {
    case StealPolicyKind::kRandom: return "random";
    case StealPolicyKind::kTopology: return "topology";
  }
  return "unknown";
}

}  // namespace beat::sched
