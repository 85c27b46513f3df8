//! Runs tests/fixtures/cases.yaml: compliant bases with one change each,
//! each case its own named test that asserts exactly the rules it breaks
//! and the field path of every violation. A test is named after the rules
//! it expects (`gateway.probes: liveness probe calls another path`), so
//! `cargo test --test cases gateway.probes` runs exactly that rule's cases.
//! A case `with` other objects is checked together with them, as `check`
//! does: that is how the relations (`relation.*`) are tabled.

mod common;

use common::{deploy_portkey, load_one, repo_path};
use kube_core::admission::Operation;
use libtest_mimic::{Arguments, Failed, Trial};
use portkey_guard::admission::{admit, Decision, Reason, Stage};
use portkey_guard::manifest::parse_documents;
use portkey_guard::offline::{admit_documents_as, create_request, Requester, OFFLINE_USER};
use portkey_guard::policy::Policy;
use portkey_guard::rules::{Action, RuleId};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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
    /// With `oldPatch`: a JSON Patch applied inside one strategy file of
    /// the old object.
    old_strategy_patch: Option<StrategyPatch>,
    #[serde(default)]
    denied: Expected,
    #[serde(default)]
    warned: Expected,
    /// Deny-action violations the old object already had: reported, not
    /// blocking.
    #[serde(default)]
    preexisting: Expected,
    /// JSON Pointers the mutation must add.
    #[serde(default)]
    mutates: Vec<String>,
    /// JSON Pointers the mutation must not add, nor add anything under.
    #[serde(default)]
    not_mutates: Vec<String>,
    #[serde(default)]
    never_mutates: bool,
    /// Other objects checked with the base, for the relations between
    /// them: the base's findings are those `check` reports on it when given
    /// all of them (`with: []`: the base alone, as `check` sees one file).
    #[serde(default)]
    with: Option<Vec<Other>>,
}

/// An object checked beside a case's base: a base file, or one changed by
/// a JSON Patch.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Other {
    File(String),
    Patched {
        base: String,
        #[serde(default)]
        patch: json_patch::Patch,
    },
}

impl Other {
    fn object(&self) -> Result<Value, String> {
        match self {
            Other::File(base) => patched(base, &json_patch::Patch(Vec::new()), None),
            Other::Patched { base, patch } => patched(base, patch, None),
        }
    }
}

/// Rule id → the field paths of its violations (one path, or a list).
type Expected = BTreeMap<String, Paths>;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Paths {
    One(String),
    Many(BTreeSet<String>),
}

impl Paths {
    fn set(&self) -> BTreeSet<String> {
        match self {
            Paths::One(path) => BTreeSet::from([path.clone()]),
            Paths::Many(paths) => paths.clone(),
        }
    }
}

