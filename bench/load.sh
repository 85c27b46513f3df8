#!/usr/bin/env bash
# Load benchmark: portkey-guard and the transport floor (the same listener,
# TLS and HTTP stack answering a fixed AdmissionReview; examples/floor.rs)
# side by side, over HTTP/2 (h2load) and HTTP/1.1 (h2load --h1), at
# concurrency 1, 16 and 64, with a real AdmissionReview body. Prints a
# Markdown table: requests/s, p50/p99 latency, errors, peak RSS, the
# server's own CPU time per request (from /proc, the load generator left
# out), and portkey-guard's throughput as a ratio of the floor's; then the
# same for /mutate of the bare gateway Deployment over HTTP/2 at
# concurrency 16, and the marginal CPU per admission. Last, the two target
# cells (HTTP/2, concurrency 16, /validate and /mutate) again in rounds,
# portkey-guard and the floor in turn, with the median of their ratios:
# the floor alone moves between runs by more than a change of the handler
# does, and a ratio of two cells measured seconds apart takes that in.
#   bench/load.sh            full run (about a minute)
#   LOAD_ROUNDS=N bench/load.sh   N rounds of the target cells (default 5)
#   bench/load.sh --smoke    a few hundred requests per cell, zero errors
source "$(dirname "$0")/common.sh"

if [ "${1:-}" = "--smoke" ]; then
  per_cell() { echo 200; }
  rounds=2
else
  rounds=${LOAD_ROUNDS:-5}
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

# One round of a target cell: portkey-guard, then the floor, each warmed,
# then measured; prints its ratio and the marginal CPU per request.
round() { # path
  local path=$1 n server report ticks
  n=$(per_cell 16)
  declare -A round_rps round_cpu
  for server in guard floor; do
    local port_var=${server}_port pid_var=${server}_pid
    h2load_run "https://127.0.0.1:${!port_var}$path" 16 "$(( n / 10 + 16 ))" >/dev/null
    ticks=$(cpu_ticks "${!pid_var}")
    report=$(h2load_run "https://127.0.0.1:${!port_var}$path" 16 "$n")
    round_rps[$server]=$(grep -oE '[0-9.]+ req/s' <<<"$report" | grep -oE '^[0-9.]+')
    round_cpu[$server]=$(( ($(cpu_ticks "${!pid_var}") - ticks) * 1000000 / $(getconf CLK_TCK) / n ))
  done
  echo "${round_rps[guard]} ${round_rps[floor]} $(( ${round_cpu[guard]} - ${round_cpu[floor]} ))"
}

# rounds_of PATH : the rounds of one target cell, and their medians.
rounds_of() {
  local path=$1 results=()
  for _ in $(seq "$rounds"); do
    results+=("$(round "$path")")
  done
  printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
path = sys.argv[1]
rows = [list(map(float, line.split())) for line in sys.stdin]
ratios = [guard / floor for guard, floor, _ in rows]
marginal = [m for _, _, m in rows]
print(f"| {path} | {len(rows)} | " + ", ".join(f"{r:.2f}" for r in ratios)
      + f" | **{statistics.median(ratios):.2f}** | "
      + ", ".join(f"{g / 1000:.1f}k/{f / 1000:.1f}k" for g, f, _ in rows)
      + f" | {statistics.median(marginal):.0f} |")
' "$path"
}

echo
echo "HTTP/2, concurrency 16: portkey-guard and the floor in turn, round by round:"
echo
echo "| path | rounds | ratio per round | median ratio | requests/s (portkey-guard/floor) | median marginal CPU µs |"
echo "|---|---|---|---|---|---|"
review=$(as_sent compliant-deployment.json)
rounds_of /validate
review=$(as_sent bare-deployment.json)
rounds_of /mutate
echo
echo "ready after start: portkey-guard ${guard_ready_ms} ms, floor ${floor_ready_ms} ms (process start to /readyz 200)"
echo "peak RSS: portkey-guard $(( $(peak_rss_kib "$guard_pid") / 1024 )) MiB"
