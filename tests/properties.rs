//! Properties over generated input: the decision path and the HTTP edge
//! never panic and always answer in shape; mutation converges in one pass
//! and leaves nothing it could have fixed for validation to reject.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::repo_path;
use http_body_util::BodyExt;
use portkey_guard::admission::{admit, AdmissionReview, Stage};
use portkey_guard::policy::Policy;
use portkey_guard::rules::Action;
use portkey_guard::server::webhook::{router, AppState};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9:/._ -]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z]{1,8}",
                    Just("spec".to_owned()),
                    Just("metadata".to_owned()),
                    Just("containers".to_owned()),
                    Just("securityContext".to_owned()),
                    Just("template".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Sends `body` to `path` through the router: the answer is a well-formed
/// AdmissionReview with the request's uid, or a 4xx with a reason.
fn answer_is_well_formed(path: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sent_uid = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/request/uid").cloned());
    let (status, reply) = runtime.block_on(async {
        let request = Request::post(path).body(Body::from(body)).unwrap();
        let response = router(AppState::new(Policy::default_policy()))
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    });
    if status == StatusCode::OK {
        let review: Value =
            serde_json::from_slice(&reply).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&review["apiVersion"], "admission.k8s.io/v1");
        prop_assert!(review["response"]["allowed"].is_boolean());
        prop_assert_eq!(Some(&review["response"]["uid"]), sent_uid.as_ref());
    } else {
        prop_assert!(status.is_client_error(), "status {}", status);
        prop_assert!(!reply.is_empty());
    }
    Ok(())
}

fn fixture_review(name: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(repo_path(&format!("tests/data/reviews/{name}"))).unwrap(),
    )
    .unwrap()
}

/// Every JSON Pointer of a document.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            pointers(
                c,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_the_edge(body in prop::collection::vec(any::<u8>(), 0..512)) {
        answer_is_well_formed("/validate", body.clone())?;
        answer_is_well_formed("/mutate", body)?;
    }

    #[test]
    fn arbitrary_json_never_breaks_the_edge(value in arbitrary_json()) {
        answer_is_well_formed("/validate", serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn any_node_of_a_valid_review_may_be_replaced(
        which in any::<prop::sample::Index>(),
        replacement in arbitrary_json(),
        fixture in prop::sample::select(vec!["bare-deployment.json", "denied-deployment.json", "httproute-server-headers.json"]),
    ) {
        let mut review = fixture_review(fixture);
        let mut all = Vec::new();
        pointers(&review, String::new(), &mut all);
        let target = which.get(&all).clone();
        if target.is_empty() {
            review = replacement;
        } else if let Some(node) = review.pointer_mut(&target) {
            *node = replacement;
        }
        let body = serde_json::to_vec(&review).unwrap();
        answer_is_well_formed("/mutate", body.clone())?;
        answer_is_well_formed("/validate", body)?;
    }
}

// === generated pod specs ===

/// A field either absent or set to its compliant value.
fn maybe(value: Value) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![Just(None), Just(Some(value))]
}

fn container(index: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "portkeyai/gateway:1.12.1",
            "docker.io/portkeyai/gateway:1.12.1",
            "busybox:1.36",
        ]),
        maybe(json!({"allowPrivilegeEscalation": false})),
        maybe(json!(true)),
        maybe(json!(["ALL"])),
        maybe(json!([{"name": "tmp", "mountPath": "/tmp"}])),
        maybe(json!({"httpGet": {"path": "/v1/health", "port": 8787}, "periodSeconds": 10})),
        maybe(json!({"requests": {"cpu": "0.1"}})),
        maybe(json!([{"name": "http", "containerPort": 8787}])),
    )
        .prop_map(
            move |(image, ape, rofs, drop, mounts, readiness, resources, ports)| {
                let mut c = json!({"name": format!("c{index}"), "image": image});
                let mut sc = ape.unwrap_or_else(|| json!({}));
                if let Some(r) = rofs {
                    sc["readOnlyRootFilesystem"] = r;
                }
                if let Some(d) = drop {
                    sc["capabilities"] = json!({"drop": d});
                }
                if sc != json!({}) {
                    c["securityContext"] = sc;
                }
                for (field, value) in [
                    ("volumeMounts", mounts),
                    ("readinessProbe", readiness),
                    ("resources", resources),
                    ("ports", ports),
                ] {
                    if let Some(v) = value {
                        c[field] = v;
                    }
                }
                c
            },
        )
}

