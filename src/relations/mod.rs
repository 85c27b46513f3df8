//! Relations between objects (README: Rules, `relation.*`): what breaks a
//! deployment although every object is fine on its own — a Service that
//! selects no pod, a route to a port its Service lacks, a key no
//! ExternalSecret writes.
//!
//! Each relation is a pure function over a set of objects, named after its
//! rule id and listed in [`RELATIONS`]; it reports each broken reference on
//! the object that holds it, naming the other object in the message. When
//! the other side is not in the set the relation is unknown, never broken:
//! a name that is absent names nothing only where the set holds every
//! object of that kind (a live listing; never the files given to `check`).
//!
//! `check` applies them across the objects it is given, `audit` across the
//! live namespace, and the webhook, from its cache, to the object being
//! admitted — as warnings only there, since the other object may arrive
//! later in the same sync. `admit` never calls them.

pub mod set;

use crate::kind::Kind;
use crate::kinds::network_policy::selects;
use crate::kinds::pod_spec::Container;
use crate::kinds::pod_template::{same_path, ContainerEntry};
use crate::kinds::rule::{has_labels, Context};
use crate::policy::Labels;
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
pub use set::{Admitted, Member, Object, ObjectId, ObjectName, ObjectSet, Objects, View};

/// One relation: its rule id, the kinds of object it reads (a change to any
/// of them can break it), and the function that finds where it is broken.
pub struct Relation {
    pub id: RuleId,
    pub kinds: &'static [Kind],
    pub check: fn(&Objects<'_>, &Context) -> Vec<Broken>,
}

impl Relation {
    const fn new(
        id: RuleId,
        kinds: &'static [Kind],
        check: fn(&Objects<'_>, &Context) -> Vec<Broken>,
    ) -> Self {
        Relation { id, kinds, check }
    }
}

/// A broken reference: the object that holds it, the objects it names
/// (already named in the message), and the violation on the holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub holder: ObjectId,
    pub others: Vec<ObjectId>,
    pub violation: Violation,
}

/// Every kind with a pod template, and more, as one constant slice.
macro_rules! with_workloads {
    ($($kind:expr),*) => {
        &[$($kind,)* Kind::Pod, Kind::Deployment, Kind::ReplicaSet, Kind::StatefulSet,
          Kind::DaemonSet, Kind::Job, Kind::CronJob]
    };
}

pub const RELATIONS: &[Relation] = &[
    Relation::new(
        RuleId::RelationWorkloadSelector,
        &[
            Kind::Deployment,
            Kind::ReplicaSet,
            Kind::StatefulSet,
            Kind::DaemonSet,
        ],
        workload_selector,
    ),
    Relation::new(
        RuleId::RelationServiceGateway,
        with_workloads!(Kind::Service),
        service_gateway,
    ),
    Relation::new(
        RuleId::RelationRouteBackend,
        &[Kind::HttpRoute, Kind::Service],
        route_backend,
    ),
    Relation::new(
        RuleId::RelationServiceMonitorService,
        &[Kind::ServiceMonitor, Kind::Service],
        servicemonitor_service,
    ),
    Relation::new(
        RuleId::RelationNetworkPolicyGateway,
        with_workloads!(Kind::NetworkPolicy),
        networkpolicy_gateway,
    ),
    Relation::new(
        RuleId::RelationSecretSource,
        with_workloads!(Kind::ExternalSecret),
        secret_source,
    ),
    Relation::new(
        RuleId::RelationStrategyEnv,
        with_workloads!(Kind::ConfigMap, Kind::ExternalSecret),
        strategy_env,
    ),
    Relation::new(
        RuleId::RelationConfigMaps,
        with_workloads!(Kind::ConfigMap),
        config_maps,
    ),
];

/// Every relation over the view.
pub fn check(objects: &Objects<'_>, ctx: &Context) -> Vec<Broken> {
    let mut out = Vec::new();
    for relation in RELATIONS {
        out.extend(run(relation, objects, ctx));
    }
    out
}

/// The broken relations that involve one object of the view (as the
/// holder, or as the object named): what writing that object breaks or
/// leaves broken. Only relations that read its kind run.
pub fn involving(objects: &Objects<'_>, ctx: &Context, id: ObjectId, kind: Kind) -> Vec<Broken> {
    let mut out = Vec::new();
    for relation in RELATIONS.iter().filter(|r| r.kinds.contains(&kind)) {
        out.extend(
            run(relation, objects, ctx)
                .into_iter()
                .filter(|b| b.holder == id || b.others.contains(&id)),
        );
    }
    out
}

fn run(relation: &Relation, objects: &Objects<'_>, ctx: &Context) -> Vec<Broken> {
    let found = (relation.check)(objects, ctx);
    debug_assert!(
        found.iter().all(|b| b.violation.rule == relation.id),
        "the function of {} reported another rule",
        relation.id
    );
    found
}

fn broken(
    rule: RuleId,
    holder: &Member<'_>,
    others: Vec<ObjectId>,
    path: FieldPath,
    message: String,
    expected: impl Into<String>,
    actual: impl Into<String>,
) -> Broken {
    Broken {
        holder: holder.id,
        others,
        violation: Violation::new(rule, path, message, expected, actual),
    }
}

fn pairs(labels: &Labels) -> String {
    if labels.is_empty() {
        return "no labels".to_owned();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A label selector as kubectl's `-l` would write it.
fn shown_selector(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            op => format!("{} {} ({values})", e.key, op.to_ascii_lowercase()),
        });
    }
    if parts.is_empty() {
        "everything".to_owned()
    } else {
        parts.join(",")
    }
}

