// Running a check once per Highway target, for the tests of SIMD code
// (daemon/batching/similarity, kernels/blas1, kernels/matmul_tile).
//
// Thread-safety: one thread (the test's); it changes Highway's global
// target mask.
#pragma once

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace beat::test {

// Runs `check` (with the target, when it takes one) once per Highway target
// this CPU supports and this build compiled, with dispatch forced to it,
// after checking that `current_target_name()` (what the code under test
// says it dispatches to) followed; restores the default after.
template <class Name, class F>
void on_every_target(Name&& current_target_name, F&& check) {
  const std::vector<std::int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (const std::int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    EXPECT_EQ(std::string(current_target_name()), hwy::TargetName(target))
        << "dispatch did not follow the mock";
    if constexpr (std::is_invocable_v<F&, std::int64_t>)
      check(target);
    else
      check();
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace beat::test
