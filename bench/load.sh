#!/usr/bin/env bash
# Load benchmark: portkey-guard and the transport floor (the same listener,
# TLS and HTTP stack answering a fixed AdmissionReview; examples/floor.rs)
# side by side, over HTTP/2 (h2load) and HTTP/1.1 (h2load --h1), at
# concurrency 1, 16 and 64, with a real AdmissionReview body. Prints a
# Markdown table: requests/s, p50/p99 latency, errors, peak RSS, the
# server's own CPU time per request (from /proc, the load generator left
# out), and portkey-guard's throughput as a ratio of the floor's; then the
# same for /mutate of the bare gateway Deployment over HTTP/2 at
# concurrency 16, and the marginal CPU per admission.
#   bench/load.sh            full run (about 2 minutes)
#   bench/load.sh --smoke    a few hundred requests per cell, zero errors
source "$(dirname "$0")/common.sh"

if [ "${1:-}" = "--smoke" ]; then
  per_cell() { echo 200; }
else
  # Enough requests for a few seconds per cell at every concurrency.
  per_cell() { case $1 in 1) echo 10000 ;; *) echo 40000 ;; esac; }
fi
cargo build --release --locked --quiet --example floor
floor=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/floor

start_server guard "$guard" --log-format json
start_server floor "$floor"

declare -A rps cpu
row() { # server proto concurrency [path]
  local server=$1 proto=$2 c=$3 path=${4:-/validate} port_var=${1}_port pid_var=${1}_pid
  local n
  n=$(per_cell "$c")
  local flags=()
  [ "$proto" = h1 ] && flags+=(--h1)
  local log=$bench_dir/$server-$proto-$c.tsv
  local report
  # Warm the connections and caches, then measure.
  h2load_run "https://127.0.0.1:${!port_var}$path" "$c" "$(( n / 10 + c ))" "${flags[@]}" >/dev/null
  local ticks_before
  ticks_before=$(cpu_ticks "${!pid_var}")
  report=$(h2load_run "https://127.0.0.1:${!port_var}$path" "$c" "$n" "${flags[@]}" --log-file="$log")
  local cpu_us
  cpu_us=$(( ($(cpu_ticks "${!pid_var}") - ticks_before) * 1000000 / $(getconf CLK_TCK) / n ))
  local req_s
  req_s=$(grep -oE '[0-9.]+ req/s' <<<"$report" | grep -oE '^[0-9.]+')
  rps[$server-$proto-$c$path]=$req_s
  cpu[$server-$proto-$c$path]=$cpu_us
  python3 - "$log" "$server" "$proto" "$c" "$req_s" "$(peak_rss_kib "${!pid_var}")" "$cpu_us" <<'PY'
import sys
path, server, proto, c, req_s, peak, cpu_us = sys.argv[1:]
rows = [line.split("\t") for line in open(path)]
lat = sorted(int(r[2]) for r in rows)
errors = sum(1 for r in rows if r[1] != "200")
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1000
print(f"| {server} | {proto} | {c} | {float(req_s):,.0f} | {pct(50):.2f} | {pct(99):.2f} | {errors} | {int(peak) / 1024:.1f} | {cpu_us} |")
PY
}

echo "| server | protocol | concurrency | requests/s | p50 ms | p99 ms | errors | peak RSS MiB | server CPU µs/request |"
echo "|---|---|---|---|---|---|---|---|---|"
for proto in h2 h1; do
  for c in 1 16 64; do
    row guard "$proto" "$c"
    row floor "$proto" "$c"
  done
done
echo
echo "| protocol | concurrency | portkey-guard / floor throughput |"
echo "|---|---|---|"
for proto in h2 h1; do
  for c in 1 16 64; do
    python3 -c "print(f'| $proto | $c | {${rps[guard-$proto-$c/validate]} / ${rps[floor-$proto-$c/validate]}:.2f} |')"
  done
done
echo
echo "/mutate of the bare gateway Deployment (the floor answers the same body):"
echo
echo "| server | protocol | concurrency | requests/s | p50 ms | p99 ms | errors | peak RSS MiB | server CPU µs/request |"
echo "|---|---|---|---|---|---|---|---|---|"
review=$(as_sent bare-deployment.json)
row guard h2 16 /mutate
row floor h2 16 /mutate
python3 -c "print(f'portkey-guard / floor throughput: {${rps[guard-h2-16/mutate]} / ${rps[floor-h2-16/mutate]}:.2f}')"
echo
echo "marginal server CPU per admission (portkey-guard minus floor, HTTP/2, concurrency 16):" \
  "/validate $(( ${cpu[guard-h2-16/validate]} - ${cpu[floor-h2-16/validate]} )) µs," \
  "/mutate $(( ${cpu[guard-h2-16/mutate]} - ${cpu[floor-h2-16/mutate]} )) µs"
echo
echo "ready after start: portkey-guard ${guard_ready_ms} ms, floor ${floor_ready_ms} ms (process start to /readyz 200)"
echo "peak RSS: portkey-guard $(( $(peak_rss_kib "$guard_pid") / 1024 )) MiB"
