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
    ExternalSecret,
    ServiceMonitor,
}

/// A kind as the API server names it, for webhook rules and request matching.
#[derive(Clone, Copy, Debug)]
pub struct HandledKind {
    pub kind: Kind,
    pub group: &'static str,
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
    "gateway.networking.k8s.io",
    &["v1", "v1beta1"],
    "HTTPRoute",
    "httproutes",
    false,
);
const EXTERNAL_SECRET: HandledKind = handled(
    Kind::ExternalSecret,
    "external-secrets.io",
    &["v1", "v1beta1"],
    "ExternalSecret",
    "externalsecrets",
    false,
);
const SERVICE_MONITOR: HandledKind = handled(
    Kind::ServiceMonitor,
    "monitoring.coreos.com",
    V1,
    "ServiceMonitor",
    "servicemonitors",
    false,
);

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
    HTTP_ROUTE,
    EXTERNAL_SECRET,
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
            Kind::ExternalSecret => &EXTERNAL_SECRET,
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
