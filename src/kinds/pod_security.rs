//! The Pod Security Standard "restricted" profile (latest), as its own rule
//! group. Upstream's test fixtures are the oracle (tests/pod_security.rs).

use super::workload::{ContainerEntry, PodTemplate};
use crate::policy::PodSecurity;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::api::core::v1::{
    Capabilities, LifecycleHandler, Probe, SELinuxOptions, SeccompProfile, SecurityContext,
};

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

pub fn validate(pod: &PodTemplate, policy: &PodSecurity) -> Vec<Violation> {
    let mut out = Vec::new();
    host_namespaces(pod, &mut out);
    for c in &pod.containers {
        container_checks(pod, c, policy, &mut out);
    }
    volume_types(pod, policy, &mut out);
    apparmor_annotations(pod, &mut out);
    pod_security_context(pod, policy, &mut out);
    if !pod.is_windows() {
        seccomp_restricted(pod, &mut out);
    }
    run_as_non_root(pod, &mut out);
    out
}

fn host_namespaces(pod: &PodTemplate, out: &mut Vec<Violation>) {
    let spec = &pod.spec;
    for (field, value) in [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ] {
        if value == Some(true) {
            out.push(Violation::new(
                RuleId::PssHostNamespaces,
                pod.spec_path().field(field),
                "host namespaces are not allowed",
                "false",
                "true",
            ));
        }
    }
}

fn container_checks(
    pod: &PodTemplate,
    entry: &ContainerEntry,
    policy: &PodSecurity,
    out: &mut Vec<Violation>,
) {
    let c = &entry.container;
    let sc_path = entry.path.field("securityContext");
    let sc = c.security_context.as_ref();
    let windows = pod.is_windows();

    if sc.and_then(|s| s.privileged) == Some(true) {
        out.push(Violation::new(
            RuleId::PssPrivileged,
            sc_path.field("privileged"),
            "privileged containers are not allowed",
            "false",
            "true",
        ));
    }
    if !windows {
        capabilities(
            sc.and_then(|s| s.capabilities.as_ref()),
            &sc_path,
            policy,
            out,
        );
        if sc.and_then(|s| s.allow_privilege_escalation) != Some(false) {
            out.push(Violation::new(
                RuleId::PssPrivilegeEscalation,
                sc_path.field("allowPrivilegeEscalation"),
                "privilege escalation must be disabled",
                "false",
                shown(sc.and_then(|s| s.allow_privilege_escalation)),
            ));
        }
    }
    for (j, port) in c.ports.iter().flatten().enumerate() {
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            out.push(Violation::new(
                RuleId::PssHostPorts,
                entry
                    .path
                    .field("ports")
                    .item(j, &port.container_port.to_string())
                    .field("hostPort"),
                "host ports are not allowed",
                "unset or 0",
                host_port.to_string(),
            ));
        }
    }
    if let Some(sc) = sc {
        security_context_common(
            &sc_path,
            sc.se_linux_options.as_ref(),
            sc.seccomp_profile.as_ref(),
            sc.app_armor_profile.as_ref().map(|p| p.type_.as_str()),
            sc.windows_options.as_ref().and_then(|w| w.host_process),
            sc.run_as_user,
            policy,
            out,
        );
        proc_mount(sc, &sc_path, out);
    }
    host_probes(entry, out);
}

fn capabilities(
    caps: Option<&Capabilities>,
    sc_path: &FieldPath,
    policy: &PodSecurity,
    out: &mut Vec<Violation>,
) {
    let caps_path = sc_path.field("capabilities");
    for (i, cap) in caps
        .and_then(|c| c.add.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !policy.allowed_capabilities.contains(cap) {
            out.push(Violation::new(
                RuleId::PssCapabilities,
                caps_path.field("add").item(i, cap),
                "capability may not be added",
                format!("only {}", policy.allowed_capabilities.join(", ")),
                cap.as_str(),
            ));
        }
    }
    let drop = caps.and_then(|c| c.drop.as_ref());
    if !drop.is_some_and(|d| d.iter().any(|c| c == "ALL")) {
        out.push(Violation::new(
            RuleId::PssCapabilities,
            caps_path.field("drop"),
            "all capabilities must be dropped",
            "[ALL]",
            match drop {
                Some(d) => format!("[{}]", d.join(", ")),
                None => "unset".to_owned(),
            },
        ));
    }
}

