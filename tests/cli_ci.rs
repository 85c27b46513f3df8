//! `check` as a CI tool: positions, every output format, honest statuses,
//! YAML as kubectl reads it, and bounded reading.

mod common;

use common::{repo_path, ScratchDir};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portkey-guard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PORTKEY_GUARD_POLICY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A child that exits early (over a limit) closes its end: not an error.
    let _ = input.write_all(stdin.unwrap_or_default());
    drop(input);
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn both(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", out(o), err(o))
}

const POSITIONS: &str = "tests/fixtures/cli/positions.yaml";

/// The findings of the positions fixture whose lines are known: `(rule,
/// line, column)`. `privileged: yes` and `readOnlyRootFilesystem: off` are
/// YAML 1.1 booleans, as kubectl reads them.
const KNOWN: &[(&str, &str, usize, usize)] = &[
    ("deny", "pss.privileged", 63, 13),
    ("deny", "pss.run-as-user", 34, 9),
    ("deny", "pod.run-as-user", 34, 9),
    ("deny", "pod.read-only-root-filesystem", 65, 13),
    ("warn", "pod.service-account-token", 31, 7),
    ("deny", "service.type", 84, 130),
];

#[test]
fn text_names_file_line_and_column_of_every_finding() {
    let o = run(&["check", POSITIONS], None);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let text = out(&o);
    for (action, rule, line, column) in KNOWN {
        let prefix = format!("  {POSITIONS}:{line}:{column}: {action:<5} {rule}: ");
        assert!(
            text.lines().any(|l| l.starts_with(&prefix)),
            "{prefix:?} in\n{text}"
        );
    }
    assert!(text.contains(&format!(
        "ALLOWED ConfigMap portkey/unrelated ({POSITIONS}:3:1)"
    )));
    assert!(text.contains(&format!(
        "DENIED  Deployment portkey/portkey-gateway ({POSITIONS}:10:1)"
    )));
    // The flow-style document is read, not dropped.
    assert!(text.contains(&format!(
        "DENIED  Service portkey/portkey-gateway ({POSITIONS}:84:5)"
    )));
    assert!(
        text.trim_end()
            .ends_with("3 objects: 1 allowed, 2 denied, 0 skipped (5 violations, 1 warnings)"),
        "{text}"
    );
}

#[test]
fn absent_fields_point_at_their_nearest_parent() {
    let selector = |doc: &str| {
        let o = run(&["check", "--output", "json", "-"], Some(doc.as_bytes()));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        let v = report["objects"][0]["violations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["rule"] == "service.selector")
            .cloned()
            .unwrap_or_else(|| panic!("service.selector in {}", both(&o)));
        assert_eq!(v["path"], "spec.selector");
        (v["line"].as_u64().unwrap(), v["column"].as_u64().unwrap())
    };
    // No selector: the `spec` key on line 6.
    let doc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: portkey-gateway\n  namespace: portkey\nspec:\n  ports:\n    - {name: http, port: 8787, targetPort: http}\n";
    assert_eq!(selector(doc), (6, 1));
    // No spec either: the document itself, after a leading comment.
    let doc = "# the gateway Service\n  \napiVersion: v1\nkind: Service\nmetadata: {name: portkey-gateway, namespace: portkey}\n";
    assert_eq!(selector(doc), (3, 1));
}

#[test]
fn json_has_positions_and_a_status_per_object() {
    let o = run(&["check", "--output", "json", POSITIONS], None);
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["allowed"], false);
    assert_eq!(
        report["summary"],
        serde_json::json!({"objects": 3, "allowed": 1, "denied": 2, "skipped": 0, "violations": 5, "warnings": 1})
    );
    let objects = report["objects"].as_array().unwrap();
    let statuses: Vec<&str> = objects
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["allowed", "denied", "denied"]);
    assert_eq!(
        (objects[1]["file"].as_str(), objects[1]["line"].as_u64()),
        (Some(POSITIONS), Some(10))
    );
    for (action, rule, line, column) in KNOWN {
        let found = objects
            .iter()
            .flat_map(|o| o["violations"].as_array().unwrap())
            .any(|v| {
                v["rule"] == *rule
                    && v["action"] == *action
                    && v["file"] == POSITIONS
                    && v["line"].as_u64() == Some(*line as u64)
                    && v["column"].as_u64() == Some(*column as u64)
            });
        assert!(found, "{rule} at {line}:{column}");
    }
}

