//! The kinds of object portkey-guard decides on, as the API server names
//! them. Pure data: the webhook configurations in `deploy/webhook/` list
//! exactly these (tests/deploy.rs keeps them in step), the decision modules
//! dispatch on them, and the policy names them.

/// Every kind portkey-guard decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Namespace,
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    ConfigMap,
    Service,
    Secret,
    NetworkPolicy,
    HttpRoute,
    GrpcRoute,
    TlsRoute,
    ReferenceGrant,
    Ingress,
    ExternalSecret,
    SecretStore,
    PushSecret,
    ServiceMonitor,
}

/// A kind as the API server names it, for webhook rules and request matching.
#[derive(Clone, Copy, Debug)]
pub struct HandledKind {
    pub kind: Kind,
    pub group: &'static str,
    /// The versions the webhook rules name: `*` where the served versions
    /// of a custom resource vary between releases (PushSecret is served as
    /// v1alpha1, TLSRoute as v1alpha2), so no version is a way around.
    pub versions: &'static [&'static str],
    pub name: &'static str,
    pub resource: &'static str,
    /// Whether the mutating webhook has anything to add to it.
    pub mutated: bool,
}

const fn handled(
    kind: Kind,
    group: &'static str,
    versions: &'static [&'static str],
    name: &'static str,
    resource: &'static str,
    mutated: bool,
) -> HandledKind {
    HandledKind {
        kind,
        group,
        versions,
        name,
        resource,
        mutated,
    }
}

const V1: &[&str] = &["v1"];
const ANY_VERSION: &[&str] = &["*"];

const NAMESPACE: HandledKind = handled(Kind::Namespace, "", V1, "Namespace", "namespaces", true);
const POD: HandledKind = handled(Kind::Pod, "", V1, "Pod", "pods", true);
const CONFIG_MAP: HandledKind = handled(Kind::ConfigMap, "", V1, "ConfigMap", "configmaps", false);
const SERVICE: HandledKind = handled(Kind::Service, "", V1, "Service", "services", false);
const SECRET: HandledKind = handled(Kind::Secret, "", V1, "Secret", "secrets", false);
const DEPLOYMENT: HandledKind = handled(
    Kind::Deployment,
    "apps",
    V1,
    "Deployment",
    "deployments",
    true,
);
const REPLICA_SET: HandledKind = handled(
    Kind::ReplicaSet,
    "apps",
    V1,
    "ReplicaSet",
    "replicasets",
    true,
);
const STATEFUL_SET: HandledKind = handled(
    Kind::StatefulSet,
    "apps",
    V1,
    "StatefulSet",
    "statefulsets",
    true,
);
const DAEMON_SET: HandledKind =
    handled(Kind::DaemonSet, "apps", V1, "DaemonSet", "daemonsets", true);
const JOB: HandledKind = handled(Kind::Job, "batch", V1, "Job", "jobs", true);
const CRON_JOB: HandledKind = handled(Kind::CronJob, "batch", V1, "CronJob", "cronjobs", true);
const NETWORK_POLICY: HandledKind = handled(
    Kind::NetworkPolicy,
    "networking.k8s.io",
    V1,
    "NetworkPolicy",
    "networkpolicies",
    false,
);
const HTTP_ROUTE: HandledKind = handled(
    Kind::HttpRoute,
    GATEWAY_API,
    ANY_VERSION,
    "HTTPRoute",
    "httproutes",
    false,
);
const GRPC_ROUTE: HandledKind = handled(
    Kind::GrpcRoute,
    GATEWAY_API,
    ANY_VERSION,
    "GRPCRoute",
    "grpcroutes",
    false,
);
const TLS_ROUTE: HandledKind = handled(
    Kind::TlsRoute,
    GATEWAY_API,
    ANY_VERSION,
    "TLSRoute",
    "tlsroutes",
    false,
);
const REFERENCE_GRANT: HandledKind = handled(
    Kind::ReferenceGrant,
    GATEWAY_API,
    ANY_VERSION,
    "ReferenceGrant",
    "referencegrants",
    false,
);
const INGRESS: HandledKind = handled(
    Kind::Ingress,
    "networking.k8s.io",
    V1,
    "Ingress",
    "ingresses",
    false,
);
const EXTERNAL_SECRET: HandledKind = handled(
    Kind::ExternalSecret,
    EXTERNAL_SECRETS,
    ANY_VERSION,
    "ExternalSecret",
    "externalsecrets",
    false,
);
const SECRET_STORE: HandledKind = handled(
    Kind::SecretStore,
    EXTERNAL_SECRETS,
    ANY_VERSION,
    "SecretStore",
    "secretstores",
    false,
);
const PUSH_SECRET: HandledKind = handled(
    Kind::PushSecret,
    EXTERNAL_SECRETS,
    ANY_VERSION,
    "PushSecret",
    "pushsecrets",
    false,
);
const SERVICE_MONITOR: HandledKind = handled(
    Kind::ServiceMonitor,
    "monitoring.coreos.com",
    ANY_VERSION,
    "ServiceMonitor",
    "servicemonitors",
    false,
);