/// Checks shared by the pod-level and container-level security contexts.
#[allow(clippy::too_many_arguments)]
fn security_context_common(
    sc_path: &FieldPath,
    se_linux: Option<&SELinuxOptions>,
    seccomp: Option<&SeccompProfile>,
    apparmor_type: Option<&str>,
    host_process: Option<bool>,
    run_as_user: Option<i64>,
    policy: &PodSecurity,
    out: &mut Vec<Violation>,
) {
    if let Some(se) = se_linux {
        let path = sc_path.field("seLinuxOptions");
        let se_type = se.type_.as_deref().unwrap_or("");
        if !policy.allowed_se_linux_types.iter().any(|t| t == se_type) {
            out.push(Violation::new(
                RuleId::PssSeLinux,
                path.field("type"),
                "SELinux type is not allowed",
                policy
                    .allowed_se_linux_types
                    .iter()
                    .filter(|t| !t.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" | "),
                se_type,
            ));
        }
        for (field, value) in [("user", &se.user), ("role", &se.role)] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                out.push(Violation::new(
                    RuleId::PssSeLinux,
                    path.field(field),
                    format!("SELinux {field} may not be set"),
                    "unset",
                    v,
                ));
            }
        }
    }
    if let Some(profile) = seccomp.filter(|p| p.type_ == "Unconfined") {
        out.push(Violation::new(
            RuleId::PssSeccomp,
            sc_path.field("seccompProfile").field("type"),
            "seccomp may not be disabled",
            "RuntimeDefault | Localhost",
            profile.type_.as_str(),
        ));
    }
    if apparmor_type == Some("Unconfined") {
        out.push(Violation::new(
            RuleId::PssAppArmor,
            sc_path.field("appArmorProfile").field("type"),
            "AppArmor may not be disabled",
            "RuntimeDefault | Localhost",
            "Unconfined",
        ));
    }
    if host_process == Some(true) {
        out.push(Violation::new(
            RuleId::PssWindowsHostProcess,
            sc_path.field("windowsOptions").field("hostProcess"),
            "Windows host process containers are not allowed",
            "false",
            "true",
        ));
    }
    if run_as_user == Some(0) {
        out.push(Violation::new(
            RuleId::PssRunAsUser,
            sc_path.field("runAsUser"),
            "containers may not run as root",
            "a non-zero UID",
            "0",
        ));
    }
}

fn proc_mount(sc: &SecurityContext, sc_path: &FieldPath, out: &mut Vec<Violation>) {
    if let Some(mount) = sc.proc_mount.as_deref().filter(|m| *m != "Default") {
        out.push(Violation::new(
            RuleId::PssProcMount,
            sc_path.field("procMount"),
            "the default /proc mask is required",
            "Default",
            mount,
        ));
    }
}

fn host_probes(entry: &ContainerEntry, out: &mut Vec<Violation>) {
    let c = &entry.container;
    let probes: [(&str, Option<&Probe>); 3] = [
        ("livenessProbe", c.liveness_probe.as_ref()),
        ("readinessProbe", c.readiness_probe.as_ref()),
        ("startupProbe", c.startup_probe.as_ref()),
    ];
    for (field, probe) in probes {
        if let Some(probe) = probe {
            let http = probe.http_get.as_ref().and_then(|h| h.host.as_deref());
            let tcp = probe.tcp_socket.as_ref().and_then(|t| t.host.as_deref());
            host_field(&entry.path.field(field), http, tcp, out);
        }
    }
    let lifecycle = c.lifecycle.as_ref();
    let handlers: [(&str, Option<&LifecycleHandler>); 2] = [
        ("postStart", lifecycle.and_then(|l| l.post_start.as_ref())),
        ("preStop", lifecycle.and_then(|l| l.pre_stop.as_ref())),
    ];
    for (field, handler) in handlers {
        if let Some(h) = handler {
            let http = h.http_get.as_ref().and_then(|h| h.host.as_deref());
            let tcp = h.tcp_socket.as_ref().and_then(|t| t.host.as_deref());
            host_field(&entry.path.field("lifecycle").field(field), http, tcp, out);
        }
    }
}

fn host_field(path: &FieldPath, http: Option<&str>, tcp: Option<&str>, out: &mut Vec<Violation>) {
    for (handler, host) in [("httpGet", http), ("tcpSocket", tcp)] {
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            out.push(Violation::new(
                RuleId::PssHostProbes,
                path.field(handler).field("host"),
                "probes and lifecycle handlers may not target another host",
                "unset",
                host,
            ));
        }
    }
}

