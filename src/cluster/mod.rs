//! The API server, for `audit` and the webhook's cache: a client from the
//! user's kubeconfig or the pod's service account, the policed kinds as
//! this server serves them (found by discovery: a kind whose CRD is not
//! installed is skipped, never an error), and reading them. Secrets are
//! never read: no kind here is `Secret`.

pub mod cache;
pub mod lease;

use crate::kind::{Kind, HANDLED_KINDS};
use crate::object::RawObject;
use crate::policy::Policy;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::discovery::Discovery;
use kube::Client;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

/// The annotation `kubectl apply` keeps the last applied manifest in: no
/// rule reads it, and it doubles an object's size.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Objects per page when listing.
const PAGE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no Kubernetes configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot talk to the API server: {}", chain(.0))]
    Api(#[from] kube::Error),
    #[error("discovery of the API server's resources failed: {}", chain(.0))]
    Discovery(kube::Error),
    #[error("cannot read {what}: {}", chain(.source))]
    List { what: String, source: kube::Error },
    #[error("{what} cannot be read: {message}")]
    Read {
        what: String,
        /// The JSON error, described (`describe_json_error`).
        message: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{server}: {source}")]
    At {
        server: String,
        source: Box<ClusterError>,
    },
}

/// Why no client configuration could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The kubeconfig named by `--kubeconfig` (its path first).
    #[error("{}: {}", .path.display(), chain(.source))]
    File {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The default kubeconfig, with the context named.
    #[error("{}", chain(.0))]
    Context(#[source] kube::config::KubeconfigError),
    /// Neither a kubeconfig nor the pod's service account.
    #[error("{}", chain(.0))]
    Infer(#[source] kube::config::InferConfigError),
}

impl ClusterError {
    /// The error, naming the API server it came from.
    pub fn at(self, server: &str) -> ClusterError {
        ClusterError::At {
            server: server.to_owned(),
            source: Box::new(self),
        }
    }
}

/// An error with its causes, `a: b: c` (kube's own message stops at
/// "client error (Connect)"; the cause says what happened).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// Where the client's configuration comes from: a kubeconfig (`--kubeconfig`,
/// or `KUBECONFIG`, or `~/.kube/config`) and context, or, when there is
/// none, the pod's service account.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the pod's
    /// service account in a cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// A client for the API server, and the server's address.
pub async fn connect(args: &ClusterArgs) -> Result<(Client, String), ClusterError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let in_file = |path: &PathBuf| {
        let path = path.clone();
        move |source| ConfigError::File { path, source }
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(in_file(path))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(in_file(path))?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(ConfigError::Context)?,
        None => kube::Config::infer().await.map_err(ConfigError::Infer)?,
    };
    let server = config.cluster_url.to_string();
    Ok((Client::try_from(config)?, server))
}

/// A policed kind as this API server serves it: the version to read it at
/// and its resource name.
#[derive(Clone, Debug)]
pub struct Served {
    pub kind: Kind,
    pub resource: ApiResource,
}

/// The policed kinds the server serves, and those it does not.
#[derive(Clone, Debug, Default)]
pub struct Discovered {
    pub served: Vec<Served>,
    pub not_served: Vec<Kind>,
}

impl Discovered {
    pub fn get(&self, kind: Kind) -> Option<&Served> {
        self.served.iter().find(|s| s.kind == kind)
    }
}

/// Every kind the policy judges that is read from the API server: all the
/// handled kinds but Secrets, which are never listed, watched or cached.
pub fn policed_kinds() -> impl Iterator<Item = Kind> {
    HANDLED_KINDS
        .iter()
        .map(|h| h.kind)
        .filter(|k| *k != Kind::Secret)
}

/// Finds how the server serves each policed kind: the group's preferred
/// version when it serves the kind, or else the first version that does
/// (a custom resource may be served at another version than its group
/// prefers, as PushSecret at v1alpha1).
pub async fn discover(client: &Client) -> Result<Discovered, ClusterError> {
    let groups: BTreeSet<&str> = policed_kinds().map(|k| k.info().group).collect();
    let groups: Vec<&str> = groups.into_iter().collect();
    let discovery = Discovery::new(client.clone())
        .filter(&groups)
        .run()
        .await
        .map_err(ClusterError::Discovery)?;
    let mut out = Discovered::default();
    for kind in policed_kinds() {
        let info = kind.info();
        let found = discovery.get(info.group).and_then(|group| {
            std::iter::once(group.preferred_version_or_latest())
                .chain(group.versions())
                .find_map(|version| {
                    group
                        .versioned_resources(version)
                        .into_iter()
                        .find(|(ar, _)| ar.kind == info.name)
                })
        });
        match found {
            Some((resource, _)) => out.served.push(Served { kind, resource }),
            None => out.not_served.push(kind),
        }
    }
    Ok(out)
}

/// An object read from the API server (shared: the cache hands the same
/// objects to every audit run).
#[derive(Clone, Debug)]
pub struct Live {
    pub kind: Kind,
    /// The resource it was read as (`deployments`, at `apps/v1`).
    pub resource: Arc<ApiResource>,
    pub object: Arc<RawObject>,
}

impl Live {
    /// `deployments.apps/portkey/portkey-gateway`: the object as kubectl
    /// names it.
    pub fn reference(&self) -> String {
        let resource = if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}.{}", self.resource.plural, self.resource.group)
        };
        let name = self.object.metadata.name.as_deref().unwrap_or_default();
        match self.object.metadata.namespace.as_deref() {
            Some(ns) => format!("{resource}/{ns}/{name}"),
            None => format!("{resource}/{name}"),
        }
    }
}

