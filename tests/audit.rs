//! `portkey-guard audit` against a fake API server on loopback: discovery
//! (kinds whose CRD is not installed are skipped, never an error), paged
//! listing, the namespace judged with the relations, controller-made
//! objects held to the pod hardening, routes of other namespaces to the
//! hostname guard, Secrets never read; `--report` writing one PolicyReport
//! and one ClusterPolicyReport in place, with timestamps that change only
//! with a result.

mod common;

use common::api_server::{standard_resources, FakeApiServer, Resource};
use common::deploy_portkey;
use common::server::BIN;
use common::ScratchDir;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

fn audit(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("audit")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("portkey-guard runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The shipped gateway (but the kinds the fake does not serve), plus what
/// an audit should find: a Deployment from before the webhook and its
/// ReplicaSet, a Service selecting nothing, a route to a port its Service
/// lacks, routes in another namespace (one claiming the gateway's
/// hostname), and a Secret that must never be read.
fn seed(server: &FakeApiServer) {
    for object in deploy_portkey() {
        if matches!(
            object["kind"].as_str(),
            Some("ExternalSecret" | "ServiceMonitor")
        ) {
            continue;
        }
        server.put(object);
    }
    let mut legacy = deploy_portkey()
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    legacy["metadata"]["name"] = json!("gateway-legacy");
    legacy["metadata"]["uid"] = json!("legacy-uid");
    legacy["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("portkeyai/gateway:1.11.0");
    let mut replica_set = legacy.clone();
    replica_set["kind"] = json!("ReplicaSet");
    replica_set["metadata"]["name"] = json!("gateway-legacy-7c9f");
    replica_set["metadata"]["uid"] = json!("legacy-rs-uid");
    replica_set["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
        "kind": "Deployment", "name": "gateway-legacy", "uid": "legacy-uid", "controller": true}]);
    server.put(legacy);
    server.put(replica_set);
    server.put(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "portkey-internal", "namespace": "portkey"},
        "spec": {"selector": {"app.kubernetes.io/name": "portkey-gw"}, "ports": [{"name": "http", "port": 8787}]}}));
    let mut route = deploy_portkey()
        .into_iter()
        .find(|o| o["kind"] == "HTTPRoute")
        .unwrap();
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = json!(9999);
    server.put(route);
    for (name, host) in [
        ("hijack", "portkey.pc-tips.se"),
        ("shop", "shop.pc-tips.se"),
    ] {
        server.put(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"hostnames": [host], "rules": [{"backendRefs": [{"name": "shop", "port": 80}]}]}}));
    }
    server.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hand-made", "namespace": "portkey"}, "stringData": {"k": "sk-never-read"}}));
}

fn object<'a>(report: &'a Value, kind: &str, namespace: &str, name: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            let ns = o["namespace"].as_str().unwrap_or_default();
            o["kind"] == kind && ns == namespace && o["name"] == name
        })
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} in {report:#}"))
}

