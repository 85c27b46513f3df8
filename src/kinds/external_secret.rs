//! ExternalSecrets (README: Rules, `externalsecret.*`): keys come only from
//! the Bitwarden ClusterSecretStore, into Secrets the ExternalSecret owns.

use super::rule::{Context, Rule};
use crate::policy::ExternalSecrets;
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use serde::Deserialize;

pub const RULES: &[Rule<ExternalSecretSpec>] = &[
    Rule::new(RuleId::ExternalSecretStore, store),
    Rule::new(RuleId::ExternalSecretCreationPolicy, creation_policy),
];

/// External Secrets' default store kind.
const DEFAULT_STORE_KIND: &str = "SecretStore";
const DEFAULT_CREATION_POLICY: &str = "Owner";

/// The fields of an ExternalSecret's spec the rules read.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExternalSecretSpec {
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

/// `externalsecret.store`: the spec's store, and each entry's own store,
/// is the policy's ClusterSecretStore.
pub fn store(spec: &ExternalSecretSpec, ctx: &Context) -> Vec<Violation> {
    let p = &ctx.policy.external_secrets;
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
            let own = source
                .source_ref
                .as_ref()
                .and_then(|s| s.store_ref.as_ref());
            if let Some(store) = own {
                let path = spec_path
                    .field(field)
                    .index(i)
                    .field("sourceRef")
                    .field("storeRef");
                store_ref(store, p, &path, &mut out);
            }
        }
    }
    out
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

/// `externalsecret.creation-policy`: the ExternalSecret owns its Secret.
pub fn creation_policy(spec: &ExternalSecretSpec, ctx: &Context) -> Vec<Violation> {
    let wanted = &ctx.policy.external_secrets.creation_policy;
    let policy = spec
        .target
        .as_ref()
        .and_then(|t| t.creation_policy.as_deref())
        .unwrap_or(DEFAULT_CREATION_POLICY);
    if policy == wanted {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::ExternalSecretCreationPolicy,
        FieldPath::root("spec")
            .field("target")
            .field("creationPolicy"),
        "the ExternalSecret owns the Secret it creates",
        wanted.as_str(),
        policy,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> ExternalSecretSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn store_of_the_spec_and_of_each_entry() {
        let ok =
            json!({"secretStoreRef": {"kind": "ClusterSecretStore", "name": "bitwarden-backend"}});
        assert!(store(&spec(ok), &ctx()).is_empty());
        let bad = json!({"secretStoreRef": {"name": "bitwarden-backend"},
            "dataFrom": [{"sourceRef": {"storeRef": {"kind": "ClusterSecretStore", "name": "vault"}}}]});
        let paths: Vec<String> = store(&spec(bad), &ctx())
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(
            paths,
            ["spec.secretStoreRef", "spec.dataFrom[0].sourceRef.storeRef"]
        );
        assert_eq!(store(&spec(json!({})), &ctx())[0].actual, "unset");
    }

    #[test]
    fn creation_policy_defaults_to_owner() {
        assert!(creation_policy(&spec(json!({})), &ctx()).is_empty());
        let merge = spec(json!({"target": {"creationPolicy": "Merge"}}));
        assert_eq!(
            creation_policy(&merge, &ctx())[0].path,
            "spec.target.creationPolicy"
        );
    }
}
