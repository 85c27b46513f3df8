//! HTTPRoutes (README: Rules, `httproute.*`): the gateway's own route
//! locked down, and its hostname guarded against every other namespace.
//! Validated, never mutated.

use super::rule::{Context, Rule};
use crate::policy::HeaderRule;
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use serde::Deserialize;

pub const RULES: &[Rule<HttpRoute>] = &[
    Rule::new(RuleId::HttpRouteParentRefs, parent_refs),
    Rule::new(RuleId::HttpRouteHostnames, hostnames),
    Rule::new(RuleId::HttpRouteBackendRefs, backend_refs),
    Rule::new(RuleId::HttpRouteSecurityHeaders, security_headers),
    Rule::new(RuleId::HttpRouteServerHeaders, server_headers),
    Rule::new(RuleId::HttpRouteHostnameHijack, hostname_hijack),
];

const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
const RESPONSE_HEADER_MODIFIER: &str = "ResponseHeaderModifier";
const REQUEST_MIRROR: &str = "RequestMirror";

/// The fields of an HTTPRoute the rules read.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HttpRoute {
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

/// Whether the route is the gateway's own (in the policy's namespace); the
/// others are held only to the hostname guard.
fn own(ctx: &Context) -> bool {
    ctx.namespace == ctx.policy.namespace
}

/// Each rule of the route with its path.
fn rules_of(route: &HttpRoute) -> impl Iterator<Item = (FieldPath, &RouteRule)> {
    route
        .spec
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| (FieldPath::root("spec").field("rules").index(i), rule))
}

/// Every filter of a rule, its backends' filters included, with its path.
fn filters_of<'a>(rule: &'a RouteRule, rule_path: &FieldPath) -> Vec<(FieldPath, &'a Filter)> {
    let mut filters = Vec::new();
    for (j, backend) in rule.backend_refs.iter().enumerate() {
        let path = rule_path.field("backendRefs").index(j).field("filters");
        for (k, filter) in backend.filters.iter().enumerate() {
            filters.push((path.index(k), filter));
        }
    }
    for (k, filter) in rule.filters.iter().enumerate() {
        filters.push((rule_path.field("filters").index(k), filter));
    }
    filters
}

