#!/usr/bin/env bash
# The full test command: unit, fixture and CLI tests, then the shipped
# manifests rendered with kustomize and admitted offline.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked

cargo build --locked --release
guard=target/release/portkey-guard

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
