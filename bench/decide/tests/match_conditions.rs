//! The hostname guard's `matchConditions`, proven against portkey-guard's
//! own decisions.
//!
//! `deploy/webhook/webhooks.yaml` sends routes of every other namespace to
//! the webhook only when a CEL condition says they name the gateway's
//! hostname. API servers from 1.28 evaluate those conditions; the 1.20 API
//! server of the end-to-end suite never does. Here every conditioned webhook
//! of the file is read (the expressions are never copied), compiled with
//! `cel-interpreter` plus cel-go's string functions, and evaluated on each
//! object of a table and of generated routes; the object is also decided by
//! `admit()` in the validate stage under the in-cluster policy
//! (`deploy/webhook/policy.yaml`). For every object:
//!
//! * **sent** (the conditions are true, or one errs: with `failurePolicy:
//!   Fail` the API server then rejects the request itself, per the
//!   `matchConditions` API documentation) **if and only if the webhook
//!   denies it**. A condition that skipped a denied object would let a
//!   hijack through; one that sent (or rejected) an allowed object would
//!   refuse routes the policy admits.
//! * the conditions evaluate without error. An error would reject with the
//!   API server's message instead of the webhook's, and cel-go and
//!   `cel-interpreter` differ in how `&&`, `||` and `exists` absorb errors,
//!   so only error-free evaluation makes the result engine-independent.
//!
//! Assumptions, each the API server's behaviour:
//!
//! * The conditions see only objects that passed the API server's own
//!   validation (validating webhooks run after it): Gateway API routes with
//!   a `spec` (the CRDs require it), lists that are lists, strings that are
//!   strings, and no `null`s (pruned from custom resources, omitted when a
//!   built-in object is converted for CEL). Hostnames are NOT limited to
//!   valid ones here: the table and the generators go beyond what the
//!   schemas admit (upper case, non-ASCII, 100,000 characters), and an
//!   Ingress or route without `spec` is covered too.
//! * The namespace carries its `kubernetes.io/metadata.name` label; the
//!   webhooks' namespace selectors are evaluated on it, and the equivalence
//!   is claimed only in namespaces they select (the gateway's own namespace
//!   goes to the main webhook, which has no condition).
//! * CREATE is decided exactly. On UPDATE the webhook also reads the old
//!   object (`allowExistingViolations`), which the conditions do not: there
//!   the property is one-way, every denied update is sent.

use kube_core::admission::Operation;
use portkey_guard::admission::{admit, Stage};
use portkey_guard::kind::{Kind, HANDLED_KINDS};
use portkey_guard::object::RawObject;
use portkey_guard::offline::create_request;
use portkey_guard::policy::Policy;
use portkey_guard_bench::match_conditions::{conditioned_webhooks, ConditionedWebhook, Outcome};
use portkey_guard_bench::repo;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The hostname the table is written for.
const GATEWAY_HOSTNAME: &str = "portkey.pc-tips.se";

/// Namespaces the routes are created in: none is the gateway's.
const NAMESPACES: &[&str] = &["shop", "kube-system", "portkey-guard", "default"];

struct Setup {
    policy: Policy,
    webhooks: Vec<ConditionedWebhook>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let path = repo("deploy/webhook/webhooks.yaml");
        let text = std::fs::read_to_string(&path).expect("deploy/webhook/webhooks.yaml");
        let webhooks =
            conditioned_webhooks(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let policy =
            Policy::load(&repo("deploy/webhook/policy.yaml")).expect("deploy/webhook/policy.yaml");
        Setup { policy, webhooks }
    })
}

fn webhook_for(kind: Kind) -> &'static ConditionedWebhook {
    let matching: Vec<_> = setup()
        .webhooks
        .iter()
        .filter(|w| w.kinds.contains(&kind))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{kind:?}: one conditioned webhook, found {}",
        matching.len()
    );
    matching[0]
}