fn workload() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(0..3usize, 1..4).prop_flat_map(|ids| {
            ids.into_iter().enumerate().map(|(i, _)| container(i)).collect::<Vec<_>>()
        }),
        maybe(json!({"runAsUser": 1000})),
        maybe(json!([{"name": "tmp", "emptyDir": {}}])),
        maybe(json!({"app.kubernetes.io/name": "portkey-gateway"})),
        prop::sample::select(vec!["Pod", "Deployment", "StatefulSet", "Job", "CronJob"]),
    )
        .prop_map(|(mut containers, pod_sc, volumes, labels, kind)| {
            // A pod labelled as the gateway is the gateway: compliant only
            // when it runs the gateway image.
            let runs_gateway = containers
                .iter()
                .any(|c| c["image"].as_str().is_some_and(|i| i.starts_with("portkeyai/gateway")));
            if labels.is_some() && !runs_gateway {
                containers[0]["image"] = json!("portkeyai/gateway:1.12.1");
            }
            let mut spec = json!({"containers": containers});
            if let Some(sc) = pod_sc {
                spec["securityContext"] = sc;
            }
            if let Some(v) = volumes {
                spec["volumes"] = v;
            }
            let mut meta = json!({});
            if let Some(l) = labels {
                meta["labels"] = l;
            }
            let template = json!({"metadata": meta, "spec": spec});
            let (api_version, spec) = match kind {
                "Pod" => ("v1", Value::Null),
                "Deployment" | "StatefulSet" => ("apps/v1", json!({"selector": {}, "template": template})),
                "Job" => ("batch/v1", json!({"template": template})),
                _ => ("batch/v1", json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}})),
            };
            let mut object = json!({"apiVersion": api_version, "kind": kind,
                                    "metadata": {"name": "w", "namespace": "portkey"}});
            if kind == "Pod" {
                object["metadata"] = json!({"name": "w", "namespace": "portkey"});
                if let Some(l) = template["metadata"].get("labels") {
                    object["metadata"]["labels"] = l.clone();
                }
                object["spec"] = template["spec"].clone();
            } else {
                object["spec"] = spec;
            }
            object
        })
}

fn admit_object(object: &Value, stage: Stage) -> portkey_guard::admission::Decision {
    // busybox runs beside the gateway as a sidecar the policy names.
    let mut policy = Policy::default_policy();
    policy.gateway.sidecar_images.push("busybox".to_owned());
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": object["apiVersion"].as_str().unwrap().split_once('/').map_or("", |(g, _)| g),
                             "version": "v1", "kind": object["kind"]},
        "resource": {"group": "", "version": "v1", "resource": "x"},
        "name": "w", "namespace": "portkey", "operation": "CREATE",
        "userInfo": {"username": "u"}, "object": object, "dryRun": false}});
    let review: AdmissionReview = serde_json::from_value(review).unwrap();
    admit(&review.try_into().unwrap(), &policy, stage).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutation_converges_in_one_pass(object in workload()) {
        let first = admit_object(&object, Stage::Mutate);
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &first.patch).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let second = admit_object(&patched, Stage::Mutate);
        prop_assert!(second.patch.is_empty(), "second patch {:?}", second.patch);
    }

    #[test]
    fn mutation_leaves_nothing_it_could_have_fixed(object in workload()) {
        // Every field is absent or compliant, so after mutation nothing may
        // be denied.
        let decision = admit_object(&object, Stage::MutateThenValidate);
        let denied: Vec<String> = decision.findings.iter()
            .filter(|f| f.action == Action::Deny)
            .map(|f| f.violation.to_string())
            .collect();
        prop_assert!(denied.is_empty(), "{}\n{:#}", denied.join("\n"), object);
    }
}
