//! The policy file: every value a rule reads, as a typed field (README:
//! Policy).
//!
//! The default policy is `policy/default.yaml`, compiled into the binary. A
//! policy file is merged over it (maps key by key, lists and scalars
//! replaced) and then checked whole: unknown fields and unknown rule ids are
//! errors that name the field.

use crate::duration::PromDuration;
use crate::image::ImageRef;
use crate::kind::HANDLED_KINDS;
use crate::quantity::Quantity;
use crate::rules::{Action, RuleId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const API_VERSION: &str = "portkey-guard.dev/v1alpha1";
pub const KIND: &str = "Policy";
pub const DEFAULT_POLICY_YAML: &str = include_str!("../policy/default.yaml");

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("policy is not valid YAML: {0}")]
    Yaml(#[from] crate::yaml::YamlError),
    #[error("policy field {path}: {message}")]
    Field { path: String, message: String },
}

fn field_error(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Field {
        path: path.into(),
        message: message.into(),
    }
}

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub exemptions: Exemptions,
    pub controllers: BTreeMap<String, Vec<ControllerGrant>>,
    /// Who besides the controllers may change owner references (the garbage
    /// collector orphans and deletes by them).
    pub owner_reference_writers: Vec<String>,
    pub allow_existing_violations: bool,
    pub rules: BTreeMap<String, Action>,
    pub namespace_labels: Labels,
    pub pod_security: PodSecurity,
    pub pods: Pods,
    pub gateway: Gateway,
    pub gateway_config: GatewayConfig,
    pub strategies: Strategies,
    pub service: ServicePolicy,
    pub http_route: HttpRoutePolicy,
    pub network_policy: NetworkPolicyEnvelope,
    pub secrets: Secrets,
    pub external_secrets: ExternalSecrets,
    pub service_monitor: ServiceMonitorPolicy,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exemptions {
    pub usernames: Vec<String>,
    pub groups: Vec<String>,
}

