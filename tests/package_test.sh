#!/usr/bin/env bash
# The Debian package (cmake/Packaging.cmake), built with cpack from the build
# tree in $1:
#   1. its control fields, its exact file list and modes, its conffiles and
#      maintainer scripts; the unit and config it carries, checked by the
#      beatd it carries;
#   2. as root with dpkg: installed for real with `dpkg -i`, the installed
#      unit passes systemd-analyze verify, /usr/bin/beatd reports the
#      package's version and accepts /etc/beat/beatd.toml, postinst created
#      the user beat; then `dpkg --purge beat` removes every file again.
# Part 2 refuses to run when a package named beat is already on the system
# (it would be replaced, then purged). A user beat that the test's install
# created is deleted at the end, so the host is left as it was found.
# Exits 77 (ctest SKIP_RETURN_CODE) after part 1 when not root or without
# dpkg, and at once when the tree was not configured for /usr.
# Arguments: build dir, install prefix, project version.
set -euo pipefail
build=$1 prefix=$2 version=$3
readonly skip=77
fail() {
  echo "package_test: FAILED: $*" >&2
  exit 1
}
if [[ "${prefix}" != /usr ]]; then
  echo "package_test: SKIPPED: CMAKE_INSTALL_PREFIX is ${prefix}; the .deb is built only" \
    "from a tree configured with -DCMAKE_INSTALL_PREFIX=/usr (the presets' default)"
  exit "${skip}"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/beat-package.XXXXXX")"
installed_by_us=0
user_created_by_us=0
cleanup() {
  local rc=$?
  if [[ ${installed_by_us} -eq 1 ]]; then
    dpkg --purge beat >"${work}/purge-on-exit.log" 2>&1 ||
      { echo "package_test: dpkg --purge beat failed during cleanup:" >&2; cat "${work}/purge-on-exit.log" >&2; rc=1; }
  fi
  if [[ ${user_created_by_us} -eq 1 ]] && getent passwd beat >/dev/null; then
    userdel beat || rc=1
    if getent group beat >/dev/null; then groupdel beat || rc=1; fi
  fi
  rm -rf "${work}"
  exit "${rc}"
}
trap cleanup EXIT

# ---- 1. build and inspect ----
cpack -G DEB --config "${build}/CPackConfig.cmake" -B "${work}/out" >"${work}/cpack.log" 2>&1 ||
  fail "cpack -G DEB: $(cat "${work}/cpack.log")"