/// The kinds that can claim a hostname, each with the API version the
/// objects are written in.
fn route_kinds() -> Vec<(Kind, &'static str)> {
    HANDLED_KINDS
        .iter()
        .filter(|h| h.kind.claims_hostnames())
        .map(|h| {
            let version = match h.kind {
                Kind::TlsRoute => "v1alpha2",
                _ => "v1",
            };
            (h.kind, version)
        })
        .collect()
}

fn object(kind: Kind, version: &str, namespace: &str, spec: Option<Value>) -> Value {
    let info = kind.info();
    let mut object = json!({
        "apiVersion": format!("{}/{version}", info.group),
        "kind": info.name,
        "metadata": {"name": "route", "namespace": namespace},
    });
    if let Some(spec) = spec {
        object["spec"] = spec;
    }
    object
}

/// A Gateway API route's spec: `hostnames` as given (absent when `None`).
fn gateway_spec(hostnames: Option<&[String]>) -> Value {
    let mut spec = json!({
        "parentRefs": [{"name": "shared", "namespace": "gateway"}],
        "rules": [{"backendRefs": [{"name": "shop", "port": 8080}]}],
    });
    if let Some(hostnames) = hostnames {
        spec["hostnames"] = json!(hostnames);
    }
    spec
}

/// An Ingress spec: each rule with its `host` (absent when `None`), each
/// TLS entry with its `hosts` (absent when `None`).
fn ingress_spec(rules: Option<&[Option<String>]>, tls: Option<&[Option<Vec<String>>]>) -> Value {
    let backend = json!({"service": {"name": "shop", "port": {"number": 80}}});
    let mut spec = json!({});
    if rules.is_none() {
        spec["defaultBackend"] = backend.clone();
    }
    if let Some(rules) = rules {
        spec["rules"] = rules
            .iter()
            .map(|host| {
                let mut rule = json!({"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}});
                if let Some(host) = host {
                    rule["host"] = json!(host);
                }
                rule
            })
            .collect();
    }
    if let Some(tls) = tls {
        spec["tls"] = tls
            .iter()
            .map(|hosts| {
                let mut entry = json!({"secretName": "shop-tls"});
                if let Some(hosts) = hosts {
                    entry["hosts"] = json!(hosts);
                }
                entry
            })
            .collect();
    }
    spec
}

/// What happened to one object: the conditions' outcome, and whether the
/// webhook denies it.
struct Verdict {
    outcome: Outcome,
    denied: bool,
    reasons: String,
}

impl Verdict {
    fn sent(&self) -> bool {
        self.outcome != Outcome::Skipped
    }
}

fn verdict(kind: Kind, object: &Value, old: Option<&Value>) -> Verdict {
    let Setup { policy, .. } = setup();
    let outcome = webhook_for(kind).evaluate(object);
    let mut request = create_request(object, policy).expect("an AdmissionRequest");
    if let Some(old) = old {
        request.operation = Operation::Update;
        request.old_object = Some(RawObject::from_json(old.clone()).expect("old object"));
    }
    // An object the webhook cannot read is refused by /validate.
    let (denied, reasons) = match admit(&request, policy, Stage::Validate) {
        Ok(decision) => (!decision.allowed, decision.denial_message()),
        Err(e) => (true, e.to_string()),
    };
    Verdict {
        outcome,
        denied,
        reasons,
    }
}

fn shorten(value: &Value) -> String {
    let text = value.to_string();
    let length = text.chars().count();
    if length <= 400 {
        text
    } else {
        format!(
            "{}... ({length} characters)",
            text.chars().take(400).collect::<String>()
        )
    }
}

/// Checks a CREATE of a route with `spec` in every namespace: sent exactly
/// when denied, no evaluation error, and denied as the table expects.
/// Returns what went wrong.
fn check_create(
    kind: Kind,
    version: &str,
    spec: Option<Value>,
    expected_denied: bool,
) -> Vec<String> {
    let webhook = webhook_for(kind);
    let mut problems = Vec::new();
    for namespace in NAMESPACES {
        assert!(
            webhook.selects_namespace(namespace).expect("selector"),
            "{}: the namespace selector must select {namespace}",
            webhook.name
        );
        let object = object(kind, version, namespace, spec.clone());
        let v = verdict(kind, &object, None);
        let what = format!("{kind:?} in {namespace}: {}", shorten(&object));
        if v.sent() != v.denied {
            problems.push(format!(
                "{what}\n  condition: {:?}, webhook: {} {}",
                v.outcome,
                if v.denied { "denies" } else { "allows" },
                v.reasons
            ));
        }
        if let Outcome::Rejected(errors) = &v.outcome {
            problems.push(format!("{what}\n  the condition errs: {errors:?}"));
        }
        if v.denied != expected_denied {
            problems.push(format!(
                "{what}\n  the table expects the webhook to {}: {}",
                if expected_denied { "deny" } else { "allow" },
                v.reasons
            ));
        }
    }
    problems
}

fn assert_no_problems(problems: Vec<String>, checked: usize) {
    assert!(
        problems.is_empty(),
        "{} problems in {checked} objects, each created in {} namespaces:\n{}",
        problems.len(),
        NAMESPACES.len(),
        problems.join("\n")
    );
}

/// Hostnames, and whether each claims `portkey.pc-tips.se` for the guard:
/// exactly, in any ASCII case, or by a `*.` wildcard over it. A wildcard
/// covers any number of labels for every kind: Gateway API defines it so,
/// and although the Ingress API lets `*` match one label only, common
/// Ingress controllers (ingress-nginx's `server_name *.se`) match any depth,
/// so the guard treats `*.se` on an Ingress as a claim too.
fn hostname_table() -> Vec<(String, bool, &'static str)> {
    let mut table: Vec<(String, bool, &'static str)> = [
        ("portkey.pc-tips.se", true, "exact"),
        ("PORTKEY.PC-TIPS.SE", true, "upper case"),
        ("Portkey.Pc-Tips.Se", true, "mixed case"),
        ("*.pc-tips.se", true, "wildcard over it"),
        ("*.se", true, "wildcard two labels over it"),
        ("*.PC-TIPS.se", true, "wildcard over it, upper case"),
        ("*.SE", true, "wildcard two labels over it, upper case"),
        (
            "*.portkey.pc-tips.se",
            false,
            "wildcard under it: only its subdomains",
        ),
        (
            "*.tips.se",
            false,
            "wildcard over a name with the same ending",
        ),
        ("*.c-tips.se", false, "suffix not on a label boundary"),
        ("*.-tips.se", false, "suffix not on a label boundary"),
        ("*.*.pc-tips.se", false, "two stars"),
        ("**.pc-tips.se", false, "not a wildcard label"),
        ("*portkey.pc-tips.se", false, "star without a dot"),
        ("*", false, "a lone star"),
        ("*.", false, "star and dot only"),
        (
            "shop.pc-tips.se",
            false,
            "another host under the same domain",
        ),
        ("pc-tips.se", false, "the parent domain"),
        ("api.portkey.pc-tips.se", false, "a subdomain"),
        ("xportkey.pc-tips.se", false, "a longer first label"),
        (
            "portkey.pc-tips.se.evil.example",
            false,
            "the hostname as a prefix",
        ),
        ("portkey.pc-tips.s", false, "truncated"),
        ("example.com", false, "unrelated"),
        ("portkey.pc-tips.se.", false, "trailing dot"),
        (".portkey.pc-tips.se", false, "leading dot"),
        ("", false, "empty"),
        (" portkey.pc-tips.se", false, "leading space"),
        ("portkey.pc-tips.se ", false, "trailing space"),
        ("pörtkey.pc-tips.se", false, "non-ASCII letter"),
        ("xn--prtkey-wxa.pc-tips.se", false, "its punycode"),
        (
            "PORT\u{212A}EY.pc-tips.se",
            false,
            "Kelvin sign: k in Unicode lower case, not in ASCII",
        ),
        ("*.P\u{130}-tips.se", false, "dotted capital I: not ASCII"),
        ("portkey\u{FF0E}pc-tips\u{FF0E}se", false, "full-width dots"),
        ("portkey.pc-tips.se\u{0}", false, "trailing NUL"),
        ("日本.pc-tips.se", false, "non-ASCII label"),
    ]
    .into_iter()
    .map(|(h, claims, why)| (h.to_owned(), claims, why))
    .collect();
    let label = "a".repeat(63);
    table.push((
        format!(
            "{label}.{label}.{label}.{}.portkey.pc-tips.se",
            "b".repeat(42)
        ),
        false,
        "253 characters under it",
    ));
    table.push((
        format!("{}.pc-tips.se", "x".repeat(100_000)),
        false,
        "100,000 characters",
    ));
    table.push((
        format!("*.{}", "x".repeat(100_000)),
        false,
        "a wildcard of 100,000 characters",
    ));
    table.push((
        format!("{}portkey.pc-tips.se", "*.".repeat(10_000)),
        false,
        "10,000 stars",
    ));
    table
}

#[test]
fn every_hostname_kind_has_one_conditioned_webhook() {
    let Setup { policy, webhooks } = setup();
    assert!(
        webhooks.len() >= 2,
        "the hostname guard's webhooks with matchConditions: {webhooks:?}"
    );
    for webhook in webhooks {
        assert!(!webhook.conditions.is_empty(), "{}", webhook.name);
        for kind in &webhook.kinds {
            assert!(
                kind.claims_hostnames(),
                "{}: {kind:?} claims no hostname",
                webhook.name
            );
        }
        // The equivalence is claimed outside the gateway's namespace, where
        // only these webhooks see routes.
        assert!(
            !webhook
                .selects_namespace(&policy.namespace)
                .expect("selector"),
            "{}: selects the policy's namespace {}",
            webhook.name,
            policy.namespace
        );
    }
    for (kind, _) in route_kinds() {
        webhook_for(kind);
    }
    assert_eq!(
        policy.http_route.hostnames,
        [GATEWAY_HOSTNAME],
        "the hostname table is written for {GATEWAY_HOSTNAME}"
    );
}

#[test]
fn each_hostname_in_each_hostname_field() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (kind, version) in route_kinds() {
        for (hostname, claims, why) in hostname_table() {
            let one = vec![hostname.clone()];
            let specs = if kind == Kind::Ingress {
                vec![
                    ingress_spec(Some(&[Some(hostname.clone())]), None),
                    ingress_spec(None, Some(&[Some(one.clone())])),
                    ingress_spec(Some(&[None, Some(hostname.clone())]), Some(&[None])),
                    ingress_spec(
                        Some(&[None]),
                        Some(&[
                            Some(vec![]),
                            Some(vec!["shop.pc-tips.se".into(), hostname.clone()]),
                        ]),
                    ),
                ]
            } else {
                vec![
                    gateway_spec(Some(&one)),
                    gateway_spec(Some(&["shop.pc-tips.se".into(), hostname.clone()])),
                ]
            };
            for spec in specs {
                checked += 1;
                for problem in check_create(kind, version, Some(spec), claims) {
                    problems.push(format!("[{why}] {problem}"));
                }
            }
        }
    }
    assert_no_problems(problems, checked);
}

#[test]
fn route_shapes_without_and_with_several_hostnames() {
    let s = |h: &str| h.to_owned();
    let others = || vec![s("shop.pc-tips.se"), s("*.tips.se"), s("example.com")];
    let many = |last: &str| {
        let mut list: Vec<String> = (0..999).map(|i| format!("shop-{i}.pc-tips.se")).collect();
        list.push(last.to_owned());
        list
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    for (kind, version) in route_kinds() {
        let cases: Vec<(&str, Option<Value>, bool)> = if kind == Kind::Ingress {
            let some = |hosts: Vec<String>| hosts.into_iter().map(Some).collect::<Vec<_>>();
            vec![
                ("no spec", None, false),
                ("empty spec", Some(json!({})), false),
                (
                    "default backend only: no rules, no tls",
                    Some(ingress_spec(None, None)),
                    false,
                ),
                (
                    "empty rules and tls",
                    Some(ingress_spec(Some(&[]), Some(&[]))),
                    false,
                ),
                (
                    "rules without host",
                    Some(ingress_spec(Some(&[None, None]), None)),
                    false,
                ),
                (
                    "tls without hosts",
                    Some(ingress_spec(None, Some(&[None]))),
                    false,
                ),
                (
                    "tls with empty hosts",
                    Some(ingress_spec(None, Some(&[Some(vec![])]))),
                    false,
                ),
                (
                    "several rules, none claims",
                    Some(ingress_spec(Some(&some(others())), Some(&[Some(others())]))),
                    false,
                ),
                (
                    "rules of other hosts, tls claims",
                    Some(ingress_spec(
                        Some(&some(others())),
                        Some(&[Some(others()), Some(vec![s("*.PC-TIPS.se")])]),
                    )),
                    true,
                ),
                (
                    "a rule claims, tls of other hosts",
                    Some(ingress_spec(
                        Some(&some(vec![s("shop.pc-tips.se"), s(GATEWAY_HOSTNAME)])),
                        Some(&[Some(others())]),
                    )),
                    true,
                ),
                (
                    "1,000 rules, the last claims",
                    Some(ingress_spec(Some(&some(many("*.se"))), None)),
                    true,
                ),
                (
                    "1,000 rules, none claims",
                    Some(ingress_spec(Some(&some(many("shop.pc-tips.se"))), None)),
                    false,
                ),
                (
                    "1,000 tls hosts, the last claims",
                    Some(ingress_spec(None, Some(&[Some(many(GATEWAY_HOSTNAME))]))),
                    true,
                ),
            ]
        } else {
            vec![
                ("no spec", None, false),
                ("empty spec", Some(json!({})), false),
                ("no hostnames", Some(gateway_spec(None)), false),
                ("empty hostnames", Some(gateway_spec(Some(&[]))), false),
                (
                    "several, none claims",
                    Some(gateway_spec(Some(&others()))),
                    false,
                ),
                (
                    "several, the first claims",
                    Some(gateway_spec(Some(&[
                        s("*.pc-tips.se"),
                        s("shop.pc-tips.se"),
                    ]))),
                    true,
                ),
                (
                    "several, two claim",
                    Some(gateway_spec(Some(&[
                        s("Portkey.pc-tips.se"),
                        s("shop.pc-tips.se"),
                        s("*.se"),
                    ]))),
                    true,
                ),
                (
                    "1,000 hostnames, the last claims",
                    Some(gateway_spec(Some(&many("PORTKEY.pc-tips.se")))),
                    true,
                ),
                (
                    "1,000 hostnames, none claims",
                    Some(gateway_spec(Some(&many("*.portkey.pc-tips.se")))),
                    false,
                ),
            ]
        };
        for (name, spec, claims) in cases {
            checked += 1;
            for problem in check_create(kind, version, spec, claims) {
                problems.push(format!("[{name}] {problem}"));
            }
        }
    }
    assert_no_problems(problems, checked);
}

/// Flips the ASCII case of the characters whose bit is set in `mask`.
fn flip_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// Hostnames near the gateway's (its labels with some dropped, wildcard
/// prefixes, stray dots and spaces, any ASCII case), composed of labels
/// that matter here, and anything at all.
fn hostname() -> impl Strategy<Value = String> {
    let labels: Vec<&str> = GATEWAY_HOSTNAME.split('.').collect();
    let near = (
        0..=labels.len(),
        prop_oneof![
            Just(""),
            Just("*."),
            Just("*"),
            Just("."),
            Just("**."),
            Just("*.*.")
        ],
        prop_oneof![Just(""), Just("."), Just(" ")],
        any::<u64>(),
    )
        .prop_map(move |(drop, prefix, suffix, mask)| {
            flip_case(
                &format!("{prefix}{}{suffix}", labels[drop..].join(".")),
                mask,
            )
        });
    let label = prop_oneof![
        Just("portkey".to_owned()),
        Just("pc-tips".to_owned()),
        Just("se".to_owned()),
        Just("tips".to_owned()),
        Just("c-tips".to_owned()),
        Just("*".to_owned()),
        Just(String::new()),
        Just("pörtkey".to_owned()),
        Just("port\u{212A}ey".to_owned()),
        "[a-z0-9-]{1,10}",
        "\\PC{0,6}",
    ];
    let composed = (
        prop_oneof![Just(""), Just("*.")],
        vec(label, 1..5),
        any::<u64>(),
    )
        .prop_map(|(prefix, labels, mask)| {
            flip_case(&format!("{prefix}{}", labels.join(".")), mask)
        });
    prop_oneof![3 => near, 3 => composed, 1 => any::<String>()]
}

/// The spec of a route of `kind`, in any of the shapes the API server
/// admits (absent, without hostnames, with empty or several).
fn spec(kind: Kind) -> BoxedStrategy<Option<Value>> {
    let hostnames = || vec(hostname(), 0..5);
    if kind == Kind::Ingress {
        prop::option::weighted(
            0.95,
            (
                prop::option::weighted(0.8, vec(prop::option::weighted(0.8, hostname()), 0..4)),
                prop::option::weighted(0.6, vec(prop::option::weighted(0.8, hostnames()), 0..3)),
            ),
        )
        .prop_map(|spec| spec.map(|(rules, tls)| ingress_spec(rules.as_deref(), tls.as_deref())))
        .boxed()
    } else {
        prop::option::weighted(0.95, prop::option::weighted(0.9, hostnames()))
            .prop_map(|spec| spec.map(|hostnames| gateway_spec(hostnames.as_deref())))
            .boxed()
    }
}

/// A route of any hostname-claiming kind: the kind's index in
/// [`route_kinds`] and two specs of that kind (new and old).
fn routes() -> impl Strategy<Value = (usize, Option<Value>, Option<Value>)> {
    (0..route_kinds().len()).prop_flat_map(|i| {
        let kind = route_kinds()[i].0;
        (Just(i), spec(kind), spec(kind))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// CREATE: sent exactly when denied, and never an evaluation error.
    #[test]
    fn generated_routes_are_sent_exactly_when_denied(
        (kind, spec, _) in routes(),
        namespace in prop::sample::select(NAMESPACES),
    ) {
        let (kind, version) = route_kinds()[kind];
        let object = object(kind, version, namespace, spec);
        let v = verdict(kind, &object, None);
        prop_assert!(!matches!(v.outcome, Outcome::Rejected(_)), "the condition errs: {:?} on {}", v.outcome, object);
        prop_assert_eq!(v.sent(), v.denied, "{:?} on {}: {}", v.outcome, object, v.reasons);
    }

    /// UPDATE: every denied update is sent, and what is sent depends on the
    /// new object only (as a CREATE of it would be).
    #[test]
    fn generated_updates_are_sent_when_denied(
        (kind, spec, old_spec) in routes(),
        namespace in prop::sample::select(NAMESPACES),
    ) {
        let (kind, version) = route_kinds()[kind];
        let object = object(kind, version, namespace, spec);
        let old = object_like(&object, old_spec);
        let update = verdict(kind, &object, Some(&old));
        let create = verdict(kind, &object, None);
        prop_assert_eq!(&update.outcome, &create.outcome);
        prop_assert!(!update.denied || update.sent(), "denied but not sent: {} (old {}): {}", object, old, update.reasons);
    }
}

/// `object` with another spec (the old version of an update).
fn object_like(object: &Value, spec: Option<Value>) -> Value {
    let mut old = object.clone();
    match spec {
        Some(spec) => old["spec"] = spec,
        None => {
            old.as_object_mut().expect("object").remove("spec");
        }
    }
    old
}
