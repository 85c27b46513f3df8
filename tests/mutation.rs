//! Mutation: only adds, converges in one pass (a second pass is empty) on
//! every fixture, and fills in everything a stripped manifest forgot.

mod common;

use common::{admit_as, deploy_portkey, load_one, load_yaml, repo_path, yaml_files};
use portkey_guard::admission::Stage;
use serde_json::{json, Value};

/// Mutates, applies the patch, and checks that a second mutation adds
/// nothing. The webhook's patch is the one `check` applies before it
/// judges, and it makes the object `check` judges.
fn assert_converges(object: &Value, what: &str) -> Value {
    let first = admit_as(object, None, Stage::Mutate);
    assert_eq!(first.patched, None, "{what}: the webhook keeps no tree");
    let checked = admit_as(object, None, Stage::MutateThenValidate);
    assert_eq!(first.patch, checked.patch, "{what}: the same patch");
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &first.patch)
        .unwrap_or_else(|e| panic!("{what}: patch does not apply: {e}"));
    assert_eq!(
        &patched,
        checked.patched.as_ref().unwrap_or(object),
        "{what}: patched object"
    );
    assert_eq!(checked.patched.is_some(), !first.patch.is_empty(), "{what}");
    let second = admit_as(&patched, None, Stage::Mutate);
    assert!(
        second.patch.is_empty(),
        "{what}: second mutation is not empty: {:?}",
        second.patch
    );
    patched
}

#[test]
fn mutation_converges_on_every_fixture() {
    let mut objects: Vec<(String, Value)> = Vec::new();
    for dir in ["pass", "fail"] {
        let path = repo_path(&format!(
            "tests/fixtures/pod-security/restricted-v1.37/{dir}"
        ));
        for file in yaml_files(&path) {
            let mut pod = load_one(&file);
            pod["metadata"]["namespace"] = json!("portkey");
            objects.push((file.display().to_string(), pod));
        }
    }
    for file in yaml_files(&repo_path("tests/fixtures/base")) {
        objects.extend(
            load_yaml(&file)
                .into_iter()
                .map(|o| (file.display().to_string(), o)),
        );
    }
    objects.extend(
        deploy_portkey()
            .into_iter()
            .map(|o| ("deploy/portkey".to_owned(), o)),
    );
    assert!(objects.len() > 100);
    for (what, object) in &objects {
        assert_converges(object, what);
    }
}

#[test]
fn shipped_gateway_needs_no_mutation() {
    for object in deploy_portkey() {
        let decision = admit_as(&object, None, Stage::MutateThenValidate);
        assert!(
            decision.patch.is_empty(),
            "{}: {:?}",
            object["kind"],
            decision.patch
        );
        assert!(
            decision.allowed,
            "{}: {}",
            object["kind"],
            decision.denial_message()
        );
        assert!(
            decision.warnings.is_empty(),
            "{}: {:?}",
            object["kind"],
            decision.warnings
        );
    }
}

fn stripped_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "portkey-gateway", "namespace": "portkey"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "portkey-gateway"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "portkey-gateway"}},
                "spec": {"containers": [{"name": "gateway", "image": "portkeyai/gateway:1.12.1"}]}
            }
        }
    })
}

#[test]
fn stripped_deployment_is_completed_and_then_compliant() {
    let object = stripped_deployment();
    let decision = admit_as(&object, None, Stage::MutateThenValidate);
    assert!(decision.allowed, "{}", decision.denial_message());
    assert!(decision.findings.is_empty(), "{:?}", decision.findings);
    let stored = assert_converges(&object, "stripped deployment");
    let spec = &stored["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    assert_eq!(spec["securityContext"]["runAsUser"], 1000);
    assert_eq!(spec["securityContext"]["runAsGroup"], 1000);
    assert_eq!(spec["securityContext"]["fsGroup"], 1000);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(container["startupProbe"]["httpGet"]["path"], "/v1/health");
    assert_eq!(container["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(container["livenessProbe"]["periodSeconds"], 30);
    assert_eq!(container["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(container["ports"][0]["containerPort"], 8787);
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        "portkey-gateway-config"
    );
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/tmp", "/var/tmp", "/app/configs"]);
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(volumes, ["tmp", "var-tmp", "strategies"]);
    assert_eq!(
        stored["metadata"]["labels"]["app.kubernetes.io/version"],
        "1.12.1"
    );
    let annotations = &stored["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"], "8787");
    // Each injected group is announced, within the limits.
    assert!(decision
        .warnings
        .iter()
        .any(|w| w.contains("pod securityContext")));
    assert!(decision.warnings.iter().any(|w| w.contains("gateway")));
    // Keys are escaped in the patch: the template's labels were there, so
    // the version label is an operation of its own.
    assert!(decision.patch.iter().any(
        |op| op.path().as_str() == "/spec/template/metadata/labels/app.kubernetes.io~1version"
    ));
    // What the manifest lacked entirely is added whole, once.
    assert!(decision
        .patch
        .iter()
        .any(|op| op.path().as_str() == "/spec/template/metadata/annotations"));
}

#[test]
fn mutation_never_overwrites_a_value_the_manifest_set() {
    let mut object = stripped_deployment();
    object["spec"]["template"]["spec"]["securityContext"] = json!({"runAsUser": 0});
    object["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "2"}});
    let decision = admit_as(&object, None, Stage::MutateThenValidate);
    let stored = decision.patched.clone().unwrap();
    assert_eq!(
        stored["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        0
    );
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "2"
    );
    assert!(!decision.allowed);
    let message = decision.denial_message();
    assert!(
        message.contains("runAsUser") && message.contains("resources.limits.cpu"),
        "{message}"
    );
}

#[test]
fn pods_and_jobs_are_mutated_on_create_only() {
    use portkey_guard::admission::admit;
    use portkey_guard::offline::create_request;
    use portkey_guard::policy::Policy;
    let policy = Policy::default_policy();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "portkey"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let mut req = create_request(&pod, &policy).unwrap();
    assert!(!admit(&req, &policy, Stage::Mutate)
        .unwrap()
        .patch
        .is_empty());
    req.operation = kube_core::admission::Operation::Update;
    req.old_object = req.object.clone();
    let update = admit(&req, &policy, Stage::MutateThenValidate).unwrap();
    assert!(
        update.patch.is_empty(),
        "an UPDATE of a Pod is never patched"
    );
    assert!(
        !update.findings.is_empty() && update.findings.iter().all(|f| f.preexisting),
        "but it is validated (its old violations are reported, not blocking)"
    );
    let mut changed = pod.clone();
    changed["spec"]["hostNetwork"] = json!(true);
    req.object = Some(serde_json::from_value(changed).unwrap());
    assert!(
        !admit(&req, &policy, Stage::MutateThenValidate)
            .unwrap()
            .allowed,
        "a new violation blocks the UPDATE"
    );
    // A Deployment's template can change: its UPDATE is mutated.
    let mut req = create_request(&stripped_deployment(), &policy).unwrap();
    req.operation = kube_core::admission::Operation::Update;
    assert!(!admit(&req, &policy, Stage::Mutate)
        .unwrap()
        .patch
        .is_empty());
}
