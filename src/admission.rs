//! The one decision path: the webhook's `/mutate` and `/validate`, `check`
//! and `mutate` all call [`admit`].

use crate::kinds::{self, Context, Kind, MalformedObject, Origin};
use crate::object::{Doc, RawObject, ReviewOutline};
use crate::patch::PatchBuilder;
use crate::policy::Policy;
use crate::rules::{Action, RuleId};
use crate::violation::Violation;
use json_patch::PatchOperation;
use kube_core::admission::{AdmissionRequest, ConvertAdmissionReviewError, Operation};
use kube_core::TypeMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// An `admission.k8s.io` AdmissionReview as the API server sends it.
/// kube-core's own reads `apiVersion` and `kind` through
/// `#[serde(flatten)]`, which buffers the whole review, object included,
/// before reading it; this reads the review in one pass and keeps the
/// object as text (see [`RawObject`]).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub request: Option<AdmissionRequest<RawObject>>,
}

impl AdmissionReview {
    /// A review from its text. Its objects are checked as JSON and outlined
    /// in one pass ([`ReviewOutline`]), and serde reads the rest with each
    /// object left out (a `null` in its place). A review that pass does not
    /// take (one serde would refuse, or anything unusual) serde reads whole,
    /// each object on its own, as it always did: its answer, and its error,
    /// are the ones given.
    pub fn read(text: &str) -> Result<AdmissionReview, serde_json::Error> {
        Self::read_outlined(text).map_or_else(|| serde_json::from_str(text), Ok)
    }

    fn read_outlined(text: &str) -> Option<AdmissionReview> {
        let found = ReviewOutline::of(text).ok()?;
        let mut objects = [
            found.object.map(|found| (found, false)),
            found.old_object.map(|found| (found, true)),
        ];
        objects.sort_by_key(|o| o.as_ref().map(|((range, _), _)| range.start));
        let taken: usize = objects.iter().flatten().map(|((r, _), _)| r.len()).sum();
        if taken == 0 {
            return None; // nothing to take out: serde reads it as it is
        }
        let mut rest = String::with_capacity(text.len() - taken + 8);
        let mut from = 0;
        for ((range, _), _) in objects.iter().flatten() {
            rest.push_str(text.get(from..range.start)?);
            rest.push_str("null");
            from = range.end;
        }
        rest.push_str(text.get(from..)?);
        let mut review: AdmissionReview = serde_json::from_str(&rest).ok()?;
        let request = review.request.as_mut()?;
        for ((range, outline), old) in objects.into_iter().flatten() {
            let slot = if old {
                &mut request.old_object
            } else {
                &mut request.object
            };
            let object = RawObject::from_outline(text.get(range)?.into(), outline).ok()?;
            *slot = Some(object);
        }
        Some(review)
    }
}

impl TryFrom<AdmissionReview> for AdmissionRequest<RawObject> {
    type Error = ConvertAdmissionReviewError;

    fn try_from(review: AdmissionReview) -> Result<Self, Self::Error> {
        let mut request = review.request.ok_or(ConvertAdmissionReviewError)?;
        request.types = TypeMeta {
            api_version: review.api_version,
            kind: review.kind,
        };
        Ok(request)
    }
}

/// Where the mutating webhook notes on an object that it was written under
/// an exemption (`user NAME` or `group NAME`), when the annotation is not
/// there yet. Informational only: nothing on an object exempts it; `audit`
/// marks the findings of such an object as written under that exemption.
pub const EXEMPTION_ANNOTATION: &str = "portkey-guard.dev/exempted";

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
    /// The old object of an UPDATE had the same violation (same rule, same
    /// field, same value): reported, never blocking (see
    /// `allowExistingViolations`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub preexisting: bool,
}

impl Finding {
    /// Whether this finding rejects the request.
    pub fn denies(&self) -> bool {
        self.action == Action::Deny && !self.preexisting
    }
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
    /// The object after the patch, when the patch is not empty and the
    /// stage goes on to judge it (never for the mutating webhook).
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