/// Validates `document` against the SARIF 2.1.0 schema (the OASIS schema
/// file, vendored) with Python's `jsonschema`, which `scripts/test.sh`
/// installs.
fn validate_sarif(document: &[u8]) {
    let scratch = ScratchDir::new("ci-sarif-doc");
    let file = scratch.write("out.sarif", document);
    let schema = repo_path("tests/fixtures/sarif/sarif-schema-2.1.0.json");
    let check = Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             doc = json.load(open(sys.argv[2]))\n\
             jsonschema.Draft4Validator.check_schema(schema)\n\
             errors = list(jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).iter_errors(doc))\n\
             for e in errors: print(list(e.absolute_path), e.message)\n\
             sys.exit(1 if errors else 0)\n",
        ])
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("python3 is needed for the SARIF schema check (scripts/test.sh installs jsonschema)");
    assert!(
        check.status.success(),
        "SARIF output does not validate (is Python's jsonschema installed? scripts/test.sh installs it):\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn sarif_validates_and_carries_the_rule_catalog_and_regions() {
    let o = run(
        &["check", "--output", "sarif", POSITIONS, "deploy/portkey"],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    validate_sarif(&o.stdout);
    let sarif: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), portkey_guard::rules::RuleId::ALL.len());
    for (rule, entry) in portkey_guard::rules::RuleId::ALL.iter().zip(rules) {
        assert_eq!(entry["id"], rule.as_str());
        assert_eq!(entry["shortDescription"]["text"], rule.summary());
        assert!(entry["help"]["text"]
            .as_str()
            .unwrap()
            .starts_with(rule.summary()));
    }
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), KNOWN.len());
    for (action, rule, line, column) in KNOWN {
        let level = if *action == "deny" {
            "error"
        } else {
            "warning"
        };
        let result = results.iter().find(|r| r["ruleId"] == *rule).unwrap();
        assert_eq!(result["level"], level);
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], *rule);
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], POSITIONS);
        assert_eq!(location["region"]["startLine"].as_u64(), Some(*line as u64));
        assert_eq!(
            location["region"]["startColumn"].as_u64(),
            Some(*column as u64)
        );
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
    }
    // Skipped files are tool notifications.
    let notes = run0["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    assert!(notes.iter().any(
        |n| n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "deploy/portkey/kustomization.yaml"
    ));
    // A compliant run validates too, with no results.
    let o = run(
        &[
            "check",
            "--output",
            "sarif",
            "deploy/portkey/deployment.yaml",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    validate_sarif(&o.stdout);
}

#[test]
fn junit_is_xml_with_a_case_per_object_and_a_failure_per_denied_one() {
    let staging = ScratchDir::new("ci-junit");
    let skipped = staging.write(
        "staging.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: portkey-staging}\n",
    );
    let o = run(
        &[
            "check",
            "--output",
            "junit",
            POSITIONS,
            skipped.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let text = out(&o);
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("4"));
    assert_eq!(root.attribute("failures"), Some("2"));
    assert_eq!(root.attribute("skipped"), Some("1"));
    let cases: Vec<roxmltree::Node> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    let names: Vec<&str> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(
        names,
        [
            "ConfigMap portkey/unrelated",
            "Deployment portkey/portkey-gateway",
            "Service portkey/portkey-gateway",
            "ConfigMap portkey-staging/c",
        ]
    );
    let failures: Vec<roxmltree::Node> = cases
        .iter()
        .map(|c| c.children().filter(|n| n.has_tag_name("failure")).count())
        .zip(&cases)
        .filter(|(n, _)| *n > 0)
        .map(|(n, c)| {
            assert_eq!(n, 1, "one <failure> per denied object");
            c.children().find(|n| n.has_tag_name("failure")).unwrap()
        })
        .collect();
    assert_eq!(failures.len(), 2);
    let deployment = failures[0].text().unwrap();
    assert_eq!(deployment.lines().count(), 4, "{deployment}");
    assert!(
        deployment.contains(&format!("{POSITIONS}:63:13: pss.privileged: ")),
        "{deployment}"
    );
    assert!(cases[3].children().any(|n| n.has_tag_name("skipped")));
    // The warning is reported, not failed.
    let system_out: String = cases[1]
        .children()
        .filter(|n| n.has_tag_name("system-out"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        system_out.contains("warn pod.service-account-token"),
        "{system_out}"
    );
}

#[test]
fn github_prints_exact_workflow_commands() {
    let o = run(&["check", "--output", "github", POSITIONS], None);
    assert_eq!(o.status.code(), Some(1));
    let text = out(&o);
    let expected = [
        format!("::error file={POSITIONS},line=63,col=13,title=pss.privileged::Deployment portkey/portkey-gateway: spec.template.spec.containers[0].securityContext.privileged: privileged containers are not allowed (expected false, got true)"),
        format!("::warning file={POSITIONS},line=31,col=7,title=pod.service-account-token::Deployment portkey/portkey-gateway: spec.template.spec.automountServiceAccountToken: the service account token should not be mounted (expected false, got true)"),
        format!("::error file={POSITIONS},line=84,col=130,title=service.type::Service portkey/portkey-gateway: spec.type: this Service type would expose pods around the gateway route (expected ClusterIP, got NodePort)"),
    ];
    for line in &expected {
        assert!(text.lines().any(|l| l == line), "{line}\nin\n{text}");
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("::error ")).count(),
        5
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("::warning ")).count(),
        1
    );
    // Properties escape `:` and `,`, messages `%` and newlines.
    let scratch = ScratchDir::new("ci-github");
    let odd = scratch.write(
        "a,b:c.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort}\n",
    );
    let o = run(
        &["check", "--output", "github", odd.to_str().unwrap()],
        None,
    );
    let escaped = format!(
        "{}/a%2Cb%3Ac.yaml",
        scratch.as_str().replace(':', "%3A").replace(',', "%2C")
    );
    assert!(
        out(&o).contains(&format!("::error file={escaped},line=4,col=")),
        "{}",
        out(&o)
    );
}

#[test]
fn out_of_scope_objects_are_skipped_and_cluster_scoped_kinds_have_no_namespace() {
    let staging = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: portkey-gateway, namespace: portkey-staging}\nspec:\n  template:\n    spec:\n      containers: [{name: gateway, image: 'portkeyai/gateway:latest'}]\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: portkey-guard}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
    let o = run(&["check", "-"], Some(staging.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let text = out(&o);
    for line in [
        "SKIPPED Deployment portkey-staging/portkey-gateway (<stdin>:1:1)",
        "SKIPPED MutatingWebhookConfiguration portkey-guard (<stdin>:9:1)",
        "SKIPPED ClusterRole reader (<stdin>:13:1)",
        // Unknown kinds are taken as namespaced: no guess takes them out of scope.
        "SKIPPED Widget portkey/w (<stdin>:17:1)",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\nin\n{text}");
    }
    assert!(!text.contains("ALLOWED"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("4 objects: 0 allowed, 0 denied, 4 skipped (0 violations, 0 warnings)"),
        "{text}"
    );
    let o = run(
        &["check", "--output", "json", "-"],
        Some(staging.as_bytes()),
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let webhook = &report["objects"][1];
    assert_eq!(webhook["status"], "skipped");
    assert_eq!(webhook["reason"], "out-of-scope");
    assert!(webhook.get("namespace").is_none(), "{webhook}");
}

#[test]
fn a_directory_skips_kustomization_and_non_objects_with_a_note() {
    let o = run(&["check", "deploy/portkey"], None);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let stderr = err(&o);
    assert!(
        stderr.contains("note: skipped deploy/portkey/kustomization.yaml: a kustomization"),
        "{stderr}"
    );
    for json in [
        "all-models",
        "azure-models",
        "claude-models",
        "cost-optimized",
        "openai-models",
    ] {
        assert!(
            stderr.contains(&format!(
                "note: skipped deploy/portkey/strategies/{json}.json: not a Kubernetes object"
            )),
            "{json} in {stderr}"
        );
    }
    let text = out(&o);
    assert!(!text.contains("Kustomization"), "{text}");
    assert!(
        !text.contains("kustomization"),
        "noted on stderr only: {text}"
    );
    let o = run(&["check", "--output", "json", "deploy/portkey"], None);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["skippedFiles"].as_array().unwrap().len(), 6);

    // Unparsable or unreadable files in a directory are errors, not notes.
    let scratch = ScratchDir::new("ci-dir-errors");
    scratch.write(
        "ok.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    // Helm's Chart.yaml has an `apiVersion` but no `kind`: not an object.
    scratch.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: gateway\nversion: 0.1.0\n",
    );
    let o = run(&["check", scratch.as_str()], None);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    assert!(
        err(&o).contains(&format!(
            "note: skipped {}/chart/Chart.yaml: not a Kubernetes object (no document has both apiVersion and kind)",
            scratch.as_str()
        )),
        "{}",
        err(&o)
    );
    assert!(out(&o).contains("1 objects:"), "{}", out(&o));
    scratch.write("broken.yaml", "a: [unclosed\n");
    let o = run(&["check", scratch.as_str()], None);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(err(&o).contains("broken.yaml:"), "{}", err(&o));
    std::fs::remove_file(scratch.join("broken.yaml")).unwrap();
    std::os::unix::fs::symlink(
        scratch.join("missing-target"),
        scratch.join("dangling.yaml"),
    )
    .unwrap();
    let o = run(&["check", scratch.as_str()], None);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(err(&o).contains("dangling.yaml"), "{}", err(&o));
}

#[test]
fn kustomize_renders_and_points_findings_at_the_source_files() {
    let o = run(&["check", "-k", "deploy/portkey"], None);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let text = out(&o);
    assert!(
        text.contains("ALLOWED ConfigMap portkey/portkey-model-configs"),
        "{text}"
    );
    assert!(
        text.contains(
            "ALLOWED Deployment portkey/portkey-gateway (deploy/portkey/deployment.yaml:1:1)"
        ),
        "{text}"
    );

    let scratch = ScratchDir::new("ci-kustomize");
    let deployment = std::fs::read_to_string(repo_path("deploy/portkey/deployment.yaml")).unwrap();
    scratch.write(
        "deployment.yaml",
        deployment.replace(
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        ),
    );
    scratch.write(
        "kustomization.yaml",
        "namespace: portkey\nresources: [deployment.yaml]\n",
    );
    let o = run(&["check", "-k", scratch.as_str()], None);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let expected = format!(
        "  {}/deployment.yaml:69:13: deny  pod.read-only-root-filesystem: ",
        scratch.as_str()
    );
    assert!(
        out(&o).lines().any(|l| l.starts_with(&expected)),
        "{expected}\nin\n{}",
        out(&o)
    );

    let o = run(&["check", "-k", "/nonexistent/kustomization"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("kubectl kustomize"), "{}", err(&o));
}

#[test]
fn kustomize_overlays_point_findings_at_the_base_and_component_files() {
    let scratch = ScratchDir::new("ci-overlay");
    let deployment = std::fs::read_to_string(repo_path("deploy/portkey/deployment.yaml")).unwrap();
    scratch.write(
        "base/deployment.yaml",
        deployment.replace(
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        ),
    );
    scratch.write("base/kustomization.yaml", "resources: [deployment.yaml]\n");
    scratch.write(
        "exposed/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [service.yaml]\n",
    );
    scratch.write(
        "exposed/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: portkey-gateway\nspec:\n  type: NodePort\n  selector: {app.kubernetes.io/name: portkey-gateway}\n  ports: [{name: http, port: 8787, targetPort: http}]\n",
    );
    scratch.write(
        "overlays/staging/kustomization.yaml",
        "namespace: portkey\nnamePrefix: staging-\nnameSuffix: -a\nresources: [../../base]\ncomponents: [../../exposed]\n",
    );
    let overlay = format!("{}/overlays/staging", scratch.as_str());
    let o = run(&["check", "-k", &overlay], None);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let text = out(&o);
    for expected in [
        format!(
            "DENIED  Deployment portkey/staging-portkey-gateway-a ({}/base/deployment.yaml:1:1)",
            scratch.as_str()
        ),
        format!(
            "  {}/base/deployment.yaml:69:13: deny  pod.read-only-root-filesystem: ",
            scratch.as_str()
        ),
        format!(
            "  {}/exposed/service.yaml:6:3: deny  service.type: ",
            scratch.as_str()
        ),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&expected)),
            "{expected}\nin\n{text}"
        );
    }
    assert!(!text.contains("kustomization.yaml:1:1"), "{text}");
}

