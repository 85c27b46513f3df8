//! Prometheus metrics, owned by the server state (no globals), served on
//! the probe port in the Prometheus text format, or in OpenMetrics when the
//! scraper asks for it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::borrow::Cow;

use crate::policy::Policy;

/// Fine enough for sub-millisecond admissions, wide enough for a slow node.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub webhook: &'static str,
    /// The kind's name; only kinds the webhook is not registered for are
    /// not known in advance.
    pub kind: Cow<'static, str>,
    pub operation: &'static str,
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub webhook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub rule: &'static str,
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    /// The ALPN protocol agreed: `h2`, `http/1.1`, or `none`.
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    sha256: String,
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
    /// Connections that completed the TLS handshake: with the request
    /// count, how well clients reuse connections.
    pub tls_connections: Family<ProtocolLabels, Counter>,
    pub certificate_expiry: Gauge,
    pub certificate_reloads: Family<ResultLabels, Counter>,
    pub policy_reloads: Family<ResultLabels, Counter>,
    /// 1 while ready to serve admissions, 0 while starting or draining.
    pub ready: Gauge,
    certificate_last_reload_successful: Gauge,
    policy_last_reload_successful: Gauge,
    policy_info: Family<PolicyLabels, Gauge>,
    policy_generation: Gauge,
    pub budget_held_bytes: Gauge,
    pub body_budget_bytes: Gauge,
    pub idle_connections_closed: Counter,
    /// Relations between the admitted object and the cache reported as
    /// warnings (or only counted, for audit-action rules), by rule.
    pub relation_warnings: Family<RuleLabels, Counter>,
    /// 1 while the cache has a snapshot of the namespace (every kind
    /// listed), 0 before, once it is dropped, and when it is off.
    pub cache_synced: Gauge,
    pub cache_objects: Gauge,
    pub cache_watch_errors: Family<KindLabels, Counter>,
    /// Snapshots dropped (or listings stopped) by the cache, by reason.
    pub cache_dropped: Family<ReasonLabels, Counter>,
    /// Background audits by result (success, failure, skipped).
    pub audit_runs: Family<ResultLabels, Counter>,
    pub audit_last_run: Gauge,
    pub audit_duration_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub audit_findings: Family<ViolationLabels, Gauge>,
    pub audit_objects: Gauge,
    /// 1 while this replica holds the audit lease.
    pub audit_leader: Gauge,
    /// The background audit's interval; 0 while it is off.
    pub audit_interval_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
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
        let tls_connections = Family::<ProtocolLabels, Counter>::default();
        let certificate_expiry = Gauge::default();
        let certificate_reloads = Family::<ResultLabels, Counter>::default();
        let policy_reloads = Family::<ResultLabels, Counter>::default();
        // Both results exist from the start, so `increase()` sees the first
        // failure as a change from zero.
        for family in [&certificate_reloads, &policy_reloads] {
            for result in ["success", "failure"] {
                drop(family.get_or_create(&ResultLabels {
                    result: result.to_owned(),
                }));
            }
        }
        let ready = Gauge::default();
        // The files read at startup were good, or the server would not run.
        let certificate_last_reload_successful = Gauge::default();
        certificate_last_reload_successful.set(1);
        let policy_last_reload_successful = Gauge::default();
        policy_last_reload_successful.set(1);
        let policy_info = Family::<PolicyLabels, Gauge>::default();
        let policy_generation = Gauge::default();
        let budget_held_bytes = Gauge::default();
        let body_budget_bytes = Gauge::default();
        let idle_connections_closed = Counter::default();
        let relation_warnings = Family::<RuleLabels, Counter>::default();
        let cache_synced = Gauge::default();
        let cache_objects = Gauge::default();
        let cache_watch_errors = Family::<KindLabels, Counter>::default();
        let cache_dropped = Family::<ReasonLabels, Counter>::default();
        for reason in ["unreachable", "too_many_objects", "restart"] {
            drop(cache_dropped.get_or_create(&ReasonLabels { reason }));
        }
        let audit_runs = Family::<ResultLabels, Counter>::default();
        for result in ["success", "failure", "skipped"] {
            drop(audit_runs.get_or_create(&ResultLabels {
                result: result.to_owned(),
            }));
        }
        let audit_last_run = Gauge::default();
        let audit_duration_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let audit_findings = Family::<ViolationLabels, Gauge>::default();
        let audit_objects = Gauge::default();
        let audit_leader = Gauge::default();
        let audit_interval_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
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
            "HTTP requests refused before a decision (malformed, too large, too slow, over the body budget, too many HTTP/2 header fields)",
            rejected_requests.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            tls_handshake_failures.clone(),
        );
        registry.register(
            "tls_connections",
            "Connections that completed the TLS handshake, by the HTTP version agreed",
            tls_connections.clone(),
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
        registry.register(
            "budget_held_bytes",
            "Bytes held now against the request budget: a fixed charge for each request in flight and the bytes of its body",
            budget_held_bytes.clone(),
        );
        registry.register(
            "body_budget_bytes",
            "The request budget (--body-budget-mib): most bytes of request heads and bodies held at once",
            body_budget_bytes.clone(),
        );
        registry.register(
            "idle_connections_closed",
            "Connections closed after the idle timeout without an open request",
            idle_connections_closed.clone(),
        );
        registry.register("build_info", "Build of the running binary", build_info);
        registry.register(
            "relation_warnings",
            "Broken relations between an admitted object and the cached namespace, by rule (warnings, never denials)",
            relation_warnings.clone(),
        );
        registry.register(
            "cache_synced",
            "1 while the cache holds a snapshot of the namespace (every kind listed); 0 before, once it is dropped, or when off",
            cache_synced.clone(),
        );
        registry.register(
            "cache_objects",
            "Objects of the namespace in the cache's current snapshot",
            cache_objects.clone(),
        );
        registry.register(
            "cache_watch_errors",
            "Failed watches or lists of the cache, by kind (retried with backoff)",
            cache_watch_errors.clone(),
        );
        registry.register(
            "cache_dropped",
            "Times the cache dropped its snapshot or stopped listing, by reason (unreachable: the API server away longer than --cache-max-stale-seconds; too_many_objects: over --cache-max-objects; restart)",
            cache_dropped.clone(),
        );
        registry.register(
            "audit_runs",
            "Background audits, by result (success, failure, skipped: no snapshot)",
            audit_runs.clone(),
        );
        registry.register(
            "audit_last_run_timestamp_seconds",
            "When the last successful background audit finished (Unix time)",
            audit_last_run.clone(),
        );
        registry.register(
            "audit_duration_seconds",
            "How long the last background audit took, reports written included",
            audit_duration_seconds.clone(),
        );
        registry.register(
            "audit_findings",
            "Findings of the last background audit, by rule and action",
            audit_findings.clone(),
        );
        registry.register(
            "audit_objects",
            "Objects the last background audit judged",
            audit_objects.clone(),
        );
        registry.register(
            "audit_leader",
            "1 while this replica holds the audit lease (runs the audit, writes the reports)",
            audit_leader.clone(),
        );
        registry.register(
            "audit_interval_seconds",
            "The background audit's interval (--audit-interval); 0 when this replica runs no audit",
            audit_interval_seconds.clone(),
        );
        registry.register(
            "ready",
            "1 while the server is ready to answer admissions, 0 while starting or draining",
            ready.clone(),
        );
        registry.register(
            "certificate_last_reload_successful",
            "1 if the last serving certificate read was taken, 0 if it was refused",
            certificate_last_reload_successful.clone(),
        );
        registry.register(
            "policy_last_reload_successful",
            "1 if the last policy file read was taken, 0 if it was refused",
            policy_last_reload_successful.clone(),
        );
        registry.register(
            "policy_info",
            "The policy in force: sha256 of its effective YAML (the output of `portkey-guard policy`)",
            policy_info.clone(),
        );
        registry.register(
            "policy_generation",
            "Policies taken since the server started: 1 for the startup policy, +1 per reload",
            policy_generation.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            violations,
            preexisting_violations,
            patch_operations,
            rejected_requests,
            tls_handshake_failures,
            tls_connections,
            certificate_expiry,
            certificate_reloads,
            policy_reloads,
            ready,
            certificate_last_reload_successful,
            policy_last_reload_successful,
            policy_info,
            policy_generation,
            budget_held_bytes,
            body_budget_bytes,
            idle_connections_closed,
            relation_warnings,
            cache_synced,
            cache_objects,
            cache_watch_errors,
            cache_dropped,
            audit_runs,
            audit_last_run,
            audit_duration_seconds,
            audit_findings,
            audit_objects,
            audit_leader,
            audit_interval_seconds,
        }
    }

    /// Records a finished background audit: its findings replace the
    /// last run's.
    pub fn audit_finished(&self, audit: &crate::audit::Audit, took: std::time::Duration) {
        Self::reload(&self.audit_runs, true);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.audit_last_run
            .set(i64::try_from(now.as_secs()).unwrap_or(i64::MAX));
        self.audit_duration_seconds.set(took.as_secs_f64());
        self.audit_objects
            .set(i64::try_from(audit.objects.len()).unwrap_or(i64::MAX));
        self.audit_findings.clear();
        for o in &audit.objects {
            for f in &o.violations {
                self.audit_findings
                    .get_or_create(&ViolationLabels {
                        rule: f.finding.violation.rule.as_str(),
                        action: f.finding.action.as_str(),
                    })
                    .inc();
            }
        }
    }

    /// Records whether this replica holds the audit lease. A replica that
    /// does not lead runs no audit, so it exports no findings: the last
    /// ones it found are dropped and the objects gauge zeroed, or a former
    /// leader would report stale findings for as long as it runs.
    pub fn audit_leading(&self, leading: bool) {
        self.audit_leader.set(i64::from(leading));
        if !leading {
            self.audit_findings.clear();
            self.audit_objects.set(0);
        }
    }

    /// Records a background audit that failed or was skipped.
    pub fn audit_not_done(&self, result: &str) {
        self.audit_runs
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The exposition in `format`.
    pub fn encode_as(&self, format: Format) -> String {
        match format {
            Format::OpenMetrics => self.encode(),
            Format::Prometheus => openmetrics_to_prometheus(&self.encode()),
        }
    }

    /// Records a policy taken into service (at startup or on reload).
    pub fn policy_loaded(&self, policy: &Policy) {
        let digest = ring::digest::digest(&ring::digest::SHA256, policy.to_yaml().as_bytes());
        let sha256: String = digest
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        // One series: the policy in force now.
        self.policy_info.clear();
        self.policy_info
            .get_or_create(&PolicyLabels { sha256 })
            .set(1);
        self.policy_generation.inc();
    }

    /// Records the result of reading a changed policy file.
    pub fn policy_reloaded(&self, policy: Option<&Policy>) {
        Self::reload(&self.policy_reloads, policy.is_some());
        self.policy_last_reload_successful
            .set(i64::from(policy.is_some()));
        if let Some(policy) = policy {
            self.policy_loaded(policy);
        }
    }

    /// Records the result of reading a changed serving certificate.
    pub fn certificate_reloaded(&self, ok: bool) {
        Self::reload(&self.certificate_reloads, ok);
        self.certificate_last_reload_successful.set(i64::from(ok));
    }

    pub fn reject(&self, reason: &'static str) {
        self.rejected_requests
            .get_or_create(&ReasonLabels { reason })
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

// === impl Format ===

/// The text expositions `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4: what every scraper understands.
    Prometheus,
    /// OpenMetrics 1.0.0, only when the scraper's `Accept` asks for it.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format for an `Accept` header: the acceptable media range with
    /// the highest quality (the first one on a tie); the Prometheus text
    /// format when the header is absent, unreadable or names neither.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let mut best: Option<(f32, Format)> = None;
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let format = match media.as_str() {
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Format::Prometheus,
                _ => continue,
            };
            let quality = parts
                .filter_map(|p| p.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q));
            let Some(quality) = quality.filter(|q| *q > 0.0) else {
                continue;
            };
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, format));
            }
        }
        best.map_or(Format::Prometheus, |(_, format)| format)
    }
}

