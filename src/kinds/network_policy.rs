//! NetworkPolicies (README: Rules, `networkpolicy.*`): every policy of the
//! namespace stays inside the envelope on its own (policies add up, so one
//! wide policy opens everything).

use super::rule::{Context, Rule};
use crate::policy::{AllowedPort, Labels, NetworkPolicyEnvelope};
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use k8s_openapi::api::networking::v1::{NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const RULES: &[Rule<NetworkPolicySpec>] = &[
    Rule::new(RuleId::NetworkPolicyIngressPeers, ingress_peers),
    Rule::new(RuleId::NetworkPolicyIngressPorts, ingress_ports),
    Rule::new(RuleId::NetworkPolicyEgressPorts, egress_ports),
    Rule::new(RuleId::NetworkPolicyEgressPeers, egress_peers),
    Rule::new(RuleId::NetworkPolicyPolicyTypes, policy_types),
    Rule::new(RuleId::NetworkPolicyNamespaceLabel, namespace_label),
];

/// The label people set by hand on namespaces before Kubernetes set
/// `kubernetes.io/metadata.name` itself.
const HAND_SET_NAME_LABEL: &str = "name";

fn ingress_rule_path(i: usize) -> FieldPath {
    FieldPath::root("spec").field("ingress").index(i)
}

/// Each ingress peer with its path.
fn ingress_peers_of(spec: &NetworkPolicySpec) -> Vec<(FieldPath, &NetworkPolicyPeer)> {
    let mut peers = Vec::new();
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            peers.push((ingress_rule_path(i).field("from").index(j), peer));
        }
    }
    peers
}

/// `networkpolicy.ingress-peers`: ingress only from the allowed
/// namespaces, selected by their name label; no address blocks, no pods of
/// this namespace, no rule without sources.
pub fn ingress_peers(spec: &NetworkPolicySpec, ctx: &Context) -> Vec<Violation> {
    let envelope = &ctx.policy.network_policy;
    let expected = format!(
        "namespaceSelector {} in [{}]",
        envelope.namespace_label,
        envelope.ingress_namespaces.join(", ")
    );
    let violation = |path: FieldPath, message: &str, actual: &str| {
        Violation::new(
            RuleId::NetworkPolicyIngressPeers,
            path,
            message,
            expected.as_str(),
            actual,
        )
    };
    let mut out = Vec::new();
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        if rule.from.as_deref().is_none_or(<[_]>::is_empty) {
            out.push(Violation::new(
                RuleId::NetworkPolicyIngressPeers,
                ingress_rule_path(i).field("from"),
                "an ingress rule without sources admits every pod and address",
                format!("namespaces {}", envelope.ingress_namespaces.join(", ")),
                "any source",
            ));
        }
    }
    for (path, peer) in ingress_peers_of(spec) {
        if peer.ip_block.is_some() {
            out.push(violation(
                path.field("ipBlock"),
                "ingress by address bypasses the namespace envelope",
                "an ipBlock",
            ));
            continue;
        }
        let Some(selector) = peer.namespace_selector.as_ref() else {
            out.push(violation(
                path.field("podSelector"),
                "only the gateway and monitoring namespaces may connect",
                "pods of this namespace",
            ));
            continue;
        };
        let nspath = path.field("namespaceSelector");
        match selected_values(selector, &envelope.namespace_label) {
            Some(values) => {
                if let Some(other) = values
                    .iter()
                    .find(|v| !envelope.ingress_namespaces.contains(v))
                {
                    out.push(violation(
                        nspath,
                        "only the gateway and monitoring namespaces may connect",
                        other,
                    ));
                }
            }
            None if hand_set_label_only(selector, envelope) => {} // namespace-label
            None => out.push(violation(
                nspath,
                "the selector admits namespaces beyond gateway and monitoring",
                "a wider selector",
            )),
        }
    }
    out
}

/// A selector that pins only the hand-set `name` label to allowed values.
fn hand_set_label_only(selector: &LabelSelector, envelope: &NetworkPolicyEnvelope) -> bool {
    selected_values(selector, &envelope.namespace_label).is_none()
        && selected_values(selector, HAND_SET_NAME_LABEL).is_some_and(|values| {
            values
                .iter()
                .all(|v| envelope.ingress_namespaces.contains(v))
        })
}

