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
//! and admission decides from the decision core alone.
//!
//! The cache is bounded ([`CacheLimits`]). While the API server cannot be
//! reached the last snapshot is kept (relations only ever warn, and a view
//! a minute old is still worth warning from) for at most `max_stale`; then
//! it is dropped and the watchers start again from discovery, with
//! backoff, listing anew once the API server answers. A namespace holding
//! more than `max_objects` objects (counted as they are listed) has no
//! snapshot: the watchers stop, their objects are let go, and listing is
//! tried again later. Readiness never depends on the cache. Secrets are
//! never watched.

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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Objects per page when a watcher lists.
const LIST_PAGE: u32 = 100;

/// Changes are let settle this long before a snapshot is rebuilt.
const SETTLE: Duration = Duration::from_millis(200);

/// While a watch fails, the API server is asked this often (a list of one
/// object, within [`PROBE_TIMEOUT`]) whether it answers again: a watch
/// that resumes reports nothing until an object changes.
const PROBE_EVERY: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// After the namespace was found over `max_objects`, listing is tried
/// again this much later.
const OVER_LIMIT_RETRY: Duration = Duration::from_secs(60);

/// What bounds the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Objects held at once across every watched kind (those stored and
    /// those of a listing in progress). Over it there is no snapshot.
    pub max_objects: usize,
    /// How long the last snapshot is kept while the API server cannot be
    /// reached.
    pub max_stale: Duration,
}

impl CacheLimits {
    pub const DEFAULT_MAX_OBJECTS: usize = 5000;
    pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(60);
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_objects: Self::DEFAULT_MAX_OBJECTS,
            max_stale: Self::DEFAULT_MAX_STALE,
        }
    }
}

/// Why the cache has no snapshot although it had one, or stopped listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The API server could not be reached for longer than `max_stale`.
    Unreachable,
    /// The namespace holds more objects than `max_objects`.
    TooManyObjects,
    /// The watchers start again: the served kinds or the policy's
    /// namespace changed.
    Restart,
}

impl Dropped {
    /// The metric label: `unreachable`, `too_many_objects`, `restart`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::Unreachable => "unreachable",
            Dropped::TooManyObjects => "too_many_objects",
            Dropped::Restart => "restart",
        }
    }
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dropped::Unreachable => "the API server cannot be reached",
            Dropped::TooManyObjects => "the namespace holds more objects than the cache may",
            Dropped::Restart => "the watchers are starting again",
        })
    }
}

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

/// A resource as its raw object is: at the `ApiResource` it was read as.
impl Resource for Cached {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        <RawObject as Resource>::group(dt)
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        <RawObject as Resource>::version(dt)
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        <RawObject as Resource>::kind(dt)
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        <RawObject as Resource>::api_version(dt)
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        <RawObject as Resource>::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        self.raw.meta()
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        Arc::make_mut(&mut self.raw).meta_mut()
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
}

/// The current snapshot, shared by the webhook and the background audit.
#[derive(Debug, Default)]
pub struct Cache {
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Why the last snapshot was dropped; `None` once one is published.
    dropped: RwLock<Option<Dropped>>,
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
        *self.dropped.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Why there is no snapshot, when one was dropped (`None` while there
    /// is one, or before the first).
    pub fn dropped(&self) -> Option<Dropped> {
        *self.dropped.read().unwrap_or_else(|e| e.into_inner())
    }

    fn clear(&self, why: Dropped) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
        *self.dropped.write().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }
}

/// One watched kind: its reflector's store, whether it has been listed,
/// and since when its watch fails.
struct Watched {
    served: Served,
    resource: Arc<ApiResource>,
    api: Api<Cached>,
    store: Store<Cached>,
    listed: Arc<AtomicBool>,
    /// When the watch started failing; `None` while it works (or since
    /// the API server last answered a probe).
    failing_since: Arc<Mutex<Option<Instant>>>,
}

/// What the watchers of one round share: the objects of listings in
/// progress (not in a store yet), and whether one of them found the
/// namespace over the limit (it then stops at once).
struct Held {
    max_objects: usize,
    listing: AtomicUsize,
    over: AtomicBool,
}

