//! Realistic admission requests for the benchmarks, built from the files
//! the tests use, and the same rules in Rego and CEL; the shipped webhook
//! configurations' `matchConditions`, evaluated with the same CEL engine.

pub mod cel_strings;
pub mod match_conditions;
pub mod peers;

use kube_core::admission::AdmissionRequest;
use portkey_guard::admission::AdmissionReview;
use portkey_guard::object::RawObject;
use serde_json::{json, Value};
use std::path::Path;

pub fn repo(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// A review of `tests/data/reviews` as the API server sends it: the same
/// JSON, compact (the files are indented for people), keys in their order.
pub fn review_as_sent(file: &str) -> Vec<u8> {
    let text = std::fs::read(repo("tests/data/reviews").join(file)).expect("review");
    let (mut in_string, mut escaped) = (false, false);
    let compact: Vec<u8> = text
        .into_iter()
        .filter(|&b| {
            let keep = in_string || !b.is_ascii_whitespace();
            if in_string {
                in_string = escaped || b != b'"';
                escaped = !escaped && b == b'\\';
            } else {
                in_string = b == b'"';
            }
            keep
        })
        .collect();
    serde_json::from_slice::<Value>(&compact).expect("still the same JSON");
    compact
}

/// A review body as the API server sends it, for `object`.
pub fn review_for(object: &Value) -> Value {
    let (group, version) = match object["apiVersion"]
        .as_str()
        .unwrap_or("v1")
        .split_once('/')
    {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap_or("v1").to_owned(),
        ),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench", "kind": {"group": group, "version": version, "kind": object["kind"]},
        "resource": {"group": group, "version": version, "resource": "x"},
        "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
        "operation": "CREATE", "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller"},
        "object": object, "dryRun": false}})
}

pub fn request_for(object: &Value) -> AdmissionRequest<RawObject> {
    let review: AdmissionReview = serde_json::from_value(review_for(object)).expect("review");
    review.try_into().expect("request")
}

fn yaml(relative: &str) -> Value {
    let text = std::fs::read_to_string(repo(relative)).expect(relative);
    let docs = portkey_guard::manifest::parse_documents(relative, &text).expect("manifest");
    let mut object = docs.into_iter().next().expect("one object").value;
    if object["kind"] != "Namespace" && object["metadata"]["namespace"].is_null() {
        object["metadata"]["namespace"] = json!("portkey");
    }
    object
}

/// The objects each benchmark admits, by name.
pub fn objects() -> Vec<(&'static str, Value)> {
    let mut strategies = serde_json::Map::new();
    for entry in std::fs::read_dir(repo("deploy/portkey/strategies")).expect("strategies") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        strategies.insert(
            name,
            Value::String(std::fs::read_to_string(&path).expect("file")),
        );
    }
    let bare: Value = serde_json::from_slice::<Value>(
        &std::fs::read(repo("tests/data/reviews/bare-deployment.json")).expect("bare"),
    )
    .expect("json")["request"]["object"]
        .clone();
    let mut outside = bare.clone();
    outside["metadata"]["namespace"] = json!("default");
    vec![
        (
            "gateway-deployment-compliant",
            yaml("deploy/portkey/deployment.yaml"),
        ),
        ("gateway-deployment-bare", bare),
        ("pod", yaml("tests/fixtures/base/pod.yaml")),
        (
            "strategies-configmap",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "portkey-model-configs", "namespace": "portkey"}, "data": strategies}),
        ),
        ("httproute", yaml("deploy/portkey/httproute.yaml")),
        ("networkpolicy", yaml("deploy/portkey/networkpolicy.yaml")),
        ("out-of-scope", outside),
    ]
}
