// daemon/topology.hpp: core enumeration and share levels on synthetic
// machines (this one has a single package and NUMA node), and cgroup cpu.max
// parsing.
#include "daemon/topology.hpp"

#include <gtest/gtest.h>

#include <utility>

namespace beat {
namespace {

TEST(Topology, OneSlotPerCoreOnTheFirstPuOfEachCore) {
  // 2 packages x 2 NUMA nodes x 4 cores x 2 hardware threads = 16 cores.
  auto t = Topology::load("pack:2 numa:2 l3:1 core:4 pu:2");
  ASSERT_TRUE(t) << t.status().message();
  ASSERT_EQ(t->cores().size(), 16u);
  for (std::uint32_t i = 0; i < 16; ++i) {
    EXPECT_EQ(t->cores()[i].core_index, i);
    EXPECT_EQ(t->cores()[i].os_pu, 2 * i) << "core " << i << " must run on its first thread";
  }
  EXPECT_EQ(t->default_worker_count(), 16u);
}

TEST(Topology, MachineWithoutSmt) {
  auto t = Topology::load("pack:1 core:3 pu:1");
  ASSERT_TRUE(t) << t.status().message();
  ASSERT_EQ(t->cores().size(), 3u);
  EXPECT_EQ(t->cores()[2].os_pu, 2u);
}

TEST(Topology, BadSyntheticDescriptionIsNamed) {
  auto t = Topology::load("pack:two");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.status().message(), "hwloc rejected synthetic topology \"pack:two\"");
}

TEST(Topology, ThisMachineHasAtLeastOneCore) {
  auto t = Topology::load();
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_GE(t->cores().size(), 1u);
  EXPECT_GE(t->default_worker_count(), 1u);
  EXPECT_LE(t->default_worker_count(), t->cores().size());
}

TEST(Topology, ShareLevelsWhereEveryLevelIsDistinct) {
  // Per package 2 NUMA nodes; per NUMA node 2 L3s; per L3 2 L2s; per L2 2
  // cores of one PU: 32 PUs, OS index = logical index.
  auto t = Topology::load("pack:2 numa:2 l3:2 l2:2 core:2 pu:1");
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->share_level(0, 0), ShareLevel::kCore);
  EXPECT_EQ(t->share_level(0, 1), ShareLevel::kL2);
  EXPECT_EQ(t->share_level(0, 2), ShareLevel::kL3);
  EXPECT_EQ(t->share_level(0, 3), ShareLevel::kL3);
  EXPECT_EQ(t->share_level(0, 4), ShareLevel::kNuma);
  EXPECT_EQ(t->share_level(0, 7), ShareLevel::kNuma);
  EXPECT_EQ(t->share_level(0, 8), ShareLevel::kPackage);
  EXPECT_EQ(t->share_level(0, 15), ShareLevel::kPackage);
  EXPECT_EQ(t->share_level(0, 16), ShareLevel::kMachine);
  EXPECT_EQ(t->share_level(0, 31), ShareLevel::kMachine);
  EXPECT_EQ(t->share_level(21, 20), ShareLevel::kL2);
  EXPECT_EQ(t->share_level(21, 23), ShareLevel::kL3);
  EXPECT_EQ(t->share_level(21, 16), ShareLevel::kNuma);
  EXPECT_EQ(t->share_level(21, 25), ShareLevel::kPackage);
  EXPECT_EQ(t->share_level(21, 9), ShareLevel::kMachine);
}

TEST(Topology, ShareLevelIsSymmetric) {
  auto t = Topology::load("pack:2 numa:2 l3:2 l2:2 core:2 pu:1");
  ASSERT_TRUE(t) << t.status().message();
  for (std::uint32_t a = 0; a < 32; ++a)
    for (std::uint32_t b = 0; b < 32; ++b)
      ASSERT_EQ(t->share_level(a, b), t->share_level(b, a)) << a << " vs " << b;
}

TEST(Topology, ShareLevelsWithNumaNodeEqualToL3) {
  // NUMA nodes attached to the L3s: a shared L3 is found first, so no pair
  // is kNuma.
  auto t = Topology::load("pack:2 numa:2 l3:1 core:4 pu:1");
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->share_level(5, 5), ShareLevel::kCore);
  EXPECT_EQ(t->share_level(0, 3), ShareLevel::kL3);  // no L2 objects here
  EXPECT_EQ(t->share_level(0, 4), ShareLevel::kPackage);
  EXPECT_EQ(t->share_level(7, 8), ShareLevel::kMachine);
  EXPECT_EQ(t->share_level(12, 15), ShareLevel::kL3);
}