fn volume_types(pod: &PodTemplate, policy: &PodSecurity, out: &mut Vec<Violation>) {
    // A volume's type is its one field besides `name`; none defaults to emptyDir.
    for (i, sources) in pod.volume_sources.iter().enumerate() {
        for source in sources {
            if !policy.allowed_volume_types.contains(source) {
                out.push(Violation::new(
                    RuleId::PssVolumeTypes,
                    pod.spec_path()
                        .field("volumes")
                        .item(i, pod.volume_name(i))
                        .field(source),
                    "volume type is not allowed",
                    policy.allowed_volume_types.join(" | "),
                    source.as_str(),
                ));
            }
        }
    }
}

fn apparmor_annotations(pod: &PodTemplate, out: &mut Vec<Violation>) {
    for (key, value) in pod.meta.annotations.iter().flatten() {
        if key.starts_with(APPARMOR_ANNOTATION_PREFIX)
            && !(value.is_empty() || value == "runtime/default" || value.starts_with("localhost/"))
        {
            out.push(Violation::new(
                RuleId::PssAppArmor,
                pod.meta_path().field("annotations").key(key),
                "AppArmor may not be disabled",
                "runtime/default | localhost/<profile>",
                value.as_str(),
            ));
        }
    }
}

fn pod_security_context(pod: &PodTemplate, policy: &PodSecurity, out: &mut Vec<Violation>) {
    let Some(sc) = pod.spec.security_context.as_ref() else {
        return;
    };
    let sc_path = pod.spec_path().field("securityContext");
    security_context_common(
        &sc_path,
        sc.se_linux_options.as_ref(),
        sc.seccomp_profile.as_ref(),
        sc.app_armor_profile.as_ref().map(|p| p.type_.as_str()),
        sc.windows_options.as_ref().and_then(|w| w.host_process),
        sc.run_as_user,
        policy,
        out,
    );
    for (i, sysctl) in sc.sysctls.iter().flatten().enumerate() {
        if !policy.safe_sysctls.contains(&sysctl.name) {
            out.push(Violation::new(
                RuleId::PssSysctls,
                sc_path.field("sysctls").item(i, &sysctl.name).field("name"),
                "sysctl is not in the safe set",
                "a safe sysctl",
                sysctl.name.as_str(),
            ));
        }
    }
}

fn is_restricted_seccomp(profile: Option<&SeccompProfile>) -> bool {
    profile.is_some_and(|p| p.type_ == "RuntimeDefault" || p.type_ == "Localhost")
}

/// The pod sets RuntimeDefault/Localhost, or every container does.
/// (Explicit Unconfined is reported by the common check.)
fn seccomp_restricted(pod: &PodTemplate, out: &mut Vec<Violation>) {
    let pod_profile = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    if is_restricted_seccomp(pod_profile) {
        return;
    }
    for c in &pod.containers {
        let profile = c
            .container
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref());
        if profile.is_none() {
            out.push(Violation::new(
                RuleId::PssSeccomp,
                c.path
                    .field("securityContext")
                    .field("seccompProfile")
                    .field("type"),
                "a seccomp profile is required on the pod or every container",
                "RuntimeDefault | Localhost",
                "unset",
            ));
        }
    }
}

/// The pod sets runAsNonRoot: true, or every container does; nothing sets
/// it to false.
fn run_as_non_root(pod: &PodTemplate, out: &mut Vec<Violation>) {
    let pod_value = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root);
    let pod_path = pod
        .spec_path()
        .field("securityContext")
        .field("runAsNonRoot");
    if pod_value == Some(false) {
        out.push(Violation::new(
            RuleId::PssRunAsNonRoot,
            &pod_path,
            "pods must run as non-root",
            "true",
            "false",
        ));
    }
    for c in &pod.containers {
        let value = c
            .container
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_non_root);
        let unset_without_pod = value.is_none() && pod_value != Some(true);
        if value == Some(false) || unset_without_pod {
            out.push(Violation::new(
                RuleId::PssRunAsNonRoot,
                c.path.field("securityContext").field("runAsNonRoot"),
                "containers must run as non-root (set it here or on the pod)",
                "true",
                shown(value),
            ));
        }
    }
}