const GATEWAY_API: &str = "gateway.networking.k8s.io";
const EXTERNAL_SECRETS: &str = "external-secrets.io";

/// The kinds the binary handles, in the order the webhook configurations
/// list them.
pub const HANDLED_KINDS: &[HandledKind] = &[
    NAMESPACE,
    POD,
    CONFIG_MAP,
    SERVICE,
    SECRET,
    DEPLOYMENT,
    REPLICA_SET,
    STATEFUL_SET,
    DAEMON_SET,
    JOB,
    CRON_JOB,
    NETWORK_POLICY,
    INGRESS,
    HTTP_ROUTE,
    GRPC_ROUTE,
    TLS_ROUTE,
    REFERENCE_GRANT,
    EXTERNAL_SECRET,
    SECRET_STORE,
    PUSH_SECRET,
    SERVICE_MONITOR,
];

impl Kind {
    /// Looks a kind up by API group and kind name (any served version).
    pub fn lookup(group: &str, kind: &str) -> Option<Kind> {
        HANDLED_KINDS
            .iter()
            .find(|h| h.group == group && h.name == kind)
            .map(|h| h.kind)
    }

    pub fn info(self) -> &'static HandledKind {
        match self {
            Kind::Namespace => &NAMESPACE,
            Kind::Pod => &POD,
            Kind::Deployment => &DEPLOYMENT,
            Kind::ReplicaSet => &REPLICA_SET,
            Kind::StatefulSet => &STATEFUL_SET,
            Kind::DaemonSet => &DAEMON_SET,
            Kind::Job => &JOB,
            Kind::CronJob => &CRON_JOB,
            Kind::ConfigMap => &CONFIG_MAP,
            Kind::Service => &SERVICE,
            Kind::Secret => &SECRET,
            Kind::NetworkPolicy => &NETWORK_POLICY,
            Kind::HttpRoute => &HTTP_ROUTE,
            Kind::GrpcRoute => &GRPC_ROUTE,
            Kind::TlsRoute => &TLS_ROUTE,
            Kind::ReferenceGrant => &REFERENCE_GRANT,
            Kind::Ingress => &INGRESS,
            Kind::ExternalSecret => &EXTERNAL_SECRET,
            Kind::SecretStore => &SECRET_STORE,
            Kind::PushSecret => &PUSH_SECRET,
            Kind::ServiceMonitor => &SERVICE_MONITOR,
        }
    }

    /// The kinds with a pod template (a bare Pod is its own template).
    pub fn has_pod_template(self) -> bool {
        matches!(
            self,
            Kind::Pod
                | Kind::Deployment
                | Kind::ReplicaSet
                | Kind::StatefulSet
                | Kind::DaemonSet
                | Kind::Job
                | Kind::CronJob
        )
    }

    /// The kinds that can claim a hostname on the shared listener: judged in
    /// every namespace (the hostname guard).
    pub fn claims_hostnames(self) -> bool {
        matches!(
            self,
            Kind::HttpRoute | Kind::GrpcRoute | Kind::TlsRoute | Kind::Ingress
        )
    }

    /// Pods and Jobs cannot change their pod spec after creation: they are
    /// mutated on CREATE only.
    pub fn pod_spec_immutable(self) -> bool {
        matches!(self, Kind::Pod | Kind::Job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_lookup_agree_for_every_kind() {
        for handled in HANDLED_KINDS {
            assert_eq!(handled.kind.info().name, handled.name);
            assert_eq!(
                Kind::lookup(handled.group, handled.name),
                Some(handled.kind)
            );
        }
        assert_eq!(Kind::lookup("apps", "Pod"), None);
    }
}
