//! Hardening every pod spec in the namespace (README: Rules, `pod.*`):
//! the UID and GID, a read-only root filesystem with writable scratch
//! volumes, credentials only from Secrets. One function per rule, one per
//! injected group.

use super::pod_template::{
    within, ContainerEntry, ContainerList, PodTemplate, SecurityContextView,
};
use super::rule::{looks_like_provider_key, Change, Context, Injection, Rule, UpdateRule};
use crate::name_pattern;
use crate::patch::PatchBuilder;
use crate::policy::Policy;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation, UNSET};
use serde_json::{json, Value};

pub const RULES: &[Rule<PodTemplate>] = &[
    Rule::new(RuleId::PodRunAsUser, run_as_user),
    Rule::new(RuleId::PodRunAsGroup, run_as_group),
    Rule::new(RuleId::PodFsGroup, fs_group),
    Rule::new(RuleId::PodSupplementalGroups, supplemental_groups),
    Rule::new(RuleId::PodReadOnlyRootFilesystem, read_only_root_filesystem),
    Rule::new(RuleId::PodWritableMount, writable_mount),
    Rule::new(RuleId::PodCredentialEnv, credential_env),
    Rule::new(RuleId::PodServiceAccountToken, service_account_token),
];

/// What an UPDATE of a pod-template kind may not change.
pub const UPDATE_RULES: &[UpdateRule] = &[UpdateRule {
    id: RuleId::PodOwnerReferences,
    check: owner_references,
}];

/// The pod hardening the mutating webhook adds where absent.
pub const INJECTIONS: &[Injection<PodTemplate>] = &[
    Injection {
        inject: inject_security_context,
    },
    Injection {
        inject: inject_container_security_context,
    },
    Injection {
        inject: inject_scratch_volumes,
    },
    Injection {
        inject: inject_service_account_token,
    },
];

// === impl rules ===

/// `pod.run-as-user`: runAsUser is the policy's UID on the pod and on every
/// container that sets it; unset everywhere is not enough.
pub fn run_as_user(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    identity(
        pod,
        RuleId::PodRunAsUser,
        "runAsUser",
        ctx.policy.pods.run_as_user,
        |sc| sc.run_as_user,
    )
}

/// `pod.run-as-group`: runAsGroup likewise, with the policy's GID.
pub fn run_as_group(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    identity(
        pod,
        RuleId::PodRunAsGroup,
        "runAsGroup",
        ctx.policy.pods.run_as_group,
        |sc| sc.run_as_group,
    )
}

fn identity(
    pod: &PodTemplate,
    rule: RuleId,
    field: &str,
    wanted: i64,
    value_of: fn(&SecurityContextView) -> Option<i64>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut pod_value = None;
    for sc in pod.security_contexts() {
        if sc.list == Some(ContainerList::Ephemeral) {
            continue;
        }
        let value = value_of(&sc);
        if sc.list.is_none() {
            pod_value = value;
        }
        if let Some(v) = value.filter(|v| *v != wanted) {
            let whose = if sc.list.is_none() {
                "pods"
            } else {
                "containers"
            };
            out.push(Violation::new(
                rule,
                sc.path.field(field),
                format!("{whose} run with {field} {wanted}"),
                wanted.to_string(),
                v.to_string(),
            ));
        }
    }
    // Set on every running container, the pod may leave it unset.
    let containers_set = pod
        .security_contexts()
        .filter(|sc| {
            matches!(sc.list, Some(ContainerList::Init | ContainerList::Regular))
                && value_of(sc).is_some()
        })
        .count();
    if pod_value.is_none() && containers_set < pod.running_containers().count() {
        out.push(Violation::new(
            rule,
            pod.spec_path().field("securityContext").field(field),
            format!("pods run with {field} {wanted}"),
            wanted.to_string(),
            UNSET,
        ));
    }
    out
}

