//! The webhook's cache of the policed namespace: one reflector (a watcher
//! and its store, from `kube::runtime`) per policed kind the server serves,
//! each object trimmed (no managed fields, no last-applied copy) and read
//! once for the relations as it arrives.
//!
//! Admission never waits on it and never takes a lock it holds: a snapshot
//! (the set the relations read, and the objects for the background audit)
//! is rebuilt off the request path after changes settle, and published
//! whole; a request takes the current one with a lock held only to clone
//! an `Arc`. Until every kind has been listed once there is no snapshot,
//! and admission decides from the decision core alone, as it does when
//! the API server is unreachable (the last snapshot then ages, and the
//! watchers retry with backoff). Readiness never depends on it. Secrets
//! are never watched.

use super::{discover, trimmed, Live, Served};
use crate::kind::Kind;
use crate::object::{Doc, RawObject};
use crate::policy::Policy;
use crate::relations::{Object, ObjectSet};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::core::{ApiResource, DynamicResourceScope, Resource};
use kube::runtime::reflector::{self, store::Writer, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Objects per page when a watcher lists.
const LIST_PAGE: u32 = 100;

/// Changes are let settle this long before a snapshot is rebuilt.
const SETTLE: Duration = Duration::from_millis(200);

/// An object as the cache keeps it: trimmed, and read for the relations.
#[derive(Clone, Debug)]
pub struct Cached {
    pub raw: Arc<RawObject>,
    /// `None` when no relation can read it.
    pub object: Option<Arc<Object>>,
}

/// Read as a JSON tree, not as text: a watch event carries its object
/// inside an adjacently tagged enum, which serde buffers first, and a
/// buffered value cannot be read as raw text. Only the text is kept.
impl<'de> Deserialize<'de> for Cached {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let tree = serde_json::Value::deserialize(d)?;
        let text = serde_json::value::to_raw_value(&tree).map_err(D::Error::custom)?;
        Ok(Cached {
            raw: Arc::new(RawObject::from_text(text).map_err(D::Error::custom)?),
            object: None,
        })
    }
}

impl Resource for Cached {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.raw.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut Arc::make_mut(&mut self.raw).metadata
    }
}

/// What the relations and the background audit read, as of one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// The namespace's objects read for the relations; complete for every
    /// kind watched (all of them listed before a snapshot exists).
    pub set: ObjectSet,
    /// The same objects as stored, for the background audit.
    pub live: Vec<Live>,
    pub complete: HashSet<Kind>,
    pub built: Instant,
}

/// The current snapshot, shared by the webhook and the background audit.
#[derive(Debug, Default)]
pub struct Cache {
    current: RwLock<Option<Arc<Snapshot>>>,
}

impl Cache {
    /// The current snapshot, if every kind has been listed once. The lock
    /// is held only to clone the `Arc`.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `snapshot` the current one (the cache's own task does this;
    /// public for tests and benchmarks that build one by hand).
    pub fn publish(&self, snapshot: Snapshot) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(snapshot));
    }

    fn clear(&self) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// One watched kind: its reflector's store, and whether it has been listed.
struct Watched {
    served: Served,
    resource: Arc<ApiResource>,
    store: Store<Cached>,
    listed: Arc<AtomicBool>,
}

/// What the cache reports about itself (for metrics and logs).
pub trait CacheObserver: Send + Sync + 'static {
    /// A snapshot was published: `objects` in it, built in `took`.
    fn published(&self, objects: usize, took: Duration);
    /// A watch failed (it is retried with backoff).
    fn watch_failed(&self, kind: Kind, error: &str);
}

