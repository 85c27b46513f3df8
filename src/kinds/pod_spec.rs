//! §3.2 — hardening every pod spec in the namespace: security contexts,
//! scratch volumes, read-only mounts, credentials only from Secrets.

use super::workload::{ContainerEntry, ContainerList, PodTemplate};
use crate::name_pattern;
use crate::patch::PatchBuilder;
use crate::policy::{Pods, Policy};
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use serde_json::{json, Value};

pub fn mutate(pod: &PodTemplate, policy: &Policy, b: &mut PatchBuilder) -> Vec<String> {
    let p = &policy.pods;
    let mut injected = Vec::new();
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
            b.add_if_absent(&pod.spec_at(&["securityContext", field]), value.clone())
        })
        .map(|(field, _)| field)
        .collect();
    if linux
        && b.add_if_absent(
            &pod.spec_at(&["securityContext", "seccompProfile", "type"]),
            json!(p.seccomp_profile),
        )
    {
        added.push("seccompProfile");
    }
    if !added.is_empty() {
        injected.push(format!("pod securityContext ({})", added.join(", ")));
    }

    if linux {
        let hardened: Vec<&str> = pod
            .running_containers()
            .filter(|c| harden_container(c, b))
            .map(|c| c.container.name.as_str())
            .collect();
        if !hardened.is_empty() {
            injected.push(format!(
                "container securityContext ({})",
                hardened.join(", ")
            ));
        }
    }

    let scratch = add_scratch_volumes(pod, p, b);
    if !scratch.is_empty() {
        injected.push(format!("scratch volumes ({})", scratch.join(", ")));
    }

    if b.add_if_absent(
        &pod.spec_at(&["automountServiceAccountToken"]),
        json!(p.automount_service_account_token),
    ) {
        injected.push(format!(
            "automountServiceAccountToken: {}",
            p.automount_service_account_token
        ));
    }
    injected
}

/// allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
/// capabilities.drop: [ALL], where absent. Returns whether anything was added.
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
            json!(false),
        );
    }
    b.add_if_absent(
        &c.at(&["securityContext", "readOnlyRootFilesystem"]),
        json!(true),
    );
    b.add_if_absent(
        &c.at(&["securityContext", "capabilities", "drop"]),
        json!(["ALL"]),
    );
    b.len() > before
}

/// Mounts each scratch emptyDir in every container without a mount at its
/// path, adding the volume when a mount needs it. Returns the paths mounted.
fn add_scratch_volumes(pod: &PodTemplate, p: &Pods, b: &mut PatchBuilder) -> Vec<String> {
    let mut mounted = Vec::new();
    for scratch in &p.scratch_volumes {
        let mut needed = false;
        for c in pod.running_containers() {
            if !has_mount_at(c, &scratch.mount_path) {
                b.append(
                    &c.at(&["volumeMounts"]),
                    json!({"name": scratch.name, "mountPath": scratch.mount_path}),
                );
                needed = true;
            }
        }
        if needed {
            ensure_volume(pod, b, json!({"name": scratch.name, "emptyDir": {}}));
        }
        if needed {
            mounted.push(scratch.mount_path.clone());
        }
    }
    mounted
}

/// Whether the container mounts something at `path`.
pub fn has_mount_at(c: &ContainerEntry, path: &str) -> bool {
    c.container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| same_path(&m.mount_path, path))
}

/// Appends `volume` to the pod spec unless a volume of that name is already
/// there, in the manifest or added by an earlier step of this mutation.
pub fn ensure_volume(pod: &PodTemplate, b: &mut PatchBuilder, volume: Value) {
    let path = pod.spec_at(&["volumes"]);
    let present = b
        .doc()
        .pointer(&crate::patch::pointer(&path).to_string())
        .and_then(Value::as_array)
        .is_some_and(|vs| vs.iter().any(|v| v["name"] == volume["name"]));
    if !present {
        b.append(&path, volume);
    }
}

