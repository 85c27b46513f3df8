//! One module per kind of object: each has pure `mutate` and/or `validate`
//! functions over the object's JSON, reading it through typed views.

pub mod config_map;
pub mod gateway;
pub mod http_route;
pub mod namespace;
pub mod network_policy;
pub mod pod_security;
pub mod pod_spec;
pub mod secret;
pub mod service;
pub mod service_monitor;
pub mod strategy;
pub mod workload;

use crate::patch::PatchBuilder;
use crate::policy::Policy;
use crate::violation::Violation;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every kind portkey-guard decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Namespace,
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    ConfigMap,
    Service,
    Secret,
    NetworkPolicy,
    HttpRoute,
    ExternalSecret,
    ServiceMonitor,
}

/// A kind as the API server names it, for webhook rules and request matching.
#[derive(Clone, Copy, Debug)]
pub struct HandledKind {
    pub kind: Kind,
    pub group: &'static str,
    pub versions: &'static [&'static str],
    pub name: &'static str,
    pub resource: &'static str,
    /// Whether the mutating webhook has anything to add to it.
    pub mutated: bool,
}

const fn handled(
    kind: Kind,
    group: &'static str,
    versions: &'static [&'static str],
    name: &'static str,
    resource: &'static str,
    mutated: bool,
) -> HandledKind {
    HandledKind {
        kind,
        group,
        versions,
        name,
        resource,
        mutated,
    }
}

/// The kinds the binary handles; the webhook configurations in
/// `deploy/webhook/` list exactly these (a test keeps them in step).
pub const HANDLED_KINDS: &[HandledKind] = &[
    handled(
        Kind::Namespace,
        "",
        &["v1"],
        "Namespace",
        "namespaces",
        true,
    ),
    handled(Kind::Pod, "", &["v1"], "Pod", "pods", true),
    handled(
        Kind::ConfigMap,
        "",
        &["v1"],
        "ConfigMap",
        "configmaps",
        false,
    ),
    handled(Kind::Service, "", &["v1"], "Service", "services", false),
    handled(Kind::Secret, "", &["v1"], "Secret", "secrets", false),
    handled(
        Kind::Deployment,
        "apps",
        &["v1"],
        "Deployment",
        "deployments",
        true,
    ),
    handled(
        Kind::ReplicaSet,
        "apps",
        &["v1"],
        "ReplicaSet",
        "replicasets",
        true,
    ),
    handled(
        Kind::StatefulSet,
        "apps",
        &["v1"],
        "StatefulSet",
        "statefulsets",
        true,
    ),
    handled(
        Kind::DaemonSet,
        "apps",
        &["v1"],
        "DaemonSet",
        "daemonsets",
        true,
    ),
    handled(Kind::Job, "batch", &["v1"], "Job", "jobs", true),
    handled(Kind::CronJob, "batch", &["v1"], "CronJob", "cronjobs", true),
    handled(
        Kind::NetworkPolicy,
        "networking.k8s.io",
        &["v1"],
        "NetworkPolicy",
        "networkpolicies",
        false,
    ),
    handled(
        Kind::HttpRoute,
        "gateway.networking.k8s.io",
        &["v1", "v1beta1"],
        "HTTPRoute",
        "httproutes",
        false,
    ),
    handled(
        Kind::ExternalSecret,
        "external-secrets.io",
        &["v1", "v1beta1"],
        "ExternalSecret",
        "externalsecrets",
        false,
    ),
    handled(
        Kind::ServiceMonitor,
        "monitoring.coreos.com",
        &["v1"],
        "ServiceMonitor",
        "servicemonitors",
        false,
    ),
];

impl Kind {
    /// Looks a kind up by API group and kind name (any served version).
    pub fn lookup(group: &str, kind: &str) -> Option<Kind> {
        HANDLED_KINDS
            .iter()
            .find(|h| h.group == group && h.name == kind)
            .map(|h| h.kind)
    }

    pub fn info(self) -> &'static HandledKind {
        HANDLED_KINDS
            .iter()
            .find(|h| h.kind == self)
            .unwrap_or(&HANDLED_KINDS[0])
    }

    /// Pods and Jobs cannot change their pod spec after creation: they are
    /// mutated on CREATE only.
    pub fn pod_spec_immutable(self) -> bool {
        matches!(self, Kind::Pod | Kind::Job)
    }
}

/// What a decision function may know about the request besides the object.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub policy: &'a Policy,
    /// Namespace of the object (the request's namespace, or the manifest's).
    pub namespace: &'a str,
    pub username: &'a str,
    pub origin: Origin,
}

/// Who made the object: it decides which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Written by a person or a tool (kubectl, Argo CD, CI): every rule.
    Authored,
    /// Made by the built-in controller of its owner (a ReplicaSet by the
    /// deployment controller, a Pod by the replicaset controller) from an
    /// owner that was itself admitted: the pod-hardening rules only.
    Controller,
}

/// The object is not a well-formed instance of its kind.
#[derive(Debug, thiserror::Error)]
#[error("{field} is not a valid {kind}: {message}")]
pub struct MalformedObject {
    pub kind: &'static str,
    pub field: String,
    pub message: String,
}

/// Reads the part of `doc` at `pointer` as `T`; a missing part reads as
/// `T::default()`.
pub fn read_at<T: DeserializeOwned + Default>(
    doc: &Value,
    pointer: &[&str],
    kind: &'static str,
) -> Result<T, MalformedObject> {
    let mut node = doc;
    for segment in pointer {
        match node.get(segment) {
            Some(child) if !child.is_null() => node = child,
            _ => return Ok(T::default()),
        }
    }
    T::deserialize(node).map_err(|e| MalformedObject {
        kind,
        field: if pointer.is_empty() {
            "object".to_owned()
        } else {
            pointer.join(".")
        },
        message: e.to_string(),
    })
}

/// Mutates `builder`'s document; returns the names of the field groups it
/// injected (each becomes one warning).
pub fn mutate(
    kind: Kind,
    ctx: &Context,
    builder: &mut PatchBuilder,
) -> Result<Vec<String>, MalformedObject> {
    match kind {
        Kind::Namespace => Ok(namespace::mutate(ctx, builder)),
        Kind::Pod
        | Kind::Deployment
        | Kind::ReplicaSet
        | Kind::StatefulSet
        | Kind::DaemonSet
        | Kind::Job
        | Kind::CronJob => workload::mutate(kind, ctx, builder),
        _ => Ok(Vec::new()),
    }
}

/// Every violation of `doc` (the final object) under the policy.
pub fn validate(kind: Kind, ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    match kind {
        Kind::Namespace => namespace::validate(ctx, doc),
        Kind::Pod
        | Kind::Deployment
        | Kind::ReplicaSet
        | Kind::StatefulSet
        | Kind::DaemonSet
        | Kind::Job
        | Kind::CronJob => workload::validate(kind, ctx, doc),
        Kind::ConfigMap => config_map::validate(ctx, doc),
        Kind::Service => service::validate(ctx, doc),
        Kind::Secret => secret::validate_secret(ctx, doc),
        Kind::ExternalSecret => secret::validate_external_secret(ctx, doc),
        Kind::NetworkPolicy => network_policy::validate(ctx, doc),
        Kind::HttpRoute => http_route::validate(ctx, doc),
        Kind::ServiceMonitor => service_monitor::validate(ctx, doc),
    }
}

/// Whether every `key: value` of `wanted` is in `labels`.
pub fn has_labels(
    labels: Option<&std::collections::BTreeMap<String, String>>,
    wanted: &std::collections::BTreeMap<String, String>,
) -> bool {
    wanted
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}
