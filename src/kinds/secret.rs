//! Secrets (README: Rules, `secret.*`): credentials reach the namespace
//! only through External Secrets. The label alone proves nothing (anyone can
//! set it): the writer is what counts, and the label is required as well.

use super::rule::{has_labels, Context, Rule};
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub const RULES: &[Rule<ObjectMeta>] = &[
    Rule::new(RuleId::SecretAuthor, external_secrets_only),
    Rule::new(RuleId::SecretManagedLabel, managed_label),
];

/// `secret.external-secrets-only`: the requester is the External Secrets
/// controller.
pub fn external_secrets_only(_: &ObjectMeta, ctx: &Context) -> Vec<Violation> {
    let writers = &ctx.policy.secrets.writers;
    if writers.iter().any(|w| w == ctx.username) {
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
pub fn managed_label(meta: &ObjectMeta, ctx: &Context) -> Vec<Violation> {
    let wanted = &ctx.policy.secrets.managed_labels;
    if has_labels(meta.labels.as_ref(), wanted) {
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

    #[test]
    fn only_external_secrets_writes_secrets() {
        let mut as_writer = ctx();
        as_writer.username = "system:serviceaccount:external-secrets:external-secrets";
        assert!(external_secrets_only(&ObjectMeta::default(), &as_writer).is_empty());
        let found = external_secrets_only(&ObjectMeta::default(), &ctx());
        assert_eq!(found[0].path, "userInfo.username");
        assert_eq!(found[0].actual, "alice");
    }

    #[test]
    fn the_managed_label_is_required() {
        let labelled = ObjectMeta {
            labels: Some(
                [(
                    "reconcile.external-secrets.io/managed".to_owned(),
                    "true".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        };
        assert!(managed_label(&labelled, &ctx()).is_empty());
        let found = managed_label(&ObjectMeta::default(), &ctx());
        assert_eq!(
            found[0].path,
            r#"metadata.labels["reconcile.external-secrets.io/managed"]"#
        );
    }
}
