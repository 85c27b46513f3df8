#!/usr/bin/env bash
# The monitoring kit against the server it watches:
#  * the alerts pass `promtool check rules`, and their unit tests
#    (tests/monitoring/alerts.test.yaml) pass `promtool test rules`, with a
#    firing and a silent case for every alert;
#  * the dashboard is valid JSON whose every query parses as PromQL;
#  * a running server's /metrics is the Prometheus text format by default
#    (OpenMetrics only on request) and passes `promtool check metrics`;
#  * every metric the alerts and the dashboard name exists in that /metrics
#    (a sample or a `# TYPE` line), after admissions, a refused request and
#    certificate and policy reloads; a labelled family that has no series
#    on a server without --cluster (the audit's findings) must be one the
#    server registers;
#  * the policy hash on /metrics is the sha256 of `portkey-guard policy`.
#
# Usage: scripts/check-monitoring.sh [PATH-TO-portkey-guard]
# (default target/release/portkey-guard). Installs promtool (Debian's
# prometheus package) and the Python tools when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tools.sh

guard=${1:-${CARGO_TARGET_DIR:-target}/release/portkey-guard}
[ -x "$guard" ] || { echo "no portkey-guard binary at $guard" >&2; exit 1; }
need_apt promtool prometheus
need_apt curl curl
need_py_tools
py=$py_tools/python

