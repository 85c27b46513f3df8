//! §3.7 — every NetworkPolicy of the namespace stays inside the envelope on
//! its own (policies add up, so one wide policy opens everything).

use super::{read_at, Context, MalformedObject};
use crate::policy::{AllowedPort, Labels, NetworkPolicyEnvelope};
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// The label people set by hand on namespaces before Kubernetes set
/// `kubernetes.io/metadata.name` itself.
const HAND_SET_NAME_LABEL: &str = "name";

pub fn validate(ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let policy: NetworkPolicy = read_at(doc, &[], "NetworkPolicy")?;
    let envelope = &ctx.policy.network_policy;
    let spec = policy.spec.unwrap_or_default();
    let spec_path = FieldPath::root("spec");
    let mut out = Vec::new();

    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let path = spec_path.field("ingress").index(i);
        match rule.from.as_deref() {
            None | Some([]) => out.push(Violation::new(
                RuleId::NetworkPolicyIngressPeers,
                path.field("from"),
                "an ingress rule without sources admits every pod and address",
                format!("namespaces {}", envelope.ingress_namespaces.join(", ")),
                "any source",
            )),
            Some(peers) => {
                for (j, peer) in peers.iter().enumerate() {
                    ingress_peer(peer, envelope, &path.field("from").index(j), &mut out);
                }
            }
        }
        ports(
            rule.ports.as_deref(),
            &envelope.ingress_ports,
            RuleId::NetworkPolicyIngressPorts,
            &path,
            &mut out,
        );
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        ports(
            rule.ports.as_deref(),
            &envelope.egress_ports,
            RuleId::NetworkPolicyEgressPorts,
            &spec_path.field("egress").index(i),
            &mut out,
        );
    }

    let gateway_labels = ctx.policy.gateway.pod_labels();
    if selects(
        &spec.pod_selector.clone().unwrap_or_default(),
        &gateway_labels,
    ) {
        let types = spec.policy_types.unwrap_or_default();
        let missing: Vec<&str> = envelope
            .gateway_policy_types
            .iter()
            .filter(|t| !types.contains(t))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            out.push(Violation::new(
                RuleId::NetworkPolicyPolicyTypes,
                spec_path.field("policyTypes"),
                "a policy selecting the gateway pods restricts both directions",
                envelope.gateway_policy_types.join(", "),
                if types.is_empty() {
                    "unset".to_owned()
                } else {
                    types.join(", ")
                },
            ));
        }
    }
    Ok(out)
}

fn ingress_peer(
    peer: &NetworkPolicyPeer,
    envelope: &NetworkPolicyEnvelope,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let expected = format!(
        "namespaceSelector {} in [{}]",
        envelope.namespace_label,
        envelope.ingress_namespaces.join(", ")
    );
    let deny = |out: &mut Vec<Violation>, field: FieldPath, message: &str, actual: &str| {
        out.push(Violation::new(
            RuleId::NetworkPolicyIngressPeers,
            field,
            message,
            expected.as_str(),
            actual,
        ));
    };
    if peer.ip_block.is_some() {
        deny(
            out,
            path.field("ipBlock"),
            "ingress by address bypasses the namespace envelope",
            "an ipBlock",
        );
        return;
    }
    let Some(selector) = peer.namespace_selector.as_ref() else {
        deny(
            out,
            path.field("podSelector"),
            "only the gateway and monitoring namespaces may connect",
            "pods of this namespace",
        );
        return;
    };
    let nspath = path.field("namespaceSelector");
    if let Some(values) = selected_values(selector, &envelope.namespace_label) {
        if let Some(other) = values
            .iter()
            .find(|v| !envelope.ingress_namespaces.contains(v))
        {
            deny(
                out,
                nspath,
                "only the gateway and monitoring namespaces may connect",
                other,
            );
        }
        return;
    }
    match selected_values(selector, HAND_SET_NAME_LABEL) {
        Some(values)
            if values
                .iter()
                .all(|v| envelope.ingress_namespaces.contains(v)) =>
        {
            out.push(Violation::new(
                RuleId::NetworkPolicyNamespaceLabel,
                nspath,
                format!("the `{HAND_SET_NAME_LABEL}` label works only if someone set it on the namespace"),
                envelope.namespace_label.as_str(),
                HAND_SET_NAME_LABEL,
            ));
        }
        _ => deny(
            out,
            nspath,
            "the selector admits namespaces beyond gateway and monitoring",
            "a wider selector",
        ),
    }
}

/// The values a selector pins `key` to (matchLabels, or an `In`
/// expression), or `None` when it does not restrict `key` to a finite set.
fn selected_values(selector: &LabelSelector, key: &str) -> Option<Vec<String>> {
    let mut values: Option<Vec<String>> = selector
        .match_labels
        .as_ref()
        .and_then(|m| m.get(key))
        .map(|v| vec![v.clone()]);
    for expr in selector.match_expressions.iter().flatten() {
        if expr.key == key && expr.operator == "In" {
            let set = expr.values.clone().unwrap_or_default();
            values = Some(match values {
                // Both constraints hold: the intersection.
                Some(existing) => existing.into_iter().filter(|v| set.contains(v)).collect(),
                None => set,
            });
        }
    }
    values
}

/// Every rule names ports, and each is in the allowed list.
fn ports(
    ports: Option<&[NetworkPolicyPort]>,
    allowed: &[AllowedPort],
    rule: RuleId,
    rule_path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let expected = allowed
        .iter()
        .map(|a| match &a.name {
            Some(name) => format!("{} {} ({name})", a.protocol, a.port),
            None => format!("{} {}", a.protocol, a.port),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let ports = match ports {
        None | Some([]) => {
            out.push(Violation::new(
                rule,
                rule_path.field("ports"),
                "a rule without ports allows every port",
                expected,
                "all ports",
            ));
            return;
        }
        Some(ports) => ports,
    };
    for (k, port) in ports.iter().enumerate() {
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let ok = port
            .end_port
            .is_none_or(|end| Some(&IntOrString::Int(end)) == port.port.as_ref())
            && allowed.iter().any(|a| {
                a.protocol == protocol
                    && match &port.port {
                        Some(IntOrString::Int(n)) => *n == a.port,
                        Some(IntOrString::String(name)) => a.name.as_deref() == Some(name.as_str()),
                        None => false,
                    }
            });
        if !ok {
            let shown = match (&port.port, port.end_port) {
                (None, _) => "every port".to_owned(),
                (Some(IntOrString::Int(n)), Some(end)) => format!("{protocol} {n}-{end}"),
                (Some(IntOrString::Int(n)), None) => format!("{protocol} {n}"),
                (Some(IntOrString::String(s)), _) => format!("{protocol} {s}"),
            };
            out.push(Violation::new(
                rule,
                rule_path.field("ports").index(k),
                "port is outside the allowed set",
                expected.as_str(),
                shown,
            ));
        }
    }
}

/// Whether a label selector selects pods with these labels.
pub fn selects(selector: &LabelSelector, labels: &Labels) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}
