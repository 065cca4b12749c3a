#!/usr/bin/env bash
# Beat in one command: installs what is missing, builds beatd, beatctl and the
# example kernel plugin with the release preset, starts a private beatd that
# loads the plugin, runs a few beatctl commands against it (two verified
# benchmarks, checked fork-join and data kernels) and stops it.
#
# The daemon runs as the current user with its own socket in a temporary
# directory and its own segment prefix (beatqs-<pid of this script>), so it
# never touches a system-wide beatd. Its metrics exposer takes a free port.
# Exits non-zero when any step fails, when beatd does not exit 0 on SIGTERM, or
# when it leaves its socket or a shared-memory segment behind.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

readonly kStartTimeoutS=20  # beatd start-up: listening socket accepts
readonly kStopTimeoutS=40   # SIGTERM drain + exit (config shutdown_timeout_ms is 30 s)

started=${SECONDS}
work_dir="$(mktemp -d "${TMPDIR:-/tmp}/beatqs.XXXXXX")"
socket="${work_dir}/beatd.sock"
log="${work_dir}/beatd.log"
prefix="beatqs-$$"
beatd="${repo_root}/build/release/daemon/beatd"
beatctl="${repo_root}/build/release/client/beatctl"
daemon_pid=""

say() { printf '\n==> %s\n' "$*"; }
fail() {
  echo "quickstart: FAILED: $*" >&2
  exit 1
}
log_tail() {
  if [[ -s "${log}" ]]; then
    echo "---- last lines of the beatd log (${log}) ----" >&2
    tail -n 30 "${log}" >&2
    echo "----" >&2
  fi
}

# On any exit: stop a daemon still running, remove what it may have left.
cleanup() {
  local rc=$?
  trap - EXIT
  if [[ ${rc} -ne 0 ]]; then
    log_tail
  fi
  if [[ -n "${daemon_pid}" ]] && kill -0 "${daemon_pid}" 2>/dev/null; then
    kill -TERM "${daemon_pid}" 2>/dev/null || true
    local waited=0
    while kill -0 "${daemon_pid}" 2>/dev/null && [[ ${waited} -lt 100 ]]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "${daemon_pid}" 2>/dev/null || true
    wait "${daemon_pid}" 2>/dev/null || true
  fi
  rm -f /dev/shm/"${prefix}"-* 2>/dev/null || true
  if [[ ${rc} -ne 0 && -s "${log}" ]]; then
    local kept="${TMPDIR:-/tmp}/${prefix}.log"
    cp "${log}" "${kept}" && echo "quickstart: full beatd log kept in ${kept}" >&2
  fi
  rm -rf "${work_dir}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# True when something accepts connections on the Unix socket $1.
socket_accepts() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(1.0)
s.connect(sys.argv[1])
s.close()
PY
}

# Prints the output of `beatctl bench --json` ($1: one JSON line) readably;
# fails when the line is missing, reports errors, or was not verified.
print_bench() {
  python3 - "$1" <<'PY'
import json
import sys

raw = sys.argv[1].strip()
try:
    r = json.loads(raw.splitlines()[-1])
except (ValueError, IndexError) as error:
    sys.exit(f"quickstart: bench printed no JSON object ({error}): {raw!r}")

print(f"  kernel          {r.get('kernel')}: {r.get('clients')} client(s) x "
      f"{r.get('threads')} thread(s), batches of {r.get('batch')}, "
      f"{r.get('workers')} daemon worker(s)")
if "data_bytes" in r:
    print(f"  data per task   {r['data_bytes']:,} bytes")
print(f"  tasks           {r.get('tasks', 0):,} in {r.get('seconds', 0.0):.3f} s")
print(f"  throughput      {r.get('tasks_per_second', 0.0):,.0f} tasks/s")
print(f"  latency         p50 {r.get('latency_p50_us', 0.0):,.1f} us, "
      f"p99 {r.get('latency_p99_us', 0.0):,.1f} us, max {r.get('latency_max_us', 0.0):,.1f} us")
print(f"  errors          {r.get('errors')}")
print(f"  verified        {'yes' if r.get('verified') is True else 'NO'}")
if r.get("errors") != 0 or r.get("verified") is not True:
    sys.exit("quickstart: bench reported errors or unverified results")
PY
}

say "dependencies"
bash scripts/install-deps.sh

say "configure + build (release preset: beatd, beatctl)"
cmake --preset release >/dev/null
cmake --build --preset release --target beatd beatctl beat_example_plugin
[[ -x "${beatd}" ]] || fail "build produced no ${beatd}"
[[ -x "${beatctl}" ]] || fail "build produced no ${beatctl}"

# The example kernel plugin, from a directory only this user can write
# (beatd refuses plugins others could have replaced).
plugin_dir="${work_dir}/plugins"
mkdir -m 0700 "${plugin_dir}"
install -m 0755 build/release/kernels/plugins/libbeat_example_plugin.so "${plugin_dir}/"

