#!/usr/bin/env bash
# demo.sh - the main job: build keyrotator and watch it rotate an API key with zero downtime on
# a local simulated cluster (tests/sim: an API server, Valkey, prometheus, and api/ui/engine
# pods sending real traffic), all on loopback. Safe to run twice; everything it starts is
# stopped and removed on exit or Ctrl-C.
# Usage: tests/demo.sh [--keep]   (--keep leaves the cluster and controller up until Ctrl-C)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

keep=0
[ "${1:-}" = "--keep" ] && keep=1

kr_install_packages
if [ -n "${KR_DEMO_BINARY:-}" ]; then # tests (demo_smoke) pass the binary they built
  bin=$KR_DEMO_BINARY
else
  echo "==> building (build/)"
  kr_build "$KR_ROOT/build"
  bin=$KR_ROOT/build/controller/keyrotator
fi

work=$(mktemp -d /tmp/keyrotator-demo.XXXXXX)
ctl_pid= sleep_pid=
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "==> stopping the controller and the cluster, removing $work"
  [ -n "$sleep_pid" ] && kill "$sleep_pid" 2>/dev/null
  [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null && wait "$ctl_pid" 2>/dev/null || true
  "$KR_ROOT/tests/py" "$KR_ROOT/tests/sim/cluster.py" down --dir "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then bold=$'\033[1m' off=$'\033[0m'; else bold= off=; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "demo: timed out waiting for $what" >&2; exit 1; fi
    sleep 0.1
  done
}
free_port() { "$KR_ROOT/tests/py" -c 'import krtest; print(krtest.free_port())'; }

step "starting the simulated cluster: API server, Valkey (redis-server), prometheus, and Sirius"
echo "    sirius-api (2 pods) checks X-API-Key against Valkey; sirius-ui (2) and sirius-engine (1)"
echo "    call it 10 times a second each with the key from Secret sirius-api-key, counting 401s."
"$KR_ROOT/tests/py" "$KR_ROOT/tests/sim/cluster.py" up --dir "$work/cluster" --seed-key --prometheus --detach \
  >/dev/null
# shellcheck disable=SC1091
source "$work/cluster/cluster.env"
export KUBECONFIG NAMESPACE VALKEY_ADDR VALKEY_PASSWORD API_SERVICE_URL SIM_STATE_DIR
echo "    kubeconfig:  $KUBECONFIG"
echo "    Valkey:      $VALKEY_ADDR      api Service: $API_SERVICE_URL"
echo "    prometheus:  $PROMETHEUS_URL (scrapes every api pod each second)"

step "starting the controller: keyrotator run"
metrics_port=$(free_port)
health_port=$(free_port)
"$bin" run --kubeconfig "$KUBECONFIG" --namespace "$NAMESPACE" \
  --metrics-addr "127.0.0.1:$metrics_port" --health-addr "127.0.0.1:$health_port" \
  --instance demo >"$work/controller.log" 2>&1 &
ctl_pid=$!
ready() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1"; }
wait_for "the controller's /readyz" 30 ready "http://127.0.0.1:$health_port/readyz"
echo "    metrics: http://127.0.0.1:$metrics_port/metrics   JSON logs: $work/controller.log"

step "the administrator's part: a KeyStore, and the Secret opted in"
echo "    Where keys live is for an administrator to say (role keyrotator-keystore-admin); a"
echo "    KeyRotation only names a KeyStore. The example's second object, with this Valkey and"
echo "    no password:"
cat >"$work/keystore.yaml" <<EOF
apiVersion: keyrotator.io/v1alpha1
kind: KeyStore
metadata:
  name: sirius-valkey
  namespace: sirius
spec:
  address: "$VALKEY_ADDR"
  database: 0
  layout:
    activeSet: "api_keys:active"
    metaKey: "api_key:{id}:meta"
    bootstrapKey: "api_keys:bootstrap"
    storeAs: sha256
EOF
sed 's/^/    /' "$work/keystore.yaml"
"$KR_ROOT/tests/py" "$KR_ROOT/tests/demo/watch.py" apply "$work/keystore.yaml" | sed 's/^/    /'
echo "    The pods already read Secret sirius-api-key. The controller adopts a Secret it did not"
echo "    create only when the Secret names the KeyRotation in an annotation:"
echo "    \$ kubectl -n sirius annotate secret sirius-api-key keyrotator.io/keyrotation=sirius-service-key"
"$KR_ROOT/tests/py" "$KR_ROOT/tests/demo/watch.py" annotate sirius-api-key \
  keyrotator.io/keyrotation=sirius-service-key | sed 's/^/    /'