fn names(members: &[Member<'_>]) -> String {
    members
        .iter()
        .map(|m| m.name().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The labels of a workload's pods.
fn pod_labels<'a>(m: &Member<'a>) -> Option<&'a Labels> {
    m.object.workload()?.template.meta.labels.as_ref()
}

/// Whether a Service or NetworkPolicy named `name` is meant for the
/// gateway: named after the gateway Service or one of the `gateways`
/// (the view's gateway workloads).
fn meant_for_gateway(name: &str, gateways: &[Member<'_>], policy: &crate::policy::Policy) -> bool {
    name == policy.service.name || gateways.iter().any(|g| g.object.name == name)
}

/// Whether a Service or NetworkPolicy that selects none of the set's pods
/// is known to be broken: where the set holds every workload, it selects
/// nothing at all; elsewhere only when it is meant for the gateway — its
/// pods might otherwise be in files not given.
fn selecting_nothing_is_known(
    name: &str,
    objects: &Objects<'_>,
    gateways: &[Member<'_>],
    ctx: &Context,
) -> bool {
    objects.workloads_complete() || meant_for_gateway(name, gateways, ctx.policy)
}

/// Whether a workload is being admitted that is not one of the `gateways`:
/// the Service and NetworkPolicy relations hold their findings on the
/// Service or NetworkPolicy and name only gateway workloads, so none of
/// them involves it, and there is nothing to look for.
fn names_no_admitted_workload(objects: &Objects<'_>, gateways: &[Member<'_>]) -> bool {
    objects
        .admitted()
        .is_some_and(|a| a.object.kind.has_pod_template())
        && !gateways.iter().any(|g| g.id == ObjectId::ADMITTED)
}

/// The Services or NetworkPolicies to look at: with a (gateway) workload
/// being admitted, only those a finding involving it can be held on
/// ([`Objects::gateway_selectors`]); otherwise all of them.
fn gateway_selectors<'a>(objects: &Objects<'a>, kind: Kind) -> Vec<Member<'a>> {
    match objects.admitted() {
        Some(a) if a.object.kind.has_pod_template() => objects.gateway_selectors(kind, &a),
        _ => objects.holders(kind),
    }
}

