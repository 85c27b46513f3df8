//! The HTTP edge through the router, without a socket: AdmissionReview
//! fixture files in, AdmissionReview out.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use common::repo_path;
use http_body_util::BodyExt;
use portkey_guard::admission::{admit, AdmissionReview, Stage};
use portkey_guard::policy::Policy;
use portkey_guard::server::probes;
use portkey_guard::server::webhook::{router, AppState, MAX_BODY_BYTES};
use serde_json::Value;
use std::sync::atomic::Ordering;
use tower::ServiceExt;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo_path(&format!("tests/data/reviews/{name}"))).unwrap()
}

async fn call(state: &AppState, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, bytes)
}

async fn review(state: &AppState, path: &str, name: &str) -> Value {
    let (status, body) = call(state, "POST", path, fixture(name)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let review: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let sent: Value = serde_json::from_slice(&fixture(name)).unwrap();
    assert_eq!(
        review["response"]["uid"], sent["request"]["uid"],
        "uid is echoed"
    );
    review["response"].clone()
}

fn state() -> AppState {
    AppState::new(Policy::default_policy())
}

#[tokio::test]
async fn compliant_object_is_allowed_without_patch() {
    let state = state();
    for path in ["/mutate", "/validate?timeout=10s"] {
        let response = review(&state, path, "compliant-deployment.json").await;
        assert_eq!(response["allowed"], true);
        assert!(
            response.get("patch").is_none() && response.get("status").is_none(),
            "{response}"
        );
    }
}

#[tokio::test]
async fn denial_has_status_403_and_every_violation() {
    let response = review(&state(), "/validate", "denied-deployment.json").await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    for rule in ["gateway.image:", "pss.privileged:"] {
        assert!(
            message.lines().any(|l| l.starts_with(rule)),
            "{rule} in {message}"
        );
    }
    assert!(response["auditAnnotations"]["denied-rules"]
        .as_str()
        .unwrap()
        .contains("gateway.image"));
}

#[tokio::test]
async fn mutating_webhook_never_denies_and_its_patch_makes_the_object_comply() {
    let state = state();
    let denied = review(&state, "/mutate", "denied-deployment.json").await;
    assert_eq!(
        denied["allowed"], true,
        "mutation leaves denial to validation"
    );

    let response = review(&state, "/mutate", "bare-deployment.json").await;
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch_bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).unwrap();
    let warnings = response["warnings"].as_array().unwrap();
    assert!(!warnings.is_empty() && warnings.len() <= 10);
    assert!(warnings
        .iter()
        .all(|w| w.as_str().unwrap().chars().count() <= 120));

    // Apply the patch as the API server would, then validate the result.
    let mut sent: Value = serde_json::from_slice(&fixture("bare-deployment.json")).unwrap();
    json_patch::patch(&mut sent["request"]["object"], &patch).unwrap();
    let review: AdmissionReview = serde_json::from_value(sent).unwrap();
    let request = review.try_into().unwrap();
    let policy = Policy::default_policy();
    let decision = admit(&request, &policy, Stage::Validate).unwrap();
    assert!(decision.allowed, "{}", decision.denial_message());
}

#[tokio::test]
async fn warn_rules_reach_the_client_as_warnings() {
    let response = review(&state(), "/validate", "httproute-server-headers.json").await;
    assert_eq!(response["allowed"], true);
    let warnings = response["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("httproute.server-headers")),
        "{warnings:?}"
    );
    assert_eq!(
        response["auditAnnotations"]["warned-rules"],
        "httproute.server-headers"
    );
}

#[tokio::test]
async fn other_namespaces_are_untouched() {
    let state = state();
    for path in ["/mutate", "/validate"] {
        let response = review(&state, path, "other-namespace-deployment.json").await;
        assert_eq!(response["allowed"], true);
        assert!(response.get("patch").is_none() && response.get("warnings").is_none());
    }
}

