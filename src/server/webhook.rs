//! The HTTPS routes `/mutate` and `/validate`: transport only. Each handler
//! parses the AdmissionReview, calls [`admit`], and writes the response.

use super::metrics::{Metrics, RequestLabels, RuleLabels, ViolationLabels, WebhookLabels};
use crate::admission::{admit, AdmissionReview, Decision, Reason, Stage};
use crate::object::RawObject;
use crate::policy::Policy;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use kube_core::admission::{AdmissionRequest, Operation};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The API server sends at most 3 MiB objects; anything larger is refused
/// as soon as it is seen to be larger, never buffered whole.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// By default a request must arrive and be answered within this (the API
/// server's own timeout is at most 30 s; ours in deploy/ is 5 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
const REVIEW_KIND: &str = "AdmissionReview";

/// The policy in force; reloads replace it whole.
#[derive(Debug)]
pub struct PolicyStore(RwLock<Arc<Policy>>);

impl PolicyStore {
    pub fn new(policy: Policy) -> Self {
        PolicyStore(RwLock::new(Arc::new(policy)))
    }

    pub fn get(&self) -> Arc<Policy> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, policy: Policy) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
    }
}

/// Readiness: certificate and policy loaded, not draining.
#[derive(Debug, Default)]
pub struct Health {
    pub serving: AtomicBool,
    pub draining: AtomicBool,
}

impl Health {
    pub fn ready(&self) -> bool {
        self.serving.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct AppState {
    pub policy: Arc<PolicyStore>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Longest time a request may take to arrive and be answered.
    pub request_timeout: Duration,
}

impl AppState {
    pub fn new(policy: Policy) -> Self {
        AppState {
            policy: Arc::new(PolicyStore::new(policy)),
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::default()),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The admission routes, served only over TLS.
pub fn router(state: AppState) -> Router {
    router_with(state, review)
}

/// Answers one admission review body for one webhook.
pub type ReviewFn = fn(&AppState, Webhook, &[u8]) -> Response;

/// The admission routes with every transport layer (body limit, deadlines,
/// refusal metrics) around `review`. The server passes the real decision;
/// the benchmark floor passes one that answers without deciding.
pub fn router_with(state: AppState, review: ReviewFn) -> Router {
    Router::new()
        .route(
            "/mutate",
            post(
                move |State(state): State<AppState>, body: Bytes| async move {
                    review(&state, Webhook::Mutate, &body)
                },
            ),
        )
        .route(
            "/validate",
            post(
                move |State(state): State<AppState>, body: Bytes| async move {
                    review(&state, Webhook::Validate, &body)
                },
            ),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), limits))
        .with_state(state)
}

/// Bounds the size and time of a request and counts refused requests. A
/// declared length over the limit is refused at once; an undeclared one is
/// cut off by the body limit as soon as it passes it.
async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let response = if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        (StatusCode::PAYLOAD_TOO_LARGE, "request body over 3 MiB\n").into_response()
    } else {
        match tokio::time::timeout(state.request_timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request not received in time\n",
            )
                .into_response(),
        }
    };
    let reason = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Some("too_large"),
        StatusCode::REQUEST_TIMEOUT => Some("timeout"),
        StatusCode::BAD_REQUEST => Some("malformed"),
        _ => None,
    };
    if let Some(reason) = reason {
        state.metrics.reject(reason);
    }
    response
}

/// Which of the two webhooks a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    Mutate,
    Validate,
}

impl Webhook {
    pub fn name(self) -> &'static str {
        match self {
            Webhook::Mutate => "mutate",
            Webhook::Validate => "validate",
        }
    }
}

fn bad_request(reason: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response()
}

fn parse(body: &[u8]) -> Result<AdmissionRequest<RawObject>, String> {
    let review: AdmissionReview<RawObject> = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not an AdmissionReview: {}",
            crate::object::describe_json_error(&e)
        )
    })?;
    if review.types.api_version != REVIEW_API_VERSION || review.types.kind != REVIEW_KIND {
        return Err(format!(
            "expected {REVIEW_KIND} {REVIEW_API_VERSION}, got {} {}",
            review.types.kind, review.types.api_version
        ));
    }
    review
        .try_into()
        .map_err(|_| "the AdmissionReview carries no request".to_owned())
}