/// What the cache reports about itself (for metrics and logs).
pub trait CacheObserver: Send + Sync + 'static {
    /// A snapshot was published: `objects` in it, built in `took`.
    fn published(&self, objects: usize, took: Duration);
    /// A watch failed (it is retried with backoff).
    fn watch_failed(&self, kind: Kind, error: &str);
    /// The snapshot was dropped, or the watchers stopped, for `why`
    /// (`objects`: those held when it was for too many).
    fn dropped(&self, why: Dropped, objects: usize);
}

/// Keeps `cache` current for the policy's namespace until `shutdown`:
/// discovers the served kinds, runs a reflector for each, and rebuilds the
/// snapshot when objects or the policy change. Kinds are discovered again
/// every `rediscover` (a CRD installed later is then watched too); a
/// policy that moves to another namespace restarts the watchers, and so
/// does an API server away for longer than `limits.max_stale`.
pub async fn run(
    client: Client,
    policy: impl Fn() -> Arc<Policy> + Send + 'static,
    cache: Arc<Cache>,
    observer: Arc<dyn CacheObserver>,
    rediscover: Duration,
    limits: CacheLimits,
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
        let held = Arc::new(Held {
            max_objects: limits.max_objects,
            listing: AtomicUsize::new(0),
            over: AtomicBool::new(false),
        });
        let (stop, stopped) = watch::channel(false);
        let mut watched = Vec::new();
        let mut tasks = Vec::new();
        for served in kinds {
            let (w, task) = start(
                &client,
                served,
                &namespace,
                changed.clone(),
                held.clone(),
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
            &held,
            &policy,
            &namespace,
            &cache,
            &*observer,
            &changed,
            rediscover,
            limits.max_stale,
            &client,
            &mut shutdown,
        )
        .await;
        let _ = stop.send(true);
        for task in tasks {
            task.abort();
        }
        // The stores go with the watchers: what they held is let go here.
        drop(watched);
        let why = match reason {
            Restart::Shutdown => return,
            Restart::Rediscovered => {
                tracing::info!("cache: the served kinds changed; watching again");
                (Dropped::Restart, 0)
            }
            Restart::NamespaceMoved => {
                tracing::info!("cache: the policy's namespace changed; watching again");
                (Dropped::Restart, 0)
            }
            Restart::Unreachable(since) => {
                tracing::warn!(
                    failing_seconds = since.elapsed().as_secs(),
                    max_stale_seconds = limits.max_stale.as_secs(),
                    "cache: the API server cannot be reached; the snapshot is dropped and relations are skipped until the namespace is listed again"
                );
                (Dropped::Unreachable, 0)
            }
            Restart::TooManyObjects(objects) => {
                tracing::warn!(
                    namespace,
                    objects,
                    max_objects = limits.max_objects,
                    retry_seconds = OVER_LIMIT_RETRY.as_secs(),
                    "cache: the namespace holds more objects than --cache-max-objects; no snapshot, relations are skipped at admission and the background audit"
                );
                (Dropped::TooManyObjects, objects)
            }
        };
        cache.clear(why.0);
        observer.dropped(why.0, why.1);
        if why.0 == Dropped::TooManyObjects {
            tokio::select! {
                _ = tokio::time::sleep(OVER_LIMIT_RETRY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

enum Restart {
    Shutdown,
    Rediscovered,
    NamespaceMoved,
    /// A watch has failed since then, and the API server has not answered.
    Unreachable(Instant),
    /// The objects held when the limit was found passed.
    TooManyObjects(usize),
}

/// Starts the reflector of one kind in `namespace`.
fn start(
    client: &Client,
    served: Served,
    namespace: &str,
    changed: Arc<Notify>,
    held: Arc<Held>,
    observer: Arc<dyn CacheObserver>,
    mut stopped: watch::Receiver<bool>,
) -> (Watched, tokio::task::JoinHandle<()>) {
    let resource = Arc::new(served.resource.clone());
    let api: Api<Cached> = Api::namespaced_with(client.clone(), namespace, &served.resource);
    let probe_api = api.clone();
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
    let failing_since = Arc::new(Mutex::new(None));
    let failing = failing_since.clone();
    let stored = store.clone();
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(reflector::reflector(writer, stream));
        // Objects of this kind's listing in progress, also counted in
        // `held.listing` (until the listing is done, and the store has them).
        let mut listing = 0;
        let done_listing = |listing: &mut usize| {
            held.listing.fetch_sub(*listing, Ordering::SeqCst);
            *listing = 0;
        };
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = stopped.changed() => break,
            };
            if let Some(Ok(_)) = &event {
                *failing.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            match event {
                Some(Ok(watcher::Event::Init)) => done_listing(&mut listing),
                Some(Ok(watcher::Event::InitApply(_))) => {
                    listing += 1;
                    let others = held.listing.fetch_add(1, Ordering::SeqCst) + 1;
                    if others + stored.len() > held.max_objects {
                        // Stop at once: the objects listed so far go with
                        // the stream.
                        held.over.store(true, Ordering::SeqCst);
                        changed.notify_one();
                        break;
                    }
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    done_listing(&mut listing);
                    flag.store(true, Ordering::SeqCst);
                    changed.notify_one();
                }
                Some(Ok(watcher::Event::Apply(_))) => {
                    changed.notify_one();
                    if stored.len() + held.listing.load(Ordering::SeqCst) > held.max_objects {
                        held.over.store(true, Ordering::SeqCst);
                        break;
                    }
                }
                Some(Ok(watcher::Event::Delete(_))) => {
                    changed.notify_one();
                }
                Some(Err(error)) => {
                    failing
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert_with(Instant::now);
                    observer.watch_failed(kind, &super::chain(&error));
                }
                None => break,
            }
        }
        done_listing(&mut listing);
    });
    (
        Watched {
            served,
            resource,
            api: probe_api,
            store,
            listed,
            failing_since,
        },
        task,
    )
}

/// Whether the API server answers a list of one object of the kind.
async fn answers(api: &Api<Cached>) -> bool {
    let params = kube::api::ListParams::default().limit(1);
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, api.list(&params)).await,
        Ok(Ok(_))
    )
}

