//! The decisions, one module per kind of object (or family of rules), each
//! a table of rules (`RULES`: one function per rule id) and, where the
//! mutating webhook adds fields, of injections (`INJECTIONS`). All pure:
//! JSON in, violations or patch operations out.

pub mod config_map;
pub mod external_secret;
pub mod gateway;
pub mod http_route;
pub mod namespace;
pub mod network_policy;
pub mod pod;
pub mod pod_template;
pub mod pss;
pub mod route;
pub mod rule;
pub mod secret;
pub mod service;
pub mod service_monitor;
pub mod strategy;
pub mod workload;

pub use crate::kind::{HandledKind, Kind, HANDLED_KINDS};
pub use rule::{Context, MalformedObject, Origin};

use crate::object::Doc;
use crate::patch::PatchBuilder;
use crate::rules::RuleId;
use crate::violation::Violation;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::NetworkPolicySpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rule::{check_all, inject_all, read_at};
use serde_json::Value;

/// Mutates `builder`'s document; returns the names of the field groups it
/// injected (each becomes one warning).
pub fn mutate(
    kind: Kind,
    ctx: &Context,
    builder: &mut PatchBuilder,
) -> Result<Vec<String>, MalformedObject> {
    match kind {
        Kind::Namespace => {
            let meta: ObjectMeta = read_at(builder.doc(), &["metadata"], "Namespace")?;
            Ok(inject_all(
                namespace::INJECTIONS,
                &meta,
                ctx.policy,
                builder,
            ))
        }
        kind if kind.has_pod_template() => workload::mutate(kind, ctx, builder),
        _ => Ok(Vec::new()),
    }
}

/// Every violation of `doc` (the final object) under the policy.
pub fn validate(kind: Kind, ctx: &Context, doc: Doc) -> Result<Vec<Violation>, MalformedObject> {
    let name = kind.info().name;
    Ok(match kind {
        Kind::Namespace => {
            let meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
            check_all(namespace::RULES, &meta, ctx)
        }
        Kind::Pod
        | Kind::Deployment
        | Kind::ReplicaSet
        | Kind::StatefulSet
        | Kind::DaemonSet
        | Kind::Job
        | Kind::CronJob => workload::validate(kind, ctx, doc)?,
        Kind::ConfigMap => config_map::validate(ctx, doc)?,
        Kind::Service => {
            let service: Service = read_at(doc, &[], name)?;
            check_all(service::RULES, &service, ctx)
        }
        Kind::Secret => {
            let head: secret::SecretHead = read_at(doc, &[], name)?;
            check_all(secret::RULES, &head, ctx)
        }
        Kind::ExternalSecret => {
            let spec: external_secret::ExternalSecretSpec = read_at(doc, &["spec"], name)?;
            check_all(external_secret::RULES, &spec, ctx)
        }
        Kind::SecretStore => {
            let meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
            check_all(external_secret::SECRET_STORE_RULES, &meta, ctx)
        }
        Kind::PushSecret => {
            let meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
            check_all(external_secret::PUSH_SECRET_RULES, &meta, ctx)
        }
        Kind::NetworkPolicy => {
            let spec: NetworkPolicySpec = read_at(doc, &["spec"], name)?;
            check_all(network_policy::RULES, &spec, ctx)
        }
        Kind::HttpRoute => {
            let route: http_route::HttpRoute = read_at(doc, &[], name)?;
            let claims = route::ClaimedHostnames::read(kind, doc.value())?;
            let mut violations = check_all(route::RULES, &claims, ctx);
            violations.extend(check_all(http_route::RULES, &route, ctx));
            violations
        }
        Kind::ReferenceGrant => {
            let meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
            check_all(route::REFERENCE_GRANT_RULES, &meta, ctx)
        }
        Kind::GrpcRoute | Kind::TlsRoute | Kind::Ingress => {
            let claims = route::ClaimedHostnames::read(kind, doc.value())?;
            check_all(route::RULES, &claims, ctx)
        }
        Kind::ServiceMonitor => {
            let spec: service_monitor::ServiceMonitorSpec = read_at(doc, &["spec"], name)?;
            check_all(service_monitor::RULES, &spec, ctx)
        }
    })
}

/// Every violation an UPDATE brings by what it changes (rules that read
/// the old object as well as the new).
pub fn validate_update(kind: Kind, ctx: &Context, old: &Value, new: &Value) -> Vec<Violation> {
    let rules: &[rule::UpdateRule] = if kind.has_pod_template() {
        pod::UPDATE_RULES
    } else {
        &[]
    };
    let change = rule::Change { old, new };
    rules.iter().flat_map(|r| (r.check)(&change, ctx)).collect()
}

/// The rule ids of every rule table of the kinds, in table order (the
/// relations' are `crate::relations::rule_ids`).
pub fn rule_tables() -> Vec<RuleId> {
    fn ids<T: ?Sized>(rules: &[rule::Rule<T>]) -> impl Iterator<Item = RuleId> + '_ {
        rules.iter().map(|r| r.id)
    }
    ids(namespace::RULES)
        .chain(ids(pss::RULES))
        .chain(ids(pod::RULES))
        .chain(pod::UPDATE_RULES.iter().map(|r| r.id))
        .chain(ids(gateway::RULES))
        .chain(ids(config_map::RULES))
        .chain(ids(strategy::RULES))
        .chain(ids(service::RULES))
        .chain(ids(http_route::RULES))
        .chain(ids(route::RULES))
        .chain(ids(route::REFERENCE_GRANT_RULES))
        .chain(ids(network_policy::RULES))
        .chain(ids(secret::RULES))
        .chain(ids(external_secret::RULES))
        .chain(ids(external_secret::SECRET_STORE_RULES))
        .chain(ids(external_secret::PUSH_SECRET_RULES))
        .chain(ids(service_monitor::RULES))
        .collect()
}
