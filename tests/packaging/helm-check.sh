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
  --set leaderElect=true,imageTag=dev,priorityClassName=high \
  --set 'extraEnv[0].name=KEYROTATOR_LOG_LEVEL,extraEnv[0].value=debug'
grep -q '^kind: ServiceMonitor$' "$tmp/everything.yaml"
grep -q 'image: keyrotator/keyrotator:dev' "$tmp/everything.yaml"
render single --set replicaCount=1,leaderElect=false,podDisruptionBudgetEnabled=false
if grep -q -- '--leader-elect' "$tmp/single.yaml"; then
  echo "helm-check: leaderElect=false still passes --leader-elect" >&2
  exit 1
fi
echo "helm-check: ok"