say "starting beatd (socket ${socket}, segment prefix ${prefix}, plugins ${plugin_dir}, log ${log})"
"${beatd}" --config config/beatd.toml --socket "${socket}" --segment-prefix "${prefix}" \
  --metrics-address 127.0.0.1:0 --plugin-dir "${plugin_dir}" >"${log}" 2>&1 &
daemon_pid=$!
deadline=$((SECONDS + kStartTimeoutS))
until socket_accepts "${socket}"; do
  if ! kill -0 "${daemon_pid}" 2>/dev/null; then
    daemon_rc=0
    wait "${daemon_pid}" || daemon_rc=$?
    daemon_pid=""
    fail "beatd exited with status ${daemon_rc} before accepting connections"
  fi
  if [[ ${SECONDS} -ge ${deadline} ]]; then
    fail "beatd did not accept connections on ${socket} within ${kStartTimeoutS} s"
  fi
  sleep 0.1
done
echo "beatd is up (pid ${daemon_pid})"

ctl=("${beatctl}" --socket "${socket}")

say "beatctl kernels"
"${ctl[@]}" kernels

say "beatctl bench: noop, 10,000,000 tasks, batches of 256, 2 clients x 1 thread"
noop_json="$("${ctl[@]}" bench --kernel noop --tasks 10000000 --batch 256 --clients 2 \
  --threads 1 --json)" || fail "noop bench failed: ${noop_json}"
print_bench "${noop_json}"

say "beatctl bench: checksum, 100,000 tasks of 4 KiB, batches of 64 (results verified)"
checksum_json="$("${ctl[@]}" bench --kernel checksum --tasks 100000 --batch 64 \
  --data-bytes 4096 --json)" || fail "checksum bench failed: ${checksum_json}"
print_bench "${checksum_json}"

# Fork-join kernels: one task each, split across the workers by work
# stealing; each kernel checks its own answer (a wrong one exits 1).
say "beatctl run: fork-join kernels (fib 32, nqueens 12, uts T1, matmul 1024), results checked"
for task in "fib 32" "nqueens 12" "uts 1" "matmul 1024"; do
  # shellcheck disable=SC2086  # the kernel name and its argument are two words
  "${ctl[@]}" run ${task} || fail "beatctl run ${task} failed"
done

# Data kernels over a client's arena (beatctl run fills --data-bytes with
# bytes 0, 1, 2, ...): a built-in and the example plugin's, results checked
# against values computed here.
say "beatctl run: data kernels (crc32c built-in, example.count_byte plugin), results checked"
expected_crc="$(python3 -c '
crc = 0xFFFFFFFF
for b in bytes(i % 256 for i in range(4096)):
    crc ^= b
    for _ in range(8):
        crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
print(crc ^ 0xFFFFFFFF)')"
run_checked() {  # $1: expected result; the rest: beatctl run arguments
  local expected=$1 out
  shift
  out="$("${ctl[@]}" run "$@" --json)" || fail "beatctl run $* failed: ${out}"
  echo "  $*: ${out}"
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
sys.exit(0 if r["status"] == "ok" and r["result"] == int(sys.argv[2]) else 1)' "${out}" "${expected}" \
    || fail "beatctl run $*: expected result ${expected}"
}
run_checked "${expected_crc}" crc32c 0 --data-bytes 4096
run_checked 16 example.count_byte 7 --data-bytes 4096    # 4096 bytes of 0..255: sixteen 7s
run_checked 100 example.utf8_validate --data-bytes 100   # bytes 0..99: 100 ASCII code points

say "beatctl status"
"${ctl[@]}" status

say "stopping beatd (SIGTERM)"
kill -TERM "${daemon_pid}"
daemon_rc=0
deadline=$((SECONDS + kStopTimeoutS))
while kill -0 "${daemon_pid}" 2>/dev/null; do
  [[ ${SECONDS} -lt ${deadline} ]] || fail "beatd still running ${kStopTimeoutS} s after SIGTERM"
  sleep 0.1
done
wait "${daemon_pid}" || daemon_rc=$?
daemon_pid=""
[[ ${daemon_rc} -eq 0 ]] || fail "beatd exited with status ${daemon_rc} after SIGTERM (expected 0)"
[[ ! -e "${socket}" ]] || fail "beatd left its socket ${socket} behind"
leftovers="$(compgen -G "/dev/shm/${prefix}-*" || true)"
[[ -z "${leftovers}" ]] || fail "beatd left shared-memory segments behind: ${leftovers}"
echo "beatd exited 0; socket and segments removed"

elapsed=$((SECONDS - started))
say "quickstart passed in $((elapsed / 60))m$((elapsed % 60))s"