rules=deploy/webhook/components/alerts/prometheusrule.yaml
dashboard=deploy/webhook/components/dashboard/portkey-guard.json
work=$(mktemp -d /tmp/portkey-guard-monitoring.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- alerts: promtool check rules, promtool test rules"
"$py" - "$rules" "$work/rules.yaml" <<'PY'
import sys, yaml
rule = yaml.safe_load(open(sys.argv[1]))
assert rule["kind"] == "PrometheusRule", rule["kind"]
yaml.safe_dump(rule["spec"], open(sys.argv[2], "w"), sort_keys=False)
PY
promtool check rules "$work/rules.yaml"
cp tests/monitoring/alerts.test.yaml "$work/"
(cd "$work" && promtool test rules alerts.test.yaml)
"$py" - "$work/rules.yaml" tests/monitoring/alerts.test.yaml <<'PY'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
fires, silent = set(), set()
for test in tests["tests"]:
    for case in test.get("alert_rule_test", []):
        (fires if case.get("exp_alerts") else silent).add(case["alertname"])
missing = [(a, what) for a in alerts for what, seen in (("firing", fires), ("silent", silent)) if a not in seen]
assert not missing, f"alerts without a {missing} unit test case"
unknown = (fires | silent) - set(alerts)
assert not unknown, f"unit tests of alerts that do not exist: {unknown}"
print(f"{len(alerts)} alerts, each with a firing and a silent case")
PY

echo "-- dashboard: JSON, panels, every query parses as PromQL"
"$py" - "$dashboard" "$work/dashboard-rules.yaml" <<'PY'
import json, sys, yaml
d = json.load(open(sys.argv[1]))
assert d["uid"] and d["title"], "uid and title"
ids = [p["id"] for p in d["panels"]]
assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
names = [v["name"] for v in d["templating"]["list"]]
assert "datasource" in names, "a datasource variable"
exprs = []
for p in d["panels"]:
    if p["type"] == "row":
        continue
    assert p.get("targets"), f"panel {p['title']!r} has no query"
    assert p["datasource"]["uid"] == "${datasource}", p["title"]
    for t in p["targets"]:
        exprs.append(t["expr"])
# Grafana's variables, as Grafana would fill them in.
def concrete(e):
    return e.replace("$__rate_interval", "5m").replace("$pod", ".*")
rules = [{"record": f"dashboard:query_{i}", "expr": concrete(e)} for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{len(d['panels'])} panels, {len(exprs)} queries")
PY
promtool check rules "$work/dashboard-rules.yaml"

echo "-- a running server: admissions, a refused request, reloads"
"$guard" certs --out "$work/certs" --ip 127.0.0.1 --dns localhost --days 30 > "$work/ca-bundle"
mkdir -p "$work/policy"
cp deploy/webhook/policy.yaml "$work/policy/policy.yaml"
hook_port=$(free_port)
probe_port=$(free_port)
"$guard" serve --addr "127.0.0.1:$hook_port" --probe-addr "127.0.0.1:$probe_port" \
  --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" \
  --policy "$work/policy/policy.yaml" --log-format json > "$work/server.log" 2>&1 &
server_pid=$!
metrics_url="http://127.0.0.1:$probe_port/metrics"
wait_until() { # seconds, description, command...
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "timed out waiting for $what; server log:" >&2
      cat "$work/server.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}
wait_until 30 "the server to be ready" curl -fsS "http://127.0.0.1:$probe_port/readyz"
metric_is() { curl -fsS "$metrics_url" | grep -qxF "$1"; }

post() { # path body-file; prints the HTTP status
  curl -sS -o /dev/null -w '%{http_code}' --cacert "$work/certs/ca.crt" \
    -H 'Content-Type: application/json' --data-binary "@$2" "https://localhost:$hook_port$1" \
    --resolve "localhost:$hook_port:127.0.0.1"
}
reviews=0
for review in tests/data/reviews/*.json; do
  for path in /validate /mutate; do
    status=$(post "$path" "$review")
    [ "$status" = 200 ] || { echo "$path $review: HTTP $status" >&2; exit 1; }
    reviews=$((reviews + 1))
  done
done
echo '{"not": "a review"}' > "$work/malformed.json"
status=$(post /validate "$work/malformed.json")
[ "$status" = 400 ] || { echo "malformed review: HTTP $status, expected 400" >&2; exit 1; }
# A policy that does not parse is refused; a good one is taken.
echo "gateway: {versoin: 1}" > "$work/policy/policy.yaml"
wait_until 10 "the refused policy" metric_is 'portkey_guard_policy_last_reload_successful 0'
printf 'apiVersion: portkey-guard.dev/v1alpha1\nkind: Policy\ngateway:\n  version: "1.13.0"\n' > "$work/policy/policy.yaml"
wait_until 10 "the new policy" metric_is 'portkey_guard_policy_generation 2'
# A renewed serving certificate under the same CA.
"$guard" certs --out "$work/certs" --ip 127.0.0.1 --dns localhost --days 30 > "$work/ca-bundle-2"
cmp -s "$work/ca-bundle" "$work/ca-bundle-2" || { echo "certs changed the CA on renewal" >&2; exit 1; }
wait_until 10 "the certificate reload" metric_is 'portkey_guard_certificate_reloads_total{result="success"} 1'
echo "$reviews admission reviews answered; one refused request; policy and certificate reloaded"

echo "-- /metrics: Prometheus text by default, promtool check metrics"
content_type=$(curl -fsS -o "$work/metrics.txt" -w '%{content_type}' "$metrics_url")
[ "$content_type" = "text/plain; version=0.0.4; charset=utf-8" ] \
  || { echo "default Content-Type: $content_type" >&2; exit 1; }
if ! promtool check metrics < "$work/metrics.txt" > "$work/promtool.txt" 2>&1; then
  echo "promtool check metrics:" >&2
  cat "$work/promtool.txt" >&2
  exit 1
fi
[ ! -s "$work/promtool.txt" ] || { echo "promtool check metrics complains:" >&2; cat "$work/promtool.txt" >&2; exit 1; }
echo "promtool check metrics: clean ($(grep -vc '^#' "$work/metrics.txt") samples)"
prometheus_accept='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
content_type=$(curl -fsS -H "Accept: $prometheus_accept" -o "$work/metrics.om" -w '%{content_type}' "$metrics_url")
[ "$content_type" = "application/openmetrics-text; version=1.0.0; charset=utf-8" ] \
  || { echo "OpenMetrics Content-Type: $content_type" >&2; exit 1; }
[ "$(tail -n1 "$work/metrics.om")" = "# EOF" ] || { echo "OpenMetrics without # EOF" >&2; exit 1; }
echo "OpenMetrics when Prometheus asks for it"

echo "-- every metric the alerts and the dashboard name is on /metrics"
"$guard" policy --policy "$work/policy/policy.yaml" > "$work/effective-policy.yaml"
"$py" - "$work/metrics.txt" "$work/rules.yaml" "$dashboard" "$work/effective-policy.yaml" src/server/metrics.rs <<'PY'
import hashlib, re, sys
metrics_path, rules_path, dashboard_path, policy_path, source_path = sys.argv[1:]
samples = {}
# Families declared by `# TYPE` lines count too, with the series names a
# histogram or summary writes.
declared = set()
for line in open(metrics_path):
    if line.startswith("# TYPE "):
        name, kind = line.split()[2:4]
        declared.add(name)
        if kind in ("histogram", "summary"):
            declared.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
    if line.startswith("#") or not line.strip():
        continue
    name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
    samples.setdefault(name, []).append(line.rstrip("\n"))
on_metrics = declared | set(samples)
# A labelled family has no series, and no `# TYPE` line, until something
# is counted in it. This server runs without --cluster, so the audit's
# findings by rule are empty: such a family may be named when the server
# registers it (src/server/metrics.rs). tests/cluster_serve.rs reads it
# from a server that audits a fake API server.
source = open(source_path).read()
families = {}
for var, kind in re.findall(r"let (\w+) = Family::<\w+, (Counter|Gauge)>", source):
    families[var] = kind
registered_empty = set()
for name, var in re.findall(r'registry\.register\(\s*"(\w+)",\s*"(?:[^"\\]|\\.)*",\s*(\w+)', source):
    if var in families:
        suffix = "_total" if families[var] == "Counter" else ""
        registered_empty.add(f"portkey_guard_{name}{suffix}")
# `up` is written by Prometheus itself for every target, not by the server.
PROMETHEUS_SERIES = {"up"}
missing, empty = [], set()
for path in (rules_path, dashboard_path):
    text = open(path).read()
    named = set(re.findall(r"\bportkey_guard_[a-zA-Z0-9_]+", text))
    selectors = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{", text))
    others = {s for s in selectors if not s.startswith("portkey_guard_")} - PROMETHEUS_SERIES
    assert not others, f"{path}: series neither on /metrics nor Prometheus's own: {others}"
    absent = {n for n in named if n not in on_metrics}
    empty |= absent & registered_empty
    missing += [(path, n) for n in sorted(absent - registered_empty)]
    print(f"{path}: {len(named)} metrics, all on /metrics or registered" if not missing else "")
assert not missing, f"named but not on /metrics: {missing}"
if empty:
    print(f"labelled families registered but without series on this server: {sorted(empty)}")
digest = hashlib.sha256(open(policy_path, "rb").read()).hexdigest()
info = samples["portkey_guard_policy_info"]
assert info == [f'portkey_guard_policy_info{{sha256="{digest}"}} 1'], (info, digest)
print(f"policy hash on /metrics = sha256 of `portkey-guard policy`: {digest[:16]}...")
PY
