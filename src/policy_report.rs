//! PolicyReports (`wgpolicyk8s.io/v1alpha2`, the format Kyverno,
//! Kubewarden and Trivy write and Policy Reporter reads) from an audit:
//! one PolicyReport named after the tool in the policy's namespace, and one
//! ClusterPolicyReport for what lies outside it (the Namespace itself, and
//! routes of other namespaces that claim the gateway's hostname).
//!
//! A report is updated in place: read, results compared, written only when
//! they changed. A result keeps its timestamp for as long as it stays the
//! same (same rule, object, field, outcome and message).

use crate::audit::Audit;
use crate::offline::ObjectReport;
use crate::rules::Action;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The reports' name, their results' `source` and `policy`.
pub const NAME: &str = "portkey-guard";
pub const GROUP: &str = "wgpolicyk8s.io";
pub const VERSION: &str = "v1alpha2";
/// The result of an object that breaks no rule.
pub const PASS_RULE: &str = "all-rules";

/// A moment, as the report's results carry it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            nanos: 0,
        }
    }
}

/// An object a result is about (the audit names its objects so).
pub use crate::audit::ResourceRef;

/// One result of a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    pub source: String,
    pub policy: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// `pass`, `fail`, `warn` or `error`.
    pub result: String,
    #[serde(default)]
    pub scored: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub resources: Vec<ResourceRef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub timestamp: Timestamp,
}

/// A result's identity, outcome and message.
type UnchangedKey<'a> = (
    (&'a str, &'a [ResourceRef], Option<&'a String>),
    &'a String,
    &'a String,
);

impl ReportResult {
    /// What makes a result the same one from run to run.
    fn identity(&self) -> (&str, &[ResourceRef], Option<&String>) {
        (&self.rule, &self.resources, self.properties.get("path"))
    }

    /// What must be equal for `other` to be this result unchanged (its
    /// time apart).
    fn unchanged_key(&self) -> UnchangedKey<'_> {
        (self.identity(), &self.result, &self.message)
    }
}

/// Counts of results by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub pass: u64,
    #[serde(default)]
    pub fail: u64,
    #[serde(default)]
    pub warn: u64,
    #[serde(default)]
    pub error: u64,
    #[serde(default)]
    pub skip: u64,
}

impl Summary {
    pub fn of(results: &[ReportResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.result.as_str() {
                "pass" => s.pass += 1,
                "fail" => s.fail += 1,
                "warn" => s.warn += 1,
                "error" => s.error += 1,
                _ => s.skip += 1,
            }
        }
        s
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pass, {} fail, {} warn, {} error",
            self.pass, self.fail, self.warn, self.error
        )
    }
}

/// The results of an audit, split between the namespace's report and the
/// cluster's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Results {
    pub namespaced: Vec<ReportResult>,
    pub cluster: Vec<ReportResult>,
}

fn resource(o: &ObjectReport) -> ResourceRef {
    ResourceRef {
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        uid: o.stored["metadata"]["uid"].as_str().map(str::to_owned),
    }
}

fn result(
    resource: ResourceRef,
    rule: &str,
    result: &str,
    severity: Option<&str>,
    message: String,
    properties: BTreeMap<String, String>,
    now: Timestamp,
) -> ReportResult {
    ReportResult {
        source: NAME.to_owned(),
        policy: NAME.to_owned(),
        rule: rule.to_owned(),
        category: rule.split_once('.').map(|(family, _)| family.to_owned()),
        severity: severity.map(str::to_owned),
        result: result.to_owned(),
        scored: true,
        message,
        resources: vec![resource],
        properties,
        timestamp: now,
    }
}