/// `pod.fs-group`: fsGroup, when set, is the policy's (it owns every
/// volume the pod mounts).
pub fn fs_group(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let wanted = ctx.policy.pods.fs_group;
    let actual = pod.spec.security_context.as_ref().and_then(|s| s.fs_group);
    match actual {
        Some(group) if group != wanted => vec![Violation::new(
            RuleId::PodFsGroup,
            pod.spec_path().field("securityContext").field("fsGroup"),
            format!("volumes are owned by group {wanted}"),
            wanted.to_string(),
            group.to_string(),
        )],
        _ => Vec::new(),
    }
}

/// `pod.supplemental-groups`: no supplemental group is root's.
pub fn supplemental_groups(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    let groups = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.supplemental_groups.as_ref());
    let path = || {
        pod.spec_path()
            .field("securityContext")
            .field("supplementalGroups")
    };
    groups
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, g)| **g == 0)
        .map(|(i, _)| {
            Violation::new(
                RuleId::PodSupplementalGroups,
                path().item(i, "0"),
                "no process joins root's group",
                "a non-zero GID",
                "0",
            )
        })
        .collect()
}

/// `pod.read-only-root-filesystem`: every running container.
pub fn read_only_root_filesystem(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    pod.running_containers()
        .filter_map(|c| {
            let value = c
                .container
                .security_context
                .as_ref()
                .and_then(|s| s.read_only_root_filesystem);
            (value != Some(true)).then(|| {
                Violation::new(
                    RuleId::PodReadOnlyRootFilesystem,
                    c.path
                        .field("securityContext")
                        .field("readOnlyRootFilesystem"),
                    "the root filesystem must be read-only",
                    "true",
                    shown(value),
                )
            })
        })
        .collect()
}

/// `pod.writable-mount`: only the scratch paths are mounted writable, and
/// no raw block device is (a `volumeDevices` entry is writable storage
/// outside every path).
pub fn writable_mount(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let scratch = &ctx.policy.pods.scratch_volumes;
    let mut out = Vec::new();
    for c in pod.running_containers() {
        for (i, mount) in c.mounts() {
            let writable_path = scratch
                .iter()
                .any(|s| within(&mount.mount_path, &s.mount_path));
            if mount.read_only != Some(true) && !writable_path {
                out.push(Violation::new(
                    RuleId::PodWritableMount,
                    c.mount_path(i, mount).field("readOnly"),
                    format!(
                        "{} is outside the writable paths and must be read-only",
                        mount.mount_path
                    ),
                    "true",
                    shown(mount.read_only),
                ));
            }
        }
        for (i, device) in c.container.volume_devices.iter().flatten().enumerate() {
            out.push(Violation::new(
                RuleId::PodWritableMount,
                c.path.field("volumeDevices").item(i, &device.device_path),
                format!("{} is a writable block device", device.device_path),
                "no volumeDevices",
                "a block device",
            ));
        }
    }
    out
}

/// `pod.credential-env`: credential-like variables come from a Secret. The
/// message never shows the value.
pub fn credential_env(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let names = &ctx.policy.pods.credential_env_names;
    let mut out = Vec::new();
    for c in pod.running_containers() {
        // A provider key under any name, or on the command line
        // (`--api-key=sk-...`), is a literal credential all the same.
        let words = [
            ("command", &c.container.command),
            ("args", &c.container.args),
        ];
        for (field, list) in words {
            for (i, word) in list.iter().flatten().enumerate() {
                let value = word.rsplit_once('=').map_or(word.as_str(), |(_, v)| v);
                if looks_like_provider_key(value) {
                    out.push(
                        Violation::new(
                            RuleId::PodCredentialEnv,
                            c.path.field(field).index(i),
                            "a provider key on the command line; it must come from a Secret",
                            "valueFrom.secretKeyRef in env",
                            "a provider key",
                        )
                        .with_witness(word),
                    );
                }
            }
        }
        for (i, env) in c.container.env.iter().flatten().enumerate() {
            if !name_pattern::matches_any(names, &env.name) {
                if let Some(value) = env.value.as_deref().filter(|v| looks_like_provider_key(v)) {
                    out.push(
                        Violation::new(
                            RuleId::PodCredentialEnv,
                            c.path.field("env").item(i, &env.name).field("value"),
                            format!("{} holds what looks like a provider key; it must come from a Secret", env.name),
                            "valueFrom.secretKeyRef",
                            "a provider key",
                        )
                        .with_witness(value),
                    );
                }
                continue;
            }
            let from_secret = env
                .value_from
                .as_ref()
                .is_some_and(|v| v.secret_key_ref.is_some());
            let literal = env.value.as_deref().filter(|v| !v.is_empty());
            let (field, found) = match (literal, &env.value_from) {
                (Some(_), _) => ("value", "a literal value"),
                (None, Some(_)) if !from_secret => ("valueFrom", "another source"),
                _ => continue,
            };
            let violation = Violation::new(
                RuleId::PodCredentialEnv,
                c.path.field("env").item(i, &env.name).field(field),
                format!(
                    "{} looks like a credential and must come from a Secret",
                    env.name
                ),
                "valueFrom.secretKeyRef",
                found,
            );
            out.push(match literal {
                Some(value) => violation.with_witness(value),
                None => violation,
            });
        }
    }
    out
}

