#!/usr/bin/env bash
# End to end against a real Kubernetes API server: etcd + kube-apiserver
# 1.20 on loopback, the real kubectl, and portkey-guard registered as a
# mutating and validating webhook. Every process started here is stopped by
# its pid on exit, success or failure. Nothing but loopback is contacted.
#
# Usage: tests/e2e/run.sh        (prints PASS/FAIL per scenario, then a
#                                 summary; exits non-zero on any failure)
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
started_at=$(date +%s)

die() { echo "e2e: $*" >&2; exit 1; }
log() { echo "e2e: $*" >&2; }

command -v kubectl >/dev/null || die "kubectl is required"
command -v python3 >/dev/null || die "python3 is required"
apiserver=$(tests/e2e/build-apiserver.sh) || die "cannot build kube-apiserver"
cargo build --release --locked --quiet || die "cannot build portkey-guard"
guard=$repo/target/release/portkey-guard

work=$(mktemp -d /tmp/portkey-guard-e2e.XXXXXX)
pids=()
cleanup() {
  # Processes started inside scenarios (subshells) record their pids here.
  if [ -f "$work/pids" ]; then
    while read -r pid; do pids+=("$pid"); done < "$work/pids"
  fi
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null
  done
  if [ "${KEEP_E2E_WORKDIR:-}" = 1 ]; then
    echo "e2e: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # seconds, description, command...
  local seconds=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $what"
    sleep 0.2
  done
}

# --- etcd ------------------------------------------------------------------
etcd_client=$(free_port)
etcd_peer=$(free_port)
etcd --name e2e --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" \
  --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "e2e=http://127.0.0.1:$etcd_peer" \
  > "$work/etcd.log" 2>&1 &
pids+=($!)

# --- kube-apiserver ----------------------------------------------------------
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null
admin_token=$(openssl rand -hex 16)
alice_token=$(openssl rand -hex 16)
cat > "$work/tokens.csv" <<EOF
$admin_token,admin,1,system:masters
$alice_token,alice,2,developers
EOF
api_port=$(free_port)
"$apiserver" \
  --etcd-servers="http://127.0.0.1:$etcd_client" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port="$api_port" --insecure-port=0 \
  --cert-dir "$work/apiserver" \
  --service-cluster-ip-range=10.96.0.0/24 \
  --authorization-mode=RBAC \
  --token-auth-file "$work/tokens.csv" \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file "$work/sa.pub" \
  --service-account-signing-key-file "$work/sa.key" \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  > "$work/apiserver.log" 2>&1 &
pids+=($!)

export KUBECONFIG=$work/kubeconfig
kubectl config set-cluster e2e --server="https://127.0.0.1:$api_port" --insecure-skip-tls-verify=true >/dev/null
kubectl config set-credentials admin --token="$admin_token" >/dev/null
kubectl config set-credentials alice --token="$alice_token" >/dev/null
kubectl config set-context e2e --cluster=e2e --user=admin >/dev/null
kubectl config set-context alice --cluster=e2e --user=alice >/dev/null
kubectl config use-context e2e >/dev/null
wait_for 90 "the API server" kubectl get --raw /readyz
wait_for 60 "the bootstrap RBAC roles" kubectl get clusterrole edit
log "API server ready on 127.0.0.1:$api_port"

# Kubernetes 1.20 does not label namespaces with their name yet.
for ns in default gateway monitoring shop external-secrets; do
  kubectl create namespace "$ns" >/dev/null 2>&1 || true
  kubectl label namespace "$ns" "kubernetes.io/metadata.name=$ns" --overwrite >/dev/null
done
kubectl apply -f tests/e2e/crds.yaml >/dev/null || die "cannot install CRDs"
wait_for 60 "the CRDs" kubectl get httproutes,externalsecrets,servicemonitors -A

# --- portkey-guard -------------------------------------------------------------
hook_port=$(free_port)
probe_port=$(free_port)
ca_bundle=$("$guard" certs --out "$work/certs" --ip 127.0.0.1 --dns localhost) || die "certs failed"
start_guard() {
  "$guard" serve --addr "127.0.0.1:$hook_port" --probe-addr "127.0.0.1:$probe_port" \
    --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" \
    --log-format json >> "$work/guard.log" 2>&1 &
  guard_pid=$!
  echo "$guard_pid" >> "$work/pids"
  wait_for 30 "portkey-guard" curl -fsS "http://127.0.0.1:$probe_port/readyz"
}
start_guard