/// Keeps `cache` current for the policy's namespace until `shutdown`:
/// discovers the served kinds, runs a reflector for each, and rebuilds the
/// snapshot when objects or the policy change. Kinds are discovered again
/// every `rediscover` (a CRD installed later is then watched too); a
/// policy that moves to another namespace restarts the watchers.
pub async fn run(
    client: Client,
    policy: impl Fn() -> Arc<Policy> + Send + 'static,
    cache: Arc<Cache>,
    observer: Arc<dyn CacheObserver>,
    rediscover: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let namespace = policy().namespace.clone();
        let served = match discover(&client).await {
            Ok(discovered) => discovered.served,
            Err(error) => {
                observer.watch_failed(Kind::Namespace, &error.to_string());
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        let kinds: Vec<Served> = served
            .into_iter()
            .filter(|s| s.kind != Kind::Namespace && s.kind != Kind::Secret)
            .collect();
        let changed = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let mut watched = Vec::new();
        let mut tasks = Vec::new();
        for served in kinds {
            let (w, task) = start(
                &client,
                served,
                &namespace,
                changed.clone(),
                observer.clone(),
                stopped.clone(),
            );
            watched.push(w);
            tasks.push(task);
        }
        tracing::info!(
            namespace,
            kinds = watched.len(),
            "cache: watching the namespace"
        );
        let reason = keep_snapshots(
            &watched,
            &policy,
            &namespace,
            &cache,
            &*observer,
            &changed,
            rediscover,
            &client,
            &mut shutdown,
        )
        .await;
        let _ = stop.send(true);
        for task in tasks {
            task.abort();
        }
        cache.clear();
        match reason {
            Restart::Shutdown => return,
            Restart::Rediscovered => {
                tracing::info!("cache: the served kinds changed; watching again")
            }
            Restart::NamespaceMoved => {
                tracing::info!("cache: the policy's namespace changed; watching again")
            }
        }
    }
}

enum Restart {
    Shutdown,
    Rediscovered,
    NamespaceMoved,
}

/// Starts the reflector of one kind in `namespace`.
fn start(
    client: &Client,
    served: Served,
    namespace: &str,
    changed: Arc<Notify>,
    observer: Arc<dyn CacheObserver>,
    mut stopped: watch::Receiver<bool>,
) -> (Watched, tokio::task::JoinHandle<()>) {
    let resource = Arc::new(served.resource.clone());
    let api: Api<Cached> = Api::namespaced_with(client.clone(), namespace, &served.resource);
    let writer = Writer::new(served.resource.clone());
    let store = writer.as_reader();
    let listed = Arc::new(AtomicBool::new(false));
    let kind = served.kind;
    let trim_as = served.resource.clone();
    // Pages of 100 (kube's default is 500): a listing is held whole while
    // it is read, so smaller pages keep the peak down.
    let stream = watcher(api, watcher::Config::default().page_size(LIST_PAGE))
        .default_backoff()
        .modify(move |cached: &mut Cached| {
            // An object whose text cannot be read again is kept as it came
            // (it can still be audited; no relation reads it).
            if let Ok(raw) = trimmed(&cached.raw, &trim_as) {
                cached.raw = Arc::new(raw);
            }
            let namespace = cached.raw.metadata.namespace.clone();
            cached.object = Object::read(kind, namespace.as_deref(), Doc::Object(&cached.raw))
                .ok()
                .map(Arc::new);
        });
    let flag = listed.clone();
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(reflector::reflector(writer, stream));
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = stopped.changed() => return,
            };
            match event {
                Some(Ok(watcher::Event::InitDone)) => {
                    flag.store(true, Ordering::SeqCst);
                    changed.notify_one();
                }
                Some(Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))) => {
                    changed.notify_one();
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => observer.watch_failed(kind, &super::chain(&error)),
                None => return,
            }
        }
    });
    (
        Watched {
            served,
            resource,
            store,
            listed,
        },
        task,
    )
}

/// Rebuilds the snapshot whenever objects change (after they settle) or
/// the policy does, until the watchers must restart.
#[allow(clippy::too_many_arguments)]
async fn keep_snapshots(
    watched: &[Watched],
    policy: &(impl Fn() -> Arc<Policy> + Send),
    namespace: &str,
    cache: &Cache,
    observer: &dyn CacheObserver,
    changed: &Notify,
    rediscover: Duration,
    client: &Client,
    shutdown: &mut watch::Receiver<bool>,
) -> Restart {
    let mut built_with: Option<Arc<Policy>> = None;
    let mut rediscover_at = tokio::time::Instant::now() + rediscover;
    let watched_kinds: HashSet<Kind> = watched.iter().map(|w| w.served.kind).collect();
    loop {
        // A change notified while a snapshot was being built is kept as a
        // permit and seen here on the next round.
        let notified = tokio::select! {
            _ = changed.notified() => {
                tokio::time::sleep(SETTLE).await;
                true
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = shutdown.changed() => return Restart::Shutdown,
        };
        let current = policy();
        if current.namespace != namespace {
            return Restart::NamespaceMoved;
        }
        if tokio::time::Instant::now() >= rediscover_at {
            rediscover_at = tokio::time::Instant::now() + rediscover;
            if let Ok(discovered) = discover(client).await {
                let now: HashSet<Kind> = discovered
                    .served
                    .iter()
                    .map(|s| s.kind)
                    .filter(|k| *k != Kind::Namespace && *k != Kind::Secret)
                    .collect();
                if now != watched_kinds {
                    return Restart::Rediscovered;
                }
            }
        }
        let all_listed = watched.iter().all(|w| w.listed.load(Ordering::SeqCst));
        let policy_changed = built_with
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(p, &current));
        if !all_listed || !(notified || policy_changed || cache.snapshot().is_none()) {
            continue;
        }
        let started = Instant::now();
        let snapshot = build(watched, &current);
        let objects = snapshot.live.len();
        cache.publish(snapshot);
        built_with = Some(current);
        observer.published(objects, started.elapsed());
    }
}

/// A snapshot of every store.
fn build(watched: &[Watched], policy: &Policy) -> Snapshot {
    let mut live = Vec::new();
    let mut objects = Vec::new();
    let mut complete = HashSet::new();
    for w in watched {
        complete.insert(w.served.kind);
        for cached in w.store.state() {
            if let Some(object) = &cached.object {
                objects.push(object.clone());
            }
            live.push(Live {
                kind: w.served.kind,
                resource: w.resource.clone(),
                object: cached.raw.clone(),
            });
        }
    }
    Snapshot {
        set: ObjectSet::new(objects, complete.clone(), policy),
        live,
        complete,
        built: Instant::now(),
    }
}

impl Snapshot {
    /// A snapshot of objects read some other way (as the watchers would
    /// have them: trimmed), each read for the relations here.
    pub fn of(live: Vec<Live>, complete: HashSet<Kind>, policy: &Policy) -> Snapshot {
        let objects = live
            .iter()
            .filter_map(|l| {
                Object::read(
                    l.kind,
                    l.object.metadata.namespace.as_deref(),
                    Doc::Object(&l.object),
                )
                .ok()
            })
            .map(Arc::new)
            .collect();
        Snapshot {
            set: ObjectSet::new(objects, complete.clone(), policy),
            live,
            complete,
            built: Instant::now(),
        }
    }
}
