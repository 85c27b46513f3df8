//! Prometheus metrics, owned by the server state (no globals), served as
//! text on the probe port.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Fine enough for sub-millisecond admissions, wide enough for a slow node.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub webhook: String,
    pub kind: String,
    pub operation: String,
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub webhook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub rule: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<WebhookLabels, Histogram>,
    pub violations: Family<ViolationLabels, Counter>,
    pub preexisting_violations: Family<RuleLabels, Counter>,
    pub patch_operations: Counter,
    pub rejected_requests: Family<ReasonLabels, Counter>,
    pub tls_handshake_failures: Counter,
    pub certificate_expiry: Gauge,
    pub certificate_reloads: Family<ResultLabels, Counter>,
    pub policy_reloads: Family<ResultLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portkey_guard");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<WebhookLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let violations = Family::<ViolationLabels, Counter>::default();
        let preexisting_violations = Family::<RuleLabels, Counter>::default();
        let patch_operations = Counter::default();
        let rejected_requests = Family::<ReasonLabels, Counter>::default();
        let tls_handshake_failures = Counter::default();
        let certificate_expiry = Gauge::default();
        let certificate_reloads = Family::<ResultLabels, Counter>::default();
        let policy_reloads = Family::<ResultLabels, Counter>::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);

        registry.register(
            "admission_requests",
            "Admission reviews answered, by webhook, kind, operation and decision",
            requests.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to decide one admission review, body parsing included",
            latency.clone(),
        );
        registry.register(
            "violations",
            "Rule violations found, by rule and action",
            violations.clone(),
        );
        registry.register(
            "preexisting_violations",
            "Violations an UPDATE left as they were (reported, not blocking), by rule",
            preexisting_violations.clone(),
        );
        registry.register(
            "patch_operations",
            "JSON Patch operations returned by the mutating webhook",
            patch_operations.clone(),
        );
        registry.register(
            "rejected_requests",
            "HTTP requests refused before a decision (malformed, too large, too slow)",
            rejected_requests.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            tls_handshake_failures.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "Expiry (Unix time) of the serving certificate in use",
            certificate_expiry.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads, by result",
            certificate_reloads.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy file reloads, by result",
            policy_reloads.clone(),
        );
        registry.register("build_info", "Build of the running binary", build_info);
        Metrics {
            registry,
            requests,
            latency,
            violations,
            preexisting_violations,
            patch_operations,
            rejected_requests,
            tls_handshake_failures,
            certificate_expiry,
            certificate_reloads,
            policy_reloads,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn reject(&self, reason: &str) {
        self.rejected_requests
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn reload(family: &Family<ResultLabels, Counter>, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        family
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }
}
