//! §3.3 — the gateway container: image, port, config, probes, resources,
//! strategy mount, labels and metrics annotations.

use super::pod_spec::{ensure_volume, has_mount_at, same_path};
use super::workload::{ContainerEntry, PodTemplate};
use crate::image::ImageRef;
use crate::patch::PatchBuilder;
use crate::policy::{Gateway, Policy};
use crate::quantity::Quantity;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

/// The containers running the gateway image.
fn gateway_containers<'a>(
    pod: &'a PodTemplate,
    g: &'a Gateway,
) -> impl Iterator<Item = &'a ContainerEntry> + 'a {
    let repository = g.repository();
    pod.containers.iter().filter(move |c| {
        c.list == super::workload::ContainerList::Regular
            && c.container
                .image
                .as_deref()
                .is_some_and(|i| ImageRef::parse(i).repository == repository)
    })
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
            ProbeKind::Startup => c.startup_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
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

// === impl mutate ===

pub fn mutate(pod: &PodTemplate, policy: &Policy, b: &mut PatchBuilder) -> Vec<String> {
    let g = &policy.gateway;
    let gateways: Vec<&ContainerEntry> = gateway_containers(pod, g).collect();
    if gateways.is_empty() {
        return Vec::new();
    }
    let mut groups: Vec<&str> = Vec::new();
    let mut step = |name: &'static str, b: &mut PatchBuilder, f: &dyn Fn(&mut PatchBuilder)| {
        let before = b.len();
        f(b);
        if b.len() > before && !groups.contains(&name) {
            groups.push(name);
        }
    };
    for c in &gateways {
        step("port", b, &|b| add_port(c, g, b));
        step("envFrom", b, &|b| add_env_from(c, g, b));
        step("probes", b, &|b| {
            for kind in ProbeKind::ALL {
                b.add_if_absent(&c.at(&[kind.field()]), kind.default_probe(g));
            }
        });
        step("resources", b, &|b| add_resources(c, g, b));
        step("strategy mount", b, &|b| add_strategy_mount(pod, c, g, b));
    }
    step("labels", b, &|b| {
        for (key, value) in g.pod_labels() {
            if pod.has_wrapper() {
                b.add_if_absent(&["metadata", "labels", key.as_str()], json!(value));
            }
            b.add_if_absent(&pod.meta_at(&["labels", key.as_str()]), json!(value));
        }
    });
    step("metrics annotations", b, &|b| {
        for (key, value) in &g.pod_annotations {
            b.add_if_absent(&pod.meta_at(&["annotations", key.as_str()]), json!(value));
        }
    });
    if groups.is_empty() {
        return Vec::new();
    }
    vec![format!("gateway {}", groups.join(", "))]
}

fn add_port(c: &ContainerEntry, g: &Gateway, b: &mut PatchBuilder) {
    let ports = c.container.ports.as_deref().unwrap_or_default();
    match ports
        .iter()
        .position(|p| p.container_port == g.port.container_port)
    {
        Some(i) => {
            b.add_if_absent(
                &c.at(&["ports", &i.to_string(), "name"]),
                json!(g.port.name),
            );
        }
        None => b.append(
            &c.at(&["ports"]),
            json!({"name": g.port.name, "containerPort": g.port.container_port, "protocol": "TCP"}),
        ),
    }
}

fn add_env_from(c: &ContainerEntry, g: &Gateway, b: &mut PatchBuilder) {
    if !has_env_from(&c.container, &g.env_from_config_map) {
        b.append(
            &c.at(&["envFrom"]),
            json!({"configMapRef": {"name": g.env_from_config_map}}),
        );
    }
}

fn has_env_from(c: &Container, config_map: &str) -> bool {
    c.env_from.iter().flatten().any(|e| {
        e.config_map_ref
            .as_ref()
            .is_some_and(|r| r.name == config_map)
    })
}

