//! The same gateway Deployment rules in Rego (regorus, the language of
//! OPA/Gatekeeper) and CEL (cel-interpreter, the language of
//! ValidatingAdmissionPolicy), each turning an object's JSON text into a
//! verdict: allowed or not.

use crate::repo;
use portkey_guard::admission::{admit, Stage};
use portkey_guard::policy::Policy;
use serde_json::Value;

/// The rules the Rego and CEL policies implement (SPEC §3.2-3.3): cases
/// denied by any other rule are not theirs to agree with.
const PEER_RULES: &[&str] = &[
    "gateway.config-env",
    "gateway.image",
    "gateway.labels",
    "gateway.metrics-annotations",
    "gateway.port",
    "gateway.probes",
    "gateway.resources",
    "gateway.strategy-mount",
    "gateway.version-label",
    "pod.credential-env",
    "pod.read-only-root-filesystem",
    "pod.run-as-group",
    "pod.run-as-user",
    "pod.writable-mount",
    "pss.capabilities",
    "pss.host-namespaces",
    "pss.privileged",
    "pss.run-as-user",
    "pss.seccomp",
    "pss.volume-types",
];

/// Cases of those rules whose verdict rests on what the peer policies do not
/// model: how the runtime reads an image reference (digests, case, Docker
/// Hub's `library/`, other registries under the gateway's labels), which
/// containers may run beside the gateway, the strategies ConfigMap under
/// kustomize's hashed name, strict `envFrom`, and volume details.
const NOT_MODELLED: &[&str] = &[
    "the pinned tag with a digest of another build",
    "the pinned image with a malformed digest",
    "the pinned image spelled in upper case",
    "the gateway's name under library/",
    "gateway labels on an image from another registry",
    "gateway labels on a local registry's latest",
    "gateway labels on a look-alike repository",
    "a second container in a gateway pod",
    "an init container in a gateway pod",
    "mounting the strategies under kustomize's hashed name",
    "another ConfigMap shadowing one strategy file",
    "one strategy file mounted where another belongs",
    "envFrom another ConfigMap",
    "envFrom the gateway's ConfigMap with a prefix",
    "optional strategies",
    "a raw block device",
];

/// portkey-guard itself, from the same JSON text: parse the review, decide.
pub struct Guard {
    policy: Policy,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            policy: Policy::default_policy(),
        }
    }
}

impl Guard {
    pub fn allowed(&self, review_json: &[u8]) -> bool {
        let review: portkey_guard::admission::AdmissionReview =
            serde_json::from_slice(review_json).expect("review");
        let request = review.try_into().expect("request");
        admit(&request, &self.policy, Stage::Validate)
            .expect("admit")
            .allowed
    }
}

pub struct Rego {
    engine: regorus::Engine,
}

impl Default for Rego {
    fn default() -> Self {
        let mut engine = regorus::Engine::new();
        let text =
            std::fs::read_to_string(repo("bench/decide/policies/gateway.rego")).expect("rego");
        engine
            .add_policy("gateway.rego".to_owned(), text)
            .expect("policy compiles");
        Rego { engine }
    }
}

impl Rego {
    pub fn allowed(&mut self, object_json: &str) -> bool {
        let input = regorus::Value::from_json_str(object_json).expect("input");
        self.engine.set_input(input);
        let deny = self
            .engine
            .eval_rule("data.portkey.deny".to_owned())
            .expect("evaluates");
        deny.as_set().map(|s| s.is_empty()).unwrap_or(true)
    }

    /// The deny messages, for diagnosing a verdict.
    pub fn reasons(&mut self, object_json: &str) -> String {
        self.engine
            .set_input(regorus::Value::from_json_str(object_json).expect("input"));
        format!(
            "{}",
            self.engine
                .eval_rule("data.portkey.deny".to_owned())
                .expect("evaluates")
        )
    }
}

#[derive(serde::Deserialize)]
struct CelFile {
    variables: Vec<Named>,
    validations: Vec<Named>,
}

#[derive(serde::Deserialize)]
struct Named {
    name: String,
    expression: String,
}

pub struct Cel {
    variables: Vec<(String, cel_interpreter::Program)>,
    validations: Vec<(String, cel_interpreter::Program)>,
}

