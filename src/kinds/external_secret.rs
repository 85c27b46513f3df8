//! External Secrets (README: Rules, `externalsecret.*`, `secretstore.*`,
//! `pushsecret.*`): keys come only from the Bitwarden ClusterSecretStore,
//! into Secrets the ExternalSecret owns; no namespaced store can stand in for
//! it and nothing pushes the provider's secrets out.

use super::rule::{Context, Rule};
use crate::policy::ExternalSecrets;
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const RULES: &[Rule<ExternalSecretSpec>] = &[
    Rule::new(RuleId::ExternalSecretStore, store),
    Rule::new(RuleId::ExternalSecretCreationPolicy, creation_policy),
    Rule::new(RuleId::ExternalSecretTemplateLiteral, template_literal),
];

/// A SecretStore in the namespace: its rules.
pub const SECRET_STORE_RULES: &[Rule<ObjectMeta>] = &[Rule::new(
    RuleId::SecretStoreForbidden,
    secret_store_forbidden,
)];

/// A PushSecret in the namespace: its rules.
pub const PUSH_SECRET_RULES: &[Rule<ObjectMeta>] = &[Rule::new(
    RuleId::PushSecretForbidden,
    push_secret_forbidden,
)];

/// External Secrets' default store kind.
const DEFAULT_STORE_KIND: &str = "SecretStore";
const DEFAULT_CREATION_POLICY: &str = "Owner";

