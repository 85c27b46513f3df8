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

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Audit => "audit",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
        "The namespace's pod-security.kubernetes.io enforce, audit and warn labels keep the policy's level (`namespaceLabels`).";
    NamespaceNameLabel => "namespace.name-label", Deny,
        "The namespace's `kubernetes.io/metadata.name` label is its own name: a relabel would take it out of every webhook's scope.";

    PssHostNamespaces => "pss.host-namespaces", Deny,
        "hostNetwork, hostPID and hostIPC are not enabled.";
    PssPrivileged => "pss.privileged", Deny,
        "No container is privileged.";
    PssCapabilities => "pss.capabilities", Deny,
        "Every container drops ALL capabilities and adds only the allowed ones (`podSecurity.allowedCapabilities`).";
    PssVolumeTypes => "pss.volume-types", Deny,
        "Volumes are only of the allowed types (`podSecurity.allowedVolumeTypes`).";
    PssHostPorts => "pss.host-ports", Deny,
        "No container port sets hostPort.";
    PssAppArmor => "pss.apparmor", Deny,
        "AppArmor profiles are RuntimeDefault or Localhost, never Unconfined.";
    PssSeLinux => "pss.selinux", Deny,
        "SELinux options set no user or role and only the allowed types (`podSecurity.allowedSeLinuxTypes`).";
    PssProcMount => "pss.proc-mount", Deny,
        "procMount is Default.";
    PssSeccomp => "pss.seccomp", Deny,
        "The seccomp profile is RuntimeDefault or Localhost for every container.";
    PssSysctls => "pss.sysctls", Deny,
        "Only the safe sysctls are set (`podSecurity.safeSysctls`).";
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
        "runAsUser, on the pod and on every container that sets it, is the policy's UID (`pods.runAsUser`).";
    PodRunAsGroup => "pod.run-as-group", Deny,
        "runAsGroup, on the pod and on every container that sets it, is the policy's GID (`pods.runAsGroup`).";
    PodReadOnlyRootFilesystem => "pod.read-only-root-filesystem", Deny,
        "Every container sets readOnlyRootFilesystem: true.";
    PodWritableMount => "pod.writable-mount", Deny,
        "Only the scratch volumes' paths (`pods.scratchVolumes`) are mounted writable; every other mount is readOnly.";
    PodFsGroup => "pod.fs-group", Deny,
        "fsGroup, when set, is the policy's (`pods.fsGroup`), never root's group.";
    PodSupplementalGroups => "pod.supplemental-groups", Deny,
        "No supplemental group is 0 (root's group).";
    PodOwnerReferences => "pod.owner-references", Deny,
        "Only the controllers (`controllers`) and the garbage collector (`ownerReferenceWriters`) change the owner references of what controllers make.";
    PodCredentialEnv => "pod.credential-env", Deny,
        "Credential-like env vars (`pods.credentialEnvNames`) come from a secretKeyRef, not a literal value; no env value, command or args word is shaped like a provider key (`sk-`, `AIza`, ...).";
    PodServiceAccountToken => "pod.service-account-token", Warn,
        "automountServiceAccountToken is as the policy says (`pods.automountServiceAccountToken`).";

    GatewayImage => "gateway.image", Deny,
        "The gateway runs the pinned image (`gateway.image` at `gateway.version`, a digest only from `gateway.digests`); its pods run nothing else, init containers included, but the policy's sidecars (`gateway.sidecarImages`).";
    GatewayLabels => "gateway.labels", Deny,
        "The workload and its pod template carry the gateway's labels (`gateway.labels`).";
    GatewayVersionLabel => "gateway.version-label", Deny,
        "The version label (`gateway.versionLabel`) on the workload and pod template names the pinned release (`gateway.version`).";
    GatewayPort => "gateway.port", Deny,
        "The gateway container exposes its named port (`gateway.port`).";
    GatewayConfigEnv => "gateway.config-env", Deny,
        "The gateway container takes envFrom the gateway ConfigMap (`gateway.envFromConfigMap`, or its kustomize-hashed name), and nothing else, without prefix or optional.";
    GatewayProbes => "gateway.probes", Deny,
        "Startup, readiness and liveness probes GET the health path on the gateway port with the policy's timings (`gateway.probes`).";
    GatewayResources => "gateway.resources", Deny,
        "Requests and limits are exactly the policy's (`gateway.resources`).";
    GatewayStrategyMount => "gateway.strategy-mount", Deny,
        "The strategies ConfigMap (or its kustomize-hashed name) is mounted whole and read-only at the strategy path (`gateway.strategyMount`): no subPath, no items renaming a key.";
    GatewayMounts => "gateway.mounts", Deny,
        "The gateway container mounts only its scratch volumes (emptyDir at `pods.scratchVolumes` paths), the strategies at the strategy path and, where the policy mounts it, the service account token: nothing over its code, its CA certificates or `/etc/hosts`.";
    GatewayMetricsAnnotations => "gateway.metrics-annotations", Deny,
        "The pod template carries the Prometheus annotations (`gateway.podAnnotations`).";
    GatewayEntrypoint => "gateway.entrypoint", Deny,
        "The gateway container runs its image's own entrypoint: no command, args, workingDir or lifecycle hooks.";
    GatewayEnv => "gateway.env", Deny,
        "The gateway container sets only its production settings, credentials from Secrets and the policy's allowed names (`gateway.allowedEnv`).";
    GatewayNameResolution => "gateway.name-resolution", Deny,
        "Gateway pods resolve names through the cluster's DNS: no hostAliases or dnsConfig, dnsPolicy ClusterFirst (or ClusterFirstWithHostNet).";
    GatewayConfigOverride => "gateway.config-override", Deny,
        "The gateway container's env does not override the production settings of its ConfigMap (`gatewayConfig.values`).";

    ConfigMapGatewayConfig => "configmap.gateway-config", Deny,
        "The gateway's ConfigMap (`gatewayConfig.name`, or a name made from it), which the gateway takes envFrom, sets each of its settings to an allowed value (`gatewayConfig.values`) and holds no other key but `gateway.allowedEnv` names.";
    ConfigMapCredentials => "configmap.credentials", Deny,
        "The gateway's ConfigMap, which the gateway takes envFrom, holds no credential-like keys (`pods.credentialEnvNames`); no ConfigMap holds a value shaped like a provider key.";
    StrategySchema => "strategy.schema", Deny,
        "Every *.json key of the strategies ConfigMap (`strategies.configMap`) is a valid Portkey config (strategy, targets, weights, conditions, cache, retry).";
    StrategyCredentials => "strategy.credentials", Deny,
        "Strategy files hold no literal credentials: secret fields (`strategies.credentialFields`) are $ENV references, and no value under any field is shaped like a provider key.";
    StrategyRequired => "strategy.required", Deny,
        "The required routing policies (`strategies.required`) are present with their mode, targets and providers.";
    StrategyUnknownKey => "strategy.unknown-key", Warn,
        "Strategy files use only known Portkey config keys.";
    StrategyCustomHost => "strategy.custom-host", Deny,
        "A target's custom_host, which receives its provider key, is an https URL of a host of `strategies.providerHosts` (or below one).";

    ServiceType => "service.type", Deny,
        "Services are of an allowed type (`service.allowedTypes`) without externalIPs.";
    ServicePort => "service.port", Deny,
        "The gateway Service (`service.name`) exposes its named port to the gateway's port (`service.port`).";
    ServiceSelector => "service.selector", Deny,
        "The gateway Service selects the gateway pods (`service.selector`), ready ones only (no publishNotReadyAddresses).";

    HttpRouteParentRefs => "httproute.parent-refs", Deny,
        "The HTTPRoute attaches only to the shared listener (`httpRoute.parentRefs`, with its sectionName and port where the policy names them).";
    HttpRouteHostnames => "httproute.hostnames", Deny,
        "The HTTPRoute's hostnames are exactly the gateway's (`httpRoute.hostnames`).";
    HttpRouteBackendRefs => "httproute.backend-refs", Deny,
        "Every backendRef (and mirror) is the gateway Service on its port (`httpRoute.backend`); a redirect stays on the route's hostnames over HTTPS.";
    HttpRouteSecurityHeaders => "httproute.security-headers", Deny,
        "Every rule sets the strict security response headers with a ResponseHeaderModifier (`httpRoute.securityHeaders`).";
    HttpRouteFilters => "httproute.filters", Deny,
        "The route uses only ResponseHeaderModifier, RequestRedirect and RequestMirror filters (a backend only ResponseHeaderModifier).";
    HttpRouteServerHeaders => "httproute.server-headers", Warn,
        "Every rule removes the headers that reveal the server (`httpRoute.removeHeaders`).";
    RouteHostnameHijack => "route.hostname-hijack", Deny,
        "No route outside the gateway's namespace (HTTPRoute, GRPCRoute, TLSRoute, Ingress) claims its hostname, exactly or by wildcard.";
    RouteReferenceGrant => "route.reference-grant", Deny,
        "No ReferenceGrant in the gateway's namespace: routes of other namespaces may not reach its Service.";
    RouteHttpOnly => "route.http-only", Deny,
        "In the gateway's namespace traffic enters only through HTTPRoutes: no GRPCRoute, TLSRoute or Ingress.";

    NetworkPolicyIngressPeers => "networkpolicy.ingress-peers", Deny,
        "Ingress comes only from the allowed namespaces (`networkPolicy.ingressNamespaces`), selected by their name label (`networkPolicy.namespaceLabel`).";
    NetworkPolicyIngressPorts => "networkpolicy.ingress-ports", Deny,
        "Ingress rules name their ports, all allowed (`networkPolicy.ingressPorts`).";
    NetworkPolicyEgressPorts => "networkpolicy.egress-ports", Deny,
        "Egress rules name their ports, all allowed (`networkPolicy.egressPorts`).";
    NetworkPolicyEgressPeers => "networkpolicy.egress-peers", Deny,
        "Egress rules name their destinations, and address blocks except the ranges `networkPolicy.egressExcept` lists.";
    NetworkPolicyPolicyTypes => "networkpolicy.policy-types", Deny,
        "A policy selecting the gateway pods lists the required policyTypes (`networkPolicy.gatewayPolicyTypes`).";
    NetworkPolicyNamespaceLabel => "networkpolicy.namespace-label", Warn,
        "Namespaces are selected by their name label (`networkPolicy.namespaceLabel`), not by a hand-set `name` label.";

    SecretAuthor => "secret.external-secrets-only", Deny,
        "Secrets are written only by the External Secrets controller (`secrets.writers`): add an ExternalSecret instead.";
    SecretManagedLabel => "secret.managed-label", Deny,
        "Secrets carry External Secrets' managed label (`secrets.managedLabels`).";
    ExternalSecretStore => "externalsecret.store", Deny,
        "ExternalSecrets read only from the policy's store (`externalSecrets.storeKind`, `externalSecrets.storeName`).";
    ExternalSecretCreationPolicy => "externalsecret.creation-policy", Deny,
        "ExternalSecrets own their target Secret (`externalSecrets.creationPolicy`).";
    ExternalSecretTemplateLiteral => "externalsecret.template-literal", Deny,
        "An ExternalSecret's template fills its keys from the store, never with a literal (beside its expressions only an authentication scheme such as Bearer, no quoted text or comment in one, no templateFrom).";
    SecretStoreForbidden => "secretstore.forbidden", Deny,
        "No namespaced SecretStore: keys come only from the policy's store (`externalSecrets.storeKind`, `externalSecrets.storeName`).";
    PushSecretForbidden => "pushsecret.forbidden", Deny,
        "No PushSecret: nothing in the namespace sends secrets out to a provider.";

    ServiceMonitorSelector => "servicemonitor.selector", Deny,
        "The ServiceMonitor selects the gateway Service (`serviceMonitor.selector`).";
    ServiceMonitorEndpoints => "servicemonitor.endpoints", Deny,
        "Endpoints scrape the policy's port, path, interval and scheme (`serviceMonitor`), scrapeTimeout within the interval.";
    ServiceMonitorNamespaceSelector => "servicemonitor.namespace-selector", Deny,
        "The ServiceMonitor looks only in its own namespace.";

    RelationWorkloadSelector => "relation.workload-selector", Deny,
        "A workload's selector selects the pods of its own template.";
    RelationServiceGateway => "relation.service-gateway", Deny,
        "A Service meant for the gateway selects its pods, and every port's targetPort (number or name) reaches the gateway port (`gateway.port`).";
    RelationRouteBackend => "relation.route-backend", Deny,
        "Every HTTPRoute backendRef (and mirror) names a Service of the namespace on a port that Service exposes.";
    RelationServiceMonitorService => "relation.servicemonitor-service", Warn,
        "The ServiceMonitor selects the gateway Service (`service.name`), and every endpoint port is a port name of the Services it selects.";
    RelationNetworkPolicyGateway => "relation.networkpolicy-gateway", Deny,
        "A NetworkPolicy meant for the gateway (named after its Service or a gateway workload) selects the gateway pods, whatever else it selects; any other selects some pod.";
    RelationSecretSource => "relation.secret-source", Deny,
        "Every Secret a container reads (secretKeyRef, envFrom) is produced by an ExternalSecret (`target.name`, or its own name) that writes the key read, unless marked optional.";
    RelationStrategyEnv => "relation.strategy-env", Deny,
        "Every $VAR of a strategy file the gateway mounts (`gateway.strategyMount`) is set in the gateway container's environment.";
    RelationConfigMaps => "relation.config-maps", Deny,
        "Every ConfigMap a pod mounts or reads (envFrom, configMapKeyRef) exists and holds the keys read, unless marked optional.";
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
                    | RuleId::PodFsGroup
                    | RuleId::PodSupplementalGroups
            )
    }

    /// Relations between objects (`relation.*`): judged over a set of
    /// objects, never by `admit` on one.
    pub fn is_relation(self) -> bool {
        self.as_str().starts_with("relation.")
    }

    /// Rules about who sends the request rather than what the object holds:
    /// an UPDATE never inherits them from the old object.
    pub fn judges_requester(self) -> bool {
        matches!(self, RuleId::SecretAuthor | RuleId::PodOwnerReferences)
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

    /// The rules a controller-made Pod, ReplicaSet or Job is judged by:
    /// every `pss.*` rule and the identities, filesystem and groups of
    /// `pod.*`, nothing about the workload or the requester.
    #[test]
    fn the_pod_hardening_set_is_exactly_this() {
        let hardening: Vec<&str> = RuleId::ALL
            .iter()
            .filter(|r| r.is_pod_hardening())
            .map(|r| r.as_str())
            .filter(|r| !r.starts_with("pss."))
            .collect();
        assert_eq!(
            hardening,
            [
                "pod.run-as-user",
                "pod.run-as-group",
                "pod.read-only-root-filesystem",
                "pod.writable-mount",
                "pod.fs-group",
                "pod.supplemental-groups",
            ]
        );
        for rule in RuleId::ALL {
            if rule.as_str().starts_with("pss.") {
                assert!(rule.is_pod_hardening(), "{rule}");
            }
        }
    }
}
