// daemon/scheduler/steal_policy.hpp: victim order of the topology policy on
// synthetic machines, the random policy's rounds, the load-aware sweep, and
// the factory / name helpers. Single-threaded: policies are const, so one
// thread driving several thieves' states exercises the same code as workers.
#include "daemon/scheduler/steal_policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

namespace beat::sched {
namespace {

constexpr std::uint32_t kNoVictim = StealPolicy::kNoVictim;

// Queue sizes set by the test; counts queue_size() reads.
class FakeLoad final : public LoadView {
 public:
  FakeLoad(std::uint32_t workers, std::uint32_t size) : sizes_(workers, size) {}
  std::uint32_t workers() const noexcept override {
    return static_cast<std::uint32_t>(sizes_.size());
  }
  std::uint32_t queue_size(std::uint32_t worker) const noexcept override {
    ++reads_;
    return sizes_[worker];
  }
  WorkerState state(std::uint32_t worker) const noexcept override {
    return sizes_[worker] != 0 ? WorkerState::kBusy : WorkerState::kIdle;
  }
  void set(std::uint32_t worker, std::uint32_t size) { sizes_[worker] = size; }
  std::uint32_t reads() const { return reads_; }

 private:
  std::vector<std::uint32_t> sizes_;
  mutable std::uint32_t reads_ = 0;
};

// One whole round of `thief`: the victims named before kNoVictim. Fails the
// test if the round does not end within `limit` attempts.
std::vector<std::uint32_t> round_of(const StealPolicy& policy, std::uint32_t thief,
                                    const LoadView& load, StealState& state,
                                    std::uint32_t limit = 1000) {
  std::vector<std::uint32_t> victims;
  for (std::uint32_t attempt = 0; attempt < limit; ++attempt) {
    const std::uint32_t v = policy.victim(thief, attempt, load, state);
    if (v == kNoVictim) {
      // Over means over: later attempts of the same round name nobody.
      EXPECT_EQ(policy.victim(thief, attempt + 1, load, state), kNoVictim);
      return victims;
    }
    victims.push_back(v);
  }
  ADD_FAILURE() << "round of thief " << thief << " did not end within " << limit << " attempts";
  return victims;
}

std::vector<std::uint32_t> identity_pus(std::uint32_t n) {
  std::vector<std::uint32_t> pus(n);
  for (std::uint32_t i = 0; i < n; ++i) pus[i] = i;
  return pus;
}

using Groups = std::vector<std::pair<ShareLevel, std::set<std::uint32_t>>>;

// The invariants of a TopologyPolicy round against the expected groups:
// levels in order, each level's victims distinct, in its group, and exactly
// min(group size, cap) of them (cap 0 = no cap), never the thief.
void expect_round_follows_groups(const TopologyPolicy& policy, std::uint32_t thief,
                                 const Groups& expected, std::uint32_t cap, StealState& state) {
  SCOPED_TRACE("thief " + std::to_string(thief));
  ASSERT_EQ(policy.level_count(thief), expected.size());
  for (std::uint32_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(policy.level_kind(thief, i), expected[i].first) << "level " << i;
    const auto got = policy.level_victims(thief, i);
    EXPECT_EQ(std::set<std::uint32_t>(got.begin(), got.end()), expected[i].second) << "level " << i;
  }
  FakeLoad all_loaded(policy.workers(), 1);
  const auto victims = round_of(policy, thief, all_loaded, state);
  std::size_t pos = 0;
  for (const auto& [level, group] : expected) {
    const std::size_t want = cap == 0 ? group.size() : std::min<std::size_t>(group.size(), cap);
    std::set<std::uint32_t> seen;
    for (std::size_t k = 0; k < want; ++k, ++pos) {
      ASSERT_LT(pos, victims.size()) << "round ended inside level " << to_string(level);
      const std::uint32_t v = victims[pos];
      EXPECT_NE(v, thief);
      EXPECT_TRUE(group.count(v)) << "victim " << v << " is not in level " << to_string(level);
      EXPECT_TRUE(seen.insert(v).second) << "victim " << v << " named twice in a level";
    }
  }
  EXPECT_EQ(pos, victims.size()) << "round named more victims than its levels allow";
}

std::set<std::uint32_t> range(std::uint32_t first, std::uint32_t last) {
  std::set<std::uint32_t> s;
  for (std::uint32_t i = first; i <= last; ++i) s.insert(i);
  return s;
}

TEST(StealRng, BelowStaysInRange) {
  StealRng rng{42};
  for (std::uint32_t bound : {1u, 2u, 3u, 7u, 31u, 1000u, 0xffffffffu})
    for (int i = 0; i < 1000; ++i) ASSERT_LT(rng.below(bound), bound) << bound;
}

TEST(TopologyPolicy, EveryLevelOnADeepMachine) {
  // 2 packages x 2 NUMA nodes x 2 L3 x 2 L2 x 2 cores, one worker per PU.
  auto topo = Topology::load("pack:2 numa:2 l3:2 l2:2 core:2 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  const TopologyPolicy policy(*topo, identity_pus(32), 0);
  StealState state{StealRng{1}, {}};
  expect_round_follows_groups(policy, 0,
                              {{ShareLevel::kL2, {1}},
                               {ShareLevel::kL3, {2, 3}},
                               {ShareLevel::kNuma, range(4, 7)},
                               {ShareLevel::kPackage, range(8, 15)},
                               {ShareLevel::kMachine, range(16, 31)}},
                              0, state);
  expect_round_follows_groups(policy, 21,
                              {{ShareLevel::kL2, {20}},
                               {ShareLevel::kL3, {22, 23}},
                               {ShareLevel::kNuma, range(16, 19)},
                               {ShareLevel::kPackage, range(24, 31)},
                               {ShareLevel::kMachine, range(0, 15)}},
                              0, state);
  expect_round_follows_groups(policy, 31,
                              {{ShareLevel::kL2, {30}},
                               {ShareLevel::kL3, {28, 29}},
                               {ShareLevel::kNuma, range(24, 27)},
                               {ShareLevel::kPackage, range(16, 23)},
                               {ShareLevel::kMachine, range(0, 15)}},
                              0, state);
}

TEST(TopologyPolicy, AttemptsPerLevelBoundTheRound) {
  auto topo = Topology::load("pack:2 numa:2 l3:2 l2:2 core:2 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  const Groups groups_of_0 = {{ShareLevel::kL2, {1}},
                              {ShareLevel::kL3, {2, 3}},
                              {ShareLevel::kNuma, range(4, 7)},
                              {ShareLevel::kPackage, range(8, 15)},
                              {ShareLevel::kMachine, range(16, 31)}};
  for (std::uint32_t cap : {1u, 2u, 3u, 5u}) {
    SCOPED_TRACE("cap " + std::to_string(cap));
    const TopologyPolicy policy(*topo, identity_pus(32), cap);
    StealState state{StealRng{cap}, {}};
    for (int round = 0; round < 50; ++round)
      expect_round_follows_groups(policy, 0, groups_of_0, cap, state);
  }
}

TEST(TopologyPolicy, RandomOffsetSpreadsTheFirstVictimOverALevel) {
  // With one attempt per level, the package level's single victim must
  // cover all 8 of its members over many rounds.
  auto topo = Topology::load("pack:2 numa:2 l3:2 l2:2 core:2 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  const TopologyPolicy policy(*topo, identity_pus(32), 1);
  FakeLoad load(32, 1);
  StealState state{StealRng{7}, {}};
  std::set<std::uint32_t> first_in_package;
  for (int round = 0; round < 400; ++round) {
    const auto victims = round_of(policy, 0, load, state);
    ASSERT_EQ(victims.size(), 5u);  // one per level
    first_in_package.insert(victims[3]);
  }
  EXPECT_EQ(first_in_package, range(8, 15));
}

TEST(TopologyPolicy, NumaNodeEqualToL3) {
  // 16 cores: 4 per L3 (and NUMA node), 8 per package; no L2 objects.
  auto topo = Topology::load("pack:2 numa:2 l3:1 core:4 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  const TopologyPolicy policy(*topo, identity_pus(16), 2);
  StealState state{StealRng{3}, {}};
  expect_round_follows_groups(policy, 0,
                              {{ShareLevel::kL3, {1, 2, 3}},
                               {ShareLevel::kPackage, range(4, 7)},
                               {ShareLevel::kMachine, range(8, 15)}},
                              2, state);
  expect_round_follows_groups(policy, 10,
                              {{ShareLevel::kL3, {8, 9, 11}},
                               {ShareLevel::kPackage, range(12, 15)},
                               {ShareLevel::kMachine, range(0, 7)}},
                              2, state);
}

TEST(TopologyPolicy, SmtSiblingsComeFirst) {
  // 1 package, 2 L3 x 2 L2 x 2 cores x 2 PUs; one NUMA node for all.
  auto topo = Topology::load("pack:1 l3:2 l2:2 core:2 pu:2");
  ASSERT_TRUE(topo) << topo.status().message();
  const TopologyPolicy policy(*topo, identity_pus(16), 0);
  StealState state{StealRng{5}, {}};
  expect_round_follows_groups(policy, 0,
                              {{ShareLevel::kCore, {1}},
                               {ShareLevel::kL2, {2, 3}},
                               {ShareLevel::kL3, range(4, 7)},
                               {ShareLevel::kNuma, range(8, 15)}},
                              0, state);
  expect_round_follows_groups(policy, 13,
                              {{ShareLevel::kCore, {12}},
                               {ShareLevel::kL2, {14, 15}},
                               {ShareLevel::kL3, range(8, 11)},
                               {ShareLevel::kNuma, range(0, 7)}},
                              0, state);
}

TEST(TopologyPolicy, OneWorkerPerCoreOnAnSmtMachine) {
  // Workers on the first PU of each core (what Topology::cores() gives).
  auto topo = Topology::load("pack:1 l3:2 l2:2 core:2 pu:2");
  ASSERT_TRUE(topo) << topo.status().message();
  std::vector<std::uint32_t> pus;
  for (const CoreSlot& slot : topo->cores()) pus.push_back(slot.os_pu);
  ASSERT_EQ(pus, (std::vector<std::uint32_t>{0, 2, 4, 6, 8, 10, 12, 14}));
  const TopologyPolicy policy(*topo, pus, 0);
  StealState state{StealRng{9}, {}};
  expect_round_follows_groups(
      policy, 0,
      {{ShareLevel::kL2, {1}}, {ShareLevel::kL3, {2, 3}}, {ShareLevel::kNuma, range(4, 7)}}, 0,
      state);
}

TEST(TopologyPolicy, WorkersOutnumberingCoresShareTheClosestLevel) {
  // Four workers on two single-PU cores: two per PU.
  auto topo = Topology::load("pack:1 core:2 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  const std::vector<std::uint32_t> pus = {0, 0, 1, 1};
  const TopologyPolicy policy(*topo, pus, 0);
  StealState state{StealRng{11}, {}};
  expect_round_follows_groups(policy, 0, {{ShareLevel::kCore, {1}}, {ShareLevel::kNuma, {2, 3}}}, 0,
                              state);
  expect_round_follows_groups(policy, 3, {{ShareLevel::kCore, {2}}, {ShareLevel::kNuma, {0, 1}}}, 0,
                              state);

  const RandomPolicy random(4);
  FakeLoad load(4, 1);
  for (std::uint32_t thief = 0; thief < 4; ++thief) {
    const auto victims = round_of(random, thief, load, state);
    EXPECT_EQ(victims.size(), 3u);
    for (std::uint32_t v : victims) EXPECT_NE(v, thief);
  }
}

TEST(TopologyPolicy, SkipsEmptyLookingVictimsWhenTheLevelHasWork) {
  auto topo = Topology::load("pack:2 numa:2 l3:2 l2:2 core:2 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  const TopologyPolicy policy(*topo, identity_pus(32), 0);
  FakeLoad load(32, 0);
  load.set(5, 3);  // NUMA level of thief 0: only 5 and 7 have work
  load.set(7, 1);
  load.set(20, 2);  // machine level: only 20
  StealState state{StealRng{13}, {}};
  for (int round = 0; round < 50; ++round) {
    const std::uint32_t reads_before = load.reads();
    const auto victims = round_of(policy, 0, load, state);
    // Levels with no visible work are tried blindly: L2 {1}, L3 {2, 3},
    // package {8..15}; the others name only their loaded members.
    ASSERT_EQ(victims.size(), 1u + 2u + 2u + 8u + 1u);
    EXPECT_EQ(victims[0], 1u);
    EXPECT_EQ(std::set<std::uint32_t>(victims.begin() + 1, victims.begin() + 3),
              (std::set<std::uint32_t>{2, 3}));
    EXPECT_EQ(std::set<std::uint32_t>(victims.begin() + 3, victims.begin() + 5),
              (std::set<std::uint32_t>{5, 7}));
    EXPECT_EQ(std::set<std::uint32_t>(victims.begin() + 5, victims.begin() + 13), range(8, 15));
    EXPECT_EQ(victims[13], 20u);
    // Each level reads a member's queue size at most once per round.
    EXPECT_LE(load.reads() - reads_before, 31u);
  }
}

TEST(TopologyPolicy, LoadAwareSweepRespectsTheCap) {
  auto topo = Topology::load("pack:2 numa:2 l3:2 l2:2 core:2 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  const TopologyPolicy policy(*topo, identity_pus(32), 1);
  FakeLoad load(32, 0);
  for (std::uint32_t w : {17u, 19u, 26u, 30u}) load.set(w, 1);  // all in thief 0's machine level
  StealState state{StealRng{17}, {}};
  std::set<std::uint32_t> named_in_machine;
  for (int round = 0; round < 200; ++round) {
    const auto victims = round_of(policy, 0, load, state);
    ASSERT_EQ(victims.size(), 5u);
    EXPECT_TRUE(load.queue_size(victims[4]) != 0) << victims[4];
    named_in_machine.insert(victims[4]);
  }
  EXPECT_EQ(named_in_machine, (std::set<std::uint32_t>{17, 19, 26, 30}));
}

TEST(TopologyPolicy, AttemptZeroRestartsARound) {
  auto topo = Topology::load("pack:1 core:4 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  const TopologyPolicy policy(*topo, identity_pus(4), 0);
  FakeLoad load(4, 1);
  StealState state{StealRng{19}, {}};
  // Abandon a round after one victim (the thief found work), then start over:
  // the new round is whole.
  ASSERT_NE(policy.victim(2, 0, load, state), kNoVictim);
  const auto victims = round_of(policy, 2, load, state);
  EXPECT_EQ(std::set<std::uint32_t>(victims.begin(), victims.end()),
            (std::set<std::uint32_t>{0, 1, 3}));
  EXPECT_EQ(victims.size(), 3u);
}

TEST(RandomPolicy, RoundsOfWorkersMinusOneThatCoverEveryOtherWorker) {
  constexpr std::uint32_t kWorkers = 8;
  constexpr int kRounds = 1000;
  const RandomPolicy policy(kWorkers);
  FakeLoad load(kWorkers, 1);
  StealState state{StealRng{2024}, {}};
  for (std::uint32_t thief = 0; thief < kWorkers; ++thief) {
    std::map<std::uint32_t, int> hits;
    for (int round = 0; round < kRounds; ++round) {
      const auto victims = round_of(policy, thief, load, state);
      ASSERT_EQ(victims.size(), kWorkers - 1);
      for (std::uint32_t v : victims) {
        ASSERT_NE(v, thief);
        ASSERT_LT(v, kWorkers);
        ++hits[v];
      }
    }
    ASSERT_EQ(hits.size(), kWorkers - 1) << "thief " << thief << " missed a victim";
    // 7000 draws over 7 victims: 1000 expected each, sd ~29.
    for (const auto& [v, n] : hits) EXPECT_NEAR(n, kRounds, 150) << "thief " << thief;
  }
}

TEST(RandomPolicy, TwoWorkersAlwaysNameTheOther) {
  const RandomPolicy policy(2);
  FakeLoad load(2, 0);
  StealState state{StealRng{1}, {}};
  EXPECT_EQ(round_of(policy, 0, load, state), std::vector<std::uint32_t>{1});
  EXPECT_EQ(round_of(policy, 1, load, state), std::vector<std::uint32_t>{0});
}

TEST(StealPolicy, OneWorkerHasNoVictim) {
  auto topo = Topology::load("pack:1 core:2 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  FakeLoad load(1, 1);
  StealState state{StealRng{1}, {}};
  for (StealPolicyKind kind : {StealPolicyKind::kRandom, StealPolicyKind::kTopology}) {
    const auto policy = make_steal_policy(kind, *topo, {1}, 2);
    ASSERT_NE(policy, nullptr);
    EXPECT_EQ(policy->workers(), 1u);
    EXPECT_EQ(policy->victim(0, 0, load, state), kNoVictim) << policy->name();
  }
}

TEST(StealPolicy, FactoryBuildsTheNamedKind) {
  auto topo = Topology::load("pack:1 core:4 pu:1");
  ASSERT_TRUE(topo) << topo.status().message();
  for (StealPolicyKind kind : {StealPolicyKind::kRandom, StealPolicyKind::kTopology}) {
    const auto policy = make_steal_policy(kind, *topo, identity_pus(4), 2);
    ASSERT_NE(policy, nullptr);
    EXPECT_EQ(policy->name(), to_string(kind));
    EXPECT_EQ(policy->workers(), 4u);
    auto parsed = parse_steal_policy(to_string(kind));
    ASSERT_TRUE(parsed) << parsed.status().message();
    EXPECT_EQ(*parsed, kind);
  }
}

TEST(StealPolicy, UnknownNameIsNamedWithTheValidOnes) {
  auto parsed = parse_steal_policy("fifo");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(), "unknown steal policy \"fifo\" (valid: random, topology)");
  EXPECT_FALSE(parse_steal_policy("Random"));
  EXPECT_FALSE(parse_steal_policy(""));
}

}  // namespace
}  // namespace beat::sched
