# Shared by the load, soak and smoke scripts: builds the release binary,
# makes certificates, starts servers on free loopback ports, reads memory.
# Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bench_need() { # command package
  command -v "$1" >/dev/null && return
  echo "bench: installing $2" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
}
bench_need h2load nghttp2-client
bench_need python3 python3

cargo build --release --locked --quiet
# PORTKEY_GUARD_BIN: measure another build (an earlier commit's) the same way.
guard=${PORTKEY_GUARD_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/portkey-guard}
bench_dir=$(mktemp -d /tmp/portkey-guard-bench.XXXXXX)
bench_pids=()
bench_cleanup() {
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${bench_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$bench_dir"
}
trap bench_cleanup EXIT

"$guard" certs --out "$bench_dir/certs" --ip 127.0.0.1 --dns localhost >/dev/null

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME BINARY ARGS... : sets ${NAME}_port, ${NAME}_pid
start_server() {
  local name=$1 binary=$2
  shift 2
  local port probe
  port=$(free_port)
  probe=$(free_port)
  local started_ns
  started_ns=$(date +%s%N)
  # The server writes into a pipe, as in a pod: the container runtime reads
  # a container's stdout and stderr from pipes. A write into a pipe wakes
  # its reader; a write into a file costs less than it would in a pod.
  "$binary" serve --addr "127.0.0.1:$port" --probe-addr "127.0.0.1:$probe" \
    --tls-cert "$bench_dir/certs/tls.crt" --tls-key "$bench_dir/certs/tls.key" "$@" \
    > >(cat > "$bench_dir/$name.log") 2>&1 &
  local pid=$!
  bench_pids+=("$pid")
  until curl -fsS -o /dev/null "http://127.0.0.1:$probe/readyz" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$bench_dir/$name.log" >&2; return 1; }
    sleep 0.005
  done
  local ready_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
  printf -v "${name}_port" '%s' "$port"
  printf -v "${name}_pid" '%s' "$pid"
  printf -v "${name}_ready_ms" '%s' "$ready_ms"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# CPU time (user + system, in clock ticks) the process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# as_sent REVIEW : the path of REVIEW (under tests/data/reviews) as the API
# server sends it: compact JSON, keys in their order (the files are
# indented for people; the indentation alone made parsing a third slower).
as_sent() {
  local out=$bench_dir/$1
  python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"), separators=(",", ":"))' \
    "$PWD/tests/data/reviews/$1" "$out"
  echo "$out"
}
review=$(as_sent compliant-deployment.json)

# h2load_run URL CONCURRENCY REQUESTS [extra h2load flags] : prints the
# h2load report; fails when a request failed or got a non-2xx status.
h2load_run() {
  local url=$1 c=$2 n=$3
  shift 3
  local out
  out=$(h2load -n "$n" -c "$c" -m 1 -d "$review" -H 'content-type: application/json' "$@" "$url")
  echo "$out"
  grep -qE "requests: $n total, $n started, $n done, $n succeeded, 0 failed, 0 errored, 0 timeout" <<<"$out" \
    || { echo "bench: failed requests" >&2; return 1; }
  grep -qE "status codes: $n 2xx" <<<"$out" || { echo "bench: non-2xx statuses" >&2; return 1; }
}
