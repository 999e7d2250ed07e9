#!/usr/bin/env bash
# check.sh - the whole test suite: installs missing packages, builds, runs every test,
# then builds with AddressSanitizer + UBSan and runs the suite again, and ends with a short
# libFuzzer run of every fuzz target (clang; KR_FUZZ_SECONDS each, default 10).
# Usage: tests/check.sh [--quick]   (--quick skips the sanitizer pass and the fuzz smoke)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

quick=0
[ "${1:-}" = "--quick" ] && quick=1

kr_install_packages
cd "$KR_ROOT"
jobs=$(nproc)

if [ "$quick" -eq 0 ]; then
  echo "==> sanitizer build (ASan + UBSan): build-asan/"
  kr_build "$KR_ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DKR_SANITIZE=ON
  # The benchmark smoke measures nothing meaningful under ASan, and the soak smoke's chaos
  # minute is the longest test: both run in the release pass only.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$KR_ROOT/build-asan" -j"$jobs" --output-on-failure -LE '^(bench|soak)$' 
fi

echo "==> release build: build/"
kr_build "$KR_ROOT/build"
ctest --test-dir "$KR_ROOT/build" -j"$jobs" --output-on-failure

if [ "$quick" -eq 0 ]; then
  KR_FUZZ_BUILD="$KR_ROOT/build-fuzz" bash "$KR_ROOT/tests/fuzz/smoke.sh"
fi
