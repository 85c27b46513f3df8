//! The PolicyReports portkey-guard writes fit the upstream CRDs
//! (wgpolicyk8s.io/v1alpha2, vendored in tests/e2e/crds.yaml): every field
//! is one the schema declares (an API server would silently prune any
//! other), of its type, within its enums, with its required fields.

mod common;

use common::{deploy_portkey, load_yaml, repo_path};
use kube::core::ApiResource;
use portkey_guard::audit::judge;
use portkey_guard::cluster::{Inventory, Live};
use portkey_guard::kinds::Kind;
use portkey_guard::object::RawObject;
use portkey_guard::policy::Policy;
use portkey_guard::policy_report::{document, results, Timestamp};
use serde_json::{json, Value};
use std::sync::Arc;

fn schema(crd: &str) -> Value {
    load_yaml(&repo_path("tests/e2e/crds.yaml"))
        .into_iter()
        .find(|d| d["metadata"]["name"] == crd)
        .unwrap_or_else(|| panic!("no CRD {crd}"))["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1alpha2")
        .expect("v1alpha2")["schema"]["openAPIV3Schema"]
        .clone()
}

/// What in `value` the schema does not allow, by path.
fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} not in {allowed:?}"));
        }
    }
    let type_ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        Some(other) => {
            errors.push(format!("{path}: schema type {other} not understood here"));
            true
        }
        None => true,
    };
    if !type_ok {
        errors.push(format!("{path}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let (Some(map), Some(properties)) = (value.as_object(), schema["properties"].as_object()) {
        for required in schema["required"].as_array().into_iter().flatten() {
            if !map.contains_key(required.as_str().unwrap()) {
                errors.push(format!("{path}: missing required {required}"));
            }
        }
        for (key, child) in map {
            match properties.get(key) {
                Some(s) => check(s, child, &format!("{path}.{key}"), errors),
                None => errors.push(format!("{path}.{key}: not in the schema (would be pruned)")),
            }
        }
    } else if let (Some(map), Some(additional)) =
        (value.as_object(), schema.get("additionalProperties"))
    {
        for (key, child) in map {
            check(additional, child, &format!("{path}.{key}"), errors);
        }
    }
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), errors);
        }
    }
}

fn live(kind: Kind, group: &str, version: &str, plural: &str, json: Value) -> Live {
    let api_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Live {
        kind,
        resource: Arc::new(ApiResource {
            group: group.into(),
            version: version.into(),
            api_version,
            kind: kind.info().name.into(),
            plural: plural.into(),
        }),
        object: Arc::new(RawObject::from_json(json).unwrap()),
    }
}

#[test]
fn written_reports_fit_the_upstream_crds() {
    // A namespace with passes, failures and warnings, and a route elsewhere
    // that claims the gateway's hostname.
    let mut objects = Vec::new();
    for mut o in deploy_portkey() {
        let (kind, group, version, plural) = match o["kind"].as_str().unwrap() {
            "Deployment" => (Kind::Deployment, "apps", "v1", "deployments"),
            "Service" => (Kind::Service, "", "v1", "services"),
            "ConfigMap" => (Kind::ConfigMap, "", "v1", "configmaps"),
            "HTTPRoute" => (
                Kind::HttpRoute,
                "gateway.networking.k8s.io",
                "v1",
                "httproutes",
            ),
            "ServiceMonitor" => (
                Kind::ServiceMonitor,
                "monitoring.coreos.com",
                "v1",
                "servicemonitors",
            ),
            "Namespace" => (Kind::Namespace, "", "v1", "namespaces"),
            _ => continue,
        };
        o["metadata"]["uid"] = json!(format!("uid-{}", o["metadata"]["name"].as_str().unwrap()));
        if kind == Kind::ServiceMonitor {
            o["spec"]["endpoints"][0]["port"] = json!("metrics");
        }
        if kind == Kind::Deployment {
            o["spec"]["template"]["spec"]["containers"][0]["image"] =
                json!("portkeyai/gateway:latest");
        }
        objects.push(live(kind, group, version, plural, o));
    }
    objects.push(live(
        Kind::HttpRoute,
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
               "metadata": {"name": "hijack", "namespace": "shop", "uid": "u-hijack"},
               "spec": {"hostnames": ["*.pc-tips.se"]}}),
    ));
    let inventory = Inventory {
        objects,
        complete: [Kind::Service, Kind::ConfigMap, Kind::Deployment].into(),
        not_served: Vec::new(),
    };
    let audit = judge(&inventory, &Policy::default_policy());
    let split = results(&audit, "portkey", Timestamp::now());
    let outcomes: std::collections::BTreeSet<&str> = split
        .namespaced
        .iter()
        .chain(&split.cluster)
        .map(|r| r.result.as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["fail", "pass", "warn"].into(),
        "the sample covers every outcome"
    );
    for (crd, doc) in [
        (
            "policyreports.wgpolicyk8s.io",
            document(Some("portkey"), &split.namespaced),
        ),
        (
            "clusterpolicyreports.wgpolicyk8s.io",
            document(None, &split.cluster),
        ),
    ] {
        let mut errors = Vec::new();
        check(&schema(crd), &doc, "", &mut errors);
        assert!(errors.is_empty(), "{crd}: {errors:#?}");
    }
    // The check itself sees what an API server would prune or refuse.
    let mut doc = document(Some("portkey"), &split.namespaced);
    doc["results"][0]["result"] = json!("failed");
    doc["results"][0]["extra"] = json!("x");
    doc["summary"]["pass"] = json!("1");
    doc["results"][0]["timestamp"]
        .as_object_mut()
        .unwrap()
        .remove("nanos");
    let mut errors = Vec::new();
    check(
        &schema("policyreports.wgpolicyk8s.io"),
        &doc,
        "",
        &mut errors,
    );
    errors.sort();
    assert_eq!(
        errors,
        [
            ".results[0].extra: not in the schema (would be pruned)",
            ".results[0].result: \"failed\" not in [String(\"pass\"), String(\"fail\"), String(\"warn\"), String(\"error\"), String(\"skip\")]",
            ".results[0].timestamp: missing required \"nanos\"",
            ".summary.pass: \"1\" is not of type \"integer\"",
        ]
    );
}
