//! The offline commands as a user runs them: exit codes, outputs, errors.

mod common;

use common::{repo_path, ScratchDir};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portkey-guard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const DENIED_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: portkey-gateway, namespace: portkey}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: portkey-gateway}}
  template:
    metadata: {labels: {app.kubernetes.io/name: portkey-gateway}}
    spec:
      containers:
        - name: gateway
          image: portkeyai/gateway:latest
          securityContext: {privileged: true}
";

#[test]
fn compliant_files_and_directories_exit_0() {
    let dir = ScratchDir::new("dir");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    for (file, to) in [
        ("deployment.yaml", "nested/deployment.yml"),
        ("service.yaml", "service.yaml"),
    ] {
        std::fs::copy(repo_path(&format!("deploy/portkey/{file}")), dir.join(to)).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
    let out = run(
        &[
            "check",
            "tests/fixtures/base/pod.yaml",
            "tests/fixtures/base/cronjob.yaml",
            dir.to_str().unwrap(),
        ],
        None,
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ALLOWED Deployment portkey/portkey-gateway"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ALLOWED Pod portkey/debug-shell"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("4 objects: 4 allowed, 0 denied, 0 skipped (0 violations, 0 warnings)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\u{1b}'),
        "no colour when not on a terminal"
    );
}

#[test]
fn denied_manifest_exits_1_and_lists_every_violation() {
    let out = run(&["check", "-"], Some(DENIED_DEPLOYMENT));
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("DENIED  Deployment portkey/portkey-gateway (<stdin>:1:1)"),
        "{stdout}"
    );
    // The injected version label names the pinned release: only the image
    // is wrong.
    assert!(!stdout.contains("gateway.version-label:"), "{stdout}");
    for rule in ["gateway.image:", "pss.privileged:"] {
        assert!(stdout.contains(rule), "{rule} in {stdout}");
    }
}

#[test]
fn the_version_label_names_the_pinned_version_not_the_image_tag() {
    // Image and labels agree on `latest`: both are told the pinned release.
    let latest = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: portkey-gateway
  namespace: portkey
  labels: {app.kubernetes.io/name: portkey-gateway, app.kubernetes.io/version: latest}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: portkey-gateway}}
  template:
    metadata: {labels: {app.kubernetes.io/name: portkey-gateway, app.kubernetes.io/version: latest}}
    spec:
      containers:
        - name: gateway
          image: portkeyai/gateway:latest
";
    let out = run(&["check", "-"], Some(latest));
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let labels: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("gateway.version-label:"))
        .collect();
    assert_eq!(labels.len(), 2, "workload and template: {stdout}");
    let pinned = portkey_guard::policy::Policy::default_policy()
        .gateway
        .version;
    assert_ne!(pinned, "latest");
    for line in labels {
        let told = format!("(expected {pinned}, got latest)");
        assert!(line.ends_with(&told), "{line}");
    }
}

#[test]
fn json_output_has_the_documented_shape() {
    let out = run(&["check", "--output", "json", "-"], Some(DENIED_DEPLOYMENT));
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["allowed"], false);
    let object = &report["objects"][0];
    assert_eq!(object["source"], "<stdin>#1");
    assert_eq!(object["apiVersion"], "apps/v1");
    assert_eq!(object["kind"], "Deployment");
    assert_eq!(object["namespace"], "portkey");
    assert_eq!(object["name"], "portkey-gateway");
    assert_eq!(object["allowed"], false);
    let v = object["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "gateway.image")
        .unwrap();
    assert_eq!(v["path"], "spec.template.spec.containers[0].image");
    assert_eq!(v["actual"], "portkeyai/gateway:latest");
    for key in ["message", "expected", "action"] {
        assert!(v[key].is_string(), "{key}");
    }
    assert!(object["warnings"].is_array());
    let ops = object["mutations"].as_array().unwrap();
    assert!(ops.iter().any(|op| op["op"] == "add"
        && op["path"] == "/spec/template/spec/securityContext"
        && op["value"]["runAsUser"] == 1000));
}

