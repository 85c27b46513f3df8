//! Scope and request semantics of admit(): what is judged, what passes
//! untouched, exemptions, deletions.

mod common;

use common::{load_one, repo_path};
use kube_core::admission::Operation;
use kube_core::Resource;
use portkey_guard::admission::{admit, Reason, Stage};
use portkey_guard::offline::create_request;
use portkey_guard::policy::Policy;
use serde_json::{json, Value};

fn root_pod(namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": namespace},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                    "securityContext": {"privileged": true, "runAsUser": 0}}]}})
}

#[test]
fn other_namespaces_and_unknown_kinds_pass_untouched() {
    let policy = Policy::default_policy();
    let req = create_request(&root_pod("default"), &policy).unwrap();
    let d = admit(&req, &policy, Stage::MutateThenValidate).unwrap();
    assert!(d.allowed && d.patch.is_empty() && d.findings.is_empty());
    assert_eq!(d.reason, Reason::OutOfScope);

    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": "r", "namespace": "portkey"}});
    let d = admit(
        &create_request(&role, &policy).unwrap(),
        &policy,
        Stage::MutateThenValidate,
    )
    .unwrap();
    assert_eq!(d.reason, Reason::OutOfScope);
}

#[test]
fn delete_connect_and_subresources_are_allowed() {
    let policy = Policy::default_policy();
    let mut req = create_request(&root_pod("portkey"), &policy).unwrap();
    for op in [Operation::Delete, Operation::Connect] {
        req.operation = op;
        assert!(admit(&req, &policy, Stage::Validate).unwrap().allowed);
    }
    req.operation = Operation::Update;
    req.sub_resource = Some("status".into());
    assert!(admit(&req, &policy, Stage::Validate).unwrap().allowed);
    req.sub_resource = None;
    assert!(!admit(&req, &policy, Stage::Validate).unwrap().allowed);
}

#[test]
fn all_violations_are_reported_at_once() {
    let policy = Policy::default_policy();
    let req = create_request(&root_pod("portkey"), &policy).unwrap();
    let d = admit(&req, &policy, Stage::MutateThenValidate).unwrap();
    assert!(!d.allowed);
    let message = d.denial_message();
    for rule in ["pss.privileged", "pss.run-as-user", "pod.run-as-user"] {
        assert!(message.contains(rule), "{rule} missing from:\n{message}");
    }
    assert_eq!(
        message.lines().count(),
        d.findings
            .iter()
            .filter(|f| f.action == portkey_guard::rules::Action::Deny)
            .count()
    );
    assert!(d.audit_annotations["denied-rules"].contains("pss.privileged"));
}

#[test]
fn exemptions_are_by_user_or_group_only() {
    let policy =
        Policy::from_yaml("exemptions:\n  usernames: [breakglass]\n  groups: [platform-admins]\n")
            .unwrap();
    let mut req = create_request(&root_pod("portkey"), &policy).unwrap();
    req.user_info.username = Some("breakglass".into());
    let d = admit(&req, &policy, Stage::MutateThenValidate).unwrap();
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::Exempted);
    // The one thing added: a note of the exemption, for `audit`.
    assert_eq!(
        serde_json::to_value(&d.patch).unwrap(),
        serde_json::json!([{"op": "add", "path": "/metadata/annotations",
            "value": {"portkey-guard.dev/exempted": "user breakglass"}}])
    );
    assert_eq!(
        d.patched.as_ref().unwrap()["metadata"]["annotations"]["portkey-guard.dev/exempted"],
        "user breakglass"
    );
    assert!(d.warnings[0].contains("exempted"));
    assert_eq!(d.audit_annotations["exempted"], "user breakglass");

    req.user_info.username = Some("alice".into());
    req.user_info.groups = Some(vec!["platform-admins".into()]);
    assert_eq!(
        admit(&req, &policy, Stage::Validate).unwrap().reason,
        Reason::Exempted
    );

    // Nothing on the object exempts it, the exemption note included.
    let mut pod = root_pod("portkey");
    pod["metadata"]["annotations"] = json!({"portkey-guard.dev/exempt": "true",
        "portkey-guard.dev/exempted": "user breakglass"});
    pod["metadata"]["labels"] = json!({"portkey-guard.dev/exempt": "true"});
    let mut req = create_request(&pod, &policy).unwrap();
    req.user_info.groups = Some(vec!["system:masters".into()]);
    assert!(!admit(&req, &policy, Stage::Validate).unwrap().allowed);
}

#[test]
fn finishing_a_deletion_is_never_blocked() {
    let policy = Policy::default_policy();
    let mut pod = root_pod("portkey");
    pod["metadata"]["deletionTimestamp"] = json!("2026-11-28T10:00:00Z");
    pod["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    let mut req = create_request(&pod, &policy).unwrap();
    req.operation = Operation::Update;
    req.old_object = req.object.clone();
    // The controller removes its finalizer: metadata only.
    req.object.as_mut().unwrap().meta_mut().finalizers = None;
    let d = admit(&req, &policy, Stage::Validate).unwrap();
    assert_eq!(d.reason, Reason::Finalizing);
    // A spec change during deletion is judged as usual: a new violation
    // blocks it.
    let mut changed = pod.clone();
    changed["spec"]["hostNetwork"] = json!(true);
    req.object = Some(serde_json::from_value(changed).unwrap());
    assert!(!admit(&req, &policy, Stage::Validate).unwrap().allowed);
}

#[test]
fn the_namespace_object_itself_is_in_scope() {
    let policy = Policy::default_policy();
    let mut ns = load_one(&repo_path("deploy/portkey/namespace.yaml"));
    ns["metadata"]["labels"] = json!({});
    let d = admit(
        &create_request(&ns, &policy).unwrap(),
        &policy,
        Stage::Mutate,
    )
    .unwrap();
    // enforce, enforce-version, audit, warn, and the name label.
    assert_eq!(d.patch.len(), 5, "{:?}", d.patch);
    let validated = admit(
        &create_request(&ns, &policy).unwrap(),
        &policy,
        Stage::Validate,
    )
    .unwrap();
    assert!(
        !validated.allowed,
        "unlabelled namespace as stored is denied"
    );
    ns["metadata"]["name"] = json!("other");
    let d = admit(
        &create_request(&ns, &policy).unwrap(),
        &policy,
        Stage::Validate,
    )
    .unwrap();
    assert_eq!(d.reason, Reason::OutOfScope);
}

#[test]
fn malformed_objects_are_errors_not_panics() {
    let policy = Policy::default_policy();
    let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "d", "namespace": "portkey"},
                     "spec": {"template": {"spec": {"containers": "not-a-list"}}}});
    let err = admit(
        &create_request(&bad, &policy).unwrap(),
        &policy,
        Stage::Validate,
    )
    .unwrap_err();
    assert!(err.to_string().contains("Deployment"), "{err}");
}