    /// The denial message: every denying violation, one line each.
    pub fn denial_message(&self) -> String {
        Violation::lines(
            self.findings
                .iter()
                .filter(|f| f.denies())
                .map(|f| &f.violation),
        )
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
        decision.warnings = limit_warnings(vec![format!(
            "portkey-guard: policy not applied: {who} is exempted"
        )]);
        if stage.mutates() {
            if let Some(object) = req.object.as_ref() {
                let mut builder = PatchBuilder::of(Doc::Object(object));
                let marker = ["metadata", "annotations", EXEMPTION_ANNOTATION];
                builder.add_if_absent(&marker, || Value::from(who.clone()));
                (decision.patched, decision.patch) = finish(builder, stage);
            }
        }
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
    let username = req.user_info.username.as_deref().unwrap_or_default();
    let ctx = Context {
        policy,
        namespace: &namespace,
        username,
        origin: origin(object, kind, username, policy),
    };

    let mut warnings = Vec::new();
    let (patched, patch) = if stage.mutates() && mutable(req, object, kind, &ctx) {
        let mut builder = PatchBuilder::of(Doc::Object(object));
        for group in kinds::mutate(kind, &ctx, &mut builder)? {
            warnings.push(format!("portkey-guard added {group}"));
        }
        finish(builder, stage)
    } else {
        (None, Vec::new())
    };
    // Unless mutated, the object is judged as received, read from its text.
    let final_object = match &patched {
        Some(patched) => Doc::Tree(patched),
        None => Doc::Object(object),
    };
    let findings = if stage.validates() {
        let mut findings: Vec<Finding> = judge(kind, &ctx, final_object)?
            .into_iter()
            .map(|violation| Finding {
                action: policy.action(violation.rule),
                violation,
                preexisting: false,
            })
            .collect();
        if let (Operation::Update, Some(old)) = (&req.operation, req.old_object.as_ref()) {
            if policy.allow_existing_violations {
                mark_preexisting(&mut findings, kind, &ctx, old, final_object);
            }
            let changed = kinds::validate_update(kind, &ctx, Doc::Object(old), final_object);
            findings.extend(changed.into_iter().map(|violation| Finding {
                action: policy.action(violation.rule),
                violation,
                preexisting: false,
            }));
        }
        findings
    } else {
        Vec::new()
    };
    warnings.extend(
        findings
            .iter()
            .filter_map(|f| match (f.action, f.preexisting) {
                (Action::Warn, false) => Some(f.violation.text_after("")),
                (Action::Deny | Action::Warn, true) => {
                    Some(f.violation.text_after("present before this change: "))
                }
                _ => None,
            }),
    );
    let audit_annotations = audit_annotations(&findings);
    Ok(Decision {
        allowed: !findings.iter().any(Finding::denies),
        reason: Reason::Judged,
        kind: Some(kind),
        patch,
        patched,
        findings,
        warnings: limit_warnings(warnings),
        audit_annotations,
    })
}

/// The patch, and the patched object when `stage` goes on to judge it.
fn finish(builder: PatchBuilder, stage: Stage) -> (Option<Value>, Vec<PatchOperation>) {
    if stage.validates() {
        builder.finish()
    } else {
        (None, builder.into_patch())
    }
}

/// Whether the object was made by the built-in controller of its owner:
/// the requester is that controller AND the object names an owner of the
/// kind the controller makes it from. Either alone earns nothing.
fn origin(object: &RawObject, kind: Kind, username: &str, policy: &Policy) -> Origin {
    let owner = object.controller_owner().and_then(|owner| {
        let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
        Kind::lookup(group, &owner.kind)
    });
    match owner {
        Some(owner) if policy.controller_makes(username, kind.info().name, owner.info().name) => {
            Origin::Controller
        }
        _ => Origin::Authored,
    }
}

/// Whether the mutating webhook may patch this request.
///
/// * Pods and Jobs cannot change their pod spec after creation.
/// * An object with a controller owner is never patched on UPDATE, whoever
///   sends it: the deployment controller tells its ReplicaSets apart by
///   their templates, and a rewritten template makes it create another.
/// * A controller's own writes are patched only where the owner could not
///   decide: a Pod it creates gets the pod hardening. ReplicaSets and Jobs
///   are copies of an admitted template, and a controller updating its
///   owner (the deployment controller's revision annotation) must not start
///   a rollout by having the template rewritten.
fn mutable(
    req: &AdmissionRequest<RawObject>,
    object: &RawObject,
    kind: Kind,
    ctx: &Context,
) -> bool {
    if !kind.info().mutated {
        return false;
    }
    if req.operation != Operation::Create
        && (kind.pod_spec_immutable() || object.controller_owner().is_some())
    {
        return false;
    }
    if ctx.policy.controllers.contains_key(ctx.username) {
        return req.operation == Operation::Create
            && ctx.origin == Origin::Controller
            && kind == Kind::Pod;
    }
    true
}

/// Every violation of `doc` that its origin is judged by. What a controller
/// makes from an admitted owner is judged by the pod-hardening rules only,
/// and a ReplicaSet or Job as its pods will be: with the hardening the
/// mutating webhook gives each Pod on creation.
fn judge(kind: Kind, ctx: &Context, doc: Doc) -> Result<Vec<Violation>, AdmitError> {
    if ctx.origin == Origin::Authored {
        return Ok(kinds::validate(kind, ctx, doc)?);
    }
    let mut violations = if kind == Kind::Pod {
        kinds::validate(kind, ctx, doc)?
    } else {
        let mut builder = PatchBuilder::of(doc);
        kinds::mutate(kind, ctx, &mut builder)?;
        kinds::validate(kind, ctx, builder.doc())?
    };
    violations.retain(|v| v.rule.is_pod_hardening());
    Ok(violations)
}

/// Marks the findings the old object of an UPDATE already had: the same
/// rule at the same field with the same value. Rules about the requester
/// are never inherited; an old object that cannot be read has no
/// violations to inherit.
fn mark_preexisting(
    findings: &mut [Finding],
    kind: Kind,
    ctx: &Context,
    old: &RawObject,
    new: Doc,
) {
    if findings.is_empty() {
        return;
    }
    let Ok(before) = judge(kind, ctx, Doc::Object(old)) else {
        return;
    };
    let mut new_values = Fingerprints::of(new.value());
    let mut old_values = Fingerprints::of(old.json());
    for finding in findings.iter_mut() {
        let v = &finding.violation;
        let value = new_values.at(&v.path);
        finding.preexisting = !v.rule.judges_requester()
            && before
                .iter()
                .any(|o| o.same_as(v) && old_values.at(&o.path) == value);
    }
}

fn in_scope(req: &AdmissionRequest<RawObject>, kind: Kind, policy: &Policy) -> bool {
    match kind {
        Kind::Namespace => {
            req.name == policy.namespace || object_name(req) == Some(&policy.namespace)
        }
        // The hostname guard covers every namespace.
        kind if kind.claims_hostnames() => true,
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
/// its finalizers (a controller removing its own). Labels, annotations and
/// owner references of a terminating object are judged as usual: a
/// terminating pod relabelled as the gateway may still get its traffic.
fn finalizing(req: &AdmissionRequest<RawObject>) -> bool {
    let (Some(new), Some(old)) = (req.object.as_ref(), req.old_object.as_ref()) else {
        return false;
    };
    if req.operation != Operation::Update || new.metadata.deletion_timestamp.is_none() {
        return false;
    }
    without_finalizers(new.json()) == without_finalizers(old.json())
}

/// The object without what a finalizer's removal changes.
fn without_finalizers(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "finalizers",
            "resourceVersion",
            "managedFields",
            "generation",
        ] {
            meta.remove(field);
        }
    }
    v
}

/// Fingerprints of the values at violations' fields (`None` when the
/// field is absent) in one object: with the rule, the keyed path and
/// `actual`, what makes a violation of the old object the same violation.
/// Messages keep `actual` short and free of secrets ("an ipBlock", "a
/// string"); the fingerprint still tells `10.0.0.0/24` from `0.0.0.0/0`.
///
/// A path that goes on past a string reads on in the JSON that string holds
/// (`data["all-models.json"].strategy.mode`: a strategy file in a
/// ConfigMap), so a value inside a file is told from another as well. Each
/// such text is parsed once, however many violations point into it.
struct Fingerprints<'a> {
    doc: &'a Value,
    /// The JSON of each string the paths went on past, by the string's
    /// address in `doc` (`None`: not JSON).
    parsed: std::collections::HashMap<*const String, Option<Value>>,
}

