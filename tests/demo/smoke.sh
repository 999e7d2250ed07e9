#!/usr/bin/env bash
# smoke.sh - the demo_smoke test: run tests/demo.sh without a terminal; it must exit 0 and
# print its summary (a rotation that succeeded with zero 401s and the old key revoked).
# Usage: KR_DEMO_BINARY=build/controller/keyrotator tests/demo/smoke.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(mktemp /tmp/keyrotator-demo-smoke.XXXXXX)
trap 'rm -f "$out"' EXIT
start=$SECONDS
bash "$here/../demo.sh" </dev/null >"$out" 2>&1
rc=$?
cat "$out"
fail() { echo "demo_smoke: FAIL: $*" >&2; exit 1; }
[ "$rc" -eq 0 ] || fail "demo.sh exited $rc"
grep -q '^==> summary' "$out" || fail "no summary"
grep -q 'Succeeded in' "$out" || fail "the rotation did not succeed"
grep -q '^401s seen by consumers: 0 of' "$out" || fail "consumers saw 401s"
grep -q ': revoked (in Valkey: not in the active set' "$out" || fail "old key not revoked"
grep -q $'\033\\[' "$out" && fail "cursor/colour escapes without a terminal"
grep -q '^==> stopping the controller and the cluster' "$out" || fail "no clean-up"
echo "demo_smoke: ok in $((SECONDS - start))s"
