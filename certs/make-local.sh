#!/usr/bin/env bash
# Issues a local CA and serving certificate with `portkey-guard certs`.
# Usage: certs/make-local.sh [extra portkey-guard certs flags]
set -euo pipefail
cd "$(dirname "$0")/.."
out=certs/out
cargo run --quiet --release -- certs --out "$out" \
  --service portkey-guard --namespace portkey-guard \
  --dns localhost --ip 127.0.0.1 "$@" > "$out.cabundle" || { rm -f "$out.cabundle"; exit 1; }
echo "wrote $out/ca.crt $out/tls.crt $out/tls.key"
echo "caBundle: $(cat "$out.cabundle")"
rm -f "$out.cabundle"
