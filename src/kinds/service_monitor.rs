//! The ServiceMonitor (README: Rules, `servicemonitor.*`) scrapes the
//! gateway the way the policy says (README: Policy, `serviceMonitor`).

use super::rule::{has_labels, Context, Rule};
use crate::duration::PromDuration;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;

pub const RULES: &[Rule<ServiceMonitorSpec>] = &[
    Rule::new(RuleId::ServiceMonitorSelector, selector),
    Rule::new(RuleId::ServiceMonitorEndpoints, endpoints),
    Rule::new(RuleId::ServiceMonitorNamespaceSelector, namespace_selector),
];

/// The fields of a ServiceMonitor's spec the rules read.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    pub(crate) selector: LabelSelector,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) namespace_selector: Option<NamespaceSelector>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Endpoint {
    pub(crate) port: Option<String>,
    path: Option<String>,
    interval: Option<String>,
    scrape_timeout: Option<String>,
    scheme: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct NamespaceSelector {
    pub(crate) any: bool,
    pub(crate) match_names: Vec<String>,
}

fn pairs(m: &std::collections::BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `servicemonitor.selector`: it selects the gateway Service.
pub fn selector(spec: &ServiceMonitorSpec, ctx: &Context) -> Vec<Violation> {
    let wanted = &ctx.policy.service_monitor.selector;
    let labels = spec.selector.match_labels.as_ref();
    if has_labels(labels, wanted) {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::ServiceMonitorSelector,
        FieldPath::root("spec")
            .field("selector")
            .field("matchLabels"),
        "the ServiceMonitor selects the gateway Service",
        pairs(wanted),
        shown(labels.map(pairs)),
    )]
}

/// `servicemonitor.endpoints`: port, path, interval and scheme as the
/// policy says; the scrape timeout within the interval.
pub fn endpoints(spec: &ServiceMonitorSpec, ctx: &Context) -> Vec<Violation> {
    let p = &ctx.policy.service_monitor;
    let spec_path = FieldPath::root("spec");
    let mut out = Vec::new();
    if spec.endpoints.is_empty() {
        out.push(Violation::new(
            RuleId::ServiceMonitorEndpoints,
            spec_path.field("endpoints"),
            "the ServiceMonitor scrapes the gateway",
            format!("port {} path {}", p.port, p.path),
            "no endpoints",
        ));
    }
    let wanted_interval = p.interval.millis();
    for (i, e) in spec.endpoints.iter().enumerate() {
        let path = spec_path.field("endpoints").index(i);
        // The operator's defaults: path /metrics, scheme http.
        let checks = [
            ("port", e.port.as_deref(), None, p.port.as_str()),
            ("path", e.path.as_deref(), Some("/metrics"), p.path.as_str()),
            (
                "scheme",
                e.scheme.as_deref(),
                Some("http"),
                p.scheme.as_str(),
            ),
        ];
        for (field, value, default, wanted) in checks {
            if value.or(default) != Some(wanted) {
                out.push(Violation::new(
                    RuleId::ServiceMonitorEndpoints,
                    path.field(field),
                    format!("the endpoint scrapes {field} {wanted}"),
                    wanted,
                    shown(value),
                ));
            }
        }
        let interval = e
            .interval
            .as_deref()
            .and_then(PromDuration::parse)
            .map(|d| d.millis());
        if interval != Some(wanted_interval) {
            out.push(Violation::new(
                RuleId::ServiceMonitorEndpoints,
                path.field("interval"),
                "the endpoint scrapes at the agreed interval",
                p.interval.as_str(),
                shown(e.interval.as_deref()),
            ));
        }
        if let Some(timeout) = e.scrape_timeout.as_deref() {
            let limit = interval.unwrap_or(wanted_interval);
            if PromDuration::parse(timeout).is_none_or(|t| t.millis() > limit) {
                out.push(Violation::new(
                    RuleId::ServiceMonitorEndpoints,
                    path.field("scrapeTimeout"),
                    "the scrape timeout fits within the interval",
                    format!(
                        "<= {}",
                        e.interval.as_deref().unwrap_or(p.interval.as_str())
                    ),
                    timeout,
                ));
            }
        }
    }
    out
}

/// `servicemonitor.namespace-selector`: only its own namespace.
pub fn namespace_selector(spec: &ServiceMonitorSpec, ctx: &Context) -> Vec<Violation> {
    let Some(ns) = &spec.namespace_selector else {
        return Vec::new();
    };
    let own = ctx.namespace;
    if !ns.any && ns.match_names.iter().all(|n| n == own) {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::ServiceMonitorNamespaceSelector,
        FieldPath::root("spec").field("namespaceSelector"),
        "the ServiceMonitor looks only in its own namespace",
        format!("matchNames [{own}] or unset"),
        if ns.any {
            "any: true".to_owned()
        } else {
            format!("[{}]", ns.match_names.join(", "))
        },
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> ServiceMonitorSpec {
        serde_json::from_value(value).unwrap()
    }

    fn paths(
        check: fn(&ServiceMonitorSpec, &Context) -> Vec<Violation>,
        value: serde_json::Value,
    ) -> Vec<String> {
        check(&spec(value), &ctx())
            .into_iter()
            .map(|v| v.path)
            .collect()
    }

    #[test]
    fn selector_selects_the_gateway_service() {
        assert!(paths(
            selector,
            json!({"selector": {"matchLabels": {"app.kubernetes.io/name": "portkey-gateway"}}})
        )
        .is_empty());
        assert_eq!(paths(selector, json!({})), ["spec.selector.matchLabels"]);
    }

    #[test]
    fn endpoints_with_defaults_and_durations_by_value() {
        assert!(paths(
            endpoints,
            json!({"endpoints": [{"port": "http", "interval": "30s", "scrapeTimeout": "10s"}]})
        )
        .is_empty());
        assert!(paths(
            endpoints,
            json!({"endpoints": [{"port": "http", "interval": "30000ms"}]})
        )
        .is_empty());
        assert_eq!(
            paths(
                endpoints,
                json!({"endpoints": [{"port": "web", "scheme": "https", "interval": "1m", "scrapeTimeout": "45s"}]})
            ),
            [
                "spec.endpoints[0].port",
                "spec.endpoints[0].scheme",
                "spec.endpoints[0].interval"
            ]
        );
        assert_eq!(
            paths(
                endpoints,
                json!({"endpoints": [{"port": "http", "interval": "30s", "scrapeTimeout": "45s"}]})
            ),
            ["spec.endpoints[0].scrapeTimeout"]
        );
        assert_eq!(paths(endpoints, json!({})), ["spec.endpoints"]);
    }

    #[test]
    fn namespace_selector_only_its_own() {
        assert!(paths(
            namespace_selector,
            json!({"namespaceSelector": {"matchNames": ["portkey"]}})
        )
        .is_empty());
        assert_eq!(
            paths(
                namespace_selector,
                json!({"namespaceSelector": {"any": true}})
            ),
            ["spec.namespaceSelector"]
        );
    }
}