# The shipped webhook configurations, pointed at this process. API servers
# before 1.28 do not know matchConditions: they are removed, and the webhook
# must decide correctly without them.
mkdir -p "$work/webhooks"
cp deploy/webhook/webhooks.yaml "$work/webhooks/"
client_config() {
  printf '{"url": "https://127.0.0.1:%s/%s", "caBundle": "%s"}' "$hook_port" "$1" "$ca_bundle"
}
cat > "$work/webhooks/kustomization.yaml" <<EOF
resources: [webhooks.yaml]
patches:
  - target: {kind: MutatingWebhookConfiguration}
    patch: |-
      - {op: replace, path: /webhooks/0/clientConfig, value: $(client_config mutate)}
  - target: {kind: ValidatingWebhookConfiguration}
    patch: |-
      - {op: replace, path: /webhooks/0/clientConfig, value: $(client_config validate)}
      - {op: replace, path: /webhooks/1/clientConfig, value: $(client_config validate)}
      - {op: remove, path: /webhooks/1/matchConditions}
EOF
kubectl kustomize "$work/webhooks" | kubectl apply -f - >/dev/null || die "cannot register the webhooks"
# The API server picks up webhook configurations asynchronously.
sleep 2

# RBAC of a realistic cluster: alice edits in portkey, External Secrets
# writes Secrets there.
kubectl apply -f deploy/portkey/namespace.yaml >/dev/null || die "cannot create namespace portkey"
# (No controller-manager aggregates the built-in `edit` role here, so the
# developer role is spelled out.)
kubectl create role developer -n portkey --verb='*' \
  --resource=secrets,configmaps,services,pods,deployments.apps,networkpolicies.networking.k8s.io >/dev/null
kubectl create rolebinding alice-developer -n portkey --role=developer --user=alice >/dev/null
kubectl create role secret-writer -n portkey --verb=get,list,watch,create,update,patch,delete --resource=secrets >/dev/null
kubectl create rolebinding external-secrets -n portkey --role=secret-writer \
  --serviceaccount=external-secrets:external-secrets >/dev/null

