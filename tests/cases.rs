//! Runs tests/fixtures/cases.yaml: compliant bases with one change each,
//! against exactly the rules each case names.

mod common;

use common::{admit_as, deploy_portkey, load_one, repo_path};
use portkey_guard::admission::Stage;
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
    stage: Option<String>,
    #[serde(default)]
    denied: BTreeSet<String>,
    #[serde(default)]
    warned: BTreeSet<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyPatch {
    file: String,
    patch: json_patch::Patch,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(repo_path("tests/fixtures/cases.yaml")).unwrap();
    let value = portkey_guard::yaml::parse_one(&text).expect("cases.yaml");
    serde_json::from_value(value).expect("cases.yaml")
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
    object
}

#[test]
fn every_case_breaks_exactly_its_rules() {
    let mut problems = Vec::new();
    for case in cases() {
        let object = build(&case);
        let stage = match case.stage.as_deref() {
            Some("validate") => Stage::Validate,
            None => Stage::MutateThenValidate,
            Some(other) => panic!("{}: unknown stage {other}", case.name),
        };
        let decision = admit_as(&object, case.user.as_deref(), stage);
        let rules = |action| -> BTreeSet<String> {
            decision
                .findings
                .iter()
                .filter(|f| f.action == action)
                .map(|f| f.violation.rule.as_str().to_owned())
                .collect()
        };
        let (denied, warned) = (rules(Action::Deny), rules(Action::Warn));
        if denied != case.denied || warned != case.warned {
            problems.push(format!(
                "{}: expected denied {:?} warned {:?}, got denied {:?} warned {:?}\n  {}",
                case.name,
                case.denied,
                case.warned,
                denied,
                warned,
                decision.denial_message().replace('\n', "\n  ")
            ));
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