/// A selector (`spec.<field>`, shown as `selector`) of `holder` that
/// selects none of the gateway pods: `what` it does, and the labels the
/// gateway pods carry.
fn misses_the_gateway(
    rule: RuleId,
    holder: &Member<'_>,
    gateways: &[Member<'_>],
    field: &str,
    what: &str,
    selector: String,
) -> Broken {
    broken(
        rule,
        holder,
        gateways.iter().map(|g| g.id).collect(),
        FieldPath::root("spec").field(field),
        format!(
            "{what}: the gateway pods of {} carry other labels",
            names(gateways)
        ),
        gateways
            .iter()
            .filter_map(pod_labels)
            .map(pairs)
            .collect::<Vec<_>>()
            .join(" | "),
        selector,
    )
}

// === impl relation.workload-selector ===

/// `relation.workload-selector`: a Deployment's (ReplicaSet's,
/// StatefulSet's, DaemonSet's) selector selects its own template's pods.
/// The API server refuses such a workload, so this is caught offline.
pub fn workload_selector(objects: &Objects<'_>, _: &Context) -> Vec<Broken> {
    let mut out = Vec::new();
    let kinds = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
    ];
    // A workload's selector is about itself alone: with an object being
    // admitted, only it.
    let holders: Vec<Member<'_>> = match objects.admitted() {
        Some(a) => vec![a]
            .into_iter()
            .filter(|a| kinds.contains(&a.object.kind))
            .collect(),
        None => kinds.iter().flat_map(|k| objects.of(*k)).collect(),
    };
    {
        for m in holders {
            let Some(workload) = m.object.workload() else {
                continue;
            };
            // Without a selector there is nothing to compare (the API
            // server refuses it with its own message).
            let Some(selector) = &workload.selector else {
                continue;
            };
            let empty = Labels::new();
            let labels = workload.template.meta.labels.as_ref().unwrap_or(&empty);
            if selects(selector, labels) {
                continue;
            }
            out.push(broken(
                RuleId::RelationWorkloadSelector,
                &m,
                Vec::new(),
                FieldPath::root("spec").field("selector"),
                format!(
                    "the selector does not select the pods of {}'s own template (spec.template.metadata.labels)",
                    m.name()
                ),
                shown_selector(selector),
                pairs(labels),
            ));
        }
    }
    out
}

// === impl relation.service-gateway ===

/// Whether `target` (a Service's targetPort) reaches the gateway port on
/// one of the workload's gateway containers: by number, or by a port name
/// the container declares for that number.
fn reaches_gateway(gateway: &Member<'_>, target: &IntOrString, port: i32) -> bool {
    let Some(workload) = gateway.object.workload() else {
        return false;
    };
    gateway.gateway.iter().any(|i| {
        let container = &workload.template.containers[*i].container;
        match target {
            IntOrString::Int(n) => *n == port,
            IntOrString::String(name) => container
                .ports
                .iter()
                .flatten()
                .any(|p| p.name.as_deref() == Some(name.as_str()) && p.container_port == port),
        }
    })
}

/// The names of the gateway container's ports for `port`, for messages.
fn gateway_port_names(gateway: &Member<'_>, port: i32) -> Vec<String> {
    let Some(workload) = gateway.object.workload() else {
        return Vec::new();
    };
    gateway
        .gateway
        .iter()
        .flat_map(|i| {
            workload.template.containers[*i]
                .container
                .ports
                .iter()
                .flatten()
        })
        .filter(|p| p.container_port == port)
        .filter_map(|p| p.name.clone())
        .collect()
}

