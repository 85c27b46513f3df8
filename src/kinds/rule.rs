//! What every kind module shares: the request context a rule may read, the
//! shape of a rule and of an injection, and reading typed parts of an
//! object's JSON.

use crate::object::{Doc, Metadata, Part};
use crate::patch::PatchBuilder;
use crate::policy::Policy;
use crate::rules::RuleId;
use crate::violation::Violation;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// What a rule may know about the request besides the object.
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

/// One rule: its id and the function that finds its violations in a `T`
/// (a pod template, a Service, ...). The function is named after the id
/// (`gateway.probes` is `gateway::probes`) and returns only that rule's
/// violations.
pub struct Rule<T: ?Sized> {
    pub id: RuleId,
    pub check: fn(&T, &Context) -> Vec<Violation>,
}

impl<T: ?Sized> Rule<T> {
    pub const fn new(id: RuleId, check: fn(&T, &Context) -> Vec<Violation>) -> Self {
        Rule { id, check }
    }
}

/// A rule about what an UPDATE changes: it reads the old object and the new.
pub struct UpdateRule {
    pub id: RuleId,
    pub check: fn(&Change, &Context) -> Vec<Violation>,
}

/// The old and the new object of an UPDATE. Read from their text unless a
/// rule asks for the tree, so that a rule which does not apply costs
/// nothing.
pub struct Change<'a> {
    pub old: Doc<'a>,
    pub new: Doc<'a>,
}

/// One group of fields the mutating webhook adds where absent. Returns what
/// it added, for the warning kubectl prints (`None`: nothing was missing).
pub struct Injection<T: ?Sized> {
    pub inject: fn(&T, &Policy, &mut PatchBuilder) -> Option<String>,
}

/// Runs every rule of a kind over `object`.
pub fn check_all<T: ?Sized>(rules: &[Rule<T>], object: &T, ctx: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in rules {
        let found = (rule.check)(object, ctx);
        debug_assert!(
            found.iter().all(|v| v.rule == rule.id),
            "the function of {} reported another rule",
            rule.id
        );
        out.extend(found);
    }
    out
}

/// Runs every injection of a kind; returns what each added.
pub fn inject_all<T: ?Sized>(
    injections: &[Injection<T>],
    object: &T,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Vec<String> {
    injections
        .iter()
        .filter_map(|i| (i.inject)(object, policy, b))
        .collect()
}

/// The prefixes of the providers' API keys (OpenAI and Anthropic `sk-`,
/// Google `AIza`, Groq `gsk_`, xAI `xai-`, Hugging Face `hf_`, AWS access
/// key ids `AKIA`).
const PROVIDER_KEY_PREFIXES: &[&str] = &["sk-", "AIza", "gsk_", "xai-", "hf_", "AKIA"];

/// A value shaped like a provider's API key: one of their prefixes and at
/// least 16 more key characters, nothing else. Found under any field name:
/// a key does not stop being one under an innocent name.
pub fn looks_like_provider_key(value: &str) -> bool {
    let value = value.trim();
    PROVIDER_KEY_PREFIXES.iter().any(|prefix| {
        value.strip_prefix(prefix).is_some_and(|rest| {
            rest.len() >= 16
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    })
}

/// The object is not a well-formed instance of its kind.
#[derive(Debug, thiserror::Error)]
#[error("{field} is not a valid {kind}: {message}")]
pub struct MalformedObject {
    pub kind: &'static str,
    /// Where: `spec.template.spec.containers[0].ports`.
    pub field: String,
    /// What is wrong, never the value found (it may be a secret).
    pub message: String,
}

/// Reads the part of `doc` at `pointer` as `T`; a missing part reads as
/// `T::default()`.
pub fn read_at<'a, T: DeserializeOwned + Default>(
    doc: impl Into<Doc<'a>>,
    pointer: &[&str],
    kind: &'static str,
) -> Result<T, MalformedObject> {
    read_part(doc.into().at(pointer), pointer, kind)
}

/// Reads `part` (what is at `pointer`, for messages) as `T`; a missing part
/// reads as `T::default()`.
pub fn read_part<T: DeserializeOwned + Default>(
    part: Option<Part>,
    pointer: &[&str],
    kind: &'static str,
) -> Result<T, MalformedObject> {
    let Some(part) = part else {
        return Ok(T::default());
    };
    // Read as is; only a part that fails is read again to find where
    // (tracking the path costs an allocation per field read).
    if let Ok(read) = part.read() {
        return Ok(read);
    }
    part.read_tracked().map_err(|e| {
        let inner = e.path().to_string();
        let mut field: Vec<&str> = pointer.to_vec();
        if inner != "." {
            field.push(&inner);
        }
        MalformedObject {
            kind,
            field: if field.is_empty() {
                "object".to_owned()
            } else {
                field.join(".")
            },
            message: describe_without_value(&e.into_inner().to_string()),
        }
    })
}

/// Reads the metadata at `pointer`, without `managedFields` (see
/// [`crate::object::Metadata`]).
pub fn read_meta_at<'a>(
    doc: impl Into<Doc<'a>>,
    pointer: &[&str],
    kind: &'static str,
) -> Result<ObjectMeta, MalformedObject> {
    read_at::<Metadata>(doc, pointer, kind).map(ObjectMeta::from)
}

/// [`read_part`] for metadata, without `managedFields`.
pub fn read_meta_part(
    part: Option<Part>,
    pointer: &[&str],
    kind: &'static str,
) -> Result<ObjectMeta, MalformedObject> {
    read_part::<Metadata>(part, pointer, kind).map(ObjectMeta::from)
}

/// serde's messages quote the value they found (`invalid type: string
/// "sk-...", expected i32`): keep what kind of problem it is and what was
/// expected, never the value.
fn describe_without_value(message: &str) -> String {
    const PROBLEMS: &[&str] = &[
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "unknown field",
        "duplicate field",
    ];
    if message.starts_with("missing field") {
        return message.to_owned(); // names a field of the schema, no value
    }
    let Some(problem) = PROBLEMS.iter().find(|p| message.starts_with(*p)) else {
        return "malformed".to_owned();
    };
    // Read from text, serde_json adds where: not a field path.
    let message = match message.rsplit_once(" at line ") {
        Some((message, position))
            if position
                .split(" column ")
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            message
        }
        _ => message,
    };
    // What was expected comes from the schema, never from the input.
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("{problem}, expected {expected}"),
        None => (*problem).to_owned(),
    }
}