fn normalise(expected: &Expected) -> BTreeMap<String, BTreeSet<String>> {
    expected.iter().map(|(r, p)| (r.clone(), p.set())).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyPatch {
    file: String,
    patch: json_patch::Patch,
}

impl Case {
    /// `rule+rule: case name`, or `allowed: case name`.
    fn test_name(&self) -> String {
        let rules: BTreeSet<&String> = self
            .denied
            .keys()
            .chain(self.warned.keys())
            .chain(self.preexisting.keys())
            .collect();
        let rules: Vec<&str> = rules.into_iter().map(String::as_str).collect();
        let prefix = if rules.is_empty() {
            "allowed".to_owned()
        } else {
            rules.join("+")
        };
        format!("{prefix}: {}", self.name)
    }

    fn stage(&self) -> Result<Stage, String> {
        match self.stage.as_deref() {
            Some("validate") => Ok(Stage::Validate),
            None => Ok(Stage::MutateThenValidate),
            Some(other) => Err(format!("unknown stage {other}")),
        }
    }
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(repo_path("tests/fixtures/cases.yaml")).expect("cases.yaml");
    let value = portkey_guard::yaml::parse_one(&text).expect("cases.yaml is YAML");
    serde_json::from_value(value).expect("cases.yaml is a list of cases")
}

fn base(name: &str) -> Value {
    if name == "portkey-model-configs" {
        return deploy_portkey()
            .into_iter()
            .find(|o| o["metadata"]["name"] == "portkey-model-configs")
            .expect("the strategies ConfigMap");
    }
    let mut object = load_one(&repo_path(name));
    if object["kind"] != "Namespace" && object["metadata"]["namespace"].is_null() {
        object["metadata"]["namespace"] = Value::from("portkey");
    }
    object
}

/// The base with `patch` applied, then `strategy_patch` inside one
/// strategy file.
fn patched(
    base_name: &str,
    patch: &json_patch::Patch,
    strategy_patch: Option<&StrategyPatch>,
) -> Result<Value, String> {
    let mut object = base(base_name);
    json_patch::patch(&mut object, patch).map_err(|e| format!("patch: {e}"))?;
    if let Some(sp) = strategy_patch {
        let text = object["data"][&sp.file]
            .as_str()
            .ok_or("strategyPatch: no such strategy file")?
            .to_owned();
        let mut config: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        json_patch::patch(&mut config, &sp.patch).map_err(|e| format!("strategy patch: {e}"))?;
        object["data"][&sp.file] =
            Value::String(serde_json::to_string_pretty(&config).unwrap_or_default());
    }
    Ok(object)
}

fn decide(case: &Case) -> Result<Decision, String> {
    let policy = match &case.policy {
        Some(overlay) => Policy::from_yaml(overlay).map_err(|e| format!("policy: {e}"))?,
        None => Policy::default_policy(),
    };
    let object = patched(&case.base, &case.patch, case.strategy_patch.as_ref())?;
    if let Some(others) = &case.with {
        return check_together(case, others, object, &policy);
    }
    let mut req = create_request(&object, &policy).map_err(|e| e.to_string())?;
    req.user_info.username = case.user.clone().or(req.user_info.username);
    req.user_info.groups = Some(case.groups.clone());
    if case.old_strategy_patch.is_some() && case.old_patch.is_none() {
        return Err("oldStrategyPatch needs oldPatch".into());
    }
    if let Some(old_patch) = &case.old_patch {
        let old = patched(&case.base, old_patch, case.old_strategy_patch.as_ref())?;
        req.operation = Operation::Update;
        req.old_object = Some(serde_json::from_value(old).map_err(|e| e.to_string())?);
    }
    admit(&req, &policy, case.stage()?).map_err(|e| e.to_string())
}

/// The base checked offline together with the case's other objects, as
/// `check` does with several files: admitted one by one, then the
/// relations across them. The decision is the one on the base.
fn check_together(
    case: &Case,
    others: &[Other],
    base: Value,
    policy: &Policy,
) -> Result<Decision, String> {
    if case.old_patch.is_some() || case.old_strategy_patch.is_some() || case.stage.is_some() {
        return Err("`with` cases are offline checks: no oldPatch, no stage".into());
    }
    let mut objects = vec![base];
    for other in others {
        objects.push(other.object()?);
    }
    let mut docs = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        let text = serde_json::to_string_pretty(object).map_err(|e| e.to_string())?;
        docs.extend(
            parse_documents(&format!("object-{i}.json"), &text).map_err(|e| e.to_string())?,
        );
    }
    let requester = Requester {
        username: case.user.clone().unwrap_or_else(|| OFFLINE_USER.to_owned()),
        groups: case.groups.clone(),
    };
    let report = admit_documents_as(&docs, policy, &requester)
        .map_err(|e| e.to_string())?
        .remove(0);
    Ok(Decision {
        allowed: report.allowed,
        reason: Reason::Judged,
        kind: None,
        patch: report.mutations,
        patched: None,
        findings: report.violations.into_iter().map(|f| f.finding).collect(),
        warnings: report.warnings,
        audit_annotations: Default::default(),
    })
}

/// What the decision found, in the shape of a case's expectation.
fn found(
    decision: &Decision,
    action: Action,
    preexisting: bool,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &decision.findings {
        if f.action == action && f.preexisting == preexisting {
            out.entry(f.violation.rule.as_str().to_owned())
                .or_default()
                .insert(f.violation.path.clone());
        }
    }
    out
}