#[test]
fn empty_input_is_unusable() {
    for input in ["", "\n", "---\n", "# only a comment\n"] {
        let o = run(&["check", "-"], Some(input.as_bytes()));
        assert_eq!(o.status.code(), Some(2), "{input:?}: {}", both(&o));
        assert!(err(&o).contains("no objects"), "{}", err(&o));
    }
    let scratch = ScratchDir::new("ci-empty");
    scratch.write("notes.json", "{\"not\": \"an object\"}");
    let o = run(&["check", scratch.as_str()], None);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(err(&o).contains("no objects"));
}

#[test]
fn yaml_is_read_as_kubectl_reads_it() {
    // YAML 1.1: `yes` is true, so the container is privileged.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: portkey}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {privileged: yes}\n";
    let o = run(&["check", "--output", "json", "-"], Some(pod.as_bytes()));
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = report["objects"][0]["violations"].as_array().unwrap();
    assert!(
        v.iter()
            .any(|v| v["rule"] == "pss.privileged" && v["line"] == 8),
        "{v:?}"
    );
    // A merge key, and a flow-style document after `---`.
    let merged = "x: &meta {name: p, namespace: portkey}\napiVersion: v1\nkind: Pod\nmetadata:\n  <<: *meta\nspec:\n  containers: [{name: c, image: busybox}]\n--- {apiVersion: v1, kind: ConfigMap, metadata: {name: flow, namespace: portkey}}\n";
    let o = run(&["check", "--output", "json", "-"], Some(merged.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p", "flow"]);
    // Duplicate keys are ambiguous between YAML readers: refused.
    let o = run(
        &["check", "-"],
        Some(b"apiVersion: v1\nkind: Pod\nkind: Service\n"),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("<stdin>:3:1: not valid YAML: duplicate key `kind`"),
        "{}",
        err(&o)
    );
}

#[test]
fn warnings_are_full_length_and_fail_on_warn_turns_them_into_exit_1() {
    let scratch = ScratchDir::new("ci-warn");
    let policy = scratch.write("policy.yaml", "rules:\n  gateway.image: warn\n");
    let deployment = std::fs::read_to_string(repo_path("deploy/portkey/deployment.yaml")).unwrap();
    // A warn-only finding: the service account token.
    let warned = scratch.write(
        "token.yaml",
        deployment.replace(
            "automountServiceAccountToken: false",
            "automountServiceAccountToken: true",
        ),
    );
    let o = run(&["check", warned.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let o = run(&["check", "--fail-on-warn", warned.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    // Offline text is rendered from the findings: no 120-character cut.
    let image = scratch.write(
        "image.yaml",
        deployment.replace("portkeyai/gateway:1.12.1", "portkeyai/gateway:latest"),
    );
    let o = run(
        &[
            "check",
            "--policy",
            policy.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
        None,
    );
    let line = out(&o)
        .lines()
        .find(|l| l.contains("warn  gateway.image:"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{}", both(&o)));
    assert!(
        line.ends_with("(expected portkeyai/gateway:1.12.1, got portkeyai/gateway:latest)"),
        "{line}"
    );
    assert!(line.chars().count() > 120, "{line}");
}

#[test]
fn as_user_and_group_judge_as_that_requester() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: portkey\n  labels: {reconcile.external-secrets.io/managed: \"true\"}\n";
    let o = run(&["check", "-"], Some(secret.as_bytes()));
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(out(&o).contains("secret.external-secrets-only"));
    let writer = portkey_guard::policy::Policy::default_policy()
        .secrets
        .writers[0]
        .clone();
    let o = run(&["check", "--as", &writer, "-"], Some(secret.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));

    let scratch = ScratchDir::new("ci-as-group");
    let policy = scratch.write(
        "policy.yaml",
        "exemptions:\n  groups: [platform-breakglass]\n",
    );
    let o = run(
        &[
            "check",
            "--policy",
            policy.to_str().unwrap(),
            "--as",
            "alice",
            "--as-group",
            "platform-breakglass",
            "-",
        ],
        Some(secret.as_bytes()),
    );
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    assert!(
        out(&o).contains("policy not applied: group platform-breakglass is exempted"),
        "{}",
        out(&o)
    );
    let o = run(
        &[
            "check",
            "--policy",
            policy.to_str().unwrap(),
            "--as",
            "alice",
            "--as-group",
            "developers",
            "-",
        ],
        Some(secret.as_bytes()),
    );
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
}

/// Refused with exit 2 and `message`. (How fast: README, "Bounds".)
fn assert_refused(args: &[&str], stdin: Option<&[u8]>, message: &str) {
    let o = run(args, stdin);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", both(&o));
    assert!(
        err(&o).contains(message),
        "{args:?}: {message:?} in {}",
        err(&o)
    );
}

#[test]
fn directory_symlink_loops_are_detected() {
    let scratch = ScratchDir::new("ci-loop");
    scratch.write(
        "a/ok.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    std::os::unix::fs::symlink(&*scratch, scratch.join("a/back-to-top")).unwrap();
    assert_refused(&["check", scratch.as_str()], None, "directory symlink loop");
    // The same directory twice through a symlink that is not a loop: read once.
    let twice = ScratchDir::new("ci-twice");
    twice.write(
        "real/ok.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    std::os::unix::fs::symlink(twice.join("real"), twice.join("z-alias")).unwrap();
    let o = run(&["check", twice.as_str()], None);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    assert!(out(&o).contains("1 objects:"), "{}", out(&o));
    assert!(err(&o).contains("already read"), "{}", err(&o));
}

#[test]
fn directory_depth_is_bounded() {
    let scratch = ScratchDir::new("ci-depth");
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
    // 64 directories below the PATH are read ...
    let nested: String = (0..64).map(|i| format!("d{i}/")).collect();
    scratch.write(&format!("{nested}deep.yaml"), config_map);
    let o = run(&["check", scratch.as_str()], None);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    assert!(out(&o).contains("1 objects:"), "{}", out(&o));
    // ... the 65th is refused, and the message names the limit.
    scratch.write(&format!("{nested}d64/deeper.yaml"), config_map);
    assert_refused(
        &["check", scratch.as_str()],
        None,
        "directories nested deeper than 64 levels",
    );
}

#[test]
fn an_over_limit_file_in_a_directory_is_refused() {
    let scratch = ScratchDir::new("ci-dir-limit");
    scratch.write(
        "a-small.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    let big = scratch.write(
        "sub/big.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: b}}\ndata: {{k: {}}}\n",
            "x".repeat(4096)
        ),
    );
    assert_refused(
        &["check", "--max-file-bytes", "1024", scratch.as_str()],
        None,
        &format!("{}: larger than the limit of 1024 bytes", big.display()),
    );
    // Within the limit the same directory is read.
    let o = run(
        &["check", "--max-file-bytes", "8192", scratch.as_str()],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
}

#[test]
fn relation_findings_name_file_line_and_column_in_text() {
    let scratch = ScratchDir::new("ci-relation");
    for file in ["deployment.yaml", "service.yaml"] {
        let text = std::fs::read_to_string(repo_path(&format!("deploy/portkey/{file}"))).unwrap();
        scratch.write(file, text.replace("targetPort: http", "targetPort: 9999"));
    }
    let o = run(&["check", scratch.as_str()], None);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let text = out(&o);
    let expected = format!(
        "  {}/service.yaml:14:7: deny  relation.service-gateway: spec.ports[0].targetPort: ",
        scratch.as_str()
    );
    assert!(
        text.lines().any(|l| l.starts_with(&expected)),
        "{expected}\nin\n{text}"
    );
    assert!(
        text.contains(&format!(
            "DENIED  Service portkey/portkey-gateway ({}/service.yaml:1:1)",
            scratch.as_str()
        )),
        "{text}"
    );
}

#[test]
fn file_size_and_document_count_are_bounded() {
    let scratch = ScratchDir::new("ci-limits");
    let big = scratch.write(
        "big.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{k: {}}}\n",
            "x".repeat(4096)
        ),
    );
    assert_refused(
        &["check", "--max-file-bytes", "1024", big.to_str().unwrap()],
        None,
        "larger than the limit of 1024 bytes",
    );
    // Standard input and devices are bounded the same way.
    assert_refused(
        &["check", "--max-file-bytes", "1024", "-"],
        Some(&[b'#'; 4096]),
        "<stdin>: larger than",
    );
    assert_refused(
        &["check", "--max-file-bytes", "65536", "/dev/zero"],
        None,
        "larger than",
    );
    // The default limit: 16 MiB.
    let huge = scratch.write("huge.yaml", vec![b'#'; 16 * 1024 * 1024 + 1]);
    assert_refused(
        &["check", huge.to_str().unwrap()],
        None,
        "larger than the limit of 16777216 bytes",
    );

    let many = vec!["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"; 20].join("---\n");
    let file = scratch.write("many.yaml", &many);
    assert_refused(
        &["check", "--max-documents", "10", file.to_str().unwrap()],
        None,
        "more than 10 documents",
    );
    let o = run(
        &["check", "--max-documents", "20", file.to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    // A stream of empty documents counts too (default: 10,000).
    let empties = "---\n".repeat(20_000);
    assert_refused(
        &["check", "-"],
        Some(empties.as_bytes()),
        "more than 10000 documents",
    );
}

#[test]
fn nesting_depth_and_alias_expansion_are_bounded() {
    let deep = "[".repeat(100_000);
    assert_refused(&["check", "-"], Some(deep.as_bytes()), "<stdin>:1:");
    let block: String = (0..300).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    assert_refused(
        &["check", "-"],
        Some(block.as_bytes()),
        "nested deeper than 200 levels",
    );
    let mut laughs = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 10].join(", ");
        laughs.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    assert_refused(
        &["check", "-"],
        Some(laughs.as_bytes()),
        "aliases expand to more than 100000 nodes",
    );
}

#[test]
fn non_utf8_input_names_file_and_byte_offset() {
    let scratch = ScratchDir::new("ci-utf8");
    let file = scratch.write(
        "latin1.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n".as_slice(),
    );
    let o = run(&["check", file.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(
        err(&o).contains(&format!(
            "{}:3: not UTF-8: invalid byte at offset 51",
            file.display()
        )),
        "{}",
        err(&o)
    );
    let o = run(&["check", "-"], Some(b"\xff\xfe"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("<stdin>:1: not UTF-8: invalid byte at offset 0"),
        "{}",
        err(&o)
    );
}

#[test]
fn mutate_reads_the_same_inputs() {
    let o = run(&["mutate", "-k", "deploy/portkey"], None);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let docs = portkey_guard::yaml::parse_stream(&out(&o), &Default::default()).unwrap();
    // The strategies ConfigMap exists only in the rendered output.
    assert!(docs.iter().any(|d| d.value["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("portkey-model-configs"))));
    let o = run(&["mutate", "-"], Some(b""));
    assert_eq!(o.status.code(), Some(2));
}