/// Whether every `key: value` of `wanted` is in `labels`.
pub fn has_labels(
    labels: Option<&BTreeMap<String, String>>,
    wanted: &BTreeMap<String, String>,
) -> bool {
    wanted
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use serde_json::json;
    use std::sync::LazyLock;

    static DEFAULT_POLICY: LazyLock<Policy> = LazyLock::new(Policy::default_policy);

    /// A request by a person in the policy's namespace, under the default
    /// policy.
    pub fn ctx() -> Context<'static> {
        ctx_in("portkey")
    }

    pub fn ctx_in(namespace: &'static str) -> Context<'static> {
        Context {
            policy: &DEFAULT_POLICY,
            namespace,
            username: "alice",
            origin: Origin::Authored,
        }
    }

    #[test]
    fn malformed_parts_are_named_without_their_value() {
        let doc = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "sk-live-secret"}]}]}});
        let err = read_at::<PodSpec>(&doc, &["spec"], "Pod").unwrap_err();
        assert_eq!(err.field, "spec.containers[0].ports[0].containerPort");
        assert!(!err.to_string().contains("sk-live-secret"), "{err}");
        assert!(err.message.starts_with("invalid type, expected"), "{err}");
        let variant =
            json!({"spec": {"containers": [{"name": "c", "restartPolicy": 5}], "os": {"name": 7}}});
        let err = read_at::<PodSpec>(&variant, &["spec"], "Pod").unwrap_err();
        assert!(err.message.starts_with("invalid type"), "{err}");
        for message in [
            "unknown variant `sk-live-secret`, expected one of `a`, `b`",
            "invalid value: string \"sk-live-secret\", expected a port",
            "sk-live-secret",
        ] {
            let described = describe_without_value(message);
            assert!(
                !described.contains("sk-live-secret"),
                "{message} -> {described}"
            );
        }
        let missing: PodSpec = read_at(&json!({}), &["spec"], "Pod").unwrap();
        assert!(missing.containers.is_empty());
    }

    #[test]
    fn labels_are_a_subset() {
        let wanted = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let mut labels = wanted.clone();
        labels.insert("b".to_owned(), "2".to_owned());
        assert!(has_labels(Some(&labels), &wanted));
        assert!(!has_labels(None, &wanted));
        assert!(has_labels(None, &BTreeMap::new()));
    }
}
