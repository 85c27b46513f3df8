//! §3.6 — HTTPRoutes: the gateway's own route locked down, and its hostname
//! guarded against every other namespace. Validated, never mutated.

use super::{read_at, Context, MalformedObject};
use crate::policy::{HeaderRule, HttpRoutePolicy};
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
const RESPONSE_HEADER_MODIFIER: &str = "ResponseHeaderModifier";
const REQUEST_MIRROR: &str = "RequestMirror";

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HttpRoute {
    metadata: ObjectMeta,
    spec: RouteSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RouteSpec {
    parent_refs: Vec<ParentReference>,
    hostnames: Vec<String>,
    rules: Vec<RouteRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ParentReference {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RouteRule {
    backend_refs: Vec<BackendRef>,
    filters: Vec<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct BackendRef {
    group: Option<String>,
    kind: Option<String>,
    name: String,
    namespace: Option<String>,
    port: Option<i32>,
    filters: Vec<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Filter {
    #[serde(rename = "type")]
    type_: String,
    response_header_modifier: Option<HeaderModifier>,
    request_mirror: Option<RequestMirror>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HeaderModifier {
    set: Vec<Header>,
    remove: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Header {
    name: String,
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RequestMirror {
    backend_ref: BackendRef,
}

pub fn validate(ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let route: HttpRoute = read_at(doc, &[], "HTTPRoute")?;
    let p = &ctx.policy.http_route;
    if ctx.namespace != ctx.policy.namespace {
        return Ok(hijack(&route, p));
    }
    let spec_path = FieldPath::root("spec");
    let mut out = Vec::new();
    parent_refs(&route.spec, p, &spec_path, &mut out);
    hostnames(&route.spec, p, &spec_path, &mut out);
    for (i, rule) in route.spec.rules.iter().enumerate() {
        let rule_path = spec_path.field("rules").index(i);
        for (j, backend) in rule.backend_refs.iter().enumerate() {
            let path = rule_path.field("backendRefs").index(j);
            backend_ref(backend, ctx.policy.namespace.as_str(), p, &path, &mut out);
            for (k, filter) in backend.filters.iter().enumerate() {
                filter_checks(filter, ctx, p, &path.field("filters").index(k), &mut out);
            }
        }
        for (k, filter) in rule.filters.iter().enumerate() {
            filter_checks(
                filter,
                ctx,
                p,
                &rule_path.field("filters").index(k),
                &mut out,
            );
        }
        security_headers(rule, p, &rule_path, &mut out);
    }
    Ok(out)
}

/// Whether `hostname` (possibly a `*.` wildcard) covers `protected`.
pub fn covers(hostname: &str, protected: &str) -> bool {
    let hostname = hostname.to_ascii_lowercase();
    let protected = protected.to_ascii_lowercase();
    match hostname.strip_prefix("*.") {
        Some(suffix) => protected
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        None => hostname == protected,
    }
}

fn hijack(route: &HttpRoute, p: &HttpRoutePolicy) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, hostname) in route.spec.hostnames.iter().enumerate() {
        if let Some(protected) = p.hostnames.iter().find(|h| covers(hostname, h)) {
            out.push(Violation::new(
                RuleId::HttpRouteHostnameHijack,
                FieldPath::root("spec").field("hostnames").index(i),
                format!("{protected} belongs to the gateway; no other namespace may route it"),
                format!("a hostname that does not cover {protected}"),
                hostname.as_str(),
            ));
        }
    }
    out
}

fn parent_refs(
    spec: &RouteSpec,
    p: &HttpRoutePolicy,
    spec_path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let expected = p
        .parent_refs
        .iter()
        .map(|r| format!("Gateway {}/{}", r.namespace, r.name))
        .collect::<Vec<_>>()
        .join(" | ");
    if spec.parent_refs.is_empty() {
        out.push(Violation::new(
            RuleId::HttpRouteParentRefs,
            spec_path.field("parentRefs"),
            "the route attaches to the shared external listener",
            expected.as_str(),
            "none",
        ));
    }
    for (i, parent) in spec.parent_refs.iter().enumerate() {
        let group_ok = parent
            .group
            .as_deref()
            .is_none_or(|g| g == GATEWAY_API_GROUP);
        let kind_ok = parent.kind.as_deref().is_none_or(|k| k == "Gateway");
        let allowed = p.parent_refs.iter().any(|allowed| {
            parent.namespace.as_deref() == Some(allowed.namespace.as_str())
                && parent.name == allowed.name
        });
        if !(group_ok && kind_ok && allowed) {
            out.push(Violation::new(
                RuleId::HttpRouteParentRefs,
                spec_path.field("parentRefs").index(i),
                "the route attaches only to the shared external listener",
                expected.as_str(),
                format!(
                    "{} {}/{}",
                    parent.kind.as_deref().unwrap_or("Gateway"),
                    parent.namespace.as_deref().unwrap_or("(route namespace)"),
                    parent.name
                ),
            ));
        }
    }
}

fn hostnames(
    spec: &RouteSpec,
    p: &HttpRoutePolicy,
    spec_path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let mut actual: Vec<String> = spec
        .hostnames
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let mut wanted: Vec<String> = p.hostnames.iter().map(|h| h.to_ascii_lowercase()).collect();
    actual.sort_unstable();
    actual.dedup();
    wanted.sort_unstable();
    if actual != wanted {
        out.push(Violation::new(
            RuleId::HttpRouteHostnames,
            spec_path.field("hostnames"),
            "the route serves exactly the gateway's hostname",
            format!("[{}]", p.hostnames.join(", ")),
            format!("[{}]", spec.hostnames.join(", ")),
        ));
    }
}

fn backend_ref(
    backend: &BackendRef,
    own_namespace: &str,
    p: &HttpRoutePolicy,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let group_ok = backend.group.as_deref().is_none_or(str::is_empty);
    let kind_ok = backend.kind.as_deref().is_none_or(|k| k == "Service");
    let namespace_ok = backend
        .namespace
        .as_deref()
        .is_none_or(|n| n == own_namespace);
    if !(group_ok
        && kind_ok
        && namespace_ok
        && backend.name == p.backend.name
        && backend.port == Some(p.backend.port))
    {
        out.push(Violation::new(
            RuleId::HttpRouteBackendRefs,
            path,
            "the route sends traffic only to the gateway Service",
            format!("Service {} port {}", p.backend.name, p.backend.port),
            format!(
                "{} {}{} port {}",
                backend.kind.as_deref().unwrap_or("Service"),
                backend
                    .namespace
                    .as_deref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default(),
                backend.name,
                backend
                    .port
                    .map_or_else(|| "unset".to_owned(), |p| p.to_string())
            ),
        ));
    }
}

/// Mirrors go only to the gateway; no filter removes a security header.
fn filter_checks(
    filter: &Filter,
    ctx: &Context,
    p: &HttpRoutePolicy,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    if filter.type_ == REQUEST_MIRROR {
        if let Some(mirror) = &filter.request_mirror {
            backend_ref(
                &mirror.backend_ref,
                &ctx.policy.namespace,
                p,
                &path.field("requestMirror").field("backendRef"),
                out,
            );
        }
    }
    if let Some(modifier) = filter.response_header_modifier.as_ref() {
        for (i, removed) in modifier.remove.iter().enumerate() {
            if p.security_headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(removed))
            {
                out.push(Violation::new(
                    RuleId::HttpRouteSecurityHeaders,
                    path.field("responseHeaderModifier")
                        .field("remove")
                        .index(i),
                    "a security header may not be removed",
                    "not removed",
                    removed.as_str(),
                ));
            }
        }
    }
}

fn security_headers(
    rule: &RouteRule,
    p: &HttpRoutePolicy,
    rule_path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let modifiers: Vec<&HeaderModifier> = rule
        .filters
        .iter()
        .filter(|f| f.type_ == RESPONSE_HEADER_MODIFIER)
        .filter_map(|f| f.response_header_modifier.as_ref())
        .collect();
    let filter_path = rule
        .filters
        .iter()
        .position(|f| f.type_ == RESPONSE_HEADER_MODIFIER)
        .map_or_else(
            || rule_path.field("filters"),
            |k| {
                rule_path
                    .field("filters")
                    .index(k)
                    .field("responseHeaderModifier")
                    .field("set")
            },
        );
    for wanted in &p.security_headers {
        let value = modifiers
            .iter()
            .flat_map(|m| m.set.iter())
            .find(|h| h.name.eq_ignore_ascii_case(&wanted.name))
            .map(|h| h.value.as_str());
        if let Some(problem) = header_problem(wanted, value) {
            out.push(Violation::new(
                RuleId::HttpRouteSecurityHeaders,
                filter_path.key(&wanted.name),
                format!("responses must set {}", wanted.name),
                describe(wanted),
                problem,
            ));
        }
    }
    let removed: Vec<&str> = modifiers
        .iter()
        .flat_map(|m| m.remove.iter())
        .map(String::as_str)
        .collect();
    for header in &p.remove_headers {
        if !removed.iter().any(|r| r.eq_ignore_ascii_case(header)) {
            out.push(Violation::new(
                RuleId::HttpRouteServerHeaders,
                rule_path.field("filters"),
                format!("responses should not reveal {header}"),
                format!("{header} in responseHeaderModifier.remove"),
                "not removed",
            ));
        }
    }
}

/// What is wrong with a header's value, if anything.
fn header_problem(rule: &HeaderRule, value: Option<&str>) -> Option<String> {
    let value = match value.map(str::trim) {
        None => return Some("not set".to_owned()),
        Some("") => return Some("an empty value".to_owned()),
        Some(v) => v,
    };
    let lower = value.to_ascii_lowercase();
    let one_of_ok =
        rule.one_of.is_empty() || rule.one_of.iter().any(|v| v.eq_ignore_ascii_case(value));
    let contains_ok = rule
        .contains
        .iter()
        .all(|c| lower.contains(&c.to_ascii_lowercase()));
    let max_age_ok = rule
        .min_max_age
        .is_none_or(|min| max_age(&lower).is_some_and(|age| age >= min));
    (!(one_of_ok && contains_ok && max_age_ok)).then(|| value.to_owned())
}

fn max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|directive| {
        let (name, age) = directive.trim().split_once('=')?;
        (name.trim() == "max-age").then(|| age.trim().trim_matches('"').parse().ok())?
    })
}

fn describe(rule: &HeaderRule) -> String {
    let mut parts = Vec::new();
    if !rule.one_of.is_empty() {
        parts.push(rule.one_of.join(" | "));
    }
    if let Some(min) = rule.min_max_age {
        parts.push(format!("max-age >= {min}"));
    }
    for c in &rule.contains {
        parts.push(format!("containing {c}"));
    }
    if parts.is_empty() {
        "a non-empty value".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_subdomains_only() {
        assert!(covers("portkey.pc-tips.se", "portkey.pc-tips.se"));
        assert!(covers("PORTKEY.pc-tips.se", "portkey.pc-tips.se"));
        assert!(covers("*.pc-tips.se", "portkey.pc-tips.se"));
        assert!(covers("*.se", "portkey.pc-tips.se"));
        assert!(!covers("*.portkey.pc-tips.se", "portkey.pc-tips.se"));
        assert!(!covers("*.tips.se", "portkey.pc-tips.se"));
        assert!(!covers("other.pc-tips.se", "portkey.pc-tips.se"));
    }

    #[test]
    fn hsts_max_age_is_parsed() {
        assert_eq!(
            max_age("max-age=31536000; includesubdomains"),
            Some(31536000)
        );
        assert_eq!(
            max_age("includesubdomains; max-age=\"63072000\""),
            Some(63072000)
        );
        assert_eq!(max_age("includesubdomains"), None);
    }
}