/// The results of an audit: each finding is a `fail` (deny action) or a
/// `warn` (warn or audit action); an object that breaks no rule is one
/// `pass`; an object that could not be judged is an `error`. Results about
/// objects of `namespace` go to its report; the rest (the Namespace, and
/// routes elsewhere that break the hostname guard) to the cluster's.
pub fn results(audit: &Audit, namespace: &str, now: Timestamp) -> Results {
    let mut out = Results::default();
    for o in &audit.objects {
        let inside = o.namespace.as_deref() == Some(namespace);
        let mut found = Vec::new();
        for f in &o.violations {
            let v = &f.finding.violation;
            let (outcome, severity) = match f.finding.action {
                Action::Deny => ("fail", "high"),
                Action::Warn => ("warn", "medium"),
                Action::Audit => ("warn", "low"),
            };
            let mut properties = BTreeMap::from([
                ("path".to_owned(), v.path.clone()),
                ("expected".to_owned(), v.expected.clone()),
                ("actual".to_owned(), v.actual.clone()),
                ("action".to_owned(), f.finding.action.to_string()),
            ]);
            if o.reason == "exempted" {
                properties.insert("exempted".to_owned(), "true".to_owned());
            }
            found.push(result(
                resource(o),
                v.rule.as_str(),
                outcome,
                Some(severity),
                format!("{}: {}", v.path, v.message),
                properties,
                now,
            ));
        }
        if found.is_empty() {
            // Routes of other namespaces are listed only when they break
            // the hostname guard: there may be thousands.
            if !inside && o.kind != "Namespace" {
                continue;
            }
            found.push(result(
                resource(o),
                PASS_RULE,
                "pass",
                None,
                "every rule that applies holds".to_owned(),
                BTreeMap::new(),
                now,
            ));
        }
        if inside {
            out.namespaced.extend(found);
        } else {
            out.cluster.extend(found);
        }
    }
    for e in &audit.errors {
        let r = unjudged(&e.resource, &e.error, now);
        if e.resource.namespace.as_deref() == Some(namespace) {
            out.namespaced.push(r);
        } else {
            out.cluster.push(r);
        }
    }
    for list in [&mut out.namespaced, &mut out.cluster] {
        list.sort_by(|a, b| {
            (&a.resources, &a.rule, a.properties.get("path")).cmp(&(
                &b.resources,
                &b.rule,
                b.properties.get("path"),
            ))
        });
    }
    out
}

fn unjudged(resource: &ResourceRef, error: &str, now: Timestamp) -> ReportResult {
    result(
        resource.clone(),
        PASS_RULE,
        "error",
        None,
        format!("not judged: {error}"),
        BTreeMap::new(),
        now,
    )
}

/// Gives every result that is unchanged since `previous` its earlier
/// timestamp: a result's time is when it became what it is.
/// Looked up once per result, so a report of thousands of results is not
/// compared pair by pair; the first earlier result of a key is its time.
pub fn keep_timestamps(results: &mut [ReportResult], previous: &[ReportResult]) {
    let mut earlier: BTreeMap<UnchangedKey<'_>, Timestamp> = BTreeMap::new();
    for old in previous {
        earlier.entry(old.unchanged_key()).or_insert(old.timestamp);
    }
    for r in results.iter_mut() {
        if let Some(timestamp) = earlier.get(&r.unchanged_key()) {
            r.timestamp = *timestamp;
        }
    }
}

/// A report document: `PolicyReport` in `namespace`, or
/// `ClusterPolicyReport` when `namespace` is `None`.
pub fn document(namespace: Option<&str>, results: &[ReportResult]) -> Value {
    let kind = if namespace.is_some() {
        "PolicyReport"
    } else {
        "ClusterPolicyReport"
    };
    let mut metadata = serde_json::json!({
        "name": NAME,
        "labels": {"app.kubernetes.io/managed-by": NAME},
    });
    if let Some(ns) = namespace {
        metadata["namespace"] = Value::from(ns);
    }
    serde_json::json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": kind,
        "metadata": metadata,
        "summary": Summary::of(results),
        "results": results,
    })
}

