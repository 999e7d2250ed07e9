#!/usr/bin/env bash
# setup.sh - install the Debian packages keyrotator builds and tests with, then build.
# Safe to run twice. As root it installs what is missing; otherwise it prints the exact
# apt-get line and exits 2. Usage: tests/setup.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail

KR_PACKAGES=(
  build-essential cmake pkg-config
  libcurl4-openssl-dev libcjson-dev libhiredis-dev libyaml-dev libssl-dev
  libmicrohttpd-dev libcmocka-dev
  redis-server prometheus openssl python3 valgrind
)

kr_missing_packages() {
  local p
  for p in "${KR_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$p"
    fi
  done
}

kr_install_packages() {
  local missing
  mapfile -t missing < <(kr_missing_packages)
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "keyrotator needs these Debian packages:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "==> installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

kr_build() {
  local dir=$1; shift
  cmake -S "$KR_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)" >/dev/null
}

KR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  kr_install_packages
  build_dir=${1:-$KR_ROOT/build}
  [ $# -gt 0 ] && shift
  kr_build "$build_dir" "$@"
  echo "==> built $build_dir/controller/keyrotator"
fi
