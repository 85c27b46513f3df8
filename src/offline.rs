//! The offline commands (`check`, `mutate`): each manifest becomes the
//! AdmissionRequest the API server would send for `kubectl apply` of it, and
//! goes through the same [`admit`] as the webhook.

use crate::admission::{admit, AdmitError, Finding, Stage};
use crate::kinds::Kind;
use crate::manifest::Document;
use crate::object::RawObject;
use crate::policy::Policy;
use json_patch::PatchOperation;
use k8s_openapi::api::authentication::v1::UserInfo;
use kube_core::admission::{AdmissionRequest, Operation};
use kube_core::{GroupVersionKind, GroupVersionResource, TypeMeta};
use serde::Serialize;
use serde_json::Value;

/// The requesting user of an offline check: a manifest from Git, not a
/// person or controller of the cluster.
pub const OFFLINE_USER: &str = "portkey-guard:offline";

/// The verdict on one object, in the JSON shape of `check --output json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    pub source: String,
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub allowed: bool,
    pub violations: Vec<Finding>,
    pub warnings: Vec<String>,
    pub mutations: Vec<PatchOperation>,
    /// The object as the cluster would store it.
    #[serde(skip)]
    pub stored: Value,
}

#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {error}")]
pub struct OfflineError {
    pub source_name: String,
    pub error: AdmitError,
}

/// The AdmissionRequest the API server would send for creating `doc`.
/// A namespaced object without a namespace lands in the policy's namespace,
/// as with `kubectl apply -n <namespace>`.
pub fn create_request(
    doc: &Value,
    policy: &Policy,
) -> Result<AdmissionRequest<RawObject>, serde_json::Error> {
    let object = RawObject::from_json(doc.clone())?;
    let (group, version) = match object.api_version().split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), object.api_version().to_owned()),
    };
    let kind = object.kind().to_owned();
    let handled = Kind::lookup(&group, &kind).map(Kind::info);
    let cluster_scoped = handled.is_some_and(|h| h.kind == Kind::Namespace);
    let namespace = (!cluster_scoped).then(|| {
        object
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| policy.namespace.clone())
    });
    let resource = handled.map_or_else(|| kind.to_ascii_lowercase(), |h| h.resource.to_owned());
    Ok(AdmissionRequest {
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
            username: Some(OFFLINE_USER.to_owned()),
            ..UserInfo::default()
        },
        object: Some(object),
        old_object: None,
        dry_run: true,
        options: None,
    })
}

/// Admits each document offline: mutate, then validate the result.
pub fn admit_documents(
    docs: &[Document],
    policy: &Policy,
) -> Result<Vec<ObjectReport>, OfflineError> {
    docs.iter()
        .map(|doc| {
            let fail = |error: AdmitError| OfflineError {
                source_name: doc.source.clone(),
                error,
            };
            let req =
                create_request(&doc.value, policy).map_err(|e| fail(AdmitError::Unreadable(e)))?;
            let decision = admit(&req, policy, Stage::MutateThenValidate).map_err(fail)?;
            Ok(ObjectReport {
                source: doc.source.clone(),
                api_version: doc.value["apiVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                kind: req.kind.kind.clone(),
                namespace: req.namespace.clone(),
                name: req.name.clone(),
                allowed: decision.allowed,
                violations: decision.findings,
                warnings: decision.warnings,
                mutations: decision.patch,
                stored: decision.patched.unwrap_or_else(|| doc.value.clone()),
            })
        })
        .collect()
}