/// Since when the API server has not answered, if it has not: the oldest
/// failure of a watch that fails still after asking the server (at most
/// every [`PROBE_EVERY`]).
async fn unreachable_since(
    watched: &[Watched],
    last_probe: &mut Option<Instant>,
) -> Option<Instant> {
    let since = |w: &Watched| *w.failing_since.lock().unwrap_or_else(|e| e.into_inner());
    watched.iter().filter_map(since).min()?;
    if last_probe.is_none_or(|at| at.elapsed() >= PROBE_EVERY) {
        *last_probe = Some(Instant::now());
        // All at once: a server that does not answer costs one timeout.
        let failing: Vec<&Watched> = watched.iter().filter(|w| since(w).is_some()).collect();
        let answered = futures::future::join_all(failing.iter().map(|w| answers(&w.api))).await;
        for (w, answered) in failing.into_iter().zip(answered) {
            if answered {
                *w.failing_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
    }
    watched.iter().filter_map(since).min()
}

/// Rebuilds the snapshot whenever objects change (after they settle) or
/// the policy does, until the watchers must restart: the served kinds or
/// the namespace changed, the API server has been away longer than
/// `max_stale` with a snapshot published, or the namespace holds more
/// objects than the limit.
#[allow(clippy::too_many_arguments)]
async fn keep_snapshots(
    watched: &[Watched],
    held: &Held,
    policy: &(impl Fn() -> Arc<Policy> + Send),
    namespace: &str,
    cache: &Cache,
    observer: &dyn CacheObserver,
    changed: &Notify,
    rediscover: Duration,
    max_stale: Duration,
    client: &Client,
    shutdown: &mut watch::Receiver<bool>,
) -> Restart {
    let mut built_with: Option<Arc<Policy>> = None;
    let mut rediscover_at = tokio::time::Instant::now() + rediscover;
    let mut last_probe = None;
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
        let objects = watched.iter().map(|w| w.store.len()).sum::<usize>()
            + held.listing.load(Ordering::SeqCst);
        if held.over.load(Ordering::SeqCst) || objects > held.max_objects {
            return Restart::TooManyObjects(objects.max(held.max_objects + 1));
        }
        if let Some(since) = unreachable_since(watched, &mut last_probe).await {
            // Without a snapshot there is nothing stale: the watchers retry.
            if since.elapsed() > max_stale && cache.snapshot().is_some() {
                return Restart::Unreachable(since);
            }
        }
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
        }
    }
}
