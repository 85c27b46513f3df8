//! The Pod Security Standard "restricted" profile (latest), one function
//! per `pss.*` rule. Upstream's test fixtures are the oracle
//! (tests/pod_security.rs).

use super::pod_spec::Probe;
use super::pod_template::{ContainerEntry, PodTemplate};
use super::rule::{Context, Rule};
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::api::core::v1::LifecycleHandler;

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

pub const RULES: &[Rule<PodTemplate>] = &[
    Rule::new(RuleId::PssHostNamespaces, host_namespaces),
    Rule::new(RuleId::PssPrivileged, privileged),
    Rule::new(RuleId::PssCapabilities, capabilities),
    Rule::new(RuleId::PssVolumeTypes, volume_types),
    Rule::new(RuleId::PssHostPorts, host_ports),
    Rule::new(RuleId::PssAppArmor, apparmor),
    Rule::new(RuleId::PssSeLinux, selinux),
    Rule::new(RuleId::PssProcMount, proc_mount),
    Rule::new(RuleId::PssSeccomp, seccomp),
    Rule::new(RuleId::PssSysctls, sysctls),
    Rule::new(RuleId::PssWindowsHostProcess, windows_host_process),
    Rule::new(RuleId::PssHostProbes, host_probes),
    Rule::new(RuleId::PssPrivilegeEscalation, allow_privilege_escalation),
    Rule::new(RuleId::PssRunAsNonRoot, run_as_non_root),
    Rule::new(RuleId::PssRunAsUser, run_as_user),
];

/// `pss.host-namespaces`: hostNetwork, hostPID and hostIPC are off.
pub fn host_namespaces(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    let spec = &pod.spec;
    [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ]
    .into_iter()
    .filter(|(_, value)| *value == Some(true))
    .map(|(field, _)| {
        Violation::new(
            RuleId::PssHostNamespaces,
            pod.spec_path().field(field),
            "host namespaces are not allowed",
            "false",
            "true",
        )
    })
    .collect()
}

/// `pss.privileged`: no container is privileged.
pub fn privileged(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    pod.containers
        .iter()
        .filter(|c| security(c).and_then(|s| s.privileged) == Some(true))
        .map(|c| {
            Violation::new(
                RuleId::PssPrivileged,
                c.path.field("securityContext").field("privileged"),
                "privileged containers are not allowed",
                "false",
                "true",
            )
        })
        .collect()
}

/// `pss.capabilities`: every container drops ALL and adds only the allowed
/// ones (Linux only).
pub fn capabilities(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let allowed = &ctx.policy.pod_security.allowed_capabilities;
    let mut out = Vec::new();
    if pod.is_windows() {
        return out;
    }
    for c in &pod.containers {
        let caps = security(c).and_then(|s| s.capabilities.as_ref());
        let caps_path = || c.context_path.field("capabilities");
        let added = caps.and_then(|c| c.add.as_ref()).into_iter().flatten();
        for (i, cap) in added.enumerate() {
            if !allowed.contains(cap) {
                out.push(Violation::new(
                    RuleId::PssCapabilities,
                    caps_path().field("add").item(i, cap),
                    "capability may not be added",
                    format!("only {}", allowed.join(", ")),
                    cap.as_str(),
                ));
            }
        }
        let drop = caps.and_then(|c| c.drop.as_ref());
        if !drop.is_some_and(|d| d.iter().any(|c| c == "ALL")) {
            out.push(Violation::new(
                RuleId::PssCapabilities,
                caps_path().field("drop"),
                "all capabilities must be dropped",
                "[ALL]",
                match drop {
                    Some(d) => format!("[{}]", d.join(", ")),
                    None => "unset".to_owned(),
                },
            ));
        }
    }
    out
}

/// `pss.allow-privilege-escalation`: every container sets it to false
/// (Linux only).
pub fn allow_privilege_escalation(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    if pod.is_windows() {
        return Vec::new();
    }
    pod.containers
        .iter()
        .filter_map(|c| {
            let value = security(c).and_then(|s| s.allow_privilege_escalation);
            (value != Some(false)).then(|| {
                Violation::new(
                    RuleId::PssPrivilegeEscalation,
                    c.path
                        .field("securityContext")
                        .field("allowPrivilegeEscalation"),
                    "privilege escalation must be disabled",
                    "false",
                    shown(value),
                )
            })
        })
        .collect()
}

