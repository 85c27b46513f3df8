//! The relations through `check`: the shipped manifests checked together
//! break none; a set with every relation broken once is denied, each broken
//! reference reported on the object that holds it with the other object
//! named; objects not given are never reported missing.

mod common;

use common::repo_path;
use serde_json::Value;
use std::process::Command;

fn check(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_portkey-guard"))
        .current_dir(repo_path(""))
        .arg("check")
        .args(["--output", "json"])
        .args(args)
        .output()
        .expect("portkey-guard runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// (kind, name, rule, path, message) of every relation finding.
fn relation_findings(report: &Value) -> Vec<(String, String, String, String, String)> {
    let mut out = Vec::new();
    for object in report["objects"].as_array().unwrap() {
        for v in object["violations"].as_array().unwrap() {
            let rule = v["rule"].as_str().unwrap();
            if rule.starts_with("relation.") {
                out.push((
                    object["kind"].as_str().unwrap().to_owned(),
                    object["name"].as_str().unwrap().to_owned(),
                    rule.to_owned(),
                    v["path"].as_str().unwrap().to_owned(),
                    v["message"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_shipped_manifests_break_no_relation() {
    for args in [&["-k", "deploy/portkey"][..], &["deploy/portkey"][..]] {
        let (code, report) = check(args);
        assert_eq!(code, 0, "{args:?}: {report:#}");
        assert!(relation_findings(&report).is_empty(), "{args:?}");
    }
}

#[test]
fn every_broken_relation_is_denied_on_its_holder_naming_the_other_object() {
    let (code, report) = check(&["-k", "tests/fixtures/relations/broken"]);
    assert_eq!(code, 1, "{report:#}");
    let found = relation_findings(&report);
    let strategies = found
        .iter()
        .find(|f| f.2 == "relation.strategy-env")
        .map(|f| f.1.clone())
        .expect("a strategy-env finding");
    assert!(
        strategies.starts_with("portkey-model-configs-"),
        "{strategies}"
    );
    let expected: Vec<(&str, &str, &str, &str, &str)> = vec![
        (
            "ConfigMap",
            &strategies,
            "relation.strategy-env",
            "data[\"all-models.json\"].targets[3].api_key",
            "Deployment portkey/portkey-gateway",
        ),
        (
            "Deployment",
            "portkey-gateway",
            "relation.config-maps",
            "spec.template.spec.containers[0].env[3].valueFrom.configMapKeyRef.key",
            "ConfigMap portkey/portkey-gateway-config",
        ),
        (
            "Deployment",
            "portkey-gateway",
            "relation.secret-source",
            "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.key",
            "ExternalSecret portkey/portkey-provider-secrets",
        ),
        (
            "Deployment",
            "portkey-gateway",
            "relation.workload-selector",
            "spec.selector",
            "Deployment portkey/portkey-gateway's own template",
        ),
        (
            "HTTPRoute",
            "portkey-gateway",
            "relation.route-backend",
            "spec.rules[0].backendRefs[0].port",
            "Service portkey/portkey-gateway",
        ),
        (
            "NetworkPolicy",
            "portkey-gateway",
            "relation.networkpolicy-gateway",
            "spec.podSelector",
            "Deployment portkey/portkey-gateway",
        ),
        (
            "Service",
            "portkey-gateway",
            "relation.service-gateway",
            "spec.ports[0].targetPort",
            "Deployment portkey/portkey-gateway",
        ),
        (
            "ServiceMonitor",
            "portkey-gateway",
            "relation.servicemonitor-service",
            "spec.endpoints[0].port",
            "Service portkey/portkey-gateway",
        ),
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((kind, name, rule, path, message), want) in found.iter().zip(&expected) {
        assert_eq!(
            (kind.as_str(), name.as_str(), rule.as_str(), path.as_str()),
            (want.0, want.1, want.2, want.3)
        );
        assert!(message.contains(want.4), "{rule}: {message}");
    }
    // Every catalog relation is broken here once.
    let rules: std::collections::BTreeSet<&str> = found.iter().map(|f| f.2.as_str()).collect();
    let catalog: std::collections::BTreeSet<&str> = portkey_guard::rules::RuleId::ALL
        .iter()
        .filter(|r| r.is_relation())
        .map(|r| r.as_str())
        .collect();
    assert_eq!(rules, catalog);
    // A broken deny-action relation denies its holder; the warn-action one
    // (the ServiceMonitor's) warns.
    let object = |kind: &str| {
        report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(object("NetworkPolicy")["status"], "denied");
    let monitor = object("ServiceMonitor");
    let relation = monitor["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "relation.servicemonitor-service")
        .unwrap();
    assert_eq!(relation["action"], "warn");
    assert_eq!(object("ExternalSecret")["status"], "allowed");
}

#[test]
fn objects_not_given_are_never_reported_missing() {
    // The Deployment alone names a Secret, ConfigMaps and (through its
    // volume) strategy files that are not among the files given.
    let (code, report) = check(&["deploy/portkey/deployment.yaml"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(relation_findings(&report).is_empty());
}
