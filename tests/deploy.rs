//! deploy/webhook agrees with the binary: the webhook rules list exactly the
//! handled kinds, the configurations follow the admission contract, and the
//! webhook's own pod passes the restricted profile.

mod common;

use common::{load_yaml, repo_path};
use portkey_guard::admission::{admit, Stage};
use portkey_guard::kinds::HANDLED_KINDS;
use portkey_guard::offline::create_request;
use portkey_guard::policy::Policy;
use serde_json::Value;
use std::collections::BTreeSet;

type Rule = (String, String, String); // (group, version, resource)

fn webhook_configs() -> Vec<Value> {
    load_yaml(&repo_path("deploy/webhook/webhooks.yaml"))
}

fn rules_of(config: &Value) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for webhook in config["webhooks"].as_array().unwrap() {
        for rule in webhook["rules"].as_array().unwrap() {
            for group in rule["apiGroups"].as_array().unwrap() {
                for version in rule["apiVersions"].as_array().unwrap() {
                    for resource in rule["resources"].as_array().unwrap() {
                        let resource = resource.as_str().unwrap();
                        assert!(!resource.contains('/'), "no subresources: {resource}");
                        out.insert((
                            group.as_str().unwrap().into(),
                            version.as_str().unwrap().into(),
                            resource.into(),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn handled(only_mutated: bool) -> BTreeSet<Rule> {
    HANDLED_KINDS
        .iter()
        .filter(|h| !only_mutated || h.mutated)
        .flat_map(|h| {
            h.versions
                .iter()
                .map(move |v| (h.group.to_owned(), (*v).to_owned(), h.resource.to_owned()))
        })
        .collect()
}

#[test]
fn webhook_rules_list_exactly_the_handled_kinds() {
    let configs = webhook_configs();
    let mutating = configs
        .iter()
        .find(|c| c["kind"] == "MutatingWebhookConfiguration")
        .unwrap();
    let validating = configs
        .iter()
        .find(|c| c["kind"] == "ValidatingWebhookConfiguration")
        .unwrap();
    assert_eq!(rules_of(mutating), handled(true), "mutating rules");
    assert_eq!(rules_of(validating), handled(false), "validating rules");
}

#[test]
fn webhook_configurations_follow_the_admission_contract() {
    for config in webhook_configs() {
        assert_eq!(
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "portkey-guard/portkey-guard-tls"
        );
        let mutating = config["kind"] == "MutatingWebhookConfiguration";
        for w in config["webhooks"].as_array().unwrap() {
            let name = w["name"].as_str().unwrap();
            assert_eq!(
                w["admissionReviewVersions"],
                serde_json::json!(["v1"]),
                "{name}"
            );
            assert_eq!(w["sideEffects"], "None", "{name}");
            assert!(w["timeoutSeconds"].as_i64().unwrap() <= 5, "{name}");
            assert_eq!(w["failurePolicy"], "Fail", "{name}");
            let selector = &w["namespaceSelector"]["matchExpressions"][0];
            assert_eq!(selector["key"], "kubernetes.io/metadata.name", "{name}");
            let path = w["clientConfig"]["service"]["path"].as_str().unwrap();
            assert_eq!(
                path,
                if mutating { "/mutate" } else { "/validate" },
                "{name}"
            );
            if mutating {
                assert_eq!(w["reinvocationPolicy"], "IfNeeded", "{name}");
            }
            // The webhook's own namespace is never intercepted.
            let values: Vec<&str> = selector["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            match selector["operator"].as_str().unwrap() {
                "In" => assert!(!values.contains(&"portkey-guard"), "{name}"),
                "NotIn" => assert!(values.contains(&"portkey-guard"), "{name}"),
                other => panic!("{name}: unexpected operator {other}"),
            }
        }
    }
}

#[test]
fn the_webhook_pod_passes_the_restricted_profile() {
    // Admit the webhook's Deployment as if its namespace were policed, and
    // look at the restricted-profile rules only (its UID is not the gateway's).
    let policy = Policy::from_yaml("namespace: portkey-guard\n").unwrap();
    let mut deployment = load_yaml(&repo_path("deploy/webhook/deployment.yaml")).remove(0);
    deployment["metadata"]["namespace"] = Value::from("portkey-guard");
    let decision = admit(
        &create_request(&deployment, &policy).unwrap(),
        &policy,
        Stage::Validate,
    )
    .unwrap();
    let pss: Vec<String> = decision
        .findings
        .iter()
        .filter(|f| f.violation.rule.as_str().starts_with("pss."))
        .map(|f| f.violation.to_string())
        .collect();
    assert!(pss.is_empty(), "{pss:?}");
    let spec = &deployment["spec"]["template"]["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert!(deployment["spec"]["replicas"].as_i64().unwrap() >= 2);
}

#[test]
fn the_webhook_is_granted_nothing() {
    // It never calls the Kubernetes API: no token, no RBAC objects at all.
    for file in common::yaml_files(&repo_path("deploy/webhook")) {
        for object in load_yaml(&file) {
            let kind = object["kind"].as_str().unwrap_or_default();
            assert!(
                !matches!(
                    kind,
                    "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
                ),
                "{} grants {kind}",
                file.display()
            );
            if kind == "ServiceAccount" {
                assert_eq!(object["automountServiceAccountToken"], false);
            }
        }
    }
}
