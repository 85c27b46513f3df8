//! A small fake Kubernetes API server on loopback, enough for `audit` and
//! the webhook's cache: legacy discovery (/api, /apis), list (paged with
//! limit/continue, fieldSelector on metadata.name), get, create, replace
//! (optimistic concurrency on resourceVersion) and watch (events streamed
//! as objects change). Every request is logged, so a test can tell what
//! was (and was not) asked for.
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// A resource the fake serves.
#[derive(Clone, Debug)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl Resource {
    pub const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Self {
        Resource {
            group,
            version,
            kind,
            plural,
            namespaced,
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Built-in kinds come back from a list without apiVersion and kind.
    fn builtin(&self) -> bool {
        matches!(self.group, "" | "apps" | "batch" | "networking.k8s.io")
    }
}

/// Core and built-in resources, Gateway API routes, and PolicyReports.
pub fn standard_resources() -> Vec<Resource> {
    vec![
        Resource::new("", "v1", "Namespace", "namespaces", false),
        Resource::new("", "v1", "Pod", "pods", true),
        Resource::new("", "v1", "ConfigMap", "configmaps", true),
        Resource::new("", "v1", "Service", "services", true),
        Resource::new("", "v1", "Secret", "secrets", true),
        Resource::new("apps", "v1", "Deployment", "deployments", true),
        Resource::new("apps", "v1", "ReplicaSet", "replicasets", true),
        Resource::new("apps", "v1", "StatefulSet", "statefulsets", true),
        Resource::new("apps", "v1", "DaemonSet", "daemonsets", true),
        Resource::new("batch", "v1", "Job", "jobs", true),
        Resource::new("batch", "v1", "CronJob", "cronjobs", true),
        Resource::new(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
        ),
        Resource::new("networking.k8s.io", "v1", "Ingress", "ingresses", true),
        Resource::new(
            "gateway.networking.k8s.io",
            "v1",
            "HTTPRoute",
            "httproutes",
            true,
        ),
        Resource::new(
            "wgpolicyk8s.io",
            "v1alpha2",
            "PolicyReport",
            "policyreports",
            true,
        ),
        Resource::new(
            "wgpolicyk8s.io",
            "v1alpha2",
            "ClusterPolicyReport",
            "clusterpolicyreports",
            false,
        ),
    ]
}

type Key = (String, Option<String>, String); // (plural, namespace, name)

#[derive(Default)]
struct Store {
    resources: Vec<Resource>,
    objects: BTreeMap<Key, Value>,
    revision: u64,
    requests: Vec<String>,
    page_size: usize,
}

#[derive(Clone)]
struct Shared {
    store: Arc<Mutex<Store>>,
    events: broadcast::Sender<(String, Value)>,
}

/// A running fake API server; stopped when dropped.
pub struct FakeApiServer {
    pub addr: SocketAddr,
    shared: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeApiServer {
    pub fn start(resources: Vec<Resource>, page_size: usize) -> Self {
        Self::start_at(resources, page_size, "127.0.0.1:0".parse().unwrap())
    }

    /// Started on `addr`: where an earlier one was, to play an API server
    /// that comes back (its port may take a moment to be free again).
    pub fn start_at(resources: Vec<Resource>, page_size: usize, addr: SocketAddr) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (events, _) = broadcast::channel(1024);
        let shared = Shared {
            store: Arc::new(Mutex::new(Store {
                resources,
                page_size,
                ..Store::default()
            })),
            events,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let listener = loop {
            match runtime.block_on(tokio::net::TcpListener::bind(addr)) {
                Ok(listener) => break listener,
                Err(e) if std::time::Instant::now() < deadline => {
                    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen on {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApiServer {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// Adds or replaces an object (as a controller or kubectl would).
    pub fn put(&self, object: Value) {
        let mut store = self.shared.store.lock().unwrap();
        let resource = store
            .resources
            .iter()
            .find(|r| r.kind == object["kind"] && r.api_version() == object["apiVersion"])
            .unwrap_or_else(|| panic!("the fake serves no {}", object["kind"]))
            .clone();
        let key = key_of(&resource, &object);
        let existed = store.objects.contains_key(&key);
        let stored = store.stamp(object);
        store.objects.insert(key, stored.clone());
        drop(store);
        let event = if existed { "MODIFIED" } else { "ADDED" };
        let _ = self.shared.events.send((event.to_owned(), stored));
    }

    /// Every request received so far: `GET /api/v1/namespaces/portkey/pods?limit=500`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.store.lock().unwrap().requests.clone()
    }

    /// The stored object, if any.
    pub fn get(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let store = self.shared.store.lock().unwrap();
        store
            .objects
            .get(&(
                plural.to_owned(),
                namespace.map(str::to_owned),
                name.to_owned(),
            ))
            .cloned()
    }

    /// A kubeconfig for this server, written into `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: 'http://{}'}}}}]\n\
                 users: [{{name: fake, user: {{token: fake-token}}}}]\n\
                 contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\ncurrent-context: fake\n",
                self.addr
            ),
        )
        .unwrap();
        path
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Store {
    /// Gives an object a new resourceVersion (and a uid if it has none).
    fn stamp(&mut self, mut object: Value) -> Value {
        self.revision += 1;
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = Value::from(self.revision.to_string());
        if meta["uid"].is_null() {
            meta["uid"] = Value::from(format!("uid-{}", self.revision));
        }
        object
    }
}

fn key_of(resource: &Resource, object: &Value) -> Key {
    (
        resource.plural.to_owned(),
        resource.namespaced.then(|| {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }),
        object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn reply(code: StatusCode, body: Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    reply(StatusCode::OK, body)
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    reply(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": reason, "message": message, "code": code.as_u16()}),
    )
}

fn query(uri: &axum::http::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%3D", "=").replace("%2F", "/")))
        .collect()
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let body = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    shared
        .store
        .lock()
        .unwrap()
        .requests
        .push(format!("{method} {uri}"));
    let path = uri.path().trim_end_matches('/');
    let params = query(&uri);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resources = shared.store.lock().unwrap().resources.clone();
    match segments.as_slice() {
        ["api"] => ok(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})),
        ["apis"] => {
            let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
            for r in resources.iter().filter(|r| !r.group.is_empty()) {
                match groups.iter_mut().find(|(g, _)| *g == r.group) {
                    Some((_, versions)) if !versions.contains(&r.version) => {
                        versions.push(r.version)
                    }
                    Some(_) => {}
                    None => groups.push((r.group, vec![r.version])),
                }
            }
            let groups: Vec<Value> = groups
                .iter()
                .map(|(g, versions)| {
                    let gv = |v: &str| json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    json!({"name": g, "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
                           "preferredVersion": gv(versions[0])})
                })
                .collect();
            ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        ["api", version] => resource_list(&resources, "", version),
        ["apis", group, version] => resource_list(&resources, group, version),
        ["api", version, rest @ ..] => {
            objects(
                &shared, &resources, "", version, rest, &method, &params, &body,
            )
            .await
        }
        ["apis", group, version, rest @ ..] => {
            objects(
                &shared, &resources, group, version, rest, &method, &params, &body,
            )
            .await
        }
        _ => status(StatusCode::NOT_FOUND, "NotFound", "no such path"),
    }
}

fn resource_list(resources: &[Resource], group: &str, version: &str) -> Response {
    let listed: Vec<Value> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            json!({"name": r.plural, "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
                   "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]})
        })
        .collect();
    if listed.is_empty() {
        return status(StatusCode::NOT_FOUND, "NotFound", "no such group version");
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": listed}),
    )
}

#[allow(clippy::too_many_arguments)]
async fn objects(
    shared: &Shared,
    resources: &[Resource],
    group: &str,
    version: &str,
    rest: &[&str],
    method: &Method,
    params: &BTreeMap<String, String>,
    body: &[u8],
) -> Response {
    // [namespaces, ns, plural, name?] or [plural, name?]
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural, tail @ ..] if *plural != "status" => {
            (Some((*ns).to_owned()), *plural, tail.first().copied())
        }
        [plural, tail @ ..] => (None, *plural, tail.first().copied()),
        [] => return status(StatusCode::NOT_FOUND, "NotFound", "no resource"),
    };
    let Some(resource) = resources
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
        .cloned()
    else {
        return status(StatusCode::NOT_FOUND, "NotFound", "no such resource");
    };
    let key = |name: &str| (plural.to_owned(), namespace.clone(), name.to_owned());
    match (method.clone(), name) {
        (Method::GET, None) if params.get("watch").map(String::as_str) == Some("true") => {
            watch(shared, &resource, namespace)
        }
        (Method::GET, None) => list(shared, &resource, namespace.as_deref(), params),
        (Method::GET, Some(name)) => match shared.store.lock().unwrap().objects.get(&key(name)) {
            Some(object) => ok(object.clone()),
            None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
        },
        (Method::POST, None) => {
            let Ok(object) = serde_json::from_slice::<Value>(body) else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "not JSON");
            };
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut store = shared.store.lock().unwrap();
            if store.objects.contains_key(&key(&name)) {
                return status(StatusCode::CONFLICT, "AlreadyExists", "already exists");
            }
            let stored = store.stamp(object);
            store.objects.insert(key(&name), stored.clone());
            drop(store);
            let _ = shared.events.send(("ADDED".to_owned(), stored.clone()));
            reply(StatusCode::CREATED, stored)
        }
        (Method::PUT, Some(name)) => {
            let Ok(object) = serde_json::from_slice::<Value>(body) else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "not JSON");
            };
            let mut store = shared.store.lock().unwrap();
            let Some(current) = store.objects.get(&key(name)) else {
                return status(StatusCode::NOT_FOUND, "NotFound", "not found");
            };
            if current["metadata"]["resourceVersion"] != object["metadata"]["resourceVersion"] {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "the object has been modified",
                );
            }
            let mut object = object;
            object["metadata"]["uid"] = current["metadata"]["uid"].clone();
            let stored = store.stamp(object);
            store.objects.insert(key(name), stored.clone());
            drop(store);
            let _ = shared.events.send(("MODIFIED".to_owned(), stored.clone()));
            ok(stored)
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not supported",
        ),
    }
}