/// The object without what no rule reads and what makes objects large:
/// managed fields and the last-applied annotation. Items of a list also
/// lack their apiVersion and kind; they are set from the resource. Only
/// the text is kept (the tree is built again when something needs it).
pub fn trimmed(object: &RawObject, resource: &ApiResource) -> Result<RawObject, serde_json::Error> {
    let mut json: Value = serde_json::from_str(object.text())?;
    if let Some(meta) = json.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove(LAST_APPLIED);
        }
    }
    if let Some(map) = json.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            Value::from(resource.api_version.clone()),
        );
        map.insert("kind".into(), Value::from(resource.kind.clone()));
    }
    RawObject::from_text(serde_json::value::to_raw_value(&json)?)
}

/// Every object of a resource, in one namespace or in all, page by page.
pub async fn list(
    client: &Client,
    served: &Served,
    namespace: Option<&str>,
    fields: Option<&str>,
) -> Result<Vec<Live>, ClusterError> {
    let api: Api<RawObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &served.resource),
        None => Api::all_with(client.clone(), &served.resource),
    };
    let what = || match namespace {
        Some(ns) => format!("{} in namespace {ns}", served.resource.plural),
        None => format!("{} in all namespaces", served.resource.plural),
    };
    let mut out = Vec::new();
    let resource = Arc::new(served.resource.clone());
    let mut params = ListParams::default().limit(PAGE);
    if let Some(fields) = fields {
        params = params.fields(fields);
    }
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|source| ClusterError::List {
                what: what(),
                source,
            })?;
        for object in page.items {
            let object =
                trimmed(&object, &served.resource).map_err(|source| ClusterError::Read {
                    what: what(),
                    message: crate::object::describe_json_error(&source),
                    source,
                })?;
            out.push(Live {
                kind: served.kind,
                resource: resource.clone(),
                object: Arc::new(object),
            });
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(out)
}

/// One object by name, `None` when there is none.
pub async fn get(
    client: &Client,
    served: &Served,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Live>, ClusterError> {
    let api: Api<RawObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &served.resource),
        None => Api::all_with(client.clone(), &served.resource),
    };
    let found = api
        .get_opt(name)
        .await
        .map_err(|source| ClusterError::List {
            what: format!("{} {name}", served.resource.kind),
            source,
        })?;
    found
        .map(|object| {
            let object =
                trimmed(&object, &served.resource).map_err(|source| ClusterError::Read {
                    what: format!("{} {name}", served.resource.kind),
                    message: crate::object::describe_json_error(&source),
                    source,
                })?;
            Ok(Live {
                kind: served.kind,
                resource: Arc::new(served.resource.clone()),
                object: Arc::new(object),
            })
        })
        .transpose()
}

/// What an audit reads: every policed object of the policy's namespace,
/// the Namespace itself, and the routes of every namespace (the hostname
/// guard).
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub objects: Vec<Live>,
    /// Kinds of which every object of the policy's namespace was read.
    pub complete: HashSet<Kind>,
    /// Policed kinds the server does not serve (their CRD is not installed).
    pub not_served: Vec<Kind>,
}

/// Reads everything an audit judges.
pub async fn read_inventory(client: &Client, policy: &Policy) -> Result<Inventory, ClusterError> {
    let discovered = discover(client).await?;
    let mut inventory = Inventory {
        not_served: discovered.not_served.clone(),
        ..Inventory::default()
    };
    for served in &discovered.served {
        let objects = read_served(client, served, &policy.namespace).await?;
        inventory.complete.insert(served.kind);
        inventory.objects.extend(objects);
    }
    Ok(inventory)
}

/// The objects of a served kind that the audit judges: the policed
/// Namespace itself; for the hostname guard, routes of every namespace;
/// of any other kind, those in the namespace.
pub async fn read_served(
    client: &Client,
    served: &Served,
    namespace: &str,
) -> Result<Vec<Live>, ClusterError> {
    Ok(match served.kind {
        Kind::Namespace => get(client, served, None, namespace)
            .await?
            .into_iter()
            .collect(),
        kind if kind.claims_hostnames() => list(client, served, None, None).await?,
        _ => list(client, served, Some(namespace), None).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::path::Path;

    #[tokio::test]
    async fn a_kubeconfig_that_cannot_be_read_is_a_config_error_with_its_cause() {
        let args = ClusterArgs {
            kubeconfig: Some(PathBuf::from("/no/such/kubeconfig")),
            context: None,
        };
        let error = connect(&args).await.err().expect("no client");
        let ClusterError::Config(ConfigError::File { path, .. }) = &error else {
            panic!("not a kubeconfig error: {error:?}");
        };
        assert_eq!(path, Path::new("/no/such/kubeconfig"));
        assert!(
            error.to_string().starts_with(
                "no Kubernetes configuration: /no/such/kubeconfig: failed to read kubeconfig"
            ),
            "{error}"
        );
        // The causes are kept, down to the file system's.
        let mut causes = 0;
        let mut source = error.source();
        while let Some(e) = source {
            causes += 1;
            source = e.source();
        }
        assert!(causes >= 2, "{error:?}");
    }
}
