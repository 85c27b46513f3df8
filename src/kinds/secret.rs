//! §3.8 — credentials reach the namespace only through External Secrets.

use super::{has_labels, read_at, Context, MalformedObject};
use crate::policy::ExternalSecrets;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

/// A Secret is written by the External Secrets controller and says so.
/// The label alone proves nothing (anyone can set it): the writer is what
/// counts, and the label is required as well.
pub fn validate_secret(ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let p = &ctx.policy.secrets;
    let meta: ObjectMeta = read_at(doc, &["metadata"], "Secret")?;
    let mut out = Vec::new();
    if !p.writers.iter().any(|w| w == ctx.username) {
        out.push(Violation::new(
            RuleId::SecretAuthor,
            FieldPath::root("userInfo").field("username"),
            "Secrets here are written only by External Secrets: add an ExternalSecret instead",
            p.writers.join(" | "),
            if ctx.username.is_empty() {
                "unknown"
            } else {
                ctx.username
            },
        ));
    }
    if !has_labels(meta.labels.as_ref(), &p.managed_labels) {
        for (key, value) in &p.managed_labels {
            out.push(Violation::new(
                RuleId::SecretManagedLabel,
                FieldPath::root("metadata").field("labels").key(key),
                "Secrets here are managed by External Secrets",
                format!("{value:?}"),
                shown(
                    meta.labels
                        .as_ref()
                        .and_then(|l| l.get(key))
                        .map(|v| format!("{v:?}")),
                ),
            ));
        }
    }
    Ok(out)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ExternalSecretSpec {
    secret_store_ref: Option<StoreRef>,
    target: Option<Target>,
    data: Vec<DataSource>,
    data_from: Vec<DataSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StoreRef {
    kind: Option<String>,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Target {
    creation_policy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DataSource {
    source_ref: Option<SourceRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SourceRef {
    store_ref: Option<StoreRef>,
}

/// External Secrets' default store kind.
const DEFAULT_STORE_KIND: &str = "SecretStore";
const DEFAULT_CREATION_POLICY: &str = "Owner";

pub fn validate_external_secret(
    ctx: &Context,
    doc: &Value,
) -> Result<Vec<Violation>, MalformedObject> {
    let p = &ctx.policy.external_secrets;
    let spec: ExternalSecretSpec = read_at(doc, &["spec"], "ExternalSecret")?;
    let spec_path = FieldPath::root("spec");
    let mut out = Vec::new();
    match &spec.secret_store_ref {
        Some(store) => store_ref(store, p, &spec_path.field("secretStoreRef"), &mut out),
        None => out.push(store_violation(
            p,
            spec_path.field("secretStoreRef"),
            "unset".to_owned(),
        )),
    }
    // Each entry may name a store of its own: that is a store too.
    for (field, sources) in [("data", &spec.data), ("dataFrom", &spec.data_from)] {
        for (i, source) in sources.iter().enumerate() {
            if let Some(store) = source
                .source_ref
                .as_ref()
                .and_then(|s| s.store_ref.as_ref())
            {
                let path = spec_path
                    .field(field)
                    .index(i)
                    .field("sourceRef")
                    .field("storeRef");
                store_ref(store, p, &path, &mut out);
            }
        }
    }
    let policy = spec
        .target
        .as_ref()
        .and_then(|t| t.creation_policy.as_deref())
        .unwrap_or(DEFAULT_CREATION_POLICY);
    if policy != p.creation_policy {
        out.push(Violation::new(
            RuleId::ExternalSecretCreationPolicy,
            spec_path.field("target").field("creationPolicy"),
            "the ExternalSecret owns the Secret it creates",
            p.creation_policy.as_str(),
            policy,
        ));
    }
    Ok(out)
}

fn store_ref(store: &StoreRef, p: &ExternalSecrets, path: &FieldPath, out: &mut Vec<Violation>) {
    let kind = store.kind.as_deref().unwrap_or(DEFAULT_STORE_KIND);
    if kind != p.store_kind || store.name != p.store_name {
        out.push(store_violation(
            p,
            path.clone(),
            format!("{kind} {}", store.name),
        ));
    }
}

fn store_violation(p: &ExternalSecrets, path: FieldPath, actual: String) -> Violation {
    Violation::new(
        RuleId::ExternalSecretStore,
        path,
        "credentials come only from the Bitwarden store",
        format!("{} {}", p.store_kind, p.store_name),
        actual,
    )
}