fn matches(resource: &Resource, object: &Value, namespace: Option<&str>) -> bool {
    object["kind"] == resource.kind
        && namespace.is_none_or(|ns| object["metadata"]["namespace"] == ns)
}

fn list(
    shared: &Shared,
    resource: &Resource,
    namespace: Option<&str>,
    params: &BTreeMap<String, String>,
) -> Response {
    let store = shared.store.lock().unwrap();
    let name = params
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("metadata.name="));
    let all: Vec<Value> = store
        .objects
        .iter()
        .filter(|((plural, _, n), _)| {
            plural == resource.plural && name.is_none_or(|name| n == name)
        })
        .map(|(_, o)| o)
        .filter(|o| matches(resource, o, namespace))
        .cloned()
        .collect();
    let start: usize = params
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let page = store.page_size.max(1);
    let end = (start + page).min(all.len());
    let items: Vec<Value> = all[start.min(end)..end]
        .iter()
        .map(|o| {
            let mut o = o.clone();
            if resource.builtin() {
                let map = o.as_object_mut().unwrap();
                map.remove("apiVersion");
                map.remove("kind");
            }
            o
        })
        .collect();
    let mut metadata = json!({"resourceVersion": store.revision.to_string()});
    if end < all.len() {
        metadata["continue"] = Value::from(end.to_string());
    }
    ok(
        json!({"apiVersion": resource.api_version(), "kind": format!("{}List", resource.kind),
        "metadata": metadata, "items": items}),
    )
}

/// Streams ADDED/MODIFIED events of this resource as they happen, until
/// the client goes away.
fn watch(shared: &Shared, resource: &Resource, namespace: Option<String>) -> Response {
    let events = shared.events.subscribe();
    let resource = resource.clone();
    let stream = futures::stream::unfold(events, move |mut events| {
        let resource = resource.clone();
        let namespace = namespace.clone();
        async move {
            loop {
                match events.recv().await {
                    Ok((kind, object)) if matches(&resource, &object, namespace.as_deref()) => {
                        let line = json!({"type": kind, "object": object}).to_string() + "\n";
                        return Some((Ok::<_, std::io::Error>(line), events));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}
