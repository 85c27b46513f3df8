//! The one decision path: the webhook's `/mutate` and `/validate`, `check`
//! and `mutate` all call [`admit`].

use crate::kinds::{self, Context, Kind, MalformedObject};
use crate::object::RawObject;
use crate::patch::PatchBuilder;
use crate::policy::Policy;
use crate::rules::{Action, RuleId};
use crate::violation::Violation;
use json_patch::PatchOperation;
use kube_core::admission::{AdmissionRequest, Operation};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub use kube_core::admission::AdmissionReview;

/// At most this many warnings reach the client, each at most
/// [`MAX_WARNING_CHARS`] characters.
pub const MAX_WARNINGS: usize = 10;
pub const MAX_WARNING_CHARS: usize = 120;

/// Which part of admission to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The mutating webhook: compute the patch, never deny.
    Mutate,
    /// The validating webhook: judge the object exactly as it arrives.
    Validate,
    /// Offline: mutate, then validate the mutated object (`check`).
    MutateThenValidate,
}

impl Stage {
    fn mutates(self) -> bool {
        matches!(self, Stage::Mutate | Stage::MutateThenValidate)
    }

    fn validates(self) -> bool {
        matches!(self, Stage::Validate | Stage::MutateThenValidate)
    }
}

/// A violation with the action the policy gives its rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub violation: Violation,
    pub action: Action,
}

/// Why a request was decided the way it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The policy judged the object.
    Judged,
    /// Out of scope: another namespace, a kind without rules, a
    /// subresource, DELETE or CONNECT.
    OutOfScope,
    /// The requesting user or group is exempted.
    Exempted,
    /// An update of an object being deleted that changes only metadata
    /// (finalizers): never block a deletion.
    Finalizing,
}

#[derive(Clone, Debug)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    pub kind: Option<Kind>,
    /// JSON Patch operations (mutating stages only).
    pub patch: Vec<PatchOperation>,
    /// The object after the patch (mutating stages only, when in scope).
    pub patched: Option<Value>,
    pub findings: Vec<Finding>,
    /// What the client is told, within the limits of [`MAX_WARNINGS`].
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

