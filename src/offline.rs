//! The offline commands (`check`, `mutate`): each manifest becomes the
//! AdmissionRequest the API server would send for `kubectl apply` of it, and
//! goes through the same [`admit`] as the webhook; then the relations
//! between the objects given are applied across them.

use crate::admission::{admit, hidden_count, AdmitError, Finding, Reason, Stage};
use crate::kinds::{Context, Kind, Origin};
use crate::manifest::Document;
use crate::object::RawObject;
use crate::policy::Policy;
use crate::relations::{self, Object, ObjectSet};
use crate::rules::Action;
use json_patch::PatchOperation;
use k8s_openapi::api::authentication::v1::UserInfo;
use kube_core::admission::{AdmissionRequest, Operation};
use kube_core::{GroupVersionKind, GroupVersionResource, TypeMeta};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

/// The requesting user of an offline check: a manifest from Git, not a
/// person or controller of the cluster.
pub const OFFLINE_USER: &str = "portkey-guard:offline";

/// Who the offline check judges as: by default [`OFFLINE_USER`] in no
/// group; `check --as USER --as-group G` judges as that requester
/// (exemptions, the External Secrets writer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    pub username: String,
    pub groups: Vec<String>,
}

impl Default for Requester {
    fn default() -> Self {
        Requester {
            username: OFFLINE_USER.to_owned(),
            groups: Vec::new(),
        }
    }
}

/// What became of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Judged (or exempted) and admitted.
    Allowed,
    /// Judged and rejected.
    Denied,
    /// Outside the policy's scope: never judged.
    Skipped,
}

/// A finding with the place in the source where the field was written, or
/// its nearest existing parent when the field is absent.
#[derive(Clone, Debug, Serialize)]
pub struct LocatedFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// Empty, with line 0, for an object read from the API server.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub line: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub column: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The verdict on one object, in the JSON shape of `check --output json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    /// `deploy/portkey/deployment.yaml#1`, or for an object read from the
    /// API server `deployments.apps/portkey/portkey-gateway`.
    pub source: String,
    /// Empty, with line 0, for an object read from the API server.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub line: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub column: usize,
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub status: Status,
    /// `judged`, `out-of-scope`, `exempted` or `finalizing`.
    pub reason: &'static str,
    pub allowed: bool,
    pub violations: Vec<LocatedFinding>,
    /// What the webhook would send back as warnings (at most 10, each cut at
    /// 120 characters for the API server); the full text of each is in
    /// `violations`.
    pub warnings: Vec<String>,
    pub mutations: Vec<PatchOperation>,
    /// The object as the cluster would store it.
    #[serde(skip)]
    pub stored: Value,
}

impl ObjectReport {
    /// Findings with the given action.
    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &LocatedFinding> {
        self.violations
            .iter()
            .filter(move |f| f.finding.action == action)
    }

    /// What the webhook tells the client besides findings: the field
    /// groups mutation added, an exemption applied. (Findings are rule ids
    /// followed by a path; these start with `portkey-guard`.)
    pub fn notes(&self) -> impl Iterator<Item = &String> {
        self.warnings
            .iter()
            .filter(|w| w.starts_with("portkey-guard") && hidden_count(w).is_none())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {error}")]
pub struct OfflineError {
    pub source_name: String,
    pub error: AdmitError,
}

/// Kinds the API server serves cluster-scoped: they carry no namespace.
/// A kind not listed is taken as namespaced, so an unknown kind in the
/// policy's namespace is never left out of scope by a guess.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("policy", "PodSecurityPolicy"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("authentication.k8s.io", "TokenReview"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("external-secrets.io", "ClusterSecretStore"),
    ("external-secrets.io", "ClusterExternalSecret"),
    ("external-secrets.io", "ClusterPushSecret"),
    ("generators.external-secrets.io", "ClusterGenerator"),
    ("cert-manager.io", "ClusterIssuer"),
];

/// Whether the API server serves `group`/`kind` without a namespace.
pub fn cluster_scoped(group: &str, kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&(group, kind))
}

