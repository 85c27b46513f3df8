//! The decisions, one module per kind of object (or family of rules), each
//! a table of rules (`RULES`: one function per rule id) and, where the
//! mutating webhook adds fields, of injections (`INJECTIONS`). All pure:
//! JSON in, violations or patch operations out.

pub mod config_map;
pub mod external_secret;
pub mod gateway;
pub mod http_route;
pub mod namespace;
pub mod network_policy;
pub mod pod;
pub mod pod_spec;
pub mod pod_template;
pub mod pss;
pub mod route;
pub mod rule;
pub mod secret;
pub mod service;
pub mod service_monitor;
pub mod strategy;
pub mod workload;

pub use crate::kind::{HandledKind, Kind, HANDLED_KINDS};
pub use rule::{Context, MalformedObject, Origin};

use crate::object::Doc;
use crate::patch::PatchBuilder;
use crate::rules::RuleId;
use crate::violation::Violation;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::NetworkPolicySpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rule::{check_all, inject_all, read_at};

/// Mutates `builder`'s document; returns the names of the field groups it
/// injected (each becomes one warning).
pub fn mutate(
    kind: Kind,
    ctx: &Context,
    builder: &mut PatchBuilder,
) -> Result<Vec<String>, MalformedObject> {
    match kind {
        Kind::Namespace => {
            let meta: ObjectMeta = read_at(builder.doc(), &["metadata"], "Namespace")?;
            Ok(inject_all(
                namespace::INJECTIONS,
                &meta,
                ctx.policy,
                builder,
            ))
        }
        kind if kind.has_pod_template() => workload::mutate(kind, ctx, builder),
        _ => Ok(Vec::new()),
    }
}

/// Every violation of `doc` (the final object) under the policy.
pub fn validate(kind: Kind, ctx: &Context, doc: Doc) -> Result<Vec<Violation>, MalformedObject> {
    let name = kind.info().name;
    Ok(match kind {
        Kind::Namespace => {
            let meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
            check_all(namespace::RULES, &meta, ctx)
        }
        Kind::Pod
        | Kind::Deployment
        | Kind::ReplicaSet
        | Kind::StatefulSet
        | Kind::DaemonSet
        | Kind::Job
        | Kind::CronJob => workload::validate(kind, ctx, doc)?,
        Kind::ConfigMap => config_map::validate(ctx, doc)?,
        Kind::Service => {
            let service: Service = read_at(doc, &[], name)?;
            check_all(service::RULES, &service, ctx)
        }
        Kind::Secret => {
            let head: secret::SecretHead = read_at(doc, &[], name)?;
            check_all(secret::RULES, &head, ctx)
        }
        Kind::ExternalSecret => {
            let spec: external_secret::ExternalSecretSpec = read_at(doc, &["spec"], name)?;
            check_all(external_secret::RULES, &spec, ctx)
        }
        Kind::SecretStore => {
            let meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
            check_all(external_secret::SECRET_STORE_RULES, &meta, ctx)
        }
        Kind::PushSecret => {
            let meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
            check_all(external_secret::PUSH_SECRET_RULES, &meta, ctx)
        }
        Kind::NetworkPolicy => {
            let spec: NetworkPolicySpec = read_at(doc, &["spec"], name)?;
            check_all(network_policy::RULES, &spec, ctx)
        }
        Kind::HttpRoute => {
            let route: http_route::HttpRoute = read_at(doc, &[], name)?;
            let claims = route::ClaimedHostnames::read(kind, doc.value())?;
            let mut violations = check_all(route::RULES, &claims, ctx);
            violations.extend(check_all(http_route::RULES, &route, ctx));
            violations
        }
        Kind::ReferenceGrant => {
            let meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
            check_all(route::REFERENCE_GRANT_RULES, &meta, ctx)
        }
        Kind::GrpcRoute | Kind::TlsRoute | Kind::Ingress => {
            let claims = route::ClaimedHostnames::read(kind, doc.value())?;
            check_all(route::RULES, &claims, ctx)
        }
        Kind::ServiceMonitor => {
            let spec: service_monitor::ServiceMonitorSpec = read_at(doc, &["spec"], name)?;
            check_all(service_monitor::RULES, &spec, ctx)
        }
    })
}

/// Every violation an UPDATE brings by what it changes (rules that read
/// the old object as well as the new).
pub fn validate_update(kind: Kind, ctx: &Context, old: Doc, new: Doc) -> Vec<Violation> {
    let rules: &[rule::UpdateRule] = if kind.has_pod_template() {
        pod::UPDATE_RULES
    } else {
        &[]
    };
    let change = rule::Change { old, new };
    rules.iter().flat_map(|r| (r.check)(&change, ctx)).collect()
}

