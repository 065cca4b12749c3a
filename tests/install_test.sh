#!/usr/bin/env bash
# A staged install (DESTDIR) of the build in $1: every file `cmake --install`
# promises is there, the installed beatd accepts the installed config, and
# the installed systemd unit passes systemd-analyze verify (pointed at the
# staged binary, since nothing is installed for real).
# Arguments: build dir, prefix, bindir, sysconfdir, includedir, docdir,
# datadir (full paths, as CMake's GNUInstallDirs computed them).
set -euo pipefail
build=$1 prefix=$2 bindir=$3 sysconfdir=$4 includedir=$5 docdir=$6 datadir=$7
stage="$(mktemp -d "${TMPDIR:-/tmp}/beat-install.XXXXXX")"
trap 'rm -rf "${stage}"' EXIT
fail() {
  echo "install_test: FAILED: $*" >&2
  exit 1
}

DESTDIR="${stage}" cmake --install "${build}" >/dev/null

expect=(
  "${bindir}/beatd" "${bindir}/beatctl"
  "${sysconfdir}/beat/beatd.toml"
  "${prefix}/lib/systemd/system/beatd.service"
  "${prefix}/lib/sysusers.d/beat.conf"
  "${includedir}/beat/beat_kernel.h"
  "${docdir}/README.md" "${docdir}/kernels.md" "${docdir}/metrics.md" "${docdir}/operations.md"
  "${docdir}/plugins.md" "${docdir}/protocol.md"
  "${docdir}/examples/example_plugin.c" "${docdir}/examples/prometheus.yml"
  "${datadir}/beat/grafana/beat-dashboard.json"
  "${datadir}/beat/grafana/provisioning/datasources/beat.yaml"
  "${datadir}/beat/grafana/provisioning/dashboards/beat.yaml"
)
for f in "${expect[@]}"; do
  [[ -f "${stage}${f}" ]] || fail "missing ${f}"
done
for f in "${bindir}/beatd" "${bindir}/beatctl"; do
  [[ -x "${stage}${f}" ]] || fail "${f} is not executable"
done
count="$(find "${stage}" -type f | wc -l)"
[[ "${count}" -eq "${#expect[@]}" ]] || fail "installed ${count} files, expected ${#expect[@]}: $(find "${stage}" -type f)"

"${stage}${bindir}/beatd" --check-config --config "${stage}${sysconfdir}/beat/beatd.toml" \
  | grep -qx "configuration OK" || fail "the installed beatd refused the installed config"

unit="${stage}${prefix}/lib/systemd/system/beatd.service"
grep -qx "ExecStart=${bindir}/beatd --config ${sysconfdir}/beat/beatd.toml" "${unit}" \
  || fail "ExecStart does not name the installed beatd and config: $(grep ExecStart "${unit}")"
staged_unit="${stage}/verify/beatd.service"
mkdir -p "${stage}/verify"
sed "s|^ExecStart=${bindir}/beatd|ExecStart=${stage}${bindir}/beatd|" "${unit}" >"${staged_unit}"
out="$(/usr/bin/systemd-analyze verify "${staged_unit}" 2>&1)" || fail "systemd-analyze verify: ${out}"
[[ -z "${out}" ]] || fail "systemd-analyze verify complained: ${out}"
grep -q '^u beat ' "${stage}${prefix}/lib/sysusers.d/beat.conf" || fail "beat.conf creates no user beat"
echo "install_test: ${count} files installed and checked under ${stage}"
