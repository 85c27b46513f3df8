//! The restricted profile against upstream's own fixtures: every `fail/`
//! pod is denied by the right `pss.*` rule naming the offending field, every
//! `pass/` pod raises no `pss.*` violation.

mod common;

use common::{admit_as, load_one, repo_path, yaml_files};
use portkey_guard::admission::Stage;
use portkey_guard::rules::{Action, RuleId};

/// The rule and a fragment of the field path each upstream check maps to.
fn expected_for(file_stem: &str) -> (RuleId, &'static str) {
    let check = file_stem.trim_end_matches(|c: char| c.is_ascii_digit());
    match check {
        "allowprivilegeescalation" => (RuleId::PssPrivilegeEscalation, "allowPrivilegeEscalation"),
        "apparmorprofile" => (RuleId::PssAppArmor, "apparmor"),
        "capabilities_baseline" | "capabilities_restricted" => {
            (RuleId::PssCapabilities, "capabilities")
        }
        "hostnamespaces" => (RuleId::PssHostNamespaces, "spec.host"),
        "hostpathvolumes" => (RuleId::PssVolumeTypes, "hostPath"),
        "hostports" => (RuleId::PssHostPorts, "hostPort"),
        "hostprobesandhostlifecycle" => (RuleId::PssHostProbes, ".host"),
        "privileged" => (RuleId::PssPrivileged, "privileged"),
        "procmount" | "procmount_restricted" => (RuleId::PssProcMount, "procMount"),
        "restrictedvolumes" => (RuleId::PssVolumeTypes, "spec.volumes["),
        "runasnonroot" => (RuleId::PssRunAsNonRoot, "runAsNonRoot"),
        "runasuser" => (RuleId::PssRunAsUser, "runAsUser"),
        "seccompprofile_baseline" | "seccompprofile_restricted" => {
            (RuleId::PssSeccomp, "seccompProfile")
        }
        "selinuxoptions" => (RuleId::PssSeLinux, "seLinuxOptions"),
        "sysctls" => (RuleId::PssSysctls, "sysctls"),
        "windowshostprocess" => (RuleId::PssWindowsHostProcess, "hostProcess"),
        other => panic!("no expectation for upstream check {other}"),
    }
}

fn pss_findings(path: &std::path::Path) -> Vec<(RuleId, String, Action)> {
    let pod = load_one(path);
    // Validate the pod as written: mutation would repair much of it.
    let decision = admit_as(&pod, None, Stage::Validate);
    decision
        .findings
        .iter()
        .filter(|f| f.violation.rule.as_str().starts_with("pss."))
        .map(|f| (f.violation.rule, f.violation.path.clone(), f.action))
        .collect()
}

#[test]
fn every_failing_fixture_is_denied_by_the_right_rule() {
    let files = yaml_files(&repo_path(
        "tests/fixtures/pod-security/restricted-v1.37/fail",
    ));
    assert_eq!(files.len(), 76, "all upstream fail fixtures are present");
    let mut problems = Vec::new();
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy();
        let (rule, field) = expected_for(&stem);
        let findings = pss_findings(file);
        let hit = findings
            .iter()
            .any(|(r, path, action)| *r == rule && path.contains(field) && *action == Action::Deny);
        if !hit {
            problems.push(format!(
                "{stem}: expected {rule} on a path with {field:?}, got {findings:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_passing_fixture_raises_no_restricted_violation() {
    let files = yaml_files(&repo_path(
        "tests/fixtures/pod-security/restricted-v1.37/pass",
    ));
    assert_eq!(files.len(), 23, "all upstream pass fixtures are present");
    let problems: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let findings = pss_findings(file);
            (!findings.is_empty()).then(|| format!("{}: {findings:?}", file.display()))
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