impl<'a> Fingerprints<'a> {
    fn of(doc: &'a Value) -> Self {
        Fingerprints {
            doc,
            parsed: std::collections::HashMap::new(),
        }
    }

    fn at(&mut self, path: &str) -> Option<u64> {
        use crate::yaml::Segment;
        use std::hash::{Hash, Hasher};
        fn step<'v>(node: &'v Value, segment: &Segment) -> Option<&'v Value> {
            match segment {
                Segment::Key(key) => node.get(key.as_str()),
                Segment::Index(i) => node.get(i),
            }
        }
        let segments = crate::yaml::parse_path(path);
        let mut node = self.doc;
        let mut rest = segments.as_slice();
        while let Some((segment, after)) = rest.split_first() {
            if let Value::String(text) = node {
                let inner = self
                    .parsed
                    .entry(text as *const String)
                    .or_insert_with(|| serde_json::from_str(text).ok())
                    .as_ref()?;
                node = rest.iter().try_fold(inner, step)?;
                break;
            }
            node = step(node, segment)?;
            rest = after;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(node).ok()?.hash(&mut hasher);
        Some(hasher.finish())
    }
}

fn audit_annotations(findings: &[Finding]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let key = |f: &Finding| match (f.preexisting, f.action) {
        (true, _) => "preexisting-rules",
        (false, Action::Deny) => "denied-rules",
        (false, Action::Warn) => "warned-rules",
        (false, Action::Audit) => "audited-rules",
    };
    let mut grouped: BTreeMap<&str, Vec<RuleId>> = BTreeMap::new();
    for f in findings {
        grouped.entry(key(f)).or_default().push(f.violation.rule);
    }
    for (key, mut rules) in grouped {
        rules.sort_unstable();
        rules.dedup();
        let ids: Vec<&str> = rules.iter().map(|r| r.as_str()).collect();
        out.insert(key.to_owned(), ids.join(","));
    }
    out
}