/// `pod.service-account-token`: the token is mounted, or not, as the
/// policy says (by default not: the gateway never calls the Kubernetes API).
pub fn service_account_token(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let wanted = ctx.policy.pods.automount_service_account_token;
    let actual = pod.spec.automount_service_account_token;
    if actual == Some(wanted) {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::PodServiceAccountToken,
        pod.spec_path().field("automountServiceAccountToken"),
        if wanted {
            "the service account token should be mounted"
        } else {
            "the service account token should not be mounted"
        },
        wanted.to_string(),
        shown(actual),
    )]
}

/// `pod.owner-references`: a ReplicaSet, Pod or Job's owner references are
/// changed only by a controller of the policy's `controllers` (adopting,
/// releasing) or by the garbage collector (`ownerReferenceWriters`).
/// Re-pointing them would take an old ReplicaSet away from its Deployment,
/// so that scaling it brings its old, since forbidden, pods back as
/// controller-made.
pub fn owner_references(change: &Change, ctx: &Context) -> Vec<Violation> {
    const OWNERS: &str = "/metadata/ownerReferences";
    let p = ctx.policy;
    let may_write = p.controllers.contains_key(ctx.username)
        || p.owner_reference_writers.iter().any(|w| w == ctx.username);
    if may_write || change.old.value().pointer(OWNERS) == change.new.value().pointer(OWNERS) {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::PodOwnerReferences,
        FieldPath::root("metadata").field("ownerReferences"),
        "owner references are the controllers' and the garbage collector's to change",
        "unchanged",
        "changed",
    )]
}

// === impl injections ===

/// runAsNonRoot, runAsUser, runAsGroup, fsGroup and the seccomp profile on
/// the pod (the identities and seccomp on Linux only).
pub fn inject_security_context(
    pod: &PodTemplate,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    let p = &policy.pods;
    let linux = !pod.is_windows();
    let mut fields: Vec<(&str, Value)> = vec![("runAsNonRoot", json!(true))];
    if linux {
        fields.extend([
            ("runAsUser", json!(p.run_as_user)),
            ("runAsGroup", json!(p.run_as_group)),
            ("fsGroup", json!(p.fs_group)),
        ]);
    }
    let mut added: Vec<&str> = fields
        .into_iter()
        .filter(|(field, value)| {
            b.add_if_absent(&pod.spec_at(&["securityContext", field]), || value.clone())
        })
        .map(|(field, _)| field)
        .collect();
    if linux
        && b.add_if_absent(
            &pod.spec_at(&["securityContext", "seccompProfile", "type"]),
            || json!(p.seccomp_profile),
        )
    {
        added.push("seccompProfile");
    }
    (!added.is_empty()).then(|| format!("pod securityContext ({})", added.join(", ")))
}

/// allowPrivilegeEscalation: false, readOnlyRootFilesystem: true and
/// capabilities.drop: [ALL] on every running container (Linux only).
pub fn inject_container_security_context(
    pod: &PodTemplate,
    _: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    if pod.is_windows() {
        return None;
    }
    let hardened: Vec<&str> = pod
        .running_containers()
        .filter(|c| harden_container(c, b))
        .map(|c| c.container.name.as_str())
        .collect();
    (!hardened.is_empty()).then(|| format!("container securityContext ({})", hardened.join(", ")))
}

