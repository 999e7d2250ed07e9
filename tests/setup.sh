#!/usr/bin/env bash
# setup.sh - install the Debian packages keyrotator builds and tests with, then build.
# Safe to run twice. As root it installs what is missing; otherwise it prints the exact
# apt-get line and exits 2. Usage: tests/setup.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail

KR_PACKAGES=(
  build-essential cmake pkg-config
  libcurl4-openssl-dev libcjson-dev libhiredis-dev libyaml-dev libssl-dev
  libmicrohttpd-dev libcmocka-dev zlib1g-dev
  redis-server redis-sentinel prometheus openssl python3 valgrind
)
# For the fuzz smoke only (tests/fuzz/smoke.sh): clang and its runtime with libFuzzer
# (libclang-rt-dev; clang merely recommends it). Failing to install these skips the
# smoke with a message instead of failing the set-up.
KR_FUZZ_PACKAGES=(clang libclang-rt-dev)

kr_missing_packages() {
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$p"
    fi
  done
}

kr_install_packages() {
  local missing optional
  mapfile -t missing < <(kr_missing_packages "${KR_PACKAGES[@]}")
  mapfile -t optional < <(kr_missing_packages "${KR_FUZZ_PACKAGES[@]}")
  [ "${#missing[@]}" -eq 0 ] && [ "${#optional[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    if [ "${#missing[@]}" -eq 0 ]; then
      echo "note: the fuzz smoke needs: sudo apt-get install -y ${optional[*]}" >&2
      return 0
    fi
    echo "keyrotator needs these Debian packages:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]} ${optional[*]}" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ "${#optional[@]}" -gt 0 ]; then
    echo "==> installing ${optional[*]} (fuzz smoke)"
    apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null ||
      echo "warning: could not install ${optional[*]}: the fuzz smoke will be skipped" >&2
  fi
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
