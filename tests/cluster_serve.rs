//! `serve --cluster` against a fake API server on loopback: the cache lists
//! and watches the namespace (never its Secrets); a write that breaks a
//! relation with a cached object is admitted with a warning naming both;
//! the background audit, on the replica holding the Lease, writes the
//! PolicyReport and exports its metrics; a second replica neither audits
//! nor writes until the Lease is free. With the API server unreachable,
//! admission and readiness are as without it, a snapshot outlives it only
//! for `--cache-max-stale-seconds`, and the cache comes back with it; a
//! namespace over `--cache-max-objects` has no snapshot.

mod common;

use common::api_server::{standard_resources, FakeApiServer, Resource};
use common::deploy_portkey;
use common::server::{
    cert_args, connect, make_certs, post, start_with_certs, trusting, ServerProcess,
};
use common::ScratchDir;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn resources() -> Vec<Resource> {
    let mut all = standard_resources();
    all.push(Resource::new(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
    ));
    all
}

fn seed(server: &FakeApiServer) {
    for object in deploy_portkey() {
        if !matches!(
            object["kind"].as_str(),
            Some("ExternalSecret" | "ServiceMonitor")
        ) {
            server.put(object);
        }
    }
    server.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hand-made", "namespace": "portkey"}, "stringData": {"k": "sk-never-read"}}));
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The AdmissionReview of alice updating the gateway Deployment to `new`.
fn update_review(new: &Value, old: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "e7c2a1a0-0000-4000-8000-000000000001",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "portkey-gateway", "namespace": "portkey", "operation": "UPDATE",
            "userInfo": {"username": "alice", "groups": ["developers"]},
            "object": new, "oldObject": old, "dryRun": false,
        }
    }))
    .unwrap()
}