fn harden_container(c: &ContainerEntry, b: &mut PatchBuilder) -> bool {
    let before = b.len();
    let sc = c.container.security_context.as_ref();
    // The API server refuses allowPrivilegeEscalation: false next to
    // privileged or CAP_SYS_ADMIN; leave those to validation's clearer message.
    let privileged = sc.and_then(|s| s.privileged) == Some(true);
    let sys_admin = sc
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|caps| caps.add.as_ref())
        .is_some_and(|add| add.iter().any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN"));
    if !privileged && !sys_admin {
        b.add_if_absent(
            &c.at(&["securityContext", "allowPrivilegeEscalation"]),
            || json!(false),
        );
    }
    b.add_if_absent(
        &c.at(&["securityContext", "readOnlyRootFilesystem"]),
        || json!(true),
    );
    b.add_if_absent(&c.at(&["securityContext", "capabilities", "drop"]), || {
        json!(["ALL"])
    });
    b.len() > before
}

/// Each scratch emptyDir mounted in every running container without a
/// mount at its path, the volume added when a mount needs it.
pub fn inject_scratch_volumes(
    pod: &PodTemplate,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    let mut mounted = Vec::new();
    for scratch in &policy.pods.scratch_volumes {
        let mut needed = false;
        for c in pod.running_containers() {
            if !c.has_mount_at(&scratch.mount_path) {
                b.append(
                    &c.at(&["volumeMounts"]),
                    json!({"name": scratch.name, "mountPath": scratch.mount_path}),
                );
                needed = true;
            }
        }
        if needed {
            pod.ensure_volume(b, json!({"name": scratch.name, "emptyDir": {}}));
            mounted.push(scratch.mount_path.as_str());
        }
    }
    (!mounted.is_empty()).then(|| format!("scratch volumes ({})", mounted.join(", ")))
}