/// `pss.host-ports`: no container port sets a host port.
pub fn host_ports(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in &pod.containers {
        for (j, port) in c.container.ports.iter().flatten().enumerate() {
            if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
                out.push(Violation::new(
                    RuleId::PssHostPorts,
                    c.path
                        .field("ports")
                        .item(j, &port.container_port.to_string())
                        .field("hostPort"),
                    "host ports are not allowed",
                    "unset or 0",
                    host_port.to_string(),
                ));
            }
        }
    }
    out
}

/// `pss.selinux`: no SELinux user or role, only the allowed types.
pub fn selinux(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let allowed = &ctx.policy.pod_security.allowed_se_linux_types;
    let mut out = Vec::new();
    for sc in pod.security_contexts() {
        let Some(se) = sc.se_linux_options else {
            continue;
        };
        let path = sc.path.field("seLinuxOptions");
        let se_type = se.type_.as_deref().unwrap_or("");
        if !allowed.iter().any(|t| t == se_type) {
            let named: Vec<&str> = allowed
                .iter()
                .map(String::as_str)
                .filter(|t| !t.is_empty())
                .collect();
            out.push(Violation::new(
                RuleId::PssSeLinux,
                path.field("type"),
                "SELinux type is not allowed",
                named.join(" | "),
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
    out
}

/// `pss.seccomp`: nothing is Unconfined, and (on Linux) the pod or every
/// container sets RuntimeDefault or Localhost.
pub fn seccomp(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    let mut out: Vec<Violation> = pod
        .security_contexts()
        .filter_map(|sc| {
            let profile = sc.seccomp_profile.filter(|p| p.type_ == "Unconfined")?;
            Some(Violation::new(
                RuleId::PssSeccomp,
                sc.path.field("seccompProfile").field("type"),
                "seccomp may not be disabled",
                "RuntimeDefault | Localhost",
                profile.type_.as_str(),
            ))
        })
        .collect();
    if pod.is_windows() {
        return out;
    }
    let restricted = |type_: &str| type_ == "RuntimeDefault" || type_ == "Localhost";
    let pod_profile = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    if pod_profile.is_some_and(|p| restricted(&p.type_)) {
        return out;
    }
    for c in &pod.containers {
        if security(c)
            .and_then(|s| s.seccomp_profile.as_ref())
            .is_none()
        {
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
    out
}

/// `pss.apparmor`: no profile or annotation is Unconfined.
pub fn apparmor(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    let mut out: Vec<Violation> = pod
        .security_contexts()
        .filter(|sc| sc.app_armor_type == Some("Unconfined"))
        .map(|sc| {
            Violation::new(
                RuleId::PssAppArmor,
                sc.path.field("appArmorProfile").field("type"),
                "AppArmor may not be disabled",
                "RuntimeDefault | Localhost",
                "Unconfined",
            )
        })
        .collect();
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
    out
}

/// `pss.windows-host-process`: no Windows host process.
pub fn windows_host_process(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    pod.security_contexts()
        .filter(|sc| sc.host_process == Some(true))
        .map(|sc| {
            Violation::new(
                RuleId::PssWindowsHostProcess,
                sc.path.field("windowsOptions").field("hostProcess"),
                "Windows host process containers are not allowed",
                "false",
                "true",
            )
        })
        .collect()
}

/// `pss.run-as-user`: nothing runs as UID 0.
pub fn run_as_user(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    pod.security_contexts()
        .filter(|sc| sc.run_as_user == Some(0))
        .map(|sc| {
            Violation::new(
                RuleId::PssRunAsUser,
                sc.path.field("runAsUser"),
                "containers may not run as root",
                "a non-zero UID",
                "0",
            )
        })
        .collect()
}

/// `pss.proc-mount`: the default /proc mask.
pub fn proc_mount(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    pod.containers
        .iter()
        .filter_map(|c| {
            let mount = security(c)
                .and_then(|s| s.proc_mount.as_deref())
                .filter(|m| *m != "Default")?;
            Some(Violation::new(
                RuleId::PssProcMount,
                c.path.field("securityContext").field("procMount"),
                "the default /proc mask is required",
                "Default",
                mount,
            ))
        })
        .collect()
}

/// `pss.host-probes`: probes and lifecycle handlers target no other host.
pub fn host_probes(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for entry in &pod.containers {
        let c = &entry.container;
        let probes: [(&str, Option<&Probe>); 3] = [
            ("livenessProbe", c.liveness_probe.as_deref()),
            ("readinessProbe", c.readiness_probe.as_deref()),
            ("startupProbe", c.startup_probe.as_deref()),
        ];
        for (field, probe) in probes {
            if let Some(probe) = probe {
                let http = probe.http_get.as_ref().and_then(|h| h.host.as_deref());
                let tcp = probe.tcp_socket.as_ref().and_then(|t| t.host.as_deref());
                host_fields(|| entry.path.field(field), http, tcp, &mut out);
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
                let path = || entry.path.field("lifecycle").field(field);
                host_fields(path, http, tcp, &mut out);
            }
        }
    }
    out
}

/// `path` is built only for a violation: most handlers name no host.
fn host_fields(
    path: impl Fn() -> FieldPath,
    http: Option<&str>,
    tcp: Option<&str>,
    out: &mut Vec<Violation>,
) {
    for (handler, host) in [("httpGet", http), ("tcpSocket", tcp)] {
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            out.push(Violation::new(
                RuleId::PssHostProbes,
                path().field(handler).field("host"),
                "probes and lifecycle handlers may not target another host",
                "unset",
                host,
            ));
        }
    }
}

/// `pss.volume-types`: only the allowed volume sources (a volume's type is
/// its one field besides `name`; none defaults to emptyDir).
pub fn volume_types(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let allowed = &ctx.policy.pod_security.allowed_volume_types;
    let mut out = Vec::new();
    let volumes = pod.spec.volumes.iter().flatten();
    for (i, volume) in volumes.enumerate() {
        let sources = volume.sources.iter().map(|s| s.as_ref());
        for source in sources.filter(|s| !allowed.iter().any(|a| a == s)) {
            out.push(Violation::new(
                RuleId::PssVolumeTypes,
                pod.volume_path(i).field(source),
                "volume type is not allowed",
                allowed.join(" | "),
                source,
            ));
        }
    }
    out
}

/// `pss.sysctls`: only the safe sysctls.
pub fn sysctls(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let safe = &ctx.policy.pod_security.safe_sysctls;
    let Some(sc) = pod.spec.security_context.as_ref() else {
        return Vec::new();
    };
    let path = || pod.spec_path().field("securityContext").field("sysctls");
    sc.sysctls
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, s)| !safe.contains(&s.name))
        .map(|(i, sysctl)| {
            Violation::new(
                RuleId::PssSysctls,
                path().item(i, &sysctl.name).field("name"),
                "sysctl is not in the safe set",
                "a safe sysctl",
                sysctl.name.as_str(),
            )
        })
        .collect()
}

/// `pss.run-as-non-root`: the pod sets runAsNonRoot: true, or every
/// container does; nothing sets it to false.
pub fn run_as_non_root(pod: &PodTemplate, _: &Context) -> Vec<Violation> {
    let pod_value = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root);
    let mut out = Vec::new();
    if pod_value == Some(false) {
        out.push(Violation::new(
            RuleId::PssRunAsNonRoot,
            pod.spec_path()
                .field("securityContext")
                .field("runAsNonRoot"),
            "pods must run as non-root",
            "true",
            "false",
        ));
    }
    for c in &pod.containers {
        let value = security(c).and_then(|s| s.run_as_non_root);
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
    out
}

fn security(c: &ContainerEntry) -> Option<&k8s_openapi::api::core::v1::SecurityContext> {
    c.container.security_context.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::pod_template::tests::deployment;
    use crate::kinds::rule::tests::ctx;
    use serde_json::json;

    /// The paths of a rule's violations for this pod spec.
    fn paths(
        check: fn(&PodTemplate, &Context) -> Vec<Violation>,
        spec: serde_json::Value,
    ) -> Vec<String> {
        check(&deployment(spec), &ctx())
            .into_iter()
            .map(|v| v.path)
            .collect()
    }

    const C0: &str = "spec.template.spec.containers[0]";

    #[test]
    fn host_namespaces_each_reported() {
        assert_eq!(
            paths(
                host_namespaces,
                json!({"hostPID": true, "hostIPC": false, "containers": []})
            ),
            ["spec.template.spec.hostPID"]
        );
        assert!(paths(host_namespaces, json!({"containers": []})).is_empty());
    }

    #[test]
    fn privileged_container() {
        let spec = json!({"containers": [{"name": "a", "securityContext": {"privileged": true}}, {"name": "b", "securityContext": {"privileged": false}}]});
        assert_eq!(
            paths(privileged, spec),
            [format!("{C0}.securityContext.privileged")]
        );
    }

    #[test]
    fn capabilities_drop_all_add_only_allowed() {
        let ok = json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]});
        assert!(paths(capabilities, ok).is_empty());
        let bad = json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"drop": ["NET_RAW"], "add": ["SYS_ADMIN"]}}}]});
        assert_eq!(
            paths(capabilities, bad),
            [
                format!("{C0}.securityContext.capabilities.add[0]"),
                format!("{C0}.securityContext.capabilities.drop")
            ]
        );
        let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
        assert!(paths(capabilities, windows).is_empty());
    }

    #[test]
    fn privilege_escalation_must_be_false() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "b", "securityContext": {"allowPrivilegeEscalation": false}}]});
        assert_eq!(
            paths(allow_privilege_escalation, spec),
            [format!("{C0}.securityContext.allowPrivilegeEscalation")]
        );
    }

    #[test]
    fn host_ports_other_than_zero() {
        let spec = json!({"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "hostPort": 8081}]}]});
        assert_eq!(paths(host_ports, spec), [format!("{C0}.ports[1].hostPort")]);
    }

    #[test]
    fn selinux_types_users_and_roles() {
        let spec = json!({"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "root"}}, "containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_t"}}}]});
        assert_eq!(
            paths(selinux, spec),
            [
                "spec.template.spec.securityContext.seLinuxOptions.type",
                "spec.template.spec.securityContext.seLinuxOptions.user"
            ]
        );
    }

    #[test]
    fn seccomp_required_and_never_unconfined() {
        let pod_level = json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "a"}]});
        assert!(paths(seccomp, pod_level).is_empty());
        let unset = json!({"containers": [{"name": "a"}]});
        assert_eq!(
            paths(seccomp, unset),
            [format!("{C0}.securityContext.seccompProfile.type")]
        );
        let unconfined = json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]});
        assert_eq!(
            paths(seccomp, unconfined),
            [format!("{C0}.securityContext.seccompProfile.type")]
        );
    }

    #[test]
    fn apparmor_profiles_and_annotations() {
        let spec = json!({"containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]});
        assert_eq!(
            paths(apparmor, spec),
            [format!("{C0}.securityContext.appArmorProfile.type")]
        );
        let doc = json!({"spec": {"template": {"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}}, "spec": {"containers": [{"name": "a"}]}}}});
        let pod = PodTemplate::read(crate::kind::Kind::Deployment, &doc).unwrap();
        assert_eq!(apparmor(&pod, &ctx()).len(), 1);
    }

    #[test]
    fn windows_host_process_and_root_user() {
        let spec = json!({"securityContext": {"runAsUser": 0, "windowsOptions": {"hostProcess": true}}, "containers": [{"name": "a", "securityContext": {"runAsUser": 1000}}]});
        assert_eq!(
            paths(windows_host_process, spec.clone()),
            ["spec.template.spec.securityContext.windowsOptions.hostProcess"]
        );
        assert_eq!(
            paths(run_as_user, spec),
            ["spec.template.spec.securityContext.runAsUser"]
        );
    }

    #[test]
    fn proc_mount_default_only() {
        let spec = json!({"containers": [{"name": "a", "securityContext": {"procMount": "Unmasked"}}, {"name": "b", "securityContext": {"procMount": "Default"}}]});
        assert_eq!(
            paths(proc_mount, spec),
            [format!("{C0}.securityContext.procMount")]
        );
    }

    #[test]
    fn probes_and_handlers_without_host() {
        let spec = json!({"containers": [{"name": "a",
            "livenessProbe": {"httpGet": {"port": 80, "host": "10.0.0.1"}},
            "lifecycle": {"preStop": {"tcpSocket": {"port": 80, "host": "example.com"}}}}]});
        assert_eq!(
            paths(host_probes, spec),
            [
                format!("{C0}.livenessProbe.httpGet.host"),
                format!("{C0}.lifecycle.preStop.tcpSocket.host")
            ]
        );
    }

    #[test]
    fn volume_types_and_sysctls() {
        let spec = json!({"volumes": [{"name": "ok", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/"}}],
            "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}]},
            "containers": []});
        assert_eq!(
            paths(volume_types, spec.clone()),
            ["spec.template.spec.volumes[1].hostPath"]
        );
        assert_eq!(
            paths(sysctls, spec),
            ["spec.template.spec.securityContext.sysctls[1].name"]
        );
    }

    #[test]
    fn run_as_non_root_on_pod_or_every_container() {
        let on_pod =
            json!({"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a"}]});
        assert!(paths(run_as_non_root, on_pod).is_empty());
        let one_container = json!({"containers": [{"name": "a", "securityContext": {"runAsNonRoot": true}}, {"name": "b"}]});
        assert_eq!(
            paths(run_as_non_root, one_container),
            ["spec.template.spec.containers[1].securityContext.runAsNonRoot"]
        );
    }
}
