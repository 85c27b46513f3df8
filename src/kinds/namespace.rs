//! §3.1 — the namespace's Pod Security Admission labels.

use super::{read_at, Context, MalformedObject};
use crate::patch::PatchBuilder;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

pub fn mutate(ctx: &Context, b: &mut PatchBuilder) -> Vec<String> {
    let added: Vec<&str> = ctx
        .policy
        .namespace_labels
        .iter()
        .filter(|(key, value)| b.add_if_absent(&["metadata", "labels", key.as_str()], json!(value)))
        .map(|(key, _)| key.as_str())
        .collect();
    if added.is_empty() {
        return Vec::new();
    }
    vec![format!("namespace labels ({})", added.join(", "))]
}

pub fn validate(ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let meta: ObjectMeta = read_at(doc, &["metadata"], "Namespace")?;
    let labels = meta.labels.as_ref();
    Ok(ctx
        .policy
        .namespace_labels
        .iter()
        .filter_map(|(key, value)| {
            let actual = labels.and_then(|l| l.get(key));
            (actual != Some(value)).then(|| {
                Violation::new(
                    RuleId::NamespacePodSecurity,
                    FieldPath::root("metadata").field("labels").key(key),
                    "the namespace must keep the restricted Pod Security level",
                    value.as_str(),
                    shown(actual),
                )
            })
        })
        .collect())
}