fn rules(object: &Value) -> Vec<(String, String)> {
    object["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_owned(),
                v["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn has(object: &Value, rule: &str, path: &str) -> bool {
    rules(object).iter().any(|(r, p)| r == rule && p == path)
}

#[test]
fn the_live_namespace_is_judged_with_its_relations() {
    let server = FakeApiServer::start(standard_resources(), 2);
    seed(&server);
    let dir = ScratchDir::new("audit-json");
    let kubeconfig = server.kubeconfig(&dir);
    let o = audit(&kubeconfig, &["--output", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();

    // Kinds the server does not serve are skipped, by name.
    let not_served: Vec<&str> = report["notServed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for kind in [
        "ExternalSecret",
        "SecretStore",
        "PushSecret",
        "ServiceMonitor",
        "GRPCRoute",
        "TLSRoute",
    ] {
        assert!(not_served.contains(&kind), "{kind} not in {not_served:?}");
    }
    assert!(stderr(&o).contains("skipped: "), "{}", stderr(&o));
    assert_eq!(report["errors"], json!([]));

    // The shipped gateway is clean, its relations included.
    let gateway = object(&report, "Deployment", "portkey", "portkey-gateway");
    assert_eq!(gateway["status"], "allowed", "{gateway:#}");
    assert_eq!(
        object(&report, "Namespace", "", "portkey")["kind"],
        "Namespace"
    );
    // A Deployment that predates the webhook, in full; its ReplicaSet,
    // made by the deployment controller, by the pod hardening only.
    let legacy = object(&report, "Deployment", "portkey", "gateway-legacy");
    assert!(
        has(
            legacy,
            "gateway.image",
            "spec.template.spec.containers[0].image"
        ),
        "{legacy:#}"
    );
    assert_eq!(legacy["status"], "denied");
    let replica_set = object(&report, "ReplicaSet", "portkey", "gateway-legacy-7c9f");
    assert!(rules(replica_set).is_empty(), "{replica_set:#}");
    // The relations, over the namespace listed in full.
    let internal = object(&report, "Service", "portkey", "portkey-internal");
    assert!(
        has(internal, "relation.service-gateway", "spec.selector"),
        "{internal:#}"
    );
    let route = object(&report, "HTTPRoute", "portkey", "portkey-gateway");
    assert!(
        has(
            route,
            "relation.route-backend",
            "spec.rules[0].backendRefs[0].port"
        ),
        "{route:#}"
    );
    // Routes elsewhere: the hostname guard only.
    let hijack = object(&report, "HTTPRoute", "shop", "hijack");
    assert!(
        has(hijack, "route.hostname-hijack", "spec.hostnames[0]"),
        "{hijack:#}"
    );
    assert_eq!(
        object(&report, "HTTPRoute", "shop", "shop")["status"],
        "allowed"
    );
    // Objects read from the server carry no file position.
    assert!(
        gateway.get("file").is_none()
            && gateway["source"] == "deployments.apps/portkey/portkey-gateway"
    );

    let requests = server.requests();
    assert!(
        !requests.iter().any(|r| r.contains("secrets")),
        "Secrets were requested: {requests:#?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("continue=")),
        "no page after the first: {requests:#?}"
    );
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "{requests:#?}"
    );

    // Text output: like check's, without file positions.
    let o = audit(&kubeconfig, &[]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("DENIED  HTTPRoute portkey/portkey-gateway\n")
            && text.contains("  deny  relation.route-backend: spec.rules[0].backendRefs[0].port: Service portkey/portkey-gateway does not expose port 9999"),
        "{text}"
    );
}

#[test]
fn a_kind_served_only_at_a_version_its_group_does_not_prefer_is_listed() {
    // external-secrets.io prefers v1 (listed first), where ExternalSecret
    // is; PushSecret is served at v1alpha1 only.
    let mut resources = standard_resources();
    resources.push(Resource::new(
        "external-secrets.io",
        "v1",
        "ExternalSecret",
        "externalsecrets",
        true,
    ));
    resources.push(Resource::new(
        "external-secrets.io",
        "v1alpha1",
        "PushSecret",
        "pushsecrets",
        true,
    ));
    let server = FakeApiServer::start(resources, 500);
    seed(&server);
    for object in deploy_portkey() {
        if object["kind"] == "ExternalSecret" {
            server.put(object);
        }
    }
    server.put(common::load_one(&common::repo_path(
        "tests/fixtures/base/pushsecret.yaml",
    )));
    let dir = ScratchDir::new("audit-versions");
    let o = audit(&server.kubeconfig(&dir), &["--output", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let not_served = report["notServed"].as_array().unwrap();
    for kind in ["ExternalSecret", "PushSecret"] {
        assert!(!not_served.contains(&json!(kind)), "{not_served:?}");
    }
    let push = object(&report, "PushSecret", "portkey", "exfiltrate");
    assert!(
        rules(push)
            .iter()
            .any(|(rule, _)| rule == "pushsecret.forbidden"),
        "{push:#}"
    );
    assert_eq!(
        push["source"],
        "pushsecrets.external-secrets.io/portkey/exfiltrate"
    );
    let requests = server.requests();
    for listed in [
        "GET /apis/external-secrets.io/v1alpha1/namespaces/portkey/pushsecrets?",
        "GET /apis/external-secrets.io/v1/namespaces/portkey/externalsecrets?",
    ] {
        assert!(
            requests.iter().any(|r| r.starts_with(listed)),
            "no {listed}: {requests:#?}"
        );
    }
}

fn report_of(server: &FakeApiServer, plural: &str, namespace: Option<&str>) -> Value {
    server
        .get(plural, namespace, "portkey-guard")
        .unwrap_or_else(|| panic!("no {plural} portkey-guard"))
}

/// (kind, name, rule, result) → timestamp seconds.
fn results(report: &Value) -> Vec<((String, String, String, String), i64)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let resource = &r["resources"][0];
            (
                (
                    resource["kind"].as_str().unwrap().to_owned(),
                    resource["name"].as_str().unwrap().to_owned(),
                    r["rule"].as_str().unwrap().to_owned(),
                    r["result"].as_str().unwrap().to_owned(),
                ),
                r["timestamp"]["seconds"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn reports_are_written_in_place_and_change_only_with_their_results() {
    let server = FakeApiServer::start(standard_resources(), 500);
    seed(&server);
    let dir = ScratchDir::new("audit-report");
    let kubeconfig = server.kubeconfig(&dir);

    let o = audit(&kubeconfig, &["--report"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("PolicyReport portkey/portkey-guard: created"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("ClusterPolicyReport portkey-guard: created"),
        "{}",
        stderr(&o)
    );
    let first = report_of(&server, "policyreports", Some("portkey"));
    assert_eq!(
        first["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "portkey-guard"
    );
    // The summary counts the results.
    let listed = results(&first);
    for outcome in ["pass", "fail", "warn"] {
        let counted = listed
            .iter()
            .filter(|((_, _, _, r), _)| r == outcome)
            .count();
        assert_eq!(
            first["summary"][outcome], counted,
            "{outcome}: {:#}",
            first["summary"]
        );
    }
    assert!(listed.iter().any(|((k, n, r, o), _)| k == "HTTPRoute"
        && n == "portkey-gateway"
        && r == "relation.route-backend"
        && o == "fail"));
    assert!(listed.iter().any(|((k, n, r, o), _)| k == "Service"
        && n == "portkey-internal"
        && r == "relation.service-gateway"
        && o == "fail"));
    let cluster = report_of(&server, "clusterpolicyreports", None);
    let cluster_results = results(&cluster);
    assert!(cluster_results
        .iter()
        .any(|((k, n, r, o), _)| k == "HTTPRoute"
            && n == "hijack"
            && r == "route.hostname-hijack"
            && o == "fail"));
    assert!(cluster_results
        .iter()
        .any(|((k, _, _, o), _)| k == "Namespace" && o == "pass"));
    assert!(!cluster_results.iter().any(|((_, n, _, _), _)| n == "shop"));

    // Nothing changed: nothing is written.
    let writes_before = server
        .requests()
        .iter()
        .filter(|r| !r.starts_with("GET "))
        .count();
    let o = audit(&kubeconfig, &["--report"]);
    assert!(
        stderr(&o).contains("PolicyReport portkey/portkey-guard: unchanged"),
        "{}",
        stderr(&o)
    );
    let writes_after = server
        .requests()
        .iter()
        .filter(|r| !r.starts_with("GET "))
        .count();
    assert_eq!(
        writes_before, writes_after,
        "an unchanged report was written"
    );

    // The route is fixed a second later: its results change, and only
    // they get a new time.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut route = deploy_portkey()
        .into_iter()
        .find(|o| o["kind"] == "HTTPRoute")
        .unwrap();
    route["metadata"]["uid"] = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resources"][0]["kind"] == "HTTPRoute")
        .map(|r| r["resources"][0]["uid"].clone())
        .unwrap();
    server.put(route);
    let o = audit(&kubeconfig, &["--report"]);
    assert!(
        stderr(&o).contains("PolicyReport portkey/portkey-guard: updated"),
        "{}",
        stderr(&o)
    );
    let second = report_of(&server, "policyreports", Some("portkey"));
    let after = results(&second);
    assert!(!after
        .iter()
        .any(|((k, _, r, _), _)| k == "HTTPRoute" && r.starts_with("relation.")));
    for (key, time) in &after {
        let before = listed.iter().find(|(k, _)| k == key);
        match before {
            Some((_, old)) => assert_eq!(time, old, "{key:?} kept its time"),
            None => assert!(key.0 == "HTTPRoute", "{key:?} is new"),
        }
    }
    let route_pass = after
        .iter()
        .find(|((k, _, _, o), _)| k == "HTTPRoute" && o == "pass")
        .expect("the fixed route passes");
    assert!(route_pass.1 > listed[0].1, "{route_pass:?}");
    // One report each, updated in place.
    assert_eq!(second["metadata"]["uid"], first["metadata"]["uid"]);
}

#[test]
fn without_the_policy_report_crds_report_is_an_error_and_audit_still_prints() {
    let resources = standard_resources()
        .into_iter()
        .filter(|r| r.group != "wgpolicyk8s.io")
        .collect();
    let server = FakeApiServer::start(resources, 500);
    seed(&server);
    let dir = ScratchDir::new("audit-no-crd");
    let o = audit(&server.kubeconfig(&dir), &["--report", "--output", "json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("PolicyReport (wgpolicyk8s.io/v1alpha2) is not served"),
        "{}",
        stderr(&o)
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!report["objects"].as_array().unwrap().is_empty());
}

#[test]
fn an_unreachable_api_server_is_exit_2_with_a_reason() {
    let dir = ScratchDir::new("audit-down");
    let port = common::server::free_port();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\nusers: [{{name: u, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"),
    )
    .unwrap();
    let o = audit(&kubeconfig, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("portkey-guard: error: "),
        "{}",
        stderr(&o)
    );
    let missing = audit(&dir.join("no-such-kubeconfig"), &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no-such-kubeconfig"),
        "{}",
        stderr(&missing)
    );
}