/// Adds each missing request and limit, unless the value already set on the
/// other side would make the pair invalid (a request above its limit).
fn add_resources(c: &ContainerEntry, g: &Gateway, b: &mut PatchBuilder) {
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
            b.add_if_absent(&c.at(&["resources", "requests", name]), json!(request.text));
        }
        if current("requests", name).is_none_or(|r| r <= limit.value) {
            b.add_if_absent(&c.at(&["resources", "limits", name]), json!(limit.text));
        }
    }
}

fn add_strategy_mount(pod: &PodTemplate, c: &ContainerEntry, g: &Gateway, b: &mut PatchBuilder) {
    let s = &g.strategy_mount;
    if has_mount_at(c, &s.mount_path) {
        return;
    }
    b.append(
        &c.at(&["volumeMounts"]),
        json!({"name": s.volume, "mountPath": s.mount_path, "readOnly": true}),
    );
    ensure_volume(
        pod,
        b,
        json!({"name": s.volume, "configMap": {"name": s.config_map}}),
    );
}

// === impl validate ===

pub fn validate(pod: &PodTemplate, policy: &Policy) -> Vec<Violation> {
    let g = &policy.gateway;
    let mut out = Vec::new();
    let mut image_tag = None;
    let mut any = false;
    for c in gateway_containers(pod, g) {
        any = true;
        image_tag = image(c, g, &mut out).or(image_tag);
        port(c, g, &mut out);
        if !has_env_from(&c.container, &g.env_from_config_map) {
            out.push(Violation::new(
                RuleId::GatewayConfigEnv,
                c.path.field("envFrom"),
                "the gateway must read its settings from the gateway ConfigMap",
                format!("configMapRef {}", g.env_from_config_map),
                "no such envFrom",
            ));
        }
        for kind in ProbeKind::ALL {
            probe(c, kind, g, &mut out);
        }
        resources(c, g, &mut out);
        strategy_mount(pod, c, g, &mut out);
    }
    if !any {
        return out;
    }
    let version = image_tag.unwrap_or_else(|| g.version.clone());
    let mut metas: Vec<(&ObjectMeta, FieldPath)> = vec![(&pod.meta, pod.meta_path())];
    if pod.has_wrapper() {
        metas.insert(0, (&pod.workload_meta, FieldPath::root("metadata")));
    }
    for (meta, path) in metas {
        labels(meta, &path, g, &version, &mut out);
    }
    for (key, value) in &g.pod_annotations {
        let actual = pod.meta.annotations.as_ref().and_then(|a| a.get(key));
        if actual != Some(value) {
            out.push(Violation::new(
                RuleId::GatewayMetricsAnnotations,
                pod.meta_path().field("annotations").key(key),
                "Prometheus discovers the gateway through this annotation",
                format!("{value:?}"),
                shown(actual.map(|a| format!("{a:?}"))),
            ));
        }
    }
    out
}

/// Checks the image; returns its tag for the version label check.
fn image(c: &ContainerEntry, g: &Gateway, out: &mut Vec<Violation>) -> Option<String> {
    let image = c.container.image.as_deref().unwrap_or_default();
    let parsed = ImageRef::parse(image);
    if parsed.tag.as_deref() != Some(g.version.as_str()) {
        out.push(Violation::new(
            RuleId::GatewayImage,
            c.path.field("image"),
            "the gateway runs the pinned release",
            format!("{} (optionally @sha256:...)", g.image_reference()),
            image,
        ));
    }
    parsed.tag
}

