#!/usr/bin/env bash
# Installs Beat's build and test dependencies from the Debian 12 archive.
#
# Idempotent: asks dpkg which packages are missing and installs only those;
# `apt-get update` runs only when something is missing, so a second run does
# nothing. Runs as root, or through sudo when available.
set -euo pipefail

readonly PACKAGES=(
  cmake
  ninja-build
  g++
  pkg-config
  libboost-dev
  libhwloc-dev
  hwloc
  libspdlog-dev
  prometheus-cpp-dev
  libhwy-dev
  libtomlplusplus-dev
  libcli11-dev
  libsystemd-dev
  systemd
  libxxhash-dev
  libisal-dev
  libopenblas-dev
  nettle-dev
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libtbb-dev
  python3
  python3-yaml
  curl
  prometheus
  dpkg-dev
  file
)

is_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
  [[ "${status}" == "install ok installed" ]]
}

missing=()
for package in "${PACKAGES[@]}"; do
  if ! is_installed "${package}"; then
    missing+=("${package}")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: not root and sudo is not available; install them as root" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"

still_missing=()
for package in "${missing[@]}"; do
  if ! is_installed "${package}"; then
    still_missing+=("${package}")
  fi
done
if [[ ${#still_missing[@]} -ne 0 ]]; then
  echo "install-deps: still missing after apt-get install: ${still_missing[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${#missing[@]} package(s)"
