//! The HTTPS routes `/mutate` and `/validate`: transport only. Each handler
//! parses the AdmissionReview, calls [`admit`], and writes the response.

use super::body::{self, BodyBudget};
use super::metrics::{Metrics, RequestLabels, RuleLabels, ViolationLabels, WebhookLabels};
use crate::admission::{
    admit, AdmissionReview, AdmitError, Decision, Reason, Stage, MAX_WARNINGS, MAX_WARNING_CHARS,
};
use crate::cluster::cache::Cache;
use crate::kinds::{Context, Kind, MalformedObject, Origin};
use crate::object::{Doc, RawObject};
use crate::policy::Policy;
use crate::relations::{self, Admitted, Object, ObjectId};
use crate::rules::{Action, RuleId};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use kube_core::admission::{AdmissionRequest, Operation};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The API server sends at most 3 MiB objects; anything larger is refused
/// as soon as it is seen to be larger (a declared length before any body
/// byte is read), never buffered whole.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// After a 413 over HTTP/2, up to this much more of the body is read and
/// dropped before the stream is reset (enough for a body just over the
/// limit to be sent whole).
pub const DISCARD_AFTER_413_BYTES: u64 = 4 * 1024 * 1024;
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
    /// The bytes of request bodies buffered at once.
    pub budget: Arc<BodyBudget>,
    /// The cache of the policed namespace (`serve --cluster`): the
    /// relations of an admitted object are reported from it as warnings.
    pub cache: Option<Arc<Cache>>,
}

impl AppState {
    pub fn new(policy: Policy) -> Self {
        let metrics = Arc::new(Metrics::new());
        let budget = BodyBudget::new(body::DEFAULT_BUDGET_BYTES, &metrics);
        AppState {
            policy: Arc::new(PolicyStore::new(policy)),
            metrics,
            health: Arc::new(Health::default()),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            budget,
            cache: None,
        }
    }

    /// The same state with a body budget of `bytes`.
    pub fn with_body_budget(mut self, bytes: u64) -> Self {
        self.budget = BodyBudget::new(bytes, &self.metrics);
        self
    }
}

/// The admission routes, served only over TLS.
pub fn router(state: AppState) -> Router {
    router_with(state, review)
}

/// Answers one admission review body for one webhook.
pub type ReviewFn = fn(&AppState, Webhook, &[u8]) -> Response;

/// The admission routes with every transport layer (body limit and budget,
/// deadline, refusal metrics) around `review`. The server passes the real
/// decision; the benchmark floor passes one that answers without deciding.
pub fn router_with(state: AppState, review: ReviewFn) -> Router {
    Router::new()
        .route(
            "/mutate",
            post(
                move |State(state): State<AppState>, request: Request| async move {
                    answer(&state, Webhook::Mutate, review, request).await
                },
            ),
        )
        .route(
            "/validate",
            post(
                move |State(state): State<AppState>, request: Request| async move {
                    answer(&state, Webhook::Validate, review, request).await
                },
            ),
        )
        .with_state(state)
}

