//! The gateway container (README: Rules, `gateway.*`): image, port, config,
//! probes, resources, strategy mount, labels and metrics annotations. One
//! function per rule, one per injected group.

use super::pod_spec::{Container, Probe};
use super::pod_template::{same_path, within, ContainerEntry, ContainerList, PodTemplate};
use super::rule::{Context, Injection, Rule};
use crate::image::ImageRef;
use crate::name_pattern;
use crate::patch::PatchBuilder;
use crate::policy::{Gateway, Policy};
use crate::quantity::Quantity;
use crate::rules::RuleId;
use crate::violation::{shown, Violation};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

pub const RULES: &[Rule<PodTemplate>] = &[
    Rule::new(RuleId::GatewayImage, image),
    Rule::new(RuleId::GatewayLabels, labels),
    Rule::new(RuleId::GatewayVersionLabel, version_label),
    Rule::new(RuleId::GatewayPort, port),
    Rule::new(RuleId::GatewayConfigEnv, config_env),
    Rule::new(RuleId::GatewayProbes, probes),
    Rule::new(RuleId::GatewayResources, resources),
    Rule::new(RuleId::GatewayStrategyMount, strategy_mount),
    Rule::new(RuleId::GatewayMounts, mounts),
    Rule::new(RuleId::GatewayMetricsAnnotations, metrics_annotations),
    Rule::new(RuleId::GatewayConfigOverride, config_override),
    Rule::new(RuleId::GatewayEntrypoint, entrypoint),
    Rule::new(RuleId::GatewayEnv, env),
    Rule::new(RuleId::GatewayNameResolution, name_resolution),
];

/// What the mutating webhook adds to a gateway pod, group by group (each
/// returns the group's name when it added something).
pub const INJECTIONS: &[Injection<PodTemplate>] = &[
    Injection {
        inject: inject_port,
    },
    Injection {
        inject: inject_env_from,
    },
    Injection {
        inject: inject_probes,
    },
    Injection {
        inject: inject_resources,
    },
    Injection {
        inject: inject_strategy_mount,
    },
    Injection {
        inject: inject_labels,
    },
    Injection {
        inject: inject_metrics_annotations,
    },
];

/// Whether the container runs with the pod: a regular container, or an
/// init container that keeps running (`restartPolicy: Always`, a sidecar).
fn serving(c: &ContainerEntry) -> bool {
    match c.list {
        ContainerList::Regular => true,
        ContainerList::Init => c.container.restart_policy.as_deref() == Some("Always"),
        ContainerList::Ephemeral => false,
    }
}

fn runs_gateway_image(c: &ContainerEntry, g: &Gateway) -> bool {
    c.container
        .image
        .as_deref()
        .is_some_and(|image| g.is_pinned_reference(image))
        || c.runs_image_of(g.repository())
}

/// Whether the pod carries the gateway's labels: what routes the gateway's
/// traffic to it.
fn labelled_as_gateway(pod: &PodTemplate, g: &Gateway) -> bool {
    super::rule::has_labels(pod.meta.labels.as_ref(), &g.labels)
}

/// The gateway containers of a pod, held inline: nearly every pod has one,
/// and most rules ask for them.
pub type GatewayContainers<'a> = smallvec::SmallVec<[&'a ContainerEntry; 2]>;

/// The containers judged as the gateway: the serving containers running
/// the gateway image (however its reference is spelled); in a pod with none
/// but labelled as the gateway, whatever would answer the gateway's traffic:
/// the serving containers exposing the gateway port, or else its first
/// container. (The labels decide only when no image does, so that
/// injecting them cannot change which containers are the gateway.)
pub fn gateway_containers<'a>(pod: &'a PodTemplate, g: &Gateway) -> GatewayContainers<'a> {
    let by_image: GatewayContainers = pod
        .containers
        .iter()
        .filter(|c| serving(c) && runs_gateway_image(c, g))
        .collect();
    if !by_image.is_empty() || !labelled_as_gateway(pod, g) {
        return by_image;
    }
    let exposes_port = |c: &&ContainerEntry| {
        c.container.ports.iter().flatten().any(|p| {
            p.container_port == g.port.container_port
                || p.name.as_deref() == Some(g.port.name.as_str())
        })
    };
    let serving_containers = pod.containers.iter().filter(|c| serving(c));
    let by_port: GatewayContainers = serving_containers.filter(exposes_port).collect();
    if !by_port.is_empty() {
        return by_port;
    }
    pod.containers
        .iter()
        .find(|c| c.list == ContainerList::Regular)
        .into_iter()
        .collect()
}

fn is_gateway_pod(pod: &PodTemplate, g: &Gateway) -> bool {
    !gateway_containers(pod, g).is_empty()
}

#[derive(Clone, Copy)]
enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

impl ProbeKind {
    const ALL: [ProbeKind; 3] = [
        ProbeKind::Startup,
        ProbeKind::Readiness,
        ProbeKind::Liveness,
    ];

    fn field(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Readiness => "readinessProbe",
            ProbeKind::Liveness => "livenessProbe",
        }
    }

    fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Startup => c.startup_probe.as_deref(),
            ProbeKind::Readiness => c.readiness_probe.as_deref(),
            ProbeKind::Liveness => c.liveness_probe.as_deref(),
        }
    }

    /// The probe mutation adds.
    fn default_probe(self, g: &Gateway) -> serde_json::Value {
        let handler = json!({"path": g.probes.path, "port": g.probes.port});
        match self {
            ProbeKind::Startup => json!({
                "httpGet": handler,
                "periodSeconds": g.probes.startup.period_seconds,
                "failureThreshold": g.probes.startup.failure_threshold,
            }),
            ProbeKind::Readiness => json!({
                "httpGet": handler,
                "periodSeconds": g.probes.readiness.period_seconds,
            }),
            ProbeKind::Liveness => json!({
                "httpGet": handler,
                "periodSeconds": g.probes.liveness.period_seconds,
            }),
        }
    }
}

// === impl rules ===

