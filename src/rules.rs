//! The catalog of rules: stable ids, what each checks, and its default
//! action. The policy file can change any rule's action.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What happens when a rule is violated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The request is rejected (HTTP 403 in the AdmissionResponse status).
    Deny,
    /// The request is allowed with an AdmissionResponse warning.
    Warn,
    /// The request is allowed; the violation is logged and counted only.
    Audit,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Audit => "audit",
        })
    }
}

macro_rules! rule_catalog {
    ($( $variant:ident => $id:literal, $action:ident, $summary:literal; )*) => {
        /// A rule's stable identity. Its string form (`gateway.image`) is what
        /// policy files, messages, metrics and audit annotations use.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId { $($variant),* }

        impl RuleId {
            /// Every rule, in catalog order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(RuleId::$variant => $id),* }
            }

            pub fn default_action(self) -> Action {
                match self { $(RuleId::$variant => Action::$action),* }
            }

            /// One sentence: what a compliant object looks like.
            pub fn summary(self) -> &'static str {
                match self { $(RuleId::$variant => $summary),* }
            }

            pub fn from_id(id: &str) -> Option<RuleId> {
                match id { $($id => Some(RuleId::$variant),)* _ => None }
            }
        }
    };
}

rule_catalog! {
    NamespacePodSecurity => "namespace.pod-security", Deny,
        "The namespace's pod-security.kubernetes.io enforce, audit and warn labels are all `restricted`.";

    PssHostNamespaces => "pss.host-namespaces", Deny,
        "hostNetwork, hostPID and hostIPC are not enabled.";
    PssPrivileged => "pss.privileged", Deny,
        "No container is privileged.";
    PssCapabilities => "pss.capabilities", Deny,
        "Every container drops ALL capabilities and adds none but NET_BIND_SERVICE.";
    PssVolumeTypes => "pss.volume-types", Deny,
        "Volumes are only configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret (no hostPath).";
    PssHostPorts => "pss.host-ports", Deny,
        "No container port sets hostPort.";
    PssAppArmor => "pss.apparmor", Deny,
        "AppArmor profiles are RuntimeDefault or Localhost, never Unconfined.";
    PssSeLinux => "pss.selinux", Deny,
        "SELinux options set no user or role and only container_t, container_init_t, container_kvm_t or container_engine_t types.";
    PssProcMount => "pss.proc-mount", Deny,
        "procMount is Default.";
    PssSeccomp => "pss.seccomp", Deny,
        "The seccomp profile is RuntimeDefault or Localhost for every container.";
    PssSysctls => "pss.sysctls", Deny,
        "Only the safe sysctls are set.";
    PssWindowsHostProcess => "pss.windows-host-process", Deny,
        "No Windows hostProcess containers.";
    PssHostProbes => "pss.host-probes", Deny,
        "Probes and lifecycle handlers do not set `host`.";
    PssPrivilegeEscalation => "pss.allow-privilege-escalation", Deny,
        "Every container sets allowPrivilegeEscalation: false.";
    PssRunAsNonRoot => "pss.run-as-non-root", Deny,
        "runAsNonRoot is true for the pod or every container.";
    PssRunAsUser => "pss.run-as-user", Deny,
        "Nothing runs as UID 0.";

    PodRunAsUser => "pod.run-as-user", Deny,
        "runAsUser, on the pod and on every container that sets it, is 1000.";
    PodRunAsGroup => "pod.run-as-group", Deny,
        "runAsGroup, on the pod and on every container that sets it, is 1000.";
    PodReadOnlyRootFilesystem => "pod.read-only-root-filesystem", Deny,
        "Every container sets readOnlyRootFilesystem: true.";
    PodWritableMount => "pod.writable-mount", Deny,
        "Only /tmp and /var/tmp are mounted writable; every other mount is readOnly.";
    PodCredentialEnv => "pod.credential-env", Deny,
        "Credential-like env vars (*_API_KEY, *_KEY, *_TOKEN, *SECRET*, *PASSWORD*) come from a secretKeyRef, not a literal value.";
    PodServiceAccountToken => "pod.service-account-token", Warn,
        "automountServiceAccountToken is false: the gateway never calls the Kubernetes API.";

    GatewayImage => "gateway.image", Deny,
        "The gateway image is portkeyai/gateway:1.12.1 (a @sha256 digest may be added).";
    GatewayLabels => "gateway.labels", Deny,
        "The workload and its pod template carry app.kubernetes.io/name: portkey-gateway.";
    GatewayVersionLabel => "gateway.version-label", Deny,
        "app.kubernetes.io/version on the workload and pod template equals the image tag.";
    GatewayPort => "gateway.port", Deny,
        "The gateway container exposes containerPort 8787 named http.";
    GatewayConfigEnv => "gateway.config-env", Deny,
        "The gateway container takes envFrom the ConfigMap portkey-gateway-config.";
    GatewayProbes => "gateway.probes", Deny,
        "Startup, readiness and liveness probes GET /v1/health on port 8787 with the policy's timings.";
    GatewayResources => "gateway.resources", Deny,
        "Requests are cpu 100m, memory 256Mi; limits cpu 500m, memory 512Mi.";
    GatewayStrategyMount => "gateway.strategy-mount", Deny,
        "The ConfigMap portkey-model-configs is mounted read-only at /app/configs.";
    GatewayMetricsAnnotations => "gateway.metrics-annotations", Deny,
        "The pod template carries the prometheus.io scrape, port and path annotations.";

    ConfigMapGatewayConfig => "configmap.gateway-config", Deny,
        "portkey-gateway-config sets NODE_ENV, PORT, HEALTH_CHECK_PATH and LOG_LEVEL to allowed values.";
    StrategySchema => "strategy.schema", Deny,
        "Every *.json key of portkey-model-configs is a valid Portkey config (strategy, targets, weights, conditions, cache, retry).";
    StrategyCredentials => "strategy.credentials", Deny,
        "Strategy files hold no literal credentials: api_key and other secret fields are $ENV references.";
    StrategyRequired => "strategy.required", Deny,
        "The five routing policies are present with the required mode, targets and providers.";
    StrategyUnknownKey => "strategy.unknown-key", Warn,
        "Strategy files use only known Portkey config keys.";

    ServiceType => "service.type", Deny,
        "Services are ClusterIP without externalIPs (no NodePort, LoadBalancer or ExternalName).";
    ServicePort => "service.port", Deny,
        "The portkey-gateway Service exposes port 8787 named http to target port 8787 or http.";
    ServiceSelector => "service.selector", Deny,
        "The portkey-gateway Service selects app.kubernetes.io/name: portkey-gateway.";

    HttpRouteParentRefs => "httproute.parent-refs", Deny,
        "The HTTPRoute attaches only to the Gateway external in namespace gateway.";
    HttpRouteHostnames => "httproute.hostnames", Deny,
        "The HTTPRoute's hostnames are exactly portkey.pc-tips.se.";
    HttpRouteBackendRefs => "httproute.backend-refs", Deny,
        "Every backendRef (and mirror) is the Service portkey-gateway on port 8787.";
    HttpRouteSecurityHeaders => "httproute.security-headers", Deny,
        "Every rule sets the strict security response headers with a ResponseHeaderModifier.";
    HttpRouteServerHeaders => "httproute.server-headers", Warn,
        "Every rule removes the Server and X-Powered-By response headers.";
    HttpRouteHostnameHijack => "httproute.hostname-hijack", Deny,
        "No HTTPRoute outside the gateway's namespace claims its hostname, exactly or by wildcard.";

    NetworkPolicyIngressPeers => "networkpolicy.ingress-peers", Deny,
        "Ingress comes only from the gateway and monitoring namespaces, selected by kubernetes.io/metadata.name.";
    NetworkPolicyIngressPorts => "networkpolicy.ingress-ports", Deny,
        "Ingress rules name their ports, and only TCP 8787 (or http).";
    NetworkPolicyEgressPorts => "networkpolicy.egress-ports", Deny,
        "Egress rules name their ports, and only DNS (UDP/TCP 53) and TCP 80 and 443.";
    NetworkPolicyPolicyTypes => "networkpolicy.policy-types", Deny,
        "A policy selecting the gateway pods lists both Ingress and Egress in policyTypes.";
    NetworkPolicyNamespaceLabel => "networkpolicy.namespace-label", Warn,
        "Namespaces are selected by kubernetes.io/metadata.name, not by a hand-set label.";

    SecretAuthor => "secret.external-secrets-only", Deny,
        "Secrets are written only by the External Secrets controller: add an ExternalSecret instead.";
    SecretManagedLabel => "secret.managed-label", Deny,
        "Secrets carry reconcile.external-secrets.io/managed: \"true\".";
    ExternalSecretStore => "externalsecret.store", Deny,
        "ExternalSecrets read only from the ClusterSecretStore bitwarden-backend.";
    ExternalSecretCreationPolicy => "externalsecret.creation-policy", Deny,
        "ExternalSecrets own their target Secret (creationPolicy Owner).";

    ServiceMonitorSelector => "servicemonitor.selector", Deny,
        "The ServiceMonitor selects app.kubernetes.io/name: portkey-gateway.";
    ServiceMonitorEndpoints => "servicemonitor.endpoints", Deny,
        "Endpoints scrape port http, path /metrics, every 30s over http, scrapeTimeout within the interval.";
    ServiceMonitorNamespaceSelector => "servicemonitor.namespace-selector", Deny,
        "The ServiceMonitor looks only in its own namespace.";
}

