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
render namespaced --set watchNamespace=sirius
if grep -q '^kind: ClusterRole' "$tmp/namespaced.yaml"; then
  echo "helm-check: watchNamespace set but a ClusterRole was rendered" >&2
  exit 1
fi
grep -q -- '--namespace=sirius' "$tmp/namespaced.yaml"
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