/// `gateway.image`: every gateway container, and every container anywhere
/// that runs the gateway image, runs exactly the pinned release (a digest
/// only from the policy's list: the runtime pulls by digest whatever the
/// tag says); and a gateway pod runs nothing but the gateway and the
/// policy's sidecars, so that no other container can take its port or
/// prepare what the gateway reads (an init container writing a file a
/// scratch volume carries into it).
pub fn image(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let g = &ctx.policy.gateway;
    let gateways = gateway_containers(pod, g);
    let is_gateway = |c: &ContainerEntry| gateways.iter().any(|gc| std::ptr::eq(*gc, c));
    let gateway_pod = !gateways.is_empty();
    let sidecar = |image: &str| {
        ImageRef::parse(image).is_ok_and(|r| {
            g.sidecar_images
                .iter()
                .any(|s| ImageRef::parse(s).is_ok_and(|s| s.repository == r.repository))
        })
    };
    let expected = || {
        let digests = if g.digests.is_empty() {
            String::new()
        } else {
            format!(" (or @{})", g.digests.join(" | @"))
        };
        format!("{}{digests}", g.image_reference())
    };
    let mut out = Vec::new();
    for c in &pod.containers {
        let image = c.container.image.as_deref().unwrap_or_default();
        let judged_as_gateway = is_gateway(c) || runs_gateway_image(c, g);
        if judged_as_gateway && !g.pins(image) {
            out.push(Violation::new(
                RuleId::GatewayImage,
                c.path.field("image"),
                "the gateway runs the pinned release",
                expected(),
                image,
            ));
        } else if gateway_pod
            && !judged_as_gateway
            && c.list != ContainerList::Ephemeral
            && !sidecar(image)
        {
            out.push(Violation::new(
                RuleId::GatewayImage,
                c.path.field("image"),
                "a gateway pod runs only the gateway and the policy's sidecars",
                format!("{} or a sidecar of gateway.sidecarImages", expected()),
                image,
            ));
        }
    }
    out
}

/// `gateway.labels`: the workload and its template carry the gateway's
/// labels.
pub fn labels(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let g = &ctx.policy.gateway;
    if !is_gateway_pod(pod, g) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (meta, path) in pod.metas() {
        for (key, value) in &g.labels {
            let actual = meta.labels.as_ref().and_then(|l| l.get(key));
            if actual != Some(value) {
                out.push(Violation::new(
                    RuleId::GatewayLabels,
                    path.field("labels").key(key),
                    "the gateway is selected by this label",
                    value.as_str(),
                    shown(actual),
                ));
            }
        }
    }
    out
}

/// `gateway.version-label`: the version label names the pinned release,
/// which is the image's tag (a wrong tag is the image rule's to report: the
/// label never asks for a version that is itself denied).
pub fn version_label(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let g = &ctx.policy.gateway;
    if !is_gateway_pod(pod, g) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (meta, path) in pod.metas() {
        let actual = meta.labels.as_ref().and_then(|l| l.get(&g.version_label));
        if actual != Some(&g.version) {
            out.push(Violation::new(
                RuleId::GatewayVersionLabel,
                path.field("labels").key(&g.version_label),
                "the version label names the pinned release",
                g.version.as_str(),
                shown(actual),
            ));
        }
    }
    out
}

/// `gateway.port`: the named container port.
pub fn port(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let g = &ctx.policy.gateway;
    let mut out = Vec::new();
    for c in gateway_containers(pod, g) {
        let ports = c.container.ports.as_deref().unwrap_or_default();
        let ok = ports.iter().any(|p| {
            p.container_port == g.port.container_port
                && p.name.as_deref() == Some(g.port.name.as_str())
        });
        if ok {
            continue;
        }
        let actual: Vec<String> = ports
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.name.as_deref().unwrap_or("unnamed"),
                    p.container_port
                )
            })
            .collect();
        out.push(Violation::new(
            RuleId::GatewayPort,
            c.path.field("ports"),
            "the gateway listens on its named port",
            format!("{}/{}", g.port.name, g.port.container_port),
            if actual.is_empty() {
                "no ports".to_owned()
            } else {
                actual.join(", ")
            },
        ));
    }
    out
}

/// `gateway.config-env`: envFrom the gateway ConfigMap.
pub fn config_env(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let g = &ctx.policy.gateway;
    let wanted = format!("configMapRef {}", g.env_from_config_map);
    let mut out = Vec::new();
    for c in gateway_containers(pod, g) {
        if !has_env_from(&c.container, &g.env_from_config_map) {
            out.push(Violation::new(
                RuleId::GatewayConfigEnv,
                c.path.field("envFrom"),
                "the gateway must read its settings from the gateway ConfigMap",
                wanted.as_str(),
                "no such envFrom",
            ));
        }
        // Anything else, or a prefix, would bring in variables no rule
        // reads (a credential, an override); optional would let the
        // settings go missing with the ConfigMap.
        for (i, source) in c.container.env_from.iter().flatten().enumerate() {
            let exact = source.secret_ref.is_none()
                && source.prefix.as_deref().is_none_or(str::is_empty)
                && source.config_map_ref.as_ref().is_some_and(|r| {
                    name_pattern::is_generated_from(&g.env_from_config_map, &r.name)
                        && r.optional != Some(true)
                });
            if !exact {
                out.push(Violation::new(
                    RuleId::GatewayConfigEnv,
                    c.path.field("envFrom").index(i),
                    "the gateway takes envFrom its ConfigMap only, without prefix and not optional",
                    wanted.as_str(),
                    "another source, a prefix or optional",
                ));
            }
        }
    }
    out
}

/// `gateway.entrypoint`: the gateway runs its image's own entrypoint; a
/// command, args, a lifecycle hook or another working directory (npm reads
/// the `package.json` it finds there) would run other code with its
/// credentials.
pub fn entrypoint(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in gateway_containers(pod, &ctx.policy.gateway) {
        let set = [
            (
                "command",
                c.container.command.as_ref().is_some_and(|v| !v.is_empty()),
            ),
            (
                "args",
                c.container.args.as_ref().is_some_and(|v| !v.is_empty()),
            ),
            ("lifecycle", c.container.lifecycle.is_some()),
            (
                "workingDir",
                c.container
                    .working_dir
                    .as_ref()
                    .is_some_and(|d| !d.is_empty()),
            ),
        ];
        for (field, is_set) in set {
            if is_set {
                out.push(Violation::new(
                    RuleId::GatewayEntrypoint,
                    c.path.field(field),
                    "the gateway runs its image's own entrypoint",
                    "unset",
                    "set",
                ));
            }
        }
    }
    out
}

/// `gateway.env`: the gateway's env holds its production settings (judged
/// by `gateway.config-override`), credentials from Secrets, and the
/// policy's allowed names; nothing that changes how it runs
/// (`NODE_OPTIONS`, proxies, TLS verification) or brings a literal under
/// an innocent name.
pub fn env(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let p = ctx.policy;
    let g = &p.gateway;
    let mut out = Vec::new();
    for c in gateway_containers(pod, g) {
        for (i, var) in c.container.env.iter().flatten().enumerate() {
            // Where a credential comes from is pod.credential-env's to judge.
            let credential =
                crate::name_pattern::matches_any(&p.pods.credential_env_names, &var.name);
            if !(p.gateway_may_set(&var.name) || credential) {
                out.push(Violation::new(
                    RuleId::GatewayEnv,
                    c.path.field("env").item(i, &var.name).field("name"),
                    format!("{} is not an env var the gateway may set", var.name),
                    "a production setting, a credential from a Secret, or gateway.allowedEnv",
                    var.name.as_str(),
                ));
            }
        }
    }
    out
}