/// `relation.service-gateway`: a Service that selects the gateway pods
/// sends every port to the gateway port (a numeric targetPort of that
/// number, or a name the gateway container gives it); the gateway Service,
/// or any Service where the set holds every workload, selects some pod.
pub fn service_gateway(objects: &Objects<'_>, ctx: &Context) -> Vec<Broken> {
    let gateways: Vec<Member<'_>> = objects.gateway_workloads().collect();
    if gateways.is_empty() || names_no_admitted_workload(objects, &gateways) {
        return Vec::new(); // No gateway pods to reach: unknown.
    }
    let port = ctx.policy.gateway.port.container_port;
    let mut out = Vec::new();
    for service in gateway_selectors(objects, Kind::Service) {
        let View::Service(spec) = &service.object.view else {
            continue;
        };
        // No selector: endpoints are managed by hand, not by labels.
        let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let selected: Vec<&Member<'_>> = gateways
            .iter()
            .filter(|g| has_labels(pod_labels(g), selector))
            .collect();
        if selected.is_empty() {
            let selects_other_pods = !objects.workloads_labelled(selector).is_empty();
            if selects_other_pods
                || !selecting_nothing_is_known(&service.object.name, objects, &gateways, ctx)
            {
                continue;
            }
            out.push(misses_the_gateway(
                RuleId::RelationServiceGateway,
                &service,
                &gateways,
                "selector",
                "the selector selects no pod",
                pairs(selector),
            ));
            continue;
        }
        for (i, p) in spec.ports.iter().flatten().enumerate() {
            let port_path = FieldPath::root("spec").field("ports").index(i);
            let (target, path) = match &p.target_port {
                Some(t) => (t.clone(), port_path.field("targetPort")),
                // Unset: the Service port itself.
                None => (IntOrString::Int(p.port), port_path.field("port")),
            };
            for gateway in &selected {
                if reaches_gateway(gateway, &target, port) {
                    continue;
                }
                let named = gateway_port_names(gateway, port);
                let expected = if named.is_empty() {
                    port.to_string()
                } else {
                    format!("{port} or {}", named.join(" or "))
                };
                let shown = match &target {
                    IntOrString::Int(n) => n.to_string(),
                    IntOrString::String(s) => s.clone(),
                };
                out.push(broken(
                    RuleId::RelationServiceGateway,
                    &service,
                    vec![gateway.id],
                    path.clone(),
                    format!(
                        "port {} does not reach the gateway port of {}",
                        p.name.as_deref().unwrap_or(&p.port.to_string()),
                        gateway.name()
                    ),
                    expected,
                    shown,
                ));
            }
        }
    }
    out
}

// === impl relation.route-backend ===

/// `relation.route-backend`: every backendRef (and mirror) of a route that
/// names a Service of the namespace names one the set holds on a port it
/// exposes.
pub fn route_backend(objects: &Objects<'_>, _: &Context) -> Vec<Broken> {
    let mut out = Vec::new();
    for route in objects.holders(Kind::HttpRoute) {
        let View::HttpRoute(refs) = &route.object.view else {
            continue;
        };
        for r in refs {
            let core = matches!(r.group.as_deref(), None | Some("") | Some("core"));
            if !core || r.kind.as_deref().unwrap_or("Service") != "Service" {
                continue;
            }
            let namespace = r.namespace.as_deref().unwrap_or(objects.namespace());
            if namespace != objects.namespace() {
                continue;
            }
            let Some(service) = objects.named(Kind::Service, &r.name) else {
                if objects.complete(Kind::Service) {
                    out.push(broken(
                        RuleId::RelationRouteBackend,
                        &route,
                        Vec::new(),
                        r.path.field("name"),
                        format!("Service {namespace}/{} does not exist", r.name),
                        "a Service of the namespace",
                        r.name.clone(),
                    ));
                }
                continue;
            };
            let (Some(port), View::Service(spec)) = (r.port, &service.object.view) else {
                continue;
            };
            let ports: Vec<i32> = spec.ports.iter().flatten().map(|p| p.port).collect();
            if ports.contains(&port) {
                continue;
            }
            out.push(broken(
                RuleId::RelationRouteBackend,
                &route,
                vec![service.id],
                r.path.field("port"),
                format!("{} does not expose port {port}", service.name()),
                if ports.is_empty() {
                    "a port of the Service (it has none)".to_owned()
                } else {
                    ports
                        .iter()
                        .map(i32::to_string)
                        .collect::<Vec<_>>()
                        .join(" | ")
                },
                port.to_string(),
            ));
        }
    }
    out
}

// === impl relation.servicemonitor-service ===