fn labels(
    meta: &ObjectMeta,
    path: &FieldPath,
    g: &Gateway,
    version: &str,
    out: &mut Vec<Violation>,
) {
    let labels = meta.labels.as_ref();
    for (key, value) in &g.labels {
        let actual = labels.and_then(|l| l.get(key));
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
    let actual = labels.and_then(|l| l.get(&g.version_label));
    if actual.map(String::as_str) != Some(version) {
        out.push(Violation::new(
            RuleId::GatewayVersionLabel,
            path.field("labels").key(&g.version_label),
            "the version label must match the image tag",
            version,
            shown(actual),
        ));
    }
}

fn port(c: &ContainerEntry, g: &Gateway, out: &mut Vec<Violation>) {
    let ports = c.container.ports.as_deref().unwrap_or_default();
    let ok = ports.iter().any(|p| {
        p.container_port == g.port.container_port && p.name.as_deref() == Some(g.port.name.as_str())
    });
    if !ok {
        let actual = ports
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.name.as_deref().unwrap_or("unnamed"),
                    p.container_port
                )
            })
            .collect::<Vec<_>>();
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
    let path = c.path.field(kind.field());
    let Some(probe) = kind.of(&c.container) else {
        out.push(Violation::new(
            RuleId::GatewayProbes,
            path,
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
            path.field("httpGet").field("path"),
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
                path.field("httpGet").field("port"),
                "the probe calls the gateway port",
                g.probes.port.to_string(),
                written,
            ));
        }
    }
    // API server defaults: periodSeconds 10, failureThreshold 3, no delay.
    let period = probe.period_seconds.unwrap_or(10);
    match kind {
        ProbeKind::Startup => {
            let s = &g.probes.startup;
            let delay = probe.initial_delay_seconds.unwrap_or(0);
            let threshold = probe.failure_threshold.unwrap_or(3);
            let worst = delay.saturating_add(period.saturating_mul(threshold));
            if worst > s.max_startup_seconds {
                out.push(Violation::new(
                    RuleId::GatewayProbes,
                    path,
                    "startup may wait at most the allowed time (initialDelaySeconds + periodSeconds x failureThreshold)",
                    format!("<= {}s", s.max_startup_seconds),
                    format!("{worst}s"),
                ));
            }
        }
        ProbeKind::Readiness | ProbeKind::Liveness => {
            let wanted = match kind {
                ProbeKind::Readiness => g.probes.readiness.period_seconds,
                _ => g.probes.liveness.period_seconds,
            };
            if period != wanted {
                out.push(Violation::new(
                    RuleId::GatewayProbes,
                    path.field("periodSeconds"),
                    "the probe runs at the agreed cadence",
                    wanted.to_string(),
                    period.to_string(),
                ));
            }
        }
    }
}

fn resources(c: &ContainerEntry, g: &Gateway, out: &mut Vec<Violation>) {
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

fn strategy_mount(pod: &PodTemplate, c: &ContainerEntry, g: &Gateway, out: &mut Vec<Violation>) {
    let s = &g.strategy_mount;
    let mounts = c.container.volume_mounts.as_deref().unwrap_or_default();
    let Some((i, mount)) = mounts
        .iter()
        .enumerate()
        .find(|(_, m)| same_path(&m.mount_path, &s.mount_path))
    else {
        out.push(Violation::new(
            RuleId::GatewayStrategyMount,
            c.path.field("volumeMounts"),
            "the routing strategies are mounted for the gateway",
            format!("{} mounted at {}", s.config_map, s.mount_path),
            "no such mount",
        ));
        return;
    };
    let path = c.path.field("volumeMounts").item(i, &mount.mount_path);
    if mount.read_only != Some(true) {
        out.push(Violation::new(
            RuleId::GatewayStrategyMount,
            path.field("readOnly"),
            "the strategy mount is read-only",
            "true",
            shown(mount.read_only),
        ));
    }
    let source = pod
        .spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .and_then(|v| v.config_map.as_ref())
        .map(|cm| cm.name.as_str());
    if !source.is_some_and(|name| crate::name_pattern::is_generated_from(&s.config_map, name)) {
        out.push(Violation::new(
            RuleId::GatewayStrategyMount,
            path.field("name"),
            format!(
                "the volume mounted at {} is the strategy ConfigMap",
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