TEST(Topology, ShareLevelsWithNumaBelowL3) {
  // Sub-NUMA clustering: one L3 per package over two NUMA nodes. The shared
  // L3 wins over the NUMA node, by the documented order.
  auto t = Topology::load("pack:2 l3:1 numa:2 l2:2 core:2 pu:1");
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->share_level(0, 1), ShareLevel::kL2);
  EXPECT_EQ(t->share_level(0, 2), ShareLevel::kL3);
  EXPECT_EQ(t->share_level(0, 4), ShareLevel::kL3);
  EXPECT_EQ(t->share_level(0, 8), ShareLevel::kMachine);
}

TEST(Topology, SmtSiblingsShareTheCore) {
  auto t = Topology::load("pack:1 l3:2 l2:2 core:2 pu:2");
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->share_level(0, 1), ShareLevel::kCore);
  EXPECT_EQ(t->share_level(14, 15), ShareLevel::kCore);
  EXPECT_EQ(t->share_level(0, 2), ShareLevel::kL2);
  EXPECT_EQ(t->share_level(1, 3), ShareLevel::kL2);
  EXPECT_EQ(t->share_level(0, 4), ShareLevel::kL3);
  EXPECT_EQ(t->share_level(0, 7), ShareLevel::kL3);
  // One NUMA node for the whole machine: everything else shares it.
  EXPECT_EQ(t->share_level(0, 8), ShareLevel::kNuma);
  EXPECT_EQ(t->share_level(3, 15), ShareLevel::kNuma);
}

TEST(Topology, UnknownPuSharesOnlyTheMachine) {
  auto t = Topology::load("pack:1 core:4 pu:1");
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->share_level(0, 4), ShareLevel::kMachine);
  EXPECT_EQ(t->share_level(1000, 0), ShareLevel::kMachine);
  EXPECT_EQ(t->share_level(1000, 1000), ShareLevel::kCore);  // the same PU
  EXPECT_EQ(t->share_level(0, 3), ShareLevel::kNuma);
}

TEST(Topology, ShareLevelsSurviveAMove) {
  auto loaded = Topology::load("pack:2 core:2 pu:2");
  ASSERT_TRUE(loaded) << loaded.status().message();
  Topology t = std::move(*loaded);
  EXPECT_EQ(t.share_level(0, 1), ShareLevel::kCore);
  EXPECT_EQ(t.share_level(0, 2), ShareLevel::kNuma);  // one NUMA node, so it beats package
  EXPECT_EQ(t.share_level(0, 4), ShareLevel::kNuma);
}

TEST(Topology, ThisMachineSharesLevelsBetweenItsCores) {
  auto t = Topology::load();
  ASSERT_TRUE(t) << t.status().message();
  const auto& cores = t->cores();
  for (const CoreSlot& a : cores) {
    EXPECT_EQ(t->share_level(a.os_pu, a.os_pu), ShareLevel::kCore);
    for (const CoreSlot& b : cores) {
      if (a.os_pu != b.os_pu) {
        EXPECT_NE(t->share_level(a.os_pu, b.os_pu), ShareLevel::kCore);
      }
    }
  }
}

TEST(Topology, ShareLevelNames) {
  EXPECT_EQ(to_string(ShareLevel::kCore), "core");
  EXPECT_EQ(to_string(ShareLevel::kL2), "l2");
  EXPECT_EQ(to_string(ShareLevel::kL3), "l3");
  EXPECT_EQ(to_string(ShareLevel::kNuma), "numa");
  EXPECT_EQ(to_string(ShareLevel::kPackage), "package");
  EXPECT_EQ(to_string(ShareLevel::kMachine), "machine");
}

TEST(Topology, CpuMaxQuotaRoundsUp) {
  EXPECT_EQ(parse_cpu_max("max 100000"), 0u);
  EXPECT_EQ(parse_cpu_max("200000 100000"), 2u);
  EXPECT_EQ(parse_cpu_max("150000 100000"), 2u);
  EXPECT_EQ(parse_cpu_max("50000 100000"), 1u);
  EXPECT_EQ(parse_cpu_max("1 100000"), 1u);
  EXPECT_EQ(parse_cpu_max(""), 0u);
  EXPECT_EQ(parse_cpu_max("abc 100000"), 0u);
  EXPECT_EQ(parse_cpu_max("100000 0"), 0u);
}

}  // namespace
}  // namespace beat