fn run(case: &Case) -> Result<(), Failed> {
    let decision = decide(case)?;
    let mut problems = Vec::new();
    for (what, expected, actual) in [
        (
            "denied",
            &case.denied,
            found(&decision, Action::Deny, false),
        ),
        (
            "warned",
            &case.warned,
            found(&decision, Action::Warn, false),
        ),
        (
            "preexisting",
            &case.preexisting,
            found(&decision, Action::Deny, true),
        ),
    ] {
        if normalise(expected) != actual {
            problems.push(format!(
                "{what}: expected {:?}\n  got {actual:?}",
                normalise(expected)
            ));
        }
    }
    if decision.allowed != case.denied.is_empty() {
        problems.push(format!("allowed is {}", decision.allowed));
    }
    let added: Vec<String> = decision
        .patch
        .iter()
        .map(|op| op.path().to_string())
        .collect();
    if case.never_mutates && !added.is_empty() {
        problems.push(format!("mutated {added:?}"));
    }
    for path in case.mutates.iter().chain(&case.not_mutates) {
        if !path.starts_with('/') {
            problems.push(format!("{path:?} is not a JSON Pointer"));
        }
    }
    for path in &case.mutates {
        if !added.contains(path) {
            problems.push(format!("{path} not among the added {added:?}"));
        }
    }
    for path in &case.not_mutates {
        let under = format!("{path}/");
        if let Some(op) = added.iter().find(|a| *a == path || a.starts_with(&under)) {
            problems.push(format!("{op} added, which must not be"));
        }
    }
    // No secret value from any case ever reaches a message.
    let shown = format!(
        "{}\n{}",
        decision.denial_message(),
        decision.warnings.join("\n")
    );
    for secret in ["sk-live-0123456789", "sk-proj-abcdef0123456789"] {
        if shown.contains(secret) {
            problems.push("a message echoes a secret value".to_owned());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n  messages:\n  {}",
            problems.join("\n"),
            shown.replace('\n', "\n  ")
        )
        .into())
    }
}

/// Every rule but the pss.* group (whose oracle is upstream's fixtures)
/// has a case.
fn every_rule_has_a_case(cases: &[Case]) -> Result<(), Failed> {
    let covered: BTreeSet<&String> = cases
        .iter()
        .flat_map(|c| c.denied.keys().chain(c.warned.keys()))
        .collect();
    let missing: Vec<&str> = RuleId::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !r.starts_with("pss.") && !covered.contains(&r.to_string()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("rules without a case: {missing:?}").into())
    }
}

/// A denial is one line per violation: `<rule>: <path>: <problem> (expected
/// <x>, got <y>)`.
fn messages_follow_the_one_line_format(cases: &[Case]) -> Result<(), Failed> {
    let case = cases
        .iter()
        .find(|c| c.name == "running as root")
        .ok_or("no case 'running as root'")?;
    let message = decide(case)?.denial_message();
    let wanted = "pod.run-as-user: spec.template.spec.securityContext.runAsUser: pods run with runAsUser 1000 (expected 1000, got 0)";
    if message.lines().any(|l| l == wanted)
        && message.lines().any(|l| {
            l.starts_with("pss.run-as-user: spec.template.spec.securityContext.runAsUser: ")
        })
    {
        Ok(())
    } else {
        Err(message.into())
    }
}

fn main() {
    let args = Arguments::from_args();
    let cases = cases();
    let mut names = BTreeSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.clone()),
            "two cases are named {:?}",
            case.name
        );
    }
    let table = std::sync::Arc::new(cases);
    let mut trials: Vec<Trial> = (0..table.len())
        .map(|i| {
            let table = table.clone();
            Trial::test(table[i].test_name(), move || run(&table[i]))
        })
        .collect();
    let t = table.clone();
    trials.push(Trial::test(
        "table: every rule outside pss.* has a case",
        move || every_rule_has_a_case(&t),
    ));
    let t = table.clone();
    trials.push(Trial::test(
        "table: messages follow the one-line format",
        move || messages_follow_the_one_line_format(&t),
    ));
    libtest_mimic::run(&args, trials).exit();
}