/// Rewrites an OpenMetrics exposition into the Prometheus text format
/// 0.0.4: a counter family is named with its `_total` suffix, `info`
/// families become gauges named `..._info`, types 0.0.4 lacks become
/// `untyped`, and the `# UNIT` and `# EOF` lines go.
fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let mut renamed: std::collections::HashMap<&str, (String, &str)> = Default::default();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                let (new_name, new_kind) = match kind {
                    "counter" => (format!("{name}_total"), "counter"),
                    "info" => (format!("{name}_info"), "gauge"),
                    "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                    _ => (name.to_owned(), "untyped"),
                };
                renamed.insert(name, (new_name, new_kind));
            }
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            match renamed.get(name) {
                Some((new_name, _)) => format!("# HELP {new_name} {help}"),
                None => line.to_owned(),
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_once(' ').map_or(rest, |(name, _)| name);
            match renamed.get(name) {
                Some((new_name, kind)) => format!("# TYPE {new_name} {kind}"),
                None => line.to_owned(),
            }
        } else {
            line.to_owned()
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_unless_openmetrics_is_asked_for() {
        let prometheus_scraper = "application/openmetrics-text;version=1.0.0,\
            application/openmetrics-text;version=0.0.1;q=0.75,\
            text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let cases = [
            (None, Format::Prometheus),
            (Some(""), Format::Prometheus),
            (Some("*/*"), Format::Prometheus),
            (Some("text/plain"), Format::Prometheus),
            (Some("application/json"), Format::Prometheus),
            (Some("garbage;;;q=x,,"), Format::Prometheus),
            (Some(prometheus_scraper), Format::OpenMetrics),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (
                Some("Application/OpenMetrics-Text; version=1.0.0"),
                Format::OpenMetrics,
            ),
            (
                Some("text/plain;q=0.9, application/openmetrics-text"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.2, text/plain"),
                Format::Prometheus,
            ),
            (Some("application/openmetrics-text;q=0"), Format::Prometheus),
            (
                Some("application/openmetrics-text, text/plain"),
                Format::OpenMetrics,
            ),
            (
                Some("text/plain, application/openmetrics-text"),
                Format::Prometheus,
            ),
        ];
        for (accept, expected) in cases {
            assert_eq!(Format::negotiate(accept), expected, "{accept:?}");
        }
    }

    fn sample_metrics() -> Metrics {
        let metrics = Metrics::new();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                webhook: "validate",
                kind: "Deployment".into(),
                operation: "CREATE",
                decision: "denied",
            })
            .inc();
        metrics
            .latency
            .get_or_create(&WebhookLabels {
                webhook: "validate",
            })
            .observe(0.000_2);
        metrics.policy_loaded(&Policy::default_policy());
        metrics
    }

    #[test]
    fn the_prometheus_text_names_counter_families_with_their_total() {
        let text = sample_metrics().encode_as(Format::Prometheus);
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("# UNIT"), "{text}");
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut words = line.split(' ').skip(2);
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            // Every sample of a family starts with the family's name.
            let help = format!("# HELP {name} ");
            assert!(text.contains(&help), "no {help}");
        }
        assert!(text.contains("# TYPE portkey_guard_admission_requests_total counter\n"));
        assert!(text.contains(
            "portkey_guard_admission_requests_total{webhook=\"validate\",kind=\"Deployment\",operation=\"CREATE\",decision=\"denied\"} 1\n"
        ));
        assert!(text.contains("# TYPE portkey_guard_admission_duration_seconds histogram\n"));
        assert!(text.contains(
            "portkey_guard_admission_duration_seconds_bucket{le=\"+Inf\",webhook=\"validate\"} 1\n"
        ));
    }

    #[test]
    fn openmetrics_is_left_as_the_library_writes_it() {
        let metrics = sample_metrics();
        let text = metrics.encode_as(Format::OpenMetrics);
        assert_eq!(text, metrics.encode());
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("# TYPE portkey_guard_admission_requests counter\n"));
    }

    fn audit_lines(metrics: &Metrics) -> Vec<String> {
        metrics
            .encode_as(Format::Prometheus)
            .lines()
            .filter(|l| {
                l.starts_with("portkey_guard_audit_findings{")
                    || l.starts_with("portkey_guard_audit_objects ")
                    || l.starts_with("portkey_guard_audit_leader ")
            })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_replica_that_loses_the_lease_exports_no_findings() {
        let metrics = Metrics::new();
        metrics.audit_leading(true);
        // What audit_finished leaves after a run with two deny findings.
        metrics.audit_objects.set(7);
        metrics
            .audit_findings
            .get_or_create(&ViolationLabels {
                rule: "relation.route-backend",
                action: "deny",
            })
            .set(2);
        assert_eq!(
            audit_lines(&metrics),
            [
                "portkey_guard_audit_findings{rule=\"relation.route-backend\",action=\"deny\"} 2",
                "portkey_guard_audit_objects 7",
                "portkey_guard_audit_leader 1",
            ]
        );
        metrics.audit_leading(false);
        assert_eq!(
            audit_lines(&metrics),
            [
                "portkey_guard_audit_objects 0",
                "portkey_guard_audit_leader 0"
            ]
        );
        // Still leading: nothing is dropped.
        metrics.audit_leading(true);
        metrics.audit_objects.set(3);
        metrics.audit_leading(true);
        assert_eq!(
            audit_lines(&metrics),
            [
                "portkey_guard_audit_objects 3",
                "portkey_guard_audit_leader 1"
            ]
        );
    }

    #[test]
    fn the_policy_in_force_is_one_series_with_its_hash() {
        let metrics = Metrics::new();
        let default = Policy::default_policy();
        metrics.policy_loaded(&default);
        let changed = Policy::from_yaml("gateway: {version: \"1.13.0\"}\n").unwrap();
        metrics.policy_reloaded(Some(&changed));
        metrics.policy_reloaded(None);
        let text = metrics.encode_as(Format::Prometheus);
        let info: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("portkey_guard_policy_info{"))
            .collect();
        let digest = ring::digest::digest(&ring::digest::SHA256, changed.to_yaml().as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            info,
            [format!("portkey_guard_policy_info{{sha256=\"{hex}\"}} 1")]
        );
        assert!(
            text.contains("portkey_guard_policy_generation 2\n"),
            "{text}"
        );
        assert!(
            text.contains("portkey_guard_policy_last_reload_successful 0\n"),
            "{text}"
        );
        assert!(
            text.contains("portkey_guard_policy_reloads_total{result=\"failure\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("portkey_guard_policy_reloads_total{result=\"success\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("portkey_guard_certificate_reloads_total{result=\"failure\"} 0\n"),
            "{text}"
        );
    }
}