/// `networkpolicy.namespace-label`: namespaces selected by
/// kubernetes.io/metadata.name, not by a label someone must have set.
pub fn namespace_label(spec: &NetworkPolicySpec, ctx: &Context) -> Vec<Violation> {
    let envelope = &ctx.policy.network_policy;
    ingress_peers_of(spec)
        .into_iter()
        .filter(|(_, peer)| peer.ip_block.is_none())
        .filter(|(_, peer)| {
            peer.namespace_selector
                .as_ref()
                .is_some_and(|s| hand_set_label_only(s, envelope))
        })
        .map(|(path, _)| {
            Violation::new(
                RuleId::NetworkPolicyNamespaceLabel,
                path.field("namespaceSelector"),
                format!("the `{HAND_SET_NAME_LABEL}` label works only if someone set it on the namespace"),
                envelope.namespace_label.as_str(),
                HAND_SET_NAME_LABEL,
            )
        })
        .collect()
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

/// `networkpolicy.ingress-ports`: every ingress rule names its ports, all
/// allowed.
pub fn ingress_ports(spec: &NetworkPolicySpec, ctx: &Context) -> Vec<Violation> {
    let allowed = &ctx.policy.network_policy.ingress_ports;
    let mut out = Vec::new();
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let path = ingress_rule_path(i);
        ports(
            rule.ports.as_deref(),
            allowed,
            RuleId::NetworkPolicyIngressPorts,
            &path,
            &mut out,
        );
    }
    out
}

/// `networkpolicy.egress-ports`: every egress rule names its ports, all
/// allowed.
pub fn egress_ports(spec: &NetworkPolicySpec, ctx: &Context) -> Vec<Violation> {
    let allowed = &ctx.policy.network_policy.egress_ports;
    let mut out = Vec::new();
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let path = FieldPath::root("spec").field("egress").index(i);
        ports(
            rule.ports.as_deref(),
            allowed,
            RuleId::NetworkPolicyEgressPorts,
            &path,
            &mut out,
        );
    }
    out
}

/// `networkpolicy.egress-peers`: every egress rule names its destinations
/// (a rule without `to` reaches every address), and an `ipBlock` covering a
/// range of `networkPolicy.egressExcept` excepts it.
pub fn egress_peers(spec: &NetworkPolicySpec, ctx: &Context) -> Vec<Violation> {
    let guarded = &ctx.policy.network_policy.egress_except;
    let mut out = Vec::new();
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let path = FieldPath::root("spec").field("egress").index(i);
        let peers = rule.to.as_deref().unwrap_or_default();
        if peers.is_empty() {
            out.push(Violation::new(
                RuleId::NetworkPolicyEgressPeers,
                path.field("to"),
                "a rule without destinations reaches every address",
                "destinations",
                "every address",
            ));
        }
        for (j, peer) in peers.iter().enumerate() {
            let Some(block) = &peer.ip_block else {
                continue;
            };
            let Some(cidr) = Cidr::parse(&block.cidr) else {
                out.push(Violation::new(
                    RuleId::NetworkPolicyEgressPeers,
                    path.field("to").index(j).field("ipBlock").field("cidr"),
                    "not an address range",
                    "a CIDR such as 0.0.0.0/0",
                    block.cidr.as_str(),
                ));
                continue;
            };
            let excepted: Vec<Cidr> = block
                .except
                .iter()
                .flatten()
                .filter_map(|e| Cidr::parse(e))
                .collect();
            for range in guarded.iter() {
                let Some(range_cidr) = Cidr::parse(range) else {
                    continue;
                };
                if cidr.contains(&range_cidr) && !excepted.iter().any(|e| e.contains(&range_cidr)) {
                    out.push(Violation::new(
                        RuleId::NetworkPolicyEgressPeers,
                        path.field("to").index(j).field("ipBlock").field("except"),
                        format!("the block reaches {range}"),
                        format!("except: [{range}]"),
                        block.cidr.as_str(),
                    ));
                }
            }
        }
    }
    out
}