impl Default for Cel {
    fn default() -> Self {
        let text =
            std::fs::read_to_string(repo("bench/decide/policies/gateway.cel.yaml")).expect("cel");
        let file: CelFile =
            serde_json::from_value(portkey_guard::yaml::parse_one(&text).expect("cel yaml"))
                .expect("cel file");
        let compile = |n: Named| {
            let program = cel_interpreter::Program::compile(&n.expression)
                .unwrap_or_else(|e| panic!("{}: {e}", n.name));
            (n.name, program)
        };
        Cel {
            variables: file.variables.into_iter().map(compile).collect(),
            validations: file.validations.into_iter().map(compile).collect(),
        }
    }
}

impl Cel {
    /// Like a ValidatingAdmissionPolicy: every validation must be true; an
    /// evaluation error rejects.
    pub fn failed(&self, object_json: &str) -> Vec<String> {
        let object: Value = serde_json::from_str(object_json).expect("object");
        let mut context = cel_interpreter::Context::default();
        context
            .add_variable("object", object)
            .expect("object converts");
        for (name, program) in &self.variables {
            match program.execute(&context) {
                Ok(value) => context.add_variable_from_value(name.clone(), value),
                Err(e) => return vec![format!("variable {name}: {e}")],
            }
        }
        self.validations
            .iter()
            .filter_map(|(name, program)| match program.execute(&context) {
                Ok(cel_interpreter::Value::Bool(true)) => None,
                Ok(other) => Some(format!("{name}: {other:?}")),
                Err(e) => Some(format!("{name}: error {e}")),
            })
            .collect()
    }

    pub fn allowed(&self, object_json: &str) -> bool {
        self.failed(object_json).is_empty()
    }
}

/// The gateway Deployment fixtures: the shipped one, the bare one, and every
/// case of tests/fixtures/cases.yaml built on the shipped Deployment, each
/// as stored (validation only, no mutation).
pub fn deployment_fixtures() -> Vec<(String, Value)> {
    let base = crate::objects()
        .into_iter()
        .find(|(n, _)| *n == "gateway-deployment-compliant")
        .expect("compliant")
        .1;
    let bare = crate::objects()
        .into_iter()
        .find(|(n, _)| *n == "gateway-deployment-bare")
        .expect("bare")
        .1;
    let mut out = vec![
        ("shipped".to_owned(), base.clone()),
        ("bare".to_owned(), bare),
    ];
    let cases: Vec<Value> = serde_json::from_value(
        portkey_guard::yaml::parse_one(
            &std::fs::read_to_string(repo("tests/fixtures/cases.yaml")).expect("cases"),
        )
        .expect("yaml"),
    )
    .expect("cases");
    for case in &cases {
        // Only the plain cases: the peers implement the default policy, for
        // a CREATE by whoever applies the manifest, and only the rules of
        // SPEC §3.2-3.3.
        let adjusted = [
            "policy",
            "user",
            "groups",
            "oldPatch",
            "stage",
            "with",
            "preexisting",
        ]
        .iter()
        .any(|k| case.get(k).is_some());
        let beyond_the_peers = case["denied"].as_object().is_some_and(|denied| {
            denied
                .keys()
                .any(|rule| !PEER_RULES.contains(&rule.as_str()))
        });
        let name = case["name"].as_str().unwrap_or_default();
        if case["base"] != "deploy/portkey/deployment.yaml"
            || adjusted
            || beyond_the_peers
            || NOT_MODELLED.contains(&name)
        {
            continue;
        }
        let patch: json_patch::Patch = match case.get("patch") {
            Some(patch) => serde_json::from_value(patch.clone()).expect("patch"),
            None => json_patch::Patch(Vec::new()),
        };
        let mut object = base.clone();
        json_patch::patch(&mut object, &patch).expect("applies");
        out.push((case["name"].as_str().unwrap_or_default().to_owned(), object));
    }
    let names: Vec<&str> = cases.iter().filter_map(|c| c["name"].as_str()).collect();
    for name in NOT_MODELLED {
        assert!(
            names.contains(name),
            "no case {name:?} (NOT_MODELLED is out of date)"
        );
    }
    out
}