/// automountServiceAccountToken as the policy says.
pub fn inject_service_account_token(
    pod: &PodTemplate,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    let wanted = policy.pods.automount_service_account_token;
    b.add_if_absent(&pod.spec_at(&["automountServiceAccountToken"]), || {
        json!(wanted)
    })
    .then(|| format!("automountServiceAccountToken: {wanted}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::pod_template::tests::deployment;
    use crate::kinds::rule::tests::ctx;
    use serde_json::json;

    fn paths(check: fn(&PodTemplate, &Context) -> Vec<Violation>, spec: Value) -> Vec<String> {
        check(&deployment(spec), &ctx())
            .into_iter()
            .map(|v| v.path)
            .collect()
    }

    const SPEC: &str = "spec.template.spec";

    #[test]
    fn run_as_user_on_the_pod_or_every_container() {
        let on_pod = json!({"securityContext": {"runAsUser": 1000}, "containers": [{"name": "a"}]});
        assert!(paths(run_as_user, on_pod).is_empty());
        let on_containers =
            json!({"containers": [{"name": "a", "securityContext": {"runAsUser": 1000}}]});
        assert!(paths(run_as_user, on_containers).is_empty());
        let unset = json!({"containers": [{"name": "a"}]});
        assert_eq!(
            paths(run_as_user, unset),
            [format!("{SPEC}.securityContext.runAsUser")]
        );
        let other = json!({"securityContext": {"runAsUser": 1000}, "containers": [{"name": "a", "securityContext": {"runAsUser": 0}}]});
        assert_eq!(
            paths(run_as_user, other),
            [format!("{SPEC}.containers[0].securityContext.runAsUser")]
        );
    }

    #[test]
    fn run_as_group_likewise() {
        let other = json!({"securityContext": {"runAsGroup": 5}, "containers": [{"name": "a"}]});
        assert_eq!(
            paths(run_as_group, other),
            [format!("{SPEC}.securityContext.runAsGroup")]
        );
        // An ephemeral container does not count.
        let ok = json!({"securityContext": {"runAsGroup": 1000}, "containers": [{"name": "a"}],
            "ephemeralContainers": [{"name": "debug", "securityContext": {"runAsGroup": 0}}]});
        assert!(paths(run_as_group, ok).is_empty());
    }

    #[test]
    fn fs_group_and_supplemental_groups_are_not_root() {
        let spec = json!({"securityContext": {"fsGroup": 0, "supplementalGroups": [1000, 0]}, "containers": []});
        assert_eq!(
            paths(fs_group, spec.clone()),
            [format!("{SPEC}.securityContext.fsGroup")]
        );
        assert_eq!(
            paths(supplemental_groups, spec),
            [format!("{SPEC}.securityContext.supplementalGroups[1]")]
        );
        let ok = json!({"securityContext": {"fsGroup": 1000, "supplementalGroups": [2000]}, "containers": []});
        assert!(
            paths(fs_group, ok.clone()).is_empty() && paths(supplemental_groups, ok).is_empty()
        );
    }

    #[test]
    fn writable_mounts_are_resolved_before_they_are_judged() {
        for escape in ["/tmp/../app", "/tmp//../app", "/tmp/../../etc"] {
            let spec = json!({"containers": [{"name": "a", "volumeMounts": [{"name": "tmp", "mountPath": escape}]}]});
            assert_eq!(paths(writable_mount, spec).len(), 1, "{escape}");
        }
    }

    #[test]
    fn read_only_root_filesystem_on_every_running_container() {
        let spec = json!({"initContainers": [{"name": "i"}], "containers": [{"name": "a", "securityContext": {"readOnlyRootFilesystem": true}}]});
        assert_eq!(
            paths(read_only_root_filesystem, spec),
            [format!(
                "{SPEC}.initContainers[0].securityContext.readOnlyRootFilesystem"
            )]
        );
    }

    #[test]
    fn writable_mounts_only_below_the_scratch_paths() {
        let spec = json!({"containers": [{"name": "a", "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "cache", "mountPath": "/var/tmp/cache"},
            {"name": "conf", "mountPath": "/etc/conf", "readOnly": true},
            {"name": "data", "mountPath": "/data"}]}]});
        let found = writable_mount(&deployment(spec), &ctx());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path,
            format!("{SPEC}.containers[0].volumeMounts[3].readOnly")
        );
        assert_eq!(
            found[0].keyed_path,
            "spec.template.spec.containers[a].volumeMounts[/data].readOnly"
        );
    }

    #[test]
    fn credential_env_from_secrets_only_and_never_shown() {
        let spec = json!({"containers": [{"name": "a", "env": [
            {"name": "OPENAI_API_KEY", "value": "sk-live-secret"},
            {"name": "AZURE_KEY", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            {"name": "ANTHROPIC_API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "LOG_LEVEL", "value": "info"}]}]});
        let found = credential_env(&deployment(spec), &ctx());
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                format!("{SPEC}.containers[0].env[0].value"),
                format!("{SPEC}.containers[0].env[1].valueFrom")
            ]
        );
        assert!(found
            .iter()
            .all(|v| !v.to_string().contains("sk-live-secret")));
        // A provider key under an innocent name or on the command line.
        let key = "sk-proj-Abc123LiteralKeyValue0000";
        let spec = json!({"containers": [{"name": "a",
            "command": ["run", format!("--api-key={key}")], "args": [key, "--verbose"],
            "env": [{"name": "NOTE", "value": key}, {"name": "MODEL", "value": "gpt-4o-mini"}]}]});
        let found = credential_env(&deployment(spec), &ctx());
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                format!("{SPEC}.containers[0].command[1]"),
                format!("{SPEC}.containers[0].args[0]"),
                format!("{SPEC}.containers[0].env[0].value")
            ]
        );
        assert!(found.iter().all(|v| !v.to_string().contains(key)));
    }

    #[test]
    fn service_account_token_as_the_policy_says() {
        let spec = json!({"automountServiceAccountToken": true, "containers": []});
        assert_eq!(
            paths(service_account_token, spec),
            [format!("{SPEC}.automountServiceAccountToken")]
        );
        let ok = json!({"automountServiceAccountToken": false, "containers": []});
        assert!(paths(service_account_token, ok).is_empty());
        // The message follows the policy, not the default.
        let mut policy = ctx().policy.clone();
        policy.pods.automount_service_account_token = true;
        let mounting = Context {
            policy: &policy,
            ..ctx()
        };
        let unset = deployment(json!({"containers": []}));
        let found = service_account_token(&unset, &mounting);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "the service account token should be mounted"
        );
        assert_eq!(found[0].expected, "true");
    }

    #[test]
    fn owner_references_are_the_controllers_and_the_collectors() {
        let owned = |uid: &str| {
            json!({"metadata": {"name": "gw-7d9f", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "portkey-gateway", "uid": uid, "controller": true}]}})
        };
        let old = owned("1111");
        let repointed = owned("2222");
        let mut released = old.clone();
        released["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        let found = |new: &Value, ctx: &Context| -> Vec<String> {
            owner_references(
                &Change {
                    old: (&old).into(),
                    new: new.into(),
                },
                ctx,
            )
            .into_iter()
            .map(|v| v.path)
            .collect()
        };
        // A person may neither re-point nor drop them.
        for new in [&repointed, &released] {
            assert_eq!(found(new, &ctx()), ["metadata.ownerReferences"]);
        }
        // Nor add them to an object that had none.
        let adopted = Change {
            old: (&released).into(),
            new: (&old).into(),
        };
        assert_eq!(owner_references(&adopted, &ctx()).len(), 1);
        // An UPDATE that leaves them as they were is anyone's.
        assert!(found(&old, &ctx()).is_empty());
        // The controllers (adopting, releasing) and the garbage collector
        // are exempt.
        for username in [
            "system:serviceaccount:kube-system:deployment-controller",
            "system:kube-controller-manager",
            "system:serviceaccount:kube-system:generic-garbage-collector",
        ] {
            let exempt = Context { username, ..ctx() };
            for new in [&repointed, &released] {
                assert!(found(new, &exempt).is_empty(), "{username}");
            }
        }
    }

    /// The JSON Pointers an injection adds to a Deployment with this spec.
    fn injected(
        inject: fn(&PodTemplate, &Policy, &mut PatchBuilder) -> Option<String>,
        spec: Value,
    ) -> (Option<String>, Vec<String>) {
        let doc = json!({"spec": {"template": {"spec": spec}}});
        let pod = PodTemplate::read(crate::kind::Kind::Deployment, &doc).unwrap();
        let mut b = PatchBuilder::new(doc);
        let group = inject(&pod, ctx().policy, &mut b);
        let (_, ops) = b.finish();
        (group, ops.iter().map(|op| op.path().to_string()).collect())
    }

    #[test]
    fn injections_add_only_what_is_absent() {
        let (group, ops) = injected(
            inject_security_context,
            json!({"securityContext": {"runAsUser": 2000}, "containers": []}),
        );
        assert_eq!(
            group.as_deref(),
            Some("pod securityContext (runAsNonRoot, runAsGroup, fsGroup, seccompProfile)")
        );
        assert!(!ops.iter().any(|p| p.ends_with("runAsUser")), "{ops:?}");

        let (group, ops) = injected(
            inject_container_security_context,
            json!({"containers": [{"name": "a", "securityContext": {"privileged": true}}]}),
        );
        assert_eq!(group.as_deref(), Some("container securityContext (a)"));
        assert!(
            !ops.iter().any(|p| p.ends_with("allowPrivilegeEscalation")),
            "never next to privileged: {ops:?}"
        );

        let (group, ops) = injected(
            inject_scratch_volumes,
            json!({"containers": [{"name": "a", "volumeMounts": [{"name": "t", "mountPath": "/tmp/"}]}]}),
        );
        assert_eq!(group.as_deref(), Some("scratch volumes (/var/tmp)"));
        assert!(
            ops.contains(&"/spec/template/spec/volumes".to_owned()),
            "{ops:?}"
        );

        let (group, _) = injected(
            inject_service_account_token,
            json!({"automountServiceAccountToken": true, "containers": []}),
        );
        assert_eq!(group, None);
    }
}