#[test]
fn unusable_input_exits_2_with_file_and_line() {
    let dir = ScratchDir::new("cli");
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: x\n  bad: indent\n",
    )
    .unwrap();
    let out = run(&["check", broken.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:6:", broken.display())),
        "{stderr}"
    );

    let no_kind = dir.join("nokind.yaml");
    std::fs::write(&no_kind, "apiVersion: v1\nmetadata: {name: x}\n").unwrap();
    let out = run(&["check", no_kind.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`kind` is missing"));

    let out = run(&["check", "/nonexistent/path.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["check"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("give a PATH"));
    let out = run(&["check", "-"], Some("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: portkey}\nspec: {template: {spec: {containers: 5}}}\n"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mutate_prints_what_the_cluster_stores() {
    let out = run(&["mutate", "-"], Some(DENIED_DEPLOYMENT));
    assert_eq!(out.status.code(), Some(0));
    let stored = portkey_guard::yaml::parse_one(&text(&out.stdout)).unwrap();
    assert_eq!(
        stored["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        1000
    );
    // Mutating the output again changes nothing.
    let again = run(
        &["check", "--output", "json", "-"],
        Some(&text(&out.stdout)),
    );
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["objects"][0]["mutations"], serde_json::json!([]));
}

#[test]
fn policy_prints_the_effective_policy_and_rejects_bad_files() {
    let out = run(&["policy"], None);
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("apiVersion: portkey-guard.dev/v1alpha1")
            && printed.contains("gateway.image: deny")
    );

    let dir = ScratchDir::new("policy");
    let file = dir.join("policy.yaml");
    std::fs::write(&file, "gateway:\n  version: \"1.13.0\"\n").unwrap();
    let out = run(&["policy", "--policy", file.to_str().unwrap()], None);
    assert!(text(&out.stdout).contains("version: 1.13.0"));
    // With the new version, the shipped Deployment is out of date.
    let out = run(
        &[
            "check",
            "--policy",
            file.to_str().unwrap(),
            "deploy/portkey/deployment.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(&file, "gatway: {}\n").unwrap();
    let out = run(&["policy", "--policy", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("gatway"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn readme_rule_table_matches_the_catalog() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let start = readme
        .find("<!-- rules:begin -->")
        .expect("rules:begin marker");
    let end = readme.find("<!-- rules:end -->").expect("rules:end marker");
    let table = readme[start..end]
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n");
    let generated = portkey_guard::rules::markdown_table();
    if std::env::var_os("PORTKEY_GUARD_BLESS").is_some() {
        let updated = format!(
            "{}<!-- rules:begin -->\n{generated}{}",
            &readme[..start],
            &readme[end..]
        );
        std::fs::write(repo_path("README.md"), updated).unwrap();
        return;
    }
    assert_eq!(
        table.trim(),
        generated.trim(),
        "README rule table is out of date: run PORTKEY_GUARD_BLESS=1 cargo test --test cli readme"
    );
}

/// `serve` killed when dropped, on success or failure.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The newcomer path of the README: `serve` with no certificate makes its
/// own, writes the CA under `$TMPDIR` once it listens, and prints a `curl`
/// that works as printed, from the repository.
#[test]
fn serve_without_certificates_prints_a_curl_that_works() {
    use std::io::BufRead;
    let tmp = ScratchDir::new("newcomer");
    // Port 0: the printed line names the port the listener got.
    let mut serving = Serving(
        Command::new(env!("CARGO_BIN_EXE_portkey-guard"))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--probe-addr",
                "127.0.0.1:0",
                "--log-format",
                "text",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TMPDIR", &*tmp)
            .env_remove("PORTKEY_GUARD_POLICY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = serving.0.stderr.take().unwrap();
    let (lines, printed) = std::sync::mpsc::channel();
    // Reads to the end, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    let marker = "try it (from the repository): ";
    let mut seen = Vec::new();
    let curl = loop {
        match printed.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) => match line.split_once(marker) {
                Some((_, curl)) => break curl.to_owned(),
                None => seen.push(line),
            },
            Err(e) => panic!("no curl line printed ({e}); stderr:\n{}", seen.join("\n")),
        }
    };
    assert!(curl.starts_with("curl --cacert "), "{curl}");
    let ca = curl["curl --cacert ".len()..]
        .split_whitespace()
        .next()
        .unwrap();
    assert!(
        std::path::Path::new(ca).starts_with(&tmp) && ca.ends_with("/ca.crt"),
        "the CA is written under $TMPDIR: {curl}"
    );
    assert!(
        std::path::Path::new(ca).is_file(),
        "{ca} exists once it is printed"
    );
    assert!(
        curl.contains("@tests/data/reviews/denied-deployment.json")
            && !curl.contains("localhost:0/"),
        "{curl}"
    );
    // Run exactly as printed, as a person pastes it into a shell; only
    // curl's own error reporting and a time bound are added.
    let answer = Command::new("sh")
        .arg("-c")
        .arg(format!("{curl} --silent --show-error --max-time 20"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("sh and curl are needed (scripts/test.sh installs curl)");
    assert!(answer.status.success(), "{curl}: {}", text(&answer.stderr));
    let review: serde_json::Value = serde_json::from_slice(&answer.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&answer.stdout)));
    assert_eq!(review["kind"], "AdmissionReview", "{review}");
    assert_eq!(review["response"]["allowed"], false, "{review}");
    assert_eq!(review["response"]["status"]["code"], 403, "{review}");
    assert_eq!(
        review["response"]["uid"], "11111111-0000-4000-8000-000000000002",
        "{review}"
    );
    drop(serving);
    let _ = std::fs::remove_dir_all(&tmp);
}