step "applying a KeyRotation (manifests/examples/sirius-keyrotation.yaml at demo speed)"
cat >"$work/keyrotation.yaml" <<EOF
# As the example, without sirius-scanner, with this cluster's addresses, and seconds instead
# of minutes (interval 2s, validationPeriod 6s, a 10s rate window).
apiVersion: keyrotator.io/v1alpha1
kind: KeyRotation
metadata:
  name: sirius-service-key
  namespace: sirius
spec:
  secretRef: {name: sirius-api-key, key: SIRIUS_API_KEY}
  keyStoreRef: {kind: KeyStore, name: sirius-valkey}
  key: {prefix: "sk_", bytes: 32}
  stages:
    - {name: api, workloads: [{kind: Deployment, name: sirius-api}], timeout: 60s}
    - {name: ui, workloads: [{kind: Deployment, name: sirius-ui}], timeout: 60s}
    - {name: engine, workloads: [{kind: Deployment, name: sirius-engine}], timeout: 60s}
  analysis:
    prometheus:
      url: "$PROMETHEUS_URL"
      query: sum(rate(http_requests_total{job="sirius-api",code="401"}[10s])) or vector(0)
    interval: 2s
    threshold: 0.5
    failureLimit: 2
    errorLimit: 4
  validationPeriod: 6s
  verify: {url: "$API_SERVICE_URL/api/v1/ping", header: X-API-Key}
  historyLimit: 10
EOF
sed -n '/^apiVersion/,$p' "$work/keyrotation.yaml" | sed 's/^/    /'
"$KR_ROOT/tests/py" "$KR_ROOT/tests/demo/watch.py" apply "$work/keyrotation.yaml"
"$KR_ROOT/tests/py" "$KR_ROOT/tests/demo/watch.py" adopted sirius-service-key

step "what a rotation will do: keyrotator plan -f (the KeyRotation and its KeyStore)"
{ cat "$work/keyrotation.yaml"; echo ---; cat "$work/keystore.yaml"; } >"$work/sirius.yaml"
"$bin" plan -f "$work/sirius.yaml" | sed 's/^/    /' || true

step "the key store before: keyrotator keys list (ids only, never keys)"
"$bin" keys list --addr "$VALKEY_ADDR" | sed 's/^/    /'

step "rotating, live (status, Events and the consumers' counters from the API and the pods)"
rc=0
"$KR_ROOT/tests/py" "$KR_ROOT/tests/demo/watch.py" rotate sirius-service-key -- \
  "$bin" kubectl rotate sirius-service-key -n "$NAMESPACE" --kubeconfig "$KUBECONFIG" || rc=$?

step "the key store after: keyrotator keys list"
"$bin" keys list --addr "$VALKEY_ADDR" | sed 's/^/    /'

cat <<EOF

${bold}Poke at it${off}$([ "$keep" -eq 1 ] || echo " (run 'bash tests/demo.sh --keep' to keep it all up)"):
  export KUBECONFIG=$KUBECONFIG
  $bin kubectl status sirius-service-key -n sirius      # status, per stage
  $bin kubectl history sirius-service-key -n sirius     # past rotations
  $bin keys list --addr $VALKEY_ADDR                   # the key store, ids only
  $bin kubectl rotate sirius-service-key -n sirius      # another rotation
  $bin kubectl rotate sirius-service-key -n sirius --emergency "leaked"
  # or the raw API call the plugin makes (token and CA in \$KUBECONFIG):
  curl --cacert $work/cluster/tls/ca.crt -H "Authorization: Bearer sim-admin-token" \\
    -H 'Content-Type: application/merge-patch+json' -X PATCH \\
    -d '{"metadata":{"annotations":{"keyrotator.io/rotate":"'\$(date +%s)'"}}}' \\
    $KUBEAPI_URL/apis/keyrotator.io/v1alpha1/namespaces/sirius/keyrotations/sirius-service-key
  KUBECONFIG=$KUBECONFIG NAMESPACE=sirius SIM_STATE_DIR=$SIM_STATE_DIR VALKEY_ADDR=$VALKEY_ADDR API_SERVICE_URL=$API_SERVICE_URL \\
    $KR_ROOT/tests/py $KR_ROOT/tests/demo/watch.py rotate sirius-service-key -- true   # watch the next one
  controller logs: $work/controller.log   metrics: http://127.0.0.1:$metrics_port/metrics
EOF
if [ "$keep" -eq 1 ]; then
  echo
  echo "Everything stays up. Press Ctrl-C to stop the controller and the cluster and clean up."
  while :; do # `wait` returns at once when a signal arrives; a foreground sleep would not
    sleep 3600 &
    sleep_pid=$!
    wait "$sleep_pid" || true
  done
fi
exit "$rc"