shopt -s nullglob
debs=("${work}"/out/*.deb)
shopt -u nullglob
[[ ${#debs[@]} -eq 1 ]] || fail "cpack made ${#debs[@]} .deb files: $(ls "${work}/out")"
deb="${debs[0]}"
arch="$(dpkg --print-architecture)"
[[ "$(basename "${deb}")" == "beat_${version}-1_${arch}.deb" ]] ||
  fail "package file is $(basename "${deb}"), expected beat_${version}-1_${arch}.deb"

field() { dpkg-deb --field "${deb}" "$1"; }
[[ "$(field Package)" == beat ]] || fail "Package: $(field Package)"
[[ "$(field Version)" == "${version}-1" ]] || fail "Version: $(field Version), expected ${version}-1"
[[ "$(field Architecture)" == "${arch}" ]] || fail "Architecture: $(field Architecture)"
[[ "$(field Section)" == admin ]] || fail "Section: $(field Section)"
[[ "$(field Maintainer)" == *"<"*"@"*">" ]] || fail "Maintainer is not 'Name <address>': $(field Maintainer)"
[[ -n "$(field Description)" ]] || fail "no Description"
# dpkg-shlibdeps computed Depends from the binaries' libraries.
depends="$(field Depends)"
for lib in libc6 libstdc++6 libsystemd0 libhwloc15; do
  [[ "${depends}" == *"${lib}"* ]] || fail "Depends lacks ${lib}: ${depends}"
done

# Every regular file, exactly; directories are implied.
expect=(
  ./etc/beat/beatd.toml
  ./usr/bin/beatctl
  ./usr/bin/beatd
  ./usr/include/beat/beat_kernel.h
  ./usr/lib/systemd/system/beatd.service
  ./usr/lib/sysusers.d/beat.conf
  ./usr/share/beat/grafana/beat-dashboard.json
  ./usr/share/beat/grafana/provisioning/dashboards/beat.yaml
  ./usr/share/beat/grafana/provisioning/datasources/beat.yaml
  ./usr/share/doc/beat/README.md
  ./usr/share/doc/beat/examples/example_plugin.c
  ./usr/share/doc/beat/examples/prometheus.yml
  ./usr/share/doc/beat/kernels.md
  ./usr/share/doc/beat/metrics.md
  ./usr/share/doc/beat/operations.md
  ./usr/share/doc/beat/plugins.md
  ./usr/share/doc/beat/protocol.md
)
dpkg-deb --contents "${deb}" >"${work}/contents"
actual="$(awk '$1 ~ /^-/ { print $6 }' "${work}/contents" | sort)"
wanted="$(printf '%s\n' "${expect[@]}" | sort)"
[[ "${actual}" == "${wanted}" ]] ||
  fail "file list differs (- expected, + packaged):$(diff <(echo "${wanted}") <(echo "${actual}") | grep '^[<>]' | sed 's/^</\n-/; s/^>/\n+/' | tr -d '\n')"
others="$(awk '$1 !~ /^[-d]/' "${work}/contents")"
[[ -z "${others}" ]] || fail "links or special files in the package: ${others}"
mode_owner() { awk -v f="$1" '$6 == f { print $1, $2 }' "${work}/contents"; }
for f in ./usr/bin/beatd ./usr/bin/beatctl; do
  [[ "$(mode_owner "${f}")" == "-rwxr-xr-x root/root" ]] || fail "${f}: $(mode_owner "${f}")"
done
for f in ./etc/beat/beatd.toml ./usr/lib/systemd/system/beatd.service; do
  [[ "$(mode_owner "${f}")" == "-rw-r--r-- root/root" ]] || fail "${f}: $(mode_owner "${f}")"
done

dpkg-deb --control "${deb}" "${work}/control"
[[ "$(cat "${work}/control/conffiles")" == /etc/beat/beatd.toml ]] ||
  fail "conffiles is not exactly /etc/beat/beatd.toml: $(cat "${work}/control/conffiles" 2>&1)"
for script in postinst prerm postrm; do
  [[ -x "${work}/control/${script}" ]] || fail "no executable ${script}"
  sh -n "${work}/control/${script}" || fail "${script} is not valid sh"
done
if grep -v '^ *#' "${work}/control/postinst" | grep -Eq 'systemctl +(enable|start)'; then
  fail "postinst enables or starts beatd"
fi

dpkg-deb --extract "${deb}" "${work}/root"
unit="${work}/root/usr/lib/systemd/system/beatd.service"
grep -qx "ExecStart=/usr/bin/beatd --config /etc/beat/beatd.toml" "${unit}" ||
  fail "the packaged unit's ExecStart: $(grep ExecStart "${unit}")"
"${work}/root/usr/bin/beatd" --check-config --config "${work}/root/etc/beat/beatd.toml" |
  grep -qx "configuration OK" || fail "the packaged beatd refused the packaged config"
"${work}/root/usr/bin/beatd" --help | grep -q "default: /etc/beat/beatd.toml" ||
  fail "the packaged beatd's default config is not /etc/beat/beatd.toml"
echo "package_test: $(basename "${deb}") built and inspected: ${#expect[@]} files, Depends: ${depends}"

# ---- 2. install, check, purge ----
if [[ "$(id -u)" -ne 0 ]] || ! command -v dpkg >/dev/null; then
  echo "package_test: SKIPPED the install: it needs root and dpkg (built and inspected the .deb only)"
  exit "${skip}"
fi
present="$(dpkg-query --show --showformat='${db:Status-Abbrev} ${Version}' beat 2>/dev/null || true)"
if [[ -n "${present}" && "${present}" != "un "* ]]; then
  fail "a package named beat is already on this system (dpkg status: ${present});" \
    "this test would replace and purge it: remove it first (dpkg --purge beat)"
fi
# Nor may dpkg overwrite, and the purge then delete, files of a
# `cmake --install` to /usr.
for f in "${expect[@]}"; do
  [[ ! -e "${f#.}" ]] || fail "${f#.} already exists on this system (not from a package);" \
    "this test would overwrite and then delete it"
done
getent passwd beat >/dev/null || user_created_by_us=1

installed_by_us=1
dpkg --install "${deb}" >"${work}/install.log" 2>&1 || fail "dpkg --install: $(cat "${work}/install.log")"
[[ "$(dpkg-query --show --showformat='${db:Status-Abbrev}' beat)" == "ii " ]] ||
  fail "beat is not installed after dpkg --install: $(dpkg-query --show beat)"
[[ "$(dpkg-query --show --showformat='${Conffiles}' beat)" == *"/etc/beat/beatd.toml "* ]] ||
  fail "dpkg does not track /etc/beat/beatd.toml as a conffile"

out="$(systemd-analyze verify /usr/lib/systemd/system/beatd.service 2>&1)" ||
  fail "systemd-analyze verify on the installed unit: ${out}"
[[ -z "${out}" ]] || fail "systemd-analyze verify complained about the installed unit: ${out}"
[[ "$(/usr/bin/beatd --version)" == "beatd ${version}" ]] ||
  fail "/usr/bin/beatd --version: $(/usr/bin/beatd --version 2>&1)"
# No --config: beatd falls back to its compiled-in default, /etc/beat/beatd.toml.
/usr/bin/beatd --check-config | grep -qx "configuration OK" ||
  fail "the installed beatd refused /etc/beat/beatd.toml"
[[ "$(/usr/bin/beatctl --help 2>&1)" == *beatctl* ]] || fail "/usr/bin/beatctl --help"
if command -v systemd-sysusers >/dev/null; then
  getent passwd beat >/dev/null || fail "postinst did not create the user beat"
fi

dpkg --purge beat >"${work}/purge.log" 2>&1 || fail "dpkg --purge beat: $(cat "${work}/purge.log")"
installed_by_us=0
for f in "${expect[@]}"; do
  [[ ! -e "${f#.}" ]] || fail "${f#.} is still there after dpkg --purge beat"
done
[[ ! -e /etc/beat ]] || fail "/etc/beat is still there after dpkg --purge beat"
echo "package_test: installed, verified and purged $(basename "${deb}")"