/// The fields of an ExternalSecret's spec the rules read.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    secret_store_ref: Option<StoreRef>,
    pub(crate) target: Option<Target>,
    pub(crate) data: Vec<DataSource>,
    pub(crate) data_from: Vec<DataSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StoreRef {
    kind: Option<String>,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Target {
    /// The Secret written (the ExternalSecret's own name when unset).
    pub(crate) name: Option<String>,
    creation_policy: Option<String>,
    pub(crate) template: Option<Template>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Template {
    pub(crate) data: BTreeMap<String, String>,
    pub(crate) template_from: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct DataSource {
    /// The key written into the Secret (`data[]` only).
    pub(crate) secret_key: Option<String>,
    source_ref: Option<SourceRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SourceRef {
    store_ref: Option<StoreRef>,
    generator_ref: Option<Value>,
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
    // Each entry may name a store of its own, or a generator: that is a
    // source of keys too.
    for (field, sources) in [("data", &spec.data), ("dataFrom", &spec.data_from)] {
        for (i, source) in sources.iter().enumerate() {
            let Some(source_ref) = source.source_ref.as_ref() else {
                continue;
            };
            let path = spec_path.field(field).index(i).field("sourceRef");
            if let Some(store) = &source_ref.store_ref {
                store_ref(store, p, &path.field("storeRef"), &mut out);
            }
            if source_ref.generator_ref.is_some() {
                out.push(store_violation(
                    p,
                    path.field("generatorRef"),
                    "a generator".to_owned(),
                ));
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

/// `externalsecret.template-literal`: the target Secret's template fills
/// its keys from the store (`{{ .apiKey }}`), never with a literal that
/// would put a credential in Git: no key without a template expression,
/// nothing beside the expressions but whitespace and an authentication
/// scheme ([`AUTH_SCHEMES`]: `Bearer {{ .token }}`), no quoted text or
/// comment inside one (`{{ "sk-..." }}`), no `templateFrom` (a literal or a
/// ConfigMap of its own). Messages name the key, never the value.
pub fn template_literal(spec: &ExternalSecretSpec, _: &Context) -> Vec<Violation> {
    let Some(template) = spec.target.as_ref().and_then(|t| t.template.as_ref()) else {
        return Vec::new();
    };
    let path = FieldPath::root("spec").field("target").field("template");
    let mut out: Vec<Violation> = template
        .data
        .iter()
        .filter(|(_, value)| !reads_only_the_store(value))
        .map(|(key, value)| {
            Violation::new(
                RuleId::ExternalSecretTemplateLiteral,
                path.field("data").key(key),
                format!("{key} must come from the store"),
                "store expressions such as \"{{ .apiKey }}\", beside them only an authentication scheme (Bearer, Basic, Token)",
                "a literal value",
            )
            .with_witness(value)
        })
        .collect();
    if !template.template_from.is_empty() {
        out.push(Violation::new(
            RuleId::ExternalSecretTemplateLiteral,
            path.field("templateFrom"),
            "templates come from this ExternalSecret's data, not from a literal or ConfigMap",
            "no templateFrom",
            "templateFrom",
        ));
    }
    out
}

/// The words a template may put beside its expressions: the HTTP
/// authentication schemes a header value starts with (in any case, as HTTP
/// reads them). Anything else outside `{{ }}` is text in Git, and a
/// credential can hide in any text.
pub const AUTH_SCHEMES: &[&str] = &["Bearer", "Basic", "Token"];

/// Whether a template value reads from the store: it holds a `{{ ... }}`
/// expression, no expression quotes a literal or holds a comment, and
/// between them there is only whitespace and [`AUTH_SCHEMES`].
fn reads_only_the_store(value: &str) -> bool {
    let outside_is_free = |text: &str| {
        text.split_whitespace().all(|word| {
            AUTH_SCHEMES
                .iter()
                .any(|scheme| scheme.eq_ignore_ascii_case(word))
        })
    };
    let mut expressions = 0;
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            return false;
        };
        let expression = &rest[start + 2..start + len];
        if !outside_is_free(&rest[..start])
            || expression.contains(['"', '`', '\''])
            || expression.contains("/*")
        {
            return false;
        }
        expressions += 1;
        rest = &rest[start + len + 2..];
    }
    expressions > 0 && outside_is_free(rest)
}

/// `secretstore.forbidden`: no namespaced SecretStore.
pub fn secret_store_forbidden(_: &ObjectMeta, ctx: &Context) -> Vec<Violation> {
    let p = &ctx.policy.external_secrets;
    vec![Violation::new(
        RuleId::SecretStoreForbidden,
        FieldPath::root("kind"),
        "keys come only from the cluster's store; a namespaced store would let anyone here choose the provider",
        format!("{} {}", p.store_kind, p.store_name),
        "SecretStore",
    )]
}

/// `pushsecret.forbidden`: no PushSecret.
pub fn push_secret_forbidden(_: &ObjectMeta, _: &Context) -> Vec<Violation> {
    vec![Violation::new(
        RuleId::PushSecretForbidden,
        FieldPath::root("kind"),
        "a PushSecret sends Secrets of this namespace out to a provider",
        "no PushSecret",
        "PushSecret",
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
    fn generators_are_no_source() {
        let generated = spec(
            json!({"secretStoreRef": {"kind": "ClusterSecretStore", "name": "bitwarden-backend"},
            "dataFrom": [{"sourceRef": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password", "name": "p"}}}]}),
        );
        let paths: Vec<String> = store(&generated, &ctx())
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(paths, ["spec.dataFrom[0].sourceRef.generatorRef"]);
    }

    #[test]
    fn template_literals_of_credential_keys() {
        let value = spec(json!({"target": {"template": {"data": {
            "OPENAI_API_KEY": "sk-live-literal", "ANTHROPIC_API_KEY": "{{ .anthropic }}",
            "QUOTED": "{{ \"sk-quoted\" }}", "UPSTREAM": "plain", "MIXED": "Bearer {{ .token }}",
            "PREFIXED": "sk-live-0123{{ .x }}", "SUFFIXED": "{{ .x }} sk-live", "BETWEEN": "{{ .a }}:{{ .b }}", "WORD": "Bearer: {{ .a }}",
            "COMMENT": "{{ .a }}{{/* sk-live-commented */}}", "SCHEMES": " Basic  {{- .a -}}\n",
            "TWO": "{{ .a }}{{ .b | b64dec }}", "LOWER": "bearer {{ .token }}"},
            "templateFrom": [{"literal": "x"}]}}}));
        let found = template_literal(&value, &ctx());
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.target.template.data.BETWEEN",
                "spec.target.template.data.COMMENT",
                "spec.target.template.data.OPENAI_API_KEY",
                "spec.target.template.data.PREFIXED",
                "spec.target.template.data.QUOTED",
                "spec.target.template.data.SUFFIXED",
                "spec.target.template.data.UPSTREAM",
                "spec.target.template.data.WORD",
                "spec.target.template.templateFrom"
            ]
        );
        assert!(found.iter().all(|v| !v.to_string().contains("sk-")));
    }

    #[test]
    fn namespaced_stores_and_push_secrets_are_refused() {
        assert_eq!(
            secret_store_forbidden(&ObjectMeta::default(), &ctx()).len(),
            1
        );
        assert_eq!(
            push_secret_forbidden(&ObjectMeta::default(), &ctx()).len(),
            1
        );
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