impl Decision {
    fn allow(reason: Reason, kind: Option<Kind>) -> Self {
        Decision {
            allowed: true,
            reason,
            kind,
            patch: Vec::new(),
            patched: None,
            findings: Vec::new(),
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }

    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &Violation> {
        self.findings
            .iter()
            .filter(move |f| f.action == action)
            .map(|f| &f.violation)
    }

    /// The denial message: every denying violation, one line each.
    pub fn denial_message(&self) -> String {
        self.with_action(Action::Deny)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Malformed(#[from] MalformedObject),
    #[error("the {0:?} request carries no object")]
    MissingObject(Operation),
    #[error("the object cannot be read: {0}")]
    Unreadable(serde_json::Error),
}

/// Decides one admission request under `policy`.
pub fn admit(
    req: &AdmissionRequest<RawObject>,
    policy: &Policy,
    stage: Stage,
) -> Result<Decision, AdmitError> {
    let Some(kind) = Kind::lookup(&req.kind.group, &req.kind.kind) else {
        return Ok(Decision::allow(Reason::OutOfScope, None));
    };
    let operation_in_scope = matches!(req.operation, Operation::Create | Operation::Update);
    let subresource = req.sub_resource.as_deref().is_some_and(|s| !s.is_empty());
    if !operation_in_scope || subresource || !in_scope(req, kind, policy) {
        return Ok(Decision::allow(Reason::OutOfScope, Some(kind)));
    }
    if let Some(who) = exemption(req, policy) {
        let mut decision = Decision::allow(Reason::Exempted, Some(kind));
        decision.warnings.push(limit_chars(&format!(
            "portkey-guard: policy not applied: {who} is exempted"
        )));
        decision
            .audit_annotations
            .insert("exempted".to_owned(), who);
        return Ok(decision);
    }
    let Some(object) = req.object.as_ref() else {
        return Err(AdmitError::MissingObject(req.operation.clone()));
    };
    if finalizing(req) {
        return Ok(Decision::allow(Reason::Finalizing, Some(kind)));
    }
    let namespace = object_namespace(req, kind, policy);
    let ctx = Context {
        policy,
        namespace: &namespace,
        username: req.user_info.username.as_deref().unwrap_or_default(),
    };

    let mut warnings = Vec::new();
    let mutable =
        kind.info().mutated && !(kind.pod_spec_immutable() && req.operation != Operation::Create);
    // Only a mutation needs a copy of the object to patch.
    let (patched, patch) = if stage.mutates() && mutable {
        let mut builder = PatchBuilder::new(object.json.clone());
        for group in kinds::mutate(kind, &ctx, &mut builder)? {
            warnings.push(format!("portkey-guard added {group}"));
        }
        let (doc, patch) = builder.finish();
        (Some(doc), patch)
    } else {
        (None, Vec::new())
    };
    let final_object = patched.as_ref().unwrap_or(&object.json);
    let findings: Vec<Finding> = if stage.validates() {
        kinds::validate(kind, &ctx, final_object)?
            .into_iter()
            .map(|violation| Finding {
                action: policy.action(violation.rule),
                violation,
            })
            .collect()
    } else {
        Vec::new()
    };
    warnings.extend(
        findings
            .iter()
            .filter(|f| f.action == Action::Warn)
            .map(|f| f.violation.to_string()),
    );
    let audit_annotations = audit_annotations(&findings);
    Ok(Decision {
        allowed: !findings.iter().any(|f| f.action == Action::Deny),
        reason: Reason::Judged,
        kind: Some(kind),
        patch,
        patched: stage
            .mutates()
            .then(|| patched.unwrap_or_else(|| object.json.clone())),
        findings,
        warnings: limit_warnings(warnings),
        audit_annotations,
    })
}

fn in_scope(req: &AdmissionRequest<RawObject>, kind: Kind, policy: &Policy) -> bool {
    match kind {
        Kind::Namespace => {
            req.name == policy.namespace || object_name(req) == Some(&policy.namespace)
        }
        // The hostname guard covers every namespace.
        Kind::HttpRoute => true,
        _ => req.namespace.as_deref() == Some(policy.namespace.as_str()),
    }
}

fn object_name(req: &AdmissionRequest<RawObject>) -> Option<&String> {
    req.object.as_ref().and_then(|o| o.metadata.name.as_ref())
}

fn object_namespace(req: &AdmissionRequest<RawObject>, kind: Kind, policy: &Policy) -> String {
    match kind {
        Kind::Namespace => policy.namespace.clone(),
        _ => req.namespace.clone().unwrap_or_default(),
    }
}

/// The exempted user or group that made the request, if any.
fn exemption(req: &AdmissionRequest<RawObject>, policy: &Policy) -> Option<String> {
    let user = &req.user_info;
    let exemptions = &policy.exemptions;
    if let Some(name) = user
        .username
        .as_ref()
        .filter(|u| exemptions.usernames.contains(u))
    {
        return Some(format!("user {name}"));
    }
    user.groups
        .iter()
        .flatten()
        .find(|g| exemptions.groups.contains(g))
        .map(|g| format!("group {g}"))
}

/// An UPDATE of an object already being deleted that changes nothing but
/// metadata (a controller removing its finalizer).
fn finalizing(req: &AdmissionRequest<RawObject>) -> bool {
    let (Some(new), Some(old)) = (req.object.as_ref(), req.old_object.as_ref()) else {
        return false;
    };
    if req.operation != Operation::Update || new.metadata.deletion_timestamp.is_none() {
        return false;
    }
    fields_but_metadata(&new.json) == fields_but_metadata(&old.json)
}

fn fields_but_metadata(v: &Value) -> Option<Vec<(&String, &Value)>> {
    v.as_object()
        .map(|m| m.iter().filter(|(k, _)| *k != "metadata").collect())
}

fn audit_annotations(findings: &[Finding]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (action, key) in [
        (Action::Deny, "denied-rules"),
        (Action::Warn, "warned-rules"),
        (Action::Audit, "audited-rules"),
    ] {
        let mut rules: Vec<RuleId> = findings
            .iter()
            .filter(|f| f.action == action)
            .map(|f| f.violation.rule)
            .collect();
        rules.sort_unstable();
        rules.dedup();
        if !rules.is_empty() {
            let ids: Vec<&str> = rules.iter().map(|r| r.as_str()).collect();
            out.insert(key.to_owned(), ids.join(","));
        }
    }
    out
}

fn limit_chars(text: &str) -> String {
    if text.chars().count() <= MAX_WARNING_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_WARNING_CHARS - 3).collect();
    cut.push_str("...");
    cut
}

/// At most [`MAX_WARNINGS`] warnings of at most [`MAX_WARNING_CHARS`]; the
/// last says how many were left out.
pub fn limit_warnings(warnings: Vec<String>) -> Vec<String> {
    let total = warnings.len();
    let mut out: Vec<String> = warnings.iter().map(|w| limit_chars(w)).collect();
    if total > MAX_WARNINGS {
        out.truncate(MAX_WARNINGS - 1);
        out.push(format!(
            "portkey-guard: {} more warnings not shown",
            total - (MAX_WARNINGS - 1)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_limited_in_number_and_length() {
        let long = "x".repeat(300);
        let warnings = limit_warnings(vec![long; 25]);
        assert_eq!(warnings.len(), MAX_WARNINGS);
        assert!(warnings
            .iter()
            .all(|w| w.chars().count() <= MAX_WARNING_CHARS));
        assert!(warnings.last().unwrap().contains("16 more"));
        assert_eq!(limit_warnings(vec!["a".into()]), vec!["a".to_owned()]);
    }
}
