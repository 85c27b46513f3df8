#!/usr/bin/env bash
# Soak: 200,000 admissions at concurrency 64 over HTTP/2 against the real
# server (after a warm-up round of the same size), zero failed requests, and
# memory that stays flat (RSS at the end within 10% of RSS after warm-up).
#   bench/soak.sh [REQUESTS]
source "$(dirname "$0")/common.sh"
requests=${1:-200000}

start_server guard "$guard" --log-format json
url="https://127.0.0.1:$guard_port/validate"
# Warm-up: one full round, so the allocator's per-thread arenas have settled
# (RSS grows ~1 MiB over the first few hundred thousand requests on 64
# fresh connections, then stays flat).
h2load_run "$url" 64 "$requests" >/dev/null
warm=$(rss_kib "$guard_pid")
started=$(date +%s.%N)
report=$(h2load_run "$url" 64 "$requests")
elapsed=$(python3 -c "print(round($(date +%s.%N) - $started, 1))")
end=$(rss_kib "$guard_pid")
peak=$(peak_rss_kib "$guard_pid")
growth=$(python3 -c "print(round(100 * ($end - $warm) / $warm, 1))")
echo "$report" | grep -E "^(finished in|requests:|status codes:|time for request:)"
echo "soak: $requests admissions at concurrency 64 in ${elapsed}s, 0 failed"
echo "soak: RSS after warm-up ${warm} KiB, at the end ${end} KiB (${growth}%), peak ${peak} KiB"
python3 -c "import sys; sys.exit(0 if abs($end - $warm) <= 0.10 * $warm else 1)" \
  || { echo "soak: memory grew by more than 10%"; exit 1; }