/// `httproute.hostname-hijack`: outside the gateway's namespace, no route
/// claims its hostname, exactly or by wildcard.
pub fn hostname_hijack(route: &HttpRoute, ctx: &Context) -> Vec<Violation> {
    if own(ctx) {
        return Vec::new();
    }
    let p = &ctx.policy.http_route;
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

/// `httproute.parent-refs`: the route attaches only to the shared
/// external listener.
pub fn parent_refs(route: &HttpRoute, ctx: &Context) -> Vec<Violation> {
    if !own(ctx) {
        return Vec::new();
    }
    let p = &ctx.policy.http_route;
    let spec_path = FieldPath::root("spec");
    let expected = p
        .parent_refs
        .iter()
        .map(|r| format!("Gateway {}/{}", r.namespace, r.name))
        .collect::<Vec<_>>()
        .join(" | ");
    let mut out = Vec::new();
    if route.spec.parent_refs.is_empty() {
        out.push(Violation::new(
            RuleId::HttpRouteParentRefs,
            spec_path.field("parentRefs"),
            "the route attaches to the shared external listener",
            expected.as_str(),
            "none",
        ));
    }
    for (i, parent) in route.spec.parent_refs.iter().enumerate() {
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
    out
}

/// `httproute.hostnames`: exactly the gateway's hostname.
pub fn hostnames(route: &HttpRoute, ctx: &Context) -> Vec<Violation> {
    if !own(ctx) {
        return Vec::new();
    }
    let p = &ctx.policy.http_route;
    let lower = |hosts: &[String]| {
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        hosts
    };
    if lower(&route.spec.hostnames) == lower(&p.hostnames) {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::HttpRouteHostnames,
        FieldPath::root("spec").field("hostnames"),
        "the route serves exactly the gateway's hostname",
        format!("[{}]", p.hostnames.join(", ")),
        format!("[{}]", route.spec.hostnames.join(", ")),
    )]
}

/// `httproute.backend-refs`: every backend, and every mirror, is the
/// gateway Service on its port.
pub fn backend_refs(route: &HttpRoute, ctx: &Context) -> Vec<Violation> {
    if !own(ctx) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (rule_path, rule) in rules_of(route) {
        for (j, backend) in rule.backend_refs.iter().enumerate() {
            backend_ref(
                backend,
                ctx,
                &rule_path.field("backendRefs").index(j),
                &mut out,
            );
        }
        for (path, filter) in filters_of(rule, &rule_path) {
            if filter.type_ != REQUEST_MIRROR {
                continue;
            }
            if let Some(mirror) = &filter.request_mirror {
                let path = path.field("requestMirror").field("backendRef");
                backend_ref(&mirror.backend_ref, ctx, &path, &mut out);
            }
        }
    }
    out
}

fn backend_ref(backend: &BackendRef, ctx: &Context, path: &FieldPath, out: &mut Vec<Violation>) {
    let p = &ctx.policy.http_route;
    let group_ok = backend.group.as_deref().is_none_or(str::is_empty);
    let kind_ok = backend.kind.as_deref().is_none_or(|k| k == "Service");
    let namespace_ok = backend
        .namespace
        .as_deref()
        .is_none_or(|n| n == ctx.policy.namespace);
    if group_ok
        && kind_ok
        && namespace_ok
        && backend.name == p.backend.name
        && backend.port == Some(p.backend.port)
    {
        return;
    }
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

/// `httproute.security-headers`: every rule sets the strict security
/// headers, and no filter removes one.
pub fn security_headers(route: &HttpRoute, ctx: &Context) -> Vec<Violation> {
    if !own(ctx) {
        return Vec::new();
    }
    let p = &ctx.policy.http_route;
    let mut out = Vec::new();
    for (rule_path, rule) in rules_of(route) {
        for (path, filter) in filters_of(rule, &rule_path) {
            let removed = filter
                .response_header_modifier
                .iter()
                .flat_map(|m| m.remove.iter());
            for (i, removed) in removed.enumerate() {
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
                        removed,
                    ));
                }
            }
        }
        let modifiers = response_header_modifiers(rule);
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
    }
    out
}

/// The rule-level ResponseHeaderModifier filters.
fn response_header_modifiers(rule: &RouteRule) -> Vec<&HeaderModifier> {
    rule.filters
        .iter()
        .filter(|f| f.type_ == RESPONSE_HEADER_MODIFIER)
        .filter_map(|f| f.response_header_modifier.as_ref())
        .collect()
}