// === writing ===

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{kind} ({GROUP}/{VERSION}) is not served by this API server: install the PolicyReport CRDs (see README: Audit)")]
    NotInstalled { kind: &'static str },
    #[error("cannot find {kind} ({GROUP}/{VERSION}) on the API server: {}", crate::cluster::chain(.source))]
    Discovery {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("cannot write {kind} {name}: {source}")]
    Write {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {name} as stored cannot be read: {message}")]
    Stored {
        kind: &'static str,
        name: String,
        /// The JSON error, described (`describe_json_error`).
        message: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What writing one report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// `PolicyReport portkey/portkey-guard`
    pub report: String,
    pub change: Change,
    pub summary: Summary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let change = match self.change {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        };
        write!(f, "{}: {change} ({})", self.report, self.summary)
    }
}

/// How the server serves a report kind.
pub async fn resource_of(client: &Client, kind: &'static str) -> Result<ApiResource, ReportError> {
    let gvk = GroupVersionKind::gvk(GROUP, VERSION, kind);
    kube::discovery::pinned_kind(client, &gvk)
        .await
        .map(|(ar, _)| ar)
        .map_err(|source| match &source {
            // The group version, or the kind in it, is not served.
            kube::Error::Api(status) if status.is_not_found() => ReportError::NotInstalled { kind },
            kube::Error::Discovery(_) => ReportError::NotInstalled { kind },
            _ => ReportError::Discovery { kind, source },
        })
}

/// Writes both reports of an audit (the cluster's only when it has results
/// or exists already).
pub async fn write(
    client: &Client,
    audit: &Audit,
    namespace: &str,
) -> Result<Vec<Written>, ReportError> {
    let results = results(audit, namespace, Timestamp::now());
    let namespaced = resource_of(client, "PolicyReport").await?;
    let mut out = vec![write_one(client, &namespaced, Some(namespace), results.namespaced).await?];
    let cluster = resource_of(client, "ClusterPolicyReport").await?;
    out.push(write_one(client, &cluster, None, results.cluster).await?);
    Ok(out)
}

/// Writes one report in place: created when absent, replaced (at the
/// version read) when its results changed, left alone otherwise. When
/// another writer got there between the read and the write (409), it is
/// read and compared again, up to three times.
async fn write_one(
    client: &Client,
    resource: &ApiResource,
    namespace: Option<&str>,
    results: Vec<ReportResult>,
) -> Result<Written, ReportError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write_attempt(client, resource, namespace, results.clone()).await {
            Err(ReportError::Write {
                source: kube::Error::Api(status),
                ..
            }) if status.code == 409 && attempt < 3 => continue,
            other => return other,
        }
    }
}

