//! Services (README: Rules, `service.*`): nothing that bypasses the
//! gateway's route, and the gateway Service itself exactly as the policy
//! describes it (README: Policy, `service`).

use super::rule::{has_labels, Context, Rule};
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const RULES: &[Rule<Service>] = &[
    Rule::new(RuleId::ServiceType, type_),
    Rule::new(RuleId::ServicePort, port),
    Rule::new(RuleId::ServiceSelector, selector),
];

fn spec(service: &Service) -> ServiceSpec {
    service.spec.clone().unwrap_or_default()
}

/// The gateway Service's spec, `None` for any other Service.
fn gateway_spec(service: &Service, ctx: &Context) -> Option<ServiceSpec> {
    (service.metadata.name.as_deref() == Some(ctx.policy.service.name.as_str()))
        .then(|| spec(service))
}

/// `service.type`: ClusterIP without external IPs (ClusterIP is the API
/// server's default).
pub fn type_(service: &Service, ctx: &Context) -> Vec<Violation> {
    let p = &ctx.policy.service;
    let spec = spec(service);
    let spec_path = FieldPath::root("spec");
    let mut out = Vec::new();
    let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    if !p.allowed_types.iter().any(|t| t == service_type) {
        out.push(Violation::new(
            RuleId::ServiceType,
            spec_path.field("type"),
            "this Service type would expose pods around the gateway route",
            p.allowed_types.join(" | "),
            service_type,
        ));
    }
    if spec
        .external_ips
        .as_ref()
        .is_some_and(|ips| !ips.is_empty())
    {
        out.push(Violation::new(
            RuleId::ServiceType,
            spec_path.field("externalIPs"),
            "external IPs would expose pods around the gateway route",
            "none",
            "external IPs",
        ));
    }
    out
}

/// `service.port`: the gateway Service's named port to the gateway's port.
pub fn port(service: &Service, ctx: &Context) -> Vec<Violation> {
    let Some(spec) = gateway_spec(service, ctx) else {
        return Vec::new();
    };
    let p = &ctx.policy.service.port;
    let ports = spec.ports.unwrap_or_default();
    let port_ok = ports.iter().any(|port| {
        let target_ok = match &port.target_port {
            // Unset defaults to the port itself.
            None => port.port == p.target_port,
            Some(IntOrString::Int(n)) => *n == p.target_port,
            Some(IntOrString::String(name)) => *name == p.name,
        };
        port.port == p.port && port.name.as_deref() == Some(p.name.as_str()) && target_ok
    });
    if port_ok {
        return Vec::new();
    }
    let actual: Vec<String> = ports
        .iter()
        .map(|port| {
            let target = match &port.target_port {
                Some(IntOrString::Int(n)) => n.to_string(),
                Some(IntOrString::String(s)) => s.clone(),
                None => port.port.to_string(),
            };
            format!(
                "{}/{}->{target}",
                port.name.as_deref().unwrap_or("unnamed"),
                port.port
            )
        })
        .collect();
    vec![Violation::new(
        RuleId::ServicePort,
        FieldPath::root("spec").field("ports"),
        "the gateway Service forwards its named port to the gateway",
        format!("{}/{}->{} (or {})", p.name, p.port, p.target_port, p.name),
        if actual.is_empty() {
            "no ports".to_owned()
        } else {
            actual.join(", ")
        },
    )]
}

/// `service.selector`: the gateway Service selects the gateway pods.
pub fn selector(service: &Service, ctx: &Context) -> Vec<Violation> {
    let Some(spec) = gateway_spec(service, ctx) else {
        return Vec::new();
    };
    let wanted = &ctx.policy.service.selector;
    let mut out = Vec::new();
    if spec.publish_not_ready_addresses == Some(true) {
        // Terminating and unready pods would get the gateway's traffic.
        out.push(Violation::new(
            RuleId::ServiceSelector,
            FieldPath::root("spec").field("publishNotReadyAddresses"),
            "the gateway Service sends traffic to ready gateway pods only",
            "false",
            "true",
        ));
    }
    if has_labels(spec.selector.as_ref(), wanted) {
        return out;
    }
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    out.push(Violation::new(
        RuleId::ServiceSelector,
        FieldPath::root("spec").field("selector"),
        "the gateway Service selects the gateway pods",
        pairs(wanted),
        shown(spec.selector.as_ref().map(pairs)),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;
    use serde_json::json;

    fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "portkey-gateway"}, "spec": spec}))
            .unwrap()
    }

    fn paths(
        check: fn(&Service, &Context) -> Vec<Violation>,
        spec: serde_json::Value,
    ) -> Vec<String> {
        check(&service(spec), &ctx())
            .into_iter()
            .map(|v| v.path)
            .collect()
    }

    #[test]
    fn type_cluster_ip_without_external_ips() {
        assert!(paths(type_, json!({})).is_empty());
        assert_eq!(
            paths(
                type_,
                json!({"type": "NodePort", "externalIPs": ["1.2.3.4"]})
            ),
            ["spec.type", "spec.externalIPs"]
        );
    }

    #[test]
    fn port_by_number_or_name() {
        assert!(paths(
            port,
            json!({"ports": [{"name": "http", "port": 8787, "targetPort": "http"}]})
        )
        .is_empty());
        assert!(paths(port, json!({"ports": [{"name": "http", "port": 8787}]})).is_empty());
        assert_eq!(
            paths(
                port,
                json!({"ports": [{"name": "http", "port": 80, "targetPort": 8787}]})
            ),
            ["spec.ports"]
        );
    }

    #[test]
    fn selector_selects_the_gateway() {
        assert!(paths(
            selector,
            json!({"selector": {"app.kubernetes.io/name": "portkey-gateway", "tier": "x"}})
        )
        .is_empty());
        assert_eq!(
            paths(selector, json!({"selector": {"app": "other"}})),
            ["spec.selector"]
        );
    }

    #[test]
    fn only_the_gateway_service_has_a_fixed_port_and_selector() {
        let other: Service = serde_json::from_value(
            json!({"metadata": {"name": "redis"}, "spec": {"ports": [{"port": 6379}]}}),
        )
        .unwrap();
        assert!(port(&other, &ctx()).is_empty() && selector(&other, &ctx()).is_empty());
    }
}