/// `httproute.server-headers`: every rule removes the headers that reveal
/// the server.
pub fn server_headers(route: &HttpRoute, ctx: &Context) -> Vec<Violation> {
    if !own(ctx) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (rule_path, rule) in rules_of(route) {
        let modifiers = response_header_modifiers(rule);
        let removed: Vec<&str> = modifiers
            .iter()
            .flat_map(|m| m.remove.iter())
            .map(String::as_str)
            .collect();
        for header in &ctx.policy.http_route.remove_headers {
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
    out
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

#[cfg(test)]
mod route_tests {
    use super::*;
    use crate::kinds::rule::tests::{ctx, ctx_in};
    use serde_json::{json, Value};

    fn headers() -> Value {
        json!([
            {"name": "Strict-Transport-Security", "value": "max-age=31536000; includeSubDomains"},
            {"name": "x-content-type-options", "value": "nosniff"},
            {"name": "X-Frame-Options", "value": "DENY"},
            {"name": "Referrer-Policy", "value": "no-referrer"},
            {"name": "Content-Security-Policy", "value": "default-src 'none'; frame-ancestors 'none'"},
            {"name": "Permissions-Policy", "value": "camera=()"}])
    }

    fn compliant() -> Value {
        json!({"spec": {
            "parentRefs": [{"name": "external", "namespace": "gateway"}],
            "hostnames": ["portkey.pc-tips.se"],
            "rules": [{"backendRefs": [{"name": "portkey-gateway", "port": 8787}],
                       "filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                           "set": headers(), "remove": ["Server", "X-Powered-By"]}}]}]}})
    }

    fn paths_in(
        ctx: &Context,
        check: fn(&HttpRoute, &Context) -> Vec<Violation>,
        change: impl FnOnce(&mut Value),
    ) -> Vec<String> {
        let mut doc = compliant();
        change(&mut doc);
        let route: HttpRoute = serde_json::from_value(doc).unwrap();
        check(&route, ctx).into_iter().map(|v| v.path).collect()
    }

    fn paths(
        check: fn(&HttpRoute, &Context) -> Vec<Violation>,
        change: impl FnOnce(&mut Value),
    ) -> Vec<String> {
        paths_in(&ctx(), check, change)
    }

    #[test]
    fn the_compliant_route_breaks_nothing() {
        for rule in RULES {
            assert!(paths(rule.check, |_| {}).is_empty(), "{}", rule.id);
        }
    }

    #[test]
    fn parent_refs_only_the_shared_listener() {
        assert_eq!(
            paths(parent_refs, |d| d["spec"]["parentRefs"][0]["namespace"] =
                json!("other")),
            ["spec.parentRefs[0]"]
        );
        assert_eq!(
            paths(parent_refs, |d| d["spec"]["parentRefs"] = json!([])),
            ["spec.parentRefs"]
        );
    }

    #[test]
    fn hostnames_exactly_the_gateways() {
        assert!(paths(hostnames, |d| d["spec"]["hostnames"] =
            json!(["PORTKEY.pc-tips.se"]))
        .is_empty());
        assert_eq!(
            paths(hostnames, |d| d["spec"]["hostnames"] =
                json!(["portkey.pc-tips.se", "api.pc-tips.se"])),
            ["spec.hostnames"]
        );
    }

    #[test]
    fn backends_and_mirrors_only_the_gateway_service() {
        assert_eq!(
            paths(backend_refs, |d| d["spec"]["rules"][0]["backendRefs"][0]
                ["port"] = json!(80)),
            ["spec.rules[0].backendRefs[0]"]
        );
        assert_eq!(
            paths(
                backend_refs,
                |d| d["spec"]["rules"][0]["filters"] = json!([{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "sniffer", "port": 80}}}])
            ),
            ["spec.rules[0].filters[0].requestMirror.backendRef"]
        );
    }

    #[test]
    fn security_headers_set_and_never_removed() {
        assert_eq!(
            paths(security_headers, |d| d["spec"]["rules"][0]["filters"][0]
                ["responseHeaderModifier"]["set"][0]["value"] =
                json!("max-age=60")),
            ["spec.rules[0].filters[0].responseHeaderModifier.set.Strict-Transport-Security"]
        );
        assert_eq!(
            paths(security_headers, |d| d["spec"]["rules"][0]["backendRefs"]
                [0]["filters"] = json!([{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["X-Frame-Options"]}}])),
            ["spec.rules[0].backendRefs[0].filters[0].responseHeaderModifier.remove[0]"]
        );
    }

    #[test]
    fn server_headers_removed() {
        assert_eq!(
            paths(server_headers, |d| d["spec"]["rules"][0]["filters"][0]
                ["responseHeaderModifier"]["remove"] =
                json!(["Server"])),
            ["spec.rules[0].filters"]
        );
    }

    #[test]
    fn elsewhere_only_the_hostname_guard_applies() {
        let shop = ctx_in("shop");
        for rule in RULES
            .iter()
            .filter(|r| r.id != RuleId::HttpRouteHostnameHijack)
        {
            assert!(
                paths_in(&shop, rule.check, |d| d["spec"]["parentRefs"] = json!([])).is_empty(),
                "{}",
                rule.id
            );
        }
        assert_eq!(
            paths_in(&shop, hostname_hijack, |d| d["spec"]["hostnames"] =
                json!(["shop.pc-tips.se", "*.pc-tips.se"])),
            ["spec.hostnames[1]"]
        );
        assert!(
            paths(hostname_hijack, |_| {}).is_empty(),
            "the gateway's own route is not a hijack"
        );
    }
}
