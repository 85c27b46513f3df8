#!/usr/bin/env bash
# Issues a local CA and serving certificate with `portkey-guard certs`, the
# same chain cert-manager keeps in a cluster (deploy/webhook/certificate.yaml):
# a 10-year CA, made once and then reused, and a 30-day serving certificate
# signed by it. Running it again renews the serving certificate only, so the
# caBundle the webhook configurations hold stays the same.
# Usage: certs/make-local.sh [extra portkey-guard certs flags]
set -euo pipefail
cd "$(dirname "$0")/.."
out=certs/out
cargo run --quiet --release -- certs --out "$out" \
  --service portkey-guard --namespace portkey-guard \
  --dns localhost --ip 127.0.0.1 --days 30 "$@" > "$out.cabundle" || { rm -f "$out.cabundle"; exit 1; }
echo "wrote $out/ca.crt $out/tls.crt $out/tls.key"
echo "caBundle: $(cat "$out.cabundle")"
rm -f "$out.cabundle"