/// Cuts `text` to [`MAX_WARNING_CHARS`], the last three `...`.
fn limit_chars(text: &mut String) {
    if let Some((cut, _)) = text.char_indices().nth(MAX_WARNING_CHARS) {
        let keep = text[..cut]
            .char_indices()
            .nth_back(2)
            .map_or(0, |(at, _)| at);
        text.truncate(keep);
        text.push_str("...");
    }
}

/// At most [`MAX_WARNINGS`] warnings of at most [`MAX_WARNING_CHARS`]; the
/// last says how many were left out.
pub fn limit_warnings(mut warnings: Vec<String>) -> Vec<String> {
    let total = warnings.len();
    if total > MAX_WARNINGS {
        warnings.truncate(MAX_WARNINGS - 1);
        warnings.push(hidden_warnings(total - (MAX_WARNINGS - 1)));
    }
    for warning in &mut warnings {
        limit_chars(warning);
    }
    warnings
}

const HIDDEN_PREFIX: &str = "portkey-guard: ";
const HIDDEN_SUFFIX: &str = " more warnings not shown";

/// The last warning when `n` more were left out.
fn hidden_warnings(n: usize) -> String {
    format!("{HIDDEN_PREFIX}{n}{HIDDEN_SUFFIX}")
}

/// How many warnings `warning` says were left out, if it is that note.
pub fn hidden_count(warning: &str) -> Option<usize> {
    warning
        .strip_prefix(HIDDEN_PREFIX)?
        .strip_suffix(HIDDEN_SUFFIX)?
        .parse()
        .ok()
}