fn validate(dir: &std::path::Path, addr: std::net::SocketAddr, body: Vec<u8>) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = connect(&trusting(dir, b"h2"), addr).await.unwrap();
        let (status, body) = post(stream, "/validate", body).await.unwrap();
        assert_eq!(status, 200);
        serde_json::from_slice(&body).unwrap()
    })
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `serve --cluster` against `api`, as replica `identity`, with `extra`
/// flags. The kubeconfig is written beside the certificates, so that it
/// lives as long as the directory the caller keeps.
fn replica(
    name: &str,
    api: &FakeApiServer,
    identity: &str,
    extra: &[&str],
) -> (ScratchDir, ServerProcess) {
    let dir = ScratchDir::new(name);
    make_certs(&dir);
    let kubeconfig = api.kubeconfig(&dir);
    let mut args = cert_args(&dir);
    args.extend(
        [
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--lease-namespace",
            "portkey-guard",
            "--lease-identity",
            identity,
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(str::to_owned),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start_with_env(&args, &[], dir.join("serve.log"));
    (dir, server)
}

/// A fake API server holding deploy/portkey, and a replica whose cache
/// has listed it.
fn synced_replica(name: &str, extra: &[&str]) -> (FakeApiServer, ScratchDir, ServerProcess) {
    let api = FakeApiServer::start(resources(), 500);
    seed(&api);
    let (dir, server) = replica(name, &api, "replica-a", extra);
    wait_for("the cache", Duration::from_secs(20), || {
        metric(&server.metrics(), "portkey_guard_cache_synced") == Some(1.0)
    });
    (api, dir, server)
}

/// The gateway Deployment as shipped, and with CEREBRAS_API_KEY no longer
/// set (which a strategy file of the cached ConfigMap reads).
fn gateway_and_unset_variable() -> (Value, Value) {
    let old = deploy_portkey()
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .remove(3);
    (old, new)
}

fn relation_warnings(answer: &Value) -> Vec<String> {
    answer["response"]["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str())
        .filter(|w| w.contains(": relation."))
        .map(str::to_owned)
        .collect()
}

#[test]
fn relations_warn_at_admission_and_the_background_audit_keeps_the_report() {
    let (api, dir, server) = synced_replica("cluster-serve", &["--audit-interval", "1s"]);

    // The gateway stops setting CEREBRAS_API_KEY, which a strategy file
    // of the cached ConfigMap reads: admitted, with the relation warned.
    let (old, new) = gateway_and_unset_variable();
    let answer = validate(&dir, server.admission, update_review(&new, &old));
    let response = &answer["response"];
    assert_eq!(response["allowed"], true, "{answer:#}");
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings: {answer:#}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "ConfigMap portkey/portkey-model-configs: relation.strategy-env: data[\"all-models.json\"]"
        )),
        "{warnings:#?}"
    );
    // The unchanged Deployment breaks nothing.
    let answer = validate(&dir, server.admission, update_review(&old, &old));
    assert!(answer["response"]["warnings"].is_null(), "{answer:#}");

    // The background audit: this replica takes the Lease and writes the
    // report.
    wait_for("the PolicyReport", Duration::from_secs(20), || {
        api.get("policyreports", Some("portkey"), "portkey-guard")
            .is_some()
    });
    let lease = api
        .get("leases", Some("portkey-guard"), "portkey-guard-audit")
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");
    let report = api
        .get("policyreports", Some("portkey"), "portkey-guard")
        .unwrap();
    assert_eq!(report["summary"]["fail"], 0, "{report:#}");
    assert!(
        report["summary"]["pass"].as_u64().unwrap() >= 6,
        "{report:#}"
    );
    // The audit counts itself once its reports are written: a moment
    // after the report appears.
    wait_for("the audit's metrics", Duration::from_secs(10), || {
        metric(
            &server.metrics(),
            "portkey_guard_audit_runs_total{result=\"success\"}",
        ) >= Some(1.0)
    });
    let text = server.metrics();
    assert_eq!(
        metric(&text, "portkey_guard_audit_leader"),
        Some(1.0),
        "{text}"
    );
    assert!(
        metric(&text, "portkey_guard_audit_objects").unwrap() >= 6.0,
        "{text}"
    );
    assert!(metric(&text, "portkey_guard_audit_last_run_timestamp_seconds").unwrap() > 0.0);
    assert!(
        text.contains("portkey_guard_relation_warnings_total{rule=\"relation.strategy-env\"} 1"),
        "{text}"
    );

    // A change arrives through the watch: the route moves to a port the
    // Service lacks; the next audit reports it.
    let mut route = deploy_portkey()
        .into_iter()
        .find(|o| o["kind"] == "HTTPRoute")
        .unwrap();
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = json!(9999);
    api.put(route);
    wait_for(
        "the route's failure in the report",
        Duration::from_secs(20),
        || {
            let report = api
                .get("policyreports", Some("portkey"), "portkey-guard")
                .unwrap();
            report["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["rule"] == "relation.route-backend" && r["result"] == "fail")
        },
    );
    // The metrics follow once the run that wrote the report has finished.
    wait_for(
        "the route's finding in the metrics",
        Duration::from_secs(20),
        || {
            metric(
                &server.metrics(),
                "portkey_guard_audit_findings{rule=\"relation.route-backend\",action=\"deny\"}",
            ) == Some(1.0)
        },
    );

    let requests = api.requests();
    assert!(
        !requests.iter().any(|r| r.contains("secrets")),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("watch=true")),
        "{requests:#?}"
    );
}

#[test]
fn an_unreachable_api_server_changes_nothing_for_admission() {
    let scratch = ScratchDir::new("cluster-serve-down-kube");
    let port = common::server::free_port();
    let kubeconfig = scratch.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"),
    )
    .unwrap();
    // Ready without it (start_with_certs waits for /readyz).
    let (dir, server) = start_with_certs(
        "cluster-serve-down",
        &[
            "--cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--audit-interval",
            "1s",
        ],
    );
    let old = deploy_portkey()
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let mut latest = old.clone();
    latest["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("portkeyai/gateway:latest");
    let answer = validate(&dir, server.admission, update_review(&latest, &old));
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    let answer = validate(&dir, server.admission, update_review(&old, &old));
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
    let text = server.metrics();
    assert_eq!(
        metric(&text, "portkey_guard_cache_synced"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(metric(&text, "portkey_guard_ready"), Some(1.0), "{text}");
    assert_eq!(
        metric(&text, "portkey_guard_audit_leader"),
        Some(0.0),
        "{text}"
    );

    // A configuration that cannot be read is a start-up error.
    let out = std::process::Command::new(common::server::BIN)
        .args(["serve", "--cluster", "--kubeconfig", "/no/such/kubeconfig"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/kubeconfig"));
}

#[test]
fn a_snapshot_outlives_the_api_server_only_for_max_stale_and_returns_with_it() {
    let (api, dir, server) =
        synced_replica("cluster-serve-stale", &["--cache-max-stale-seconds", "4"]);
    let (old, new) = gateway_and_unset_variable();
    let answer = validate(&dir, server.admission, update_review(&new, &old));
    assert_eq!(relation_warnings(&answer).len(), 1, "{answer:#}");

    // The API server goes away: every watch fails from now on.
    let addr = api.addr;
    let gone = Instant::now();
    drop(api);
    // A recent snapshot still warns ...
    let answer = validate(&dir, server.admission, update_review(&new, &old));
    if gone.elapsed() < Duration::from_secs(3) {
        assert_eq!(relation_warnings(&answer).len(), 1, "{answer:#}");
    }
    // ... an old one is dropped: relations are skipped, admission and
    // readiness are as without a cache.
    wait_for("the snapshot dropped", Duration::from_secs(30), || {
        metric(&server.metrics(), "portkey_guard_cache_synced") == Some(0.0)
    });
    assert!(
        gone.elapsed() >= Duration::from_secs(4),
        "dropped after {:?}, before --cache-max-stale-seconds",
        gone.elapsed()
    );
    let answer = validate(&dir, server.admission, update_review(&new, &old));
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
    assert!(relation_warnings(&answer).is_empty(), "{answer:#}");
    let text = server.metrics();
    assert_eq!(
        metric(
            &text,
            "portkey_guard_cache_dropped_total{reason=\"unreachable\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "portkey_guard_cache_objects"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(metric(&text, "portkey_guard_ready"), Some(1.0), "{text}");

    // The API server comes back where it was: the cache lists it again,
    // without a restart, and the relations warn again.
    let api = FakeApiServer::start_at(resources(), 500, addr);
    seed(&api);
    wait_for("the snapshot back", Duration::from_secs(90), || {
        metric(&server.metrics(), "portkey_guard_cache_synced") == Some(1.0)
    });
    let answer = validate(&dir, server.admission, update_review(&new, &old));
    assert_eq!(relation_warnings(&answer).len(), 1, "{answer:#}");
    assert!(metric(&server.metrics(), "portkey_guard_cache_objects") > Some(0.0));
}

#[test]
fn a_namespace_over_the_object_limit_has_no_snapshot() {
    let (api, dir, server) = synced_replica(
        "cluster-serve-limit",
        &["--cache-max-objects", "20", "--audit-interval", "1s"],
    );
    wait_for("an audit", Duration::from_secs(20), || {
        metric(
            &server.metrics(),
            "portkey_guard_audit_runs_total{result=\"success\"}",
        ) >= Some(1.0)
    });
    // Someone creates ConfigMaps in the namespace, past the limit.
    for i in 0..20 {
        api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("filler-{i}"), "namespace": "portkey"},
            "data": {"k": "v"}}));
    }
    wait_for("the snapshot dropped", Duration::from_secs(20), || {
        metric(&server.metrics(), "portkey_guard_cache_synced") == Some(0.0)
    });
    let (old, new) = gateway_and_unset_variable();
    let answer = validate(&dir, server.admission, update_review(&new, &old));
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
    assert!(relation_warnings(&answer).is_empty(), "{answer:#}");
    // The background audit is skipped, and said to be.
    wait_for("a skipped audit", Duration::from_secs(20), || {
        metric(
            &server.metrics(),
            "portkey_guard_audit_runs_total{result=\"skipped\"}",
        ) >= Some(1.0)
    });
    let text = server.metrics();
    assert_eq!(
        metric(
            &text,
            "portkey_guard_cache_dropped_total{reason=\"too_many_objects\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(metric(&text, "portkey_guard_ready"), Some(1.0), "{text}");
    server.log_when(|log| log.contains("more objects than --cache-max-objects"));

    // A replica started now finds the namespace over the limit while
    // listing it: never a snapshot.
    let (_, late) = replica(
        "cluster-serve-limit-late",
        &api,
        "replica-b",
        &["--cache-max-objects", "20"],
    );
    wait_for("the listing stopped", Duration::from_secs(20), || {
        metric(
            &late.metrics(),
            "portkey_guard_cache_dropped_total{reason=\"too_many_objects\"}",
        ) == Some(1.0)
    });
    assert_eq!(
        metric(&late.metrics(), "portkey_guard_cache_synced"),
        Some(0.0)
    );
}

#[test]
fn only_the_replica_holding_the_lease_audits() {
    let api = FakeApiServer::start(resources(), 500);
    seed(&api);
    let lease_flags = ["--audit-interval", "1s", "--lease-duration-seconds", "3"];
    let (_, leader) = replica("cluster-serve-leader", &api, "replica-a", &lease_flags);
    wait_for("the PolicyReport", Duration::from_secs(20), || {
        api.get("policyreports", Some("portkey"), "portkey-guard")
            .is_some()
    });
    let (follower_dir, follower) =
        replica("cluster-serve-follower", &api, "replica-b", &lease_flags);
    wait_for("the follower's cache", Duration::from_secs(20), || {
        metric(&follower.metrics(), "portkey_guard_cache_synced") == Some(1.0)
    });
    // Several audit intervals and lease durations go by.
    let leader_runs = |text: &str| {
        metric(text, "portkey_guard_audit_runs_total{result=\"success\"}").unwrap_or(0.0)
    };
    let before = leader_runs(&leader.metrics());
    std::thread::sleep(Duration::from_secs(7));
    assert!(leader_runs(&leader.metrics()) > before);
    let lease = api
        .get("leases", Some("portkey-guard"), "portkey-guard-audit")
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a", "{lease:#}");
    let text = follower.metrics();
    assert_eq!(
        metric(&text, "portkey_guard_audit_leader"),
        Some(0.0),
        "{text}"
    );
    for result in ["success", "failure", "skipped"] {
        let series = format!("portkey_guard_audit_runs_total{{result=\"{result}\"}}");
        assert_eq!(
            metric(&text, &series),
            Some(0.0),
            "the follower audited: {text}"
        );
    }
    let log = std::fs::read_to_string(follower_dir.join("serve.log")).unwrap();
    assert!(!log.contains("audit: done"), "{log}");

    // The follower is able: it takes over once the leader is gone and its
    // Lease expired.
    drop(leader);
    wait_for("the follower's audit", Duration::from_secs(30), || {
        leader_runs(&follower.metrics()) >= 1.0
    });
    let lease = api
        .get("leases", Some("portkey-guard"), "portkey-guard-audit")
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "replica-b", "{lease:#}");
}