/// Mount paths compare without trailing slashes.
pub fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// `path` is `dir` or below it.
fn within(path: &str, dir: &str) -> bool {
    let (path, dir) = (path.trim_end_matches('/'), dir.trim_end_matches('/'));
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

pub fn validate(pod: &PodTemplate, policy: &Policy) -> Vec<Violation> {
    let p = &policy.pods;
    let mut out = Vec::new();
    identity(pod, p, &mut out);
    for c in pod.running_containers() {
        read_only_root(c, &mut out);
        writable_mounts(c, p, &mut out);
        credential_env(c, p, &mut out);
    }
    if pod.spec.automount_service_account_token != Some(p.automount_service_account_token) {
        out.push(Violation::new(
            RuleId::PodServiceAccountToken,
            pod.spec_path().field("automountServiceAccountToken"),
            "the service account token should not be mounted",
            p.automount_service_account_token.to_string(),
            shown(pod.spec.automount_service_account_token),
        ));
    }
    out
}

/// runAsUser and runAsGroup are the policy's on the pod and on every
/// container that sets them; unset everywhere is not enough.
fn identity(pod: &PodTemplate, p: &Pods, out: &mut Vec<Violation>) {
    let pod_sc = pod.spec.security_context.as_ref();
    let checks = [
        (
            RuleId::PodRunAsUser,
            "runAsUser",
            p.run_as_user,
            pod_sc.and_then(|s| s.run_as_user),
        ),
        (
            RuleId::PodRunAsGroup,
            "runAsGroup",
            p.run_as_group,
            pod_sc.and_then(|s| s.run_as_group),
        ),
    ];
    for (rule, field, wanted, pod_value) in checks {
        let pod_path = pod.spec_path().field("securityContext").field(field);
        let mut some_container_unset = false;
        for c in pod.running_containers() {
            let sc = c.container.security_context.as_ref();
            let value = match field {
                "runAsUser" => sc.and_then(|s| s.run_as_user),
                _ => sc.and_then(|s| s.run_as_group),
            };
            match value {
                Some(v) if v != wanted => out.push(Violation::new(
                    rule,
                    c.path.field("securityContext").field(field),
                    format!("containers run with {field} {wanted}"),
                    wanted.to_string(),
                    v.to_string(),
                )),
                Some(_) => {}
                None => some_container_unset = true,
            }
        }
        match pod_value {
            Some(v) if v != wanted => out.push(Violation::new(
                rule,
                pod_path,
                format!("pods run with {field} {wanted}"),
                wanted.to_string(),
                v.to_string(),
            )),
            None if some_container_unset => out.push(Violation::new(
                rule,
                pod_path,
                format!("pods run with {field} {wanted}"),
                wanted.to_string(),
                "unset",
            )),
            _ => {}
        }
    }
}

fn read_only_root(c: &ContainerEntry, out: &mut Vec<Violation>) {
    let value = c
        .container
        .security_context
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem);
    if value != Some(true) {
        out.push(Violation::new(
            RuleId::PodReadOnlyRootFilesystem,
            c.path
                .field("securityContext")
                .field("readOnlyRootFilesystem"),
            "the root filesystem must be read-only",
            "true",
            shown(value),
        ));
    }
}

fn writable_mounts(c: &ContainerEntry, p: &Pods, out: &mut Vec<Violation>) {
    for (i, mount) in c.container.volume_mounts.iter().flatten().enumerate() {
        let writable_path = p
            .scratch_volumes
            .iter()
            .any(|s| within(&mount.mount_path, &s.mount_path));
        if mount.read_only != Some(true) && !writable_path {
            out.push(Violation::new(
                RuleId::PodWritableMount,
                c.path
                    .field("volumeMounts")
                    .item(i, &mount.mount_path)
                    .field("readOnly"),
                format!(
                    "{} is outside the writable paths and must be read-only",
                    mount.mount_path
                ),
                "true",
                shown(mount.read_only),
            ));
        }
    }
}

/// Credential-like variables must come from a Secret. The message never
/// shows the value.
fn credential_env(c: &ContainerEntry, p: &Pods, out: &mut Vec<Violation>) {
    if c.list == ContainerList::Ephemeral {
        return;
    }
    for (i, env) in c.container.env.iter().flatten().enumerate() {
        if !name_pattern::matches_any(&p.credential_env_names, &env.name) {
            continue;
        }
        let from_secret = env
            .value_from
            .as_ref()
            .is_some_and(|v| v.secret_key_ref.is_some());
        let literal = env.value.as_deref().is_some_and(|v| !v.is_empty());
        let path: FieldPath = c.path.field("env").item(i, &env.name);
        if literal {
            out.push(
                Violation::new(
                    RuleId::PodCredentialEnv,
                    path.field("value"),
                    format!(
                        "{} looks like a credential and must come from a Secret",
                        env.name
                    ),
                    "valueFrom.secretKeyRef",
                    "a literal value",
                )
                .with_witness(env.value.as_deref().unwrap_or_default()),
            );
        } else if env.value_from.is_some() && !from_secret {
            out.push(Violation::new(
                RuleId::PodCredentialEnv,
                path.field("valueFrom"),
                format!(
                    "{} looks like a credential and must come from a Secret",
                    env.name
                ),
                "valueFrom.secretKeyRef",
                "another source",
            ));
        }
    }
}
