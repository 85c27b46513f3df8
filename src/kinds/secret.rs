//! Secrets (README: Rules, `secret.*`): credentials reach the namespace
//! only through External Secrets. The label alone proves nothing (anyone can
//! set it): the writer is what counts, and the label is required as well.

use super::rule::{has_labels, Context, Rule};
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

pub const RULES: &[Rule<SecretHead>] = &[
    Rule::new(RuleId::SecretAuthor, external_secrets_only),
    Rule::new(RuleId::SecretManagedLabel, managed_label),
];

/// A service account's token Secret, which Kubernetes before 1.24 makes
/// for every ServiceAccount.
const SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";

/// What the rules read of a Secret: never its data.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SecretHead {
    pub metadata: ObjectMeta,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// A service account's token made by the token controller (an identity of
/// the policy's `secrets.serviceAccountTokenWriters`): neither a provider
/// credential nor a way to bring one in.
fn token_controllers_token(secret: &SecretHead, ctx: &Context) -> bool {
    secret.type_.as_deref() == Some(SERVICE_ACCOUNT_TOKEN)
        && ctx
            .policy
            .secrets
            .service_account_token_writers
            .iter()
            .any(|w| w == ctx.username)
}

/// `secret.external-secrets-only`: the requester is the External Secrets
/// controller.
pub fn external_secrets_only(secret: &SecretHead, ctx: &Context) -> Vec<Violation> {
    let writers = &ctx.policy.secrets.writers;
    if writers.iter().any(|w| w == ctx.username) || token_controllers_token(secret, ctx) {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::SecretAuthor,
        FieldPath::root("userInfo").field("username"),
        "Secrets here are written only by External Secrets: add an ExternalSecret instead",
        writers.join(" | "),
        if ctx.username.is_empty() {
            "unknown"
        } else {
            ctx.username
        },
    )]
}

/// `secret.managed-label`: the Secret says it is managed by External
/// Secrets.
pub fn managed_label(secret: &SecretHead, ctx: &Context) -> Vec<Violation> {
    let wanted = &ctx.policy.secrets.managed_labels;
    let meta = &secret.metadata;
    if has_labels(meta.labels.as_ref(), wanted) || token_controllers_token(secret, ctx) {
        return Vec::new();
    }
    wanted
        .iter()
        .map(|(key, value)| {
            let actual = meta.labels.as_ref().and_then(|l| l.get(key));
            Violation::new(
                RuleId::SecretManagedLabel,
                FieldPath::root("metadata").field("labels").key(key),
                "Secrets here are managed by External Secrets",
                format!("{value:?}"),
                shown(actual.map(|v| format!("{v:?}"))),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;

    fn secret(labels: &[(&str, &str)], type_: Option<&str>) -> SecretHead {
        SecretHead {
            metadata: ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            type_: type_.map(str::to_owned),
        }
    }

    #[test]
    fn only_external_secrets_writes_secrets() {
        let mut as_writer = ctx();
        as_writer.username = "system:serviceaccount:external-secrets:external-secrets";
        assert!(external_secrets_only(&secret(&[], None), &as_writer).is_empty());
        let found = external_secrets_only(&secret(&[], None), &ctx());
        assert_eq!(found[0].path, "userInfo.username");
        assert_eq!(found[0].actual, "alice");
    }

    #[test]
    fn the_managed_label_is_required() {
        let labelled = secret(&[("reconcile.external-secrets.io/managed", "true")], None);
        assert!(managed_label(&labelled, &ctx()).is_empty());
        let found = managed_label(&secret(&[], None), &ctx());
        assert_eq!(
            found[0].path,
            r#"metadata.labels["reconcile.external-secrets.io/managed"]"#
        );
    }

    #[test]
    fn the_token_controller_makes_service_account_tokens_only() {
        let token = secret(&[], Some(SERVICE_ACCOUNT_TOKEN));
        let mut controller = ctx();
        controller.username = "system:kube-controller-manager";
        assert!(external_secrets_only(&token, &controller).is_empty());
        assert!(managed_label(&token, &controller).is_empty());
        // Another type from the same identity, or the type from anyone else,
        // is judged as usual.
        assert_eq!(
            external_secrets_only(&secret(&[], Some("Opaque")), &controller).len(),
            1
        );
        assert_eq!(external_secrets_only(&token, &ctx()).len(), 1);
    }
}
