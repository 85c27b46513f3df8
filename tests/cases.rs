//! Runs tests/fixtures/cases.yaml: compliant bases with one change each,
//! against exactly the rules each case names.

mod common;

use common::{admit_as, deploy_portkey, load_one, repo_path};
use kube_core::admission::Operation;
use portkey_guard::admission::{admit, Decision, Stage};
use portkey_guard::offline::create_request;
use portkey_guard::policy::Policy;
use portkey_guard::rules::{Action, RuleId};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Case {
    name: String,
    base: String,
    #[serde(default)]
    patch: json_patch::Patch,
    strategy_patch: Option<StrategyPatch>,
    user: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    stage: Option<String>,
    /// Policy overlay (YAML) merged over the default.
    policy: Option<String>,
    /// Makes the case an UPDATE: the old object is the base with this patch
    /// applied (an empty list: the base itself).
    old_patch: Option<json_patch::Patch>,
    #[serde(default)]
    denied: BTreeSet<String>,
    #[serde(default)]
    warned: BTreeSet<String>,
    /// Deny-action violations the old object already had: reported, not
    /// blocking.
    #[serde(default)]
    preexisting: BTreeSet<String>,
    /// JSON Patch operations the mutation must (not) produce, by path.
    #[serde(default)]
    mutates: Vec<String>,
    #[serde(default)]
    never_mutates: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyPatch {
    file: String,
    patch: json_patch::Patch,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(repo_path("tests/fixtures/cases.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("cases.yaml")
}

fn base(name: &str) -> Value {
    if name == "portkey-model-configs" {
        return deploy_portkey()
            .into_iter()
            .find(|o| o["metadata"]["name"] == "portkey-model-configs")
            .unwrap();
    }
    let mut object = load_one(&repo_path(name));
    if object["kind"] != "Namespace" && object["metadata"]["namespace"].is_null() {
        object["metadata"]["namespace"] = Value::from("portkey");
    }
    object
}

fn build(case: &Case) -> Value {
    let mut object = base(&case.base);
    json_patch::patch(&mut object, &case.patch)
        .unwrap_or_else(|e| panic!("{}: patch: {e}", case.name));
    strategy_patch(case, &mut object);
    object
}

fn build_old(case: &Case) -> Option<Value> {
    let patch = case.old_patch.as_ref()?;
    let mut object = base(&case.base);
    json_patch::patch(&mut object, patch)
        .unwrap_or_else(|e| panic!("{}: oldPatch: {e}", case.name));
    Some(object)
}

fn strategy_patch(case: &Case, object: &mut Value) {
    if let Some(sp) = &case.strategy_patch {
        let text = object["data"][&sp.file]
            .as_str()
            .expect("strategy file")
            .to_owned();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        json_patch::patch(&mut config, &sp.patch)
            .unwrap_or_else(|e| panic!("{}: strategy patch: {e}", case.name));
        object["data"][&sp.file] = Value::String(serde_json::to_string_pretty(&config).unwrap());
    }
}

fn decide(case: &Case, stage: Stage) -> Decision {
    let policy = match &case.policy {
        Some(overlay) => {
            Policy::from_yaml(overlay).unwrap_or_else(|e| panic!("{}: policy: {e}", case.name))
        }
        None => Policy::default_policy(),
    };
    let mut req = create_request(&build(case), &policy).expect("request");
    req.user_info.username = case.user.clone().or(req.user_info.username);
    req.user_info.groups = Some(case.groups.clone());
    if let Some(old) = build_old(case) {
        req.operation = Operation::Update;
        req.old_object = Some(serde_json::from_value(old).expect("old object"));
    }
    admit(&req, &policy, stage).expect("admit")
}

#[test]
fn every_case_breaks_exactly_its_rules() {
    let mut problems = Vec::new();
    for case in cases() {
        let stage = match case.stage.as_deref() {
            Some("validate") => Stage::Validate,
            None => Stage::MutateThenValidate,
            Some(other) => panic!("{}: unknown stage {other}", case.name),
        };
        let decision = decide(&case, stage);
        let rules = |action, preexisting| -> BTreeSet<String> {
            decision
                .findings
                .iter()
                .filter(|f| f.action == action && f.preexisting == preexisting)
                .map(|f| f.violation.rule.as_str().to_owned())
                .collect()
        };
        let (denied, warned) = (rules(Action::Deny, false), rules(Action::Warn, false));
        let preexisting = rules(Action::Deny, true);
        if denied != case.denied || warned != case.warned || preexisting != case.preexisting {
            problems.push(format!(
                "{}: expected denied {:?} warned {:?} preexisting {:?}, got denied {:?} warned {:?} preexisting {:?}\n  {}",
                case.name,
                case.denied,
                case.warned,
                case.preexisting,
                denied,
                warned,
                preexisting,
                decision.denial_message().replace('\n', "\n  ")
            ));
        }
        let patched: Vec<String> = decision
            .patch
            .iter()
            .map(|op| op.path().to_string())
            .collect();
        if case.never_mutates && !patched.is_empty() {
            problems.push(format!("{}: mutated {patched:?}", case.name));
        }
        for path in &case.mutates {
            if !patched.contains(path) {
                problems.push(format!("{}: {path} not among {patched:?}", case.name));
            }
        }
        if decision.allowed != case.denied.is_empty() {
            problems.push(format!("{}: allowed is {}", case.name, decision.allowed));
        }
        // No secret value from any case ever reaches a message.
        let shown = format!(
            "{}\n{}",
            decision.denial_message(),
            decision.warnings.join("\n")
        );
        for secret in ["sk-live-0123456789", "sk-proj-abcdef0123456789"] {
            if shown.contains(secret) {
                problems.push(format!("{}: message echoes a secret value", case.name));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_rule_outside_the_pss_group_has_a_case() {
    let covered: BTreeSet<String> = cases()
        .into_iter()
        .flat_map(|c| c.denied.into_iter().chain(c.warned))
        .collect();
    let missing: Vec<&str> = RuleId::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !r.starts_with("pss.") && !covered.contains(*r))
        .collect();
    assert!(missing.is_empty(), "rules without a case: {missing:?}");
}

#[test]
fn messages_follow_the_one_line_format() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "running as root")
        .unwrap();
    let decision = admit_as(&build(&case), None, Stage::MutateThenValidate);
    let message = decision.denial_message();
    assert!(
        message.lines().any(|l| l
            == "pod.run-as-user: spec.template.spec.securityContext.runAsUser: pods run with runAsUser 1000 (expected 1000, got 0)"),
        "{message}"
    );
    assert!(message
        .lines()
        .any(|l| l.starts_with("pss.run-as-user: spec.template.spec.securityContext.runAsUser: ")));
}
