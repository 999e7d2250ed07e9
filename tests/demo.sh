#!/usr/bin/env bash
# demo.sh - the main job: build keyrotator and show what it does today, on a local
# simulated cluster (tests/kubeapi over HTTPS) and a real redis-server, all on loopback.
# Safe to run twice; everything it starts is stopped and removed on exit or Ctrl-C.
# Usage: tests/demo.sh [--keep]   (--keep leaves the servers running until Ctrl-C)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

keep=0
[ "${1:-}" = "--keep" ] && keep=1

kr_install_packages
echo "==> building (build/)"
kr_build "$KR_ROOT/build"
bin=$KR_ROOT/build/controller/keyrotator

work=$(mktemp -d /tmp/keyrotator-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "demo: timed out waiting for $what" >&2; exit 1; fi
    sleep 0.1
  done
}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "keyrotator --help"
"$bin" --help

step "starting a local Kubernetes API server (HTTPS, generated CA, bearer token)"
python3 "$KR_ROOT/tests/kubeapi/kubeapi.py" --port 0 --token "demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')" \
  --tls-dir "$work/tls" --ready-file "$work/kubeapi.ready" --kubeconfig-out "$work/kubeconfig" \
  --crd "$KR_ROOT/crds/keyrotator.io_keyrotations.yaml" --namespace sirius \
  >"$work/kubeapi.log" 2>&1 &
pids+=($!)
wait_for "the API server" 30 test -s "$work/kubeapi.ready"
echo "kubeconfig: $work/kubeconfig (server $(cut -d' ' -f2 "$work/kubeapi.ready"))"

step "keyrotator doctor: can it reach the cluster, is the CRD installed, may it read Secrets?"
"$bin" doctor --kubeconfig "$work/kubeconfig"

step "keyrotator schedule: when would \"0 3 1 */3 *\" (quarterly, 03:00 UTC) rotate?"
"$bin" schedule "0 3 1 */3 *" --count 4

step "starting redis-server (speaks Valkey's protocol) on a free loopback port"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for "redis-server" 10 redis-cli -p "$port" ping
export KEYROTATOR_VALKEY_ADDR=127.0.0.1:$port

step "the runbook by hand, with keyrotator keys: create a key (printed once), list, verify"
key=$("$bin" keys create --label demo-1 --prefix sk_)
echo "created a key; its value stays in a shell variable and is not shown here"
"$bin" keys list
"$bin" keys verify "$key" && echo "verify: active (exit 0)"

step "incident: Valkey data loss (FLUSHALL), then keys reconcile restores it from the deployed key"
redis-cli -p "$port" flushall >/dev/null
"$bin" keys verify "$key" || echo "verify: not active (exit $?) - consumers would get 401 now"
DEMO_KEY=$key "$bin" keys reconcile --key-from-env DEMO_KEY
"$bin" keys verify "$key" && echo "verify: active again (exit 0)"

step "revoke it: the old key now fails verification"
"$bin" keys revoke "$key"
"$bin" keys verify "$key" || echo "verify: revoked (exit $?)"
unset key

echo
echo "Done. The controller (keyrotator run) and live rotations arrive with the next issues."
if [ "$keep" -eq 1 ]; then
  echo "Servers still running: KUBECONFIG=$work/kubeconfig, KEYROTATOR_VALKEY_ADDR=$KEYROTATOR_VALKEY_ADDR"
  echo "Press Ctrl-C to stop and clean up."
  while sleep 3600; do :; done
fi