/// Whether `text` is an address range (or one address) as an `ipBlock`
/// and `networkPolicy.egressExcept` write it.
pub fn is_address_range(text: &str) -> bool {
    Cidr::parse(text).is_some()
}

/// An address range: `10.0.0.0/8`, `::/0`, or one address.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cidr {
    addr: u128,
    prefix: u32,
    v6: bool,
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u32>().ok()?)),
            None => (text.trim(), None),
        };
        let (addr, v6, bits) = match addr.parse::<std::net::IpAddr>().ok()? {
            // Held in the top bits, so a prefix counts from the top either way.
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, false, 32),
            std::net::IpAddr::V6(a) => (u128::from(a), true, 128),
        };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Cidr { addr, prefix, v6 })
    }

    fn mask(prefix: u32) -> u128 {
        u128::MAX.checked_shl(128 - prefix).unwrap_or(0)
    }

    /// Whether every address of `other` is in this range.
    fn contains(&self, other: &Cidr) -> bool {
        self.v6 == other.v6
            && other.prefix >= self.prefix
            && (self.addr ^ other.addr) & Cidr::mask(self.prefix) == 0
    }
}

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

/// `networkpolicy.policy-types`: a policy selecting the gateway pods
/// restricts both directions.
pub fn policy_types(spec: &NetworkPolicySpec, ctx: &Context) -> Vec<Violation> {
    let envelope = &ctx.policy.network_policy;
    let selector = spec.pod_selector.clone().unwrap_or_default();
    if !selects(&selector, &ctx.policy.gateway.pod_labels()) {
        return Vec::new();
    }
    let types = spec.policy_types.clone().unwrap_or_default();
    let missing = envelope
        .gateway_policy_types
        .iter()
        .any(|t| !types.contains(t));
    if !missing {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::NetworkPolicyPolicyTypes,
        FieldPath::root("spec").field("policyTypes"),
        "a policy selecting the gateway pods restricts both directions",
        envelope.gateway_policy_types.join(", "),
        if types.is_empty() {
            "unset".to_owned()
        } else {
            types.join(", ")
        },
    )]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;
    use serde_json::json;

    fn paths(
        check: fn(&NetworkPolicySpec, &Context) -> Vec<Violation>,
        spec: serde_json::Value,
    ) -> Vec<String> {
        let spec: NetworkPolicySpec = serde_json::from_value(spec).unwrap();
        check(&spec, &ctx()).into_iter().map(|v| v.path).collect()
    }

    fn from(peers: serde_json::Value) -> serde_json::Value {
        json!({"podSelector": {}, "ingress": [{"from": peers, "ports": [{"port": 8787}]}]})
    }

    fn by_name_label(namespaces: &[&str]) -> serde_json::Value {
        json!({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}})
    }

    #[test]
    fn egress_peers_name_destinations_and_except_the_metadata_endpoint() {
        let egress = |to: serde_json::Value| json!({"podSelector": {}, "egress": [{"to": to, "ports": [{"port": 443}]}]});
        let block =
            |cidr: &str, except: &[&str]| json!({"ipBlock": {"cidr": cidr, "except": except}});
        assert!(paths(
            egress_peers,
            egress(json!([block("0.0.0.0/0", &["169.254.0.0/16"])]))
        )
        .is_empty());
        assert!(paths(
            egress_peers,
            egress(json!([block("10.0.0.0/8", &[]), block("::/0", &[])]))
        )
        .is_empty());
        assert_eq!(
            paths(
                egress_peers,
                egress(json!([
                    block("0.0.0.0/0", &["169.254.169.0/30"]),
                    block("169.254.0.0/16", &[]),
                    block("169.254.169.254", &[]),
                    block("nonsense/8", &[])
                ]))
            ),
            [
                "spec.egress[0].to[0].ipBlock.except",
                "spec.egress[0].to[1].ipBlock.except",
                "spec.egress[0].to[2].ipBlock.except",
                "spec.egress[0].to[3].ipBlock.cidr",
            ]
        );
        let no_to = json!({"podSelector": {}, "egress": [{"ports": [{"port": 443}]}, {"to": [], "ports": [{"port": 443}]}]});
        assert_eq!(
            paths(egress_peers, no_to),
            ["spec.egress[0].to", "spec.egress[1].to"]
        );
    }

    #[test]
    fn cidr_containment() {
        let c = |s: &str| Cidr::parse(s).unwrap();
        assert!(c("0.0.0.0/0").contains(&c("169.254.169.254/32")));
        assert!(!c("169.254.169.252/31").contains(&c("169.254.169.254")));
        assert!(c("fd00::/8").contains(&c("fd12::1")));
        assert!(!c("::/0").contains(&c("10.0.0.1")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0.0/x").is_none());
    }

    #[test]
    fn ingress_peers_only_from_the_allowed_namespaces() {
        assert!(paths(
            ingress_peers,
            from(json!([by_name_label(&["gateway", "monitoring"])]))
        )
        .is_empty());
        assert_eq!(
            paths(
                ingress_peers,
                from(
                    json!([by_name_label(&["gateway", "shop"]), {"ipBlock": {"cidr": "0.0.0.0/0"}}, {"podSelector": {}}, {"namespaceSelector": {}}])
                )
            ),
            [
                "spec.ingress[0].from[0].namespaceSelector",
                "spec.ingress[0].from[1].ipBlock",
                "spec.ingress[0].from[2].podSelector",
                "spec.ingress[0].from[3].namespaceSelector",
            ]
        );
        assert_eq!(
            paths(
                ingress_peers,
                json!({"ingress": [{"ports": [{"port": 8787}]}]})
            ),
            ["spec.ingress[0].from"]
        );
    }

    #[test]
    fn a_hand_set_name_label_is_a_warning_not_a_denial() {
        let spec = from(json!([{"namespaceSelector": {"matchLabels": {"name": "gateway"}}}]));
        assert!(paths(ingress_peers, spec.clone()).is_empty());
        assert_eq!(
            paths(namespace_label, spec),
            ["spec.ingress[0].from[0].namespaceSelector"]
        );
        let wider = from(json!([{"namespaceSelector": {"matchLabels": {"name": "shop"}}}]));
        assert!(paths(namespace_label, wider.clone()).is_empty());
        assert_eq!(paths(ingress_peers, wider).len(), 1);
    }

    #[test]
    fn ports_named_and_allowed() {
        assert!(paths(
            ingress_ports,
            json!({"ingress": [{"ports": [{"port": "http"}, {"protocol": "TCP", "port": 8787}]}]})
        )
        .is_empty());
        assert_eq!(
            paths(
                ingress_ports,
                json!({"ingress": [{"ports": [{"port": 8787, "endPort": 9000}]}, {}]})
            ),
            ["spec.ingress[0].ports[0]", "spec.ingress[1].ports"]
        );
        assert!(paths(
            egress_ports,
            json!({"egress": [{"ports": [{"protocol": "UDP", "port": 53}, {"port": 443}]}]})
        )
        .is_empty());
        assert_eq!(
            paths(
                egress_ports,
                json!({"egress": [{"ports": [{"protocol": "UDP", "port": 443}]}]})
            ),
            ["spec.egress[0].ports[0]"]
        );
    }

    #[test]
    fn policy_types_of_a_policy_selecting_the_gateway() {
        assert_eq!(
            paths(
                policy_types,
                json!({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "portkey-gateway"}}, "policyTypes": ["Ingress"]})
            ),
            ["spec.policyTypes"]
        );
        assert!(paths(
            policy_types,
            json!({"podSelector": {"matchLabels": {"app": "other"}}})
        )
        .is_empty());
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: Labels = [("a".to_owned(), "1".to_owned())].into();
        let selector = |v: serde_json::Value| serde_json::from_value::<LabelSelector>(v).unwrap();
        assert!(selects(&selector(json!({})), &labels));
        assert!(selects(
            &selector(
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}, {"key": "b", "operator": "DoesNotExist"}]})
            ),
            &labels
        ));
        assert!(!selects(
            &selector(
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]})
            ),
            &labels
        ));
        assert!(!selects(
            &selector(json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})),
            &labels
        ));
    }
}