/// The AdmissionRequest the API server would send for creating `doc`, as
/// [`OFFLINE_USER`].
pub fn create_request(
    doc: &Value,
    policy: &Policy,
) -> Result<AdmissionRequest<RawObject>, serde_json::Error> {
    create_request_as(doc, policy, &Requester::default())
}

/// The AdmissionRequest the API server would send for `requester` creating
/// `doc`. A namespaced object without a namespace lands in the policy's
/// namespace, as with `kubectl apply -n <namespace>`; a cluster-scoped one
/// has none.
pub fn create_request_as(
    doc: &Value,
    policy: &Policy,
    requester: &Requester,
) -> Result<AdmissionRequest<RawObject>, serde_json::Error> {
    Ok(request_for(
        RawObject::from_json(doc.clone())?,
        policy,
        requester,
    ))
}

/// The AdmissionRequest the API server would send for `requester`
/// creating `object` (see [`create_request_as`]).
pub fn request_for(
    object: RawObject,
    policy: &Policy,
    requester: &Requester,
) -> AdmissionRequest<RawObject> {
    let (group, version) = match object.api_version().split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), object.api_version().to_owned()),
    };
    let kind = object.kind().to_owned();
    let handled = Kind::lookup(&group, &kind).map(Kind::info);
    let namespace = (!cluster_scoped(&group, &kind)).then(|| {
        object
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| policy.namespace.clone())
    });
    let resource = handled.map_or_else(|| kind.to_ascii_lowercase(), |h| h.resource.to_owned());
    AdmissionRequest {
        types: TypeMeta {
            api_version: "admission.k8s.io/v1".to_owned(),
            kind: "AdmissionReview".to_owned(),
        },
        uid: String::new(),
        kind: GroupVersionKind::gvk(&group, &version, &kind),
        resource: GroupVersionResource::gvr(&group, &version, &resource),
        sub_resource: None,
        request_kind: None,
        request_resource: None,
        request_sub_resource: None,
        name: object.metadata.name.clone().unwrap_or_default(),
        namespace,
        operation: Operation::Create,
        user_info: UserInfo {
            username: Some(requester.username.clone()),
            groups: (!requester.groups.is_empty()).then(|| requester.groups.clone()),
            ..UserInfo::default()
        },
        object: Some(object),
        old_object: None,
        dry_run: true,
        options: None,
    }
}

/// How a reason is named in reports.
pub fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::Judged => "judged",
        Reason::OutOfScope => "out-of-scope",
        Reason::Exempted => "exempted",
        Reason::Finalizing => "finalizing",
    }
}

/// Admits each document offline as [`OFFLINE_USER`]: mutate, then validate
/// the result.
pub fn admit_documents(
    docs: &[Document],
    policy: &Policy,
) -> Result<Vec<ObjectReport>, OfflineError> {
    admit_documents_as(docs, policy, &Requester::default())
}

/// Admits each document offline as `requester`, then applies the
/// relations across all of them (see [`apply_relations`]).
pub fn admit_documents_as(
    docs: &[Document],
    policy: &Policy,
    requester: &Requester,
) -> Result<Vec<ObjectReport>, OfflineError> {
    let mut reports = admit_each(docs, policy, requester)?;
    apply_relations(docs, &mut reports, policy);
    Ok(reports)
}

/// Applies the relations across the objects of the policy's namespace as
/// they would be stored: each broken relation becomes a finding on the
/// object that holds the reference (located in its document), and a
/// deny-action one denies that object. The objects given are never taken
/// to be all there is: a reference to an object that is not among them is
/// unknown, not broken. An exempted object is not judged, as on its own.
pub fn apply_relations(docs: &[Document], reports: &mut [ObjectReport], policy: &Policy) {
    relate(
        reports,
        policy,
        &HashSet::new(),
        Holders::SkipExempted,
        |i, path| {
            let at = docs[i].locate(path).pos;
            (docs[i].file.clone(), at.line, at.column)
        },
    );
}