/// One kind of object a built-in controller makes from an owner: a Pod
/// from a ReplicaSet, a ReplicaSet from a Deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControllerGrant {
    pub kind: String,
    pub owner: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSecurity {
    pub allowed_capabilities: Vec<String>,
    pub allowed_volume_types: Vec<String>,
    pub allowed_se_linux_types: Vec<String>,
    pub safe_sysctls: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pods {
    pub run_as_user: i64,
    pub run_as_group: i64,
    pub fs_group: i64,
    pub seccomp_profile: String,
    pub automount_service_account_token: bool,
    pub scratch_volumes: Vec<ScratchVolume>,
    pub credential_env_names: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScratchVolume {
    pub name: String,
    pub mount_path: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gateway {
    /// Repository of the gateway image; the container with this image is the
    /// gateway container.
    pub image: String,
    /// The one allowed tag.
    pub version: String,
    pub port: NamedPort,
    pub env_from_config_map: String,
    pub labels: Labels,
    pub version_label: String,
    pub pod_annotations: Labels,
    pub probes: Probes,
    pub resources: Resources,
    pub strategy_mount: StrategyMount,
    /// Digests the pinned image may carry (`sha256:...`). A digest decides
    /// what runs, whatever the tag says: any other is refused.
    pub digests: Vec<String>,
    /// Image repositories that may run beside the gateway in its pods (a
    /// log shipper, a proxy); every other container there is the gateway.
    pub sidecar_images: Vec<String>,
    /// Env var names the gateway container may set besides its production
    /// settings and credentials from Secrets.
    pub allowed_env: Vec<String>,
    /// `image` normalised, worked out on first use.
    #[serde(skip)]
    repository: Derived<String>,
    /// [`Gateway::image_reference`], when it is itself pinned: worked out
    /// on first use.
    #[serde(skip)]
    pinned_reference: Derived<Option<String>>,
}

/// A value worked out from the rest of its struct on first use. A clone
/// starts empty: a copy made to be changed never keeps the original's.
#[derive(Debug, Default)]
struct Derived<T>(std::sync::OnceLock<T>);

impl<T> Clone for Derived<T> {
    fn clone(&self) -> Self {
        Derived(std::sync::OnceLock::new())
    }
}

impl Gateway {
    /// The normalised repository (`docker.io/portkeyai/gateway`).
    pub fn repository(&self) -> &str {
        self.repository.0.get_or_init(|| {
            // Policy::check made sure the image is a valid reference.
            ImageRef::parse(&self.image).map_or_else(|_| self.image.clone(), |r| r.repository)
        })
    }

    /// The image reference mutation and messages use.
    pub fn image_reference(&self) -> String {
        format!("{}:{}", self.image, self.version)
    }

    /// Whether `image` is the pinned release: the gateway's repository
    /// (however spelled), tagged `version`, with no digest or one of
    /// `digests`.
    pub fn pins(&self, image: &str) -> bool {
        self.is_pinned_reference(image) || self.pins_parsed(image)
    }

    /// Whether `image` is, as text, [`Gateway::image_reference`] and that
    /// is pinned: the reference mutation writes, so the one nearly every
    /// gateway container carries, known without parsing it again. It
    /// names the gateway's repository too.
    pub fn is_pinned_reference(&self, image: &str) -> bool {
        let pinned = self.pinned_reference.0.get_or_init(|| {
            let reference = self.image_reference();
            self.pins_parsed(&reference).then_some(reference)
        });
        pinned.as_deref() == Some(image)
    }

    fn pins_parsed(&self, image: &str) -> bool {
        ImageRef::parse(image).is_ok_and(|r| {
            r.repository == self.repository()
                && r.tag.as_deref() == Some(self.version.as_str())
                && r.digest.as_ref().is_none_or(|d| self.digests.contains(d))
        })
    }

    /// Labels every gateway pod carries, version included.
    pub fn pod_labels(&self) -> Labels {
        let mut labels = self.labels.clone();
        labels.insert(self.version_label.clone(), self.version.clone());
        labels
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamedPort {
    pub name: String,
    pub container_port: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Probes {
    pub path: String,
    pub port: i32,
    pub startup: StartupProbe,
    pub readiness: PeriodicProbe,
    pub liveness: PeriodicProbe,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartupProbe {
    pub period_seconds: i32,
    pub failure_threshold: i32,
    pub max_startup_seconds: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeriodicProbe {
    pub period_seconds: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    pub requests: CpuMemory,
    pub limits: CpuMemory,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CpuMemory {
    pub cpu: PolicyQuantity,
    pub memory: PolicyQuantity,
}

/// A quantity as written in the policy, with its parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyQuantity {
    pub text: String,
    pub value: Quantity,
}

impl Serialize for PolicyQuantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for PolicyQuantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(t) => t,
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => f.to_string(),
        };
        let value = Quantity::parse(&text).map_err(serde::de::Error::custom)?;
        Ok(PolicyQuantity { text, value })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StrategyMount {
    pub volume: String,
    pub config_map: String,
    pub mount_path: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfig {
    pub name: String,
    pub values: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Strategies {
    pub config_map: String,
    pub credential_fields: Vec<String>,
    pub provider_hosts: BTreeMap<String, String>,
    pub required: Vec<RequiredStrategy>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequiredStrategy {
    pub key: String,
    pub mode: String,
    /// Exact number of top-level targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_targets: Option<usize>,
    /// Every target (nested ones included) is one of these providers.
    pub providers: Vec<String>,
    /// Each of `providers` appears at least once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub includes_every_provider: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_mode: Option<String>,
    /// A condition's query must test a field whose name contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_field_contains: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePolicy {
    pub name: String,
    pub allowed_types: Vec<String>,
    pub port: ServicePort,
    pub selector: Labels,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePort {
    pub name: String,
    pub port: i32,
    pub target_port: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRoutePolicy {
    pub hostnames: Vec<String>,
    pub parent_refs: Vec<ParentRef>,
    pub backend: Backend,
    pub security_headers: Vec<HeaderRule>,
    pub remove_headers: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParentRef {
    pub namespace: String,
    pub name: String,
    /// The listener of that Gateway, when the route must name one (an
    /// HTTPS listener rather than a plain-HTTP one beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backend {
    pub name: String,
    pub port: i32,
}

/// A response header every route rule must set. With no constraint, any
/// non-empty value is accepted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderRule {
    pub name: String,
    /// The value is one of these (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_of: Vec<String>,
    /// Each of these is one of the value's `;`-separated directives, exactly
    /// (whitespace collapsed, ASCII case ignored), and no directive appears
    /// twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directives: Vec<String>,
    /// The value's `max-age` directive is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_max_age: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicyEnvelope {
    pub namespace_label: String,
    pub ingress_namespaces: Vec<String>,
    pub ingress_ports: Vec<AllowedPort>,
    pub egress_ports: Vec<AllowedPort>,
    /// Address ranges every egress `ipBlock` that covers them must except
    /// (the cloud metadata endpoint).
    #[serde(default)]
    pub egress_except: Vec<String>,
    pub gateway_policy_types: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AllowedPort {
    pub protocol: String,
    pub port: i32,
    /// A port name that resolves to `port` on the gateway pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Secrets {
    pub writers: Vec<String>,
    pub managed_labels: Labels,
    /// Who may make service account token Secrets (the token controller).
    pub service_account_token_writers: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalSecrets {
    pub store_kind: String,
    pub store_name: String,
    pub creation_policy: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceMonitorPolicy {
    pub selector: Labels,
    pub port: String,
    pub path: String,
    pub interval: PromDuration,
    pub scheme: String,
}

/// The `--policy` argument of the commands that judge objects.
#[derive(Debug, clap::Args)]
pub struct PolicyArg {
    /// Policy file merged over the built-in default policy.
    #[arg(long = "policy", env = "PORTKEY_GUARD_POLICY")]
    pub path: Option<std::path::PathBuf>,
}

impl PolicyArg {
    pub fn load(&self) -> Result<Policy, PolicyError> {
        match &self.path {
            Some(path) => Policy::load(path),
            None => Ok(Policy::default_policy()),
        }
    }
}

impl Policy {
    /// Whether `username` is the built-in controller that makes `kind`
    /// objects from `owner` objects.
    pub fn controller_makes(&self, username: &str, kind: &str, owner: &str) -> bool {
        self.controllers
            .get(username)
            .is_some_and(|grants| grants.iter().any(|g| g.kind == kind && g.owner == owner))
    }

    /// Whether the gateway may be given `name` other than from a Secret:
    /// one of its production settings (`gatewayConfig.values`) or a name of
    /// `gateway.allowedEnv`. Both its env and its ConfigMap are held to it.
    pub fn gateway_may_set(&self, name: &str) -> bool {
        self.gateway_config.values.contains_key(name)
            || self.gateway.allowed_env.iter().any(|n| n == name)
    }

    /// The action of a rule under this policy.
    pub fn action(&self, rule: RuleId) -> Action {
        self.rules
            .get(rule.as_str())
            .copied()
            .unwrap_or_else(|| rule.default_action())
    }

    /// The compiled-in default policy.
    pub fn default_policy() -> Policy {
        // The default policy is part of the binary and covered by tests; a
        // failure here is a build defect, not bad input.
        Self::from_merged(None).expect("the compiled-in default policy is valid")
    }

    /// Reads a policy file and merges it over the default.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses policy text and merges it over the default.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let overlay = crate::yaml::parse_one(text)?;
        if !overlay.is_object() {
            return Err(field_error("(document)", "a policy is a YAML mapping"));
        }
        Self::from_merged(Some(overlay))
    }

    fn from_merged(overlay: Option<serde_json::Value>) -> Result<Policy, PolicyError> {
        let mut merged = crate::yaml::parse_one(DEFAULT_POLICY_YAML)?;
        if let Some(overlay) = overlay {
            merge(&mut merged, overlay);
        }
        let policy: Policy = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            field_error(path, e.into_inner().to_string())
        })?;
        policy.check()?;
        Ok(policy)
    }

    /// Checks what types alone cannot.
    fn check(&self) -> Result<(), PolicyError> {
        if self.api_version != API_VERSION {
            return Err(field_error(
                "apiVersion",
                format!("must be {API_VERSION}, got {}", self.api_version),
            ));
        }
        if self.kind != KIND {
            return Err(field_error(
                "kind",
                format!("must be {KIND}, got {}", self.kind),
            ));
        }
        if self.namespace.is_empty() {
            return Err(field_error("namespace", "must not be empty"));
        }
        for (user, grants) in &self.controllers {
            for (i, grant) in grants.iter().enumerate() {
                for (field, name) in [("kind", &grant.kind), ("owner", &grant.owner)] {
                    let pod_template_kinds: Vec<&str> = HANDLED_KINDS
                        .iter()
                        .filter(|h| h.kind.has_pod_template())
                        .map(|h| h.name)
                        .collect();
                    if !pod_template_kinds.contains(&name.as_str()) {
                        return Err(field_error(
                            format!("controllers.{user}[{i}].{field}"),
                            format!(
                                "{name} is not a kind with a pod template ({})",
                                pod_template_kinds.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        for id in self.rules.keys() {
            if RuleId::from_id(id).is_none() {
                return Err(field_error(
                    format!("rules.{id}"),
                    "unknown rule id (see `portkey-guard policy` for the list)",
                ));
            }
        }
        let plain_repository = ImageRef::parse(&self.gateway.image)
            .is_ok_and(|image| image.tag.is_none() && image.digest.is_none());
        if !plain_repository {
            return Err(field_error(
                "gateway.image",
                "is an image repository without tag or digest (the tag is gateway.version)",
            ));
        }
        let ports = [
            (
                "gateway.port.containerPort",
                self.gateway.port.container_port,
            ),
            ("gateway.probes.port", self.gateway.probes.port),
            ("service.port.port", self.service.port.port),
            ("service.port.targetPort", self.service.port.target_port),
            ("httpRoute.backend.port", self.http_route.backend.port),
        ];
        for (path, port) in ports {
            if !(1..=65535).contains(&port) {
                return Err(field_error(path, format!("{port} is not a port number")));
            }
        }
        // A range that does not parse would silently guard nothing.
        for (i, range) in self.network_policy.egress_except.iter().enumerate() {
            if !crate::kinds::network_policy::is_address_range(range) {
                return Err(field_error(
                    format!("networkPolicy.egressExcept[{i}]"),
                    format!("{range:?} is not an address range such as 169.254.169.254/32"),
                ));
            }
        }
        // Mutation adds these to the same pod: two volumes of one name, or
        // two mounts at one path, would be refused by the API server.
        let strategy = &self.gateway.strategy_mount;
        let mut volumes = vec![(
            "gateway.strategyMount".to_owned(),
            &strategy.volume,
            &strategy.mount_path,
        )];
        for (i, scratch) in self.pods.scratch_volumes.iter().enumerate() {
            let path = format!("pods.scratchVolumes[{i}]");
            for (earlier, name, mount_path) in &volumes {
                if **name == scratch.name || **mount_path == scratch.mount_path {
                    return Err(field_error(
                        path,
                        format!("shares its volume name or mount path with {earlier}"),
                    ));
                }
            }
            volumes.push((path, &scratch.name, &scratch.mount_path));
        }
        let startup = &self.gateway.probes.startup;
        if startup
            .period_seconds
            .saturating_mul(startup.failure_threshold)
            > startup.max_startup_seconds
        {
            return Err(field_error(
                "gateway.probes.startup",
                "periodSeconds x failureThreshold exceeds maxStartupSeconds",
            ));
        }
        Ok(())
    }

    /// The effective policy as YAML, the way `portkey-guard policy` prints
    /// it: every rule listed with its effective action.
    pub fn to_yaml(&self) -> String {
        let mut effective = self.clone();
        effective.rules = RuleId::ALL
            .iter()
            .map(|rule| (rule.as_str().to_owned(), self.action(*rule)))
            .collect();
        let mut out = "# Effective portkey-guard policy.\n".to_owned();
        // A policy is plain data: it always has a JSON form.
        if let Ok(value) = serde_json::to_value(&effective) {
            out.push_str(&crate::yaml::to_yaml(&value));
        }
        out
    }
}

/// Merges `overlay` into `base`: maps key by key, anything else replaced.
fn merge(base: &mut serde_json::Value, overlay: serde_json::Value) {
    match (base, overlay) {
        (serde_json::Value::Object(base), serde_json::Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_release_however_spelled() {
        let mut policy = Policy::default_policy();
        let g = &policy.gateway;
        let reference = g.image_reference();
        assert!(g.pins(&reference) && g.is_pinned_reference(&reference));
        let pinned_before = reference.clone();
        let spelled_out = format!("docker.io/{reference}");
        assert!(g.pins(&spelled_out) && !g.is_pinned_reference(&spelled_out));
        for other in [
            format!("{}:latest", g.image),
            g.image.clone(),
            String::new(),
        ] {
            assert!(!g.pins(&other) && !g.is_pinned_reference(&other), "{other}");
        }
        // A version that is not a valid tag pins nothing, its own reference
        // included; a changed copy works it out afresh.
        policy.gateway = Gateway {
            version: "not a tag".to_owned(),
            ..policy.gateway.clone()
        };
        let g = &policy.gateway;
        let reference = g.image_reference();
        assert!(!g.pins(&reference) && !g.is_pinned_reference(&reference));
        for before in [&pinned_before, &spelled_out] {
            assert!(
                !g.pins(before) && !g.is_pinned_reference(before),
                "{before}"
            );
        }
    }

    #[test]
    fn default_actions_come_from_the_catalog_and_are_printed() {
        let policy = Policy::default_policy();
        assert!(
            policy.rules.is_empty(),
            "the default policy changes no action"
        );
        for rule in RuleId::ALL {
            assert_eq!(policy.action(*rule), rule.default_action(), "{rule}");
        }
        let printed = Policy::from_yaml("rules: {httproute.server-headers: deny}")
            .unwrap()
            .to_yaml();
        assert!(
            printed.contains("httproute.server-headers: deny"),
            "{printed}"
        );
        assert!(printed.contains("strategy.unknown-key: warn"), "{printed}");
        assert!(printed.contains("gateway.image: deny"), "{printed}");
    }

    #[test]
    fn overlay_changes_only_what_it_names() {
        let policy =
            Policy::from_yaml("gateway:\n  version: \"1.13.0\"\nrules:\n  gateway.image: warn\n")
                .unwrap();
        assert_eq!(policy.gateway.version, "1.13.0");
        assert_eq!(policy.gateway.image, "portkeyai/gateway");
        assert_eq!(policy.action(RuleId::GatewayImage), Action::Warn);
        assert_eq!(policy.action(RuleId::GatewayPort), Action::Deny);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = Policy::from_yaml("gateway:\n  probes:\n    startup:\n      delay: 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateway.probes.startup"), "{err}");
        assert!(err.contains("delay"), "{err}");
    }

    #[test]
    fn unknown_rule_and_bad_values_are_rejected() {
        let err = Policy::from_yaml("rules:\n  gateway.imag: warn\n").unwrap_err();
        assert!(err.to_string().contains("rules.gateway.imag"), "{err}");
        let err = Policy::from_yaml("rules:\n  gateway.image: block\n").unwrap_err();
        assert!(err.to_string().contains("rules"), "{err}");
        let err = Policy::from_yaml("gateway:\n  resources:\n    limits:\n      cpu: lots\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("gateway.resources.limits.cpu"),
            "{err}"
        );
        let err = Policy::from_yaml("gateway:\n  image: portkeyai/gateway:latest\n").unwrap_err();
        assert!(err.to_string().contains("gateway.image"), "{err}");
        let err = Policy::from_yaml("kind: Nope\n").unwrap_err();
        assert!(err.to_string().contains("kind"), "{err}");
        let err = Policy::from_yaml(
            "networkPolicy:\n  egressExcept: [169.254.169.254/32, 10.0.0.0/80]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("networkPolicy.egressExcept[1]"), "{err}");
        assert!(
            Policy::from_yaml("networkPolicy:\n  egressExcept: [fd00::/8, 10.1.2.3]\n").is_ok()
        );
        for (yaml, field) in [
            (
                "pods:\n  scratchVolumes: [{name: tmp, mountPath: /tmp}, {name: tmp2, mountPath: /tmp}]\n",
                "pods.scratchVolumes[1]",
            ),
            (
                "pods:\n  scratchVolumes: [{name: strategies, mountPath: /scratch}]\n",
                "pods.scratchVolumes[0]",
            ),
            (
                "pods:\n  scratchVolumes: [{name: tmp, mountPath: /app/configs}]\n",
                "pods.scratchVolumes[0]",
            ),
        ] {
            let err = Policy::from_yaml(yaml).unwrap_err().to_string();
            assert!(err.contains(field) && err.contains("mount path"), "{err}");
        }
        assert!(Policy::from_yaml("- a list\n").is_err());
        assert!(Policy::from_yaml("a: [unclosed\n").is_err());
    }

    #[test]
    fn durations_are_parsed_when_the_policy_is_read() {
        let err = Policy::from_yaml("serviceMonitor:\n  interval: \"30\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("serviceMonitor.interval"), "{err}");
        assert!(err.contains("not a Prometheus duration"), "{err}");
        let policy = Policy::from_yaml("serviceMonitor:\n  interval: 1m30s\n").unwrap();
        assert_eq!(policy.service_monitor.interval.millis(), 90_000);
    }

    #[test]
    fn controller_grants_name_pod_template_kinds() {
        let policy = Policy::default_policy();
        let dc = "system:serviceaccount:kube-system:deployment-controller";
        assert!(policy.controller_makes(dc, "ReplicaSet", "Deployment"));
        assert!(!policy.controller_makes(dc, "Pod", "ReplicaSet"));
        assert!(policy.controller_makes("system:kube-controller-manager", "Pod", "Job"));
        let err = Policy::from_yaml(
            "controllers:\n  someone:\n    - {kind: Secret, owner: Deployment}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("controllers.someone[0].kind"),
            "{err}"
        );
    }

    #[test]
    fn printed_policy_reads_back_identically() {
        let policy = Policy::default_policy();
        let printed = policy.to_yaml();
        let again = Policy::from_yaml(&printed).unwrap();
        assert_eq!(again.to_yaml(), printed);
    }
}