async fn write_attempt(
    client: &Client,
    resource: &ApiResource,
    namespace: Option<&str>,
    mut results: Vec<ReportResult>,
) -> Result<Written, ReportError> {
    let kind: &'static str = if namespace.is_some() {
        "PolicyReport"
    } else {
        "ClusterPolicyReport"
    };
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let shown = match namespace {
        Some(ns) => format!("{kind} {ns}/{NAME}"),
        None => format!("{kind} {NAME}"),
    };
    let fail = |source| ReportError::Write {
        kind,
        name: NAME.to_owned(),
        source,
    };
    let existing = api.get_opt(NAME).await.map_err(fail)?;
    let previous: Vec<ReportResult> = match &existing {
        Some(old) => match old.data.get("results") {
            Some(stored) => {
                serde_json::from_value(stored.clone()).map_err(|source| ReportError::Stored {
                    kind,
                    name: NAME.to_owned(),
                    message: crate::object::describe_json_error(&source),
                    source,
                })?
            }
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    keep_timestamps(&mut results, &previous);
    let summary = Summary::of(&results);
    let doc = document(namespace, &results);
    let mut object: DynamicObject =
        serde_json::from_value(doc).map_err(|source| ReportError::Stored {
            kind,
            name: NAME.to_owned(),
            message: crate::object::describe_json_error(&source),
            source,
        })?;
    let change = match existing {
        None => {
            api.create(&PostParams::default(), &object)
                .await
                .map_err(fail)?;
            Change::Created
        }
        Some(old) => {
            let stored_summary: Option<Summary> = old
                .data
                .get("summary")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            if previous == results && stored_summary == Some(summary) {
                Change::Unchanged
            } else {
                object.metadata.resource_version = old.metadata.resource_version.clone();
                api.replace(NAME, &PostParams::default(), &object)
                    .await
                    .map_err(fail)?;
                Change::Updated
            }
        }
    };
    Ok(Written {
        report: shown,
        change,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Finding;
    use crate::offline::{LocatedFinding, Status};
    use crate::rules::RuleId;
    use crate::violation::Violation;
    use serde_json::json;

    fn object(
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        findings: &[(RuleId, Action)],
    ) -> ObjectReport {
        ObjectReport {
            source: format!("{kind}/{name}"),
            file: String::new(),
            line: 0,
            column: 0,
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
            status: Status::Allowed,
            reason: "judged",
            allowed: true,
            violations: findings
                .iter()
                .map(|(rule, action)| LocatedFinding {
                    finding: Finding {
                        violation: Violation::new(
                            *rule,
                            crate::violation::FieldPath::root("spec"),
                            "m",
                            "e",
                            "a",
                        ),
                        action: *action,
                        preexisting: false,
                    },
                    file: String::new(),
                    line: 0,
                    column: 0,
                })
                .collect(),
            warnings: Vec::new(),
            mutations: Vec::new(),
            stored: json!({"metadata": {"uid": format!("uid-{name}")}}),
        }
    }

    fn audit() -> Audit {
        Audit {
            objects: vec![
                object("Namespace", None, "portkey", &[]),
                object(
                    "Service",
                    Some("portkey"),
                    "portkey-gateway",
                    &[(RuleId::ServiceType, Action::Deny)],
                ),
                object(
                    "ServiceMonitor",
                    Some("portkey"),
                    "portkey-gateway",
                    &[(RuleId::RelationServiceMonitorService, Action::Warn)],
                ),
                object("ConfigMap", Some("portkey"), "portkey-gateway-config", &[]),
                object("HTTPRoute", Some("shop"), "shop", &[]),
                object(
                    "HTTPRoute",
                    Some("shop"),
                    "hijack",
                    &[(RuleId::RouteHostnameHijack, Action::Deny)],
                ),
            ],
            ..Audit::default()
        }
    }

    #[test]
    fn results_go_to_the_namespace_or_the_cluster_with_a_correct_summary() {
        let r = results(
            &audit(),
            "portkey",
            Timestamp {
                seconds: 10,
                nanos: 0,
            },
        );
        let outcomes = |list: &[ReportResult]| -> Vec<(String, String, String)> {
            list.iter()
                .map(|r| {
                    (
                        r.resources[0].name.clone(),
                        r.rule.clone(),
                        r.result.clone(),
                    )
                })
                .collect()
        };
        assert_eq!(
            outcomes(&r.namespaced),
            [
                (
                    "portkey-gateway-config".into(),
                    PASS_RULE.into(),
                    "pass".into()
                ),
                (
                    "portkey-gateway".into(),
                    "service.type".into(),
                    "fail".into()
                ),
                (
                    "portkey-gateway".into(),
                    "relation.servicemonitor-service".into(),
                    "warn".into()
                ),
            ]
        );
        // The Namespace, and only the routes elsewhere that break a rule.
        assert_eq!(
            outcomes(&r.cluster),
            [
                (
                    "hijack".into(),
                    "route.hostname-hijack".into(),
                    "fail".into()
                ),
                ("portkey".into(), PASS_RULE.into(), "pass".into()),
            ]
        );
        assert_eq!(
            Summary::of(&r.namespaced),
            Summary {
                pass: 1,
                fail: 1,
                warn: 1,
                error: 0,
                skip: 0
            }
        );
        let doc = document(Some("portkey"), &r.namespaced);
        assert_eq!(doc["kind"], "PolicyReport");
        assert_eq!(doc["metadata"]["namespace"], "portkey");
        assert_eq!(doc["summary"]["fail"], 1);
        assert_eq!(
            doc["results"][1]["resources"][0]["uid"],
            "uid-portkey-gateway"
        );
        assert_eq!(doc["results"][1]["category"], "service");
        assert_eq!(document(None, &r.cluster)["kind"], "ClusterPolicyReport");
    }

    #[test]
    fn timestamps_change_only_with_the_result() {
        let before = results(
            &audit(),
            "portkey",
            Timestamp {
                seconds: 10,
                nanos: 0,
            },
        );
        let mut changed = audit();
        // The Service is fixed; the ConfigMap starts failing.
        changed.objects[1] = object("Service", Some("portkey"), "portkey-gateway", &[]);
        changed.objects[3] = object(
            "ConfigMap",
            Some("portkey"),
            "portkey-gateway-config",
            &[(RuleId::ConfigMapGatewayConfig, Action::Deny)],
        );
        let mut after = results(
            &changed,
            "portkey",
            Timestamp {
                seconds: 99,
                nanos: 0,
            },
        );
        keep_timestamps(&mut after.namespaced, &before.namespaced);
        let times: Vec<(String, String, i64)> = after
            .namespaced
            .iter()
            .map(|r| {
                (
                    r.resources[0].kind.clone(),
                    r.result.clone(),
                    r.timestamp.seconds,
                )
            })
            .collect();
        assert_eq!(
            times,
            [
                ("ConfigMap".into(), "fail".into(), 99),
                ("Service".into(), "pass".into(), 99),
                ("ServiceMonitor".into(), "warn".into(), 10),
            ]
        );
        // The same audit again: every time kept, nothing to write.
        let mut again = results(
            &changed,
            "portkey",
            Timestamp {
                seconds: 200,
                nanos: 0,
            },
        );
        keep_timestamps(&mut again.namespaced, &after.namespaced);
        assert_eq!(again.namespaced, after.namespaced);
    }

    #[test]
    fn findings_of_an_exempted_object_are_marked_and_still_counted() {
        let mut exempted = audit();
        exempted.objects[1].reason = "exempted";
        let now = Timestamp {
            seconds: 10,
            nanos: 0,
        };
        let marked = results(&exempted, "portkey", now);
        let plain = results(&audit(), "portkey", now);
        let service = |r: &Results| -> ReportResult {
            r.namespaced
                .iter()
                .find(|r| r.rule == "service.type")
                .cloned()
                .expect("the Service's finding")
        };
        // Marked, and otherwise the same finding: a failure, counted.
        let finding = service(&marked);
        assert_eq!(
            finding.properties.get("exempted").map(String::as_str),
            Some("true")
        );
        assert_eq!(finding.result, "fail");
        let mut unmarked = finding.clone();
        unmarked.properties.remove("exempted");
        assert_eq!(unmarked, service(&plain));
        assert_eq!(
            Summary::of(&marked.namespaced),
            Summary::of(&plain.namespaced)
        );
        // Only the exempted object's findings are marked.
        let others_marked: Vec<&ReportResult> = marked
            .namespaced
            .iter()
            .chain(&marked.cluster)
            .filter(|r| r.rule != "service.type" && r.properties.contains_key("exempted"))
            .collect();
        assert!(others_marked.is_empty(), "{others_marked:#?}");
        assert!(!service(&plain).properties.contains_key("exempted"));
        // An exempted object that breaks nothing is a plain pass.
        let mut passing = audit();
        passing.objects[3].reason = "exempted";
        let r = results(&passing, "portkey", now);
        let pass = r
            .namespaced
            .iter()
            .find(|r| r.resources[0].name == "portkey-gateway-config")
            .expect("the ConfigMap's pass");
        assert_eq!(pass.result, "pass");
        assert!(pass.properties.is_empty());
    }

    #[test]
    fn results_read_back_as_written() {
        let r = results(
            &audit(),
            "portkey",
            Timestamp {
                seconds: 10,
                nanos: 5,
            },
        );
        let doc = document(Some("portkey"), &r.namespaced);
        let read: Vec<ReportResult> = serde_json::from_value(doc["results"].clone()).unwrap();
        assert_eq!(read, r.namespaced);
    }
}