/// `gateway.name-resolution`: a gateway pod resolves the providers' names
/// through the cluster's DNS; hostAliases or a DNS of its own would send
/// its credentials and prompts elsewhere.
pub fn name_resolution(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    if !is_gateway_pod(pod, &ctx.policy.gateway) {
        return Vec::new();
    }
    let spec = &pod.spec;
    let set = [
        (
            "hostAliases",
            spec.host_aliases.as_ref().is_some_and(|h| !h.is_empty()),
        ),
        // `Default` takes the node's resolver, `None` only `dnsConfig`.
        (
            "dnsPolicy",
            spec.dns_policy
                .as_deref()
                .is_some_and(|p| !matches!(p, "ClusterFirst" | "ClusterFirstWithHostNet")),
        ),
        ("dnsConfig", spec.dns_config.is_some()),
    ];
    set.into_iter()
        .filter(|(_, is_set)| *is_set)
        .map(|(field, _)| {
            Violation::new(
                RuleId::GatewayNameResolution,
                pod.spec_path().field(field),
                "the gateway resolves names through the cluster's DNS",
                "unset (dnsPolicy ClusterFirst)",
                "set",
            )
        })
        .collect()
}

fn has_env_from(c: &Container, config_map: &str) -> bool {
    c.env_from.iter().flatten().any(|e| {
        e.config_map_ref
            .as_ref()
            .is_some_and(|r| name_pattern::is_generated_from(config_map, &r.name))
    })
}

/// `gateway.probes`: the three health probes with the policy's handler and
/// timings.
pub fn probes(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let g = &ctx.policy.gateway;
    let mut out = Vec::new();
    for c in gateway_containers(pod, g) {
        for kind in ProbeKind::ALL {
            probe(c, kind, g, &mut out);
        }
    }
    out
}

