//! Every kind of route that can claim a hostname on the shared listener
//! (README: Rules, `route.*`): HTTPRoute, GRPCRoute, TLSRoute and Ingress.
//! Outside the gateway's namespace none may claim the gateway's hostname; in
//! it, traffic enters only through HTTPRoutes (whose own rules are in
//! `http_route`).

use super::rule::{read_at, Context, MalformedObject, Rule};
use crate::kind::Kind;
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use k8s_openapi::api::networking::v1::IngressSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

pub const RULES: &[Rule<ClaimedHostnames>] = &[
    Rule::new(RuleId::RouteHostnameHijack, hostname_hijack),
    Rule::new(RuleId::RouteHttpOnly, http_only),
];

/// A ReferenceGrant in the gateway's namespace: its rules.
pub const REFERENCE_GRANT_RULES: &[Rule<ObjectMeta>] =
    &[Rule::new(RuleId::RouteReferenceGrant, reference_grant)];

/// The hostnames a route claims, each with its path: `spec.hostnames` of
/// the Gateway API routes, `spec.rules[].host` and `spec.tls[].hosts` of an
/// Ingress.
pub struct ClaimedHostnames {
    pub kind: Kind,
    pub hostnames: Vec<(FieldPath, String)>,
}

impl ClaimedHostnames {
    pub fn read(kind: Kind, doc: &Value) -> Result<ClaimedHostnames, MalformedObject> {
        let name = kind.info().name;
        let mut hostnames = Vec::new();
        if kind == Kind::Ingress {
            let spec: IngressSpec = read_at(doc, &["spec"], name)?;
            let rules = FieldPath::root("spec").field("rules");
            for (i, rule) in spec.rules.iter().flatten().enumerate() {
                if let Some(host) = &rule.host {
                    hostnames.push((rules.index(i).field("host"), host.clone()));
                }
            }
            let tls = FieldPath::root("spec").field("tls");
            for (i, entry) in spec.tls.iter().flatten().enumerate() {
                for (j, host) in entry.hosts.iter().flatten().enumerate() {
                    hostnames.push((tls.index(i).field("hosts").index(j), host.clone()));
                }
            }
        } else {
            let listed: Vec<String> = read_at(doc, &["spec", "hostnames"], name)?;
            let path = FieldPath::root("spec").field("hostnames");
            hostnames = listed
                .into_iter()
                .enumerate()
                .map(|(i, h)| (path.index(i), h))
                .collect();
        }
        Ok(ClaimedHostnames { kind, hostnames })
    }
}

/// Whether `hostname` (possibly a `*.` wildcard, which Gateway API lets
/// stand for any number of labels) covers `protected`.
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

/// `route.hostname-hijack`: outside the gateway's namespace, no route
/// claims the gateway's hostname, exactly or by wildcard.
pub fn hostname_hijack(route: &ClaimedHostnames, ctx: &Context) -> Vec<Violation> {
    if ctx.namespace == ctx.policy.namespace {
        return Vec::new();
    }
    let protected = &ctx.policy.http_route.hostnames;
    route
        .hostnames
        .iter()
        .filter_map(|(path, hostname)| {
            let claimed = protected.iter().find(|p| covers(hostname, p))?;
            Some(Violation::new(
                RuleId::RouteHostnameHijack,
                path,
                format!("{claimed} belongs to the gateway; no other namespace may route it"),
                format!("a hostname that does not cover {claimed}"),
                hostname.as_str(),
            ))
        })
        .collect()
}

/// `route.http-only`: in the gateway's namespace, no GRPCRoute, TLSRoute or
/// Ingress (they would reach the gateway around the HTTPRoute's filters).
pub fn http_only(route: &ClaimedHostnames, ctx: &Context) -> Vec<Violation> {
    if ctx.namespace != ctx.policy.namespace || route.kind == Kind::HttpRoute {
        return Vec::new();
    }
    vec![Violation::new(
        RuleId::RouteHttpOnly,
        FieldPath::root("kind"),
        "traffic enters the gateway's namespace only through HTTPRoutes, with their security headers",
        "HTTPRoute",
        route.kind.info().name,
    )]
}

/// `route.reference-grant`: no ReferenceGrant in the gateway's namespace.
/// One would let routes of other namespaces reach its Service, under their
/// own hostnames and without the gateway route's security headers.
pub fn reference_grant(_: &ObjectMeta, _: &Context) -> Vec<Violation> {
    vec![Violation::new(
        RuleId::RouteReferenceGrant,
        FieldPath::root("kind"),
        "routes of other namespaces may not reach the gateway's objects",
        "no ReferenceGrant",
        "ReferenceGrant",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::{ctx, ctx_in};
    use serde_json::json;

    fn claims(kind: Kind, doc: Value) -> ClaimedHostnames {
        ClaimedHostnames::read(kind, &doc).unwrap()
    }

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
    fn every_route_kind_is_guarded_elsewhere() {
        let shop = ctx_in("kube-system");
        for kind in [Kind::HttpRoute, Kind::GrpcRoute, Kind::TlsRoute] {
            let route = claims(
                kind,
                json!({"spec": {"hostnames": ["shop.pc-tips.se", "*.PC-TIPS.se"]}}),
            );
            let found: Vec<String> = hostname_hijack(&route, &shop)
                .into_iter()
                .map(|v| v.path)
                .collect();
            assert_eq!(found, ["spec.hostnames[1]"], "{kind:?}");
        }
        let ingress = claims(
            Kind::Ingress,
            json!({"spec": {
            "rules": [{"host": "shop.pc-tips.se"}, {"http": {"paths": []}}, {"host": "portkey.pc-tips.se"}],
            "tls": [{"hosts": ["shop.pc-tips.se", "*.pc-tips.se"]}]}}),
        );
        let found: Vec<String> = hostname_hijack(&ingress, &shop)
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(found, ["spec.rules[2].host", "spec.tls[0].hosts[1]"]);
        let own = claims(
            Kind::HttpRoute,
            json!({"spec": {"hostnames": ["portkey.pc-tips.se"]}}),
        );
        assert!(hostname_hijack(&own, &ctx()).is_empty());
    }

    #[test]
    fn only_http_routes_in_the_gateways_namespace() {
        for kind in [Kind::GrpcRoute, Kind::TlsRoute, Kind::Ingress] {
            let route = claims(kind, json!({"spec": {}}));
            assert_eq!(http_only(&route, &ctx()).len(), 1, "{kind:?}");
            assert!(http_only(&route, &ctx_in("shop")).is_empty());
        }
        assert!(http_only(&claims(Kind::HttpRoute, json!({})), &ctx()).is_empty());
    }

    #[test]
    fn no_reference_grant_in_the_gateways_namespace() {
        let meta: ObjectMeta =
            serde_json::from_value(json!({"name": "let-shop-in", "namespace": "portkey"})).unwrap();
        let found = reference_grant(&meta, &ctx());
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["kind"]);
        assert_eq!(found[0].rule, RuleId::RouteReferenceGrant);
        assert_eq!(found[0].actual, "ReferenceGrant");
    }
}
