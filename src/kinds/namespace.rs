//! The policy's namespace itself (README: Rules, `namespace.*`): its Pod
//! Security Admission labels.

use super::rule::{Context, Injection, Rule};
use crate::patch::PatchBuilder;
use crate::policy::Policy;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

pub const RULES: &[Rule<ObjectMeta>] = &[
    Rule::new(RuleId::NamespacePodSecurity, pod_security),
    Rule::new(RuleId::NamespaceNameLabel, name_label),
];

/// The label Kubernetes (1.21 and later) sets to a namespace's name, and
/// that every namespaceSelector of the webhooks matches on.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub const INJECTIONS: &[Injection<ObjectMeta>] = &[
    Injection {
        inject: inject_pod_security_labels,
    },
    Injection {
        inject: inject_name_label,
    },
];

/// `namespace.pod-security`: the enforce, audit and warn labels keep the
/// policy's level.
pub fn pod_security(meta: &ObjectMeta, ctx: &Context) -> Vec<Violation> {
    let labels = meta.labels.as_ref();
    ctx.policy
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
        .collect()
}

/// `namespace.name-label`: the name label is the namespace's name (before
/// Kubernetes 1.21 it is an ordinary label: relabelling would take the
/// namespace out of the webhooks' selectors).
pub fn name_label(meta: &ObjectMeta, _: &Context) -> Vec<Violation> {
    let name = meta.name.as_deref().unwrap_or_default();
    let actual = meta.labels.as_ref().and_then(|l| l.get(NAME_LABEL));
    if actual.map(String::as_str) == Some(name) {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::NamespaceNameLabel,
        FieldPath::root("metadata").field("labels").key(NAME_LABEL),
        "the name label is the namespace's own name",
        name,
        shown(actual),
    )]
}

/// The name label, where absent (API servers before 1.21 do not set it).
pub fn inject_name_label(meta: &ObjectMeta, _: &Policy, b: &mut PatchBuilder) -> Option<String> {
    let name = meta.name.as_deref()?;
    b.add_if_absent(&["metadata", "labels", NAME_LABEL], || json!(name))
        .then(|| format!("namespace label {NAME_LABEL}"))
}

/// The Pod Security Admission labels, where absent.
pub fn inject_pod_security_labels(
    _: &ObjectMeta,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    let added: Vec<&str> = policy
        .namespace_labels
        .iter()
        .filter(|(key, value)| {
            b.add_if_absent(&["metadata", "labels", key.as_str()], || json!(value))
        })
        .map(|(key, _)| key.as_str())
        .collect();
    (!added.is_empty()).then(|| format!("namespace labels ({})", added.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;
    use std::collections::BTreeMap;

    fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some("portkey".to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn pod_security_labels_keep_their_level() {
        let restricted = [
            ("pod-security.kubernetes.io/enforce-version", "latest"),
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/audit", "restricted"),
            ("pod-security.kubernetes.io/warn", "restricted"),
        ];
        assert!(pod_security(&meta(&restricted), &ctx()).is_empty());
        let mut relaxed = restricted;
        relaxed[2].1 = "privileged";
        let found = pod_security(&meta(&relaxed), &ctx());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path,
            r#"metadata.labels["pod-security.kubernetes.io/audit"]"#
        );
    }

    #[test]
    fn the_name_label_is_the_name() {
        assert!(name_label(&meta(&[(NAME_LABEL, "portkey")]), &ctx()).is_empty());
        let moved = name_label(&meta(&[(NAME_LABEL, "elsewhere")]), &ctx());
        assert_eq!(
            moved[0].path,
            r#"metadata.labels["kubernetes.io/metadata.name"]"#
        );
        assert_eq!(name_label(&meta(&[]), &ctx())[0].actual, "unset");
        let mut b = PatchBuilder::new(serde_json::json!({"metadata": {"name": "portkey"}}));
        assert!(inject_name_label(&meta(&[]), ctx().policy, &mut b).is_some());
        assert_eq!(b.doc().value()["metadata"]["labels"][NAME_LABEL], "portkey");
    }

    #[test]
    fn missing_labels_are_injected() {
        let mut b = PatchBuilder::new(
            serde_json::json!({"metadata": {"labels": {"pod-security.kubernetes.io/warn": "baseline"}}}),
        );
        let added = inject_pod_security_labels(&ObjectMeta::default(), ctx().policy, &mut b);
        assert_eq!(
            added.as_deref(),
            Some("namespace labels (pod-security.kubernetes.io/audit, pod-security.kubernetes.io/enforce, pod-security.kubernetes.io/enforce-version)")
        );
        assert_eq!(
            b.doc().value()["metadata"]["labels"]["pod-security.kubernetes.io/warn"],
            "baseline"
        );
    }
}
