// daemon/topology.hpp: core enumeration on synthetic machines (this one has
// a single package and NUMA node), and cgroup cpu.max parsing.
#include "daemon/topology.hpp"

#include <gtest/gtest.h>

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
