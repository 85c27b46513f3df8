//! The policy's namespace itself (README: Rules, `namespace.*`): its Pod
//! Security Admission labels.

use super::rule::{Context, Injection, Rule};
use crate::patch::PatchBuilder;
use crate::policy::Policy;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

pub const RULES: &[Rule<ObjectMeta>] = &[Rule::new(RuleId::NamespacePodSecurity, pod_security)];

pub const INJECTIONS: &[Injection<ObjectMeta>] = &[Injection {
    inject: inject_pod_security_labels,
}];

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

/// The Pod Security Admission labels, where absent.
pub fn inject_pod_security_labels(
    _: &ObjectMeta,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    let added: Vec<&str> = policy
        .namespace_labels
        .iter()
        .filter(|(key, value)| b.add_if_absent(&["metadata", "labels", key.as_str()], json!(value)))
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
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/audit", "restricted"),
            ("pod-security.kubernetes.io/warn", "restricted"),
        ];
        assert!(pod_security(&meta(&restricted), &ctx()).is_empty());
        let mut relaxed = restricted;
        relaxed[1].1 = "privileged";
        let found = pod_security(&meta(&relaxed), &ctx());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path,
            r#"metadata.labels["pod-security.kubernetes.io/audit"]"#
        );
    }

    #[test]
    fn missing_labels_are_injected() {
        let mut b = PatchBuilder::new(
            serde_json::json!({"metadata": {"labels": {"pod-security.kubernetes.io/warn": "baseline"}}}),
        );
        let added = inject_pod_security_labels(&ObjectMeta::default(), ctx().policy, &mut b);
        assert_eq!(
            added.as_deref(),
            Some("namespace labels (pod-security.kubernetes.io/audit, pod-security.kubernetes.io/enforce)")
        );
        assert_eq!(
            b.doc()["metadata"]["labels"]["pod-security.kubernetes.io/warn"],
            "baseline"
        );
    }
}
