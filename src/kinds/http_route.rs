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
    Rule::new(RuleId::HttpRouteFilters, filters),
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
pub(crate) struct RouteSpec {
    parent_refs: Vec<ParentReference>,
    hostnames: Vec<String>,
    pub(crate) rules: Vec<RouteRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ParentReference {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
    section_name: Option<String>,
    port: Option<i32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RouteRule {
    pub(crate) backend_refs: Vec<BackendRef>,
    pub(crate) filters: Vec<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct BackendRef {
    pub(crate) group: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) port: Option<i32>,
    pub(crate) filters: Vec<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Filter {
    #[serde(rename = "type")]
    type_: String,
    response_header_modifier: Option<HeaderModifier>,
    pub(crate) request_mirror: Option<RequestMirror>,
    request_redirect: Option<RequestRedirect>,
    extension_ref: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RequestRedirect {
    hostname: Option<String>,
    scheme: Option<String>,
    port: Option<i64>,
}

impl RequestRedirect {
    /// The first field that sends the client somewhere other than the
    /// gateway's own hostname over HTTPS, and what it holds.
    fn leaves(&self, hostnames: &[String]) -> Option<(&'static str, String)> {
        if let Some(h) = self
            .hostname
            .as_ref()
            .filter(|h| !hostnames.iter().any(|own| own.eq_ignore_ascii_case(h)))
        {
            return Some(("hostname", h.clone()));
        }
        if let Some(s) = self
            .scheme
            .as_ref()
            .filter(|s| !s.eq_ignore_ascii_case("https"))
        {
            return Some(("scheme", s.clone()));
        }
        self.port
            .filter(|p| *p != 443)
            .map(|p| ("port", p.to_string()))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HeaderModifier {
    set: Vec<Header>,
    add: Vec<Header>,
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
pub(crate) struct RequestMirror {
    pub(crate) backend_ref: BackendRef,
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
                && (allowed.section_name.is_none() || parent.section_name == allowed.section_name)
                && (allowed.port.is_none() || parent.port == allowed.port)
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
    let hostnames = &ctx.policy.http_route.hostnames;
    let stays = |redirect: &RequestRedirect| redirect.leaves(hostnames).is_none();
    let violation = |path: FieldPath, message: &str, actual: &str| {
        let backend = &ctx.policy.http_route.backend;
        let expected = format!("Service {} port {}", backend.name, backend.port);
        Violation::new(
            RuleId::HttpRouteBackendRefs,
            path,
            message,
            expected,
            actual,
        )
    };
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
        let redirects_home = rule
            .filters
            .iter()
            .filter_map(|f| f.request_redirect.as_ref())
            .any(&stays);
        if rule.backend_refs.is_empty() && !redirects_home {
            out.push(violation(
                rule_path.field("backendRefs"),
                "every rule forwards to the gateway Service",
                "no backend",
            ));
        }
        for (path, filter) in filters_of(rule, &rule_path) {
            if let Some(mirror) = filter
                .request_mirror
                .as_ref()
                .filter(|_| filter.type_ == REQUEST_MIRROR)
            {
                let path = path.field("requestMirror").field("backendRef");
                backend_ref(&mirror.backend_ref, ctx, &path, &mut out);
            }
            if let Some((field, value)) = filter
                .request_redirect
                .as_ref()
                .and_then(|r| r.leaves(hostnames))
            {
                out.push(violation(
                    path.field("requestRedirect").field(field),
                    "the route redirects only to the gateway's own hostname, over HTTPS",
                    &value,
                ));
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

/// The filters a rule of the gateway's route may use: what sets the
/// response headers, and redirects and mirrors that stay with the gateway
/// (judged by `httproute.backend-refs`). A backend's filters may only set
/// response headers.
const RULE_FILTERS: &[&str] = &[RESPONSE_HEADER_MODIFIER, "RequestRedirect", REQUEST_MIRROR];
const BACKEND_FILTERS: &[&str] = &[RESPONSE_HEADER_MODIFIER];

/// `httproute.filters`: only the filters the route needs. A
/// RequestHeaderModifier could hand the gateway an inline config
/// (`x-portkey-config`), a URLRewrite another host, an ExtensionRef any
/// implementation-specific code.
pub fn filters(route: &HttpRoute, ctx: &Context) -> Vec<Violation> {
    if !own(ctx) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (rule_path, rule) in rules_of(route) {
        let backend_filters = rule.backend_refs.iter().enumerate().flat_map(|(j, b)| {
            let path = rule_path.field("backendRefs").index(j).field("filters");
            b.filters
                .iter()
                .enumerate()
                .map(move |(k, f)| (path.index(k), f, BACKEND_FILTERS))
        });
        let rule_filters = rule
            .filters
            .iter()
            .enumerate()
            .map(|(k, f)| (rule_path.field("filters").index(k), f, RULE_FILTERS));
        for (path, filter, allowed) in rule_filters.chain(backend_filters) {
            let known = allowed.contains(&filter.type_.as_str());
            if !known || filter.extension_ref.is_some() {
                out.push(Violation::new(
                    RuleId::HttpRouteFilters,
                    path.field("type"),
                    "the gateway's route uses only the filters it needs",
                    allowed.join(" | "),
                    filter.type_.as_str(),
                ));
            }
        }
    }
    out
}

/// `httproute.security-headers`: every rule sets the strict security
/// headers, and no filter removes one.
pub fn security_headers(route: &HttpRoute, ctx: &Context) -> Vec<Violation> {
    if !own(ctx) {
        return Vec::new();
    }
    let p = &ctx.policy.http_route;
    let wanted_rule = |name: &str| {
        p.security_headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    };
    let mut out = Vec::new();
    for (rule_path, rule) in rules_of(route) {
        // Every filter, the backends' included: none may weaken a header.
        for (path, filter) in filters_of(rule, &rule_path) {
            let Some(modifier) = filter.response_header_modifier.as_ref() else {
                continue;
            };
            let path = path.field("responseHeaderModifier");
            for header in &modifier.set {
                let Some(wanted) = wanted_rule(&header.name) else {
                    continue;
                };
                if let Some(problem) = header_problem(wanted, Some(&header.value)) {
                    out.push(Violation::new(
                        RuleId::HttpRouteSecurityHeaders,
                        path.field("set").key(&header.name),
                        format!("responses must set {}", wanted.name),
                        describe(wanted),
                        problem,
                    ));
                }
            }
            for header in modifier
                .add
                .iter()
                .filter(|h| wanted_rule(&h.name).is_some())
            {
                out.push(Violation::new(
                    RuleId::HttpRouteSecurityHeaders,
                    path.field("add").key(&header.name),
                    "a second value of a security header weakens it",
                    "set, never add",
                    format!("{:?} added", header.value),
                ));
            }
            for (i, removed) in modifier.remove.iter().enumerate() {
                if wanted_rule(removed).is_some() {
                    out.push(Violation::new(
                        RuleId::HttpRouteSecurityHeaders,
                        path.field("remove").index(i),
                        "a security header may not be removed",
                        "not removed",
                        removed.as_str(),
                    ));
                }
            }
        }
        // And every rule sets each of them.
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
            let set = modifiers
                .iter()
                .flat_map(|m| m.set.iter())
                .any(|h| h.name.eq_ignore_ascii_case(&wanted.name));
            if !set {
                out.push(Violation::new(
                    RuleId::HttpRouteSecurityHeaders,
                    filter_path.key(&wanted.name),
                    format!("responses must set {}", wanted.name),
                    describe(wanted),
                    "not set",
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
    let one_of_ok =
        rule.one_of.is_empty() || rule.one_of.iter().any(|v| v.eq_ignore_ascii_case(value));
    let parsed = Directives::parse(value);
    let directives_ok = (rule.directives.is_empty() && rule.min_max_age.is_none())
        || (parsed.unique() && rule.directives.iter().all(|d| parsed.has(d)));
    let max_age_ok = rule
        .min_max_age
        .is_none_or(|min| parsed.max_age().is_some_and(|age| age >= min));
    (!(one_of_ok && directives_ok && max_age_ok)).then(|| value.to_owned())
}

/// A header value as `;`-separated directives, each a name and its value,
/// whitespace collapsed and compared without regard to ASCII case: how
/// browsers read Strict-Transport-Security and Content-Security-Policy.
struct Directives(Vec<(String, String)>);

impl Directives {
    fn parse(value: &str) -> Directives {
        Directives(
            value
                .split(';')
                .filter_map(|directive| {
                    let words: Vec<String> = directive
                        .split_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect();
                    let (name, rest) = words.split_first()?;
                    // HSTS writes `max-age=N`; CSP `name value value`.
                    let (name, first) = match name.split_once('=') {
                        Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                        None => (name.clone(), None),
                    };
                    let values: Vec<String> =
                        first.into_iter().chain(rest.iter().cloned()).collect();
                    Some((name, values.join(" ")))
                })
                .collect(),
        )
    }

    /// No directive twice: a browser ignores an HSTS header that repeats one,
    /// and reads only the first of a CSP directive.
    fn unique(&self) -> bool {
        let mut names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.windows(2).all(|w| w[0] != w[1])
    }

    /// Whether `wanted` (`includeSubDomains`, `frame-ancestors 'none'`) is one
    /// of the directives, exactly.
    fn has(&self, wanted: &str) -> bool {
        let Some(wanted) = Directives::parse(wanted).0.into_iter().next() else {
            return true;
        };
        self.0.contains(&wanted)
    }

    fn max_age(&self) -> Option<u64> {
        self.0
            .iter()
            .find(|(name, _)| name == "max-age")
            .and_then(|(_, age)| age.trim_matches('"').parse().ok())
    }
}

fn describe(rule: &HeaderRule) -> String {
    let mut parts = Vec::new();
    if !rule.one_of.is_empty() {
        parts.push(rule.one_of.join(" | "));
    }
    if let Some(min) = rule.min_max_age {
        parts.push(format!("max-age >= {min}"));
    }
    for d in &rule.directives {
        parts.push(format!("the directive {d}"));
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

    fn hsts() -> HeaderRule {
        HeaderRule {
            name: "Strict-Transport-Security".to_owned(),
            one_of: Vec::new(),
            directives: vec!["includeSubDomains".to_owned()],
            min_max_age: Some(31_536_000),
        }
    }

    fn csp() -> HeaderRule {
        HeaderRule {
            name: "Content-Security-Policy".to_owned(),
            one_of: Vec::new(),
            directives: vec!["frame-ancestors 'none'".to_owned()],
            min_max_age: None,
        }
    }

    #[test]
    fn hsts_is_read_as_directives() {
        for ok in [
            "max-age=31536000; includeSubDomains",
            "includesubdomains;max-age=\"63072000\"; preload",
            "  MAX-AGE=31536000 ;   IncludeSubDomains  ",
        ] {
            assert_eq!(header_problem(&hsts(), Some(ok)), None, "{ok}");
        }
        for bad in [
            "max-age=31536000; includeSubDomainsX",
            "max-age=31536000; x-includeSubDomains",
            "max-age=600; includeSubDomains",
            "max-age=31536000; max-age=0; includeSubDomains",
            "includeSubDomains",
            "max-age=31536000",
        ] {
            assert!(header_problem(&hsts(), Some(bad)).is_some(), "{bad}");
        }
    }

    #[test]
    fn csp_frame_ancestors_exactly_none() {
        for ok in [
            "default-src 'self'; frame-ancestors 'none'",
            "frame-ancestors   'NONE' ;script-src 'self'",
        ] {
            assert_eq!(header_problem(&csp(), Some(ok)), None, "{ok}");
        }
        for bad in [
            "frame-ancestors 'none' https://evil.example",
            "default-src 'none'; frame-ancestors *",
            "script-src 'self' frame-ancestors 'none'",
            "frame-ancestors 'self'; frame-ancestors 'none'",
        ] {
            assert!(header_problem(&csp(), Some(bad)).is_some(), "{bad}");
        }
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
    fn no_filter_weakens_a_security_header() {
        let backend_set = paths(security_headers, |d| {
            d["spec"]["rules"][0]["backendRefs"][0]["filters"] = json!([{"type": "ResponseHeaderModifier",
                "responseHeaderModifier": {"set": [{"name": "X-Frame-Options", "value": "SAMEORIGIN"}]}}]);
        });
        assert_eq!(backend_set, ["spec.rules[0].backendRefs[0].filters[0].responseHeaderModifier.set.X-Frame-Options"]);
        let added = paths(security_headers, |d| {
            d["spec"]["rules"][0]["filters"][0]["responseHeaderModifier"]["add"] =
                json!([{"name": "Content-Security-Policy", "value": "frame-ancestors *"}]);
        });
        assert_eq!(
            added,
            ["spec.rules[0].filters[0].responseHeaderModifier.add.Content-Security-Policy"]
        );
    }

    #[test]
    fn every_rule_forwards_to_the_gateway() {
        let no_backend = paths(backend_refs, |d| {
            d["spec"]["rules"][0]["backendRefs"] = json!([])
        });
        assert_eq!(no_backend, ["spec.rules[0].backendRefs"]);
        let away = paths(backend_refs, |d| {
            d["spec"]["rules"][0]["backendRefs"] = json!([]);
            d["spec"]["rules"][0]["filters"] = json!([{"type": "RequestRedirect", "requestRedirect": {"hostname": "evil.example", "statusCode": 302}}]);
        });
        assert_eq!(
            away,
            [
                "spec.rules[0].backendRefs",
                "spec.rules[0].filters[0].requestRedirect.hostname"
            ]
        );
        let https_upgrade = paths(backend_refs, |d| {
            d["spec"]["rules"][0]["backendRefs"] = json!([]);
            d["spec"]["rules"][0]["filters"] = json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]);
        });
        assert!(https_upgrade.is_empty(), "{https_upgrade:?}");
        // Home, but in plain text or on another port: the client's key
        // would cross the network unencrypted.
        for (redirect, field) in [
            (json!({"scheme": "http"}), "scheme"),
            (json!({"port": 8080}), "port"),
        ] {
            let downgrade = paths(backend_refs, |d| {
                d["spec"]["rules"][0]["backendRefs"] = json!([]);
                d["spec"]["rules"][0]["filters"] =
                    json!([{"type": "RequestRedirect", "requestRedirect": redirect}]);
            });
            assert_eq!(
                downgrade,
                [
                    "spec.rules[0].backendRefs".to_owned(),
                    format!("spec.rules[0].filters[0].requestRedirect.{field}")
                ]
            );
        }
        let explicit_https = paths(backend_refs, |d| {
            d["spec"]["rules"][0]["backendRefs"] = json!([]);
            d["spec"]["rules"][0]["filters"] = json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "HTTPS", "port": 443}}]);
        });
        assert!(explicit_https.is_empty(), "{explicit_https:?}");
    }

    #[test]
    fn only_the_filters_the_route_needs() {
        let extension = paths(filters, |d| {
            d["spec"]["rules"][0]["filters"] = json!([{"type": "ExtensionRef", "extensionRef": {"group": "example.com", "kind": "Script", "name": "x"}}]);
        });
        assert_eq!(extension, ["spec.rules[0].filters[0].type"]);
        let inline_config = paths(filters, |d| {
            d["spec"]["rules"][0]["backendRefs"][0]["filters"] = json!([{"type": "RequestHeaderModifier",
                "requestHeaderModifier": {"set": [{"name": "x-portkey-config", "value": "{}"}]}}]);
        });
        assert_eq!(
            inline_config,
            ["spec.rules[0].backendRefs[0].filters[0].type"]
        );
        let redirect = paths(filters, |d| {
            d["spec"]["rules"][0]["filters"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}));
        });
        assert!(redirect.is_empty());
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
    fn elsewhere_these_rules_do_not_apply() {
        let shop = ctx_in("shop");
        for rule in RULES {
            let found = paths_in(&shop, rule.check, |d| d["spec"]["parentRefs"] = json!([]));
            assert!(found.is_empty(), "{}", rule.id);
        }
    }
}