impl RuleId {
    /// The pod-hardening rules: the only ones enforced on objects a built-in
    /// controller makes from an admitted owner (the workload rules were
    /// decided on the owner).
    pub fn is_pod_hardening(self) -> bool {
        self.as_str().starts_with("pss.")
            || matches!(
                self,
                RuleId::PodRunAsUser
                    | RuleId::PodRunAsGroup
                    | RuleId::PodReadOnlyRootFilesystem
                    | RuleId::PodWritableMount
            )
    }

    /// Rules about who sends the request rather than what the object holds:
    /// an UPDATE never inherits them from the old object.
    pub fn judges_requester(self) -> bool {
        matches!(self, RuleId::SecretAuthor)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The rule list as a Markdown table (the README carries it; a test keeps
/// them equal).
pub fn markdown_table() -> String {
    let mut out = String::from("| rule | default action | what it requires |\n|---|---|---|\n");
    for rule in RuleId::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            rule.as_str(),
            rule.default_action(),
            rule.summary().replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for rule in RuleId::ALL {
            assert!(seen.insert(rule.as_str()), "duplicate {rule}");
            assert_eq!(RuleId::from_id(rule.as_str()), Some(*rule));
        }
        assert_eq!(RuleId::from_id("no.such-rule"), None);
    }
}