/// Reads the body under the size limit, the budget and the request
/// deadline, answers it with `review`, and counts refused requests. A
/// request is refused before any body byte is read when the budget cannot
/// hold its head charge, or its declared length is over the limit or the
/// budget; an undeclared length as soon as it passes either. What the
/// request reserved is held until its answer has been sent: a client that
/// does not read its answers holds them against the budget too.
async fn answer(
    state: &AppState,
    webhook: Webhook,
    review: ReviewFn,
    request: Request,
) -> Response {
    let (parts, mut request_body) = request.into_parts();
    let declared = body::declared_length(&parts.headers);
    let read = tokio::time::timeout(
        state.request_timeout,
        body::read(&mut request_body, declared, MAX_BODY_BYTES, &state.budget),
    )
    .await;
    let refusal = match read {
        Ok(Ok(buffered)) => {
            let response = review(state, webhook, buffered.bytes());
            if response.status() == StatusCode::BAD_REQUEST {
                state.metrics.reject("malformed");
            }
            return body::keep_until_sent(response, buffered.into_reservation());
        }
        Ok(Err(refusal)) => Some(refusal),
        Err(_) => None,
    };
    state
        .metrics
        .reject(refusal.map_or("timeout", body::Refusal::reason));
    let response = match refusal {
        Some(refusal) => refusal.into_response(),
        None => (
            StatusCode::REQUEST_TIMEOUT,
            "request not received in time\n",
        )
            .into_response(),
    };
    // The refused body may still be arriving: it is dropped only once the
    // answer is out. Over HTTP/2, the rest of a body refused as too large
    // is also read (and dropped) up to a bound, so that clients that stop
    // at a reset still see the 413.
    if refusal == Some(body::Refusal::TooLarge) && parts.version == Version::HTTP_2 {
        return body::answer_then_discard(
            response,
            request_body,
            DISCARD_AFTER_413_BYTES,
            state.request_timeout,
        );
    }
    body::keep_until_sent(response, request_body)
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

/// Why a body is not a review the webhook can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Described by position and kind only: the body may hold a secret.
    #[error("not an AdmissionReview: {}", crate::object::describe_json_error(.0))]
    Json(#[source] serde_json::Error),
    #[error("not an AdmissionReview: not UTF-8 at byte {}", .0.valid_up_to())]
    NotUtf8(#[source] std::str::Utf8Error),
    #[error("expected {REVIEW_KIND} {REVIEW_API_VERSION}, got {kind} {api_version}")]
    WrongType { kind: String, api_version: String },
    #[error("the AdmissionReview carries no request")]
    NoRequest(#[source] kube_core::admission::ConvertAdmissionReviewError),
}

fn bad_request(error: &ReviewError) -> Response {
    (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response()
}

fn parse(body: &[u8]) -> Result<AdmissionRequest<RawObject>, ReviewError> {
    // Checked as UTF-8 once, whole: read from bytes, serde_json checks each
    // string it reads on its own (and not the strings it skips).
    let text = std::str::from_utf8(body).map_err(ReviewError::NotUtf8)?;
    let review = AdmissionReview::read(text).map_err(ReviewError::Json)?;
    if review.api_version != REVIEW_API_VERSION || review.kind != REVIEW_KIND {
        return Err(ReviewError::WrongType {
            kind: review.kind,
            api_version: review.api_version,
        });
    }
    review.try_into().map_err(ReviewError::NoRequest)
}

/// The real review: parse, decide, answer, record.
pub fn review(state: &AppState, webhook: Webhook, body: &[u8]) -> Response {
    let started = Instant::now();
    let req = match parse(body) {
        Ok(req) => req,
        Err(error) => return bad_request(&error),
    };
    let policy = state.policy.get();
    let stage = match webhook {
        Webhook::Mutate => Stage::Mutate,
        Webhook::Validate => Stage::Validate,
    };
    let response = match admit(&req, &policy, stage) {
        Ok(mut decision) => {
            let related = match webhook {
                Webhook::Validate => relation_warnings(state, &req, &policy, &decision),
                Webhook::Mutate => Vec::new(),
            };
            add_warnings(
                &mut decision.warnings,
                related.iter().map(|(_, text)| text.clone()),
            );
            record(state, webhook, &req, &decision, &related, started);
            ReviewResponse::from_decision(&req.uid, webhook, decision)
        }
        Err(error) => {
            // The API server only sends well-formed objects; one that is not
            // is let through mutation unchanged and refused by validation.
            let error = describe_admit_error(&error);
            tracing::warn!(uid = %req.uid, kind = %req.kind.kind, webhook = webhook.name(), %error, "object could not be read");
            let allowed = webhook == Webhook::Mutate;
            let decision_label = if allowed {
                "error_allowed"
            } else {
                "error_denied"
            };
            count(state, webhook, &req, decision_label);
            ReviewResponse::error(&req.uid, allowed, &error)
        }
    };
    state
        .metrics
        .latency
        .get_or_create(&WebhookLabels {
            webhook: webhook.name(),
        })
        .observe(started.elapsed().as_secs_f64());
    let body = response.to_json();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The broken relations between the object of a validated request and
/// the cached namespace (what the write breaks, or leaves broken), as
/// warnings: the other object may legitimately arrive later in the same
/// sync, so a relation never denies here, whatever its action (an
/// audit-action one is only counted). Nothing without a snapshot; nothing
/// for objects a controller made from an owner (the owner holds the
/// references). The snapshot is taken with a lock held only to clone it.
pub fn relation_warnings(
    state: &AppState,
    req: &AdmissionRequest<RawObject>,
    policy: &crate::policy::Policy,
    decision: &Decision,
) -> Vec<(RuleId, String)> {
    let (Some(cache), Some(kind), Some(object)) =
        (state.cache.as_ref(), decision.kind, req.object.as_ref())
    else {
        return Vec::new();
    };
    if decision.reason != Reason::Judged
        || req.namespace.as_deref() != Some(policy.namespace.as_str())
        || object.controller_owner().is_some()
    {
        return Vec::new();
    }
    let Some(snapshot) = cache.snapshot() else {
        return Vec::new();
    };
    let Ok(read) = Object::read(kind, req.namespace.as_deref(), Doc::Object(object)) else {
        return Vec::new();
    };
    let admitted = Admitted::new(read, policy);
    let view = snapshot.set.with(&admitted);
    let ctx = Context {
        policy,
        namespace: &policy.namespace,
        username: req.user_info.username.as_deref().unwrap_or_default(),
        origin: Origin::Authored,
    };
    let mut out = Vec::new();
    for broken in relations::involving(&view, &ctx, ObjectId::ADMITTED, kind) {
        let rule = broken.violation.rule;
        state
            .metrics
            .relation_warnings
            .get_or_create(&RuleLabels {
                rule: rule.as_str(),
            })
            .inc();
        if policy.action(rule) == Action::Audit {
            continue;
        }
        let text = match view.get(broken.holder) {
            Some(holder) if broken.holder != ObjectId::ADMITTED => {
                format!("{}: {}", holder.object_name(), broken.violation)
            }
            _ => broken.violation.to_string(),
        };
        out.push((rule, text));
    }
    out
}

/// Adds warnings within the limits: at most [`MAX_WARNINGS`] in all, the
/// last saying how many more were left out, each cut to
/// [`MAX_WARNING_CHARS`].
fn add_warnings(warnings: &mut Vec<String>, more: impl Iterator<Item = String>) {
    crate::admission::extend_warnings(warnings, more);
    debug_assert!(warnings.len() <= MAX_WARNINGS);
    debug_assert!(warnings
        .iter()
        .all(|w| w.chars().count() <= MAX_WARNING_CHARS));
}

/// What is wrong with an object, by field and kind only, never by value:
/// serde's own messages quote the offending value, and an object's values
/// may be secrets. The object readers already leave values out; this edge
/// takes nothing on trust and lets only known, value-free forms through.
fn describe_admit_error(error: &AdmitError) -> String {
    match error {
        AdmitError::Malformed(MalformedObject {
            kind,
            field,
            message,
        }) => format!(
            "{field} is not a valid {kind}: {}",
            data_error_kind(message)
        ),
        AdmitError::MissingObject(_) => error.to_string(),
        AdmitError::Unreadable(e) => format!(
            "the object cannot be read: {}",
            crate::object::describe_json_error(e)
        ),
    }
}

/// A serde data error's kind and what was expected, without the value it
/// quotes: `invalid type: string "sk-…", expected i32` (or its value-free
/// rendering `invalid type, expected i32`) becomes
/// `wrong type, expected i32`. Messages of any other form become
/// `wrong shape`.
fn data_error_kind(message: &str) -> String {
    const KINDS: [(&str, &str); 5] = [
        ("invalid type", "wrong type"),
        ("invalid value", "invalid value"),
        ("invalid length", "wrong length"),
        ("unknown variant", "unknown value"),
        ("unknown field", "unknown field"),
    ];
    // Serde appends ", expected …" (a description of the type, from the
    // schema) last; the quoted value comes before it.
    let expected = message.rsplit_once(", expected ").map(|(_, e)| e);
    if let Some((_, kind)) = KINDS.iter().find(|(prefix, _)| message.starts_with(prefix)) {
        return match expected {
            Some(expected) => format!("{kind}, expected {expected}"),
            None => (*kind).to_owned(),
        };
    }
    // `missing field `name``: the name is the schema's.
    for prefix in ["missing field `", "duplicate field `"] {
        if let Some(name) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('`'))
            .filter(|name| {
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            })
        {
            return format!("{prefix}{name}`");
        }
    }
    "wrong shape".to_owned()
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn count(
    state: &AppState,
    webhook: Webhook,
    req: &AdmissionRequest<RawObject>,
    decision: &'static str,
) {
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            webhook: webhook.name(),
            kind: Kind::lookup(&req.kind.group, &req.kind.kind).map_or_else(
                || Cow::Owned(req.kind.kind.clone()),
                |kind| Cow::Borrowed(kind.info().name),
            ),
            operation: operation_name(&req.operation),
            decision,
        })
        .inc();
}

/// Metrics and the one log line per admission. Never object contents.
fn record(
    state: &AppState,
    webhook: Webhook,
    req: &AdmissionRequest<RawObject>,
    decision: &Decision,
    related: &[(RuleId, String)],
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
        let rule = finding.violation.rule.as_str();
        if finding.preexisting {
            let labels = RuleLabels { rule };
            state
                .metrics
                .preexisting_violations
                .get_or_create(&labels)
                .inc();
        } else {
            let action = finding.action.as_str();
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
    let mut relations: Vec<&str> = related.iter().map(|(rule, _)| rule.as_str()).collect();
    relations.dedup();
    // Strings are recorded as `&str`, not with `%`, which goes through the
    // formatting machinery.
    tracing::info!(
        uid = req.uid.as_str(),
        webhook = webhook.name(),
        kind = req.kind.kind.as_str(),
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = req.name.as_str(),
        operation = operation_name(&req.operation),
        user = req.user_info.username.as_deref().unwrap_or(""),
        dry_run = req.dry_run,
        decision = label,
        rules = rules.join(",").as_str(),
        relations = relations.join(",").as_str(),
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
    /// The JSON Patch in base64, quoted: written as it is (base64 needs no
    /// escaping, and the patch is the largest part of a response).
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<Box<RawValue>>,
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

/// `value` as JSON, in base64, as a JSON string.
/// `size` is what the JSON is expected to take: a buffer grown step by
/// step is copied at each step.
fn base64_json_string(value: &impl Serialize, size: usize) -> Option<Box<RawValue>> {
    let mut bytes = Vec::with_capacity(size);
    serde_json::to_writer(&mut bytes, value).ok()?;
    let mut quoted = String::with_capacity(bytes.len() * 4 / 3 + 8);
    quoted.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut quoted);
    quoted.push('"');
    RawValue::from_string(quoted).ok()
}

impl ReviewResponse {
    /// The response as JSON (empty if it cannot be written), in a buffer
    /// sized for what it holds rather than grown step by step.
    fn to_json(&self) -> Vec<u8> {
        let body = &self.response;
        let texts = body.patch.as_ref().map_or(0, |patch| patch.get().len())
            + body
                .status
                .as_ref()
                .map_or(0, |status| status.message.len())
            + body.warnings.iter().map(String::len).sum::<usize>()
            + (body.audit_annotations.iter())
                .map(|(key, value)| key.len() + value.len())
                .sum::<usize>();
        let mut json = Vec::with_capacity(256 + texts + texts / 8);
        match serde_json::to_writer(&mut json, self) {
            Ok(()) => json,
            Err(_) => Vec::new(),
        }
    }

    fn new(body: ResponseBody) -> Self {
        ReviewResponse {
            api_version: REVIEW_API_VERSION,
            kind: REVIEW_KIND,
            response: body,
        }
    }

    fn from_decision(uid: &str, webhook: Webhook, decision: Decision) -> Self {
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
                    // A patch operation takes about 150 bytes as JSON.
                    let size = 192 * decision.patch.len();
                    body.patch = base64_json_string(&decision.patch, size);
                    body.patch_type = body.patch.as_ref().map(|_| "JSONPatch");
                }
                if decision.reason != Reason::Exempted {
                    body.warnings = decision.warnings;
                }
            }
            Webhook::Validate => {
                if !decision.allowed {
                    body.status = Some(Status {
                        status: "Failure",
                        code: 403,
                        reason: "Forbidden",
                        message: decision.denial_message(),
                    });
                }
                body.allowed = decision.allowed;
                body.warnings = decision.warnings;
                body.audit_annotations = decision.audit_annotations;
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    const SECRET: &str = "sk-proj-NEVER-ECHOED-0123456789";

    fn serde_message(json: serde_json::Value) -> String {
        serde_json::from_value::<Deployment>(json)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn data_errors_are_described_without_the_value() {
        let cases = [
            (
                serde_json::json!({"spec": {"replicas": SECRET}}),
                "wrong type, expected i32",
            ),
            (
                serde_json::json!({"spec": {"replicas": 1, "selector": {}, "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": SECRET}]}]}}}}),
                "wrong type, expected i32",
            ),
            (
                serde_json::json!({"spec": {"selector": {}, "template": {"metadata": {"labels": [SECRET]}}}}),
                "wrong type, expected a map",
            ),
        ];
        for (object, expected) in cases {
            let message = serde_message(object);
            let described = data_error_kind(&message);
            assert_eq!(described, expected, "from {message}");
            assert!(!described.contains(SECRET));
        }
        let sneaky = format!("invalid type: string \"a, expected {SECRET}\", expected i32");
        assert_eq!(data_error_kind(&sneaky), "wrong type, expected i32");
        // The readers' own value-free renderings pass through the same way.
        assert_eq!(
            data_error_kind("invalid type, expected i32"),
            "wrong type, expected i32"
        );
        let variant = format!("unknown variant `{SECRET}`, expected `Always` or `Never`");
        assert_eq!(
            data_error_kind(&variant),
            "unknown value, expected `Always` or `Never`"
        );
        for other in [
            format!("missing field `{SECRET} x`"),
            format!("{SECRET} is not a timestamp"),
            String::new(),
        ] {
            assert_eq!(data_error_kind(&other), "wrong shape");
        }
    }

    #[test]
    fn admission_errors_name_the_field_not_the_value() {
        let malformed = AdmitError::Malformed(MalformedObject {
            kind: "Deployment",
            field: "spec".to_owned(),
            message: serde_message(serde_json::json!({"spec": {"replicas": SECRET}})),
        });
        assert!(malformed.to_string().contains(SECRET), "serde quotes it");
        assert_eq!(
            describe_admit_error(&malformed),
            "spec is not a valid Deployment: wrong type, expected i32"
        );
        let unreadable = AdmitError::Unreadable(
            serde_json::from_str::<serde_json::Value>(&format!("{{\"k\": {SECRET}}}")).unwrap_err(),
        );
        let described = describe_admit_error(&unreadable);
        assert!(
            described.starts_with("the object cannot be read: syntax error"),
            "{described}"
        );
        assert!(!described.contains(SECRET));
    }
}