/// `relation.servicemonitor-service`: a ServiceMonitor of the namespace
/// selects the gateway Service, and each endpoint's port is a port name of
/// every Service it selects.
pub fn servicemonitor_service(objects: &Objects<'_>, ctx: &Context) -> Vec<Broken> {
    let mut out = Vec::new();
    let services: Vec<Member<'_>> = objects.of(Kind::Service).collect();
    for monitor in objects.holders(Kind::ServiceMonitor) {
        let View::ServiceMonitor(spec) = &monitor.object.view else {
            continue;
        };
        let looks_here = spec.any_namespace
            || spec
                .match_names
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == objects.namespace()));
        if !looks_here {
            continue; // Services of other namespaces: not in the set.
        }
        let selected: Vec<&Member<'_>> = services
            .iter()
            .filter(|s| selects(&spec.selector, &s.object.labels))
            .collect();
        let gateway_service = services
            .iter()
            .find(|s| s.object.name == ctx.policy.service.name);
        let selector_path = FieldPath::root("spec").field("selector");
        match gateway_service {
            Some(g) if !selected.iter().any(|s| s.id == g.id) => out.push(broken(
                RuleId::RelationServiceMonitorService,
                &monitor,
                vec![g.id],
                selector_path,
                format!(
                    "the selector does not select {} (its labels: {})",
                    g.name(),
                    pairs(&g.object.labels)
                ),
                format!("labels of {}", g.name()),
                shown_selector(&spec.selector),
            )),
            None if selected.is_empty() && objects.complete(Kind::Service) => out.push(broken(
                RuleId::RelationServiceMonitorService,
                &monitor,
                Vec::new(),
                selector_path,
                format!(
                    "the selector selects no Service of namespace {}",
                    objects.namespace()
                ),
                "a Service's labels",
                shown_selector(&spec.selector),
            )),
            _ => {}
        }
        for (k, port) in spec.endpoint_ports.iter().enumerate() {
            let Some(port) = port else {
                continue; // scraped by targetPort
            };
            for service in &selected {
                let View::Service(svc) = &service.object.view else {
                    continue;
                };
                let port_names: Vec<&str> = svc
                    .ports
                    .iter()
                    .flatten()
                    .filter_map(|p| p.name.as_deref())
                    .collect();
                if port_names.contains(&port.as_str()) {
                    continue;
                }
                out.push(broken(
                    RuleId::RelationServiceMonitorService,
                    &monitor,
                    vec![service.id],
                    FieldPath::root("spec")
                        .field("endpoints")
                        .index(k)
                        .field("port"),
                    format!("{} has no port named {port}", service.name()),
                    if port_names.is_empty() {
                        "a named port (the Service names none)".to_owned()
                    } else {
                        port_names.join(" | ")
                    },
                    port.clone(),
                ));
            }
        }
    }
    out
}

// === impl relation.networkpolicy-gateway ===

/// `relation.networkpolicy-gateway`: a NetworkPolicy meant for the gateway
/// (see [`meant_for_gateway`]) selects the gateway pods, whatever other
/// pods it selects; any other NetworkPolicy that selects no gateway pod
/// selects some other pod of the set, or it protects nothing.
pub fn networkpolicy_gateway(objects: &Objects<'_>, ctx: &Context) -> Vec<Broken> {
    let gateways: Vec<Member<'_>> = objects.gateway_workloads().collect();
    if gateways.is_empty() || names_no_admitted_workload(objects, &gateways) {
        return Vec::new(); // No gateway pods: unknown.
    }
    let empty = Labels::new();
    let mut out = Vec::new();
    for policy in gateway_selectors(objects, Kind::NetworkPolicy) {
        let View::NetworkPolicy(selector) = &policy.object.view else {
            continue;
        };
        let selects_pods = |m: &Member<'_>| selects(selector, pod_labels(m).unwrap_or(&empty));
        if gateways.iter().any(selects_pods) {
            continue;
        }
        // Candidates by a label the selector pins, where it pins one.
        let candidates = match selector.match_labels.as_ref().filter(|l| !l.is_empty()) {
            Some(labels) => objects.workloads_labelled(labels),
            None => objects.workloads().collect(),
        };
        let others: Vec<Member<'_>> = candidates.into_iter().filter(selects_pods).collect();
        let meant = meant_for_gateway(&policy.object.name, &gateways, ctx.policy);
        let what = if !others.is_empty() {
            // Another app's policy protects that app.
            if !meant {
                continue;
            }
            format!(
                "the podSelector selects the pods of {} but no gateway pod, so the gateway is not protected by it",
                names(&others)
            )
        } else if meant || objects.workloads_complete() {
            "the podSelector selects no pod, so the policy protects nothing".to_owned()
        } else {
            continue;
        };
        out.push(misses_the_gateway(
            RuleId::RelationNetworkPolicyGateway,
            &policy,
            &gateways,
            "podSelector",
            &what,
            shown_selector(selector),
        ));
    }
    out
}

// === impl relation.secret-source ===