/// The rule ids of every rule table of the kinds, in table order (the
/// relations' are `crate::relations::rule_ids`).
pub fn rule_tables() -> Vec<RuleId> {
    fn ids<T: ?Sized>(rules: &[rule::Rule<T>]) -> impl Iterator<Item = RuleId> + '_ {
        rules.iter().map(|r| r.id)
    }
    ids(namespace::RULES)
        .chain(ids(pss::RULES))
        .chain(ids(pod::RULES))
        .chain(pod::UPDATE_RULES.iter().map(|r| r.id))
        .chain(ids(gateway::RULES))
        .chain(ids(config_map::RULES))
        .chain(ids(strategy::RULES))
        .chain(ids(service::RULES))
        .chain(ids(http_route::RULES))
        .chain(ids(route::RULES))
        .chain(ids(route::REFERENCE_GRANT_RULES))
        .chain(ids(network_policy::RULES))
        .chain(ids(secret::RULES))
        .chain(ids(external_secret::RULES))
        .chain(ids(external_secret::SECRET_STORE_RULES))
        .chain(ids(external_secret::PUSH_SECRET_RULES))
        .chain(ids(service_monitor::RULES))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Rule functions whose module tests them through the module's
    /// `validate` (which picks the table by the object's name) rather than
    /// by name: `(file, function)`.
    const TESTED_THROUGH_VALIDATE: &[(&str, &str)] = &[
        ("config_map.rs", "gateway_config"),
        ("config_map.rs", "credentials"),
    ];

    /// The source with string literals and comments blanked, so that a
    /// name in a message or a JSON key is not taken for a call.
    fn code_only(source: &str) -> String {
        let bytes = source.as_bytes();
        let mut out = String::with_capacity(source.len());
        let mut i = 0;
        while i < bytes.len() {
            let rest = &source[i..];
            if rest.starts_with("//") {
                let end = rest.find('\n').unwrap_or(rest.len());
                i += end;
            } else if let Some(hashes) = raw_string_start(rest) {
                let open = 2 + hashes; // r, the hashes, the quote
                let close = format!("\"{}", "#".repeat(hashes));
                let end = rest[open..]
                    .find(&close)
                    .map_or(rest.len(), |e| open + e + close.len());
                out.push_str("\"\"");
                i += end;
            } else if rest.starts_with('"') {
                let mut j = 1;
                while j < rest.len() && rest.as_bytes()[j] != b'"' {
                    j += if rest.as_bytes()[j] == b'\\' { 2 } else { 1 };
                }
                out.push_str("\"\"");
                i += (j + 1).min(rest.len());
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                i += c.len_utf8();
            }
        }
        out
    }

    /// The number of `#` of a raw string literal starting here.
    fn raw_string_start(rest: &str) -> Option<usize> {
        let after = rest.strip_prefix('r')?;
        let hashes = after.len() - after.trim_start_matches('#').len();
        after[hashes..].starts_with('"').then_some(hashes)
    }

    fn is_ident(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }

    /// Whether `code` uses `name` as a value: called (`name(`) or passed
    /// (`name,` `name)`), not as a field (`.name`) or a declaration.
    fn uses(code: &str, name: &str) -> bool {
        code.match_indices(name).any(|(at, _)| {
            let before = code[..at].trim_end();
            let after = code[at + name.len()..].trim_start();
            let bounded = !code[..at].bytes().next_back().is_some_and(is_ident)
                && !code[at + name.len()..].bytes().next().is_some_and(is_ident);
            bounded
                && !before.ends_with('.')
                && !before.ends_with("fn")
                && !before.ends_with("let")
                && after.starts_with(['(', ',', ')'])
        })
    }

    /// `(rule id variant, function)` of every `Rule::new(RuleId::X, f)` and
    /// `UpdateRule { id: RuleId::X, check: f }` in `code`.
    fn table_entries(code: &str) -> Vec<(String, String)> {
        let words: Vec<&str> = code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| !w.is_empty())
            .collect();
        let mut out = Vec::new();
        for (i, w) in words.iter().enumerate() {
            let Some(variant) = w.strip_prefix("RuleId::") else {
                continue;
            };
            let function = match (words.get(i.wrapping_sub(1)), words.get(i + 1)) {
                (Some(&"Rule::new"), Some(f)) => *f,
                (Some(&"id:"), Some(&"check:")) => match words.get(i + 2) {
                    Some(f) => *f,
                    None => continue,
                },
                _ => continue,
            };
            out.push((variant.to_owned(), function.to_owned()));
        }
        out
    }

    /// Every rule function of every table above is called by name in its
    /// module's tests: each rule has unit tests beside it, not only cases
    /// in the table.
    #[test]
    fn every_rule_function_is_tested_by_name_in_its_module() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kinds");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        files.sort();
        let mut found = BTreeSet::new();
        let mut untested = Vec::new();
        for path in files {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let source = std::fs::read_to_string(&path).unwrap();
            let (rules, tests) = match source.split_once("#[cfg(test)]") {
                Some((rules, tests)) => (rules, code_only(tests)),
                None => (source.as_str(), String::new()),
            };
            for (variant, function) in table_entries(&code_only(rules)) {
                found.insert(variant);
                let exempt = TESTED_THROUGH_VALIDATE.contains(&(file.as_str(), function.as_str()));
                if !exempt && !uses(&tests, &function) {
                    untested.push(format!("{file}: {function}"));
                }
            }
        }
        // The reading of the sources found every rule of the tables.
        let tables: BTreeSet<String> = rule_tables().iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(found, tables);
        assert!(
            untested.is_empty(),
            "rule functions no unit test calls by name: {untested:?}"
        );
    }

    #[test]
    fn the_source_reading_sees_calls_not_strings() {
        let code = code_only(
            r##"paths(env, |d| d["env"] = 1); // env(
               let labels = v.labels; r#"image("#; image(&pod)"##,
        );
        assert!(uses(&code, "env"));
        assert!(!uses(&code, "labels"));
        assert!(uses(&code, "image"));
        assert!(!uses(&code_only(r#""port(" port_name(1)"#), "port"));
        let entries = table_entries(
            "Rule::new(RuleId::GatewayEnv, env), UpdateRule { id: RuleId::PodOwnerReferences, check: owner_references }",
        );
        assert_eq!(
            entries,
            [
                ("GatewayEnv".to_owned(), "env".to_owned()),
                (
                    "PodOwnerReferences".to_owned(),
                    "owner_references".to_owned()
                )
            ]
        );
    }
}