# --- scenarios -------------------------------------------------------------------
passed=0
failed=0
failures=()
scenario() { # name, function
  local name=$1
  shift
  # Not inside an `if`: errexit is ignored there, even in a subshell.
  ( set -e; "$@" ) > "$work/scenario.log" 2>&1
  if [ $? -eq 0 ]; then
    echo "PASS  $name"
    passed=$((passed + 1))
  else
    echo "FAIL  $name"
    sed 's/^/      /' "$work/scenario.log"
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

fail() { echo "$*"; return 1; }

# Runs a command expected to be denied: exit code 1 and, for each
# `rule:field` pair, a message line `rule: <path containing field>`. Runs it
# again with --dry-run=server, which must give the same verdict.
expect_denied() { # "rule:field[,rule:field...]" command...
  local expected=$1
  shift
  local variant out code pair rule field
  for variant in "" "--dry-run=server"; do
    out=$("$@" $variant 2>&1) && code=0 || code=$?
    [ "$code" -eq 1 ] || fail "expected exit 1, got $code ${variant:+(with $variant)}: $out"
    grep -q 'denied the request' <<<"$out" || fail "not denied by the webhook: $out"
    IFS=, read -ra pairs <<<"$expected"
    for pair in "${pairs[@]}"; do
      rule=${pair%%:*}
      field=${pair#*:}
      grep -qE "(^|: )$rule: [^ ]*$field" <<<"$out" \
        || fail "no '$rule' naming '$field' ${variant:+(with $variant)} in: $out"
    done
  done
}

guard_log_has() { # jq-free: python reads the JSON lines
  python3 - "$work/guard.log" "$@" <<'PY'
import json, sys
path, *pairs = sys.argv[1:]
want = dict(p.split("=", 1) for p in pairs)
for line in open(path):
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    if all(str(entry.get(k)) == v for k, v in want.items()):
        sys.exit(0)
sys.exit(1)
PY
}

s_apply_compliant() {
  local out
  out=$(kubectl apply -k deploy/portkey 2>&1) || fail "apply failed: $out"
  ! grep -q "portkey-guard added" <<<"$out" || fail "the compliant manifests were mutated: $out"
  for kind in deployment service configmap/portkey-model-configs httproute networkpolicy servicemonitor externalsecret; do
    kubectl get -n portkey "$kind" >/dev/null || fail "$kind missing"
  done
  guard_log_has webhook=mutate kind=Deployment name=portkey-gateway decision=allowed patch_operations=0 \
    || fail "the Deployment reached the mutating webhook with a non-empty patch"
}

s_apply_stripped() {
  local out spec
  out=$(kubectl apply -f tests/e2e/stripped-deployment.yaml 2>&1) || fail "apply failed: $out"
  grep -q "Warning: portkey-guard added pod securityContext" <<<"$out" || fail "no injection warning: $out"
  grep -q "Warning: portkey-guard added gateway" <<<"$out" || fail "no gateway injection warning: $out"
  kubectl get deployment gateway-canary -n portkey -o json > "$work/canary.json"
  python3 - "$work/canary.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
pod = d["spec"]["template"]["spec"]
c = pod["containers"][0]
checks = {
    "runAsUser": pod["securityContext"]["runAsUser"] == 1000,
    "runAsGroup": pod["securityContext"]["runAsGroup"] == 1000,
    "fsGroup": pod["securityContext"]["fsGroup"] == 1000,
    "seccomp": pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault",
    "token": pod["automountServiceAccountToken"] is False,
    "readOnlyRootFilesystem": c["securityContext"]["readOnlyRootFilesystem"] is True,
    "allowPrivilegeEscalation": c["securityContext"]["allowPrivilegeEscalation"] is False,
    "drop ALL": c["securityContext"]["capabilities"]["drop"] == ["ALL"],
    "mounts": [m["mountPath"] for m in c["volumeMounts"]] == ["/tmp", "/var/tmp", "/app/configs"],
    "volumes": sorted(v["name"] for v in pod["volumes"]) == ["strategies", "tmp", "var-tmp"],
    "probes": all(c[p]["httpGet"]["path"] == "/v1/health" for p in ("startupProbe", "readinessProbe", "livenessProbe")),
    "resources": c["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    "port": c["ports"][0]["containerPort"] == 8787,
    "envFrom": c["envFrom"][0]["configMapRef"]["name"] == "portkey-gateway-config",
    "version label": d["metadata"]["labels"]["app.kubernetes.io/version"] == "1.12.1",
    "annotations": d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "8787",
}
bad = [k for k, ok in checks.items() if not ok]
assert not bad, f"not injected: {bad}"
PY
}

patch_deploy() { kubectl patch deployment portkey-gateway -n portkey --type=json -p "$1" "${@:2}"; }
c0=/spec/template/spec/containers/0

s_denied_privileged() {
  expect_denied "pss.privileged:containers\[0\].securityContext.privileged" patch_deploy \
    "[{\"op\":\"remove\",\"path\":\"$c0/securityContext/allowPrivilegeEscalation\"},{\"op\":\"add\",\"path\":\"$c0/securityContext/privileged\",\"value\":true}]"
}
s_denied_root() {
  expect_denied "pss.run-as-user:securityContext.runAsUser,pod.run-as-user:spec.template.spec.securityContext.runAsUser" patch_deploy \
    '[{"op":"replace","path":"/spec/template/spec/securityContext/runAsUser","value":0}]'
}
s_denied_latest() {
  expect_denied "gateway.image:containers\[0\].image" patch_deploy \
    "[{\"op\":\"replace\",\"path\":\"$c0/image\",\"value\":\"portkeyai/gateway:latest\"}]"
}
s_denied_version_label() {
  expect_denied "gateway.version-label:spec.template.metadata.labels" patch_deploy \
    '[{"op":"replace","path":"/spec/template/metadata/labels/app.kubernetes.io~1version","value":"1.11.0"}]'
}
s_denied_probe() {
  expect_denied "gateway.probes:livenessProbe.httpGet.path" patch_deploy \
    "[{\"op\":\"replace\",\"path\":\"$c0/livenessProbe/httpGet/path\",\"value\":\"/healthz\"}]"
}
s_denied_limits() {
  expect_denied "gateway.resources:resources.limits.cpu" patch_deploy \
    "[{\"op\":\"replace\",\"path\":\"$c0/resources/limits/cpu\",\"value\":\"2\"}]"
}
s_denied_writable_mount() {
  expect_denied "pod.writable-mount:volumeMounts\[3\].readOnly" patch_deploy \
    "[{\"op\":\"add\",\"path\":\"/spec/template/spec/volumes/-\",\"value\":{\"name\":\"data\",\"emptyDir\":{}}},{\"op\":\"add\",\"path\":\"$c0/volumeMounts/-\",\"value\":{\"name\":\"data\",\"mountPath\":\"/data\"}}]"
}
s_denied_several() {
  expect_denied "gateway.image:image,pod.run-as-user:runAsUser,gateway.resources:limits.memory" patch_deploy \
    "[{\"op\":\"replace\",\"path\":\"$c0/image\",\"value\":\"portkeyai/gateway:latest\"},{\"op\":\"replace\",\"path\":\"/spec/template/spec/securityContext/runAsUser\",\"value\":0},{\"op\":\"replace\",\"path\":\"$c0/resources/limits/memory\",\"value\":\"1Gi\"}]"
}
s_denied_load_balancer() {
  expect_denied "service.type:spec.type" kubectl patch service portkey-gateway -n portkey -p '{"spec":{"type":"LoadBalancer"}}'
}
s_denied_route_headers() {
  expect_denied "httproute.security-headers:spec.rules\[0\].filters" kubectl patch httproute portkey-gateway -n portkey \
    --type=json -p '[{"op":"remove","path":"/spec/rules/0/filters"}]'
}
s_denied_route_hostname() {
  expect_denied "httproute.hostnames:spec.hostnames" kubectl patch httproute portkey-gateway -n portkey \
    --type=json -p '[{"op":"replace","path":"/spec/hostnames/0","value":"api.pc-tips.se"}]'
}
s_denied_netpol_ingress() {
  expect_denied "networkpolicy.ingress-peers:spec.ingress\[0\].from" kubectl patch networkpolicy portkey-gateway -n portkey \
    --type=json -p '[{"op":"remove","path":"/spec/ingress/0/from"}]'
}
s_denied_netpol_egress() {
  expect_denied "networkpolicy.egress-ports:spec.egress\[1\].ports" kubectl patch networkpolicy portkey-gateway -n portkey \
    --type=json -p '[{"op":"remove","path":"/spec/egress/1/ports"}]'
}
s_denied_literal_key() {
  local secret=sk-proj-e2e-literal-0123456789
  python3 - "$secret" > "$work/literal.json" <<'PY'
import json, sys
config = json.load(open("deploy/portkey/strategies/all-models.json"))
config["targets"][2]["api_key"] = sys.argv[1]
print(json.dumps({"data": {"all-models.json": json.dumps(config)}}))
PY
  expect_denied "strategy.credentials:all-models.json" kubectl patch configmap portkey-model-configs -n portkey \
    --type=merge --patch-file "$work/literal.json"
  local out
  out=$(kubectl patch configmap portkey-model-configs -n portkey --type=merge --patch-file "$work/literal.json" 2>&1) || true
  ! grep -q "$secret" <<<"$out" || fail "the message echoes the secret value"
  ! grep -q "$secret" "$work/guard.log" || fail "the log contains the secret value"
}
s_denied_create_secret() {
  expect_denied "secret.external-secrets-only:userInfo.username" kubectl --context alice create secret generic \
    hand-made -n portkey --from-literal=OPENAI_API_KEY=sk-hand-made
}
s_denied_namespace_label() {
  expect_denied "namespace.pod-security:pod-security.kubernetes.io/enforce" kubectl label namespace portkey \
    pod-security.kubernetes.io/enforce=privileged --overwrite
}

s_dry_run_compliant() {
  kubectl apply -k deploy/portkey --dry-run=server >/dev/null
}

s_no_drift() {
  local out
  out=$(kubectl apply -k deploy/portkey 2>&1) || fail "apply failed: $out"
  ! grep -vq " unchanged$" <<<"$out" || fail "a second apply changed something: $out"
  kubectl diff -k deploy/portkey > "$work/diff.txt" 2>&1 || fail "kubectl diff reports drift: $(cat "$work/diff.txt")"
}

s_server_side_apply() {
  kubectl apply --server-side --force-conflicts -k deploy/portkey >/dev/null
  kubectl apply --server-side -k deploy/portkey >/dev/null
}

route_in_shop() { # hostname
  cat <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop-$RANDOM, namespace: shop}
spec:
  parentRefs: [{name: external, namespace: gateway}]
  hostnames: ["$1"]
  rules: [{backendRefs: [{name: shop, port: 80}]}]
EOF
}

s_hostname_hijack() {
  route_in_shop portkey.pc-tips.se > "$work/hijack-exact.yaml"
  route_in_shop '*.pc-tips.se' > "$work/hijack-wildcard.yaml"
  route_in_shop shop.pc-tips.se > "$work/own-hostname.yaml"
  expect_denied "httproute.hostname-hijack:spec.hostnames\[0\]" kubectl create -f "$work/hijack-exact.yaml"
  expect_denied "httproute.hostname-hijack:spec.hostnames\[0\]" kubectl create -f "$work/hijack-wildcard.yaml"
  kubectl create -f "$work/own-hostname.yaml" >/dev/null
}

s_other_namespaces_untouched() {
  local name=e2e-unrelated-$RANDOM
  kubectl create configmap "$name" -n default --from-literal=a=b >/dev/null
  kubectl create deployment "$name" -n default --image=nginx:latest >/dev/null
  local security_context
  security_context=$(kubectl get deployment "$name" -n default -o jsonpath='{.spec.template.spec.securityContext}')
  [[ "$security_context" != *runAsUser* ]] || fail "a Deployment in default was mutated"
  ! grep -q "$name" "$work/guard.log" || fail "objects of other namespaces reached the webhook"
}

s_external_secrets_writes_secret() {
  kubectl --as=system:serviceaccount:external-secrets:external-secrets apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: portkey-provider-secrets
  namespace: portkey
  labels: {reconcile.external-secrets.io/managed: "true"}
stringData: {OPENAI_API_KEY: from-bitwarden}
EOF
  kubectl get secret portkey-provider-secrets -n portkey >/dev/null
}

s_certificate_rotation() {
  local before after
  before=$(openssl x509 -in "$work/certs/tls.crt" -noout -serial)
  "$guard" certs --out "$work/certs" --ip 127.0.0.1 --dns localhost >/dev/null
  after=$(openssl x509 -in "$work/certs/tls.crt" -noout -serial)
  [ "$before" != "$after" ] || fail "certs did not re-issue"
  wait_for 10 "the certificate reload" grep -q "serving certificate reloaded" "$work/guard.log"
  served=$(openssl s_client -connect "127.0.0.1:$hook_port" -servername localhost </dev/null 2>/dev/null \
    | openssl x509 -noout -serial)
  [ "$served" = "$after" ] || fail "served $served, expected $after"
  kubectl apply -k deploy/portkey --dry-run=server >/dev/null
  expect_denied "gateway.image:image" patch_deploy \
    "[{\"op\":\"replace\",\"path\":\"$c0/image\",\"value\":\"portkeyai/gateway:latest\"}]"
}

s_fail_closed() {
  kill -TERM "$guard_pid"
  wait_for 30 "portkey-guard to stop" bash -c "! kill -0 $guard_pid 2>/dev/null"
  local out code
  out=$(kubectl create configmap e2e-while-down -n portkey --from-literal=a=b 2>&1) && code=0 || code=$?
  [ "$code" -ne 0 ] || fail "a write in portkey succeeded while the webhook was down"
  grep -q "failed calling webhook" <<<"$out" || fail "unexpected error: $out"
  kubectl create configmap e2e-while-down -n default --from-literal=a=b >/dev/null \
    || fail "a write in another namespace failed while the webhook was down"
  start_guard
  kubectl create configmap e2e-after-restart -n portkey --from-literal=a=b >/dev/null
}

scenario "kubectl apply -k deploy/portkey: created, nothing injected" s_apply_compliant
scenario "stripped-down Deployment: stored with everything injected, warnings printed" s_apply_stripped
scenario "privileged container is rejected" s_denied_privileged
scenario "runAsUser 0 is rejected" s_denied_root
scenario "image portkeyai/gateway:latest is rejected" s_denied_latest
scenario "version label out of sync is rejected" s_denied_version_label
scenario "incorrect liveness probe is rejected" s_denied_probe
scenario "limits above the spec are rejected" s_denied_limits
scenario "writable mount outside /tmp and /var/tmp is rejected" s_denied_writable_mount
scenario "a request with several violations lists all of them" s_denied_several
scenario "Service of type LoadBalancer is rejected" s_denied_load_balancer
scenario "HTTPRoute without the security headers is rejected" s_denied_route_headers
scenario "HTTPRoute with another hostname is rejected" s_denied_route_hostname
scenario "NetworkPolicy allowing all ingress is rejected" s_denied_netpol_ingress
scenario "NetworkPolicy allowing all egress ports is rejected" s_denied_netpol_egress
scenario "literal API key in a strategy file is rejected, never echoed" s_denied_literal_key
scenario "kubectl create secret in portkey is rejected" s_denied_create_secret
scenario "relaxing the namespace's PSS label is rejected" s_denied_namespace_label
scenario "--dry-run=server on the compliant manifests is allowed" s_dry_run_compliant
scenario "second apply changes nothing; kubectl diff exits 0" s_no_drift
scenario "kubectl apply --server-side works" s_server_side_apply
scenario "HTTPRoute for the gateway hostname in another namespace is rejected" s_hostname_hijack
scenario "other namespaces are untouched and never reach the webhook" s_other_namespaces_untouched
scenario "External Secrets writes a labelled Secret" s_external_secrets_writes_secret
scenario "certificate rotation keeps admission working without a restart" s_certificate_rotation
scenario "webhook down: portkey fails closed, other namespaces still write" s_fail_closed

# === operability scenarios (begin) ===========================================
# Self-contained: they use only the suite's helpers (scenario, fail,
# wait_for) and its running webhook ($guard, $work, $hook_port, $ca_bundle).

# A serving-certificate renewal as cert-manager does it: a new certificate
# and key signed by the same CA, written while admissions keep flowing. The
# caBundle the API server holds stays valid and unchanged, and no request
# fails: neither the API server's dry-run admissions (kubectl, through both
# webhooks) nor fresh TLS connections that trust only that caBundle (curl).
s_leaf_renewal_keeps_ca_bundle() {
  local registered_before registered_after serial_before serial_after served reloads_before
  local trusted=$work/renewal-ca.crt
  registered_before=$(kubectl get mutatingwebhookconfiguration,validatingwebhookconfiguration portkey-guard \
    -o jsonpath='{range .items[*]}{range .webhooks[*]}{.clientConfig.caBundle}{"\n"}{end}{end}')
  [ -n "$registered_before" ] || fail "no caBundle registered"
  base64 -d <<<"$ca_bundle" > "$trusted"
  serial_before=$(openssl x509 -in "$work/certs/tls.crt" -noout -serial)
  reloads_before=$(grep -c "serving certificate reloaded" "$work/guard.log" || true)
  rm -f "$work/renewal-stop" "$work/renewal-kubectl" "$work/renewal-curl"

  # Two streams of admissions until told to stop; each line is ok or a failure.
  (
    i=0
    while [ ! -e "$work/renewal-stop" ]; do
      i=$((i + 1))
      if out=$(kubectl apply -f deploy/portkey/deployment.yaml -n portkey --dry-run=server 2>&1) \
        && out2=$(kubectl create configmap "e2e-renewal-$i" -n portkey --from-literal=a=b --dry-run=server 2>&1); then
        echo ok
      else
        echo "FAILED $i: $out ${out2:-}"
      fi
    done >> "$work/renewal-kubectl"
  ) &
  local kubectl_loop=$!
  echo "$kubectl_loop" >> "$work/pids"
  (
    i=0
    while [ ! -e "$work/renewal-stop" ]; do
      i=$((i + 1))
      code=$(curl -sS -o "$work/renewal-reply.json" -w '%{http_code}' --cacert "$trusted" \
        -H 'Content-Type: application/json' --data-binary @tests/data/reviews/compliant-deployment.json \
        "https://127.0.0.1:$hook_port/validate" 2>&1) || true
      if [ "$code" = 200 ] && grep -q '"allowed":true' "$work/renewal-reply.json"; then
        echo ok
      else
        echo "FAILED $i: $code"
      fi
      sleep 0.05
    done >> "$work/renewal-curl"
  ) &
  local curl_loop=$!
  echo "$curl_loop" >> "$work/pids"

  # Admissions before the renewal ...
  wait_for 30 "admissions before the renewal" bash -c "[ \$(grep -c ok '$work/renewal-kubectl' 2>/dev/null) -ge 2 ]"
  local kubectl_before curl_before
  kubectl_before=$(grep -c . "$work/renewal-kubectl")
  curl_before=$(grep -c . "$work/renewal-curl")
  # ... the renewal: same CA, new serving certificate and key ...
  local printed
  printed=$("$guard" certs --out "$work/certs" --ip 127.0.0.1 --dns localhost)
  serial_after=$(openssl x509 -in "$work/certs/tls.crt" -noout -serial)
  [ "$serial_before" != "$serial_after" ] || fail "certs did not issue a new serving certificate"
  [ "$printed" = "$ca_bundle" ] || fail "the renewal changed the CA: caBundle would have to change"
  openssl verify -CAfile "$trusted" "$work/certs/tls.crt" >/dev/null || fail "the new certificate does not verify against the registered caBundle"
  wait_for 10 "the certificate reload" \
    bash -c "[ \$(grep -c 'serving certificate reloaded' '$work/guard.log') -gt $reloads_before ]"
  served=$(openssl s_client -connect "127.0.0.1:$hook_port" -CAfile "$trusted" </dev/null 2>/dev/null \
    | openssl x509 -noout -serial)
  [ "$served" = "$serial_after" ] || fail "served $served, expected the renewed $serial_after"
  # ... and after it.
  local kubectl_reloaded curl_reloaded
  kubectl_reloaded=$(grep -c . "$work/renewal-kubectl")
  curl_reloaded=$(grep -c . "$work/renewal-curl")
  wait_for 30 "admissions after the renewal" \
    bash -c "[ \$(grep -c . '$work/renewal-kubectl') -ge $((kubectl_reloaded + 2)) ] && [ \$(grep -c . '$work/renewal-curl') -ge $((curl_reloaded + 5)) ]"
  touch "$work/renewal-stop"
  wait "$kubectl_loop" "$curl_loop" 2>/dev/null || true

  ! grep -v '^ok$' "$work/renewal-kubectl" || fail "kubectl admissions failed across the renewal"
  ! grep -v '^ok$' "$work/renewal-curl" || fail "TLS clients trusting the caBundle failed across the renewal"
  registered_after=$(kubectl get mutatingwebhookconfiguration,validatingwebhookconfiguration portkey-guard \
    -o jsonpath='{range .items[*]}{range .webhooks[*]}{.clientConfig.caBundle}{"\n"}{end}{end}')
  [ "$registered_before" = "$registered_after" ] || fail "the registered caBundle changed"
  echo "admissions: kubectl $(grep -c . "$work/renewal-kubectl") ($kubectl_before before the renewal)," \
    "curl $(grep -c . "$work/renewal-curl") ($curl_before before); all admitted"
}

scenario "serving certificate renewal under the same CA: caBundle unchanged, no admission fails" s_leaf_renewal_keeps_ca_bundle
# === operability scenarios (end) =============================================

elapsed=$(($(date +%s) - started_at))
echo "e2e: ${elapsed}s in all"
if [ "$failed" -gt 0 ]; then
  printf 'e2e: failed: %s\n' "${failures[@]}"
fi
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
