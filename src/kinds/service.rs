//! §3.5 — Services: nothing that bypasses the gateway's route, and the
//! gateway Service itself exactly as the deployment note says.

use super::{has_labels, read_at, Context, MalformedObject};
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

pub fn validate(ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let p = &ctx.policy.service;
    let service: Service = read_at(doc, &[], "Service")?;
    let spec = service.spec.unwrap_or_default();
    let spec_path = FieldPath::root("spec");
    let mut out = Vec::new();

    // ClusterIP is the API server's default.
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
    if service.metadata.name.as_deref() != Some(p.name.as_str()) {
        return Ok(out);
    }

    let ports = spec.ports.unwrap_or_default();
    let port_ok = ports.iter().any(|port| {
        let target_ok = match &port.target_port {
            // Unset defaults to the port itself.
            None => port.port == p.port.target_port,
            Some(IntOrString::Int(n)) => *n == p.port.target_port,
            Some(IntOrString::String(name)) => *name == p.port.name,
        };
        port.port == p.port.port && port.name.as_deref() == Some(p.port.name.as_str()) && target_ok
    });
    if !port_ok {
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
        out.push(Violation::new(
            RuleId::ServicePort,
            spec_path.field("ports"),
            "the gateway Service forwards its named port to the gateway",
            format!(
                "{}/{}->{} (or {})",
                p.port.name, p.port.port, p.port.target_port, p.port.name
            ),
            if actual.is_empty() {
                "no ports".to_owned()
            } else {
                actual.join(", ")
            },
        ));
    }
    if !has_labels(spec.selector.as_ref(), &p.selector) {
        let expected: Vec<String> = p.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push(Violation::new(
            RuleId::ServiceSelector,
            spec_path.field("selector"),
            "the gateway Service selects the gateway pods",
            expected.join(","),
            shown(spec.selector.map(|s| {
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })),
        ));
    }
    Ok(out)
}