#[tokio::test]
async fn malformed_reviews_get_400_with_a_reason() {
    let state = state();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{not json".to_vec()),
        ("empty", Vec::new()),
        (
            "no request",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        ),
        ("old version", {
            let mut v: Value = serde_json::from_slice(&fixture("bare-deployment.json")).unwrap();
            v["apiVersion"] = "admission.k8s.io/v1beta1".into();
            serde_json::to_vec(&v).unwrap()
        }),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        ),
        ("not UTF-8, in a member no one reads", {
            let mut v: Value = serde_json::from_slice(&fixture("bare-deployment.json")).unwrap();
            v["request"]["unread"] = "\u{fffd}".into();
            let text = serde_json::to_string(&v).unwrap();
            let at = text.find("\u{fffd}").unwrap();
            let mut body = text.into_bytes();
            // U+FFFD's three bytes, broken: a lone continuation byte.
            body.splice(at..at + 3, [0x80]);
            body
        }),
    ];
    for (what, body) in cases {
        let (status, reply) = call(&state, "POST", "/validate", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert!(!reply.is_empty(), "{what}: a reason is given");
        if what.starts_with("not UTF-8") {
            let reply = String::from_utf8_lossy(&reply);
            assert!(reply.contains("not UTF-8 at byte"), "{reply}");
        }
    }
    let metrics = state.metrics.encode();
    assert!(
        metrics.contains(r#"portkey_guard_rejected_requests_total{reason="malformed"} 6"#),
        "{metrics}"
    );
}

/// An object nested deeper than a JSON tree can be read (serde_json stops
/// at 128 levels) once read as no tree at all: an update of a terminating
/// object then looked like finalizers only, and was allowed unjudged.
#[tokio::test]
async fn an_object_too_deep_for_a_tree_is_refused_not_waved_through() {
    let state = state();
    let mut v: Value = serde_json::from_slice(&fixture("denied-deployment.json")).unwrap();
    v["request"]["operation"] = "UPDATE".into();
    v["request"]["object"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
    // Compliant before: what the update brings is judged, and denied.
    let compliant: Value = serde_json::from_slice(&fixture("compliant-deployment.json")).unwrap();
    v["request"]["oldObject"] = compliant["request"]["object"].clone();
    v["request"]["oldObject"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
    let with_status = |depth: usize| {
        let mut v = v.clone();
        let status: String = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for which in ["object", "oldObject"] {
            v["request"][which]["status"] = "STATUS".into();
        }
        v.to_string().replace("\"STATUS\"", &status).into_bytes()
    };
    let (status, reply) = call(&state, "POST", "/validate", with_status(1)).await;
    assert_eq!(status, StatusCode::OK);
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["response"]["allowed"], false, "judged: {reply}");
    for depth in [127, 200, 101] {
        let (status, reply) = call(&state, "POST", "/validate", with_status(depth)).await;
        let reply = String::from_utf8_lossy(&reply);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{depth}: {reply}");
        assert!(reply.contains("not an AdmissionReview"), "{reply}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let state = state();
    let (status, _) = call(&state, "POST", "/validate", vec![b' '; MAX_BODY_BYTES + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = call(&state, "POST", "/validate", vec![b' '; MAX_BODY_BYTES]).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "at the limit it is read, and is not a review"
    );
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let state = state();
    assert_eq!(
        call(&state, "POST", "/admit", fixture("bare-deployment.json"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&state, "POST", "/metrics", Vec::new()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&state, "GET", "/mutate", Vec::new()).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn probes_report_health_readiness_and_metrics() {
    let state = state();
    let get = |path: &'static str| {
        let app = probes::router(state.clone());
        async move {
            let response = app
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(get("/healthz").await.0, StatusCode::OK);
    assert_eq!(
        get("/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready before serving"
    );
    state.health.serving.store(true, Ordering::SeqCst);
    assert_eq!(get("/readyz").await.0, StatusCode::OK);
    state.health.draining.store(true, Ordering::SeqCst);
    assert_eq!(
        get("/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready while draining"
    );

    review(&state, "/validate", "denied-deployment.json").await;
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        r#"portkey_guard_admission_requests_total{webhook="validate",kind="Deployment",operation="CREATE",decision="denied"} 1"#,
        r#"portkey_guard_violations_total{rule="gateway.image",action="deny"} 1"#,
        r#"portkey_guard_admission_duration_seconds_bucket{le="0.0001",webhook="validate"}"#,
        "portkey_guard_build_info",
        "portkey_guard_tls_handshake_failures_total 0",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn an_update_is_denied_only_for_what_it_changes() {
    // Scaling a Deployment whose image predates the pinned version: the old
    // violations are reported, not blocking.
    let state = state();
    let response = review(&state, "/validate", "scale-preexisting-deployment.json").await;
    assert_eq!(response["allowed"], true, "{response}");
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("present before this change: gateway.image: ")),
        "{warnings:?}"
    );
    assert_eq!(
        response["auditAnnotations"]["preexisting-rules"],
        "gateway.image"
    );
    let metrics = state.metrics.encode();
    assert!(
        metrics.contains("portkey_guard_preexisting_violations_total{rule=\"gateway.image\"} 1"),
        "{metrics}"
    );

    // The same update changing the image to another unpinned one is denied.
    let mut sent: Value =
        serde_json::from_slice(&fixture("scale-preexisting-deployment.json")).unwrap();
    sent["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        Value::from("portkeyai/gateway:1.10.0");
    let (_, body) = call(
        &state,
        "POST",
        "/validate",
        serde_json::to_vec(&sent).unwrap(),
    )
    .await;
    let response: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(response["response"]["allowed"], false);
    let message = response["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("gateway.image: "), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
}
