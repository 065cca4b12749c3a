#!/usr/bin/env bash
# Runs Beat's whole test suite and prints one summary line, "N passed, N failed".
#
#   1. install missing dependencies (scripts/install-deps.sh);
#   2. build the release preset and run every test except the integration ones
#      in parallel (unit, stress and anything unlabelled), then the integration
#      tests one at a time (each starts its own beatd; on a 2-core machine two
#      daemons at once would only measure contention);
#   3. build the tsan preset and run every test again under ThreadSanitizer,
#      the integration tests against a TSan-built beatd (required for the
#      lock-free rings, the worker pool and, later, the deques).
#
# Exits non-zero when a build or a test fails, or when no test ran.
# Environment: BEAT_TEST_JOBS sets how many non-integration tests run at once
# (default: the number of cores); BEAT_SKIP_TSAN=1 skips step 3 (for quick local
# iterations; CI never sets it).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

cores="$(nproc 2>/dev/null || echo 2)"
test_jobs="${BEAT_TEST_JOBS:-${cores}}"
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/beat-tests.XXXXXX")"
started=${SECONDS}

total_passed=0
total_failed=0
failed_steps=()

summary() {
  local rc=$?
  local elapsed=$((SECONDS - started))
  if [[ ${#failed_steps[@]} -ne 0 ]]; then
    echo "run-tests: failed steps: ${failed_steps[*]}" >&2
  fi
  echo "run-tests: logs in ${log_dir}; took $((elapsed / 60))m$((elapsed % 60))s"
  if [[ ${rc} -eq 0 ]] && { [[ ${total_failed} -ne 0 ]] || [[ ${total_passed} -eq 0 ]] ||
                            [[ ${#failed_steps[@]} -ne 0 ]]; }; then
    rc=1
  fi
  echo "${total_passed} passed, ${total_failed} failed"
  exit "${rc}"
}
trap summary EXIT

step() { echo; echo "==> $*"; }

# Runs `ctest "$@"`, echoing and logging its output, and adds its counts to the
# totals. ctest ends with "X% tests passed, Y tests failed out of Z"; a run that
# exits non-zero without that line (no tests found, a crash of ctest itself)
# counts as one failure so that it cannot pass silently.
run_ctest() {
  local name="$1"
  shift
  local log="${log_dir}/${name}.log"
  local rc=0
  step "ctest $* (${name})"
  ctest "$@" 2>&1 | tee "${log}" || rc=$?
  local line
  line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "${log}" | tail -n 1 || true)"
  if [[ -n "${line}" ]]; then
    local failed total
    failed="$(sed -E 's/^[0-9]+% tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"${line}")"
    total="$(sed -E 's/^[0-9]+% tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"${line}")"
    total_passed=$((total_passed + total - failed))
    total_failed=$((total_failed + failed))
    if [[ ${rc} -ne 0 && ${failed} -eq 0 ]]; then
      failed_steps+=("${name}(ctest exit ${rc})")
    fi
  elif [[ ${rc} -ne 0 ]]; then
    total_failed=$((total_failed + 1))
    failed_steps+=("${name}(no summary, ctest exit ${rc})")
  else
    failed_steps+=("${name}(no tests ran)")
  fi
}

step "dependencies"
bash scripts/install-deps.sh

step "configure + build: release"
cmake --preset release
cmake --build --preset release

run_ctest release-parallel --preset release -LE integration -j "${test_jobs}"
run_ctest release-integration --preset release -L integration -j 1

if [[ "${BEAT_SKIP_TSAN:-0}" != "1" ]]; then
  step "configure + build: tsan"
  cmake --preset tsan
  # Every test program, including the integration tests, which also builds
  # beatd and beatctl under TSan: the daemon's worker pool (QSBR
  # reclamation, completion-slot reuse across workers) is lock-free too. A
  # TSan report makes the reporting process exit 66, which fails the test.
  cmake --build --preset tsan
  run_ctest tsan-unit --preset tsan -LE integration -j "${test_jobs}"
  run_ctest tsan-integration --preset tsan -L integration -j 1
else
  echo "run-tests: BEAT_SKIP_TSAN=1: ThreadSanitizer run skipped" >&2
fi