/// The real review: parse, decide, answer, record.
pub fn review(state: &AppState, webhook: Webhook, body: &[u8]) -> Response {
    let started = Instant::now();
    let req = match parse(body) {
        Ok(req) => req,
        Err(reason) => return bad_request(reason),
    };
    let policy = state.policy.get();
    let stage = match webhook {
        Webhook::Mutate => Stage::Mutate,
        Webhook::Validate => Stage::Validate,
    };
    let response = match admit(&req, &policy, stage) {
        Ok(decision) => {
            let response = ReviewResponse::from_decision(&req.uid, webhook, &decision);
            record(state, webhook, &req, &decision, started);
            response
        }
        Err(error) => {
            // The API server only sends well-formed objects; one that is not
            // is let through mutation unchanged and refused by validation.
            tracing::warn!(uid = %req.uid, kind = %req.kind.kind, webhook = webhook.name(), %error, "object could not be read");
            let allowed = webhook == Webhook::Mutate;
            let decision_label = if allowed {
                "error_allowed"
            } else {
                "error_denied"
            };
            count(state, webhook, &req, decision_label);
            ReviewResponse::error(&req.uid, allowed, &error.to_string())
        }
    };
    state
        .metrics
        .latency
        .get_or_create(&WebhookLabels {
            webhook: webhook.name().to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
    let body = serde_json::to_vec(&response).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn count(state: &AppState, webhook: Webhook, req: &AdmissionRequest<RawObject>, decision: &str) {
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            webhook: webhook.name().to_owned(),
            kind: req.kind.kind.clone(),
            operation: operation_name(&req.operation).to_owned(),
            decision: decision.to_owned(),
        })
        .inc();
}

/// Metrics and the one log line per admission. Never object contents.
fn record(
    state: &AppState,
    webhook: Webhook,
    req: &AdmissionRequest<RawObject>,
    decision: &Decision,
    started: Instant,
) {
    let label = match (decision.reason, decision.allowed, decision.patch.is_empty()) {
        (Reason::OutOfScope, ..) => "out_of_scope",
        (Reason::Exempted, ..) => "exempted",
        (_, false, _) => "denied",
        (_, true, false) => "patched",
        (_, true, true) => "allowed",
    };
    count(state, webhook, req, label);
    for finding in &decision.findings {
        let rule = finding.violation.rule.as_str().to_owned();
        if finding.preexisting {
            let labels = RuleLabels { rule };
            state
                .metrics
                .preexisting_violations
                .get_or_create(&labels)
                .inc();
        } else {
            let action = finding.action.to_string();
            let labels = ViolationLabels { rule, action };
            state.metrics.violations.get_or_create(&labels).inc();
        }
    }
    state
        .metrics
        .patch_operations
        .inc_by(decision.patch.len() as u64);
    let mut rules: Vec<&str> = decision
        .findings
        .iter()
        .map(|f| f.violation.rule.as_str())
        .collect();
    rules.dedup();
    tracing::info!(
        uid = %req.uid,
        webhook = webhook.name(),
        kind = %req.kind.kind,
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = %req.name,
        operation = operation_name(&req.operation),
        user = req.user_info.username.as_deref().unwrap_or(""),
        dry_run = req.dry_run,
        decision = label,
        rules = %rules.join(","),
        patch_operations = decision.patch.len(),
        duration_us = started.elapsed().as_micros() as u64,
        "admission"
    );
}

// === impl ReviewResponse ===

/// The `admission.k8s.io/v1` response. Declared here rather than taken from
/// kube-core because kube-core serialises `patch` as a list of numbers,
/// while the documented wire format is a base64 string.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseBody,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseBody {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct Status {
    status: &'static str,
    code: u16,
    reason: &'static str,
    message: String,
}

impl ReviewResponse {
    fn new(body: ResponseBody) -> Self {
        ReviewResponse {
            api_version: REVIEW_API_VERSION,
            kind: REVIEW_KIND,
            response: body,
        }
    }

    fn from_decision(uid: &str, webhook: Webhook, decision: &Decision) -> Self {
        let mut body = ResponseBody {
            uid: uid.to_owned(),
            allowed: true,
            status: None,
            patch: None,
            patch_type: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        };
        match webhook {
            // Mutation never denies: validation rejects once, with every
            // reason, after all mutations ran.
            Webhook::Mutate => {
                if !decision.patch.is_empty() {
                    let bytes = serde_json::to_vec(&decision.patch).unwrap_or_default();
                    body.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                    body.patch_type = Some("JSONPatch");
                }
                if decision.reason != Reason::Exempted {
                    body.warnings = decision.warnings.clone();
                }
            }
            Webhook::Validate => {
                body.allowed = decision.allowed;
                body.warnings = decision.warnings.clone();
                body.audit_annotations = decision.audit_annotations.clone();
                if !decision.allowed {
                    body.status = Some(Status {
                        status: "Failure",
                        code: 403,
                        reason: "Forbidden",
                        message: decision.denial_message(),
                    });
                }
            }
        }
        ReviewResponse::new(body)
    }

    fn error(uid: &str, allowed: bool, message: &str) -> Self {
        ReviewResponse::new(ResponseBody {
            uid: uid.to_owned(),
            allowed,
            status: (!allowed).then(|| Status {
                status: "Failure",
                code: 400,
                reason: "BadRequest",
                message: format!("portkey-guard: {message}"),
            }),
            patch: None,
            patch_type: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        })
    }
}
