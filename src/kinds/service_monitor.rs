//! §3.9 — the ServiceMonitor scrapes the gateway the way the note says.

use super::{has_labels, read_at, Context, MalformedObject};
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    endpoints: Vec<Endpoint>,
    namespace_selector: Option<NamespaceSelector>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Endpoint {
    port: Option<String>,
    path: Option<String>,
    interval: Option<String>,
    scrape_timeout: Option<String>,
    scheme: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct NamespaceSelector {
    any: bool,
    match_names: Vec<String>,
}

/// Parses a Prometheus duration (`30s`, `1m30s`, `500ms`) into milliseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(ms)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

pub fn validate(ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let p = &ctx.policy.service_monitor;
    let spec: ServiceMonitorSpec = read_at(doc, &["spec"], "ServiceMonitor")?;
    let spec_path = FieldPath::root("spec");
    let mut out = Vec::new();

    if !has_labels(spec.selector.match_labels.as_ref(), &p.selector) {
        out.push(Violation::new(
            RuleId::ServiceMonitorSelector,
            spec_path.field("selector").field("matchLabels"),
            "the ServiceMonitor selects the gateway Service",
            p.selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            shown(spec.selector.match_labels.as_ref().map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })),
        ));
    }
    if spec.endpoints.is_empty() {
        out.push(Violation::new(
            RuleId::ServiceMonitorEndpoints,
            spec_path.field("endpoints"),
            "the ServiceMonitor scrapes the gateway",
            format!("port {} path {}", p.port, p.path),
            "no endpoints",
        ));
    }
    let wanted_interval = parse_duration(&p.interval);
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
            let effective = value.or(default);
            if effective != Some(wanted) {
                out.push(Violation::new(
                    RuleId::ServiceMonitorEndpoints,
                    path.field(field),
                    format!("the endpoint scrapes {field} {wanted}"),
                    wanted,
                    shown(value),
                ));
            }
        }
        let interval = e.interval.as_deref().and_then(parse_duration);
        if interval.is_none() || interval != wanted_interval {
            out.push(Violation::new(
                RuleId::ServiceMonitorEndpoints,
                path.field("interval"),
                "the endpoint scrapes at the agreed interval",
                p.interval.as_str(),
                shown(e.interval.as_deref()),
            ));
        }
        if let Some(timeout) = e.scrape_timeout.as_deref() {
            let limit = interval.or(wanted_interval);
            if parse_duration(timeout).is_none_or(|t| limit.is_some_and(|l| t > l)) {
                out.push(Violation::new(
                    RuleId::ServiceMonitorEndpoints,
                    path.field("scrapeTimeout"),
                    "the scrape timeout fits within the interval",
                    format!("<= {}", e.interval.as_deref().unwrap_or(&p.interval)),
                    timeout,
                ));
            }
        }
    }
    if let Some(ns) = &spec.namespace_selector {
        let own = ctx.namespace;
        if ns.any || ns.match_names.iter().any(|n| n != own) {
            out.push(Violation::new(
                RuleId::ServiceMonitorNamespaceSelector,
                spec_path.field("namespaceSelector"),
                "the ServiceMonitor looks only in its own namespace",
                format!("matchNames [{own}] or unset"),
                if ns.any {
                    "any: true".to_owned()
                } else {
                    format!("[{}]", ns.match_names.join(", "))
                },
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("500ms"), Some(500));
        assert_eq!(parse_duration("0.5m"), None);
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration(""), None);
    }
}