/// Resolves a probe port (a number, or a name through the container's ports).
fn resolve_port(c: &Container, port: &IntOrString) -> Option<i32> {
    match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

fn probe(c: &ContainerEntry, kind: ProbeKind, g: &Gateway, out: &mut Vec<Violation>) {
    // Built only for a violation: most probes are as agreed.
    let path = || c.path.field(kind.field());
    let Some(probe) = kind.of(&c.container) else {
        out.push(Violation::new(
            RuleId::GatewayProbes,
            path(),
            "the gateway needs all three health probes",
            format!("GET {} on port {}", g.probes.path, g.probes.port),
            "no probe",
        ));
        return;
    };
    let handler = probe.http_get.as_ref();
    let probe_path = handler.and_then(|h| h.path.as_deref());
    if probe_path != Some(g.probes.path.as_str()) {
        out.push(Violation::new(
            RuleId::GatewayProbes,
            path().field("httpGet").field("path"),
            "the probe calls the health endpoint",
            g.probes.path.as_str(),
            match handler {
                Some(_) => shown(probe_path),
                None => "no httpGet handler".to_owned(),
            },
        ));
    }
    if let Some(h) = handler {
        let port = resolve_port(&c.container, &h.port);
        if port != Some(g.probes.port) {
            let written = match &h.port {
                IntOrString::Int(n) => n.to_string(),
                IntOrString::String(s) => format!("{s} (resolves to {})", shown(port)),
            };
            out.push(Violation::new(
                RuleId::GatewayProbes,
                path().field("httpGet").field("port"),
                "the probe calls the gateway port",
                g.probes.port.to_string(),
                written,
            ));
        }
    }
    // API server defaults: periodSeconds 10, failureThreshold 3, no delay.
    let period = probe.period_seconds.unwrap_or(10);
    let wanted_period = match kind {
        ProbeKind::Startup => {
            let s = &g.probes.startup;
            let delay = probe.initial_delay_seconds.unwrap_or(0);
            let threshold = probe.failure_threshold.unwrap_or(3);
            let worst = delay.saturating_add(period.saturating_mul(threshold));
            if worst > s.max_startup_seconds {
                out.push(Violation::new(
                    RuleId::GatewayProbes,
                    path(),
                    "startup may wait at most the allowed time (initialDelaySeconds + periodSeconds x failureThreshold)",
                    format!("<= {}s", s.max_startup_seconds),
                    format!("{worst}s"),
                ));
            }
            return;
        }
        ProbeKind::Readiness => g.probes.readiness.period_seconds,
        ProbeKind::Liveness => g.probes.liveness.period_seconds,
    };
    if period != wanted_period {
        out.push(Violation::new(
            RuleId::GatewayProbes,
            path().field("periodSeconds"),
            "the probe runs at the agreed cadence",
            wanted_period.to_string(),
            period.to_string(),
        ));
    }
}

/// `gateway.resources`: requests and limits exactly as the policy says
/// (quantities compare by value).
pub fn resources(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let g = &ctx.policy.gateway;
    let mut out = Vec::new();
    for c in gateway_containers(pod, g) {
        let resources = c.container.resources.as_ref();
        let sides = [
            (
                "requests",
                resources.and_then(|r| r.requests.as_ref()),
                &g.resources.requests,
            ),
            (
                "limits",
                resources.and_then(|r| r.limits.as_ref()),
                &g.resources.limits,
            ),
        ];
        for (side, actual, wanted) in sides {
            for (name, want) in [("cpu", &wanted.cpu), ("memory", &wanted.memory)] {
                let got = actual.and_then(|m| m.get(name));
                let same = got
                    .and_then(|q| Quantity::parse(&q.0).ok())
                    .is_some_and(|q| q == want.value);
                if !same {
                    out.push(Violation::new(
                        RuleId::GatewayResources,
                        c.path.field("resources").field(side).field(name),
                        format!("the gateway's {name} {side} are fixed by the policy"),
                        want.text.as_str(),
                        shown(got.map(|q| q.0.as_str())),
                    ));
                }
            }
        }
    }
    out
}

/// Where the API server mounts a pod's service account token.
const SERVICE_ACCOUNT_TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `gateway.mounts`: the gateway container mounts its scratch volumes
/// (emptyDir) at their paths, the strategies at the strategy path, and the
/// service account token where the policy has it mounted; nothing else. A
/// volume over its code (`/app`, a `package.json` under it), its CA
/// certificates or `/etc/hosts` would change what runs, or where its
/// requests and their credentials go, with every other rule satisfied.
pub fn mounts(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let p = ctx.policy;
    // A mount of a volume the pod does not have is the API server's to
    // refuse; of one it has, only an emptyDir is scratch space.
    let other_than_empty_dir = |name: &str| {
        pod.spec
            .volumes
            .iter()
            .flatten()
            .any(|v| v.name == name && !v.empty_dir)
    };
    let allowed = |mount: &k8s_openapi::api::core::v1::VolumeMount| {
        let at = mount.mount_path.as_str();
        let scratch = p
            .pods
            .scratch_volumes
            .iter()
            .any(|s| same_path(&s.mount_path, at));
        // At or below the strategy path, gateway.strategy-mount judges.
        (scratch && !other_than_empty_dir(&mount.name))
            || within(at, &p.gateway.strategy_mount.mount_path)
            || (p.pods.automount_service_account_token && same_path(at, SERVICE_ACCOUNT_TOKEN_DIR))
    };
    let expected = || {
        let mut paths: Vec<&str> = p
            .pods
            .scratch_volumes
            .iter()
            .map(|s| s.mount_path.as_str())
            .collect();
        paths.push(&p.gateway.strategy_mount.mount_path);
        if p.pods.automount_service_account_token {
            paths.push(SERVICE_ACCOUNT_TOKEN_DIR);
        }
        format!(
            "mounts at {} only (scratch volumes as emptyDir)",
            paths.join(", ")
        )
    };
    let mut out = Vec::new();
    for c in gateway_containers(pod, &p.gateway) {
        for (i, mount) in c.mounts().filter(|(_, m)| !allowed(m)) {
            out.push(Violation::new(
                RuleId::GatewayMounts,
                c.mount_path(i, mount).field("mountPath"),
                "the gateway mounts only its scratch volumes, the strategies and its token",
                expected(),
                format!("volume {} at {}", mount.name, mount.mount_path),
            ));
        }
    }
    out
}

/// `gateway.strategy-mount`: the strategies ConfigMap (or its
/// kustomize-hashed name) is mounted read-only at the strategy path, and
/// nothing else is mounted at or below it (a `subPath` mount over one file
/// would shadow a validated strategy).
pub fn strategy_mount(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let s = &ctx.policy.gateway.strategy_mount;
    let mut out = Vec::new();
    for c in gateway_containers(pod, &ctx.policy.gateway) {
        if !c.has_mount_at(&s.mount_path) {
            out.push(Violation::new(
                RuleId::GatewayStrategyMount,
                c.path.field("volumeMounts"),
                "the routing strategies are mounted for the gateway",
                format!("{} mounted at {}", s.config_map, s.mount_path),
                "no such mount",
            ));
        }
        for (i, mount) in c
            .mounts()
            .filter(|(_, m)| within(&m.mount_path, &s.mount_path))
        {
            let path = c.mount_path(i, mount);
            if mount.read_only != Some(true) {
                out.push(Violation::new(
                    RuleId::GatewayStrategyMount,
                    path.field("readOnly"),
                    "the strategy mount is read-only",
                    "true",
                    shown(mount.read_only),
                ));
            }
            // Each file under its own key: a subPath, or items mapping a
            // key to another name, would put one strategy's file where
            // strategy.required judged another.
            for (field, value) in [
                ("subPath", mount.sub_path.as_deref()),
                ("subPathExpr", mount.sub_path_expr.as_deref()),
            ] {
                if let Some(value) = value.filter(|v| !v.is_empty()) {
                    out.push(Violation::new(
                        RuleId::GatewayStrategyMount,
                        path.field(field),
                        "the strategies are mounted whole, each file under its own key",
                        "unset",
                        value,
                    ));
                }
            }
            let volume = pod
                .spec
                .volumes
                .iter()
                .flatten()
                .enumerate()
                .find(|(_, v)| v.name == mount.name);
            let config_map = volume.and_then(|(_, v)| v.config_map.as_ref());
            let remapped = config_map
                .and_then(|cm| cm.items.iter().flatten().find(|item| item.path != item.key));
            if let (Some((i, _)), Some(remapped)) = (volume, remapped) {
                out.push(Violation::new(
                    RuleId::GatewayStrategyMount,
                    pod.spec_path()
                        .field("volumes")
                        .item(i, &mount.name)
                        .field("configMap")
                        .field("items"),
                    "the strategies are mounted whole, each file under its own key",
                    "no items, or each key at its own path",
                    format!("{} at {}", remapped.key, remapped.path),
                ));
            }
            if config_map.is_some_and(|cm| cm.optional == Some(true)) {
                out.push(Violation::new(
                    RuleId::GatewayStrategyMount,
                    path.field("name"),
                    "the strategies are not optional: without them the gateway runs unconfigured",
                    "optional unset or false",
                    "optional: true",
                ));
            }
            let source = config_map.map(|cm| cm.name.as_str());
            if !source.is_some_and(|name| name_pattern::is_generated_from(&s.config_map, name)) {
                out.push(Violation::new(
                    RuleId::GatewayStrategyMount,
                    path.field("name"),
                    format!(
                        "only the strategy ConfigMap is mounted at or below {}",
                        s.mount_path
                    ),
                    format!("configMap {} (or its kustomize-hashed name)", s.config_map),
                    match source {
                        Some(other) => format!("configMap {other}"),
                        None => format!("volume {} (not that ConfigMap)", mount.name),
                    },
                ));
            }
        }
    }
    out
}

/// `gateway.config-override`: the container's own env does not override a
/// production setting its ConfigMap sets, unless with an allowed value.
pub fn config_override(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let settings = &ctx.policy.gateway_config.values;
    let mut out = Vec::new();
    for c in gateway_containers(pod, &ctx.policy.gateway) {
        for (i, env) in c.container.env.iter().flatten().enumerate() {
            let Some(allowed) = settings.get(&env.name) else {
                continue;
            };
            let literal_allowed =
                env.value_from.is_none() && env.value.as_ref().is_some_and(|v| allowed.contains(v));
            if !literal_allowed {
                out.push(Violation::new(
                    RuleId::GatewayConfigOverride,
                    c.path.field("env").item(i, &env.name),
                    format!(
                        "{} is a production setting of the gateway's ConfigMap",
                        env.name
                    ),
                    format!("unset, or {}", allowed.join(" | ")),
                    match (&env.value, &env.value_from) {
                        (_, Some(_)) => "another source".to_owned(),
                        (Some(v), None) => format!("{v:?}"),
                        (None, None) => "an empty value".to_owned(),
                    },
                ));
            }
        }
    }
    out
}

/// `gateway.metrics-annotations`: the pod template's Prometheus
/// annotations.
pub fn metrics_annotations(pod: &PodTemplate, ctx: &Context) -> Vec<Violation> {
    let g = &ctx.policy.gateway;
    if !is_gateway_pod(pod, g) {
        return Vec::new();
    }
    g.pod_annotations
        .iter()
        .filter_map(|(key, value)| {
            let actual = pod.meta.annotations.as_ref().and_then(|a| a.get(key));
            (actual != Some(value)).then(|| {
                Violation::new(
                    RuleId::GatewayMetricsAnnotations,
                    pod.meta_path().field("annotations").key(key),
                    "Prometheus discovers the gateway through this annotation",
                    format!("{value:?}"),
                    shown(actual.map(|a| format!("{a:?}"))),
                )
            })
        })
        .collect()
}

// === impl injections ===

/// Runs `add` for every gateway container; the group's name when anything
/// was added.
fn for_each_gateway(
    pod: &PodTemplate,
    policy: &Policy,
    b: &mut PatchBuilder,
    group: &str,
    add: fn(&PodTemplate, &ContainerEntry, &Gateway, &mut PatchBuilder),
) -> Option<String> {
    let before = b.len();
    for c in gateway_containers(pod, &policy.gateway) {
        add(pod, c, &policy.gateway, b);
    }
    (b.len() > before).then(|| group.to_owned())
}

/// containerPort 8787 named http (or the name on an existing 8787 port).
pub fn inject_port(pod: &PodTemplate, policy: &Policy, b: &mut PatchBuilder) -> Option<String> {
    for_each_gateway(pod, policy, b, "port", |_, c, g, b| {
        let ports = c.container.ports.as_deref().unwrap_or_default();
        match ports.iter().position(|p| p.container_port == g.port.container_port) {
            Some(i) => {
                b.add_if_absent(&c.at(&["ports", &i.to_string(), "name"]), || json!(g.port.name));
            }
            None => b.append(
                &c.at(&["ports"]),
                json!({"name": g.port.name, "containerPort": g.port.container_port, "protocol": "TCP"}),
            ),
        }
    })
}

/// envFrom the gateway ConfigMap.
pub fn inject_env_from(pod: &PodTemplate, policy: &Policy, b: &mut PatchBuilder) -> Option<String> {
    for_each_gateway(pod, policy, b, "envFrom", |_, c, g, b| {
        if !has_env_from(&c.container, &g.env_from_config_map) {
            b.append(
                &c.at(&["envFrom"]),
                json!({"configMapRef": {"name": g.env_from_config_map}}),
            );
        }
    })
}

/// The three probes.
pub fn inject_probes(pod: &PodTemplate, policy: &Policy, b: &mut PatchBuilder) -> Option<String> {
    for_each_gateway(pod, policy, b, "probes", |_, c, g, b| {
        for kind in ProbeKind::ALL {
            b.add_if_absent(&c.at(&[kind.field()]), || kind.default_probe(g));
        }
    })
}

/// Each missing request and limit, unless the value already set on the
/// other side would make the pair invalid (a request above its limit).
pub fn inject_resources(
    pod: &PodTemplate,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    for_each_gateway(pod, policy, b, "resources", |_, c, g, b| {
        let resources = c.container.resources.as_ref();
        let current = |side: &str, name: &str| -> Option<Quantity> {
            let map = match side {
                "requests" => resources.and_then(|r| r.requests.as_ref()),
                _ => resources.and_then(|r| r.limits.as_ref()),
            };
            map.and_then(|m| m.get(name))
                .and_then(|q| Quantity::parse(&q.0).ok())
        };
        let wanted = [
            ("cpu", &g.resources.requests.cpu, &g.resources.limits.cpu),
            (
                "memory",
                &g.resources.requests.memory,
                &g.resources.limits.memory,
            ),
        ];
        for (name, request, limit) in wanted {
            if current("limits", name).is_none_or(|l| l >= request.value) {
                b.add_if_absent(&c.at(&["resources", "requests", name]), || {
                    json!(request.text)
                });
            }
            if current("requests", name).is_none_or(|r| r <= limit.value) {
                b.add_if_absent(&c.at(&["resources", "limits", name]), || json!(limit.text));
            }
        }
    })
}

/// The strategies ConfigMap mounted read-only at the strategy path.
pub fn inject_strategy_mount(
    pod: &PodTemplate,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    for_each_gateway(pod, policy, b, "strategy mount", |pod, c, g, b| {
        let s = &g.strategy_mount;
        if c.has_mount_at(&s.mount_path) {
            return;
        }
        b.append(
            &c.at(&["volumeMounts"]),
            json!({"name": s.volume, "mountPath": s.mount_path, "readOnly": true}),
        );
        pod.ensure_volume(
            b,
            json!({"name": s.volume, "configMap": {"name": s.config_map}}),
        );
    })
}

/// The gateway's labels, version included, on the workload and template.
pub fn inject_labels(pod: &PodTemplate, policy: &Policy, b: &mut PatchBuilder) -> Option<String> {
    if !is_gateway_pod(pod, &policy.gateway) {
        return None;
    }
    let before = b.len();
    for (key, value) in policy.gateway.pod_labels() {
        if pod.has_wrapper() {
            b.add_if_absent(&["metadata", "labels", key.as_str()], || json!(value));
        }
        b.add_if_absent(&pod.meta_at(&["labels", key.as_str()]), || json!(value));
    }
    (b.len() > before).then(|| "labels".to_owned())
}

/// The Prometheus annotations on the pod template.
pub fn inject_metrics_annotations(
    pod: &PodTemplate,
    policy: &Policy,
    b: &mut PatchBuilder,
) -> Option<String> {
    if !is_gateway_pod(pod, &policy.gateway) {
        return None;
    }
    let before = b.len();
    for (key, value) in &policy.gateway.pod_annotations {
        b.add_if_absent(&pod.meta_at(&["annotations", key.as_str()]), || {
            json!(value)
        });
    }
    (b.len() > before).then(|| "metrics annotations".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;
    use crate::kinds::rule::tests::ctx;
    use serde_json::{json, Value};

    /// A compliant gateway Deployment (deploy/portkey's, trimmed).
    fn compliant() -> Value {
        let probe = |period: i32| json!({"httpGet": {"path": "/v1/health", "port": 8787}, "periodSeconds": period});
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "portkey-gateway", "labels": {
                "app.kubernetes.io/name": "portkey-gateway", "app.kubernetes.io/version": "1.12.1"}},
            "spec": {"template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/name": "portkey-gateway", "app.kubernetes.io/version": "1.12.1"},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8787", "prometheus.io/path": "/metrics"}},
                "spec": {
                    "containers": [{
                        "name": "gateway", "image": "portkeyai/gateway:1.12.1",
                        "ports": [{"name": "http", "containerPort": 8787}],
                        "envFrom": [{"configMapRef": {"name": "portkey-gateway-config"}}],
                        "startupProbe": {"httpGet": {"path": "/v1/health", "port": "http"}, "periodSeconds": 5, "failureThreshold": 10},
                        "readinessProbe": probe(10),
                        "livenessProbe": probe(30),
                        "resources": {"requests": {"cpu": "0.1", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "536870912"}},
                        "volumeMounts": [{"name": "strategies", "mountPath": "/app/configs/", "readOnly": true}]}],
                    "volumes": [{"name": "strategies", "configMap": {"name": "portkey-model-configs"}}]}}}})
    }

    fn paths_of(check: fn(&PodTemplate, &Context) -> Vec<Violation>, doc: &Value) -> Vec<String> {
        let pod = PodTemplate::read(Kind::Deployment, doc).unwrap();
        check(&pod, &ctx()).into_iter().map(|v| v.path).collect()
    }

    /// The violations of `check` on the compliant Deployment changed by `change`.
    fn paths(
        check: fn(&PodTemplate, &Context) -> Vec<Violation>,
        change: impl FnOnce(&mut Value),
    ) -> Vec<String> {
        let mut doc = compliant();
        change(&mut doc);
        paths_of(check, &doc)
    }

    const C0: &str = "spec.template.spec.containers[0]";

    fn gateway(doc: &mut Value) -> &mut Value {
        &mut doc["spec"]["template"]["spec"]["containers"][0]
    }

    #[test]
    fn the_compliant_deployment_breaks_no_gateway_rule() {
        for rule in RULES {
            assert!(paths_of(rule.check, &compliant()).is_empty(), "{}", rule.id);
        }
    }

    #[test]
    fn image_pinned_with_optional_digest() {
        assert_eq!(
            paths(image, |d| gateway(d)["image"] =
                json!("portkeyai/gateway:latest")),
            [format!("{C0}.image")]
        );
        assert_eq!(
            paths(image, |d| gateway(d)["image"] =
                json!("docker.io/portkeyai/gateway")),
            [format!("{C0}.image")]
        );
        // A digest decides what runs: only the policy's are allowed.
        let digest = "sha256:4b3e5f0e1c9a7d2b8f6a0c3e5d7b9f1a2c4e6d8b0a1c3e5f7d9b1a3c5e7f9d1b";
        let image_with = format!("index.docker.io/portkeyai/gateway:1.12.1@{digest}");
        assert_eq!(
            paths(image, |d| gateway(d)["image"] = json!(image_with)),
            [format!("{C0}.image")]
        );
        let mut policy = ctx().policy.clone();
        policy.gateway.digests = vec![digest.to_owned()];
        let listed = Context {
            policy: &policy,
            ..ctx()
        };
        let mut doc = compliant();
        gateway(&mut doc)["image"] = json!(image_with);
        let pod = PodTemplate::read(Kind::Deployment, &doc).unwrap();
        assert!(image(&pod, &listed).is_empty());
    }

    #[test]
    fn labels_on_workload_and_template() {
        assert_eq!(
            paths(labels, |d| d["metadata"]["labels"] = json!({})),
            [r#"metadata.labels["app.kubernetes.io/name"]"#]
        );
    }

    #[test]
    fn version_label_names_the_pinned_version() {
        assert_eq!(
            paths(version_label, |d| d["spec"]["template"]["metadata"]
                ["labels"]["app.kubernetes.io/version"] =
                json!("1.0.0")),
            [r#"spec.template.metadata.labels["app.kubernetes.io/version"]"#]
        );
        // The label names the policy's version, whatever the image's tag:
        // `latest` on a `:latest` image is still not the pinned release.
        let mut doc = compliant();
        gateway(&mut doc)["image"] = json!("portkeyai/gateway:latest");
        doc["metadata"]["labels"]["app.kubernetes.io/version"] = json!("latest");
        doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] =
            json!("latest");
        let pod = PodTemplate::read(Kind::Deployment, &doc).unwrap();
        let found = version_label(&pod, &ctx());
        assert_eq!(found.len(), 2, "{found:?}");
        for v in &found {
            assert_eq!(
                (v.expected.as_str(), v.actual.as_str()),
                ("1.12.1", "latest")
            );
        }
    }

    #[test]
    fn port_named_and_numbered() {
        assert_eq!(
            paths(port, |d| gateway(d)["ports"][0]["name"] = json!("web")),
            [format!("{C0}.ports")]
        );
    }

    #[test]
    fn config_env_from_the_gateway_config_map() {
        assert_eq!(
            paths(config_env, |d| gateway(d)["envFrom"] = json!([])),
            [format!("{C0}.envFrom")]
        );
        // kustomize's configMapGenerator name is the same ConfigMap; any
        // other suffix is another one.
        assert!(paths(
            config_env,
            |d| gateway(d)["envFrom"] =
                json!([{"configMapRef": {"name": "portkey-gateway-config-5fgk9b7hc2"}}])
        )
        .is_empty());
        assert_eq!(
            paths(
                config_env,
                |d| gateway(d)["envFrom"] =
                    json!([{"configMapRef": {"name": "portkey-gateway-config-evil"}}])
            ),
            [format!("{C0}.envFrom"), format!("{C0}.envFrom[0]")]
        );
    }

    #[test]
    fn probes_handler_port_and_timings() {
        assert_eq!(
            paths(probes, |d| gateway(d)["livenessProbe"]["periodSeconds"] =
                json!(10)),
            [format!("{C0}.livenessProbe.periodSeconds")]
        );
        assert_eq!(
            paths(probes, |d| gateway(d)["startupProbe"]["httpGet"]["port"] =
                json!("metrics")),
            [format!("{C0}.startupProbe.httpGet.port")]
        );
        assert_eq!(
            paths(probes, |d| gateway(d)["startupProbe"]
                ["initialDelaySeconds"] = json!(1)),
            [format!("{C0}.startupProbe")]
        );
        assert_eq!(
            paths(probes, |d| {
                gateway(d).as_object_mut().unwrap().remove("readinessProbe");
            }),
            [format!("{C0}.readinessProbe")]
        );
        // Readiness without periodSeconds is the API server's 10: the policy's.
        assert!(paths(probes, |d| {
            gateway(d)["readinessProbe"]
                .as_object_mut()
                .unwrap()
                .remove("periodSeconds");
        })
        .is_empty());
    }

    #[test]
    fn resources_compare_by_value() {
        assert_eq!(
            paths(resources, |d| gateway(d)["resources"]["limits"]["cpu"] =
                json!("1")),
            [format!("{C0}.resources.limits.cpu")]
        );
        assert_eq!(
            paths(resources, |d| {
                gateway(d)["resources"]["requests"]
                    .as_object_mut()
                    .unwrap()
                    .remove("memory");
            }),
            [format!("{C0}.resources.requests.memory")]
        );
    }

    #[test]
    fn strategy_mount_read_only_from_the_strategies_config_map() {
        assert_eq!(
            paths(strategy_mount, |d| gateway(d)["volumeMounts"][0]
                ["readOnly"] = json!(false)),
            [format!("{C0}.volumeMounts[0].readOnly")]
        );
        assert_eq!(
            paths(strategy_mount, |d| d["spec"]["template"]["spec"]
                ["volumes"][0]["configMap"]["name"] =
                json!("other")),
            [format!("{C0}.volumeMounts[0].name")]
        );
        assert!(paths(strategy_mount, |d| d["spec"]["template"]["spec"]
            ["volumes"][0]["configMap"]["name"] =
            json!("portkey-model-configs-t7ht4khcg5"))
        .is_empty());
        assert_eq!(
            paths(strategy_mount, |d| gateway(d)["volumeMounts"] = json!([])),
            [format!("{C0}.volumeMounts")]
        );
    }

    #[test]
    fn mounts_only_scratch_strategies_and_token() {
        let mount = |d: &mut Value, volume: Value, mount: Value| {
            let spec = &mut d["spec"]["template"]["spec"];
            spec["volumes"].as_array_mut().unwrap().push(volume);
            spec["containers"][0]["volumeMounts"]
                .as_array_mut()
                .unwrap()
                .push(mount);
        };
        // The scratch volumes as emptyDir, with a trailing slash too.
        assert!(paths(mounts, |d| {
            mount(
                d,
                json!({"name": "tmp", "emptyDir": {}}),
                json!({"name": "tmp", "mountPath": "/tmp/"}),
            );
            mount(
                d,
                json!({"name": "var-tmp", "emptyDir": {}}),
                json!({"name": "var-tmp", "mountPath": "/var/tmp"}),
            );
        })
        .is_empty());
        // Over its code, its certificates, its resolver: read-only or not.
        for at in [
            "/app",
            "/app/package.json",
            "/etc/ssl/certs",
            "/etc/hosts",
            "/etc/resolv.conf",
        ] {
            assert_eq!(
                paths(mounts, |d| mount(
                    d,
                    json!({"name": "x", "configMap": {"name": "x"}}),
                    json!({"name": "x", "mountPath": at, "readOnly": true})
                )),
                [format!("{C0}.volumeMounts[1].mountPath")],
                "{at}"
            );
        }
        // A scratch path backed by anything but an emptyDir.
        assert_eq!(
            paths(mounts, |d| mount(
                d,
                json!({"name": "tmp", "configMap": {"name": "prepared"}}),
                json!({"name": "tmp", "mountPath": "/tmp"})
            )),
            [format!("{C0}.volumeMounts[1].mountPath")]
        );
        // The token only where the policy mounts it.
        let token = |d: &mut Value| {
            mount(
                d,
                json!({"name": "token", "projected": {"sources": []}}),
                json!({"name": "token", "mountPath": SERVICE_ACCOUNT_TOKEN_DIR, "readOnly": true}),
            )
        };
        assert_eq!(
            paths(mounts, token),
            [format!("{C0}.volumeMounts[1].mountPath")]
        );
        let mut policy = ctx().policy.clone();
        policy.pods.automount_service_account_token = true;
        let mut doc = compliant();
        token(&mut doc);
        let pod = PodTemplate::read(Kind::Deployment, &doc).unwrap();
        let with_token = Context {
            policy: &policy,
            ..ctx()
        };
        assert!(mounts(&pod, &with_token).is_empty());
    }

    #[test]
    fn nothing_else_mounted_under_the_strategy_path() {
        let shadowed = paths(strategy_mount, |d| {
            let spec = &mut d["spec"]["template"]["spec"];
            spec["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "mine", "configMap": {"name": "my-strategies"}}));
            spec["containers"][0]["volumeMounts"].as_array_mut().unwrap().push(
                json!({"name": "mine", "mountPath": "/app/configs/azure-models.json", "subPath": "azure-models.json", "readOnly": true}));
        });
        assert_eq!(
            shadowed,
            [
                format!("{C0}.volumeMounts[1].subPath"),
                format!("{C0}.volumeMounts[1].name")
            ]
        );
        // The strategies themselves, one file where another belongs.
        let swapped = paths(strategy_mount, |d| {
            gateway(d)["volumeMounts"].as_array_mut().unwrap().push(
                json!({"name": "strategies", "mountPath": "/app/configs/azure-models.json", "subPath": "openai-models.json", "readOnly": true}));
        });
        assert_eq!(swapped, [format!("{C0}.volumeMounts[1].subPath")]);
        let remapped = paths(strategy_mount, |d| {
            d["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"] = json!([
                {"key": "openai-models.json", "path": "azure-models.json"}]);
        });
        assert_eq!(remapped, ["spec.template.spec.volumes[0].configMap.items"]);
        // Items that keep every key at its own path change nothing.
        assert!(paths(strategy_mount, |d| {
            d["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"] =
                json!([{"key": "azure-models.json", "path": "azure-models.json"}]);
        })
        .is_empty());
        let dotted = paths(strategy_mount, |d| {
            let spec = &mut d["spec"]["template"]["spec"];
            spec["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "scratch", "emptyDir": {}}));
            spec["containers"][0]["volumeMounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "scratch", "mountPath": "/tmp/../app/configs/x"}));
        });
        assert_eq!(
            dotted,
            [
                format!("{C0}.volumeMounts[1].readOnly"),
                format!("{C0}.volumeMounts[1].name")
            ]
        );
    }

    #[test]
    fn env_does_not_override_the_production_settings() {
        let found = paths(config_override, |d| {
            gateway(d)["env"] = json!([
                {"name": "NODE_ENV", "value": "development"},
                {"name": "LOG_LEVEL", "value": "debug"},
                {"name": "PORT", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "OTHER", "value": "x"}]);
        });
        assert_eq!(found, [format!("{C0}.env[0]"), format!("{C0}.env[2]")]);
        // The health path is a production setting too: only its own value.
        let health = |value: &str| {
            let value = value.to_owned();
            paths(config_override, move |d| {
                gateway(d)["env"] = json!([{"name": "HEALTH_CHECK_PATH", "value": value}]);
            })
        };
        assert_eq!(health("/debug"), [format!("{C0}.env[0]")]);
        assert!(health("/v1/health").is_empty());
    }

    #[test]
    fn entrypoint_is_the_images_own() {
        for (field, value) in [
            ("command", json!(["sh", "-c", "cat /proc/self/environ"])),
            ("args", json!(["--port", "9999"])),
            (
                "lifecycle",
                json!({"postStart": {"exec": {"command": ["true"]}}}),
            ),
            // npm would run the scripts of a package.json found there.
            ("workingDir", json!("/app/configs")),
        ] {
            assert_eq!(
                paths(entrypoint, |d| gateway(d)[field] = value),
                [format!("{C0}.{field}")],
                "{field}"
            );
        }
        // Empty lists run the image's entrypoint as well.
        assert!(paths(entrypoint, |d| {
            gateway(d)["command"] = json!([]);
            gateway(d)["args"] = json!([]);
        })
        .is_empty());
        // Every field set is named.
        let all = paths(entrypoint, |d| {
            gateway(d)["command"] = json!(["node"]);
            gateway(d)["args"] = json!(["x.js"]);
            gateway(d)["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 1}}});
        });
        assert_eq!(
            all,
            [
                format!("{C0}.command"),
                format!("{C0}.args"),
                format!("{C0}.lifecycle")
            ]
        );
    }

    #[test]
    fn env_holds_only_settings_credentials_and_allowed_names() {
        let found = paths(env, |d| {
            gateway(d)["env"] = json!([
                {"name": "NODE_ENV", "value": "production"},
                {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "NODE_OPTIONS", "value": "--require /tmp/x.js"},
                {"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]);
        });
        assert_eq!(
            found,
            [format!("{C0}.env[2].name"), format!("{C0}.env[3].name")]
        );
        // A name the policy allows is no violation.
        let mut policy = ctx().policy.clone();
        policy.gateway.allowed_env = vec!["NODE_OPTIONS".to_owned()];
        let allowing = Context {
            policy: &policy,
            ..ctx()
        };
        let mut doc = compliant();
        gateway(&mut doc)["env"] =
            json!([{"name": "NODE_OPTIONS", "value": "--max-old-space-size=400"}]);
        let pod = PodTemplate::read(Kind::Deployment, &doc).unwrap();
        assert!(env(&pod, &allowing).is_empty());
    }

    fn spec(doc: &mut Value) -> &mut Value {
        &mut doc["spec"]["template"]["spec"]
    }

    #[test]
    fn name_resolution_through_the_cluster_dns() {
        const SPEC: &str = "spec.template.spec";
        assert_eq!(
            paths(name_resolution, |d| spec(d)["hostAliases"] =
                json!([{"ip": "10.0.0.9", "hostnames": ["api.openai.com"]}])),
            [format!("{SPEC}.hostAliases")]
        );
        assert_eq!(
            paths(name_resolution, |d| {
                spec(d)["dnsPolicy"] = json!("None");
                spec(d)["dnsConfig"] = json!({"nameservers": ["10.0.0.53"]});
            }),
            [format!("{SPEC}.dnsPolicy"), format!("{SPEC}.dnsConfig")]
        );
        // The node's resolver is not the cluster's.
        assert_eq!(
            paths(name_resolution, |d| spec(d)["dnsPolicy"] = json!("Default")),
            [format!("{SPEC}.dnsPolicy")]
        );
        // The cluster's own policies and an empty list are fine.
        for policy in ["ClusterFirst", "ClusterFirstWithHostNet"] {
            assert!(
                paths(name_resolution, |d| spec(d)["dnsPolicy"] = json!(policy)).is_empty(),
                "{policy}"
            );
        }
        assert!(paths(name_resolution, |d| spec(d)["hostAliases"] = json!([])).is_empty());
    }

    #[test]
    fn metrics_annotations_on_the_template() {
        assert_eq!(
            paths(metrics_annotations, |d| d["spec"]["template"]["metadata"]
                ["annotations"]["prometheus.io/path"] =
                json!("/stats")),
            [r#"spec.template.metadata.annotations["prometheus.io/path"]"#]
        );
    }

    #[test]
    fn other_pods_are_not_gateways() {
        let mut doc = compliant();
        gateway(&mut doc)["image"] = json!("busybox:1.36");
        doc["spec"]["template"]["metadata"]["labels"] = json!({"app": "helper"});
        for rule in RULES {
            assert!(paths_of(rule.check, &doc).is_empty(), "{}", rule.id);
        }
    }

    #[test]
    fn a_pod_labelled_as_the_gateway_runs_the_pinned_image() {
        for image in [
            "ghcr.io/portkey-ai/gateway:1.12.1",
            "localhost:5000/portkeyai/gateway:latest",
            "portkeyai/gateway-evil:1.12.1",
            "docker.io/library/portkeyai/gateway:1.12.1",
            "PortkeyAI/Gateway:1.12.1",
            "portkeyai/gateway:1.12.1@sha256:abc",
        ] {
            assert_eq!(
                paths(image_rule(), |d| gateway(d)["image"] = json!(image)),
                [format!("{C0}.image")],
                "{image}"
            );
        }
        // Without a port of its own, its first container is the gateway.
        let unported = paths(image_rule(), |d| {
            gateway(d)["image"] = json!("nginx:1");
            gateway(d).as_object_mut().unwrap().remove("ports");
        });
        assert_eq!(unported, [format!("{C0}.image")]);
        // Another container in a gateway pod runs only a listed sidecar.
        let add_sidecar = |d: &mut Value| {
            let sidecar = json!({"name": "log-shipper", "image": "fluent/fluent-bit:3.0"});
            d["spec"]["template"]["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(sidecar);
        };
        assert_eq!(
            paths(image_rule(), add_sidecar),
            ["spec.template.spec.containers[1].image"]
        );
        // So does an init container: it could write what the gateway reads.
        let init = paths(image_rule(), |d| {
            d["spec"]["template"]["spec"]["initContainers"] =
                json!([{"name": "helper", "image": "busybox:1.36", "command": ["true"]}]);
        });
        assert_eq!(init, ["spec.template.spec.initContainers[0].image"]);
        let mut policy = ctx().policy.clone();
        policy.gateway.sidecar_images = vec!["fluent/fluent-bit".to_owned()];
        let with_sidecars = Context {
            policy: &policy,
            ..ctx()
        };
        let mut doc = compliant();
        add_sidecar(&mut doc);
        let pod = PodTemplate::read(Kind::Deployment, &doc).unwrap();
        assert!(image(&pod, &with_sidecars).is_empty());
    }

    #[test]
    fn the_gateway_image_anywhere_is_judged() {
        let sidecar_init = paths(image_rule(), |d| {
            d["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "early", "image": "portkeyai/gateway:latest", "restartPolicy": "Always"}]);
        });
        assert_eq!(sidecar_init, ["spec.template.spec.initContainers[0].image"]);
        let helper_job = json!({"spec": {"template": {"metadata": {}, "spec": {
            "initContainers": [{"name": "warm", "image": "portkeyai/gateway:1.11.0"}],
            "containers": [{"name": "main", "image": "busybox:1.36"}]}}}});
        assert_eq!(
            paths_of(image_rule(), &helper_job),
            ["spec.template.spec.initContainers[0].image"]
        );
        // A sidecar init container running the gateway is held to every rule.
        let probes_of_sidecar = paths(probes, |d| {
            d["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "early", "image": "portkeyai/gateway:1.12.1", "restartPolicy": "Always"}]);
        });
        assert_eq!(probes_of_sidecar.len(), 3, "{probes_of_sidecar:?}");
    }

    fn image_rule() -> fn(&PodTemplate, &Context) -> Vec<Violation> {
        image
    }

    #[test]
    fn injections_fill_a_bare_gateway_container() {
        let doc = json!({"metadata": {}, "spec": {"template": {"spec": {"containers": [{"name": "gateway", "image": "portkeyai/gateway:1.12.1", "ports": [{"containerPort": 8787}]}]}}}});
        let pod = PodTemplate::read(Kind::Deployment, &doc).unwrap();
        let mut b = PatchBuilder::new(doc);
        let groups: Vec<String> = INJECTIONS
            .iter()
            .filter_map(|i| (i.inject)(&pod, ctx().policy, &mut b))
            .collect();
        assert_eq!(
            groups,
            [
                "port",
                "envFrom",
                "probes",
                "resources",
                "strategy mount",
                "labels",
                "metrics annotations"
            ]
        );
        let injected = PodTemplate::read(Kind::Deployment, b.doc()).unwrap();
        for rule in RULES {
            assert!(
                (rule.check)(&injected, &ctx()).is_empty(),
                "{} after injection",
                rule.id
            );
        }
    }
}
