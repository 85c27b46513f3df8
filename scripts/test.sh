#!/usr/bin/env bash
# The full test command: unit, fixture and CLI tests, then the shipped
# manifests rendered with kustomize and admitted offline.
set -euo pipefail
cd "$(dirname "$0")/.."

# The server tests drive the real binary with these clients as well.
for tool in curl openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "== installing $tool"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool"
  fi
done
echo "== test tools: kubectl (kustomize), python3 with jsonschema (the SARIF schema check)"
command -v kubectl >/dev/null || { echo "kubectl is required (kubectl kustomize)"; exit 1; }
command -v python3 >/dev/null || { echo "python3 is required"; exit 1; }
if ! python3 -c 'import jsonschema' 2>/dev/null; then
  echo "installing Python's jsonschema" >&2
  python3 -m pip install --quiet 'jsonschema>=4,<5' >&2 \
    || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-jsonschema >&2; }
fi
python3 -c 'import jsonschema' || { echo "Python's jsonschema could not be installed"; exit 1; }

cargo test --locked

echo "== the hostname guard's matchConditions (CEL, from deploy/webhook/webhooks.yaml) against the webhook's decisions"
cargo test --locked -p portkey-guard-bench --lib --test match_conditions

echo "== the Rego and CEL peers agree with the webhook on every fixture they model (each timed once)"
cargo test --locked -p portkey-guard-bench --bench peers

cargo build --locked --release
guard=${CARGO_TARGET_DIR:-target}/release/portkey-guard

echo "== deploy/portkey: the directory (kustomization and strategy files skipped) and -k (rendered)"
"$guard" check deploy/portkey
"$guard" check -k deploy/portkey

echo "== deploy/portkey renders and is admitted with no violations and no mutation"
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kubectl kustomize deploy/portkey > "$rendered"
"$guard" check "$rendered"
"$guard" check --output json "$rendered" | python3 -c '
import json, sys
report = json.load(sys.stdin)
assert report["allowed"], "deploy/portkey is denied"
for o in report["objects"]:
    assert not o["violations"], (o["kind"], o["violations"])
    assert not o["mutations"], (o["kind"], "would be mutated: Argo CD would see drift")
print("deploy/portkey:", len(report["objects"]), "objects, clean")
'

echo "== deploy/webhook renders; the webhook's own pods pass the restricted profile"
webhook=$(mktemp)
policy=$(mktemp --suffix=.yaml)
trap 'rm -f "$rendered" "$webhook" "$policy"' EXIT
kubectl kustomize deploy/webhook > "$webhook"
kubectl kustomize deploy/argocd > /dev/null
# Police the webhook's namespace for this check; only the pss.* rules matter
# (the webhook runs as its own UID, not the gateway's).
echo "namespace: portkey-guard" > "$policy"
set +e
"$guard" check --policy "$policy" --output json "$webhook" > "$webhook.json"
status=$?
set -e
[ "$status" -le 1 ] || { echo "check failed with exit $status"; exit 1; }
python3 - "$webhook.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
pods = [o for o in report["objects"] if o["kind"] == "Deployment"]
assert pods, "no webhook Deployment rendered"
for o in pods:
    pss = [v for v in o["violations"] if v["rule"].startswith("pss.")]
    assert not pss, pss
print("deploy/webhook:", len(report["objects"]), "objects rendered; webhook pod restricted-clean")
PY
rm -f "$webhook.json"

echo "== one TLS stack: rustls with ring; no OpenSSL, native-tls or aws-lc"
if cargo tree --locked -e normal --prefix none -p portkey-guard | grep -E '^(openssl|openssl-sys|native-tls|aws-lc-rs|aws-lc-sys|boring|boring-sys) '; then
  echo "a second TLS stack is in the dependency tree"
  exit 1
fi
echo "dependency tree: $(cargo tree --locked -e normal --prefix none -p portkey-guard | sort -u | wc -l) crates, one TLS stack"

echo "== load script smoke run: the server and the floor over TLS, zero errors"
bench/load.sh --smoke

echo "== monitoring kit: alerts (promtool check/test rules), dashboard queries, a running server's /metrics"
scripts/check-monitoring.sh "$guard"

echo "== deploy/webhook with every combination of its components: renders and passes schema validation; Dockerfile lint"
scripts/check-deploy.sh