/// Adds `more` warnings to `warnings` (already within the limits) within
/// the same limits: when some were already left out, the note counts these
/// too.
pub fn extend_warnings(warnings: &mut Vec<String>, more: impl Iterator<Item = String>) {
    let more: Vec<String> = more.collect();
    if more.is_empty() {
        return;
    }
    if let Some(hidden) = warnings.last().and_then(|w| hidden_count(w)) {
        warnings.pop();
        warnings.push(hidden_warnings(hidden + more.len()));
        return;
    }
    let mut all: Vec<String> = std::mem::take(warnings);
    all.extend(more);
    *warnings = limit_warnings(all);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The review as serde reads it whole, each object on its own.
    fn read_whole(text: &str) -> Result<AdmissionReview, serde_json::Error> {
        serde_json::from_str(text)
    }

    fn reviews() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reviews");
        let mut texts = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let value: Value = serde_json::from_str(&text).unwrap();
                texts.push(value.to_string());
                texts.push(text);
            }
        }
        texts
    }

    #[test]
    fn a_review_read_in_one_pass_is_the_review_serde_reads() {
        let mut texts = reviews();
        assert!(texts.len() >= 12, "the fixtures are found");
        // An update, with both objects, and a delete, with the old one only.
        let update = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Service"},
                "resource": {"group": "", "version": "v1", "resource": "services"},
                "operation": "UPDATE", "userInfo": {"username": "u"}, "name": "s", "namespace": "n",
                "oldObject": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"a": "1"}}},
                "object": {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s"}, "spec": {"ports": []}},
                "dryRun": false}});
        let mut delete = update.clone();
        delete["request"]["operation"] = "DELETE".into();
        delete["request"]["object"] = Value::Null;
        texts.extend([
            update.to_string(),
            serde_json::to_string_pretty(&update).unwrap(),
            delete.to_string(),
        ]);
        for text in &texts {
            let outlined = AdmissionReview::read_outlined(text).expect("read in one pass");
            let whole = read_whole(text).unwrap();
            assert_eq!(format!("{outlined:?}"), format!("{whole:?}"));
            let request = outlined.request.unwrap();
            let object = request
                .object
                .as_ref()
                .or(request.old_object.as_ref())
                .unwrap();
            assert!(text.contains(object.text()));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 1024,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// A review broken at random reads as serde reads it whole: the same
        /// request or the same error, and one pass takes only what serde
        /// takes.
        #[test]
        fn any_review_reads_as_serde_reads_it(
            which in 0usize..64,
            at in 0usize..100_000,
            change in 0usize..4,
            byte in proptest::sample::select(
                br#" "\/{}[]:,.-+eE019tfnulx"#.to_vec()
            ),
        ) {
            let texts = reviews();
            let text = texts[which % texts.len()].clone();
            let Some(text) = crate::object::broken_at(text, at, change, byte) else {
                return Ok(());
            };
            let described = |r: Result<AdmissionReview, serde_json::Error>| {
                r.map(|r| format!("{r:?}")).map_err(|e| e.to_string())
            };
            let whole = described(read_whole(&text));
            if AdmissionReview::read_outlined(&text).is_some() {
                proptest::prop_assert!(whole.is_ok(), "{}", text);
            }
            proptest::prop_assert_eq!(described(AdmissionReview::read(&text)), whole);
        }
    }

    #[test]
    fn what_one_pass_does_not_take_serde_reads_whole_with_its_own_error() {
        let base: Value = serde_json::from_str(&reviews()[0]).unwrap();
        let with = |change: &dyn Fn(&mut Value)| {
            let mut v = base.clone();
            change(&mut v);
            v.to_string()
        };
        let object = base["request"]["object"].to_string();
        let cases = [
            // The object given twice; the request given twice.
            base.to_string().replacen(
                "\"object\":",
                &format!("\"object\":{object},\"object\":"),
                1,
            ),
            base.to_string().replacen(
                "\"request\":",
                &format!("\"request\":{},\"request\":", base["request"]),
                1,
            ),
            // Not an object; malformed inside; a head member twice.
            with(&|v| v["request"]["object"] = "text".into()),
            base.to_string()
                .replacen("\"metadata\":{", "\"metadata\":{\"name\":01,", 1),
            base.to_string()
                .replacen("\"metadata\":{", "\"kind\":\"a\",\"metadata\":{", 1),
            // The rest of the review of the wrong shape; cut short.
            with(&|v| v["request"]["uid"] = 5.into()),
            base.to_string()[..base.to_string().len() - 3].to_owned(),
        ];
        for text in &cases {
            assert!(AdmissionReview::read_outlined(text).is_none(), "{text}");
            let read = AdmissionReview::read(text)
                .map(|r| format!("{r:?}"))
                .map_err(|e| e.to_string());
            let whole = read_whole(text)
                .map(|r| format!("{r:?}"))
                .map_err(|e| e.to_string());
            assert_eq!(read, whole, "{text}");
        }
        // Nested deeper than an object may be: refused both ways.
        let deep = with(&|v| {
            v["request"]["object"]["status"] =
                serde_json::from_str(&format!("{}{}", "[".repeat(110), "]".repeat(110))).unwrap()
        });
        assert!(AdmissionReview::read_outlined(&deep).is_none());
        let error = AdmissionReview::read(&deep).unwrap_err().to_string();
        assert_eq!(error, read_whole(&deep).unwrap_err().to_string());
        assert!(error.contains("nested more than 100 deep"), "{error}");
    }

    #[test]
    fn fingerprints_read_into_the_json_a_string_holds() {
        let doc = serde_json::json!({"data": {
            "a.json": "{\"strategy\": {\"mode\": \"x\"}, \"targets\": [1, 2]}",
            "b.json": "{\"strategy\": {\"mode\": \"y\"}}",
            "same.json": "{\n  \"strategy\": {\"mode\": \"x\"}\n}",
            "text": "not JSON"}});
        let mut prints = Fingerprints::of(&doc);
        let a = prints.at(r#"data["a.json"].strategy.mode"#);
        assert!(a.is_some());
        assert_ne!(a, prints.at(r#"data["b.json"].strategy.mode"#));
        // The same value, however the file is laid out.
        assert_eq!(a, prints.at(r#"data["same.json"].strategy.mode"#));
        assert!(prints.at(r#"data["a.json"].targets[1]"#).is_some());
        assert_ne!(
            prints.at(r#"data["a.json"].targets[0]"#),
            prints.at(r#"data["a.json"].targets[1]"#)
        );
        assert_eq!(prints.at(r#"data["a.json"].strategy.absent"#), None);
        assert_eq!(prints.at("data.text.inside"), None);
        assert!(prints.at("data.text").is_some());
        // Each file parsed once.
        assert_eq!(prints.parsed.len(), 4);
    }

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

    #[test]
    fn long_warnings_are_cut_at_a_character_with_an_ellipsis() {
        let exact = "é".repeat(MAX_WARNING_CHARS);
        assert_eq!(limit_warnings(vec![exact.clone()]), [exact]);
        let cut = limit_warnings(vec!["é".repeat(MAX_WARNING_CHARS + 1)]);
        assert_eq!(cut, [format!("{}...", "é".repeat(MAX_WARNING_CHARS - 3))]);
    }
}
