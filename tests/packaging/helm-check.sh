#!/usr/bin/env bash
# helm-check.sh - `helm lint` and `helm template` of charts/keyrotator, where helm exists.
# Renders the chart with its defaults and with every option turned on, and parses each
# rendering with the project's YAML parser (KR_YAML2JSON, when set).
# Exit codes: 0 ok, 1 a check failed, 77 no helm binary (skipped).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
chart=$root/charts/keyrotator
helm=${HELM:-$(command -v helm || true)}
if [ -z "$helm" ]; then
  echo "helm-check: no helm binary; skipped (set HELM=/path/to/helm to run it)"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --set watchNamespace=sirius,serviceMonitorEnabled=true
"$helm" lint --strict "$chart" --set roles.create=false

render() {
  local name=$1; shift
  "$helm" template keyrotator "$chart" --namespace keyrotator-system --include-crds "$@" \
    >"$tmp/$name.yaml"
  if [ -n "${KR_YAML2JSON:-}" ]; then
    "$KR_YAML2JSON" "$tmp/$name.yaml" >"$tmp/$name.json"
  fi
  echo "helm-check: rendered $name ($(grep -c '^kind:' "$tmp/$name.yaml") objects)"
}

render defaults
grep -q '^kind: ClusterRole$' "$tmp/defaults.yaml"
for role in keyrotator-view keyrotator-edit keyrotator-keystore-admin; do
  grep -q "^  name: $role\$" "$tmp/defaults.yaml"
done
render namespaced --set watchNamespace=sirius
grep -q -- '--namespace=sirius' "$tmp/namespaced.yaml"
if [ -n "${KR_YAML2JSON:-}" ]; then
  # watchNamespace: the controller's rules are in a Role; its one ClusterRole holds only
  # what no Role can grant (ClusterKeyStores, and get on that one Namespace). No ClusterRole
  # (the people roles included) grants anything on Secrets.
  python3 - "$tmp/namespaced.json" <<'EOF'
import json
import sys

docs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
docs = [d for d in docs if isinstance(d, dict)]
roles = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ClusterRole"}
want = {"keyrotator-controller-sirius", "keyrotator-view", "keyrotator-edit",
        "keyrotator-keystore-admin"}
if set(roles) != want:
    sys.exit(f"helm-check: namespaced ClusterRoles {sorted(roles)}, want {sorted(want)}")
cluster_only = {"clusterkeystores", "clusterkeystores/status", "namespaces"}
for rule in roles["keyrotator-controller-sirius"]["rules"]:
    if not set(rule["resources"]) <= cluster_only:
        sys.exit(f"helm-check: namespaced controller ClusterRole grants {rule}")
    if "namespaces" in rule["resources"] and rule.get("resourceNames") != ["sirius"]:
        sys.exit(f"helm-check: namespaces not limited to sirius: {rule}")
for name, role in roles.items():
    for rule in role["rules"]:
        if "secrets" in rule["resources"]:
            sys.exit(f"helm-check: ClusterRole {name} grants Secrets")
kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
for need in (("Role", "keyrotator-controller"), ("Role", "keyrotator-keystore-secrets")):
    if need not in kinds:
        sys.exit(f"helm-check: namespaced rendering lacks {need}")
EOF
fi
render noroles --set roles.create=false
if grep -q -e 'name: keyrotator-view$' -e 'name: keyrotator-keystore-admin$' \
    "$tmp/noroles.yaml"; then
  echo "helm-check: roles.create=false still renders the people roles" >&2
  exit 1
fi
render everything --set serviceMonitorEnabled=true,podDisruptionBudgetEnabled=true \
  --set prometheusRuleEnabled=true,grafanaDashboardEnabled=true \
  --set leaderElect=true,imageTag=dev,priorityClassName=high \
  --set 'extraEnv[0].name=KEYROTATOR_LOG_LEVEL,extraEnv[0].value=debug'
grep -q '^kind: ServiceMonitor$' "$tmp/everything.yaml"
grep -q 'image: keyrotator/keyrotator:dev' "$tmp/everything.yaml"
render single --set replicaCount=1,leaderElect=false,podDisruptionBudgetEnabled=false
if grep -q -- '--leader-elect' "$tmp/single.yaml"; then
  echo "helm-check: leaderElect=false still passes --leader-elect" >&2
  exit 1
fi
# Everything on, with a 53-character release name without "keyrotator" (the longest Helm
# accepts): every name fits (the metrics Service is a DNS-1035 label of at most 63).
long=$(printf 'r%.0s' $(seq 53))
"$helm" template "$long" "$chart" --namespace keyrotator-system \
  --set serviceMonitorEnabled=true,prometheusRuleEnabled=true,grafanaDashboardEnabled=true \
  >"$tmp/long.yaml"
svc=$(awk '/^kind: Service$/ { s = 1 } s && /^  name: / { print $2; exit }' "$tmp/long.yaml")
if [ "${#svc}" -gt 63 ] || [ "${svc%-metrics}" = "$svc" ]; then
  echo "helm-check: metrics Service name '$svc' (${#svc} characters)" >&2
  exit 1
fi
if awk '/^  name: / && length($2) > 253 { bad = 1 } END { exit !bad }' "$tmp/long.yaml"; then
  echo "helm-check: an object name longer than 253 characters" >&2
  exit 1
fi

# Values the schema (or a template guard) refuses, each with a message naming the value.
refuse() {
  local want=$1; shift
  if "$helm" template keyrotator "$chart" "$@" >"$tmp/refused.out" 2>&1; then
    echo "helm-check: $* was accepted" >&2
    exit 1
  fi
  if ! grep -q -- "$want" "$tmp/refused.out"; then
    echo "helm-check: $* refused without naming '$want':" >&2
    cat "$tmp/refused.out" >&2
    exit 1
  fi
}
refuse workers --set workers=0
refuse workers --set workers=65
refuse logLevel --set logLevel=verbose
refuse replicaCount --set replicaCount=0
refuse leaderElect --set replicaCount=2,leaderElect=false
refuse metricsPort --set metricsPort=9000,healthPort=9000

# NOTES.txt says what the values make true (helm template does not print NOTES; helm
# install --dry-run does, but Helm 3.11 needs a reachable cluster for it).
if "$helm" install --dry-run keyrotator "$chart" -n keyrotator-system >"$tmp/notes2.txt" \
    2>"$tmp/notes.err"; then
  grep -q 'all 2 replicas Ready; one holds the Lease' "$tmp/notes2.txt"
  "$helm" install --dry-run keyrotator "$chart" -n keyrotator-system \
    --set replicaCount=1,leaderElect=false >"$tmp/notes1.txt"
  grep -q 'its one replica Ready; no leader election' "$tmp/notes1.txt"
  if grep -q -e 'replicas Ready' -e 'get lease' "$tmp/notes1.txt"; then
    echo "helm-check: NOTES speak of replicas or a Lease for one replica without election" >&2
    exit 1
  fi
else
  echo "helm-check: NOTES not checked with helm (no cluster: $(head -c 200 "$tmp/notes.err"))"
fi
echo "helm-check: ok"