/// Whether some producer writes `key`: `None` when a producer writes keys
/// its manifest does not list (`dataFrom`, `templateFrom`).
fn produces_key(producers: &[Member<'_>], key: &str) -> Option<bool> {
    let mut open = false;
    for p in producers {
        if let View::ExternalSecret(es) = &p.object.view {
            if es.keys.contains(key) {
                return Some(true);
            }
            open |= es.open_keys;
        }
    }
    (!open).then_some(false)
}

fn written_keys(producers: &[Member<'_>]) -> String {
    let keys: Vec<&str> = producers
        .iter()
        .filter_map(|p| match &p.object.view {
            View::ExternalSecret(es) => Some(es.keys.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    if keys.is_empty() {
        "a key it writes (it writes none)".to_owned()
    } else {
        keys.join(" | ")
    }
}

/// A container's env and envFrom entries with their paths, for every
/// container that runs with the pod.
fn running_containers<'a>(m: &Member<'a>) -> impl Iterator<Item = &'a ContainerEntry> + 'a {
    m.object
        .workload()
        .into_iter()
        .flat_map(|w| w.template.running_containers())
}

/// Where in a container an environment reference is: `env[k].valueFrom.<field>`
/// or `envFrom[k].<field>`.
#[derive(Clone, Copy)]
enum EnvRef {
    Env(usize, &'static str),
    EnvFrom(usize, &'static str),
}

impl EnvRef {
    fn path(self, c: &ContainerEntry) -> FieldPath {
        match self {
            EnvRef::Env(k, field) => c.path.field("env").index(k).field("valueFrom").field(field),
            EnvRef::EnvFrom(k, field) => c.path.field("envFrom").index(k).field(field),
        }
    }
}

/// `relation.secret-source`: every Secret a container reads through a
/// secretKeyRef or envFrom is produced by an ExternalSecret, which writes
/// the key read. (Secrets come only from External Secrets; they are never
/// read or listed themselves.)
pub fn secret_source(objects: &Objects<'_>, _: &Context) -> Vec<Broken> {
    let mut out = Vec::new();
    for workload in objects.holder_workloads() {
        for c in running_containers(&workload) {
            // (where, Secret name, key): paths are made only for what breaks.
            let mut refs: Vec<(EnvRef, &str, Option<&str>)> = Vec::new();
            for (k, env) in c.container.env.iter().flatten().enumerate() {
                let Some(r) = env
                    .value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                else {
                    continue;
                };
                if r.optional != Some(true) {
                    refs.push((EnvRef::Env(k, "secretKeyRef"), &r.name, Some(&r.key)));
                }
            }
            for (k, from) in c.container.env_from.iter().flatten().enumerate() {
                let Some(r) = from.secret_ref.as_ref() else {
                    continue;
                };
                if r.optional != Some(true) {
                    refs.push((EnvRef::EnvFrom(k, "secretRef"), &r.name, None));
                }
            }
            for (at, name, key) in refs {
                let path = || at.path(c);
                let found = objects.producers(name);
                if found.is_empty() {
                    if objects.complete(Kind::ExternalSecret) {
                        out.push(broken(
                            RuleId::RelationSecretSource,
                            &workload,
                            Vec::new(),
                            path().field("name"),
                            format!(
                                "no ExternalSecret of namespace {} produces Secret {name}",
                                objects.namespace()
                            ),
                            format!("an ExternalSecret with target {name}"),
                            "none",
                        ));
                    }
                    continue;
                }
                let Some(key) = key else {
                    continue;
                };
                if produces_key(&found, key) == Some(false) {
                    out.push(broken(
                        RuleId::RelationSecretSource,
                        &workload,
                        found.iter().map(|p| p.id).collect(),
                        path().field("key"),
                        format!(
                            "{} does not write key {key} into Secret {name}",
                            names(&found)
                        ),
                        written_keys(&found),
                        key,
                    ));
                }
            }
        }
    }
    out
}

// === impl relation.strategy-env ===

/// Whether the container's environment sets `var`: `None` when an envFrom
/// source it reads could hold it but its keys are not known.
fn env_sets(container: &Container, var: &str, objects: &Objects<'_>) -> Option<bool> {
    if container.env.iter().flatten().any(|e| e.name == var) {
        return Some(true);
    }
    let mut unknown = false;
    for from in container.env_from.iter().flatten() {
        let Some(key) = var.strip_prefix(from.prefix.as_deref().unwrap_or("")) else {
            continue;
        };
        if let Some(r) = &from.config_map_ref {
            match objects
                .named(Kind::ConfigMap, &r.name)
                .map(|m| &m.object.view)
            {
                Some(View::ConfigMap(cm)) if cm.keys.contains(key) => return Some(true),
                Some(_) => {}
                None => unknown = true,
            }
        }
        if let Some(r) = &from.secret_ref {
            let found = objects.producers(&r.name);
            match produces_key(&found, key) {
                Some(true) => return Some(true),
                Some(false) if !found.is_empty() => {}
                // No producer in the view, or one that writes keys its
                // manifest does not list: the Secret's keys are unknown.
                _ => unknown = true,
            }
        }
    }
    (!unknown).then_some(false)
}

/// `relation.strategy-env`: every `$VAR` of the strategy files a gateway
/// container mounts (at `gateway.strategyMount.mountPath`) is set in that
/// container's environment. Reported on the ConfigMap that holds the
/// reference.
pub fn strategy_env(objects: &Objects<'_>, ctx: &Context) -> Vec<Broken> {
    let mount_path = &ctx.policy.gateway.strategy_mount.mount_path;
    let mut out = Vec::new();
    // What a workload being admitted is involved in is its own strategies
    // only (each finding names the one gateway it is about).
    let gateways: Vec<Member<'_>> = match objects.admitted() {
        Some(a) if a.object.workload().is_some() => {
            // Only a gateway has strategies; a controller's copy is its
            // owner's business.
            if a.object.controlled || a.gateway.is_empty() {
                Vec::new()
            } else {
                vec![a]
            }
        }
        _ => objects.gateway_workloads().collect(),
    };
    for gateway in gateways {
        let Some(workload) = gateway.object.workload() else {
            continue;
        };
        for i in gateway.gateway {
            let c = &workload.template.containers[*i];
            let Some(mount) = c
                .container
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| same_path(&m.mount_path, mount_path))
            else {
                continue;
            };
            let Some(config_map) = workload
                .template
                .spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == mount.name)
                .and_then(|v| v.config_map.as_ref())
            else {
                continue;
            };
            // Not in the view: relation.config-maps speaks for it.
            let Some(files) = objects.named(Kind::ConfigMap, &config_map.name) else {
                continue;
            };
            let View::ConfigMap(view) = &files.object.view else {
                continue;
            };
            for (path, var) in &view.env_references {
                if env_sets(&c.container, var, objects) != Some(false) {
                    continue;
                }
                out.push(broken(
                    RuleId::RelationStrategyEnv,
                    &files,
                    vec![gateway.id],
                    path.clone(),
                    format!(
                        "${var} is not set in container {} of {}, which mounts these strategies",
                        c.container.name,
                        gateway.name()
                    ),
                    format!("{var} in the container's env or envFrom"),
                    "unset",
                ));
            }
        }
    }
    out
}

// === impl relation.config-maps ===

/// The keys a ConfigMap volume (or projected source) reads by name.
fn item_keys(items: &Option<Vec<k8s_openapi::api::core::v1::KeyToPath>>) -> Vec<&str> {
    items
        .iter()
        .flatten()
        .map(|item| item.key.as_str())
        .collect()
}

/// Where a pod reads a ConfigMap; its path is made only when it breaks.
#[derive(Clone, Copy)]
enum ConfigMapAt<'a> {
    /// `volumes[i].configMap`
    Volume(usize),
    /// `volumes[i].projected.sources[j].configMap`
    Projected(usize, usize),
    /// `envFrom[k].configMapRef` or `env[k].valueFrom.configMapKeyRef` of a
    /// container.
    Env(&'a ContainerEntry, EnvRef),
}

impl ConfigMapAt<'_> {
    fn path(self, w: &set::Workload) -> FieldPath {
        let volume = |i: usize| {
            let name = w
                .template
                .spec
                .volumes
                .as_deref()
                .and_then(|v| v.get(i))
                .map_or("", |v| v.name.as_str());
            w.template.spec_path().field("volumes").item(i, name)
        };
        match self {
            ConfigMapAt::Volume(i) => volume(i).field("configMap"),
            ConfigMapAt::Projected(i, j) => volume(i)
                .field("projected")
                .field("sources")
                .index(j)
                .field("configMap"),
            ConfigMapAt::Env(c, at) => at.path(c),
        }
    }

    /// The path of the `n`th key it reads.
    fn key_path(self, w: &set::Workload, n: usize) -> FieldPath {
        match self {
            ConfigMapAt::Env(..) => self.path(w).field("key"),
            _ => self.path(w).field("items").index(n).field("key"),
        }
    }
}

/// `relation.config-maps`: every ConfigMap a pod mounts (a volume, or a
/// projected source) or reads (envFrom, configMapKeyRef) exists, with the
/// keys named; references marked optional are left alone.
pub fn config_maps(objects: &Objects<'_>, _: &Context) -> Vec<Broken> {
    let mut out = Vec::new();
    for workload in objects.holder_workloads() {
        let Some(w) = workload.object.workload() else {
            continue;
        };
        // (where, ConfigMap name, keys read)
        let mut refs: Vec<(ConfigMapAt<'_>, &str, Vec<&str>)> = Vec::new();
        for (i, volume) in w.template.spec.volumes.iter().flatten().enumerate() {
            if let Some(cm) = volume
                .config_map
                .as_ref()
                .filter(|c| c.optional != Some(true))
            {
                refs.push((ConfigMapAt::Volume(i), &cm.name, item_keys(&cm.items)));
            }
            let sources = volume.projected.as_ref().and_then(|p| p.sources.as_ref());
            for (j, source) in sources.into_iter().flatten().enumerate() {
                if let Some(cm) = source
                    .config_map
                    .as_ref()
                    .filter(|c| c.optional != Some(true))
                {
                    refs.push((ConfigMapAt::Projected(i, j), &cm.name, item_keys(&cm.items)));
                }
            }
        }
        for c in running_containers(&workload) {
            for (k, from) in c.container.env_from.iter().flatten().enumerate() {
                if let Some(r) = from
                    .config_map_ref
                    .as_ref()
                    .filter(|r| r.optional != Some(true))
                {
                    let at = ConfigMapAt::Env(c, EnvRef::EnvFrom(k, "configMapRef"));
                    refs.push((at, &r.name, Vec::new()));
                }
            }
            for (k, env) in c.container.env.iter().flatten().enumerate() {
                if let Some(r) = env
                    .value_from
                    .as_ref()
                    .and_then(|v| v.config_map_key_ref.as_ref())
                    .filter(|r| r.optional != Some(true))
                {
                    let at = ConfigMapAt::Env(c, EnvRef::Env(k, "configMapKeyRef"));
                    refs.push((at, &r.name, vec![r.key.as_str()]));
                }
            }
        }
        for (at, name, keys) in refs {
            let Some(config_map) = objects.named(Kind::ConfigMap, name) else {
                if objects.complete(Kind::ConfigMap) {
                    out.push(broken(
                        RuleId::RelationConfigMaps,
                        &workload,
                        Vec::new(),
                        at.path(w).field("name"),
                        format!(
                            "ConfigMap {}/{name} does not exist (pods cannot start)",
                            objects.namespace()
                        ),
                        "an existing ConfigMap, or optional: true",
                        name,
                    ));
                }
                continue;
            };
            let View::ConfigMap(view) = &config_map.object.view else {
                continue;
            };
            for (n, key) in keys.into_iter().enumerate() {
                if view.keys.contains(key) {
                    continue;
                }
                out.push(broken(
                    RuleId::RelationConfigMaps,
                    &workload,
                    vec![config_map.id],
                    at.key_path(w, n),
                    format!("{} has no key {key}", config_map.name()),
                    if view.keys.is_empty() {
                        "a key of the ConfigMap (it has none)".to_owned()
                    } else {
                        view.keys
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(" | ")
                    },
                    key,
                ));
            }
        }
    }
    out
}

/// The rule ids of [`RELATIONS`], in table order.
pub fn rule_ids() -> impl Iterator<Item = RuleId> {
    RELATIONS.iter().map(|r| r.id)
}

#[cfg(test)]
mod tests;