/// Which holders of a broken relation get the finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holders {
    /// All of them.
    All,
    /// All but objects admitted under an exemption (`reason` exempted).
    SkipExempted,
}

/// Applies the relations across `reports` (objects judged, with the
/// object in `stored`): `complete` names the kinds of which they hold
/// every object of the namespace; `locate` places a finding's path in
/// the holder (file, line, column).
pub fn relate(
    reports: &mut [ObjectReport],
    policy: &Policy,
    complete: &HashSet<Kind>,
    holders: Holders,
    locate: impl Fn(usize, &str) -> (String, usize, usize),
) {
    let mut members = Vec::new();
    let mut objects = Vec::new();
    for (i, report) in reports.iter().enumerate() {
        if report.status == Status::Skipped {
            continue;
        }
        let group = report.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let Some(kind) = Kind::lookup(group, &report.kind) else {
            continue;
        };
        // What no relation can read stays out of the set (its own
        // findings, if any, came from `admit`).
        if let Ok(object) = Object::read(kind, report.namespace.as_deref(), &report.stored) {
            members.push(i);
            objects.push(std::sync::Arc::new(object));
        }
    }
    let set = ObjectSet::new(objects, complete.clone(), policy);
    let ctx = Context {
        policy,
        namespace: &policy.namespace,
        username: OFFLINE_USER,
        origin: Origin::Authored,
    };
    for broken in relations::check(&set.view(), &ctx) {
        let Some(&index) = members.get(broken.holder.0) else {
            continue;
        };
        let report = &mut reports[index];
        if holders == Holders::SkipExempted && report.reason == reason_name(Reason::Exempted) {
            continue;
        }
        let finding = Finding {
            action: policy.action(broken.violation.rule),
            violation: broken.violation,
            preexisting: false,
        };
        if finding.denies() {
            report.status = Status::Denied;
            report.allowed = false;
        }
        let (file, line, column) = locate(index, &finding.violation.path);
        report.violations.push(LocatedFinding {
            finding,
            file,
            line,
            column,
        });
    }
}

fn admit_each(
    docs: &[Document],
    policy: &Policy,
    requester: &Requester,
) -> Result<Vec<ObjectReport>, OfflineError> {
    docs.iter()
        .map(|doc| {
            let fail = |error: AdmitError| OfflineError {
                source_name: doc.source.clone(),
                error,
            };
            let req = create_request_as(&doc.value, policy, requester)
                .map_err(|e| fail(AdmitError::Unreadable(e)))?;
            let decision = admit(&req, policy, Stage::MutateThenValidate).map_err(fail)?;
            let status = match (decision.reason, decision.allowed) {
                (Reason::OutOfScope, _) => Status::Skipped,
                (_, true) => Status::Allowed,
                (_, false) => Status::Denied,
            };
            let violations = decision
                .findings
                .into_iter()
                .map(|finding| {
                    let at = doc.locate(&finding.violation.path).pos;
                    LocatedFinding {
                        finding,
                        file: doc.file.clone(),
                        line: at.line,
                        column: at.column,
                    }
                })
                .collect();
            let start = doc.positions.pos();
            Ok(ObjectReport {
                source: doc.source.clone(),
                file: doc.file.clone(),
                line: start.line,
                column: start.column,
                api_version: doc.value["apiVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                kind: req.kind.kind.clone(),
                namespace: req.namespace.clone(),
                name: req.name.clone(),
                status,
                reason: reason_name(decision.reason),
                allowed: decision.allowed,
                violations,
                warnings: decision.warnings,
                mutations: decision.patch,
                stored: decision.patched.unwrap_or_else(|| doc.value.clone()),
            })
        })
        .collect()
}
