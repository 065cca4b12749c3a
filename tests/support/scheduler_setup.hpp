// What scheduler tests (tests/daemon/scheduler/, tests/kernels/) set up the
// same way: the machine's topology, and options for a scheduler whose
// workers are unpinned, so the tests also run while ctest runs another
// program on this 2-core machine.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

#include "daemon/scheduler/scheduler.hpp"
#include "daemon/topology.hpp"

namespace beat::test {

// This machine's topology; fails the calling test when hwloc cannot load it.
inline Topology machine_topology() {
  auto t = Topology::load();
  EXPECT_TRUE(t) << t.status().message();
  return std::move(*t);
}

// SchedulerOptions with `workers` unpinned workers and the given idle spin
// and heartbeat; everything else at its default.
inline sched::SchedulerOptions unpinned_options(std::uint32_t workers,
                                                std::uint32_t idle_spin_us = 100,
                                                std::uint32_t heartbeat_us = 100) {
  sched::SchedulerOptions o;
  o.workers = workers;
  o.pin = false;
  o.idle_spin_us = idle_spin_us;
  o.heartbeat_us = heartbeat_us;
  return o;
}

}  // namespace beat::test
