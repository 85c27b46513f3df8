//! `serve --cluster`: the webhook's view of the API server, beside the
//! admission path and never on it. It keeps the cache of the policed
//! namespace current (for the relation warnings at admission) and, with
//! `--audit-interval`, runs the background audit on the replica that holds
//! the audit Lease, keeping the PolicyReports current.

use super::metrics::{KindLabels, Metrics, ReasonLabels};
use super::webhook::AppState;
use crate::audit::{self, Audit};
use crate::cluster::cache::{self, CacheLimits, CacheObserver, Dropped, Snapshot};
use crate::cluster::lease::{self, LeaseConfig};
use crate::cluster::{self, ClusterArgs, ClusterError, Inventory, Live};
use crate::kind::Kind;
use crate::policy::Policy;
use crate::policy_report;
use kube::Client;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Kinds are discovered again this often (a CRD installed later is then
/// watched too).
const REDISCOVER: Duration = Duration::from_secs(300);

/// What `serve` was told about the API server.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub args: ClusterArgs,
    /// How often the background audit runs; `None`: it does not.
    pub audit_interval: Option<Duration>,
    /// What bounds the cache.
    pub cache: CacheLimits,
    pub lease: LeaseConfig,
}

impl CacheObserver for Metrics {
    fn published(&self, objects: usize, took: Duration) {
        self.cache_synced.set(1);
        self.cache_objects
            .set(i64::try_from(objects).unwrap_or(i64::MAX));
        tracing::debug!(
            objects,
            took_us = took.as_micros() as u64,
            "cache: snapshot published"
        );
    }

    fn watch_failed(&self, kind: Kind, error: &str) {
        self.cache_watch_errors
            .get_or_create(&KindLabels {
                kind: kind.info().name.to_owned(),
            })
            .inc();
        tracing::warn!(kind = kind.info().name, %error, "cache: watch failed; retrying");
    }

    fn dropped(&self, why: Dropped, objects: usize) {
        self.cache_synced.set(0);
        self.cache_objects.set(0);
        self.cache_dropped
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
        tracing::debug!(reason = why.as_str(), objects, "cache: snapshot dropped");
    }
}

/// Connects to the API server. A configuration that cannot be read is an
/// error at startup; an API server that cannot be reached is not (the
/// cache then simply has no snapshot).
pub async fn connect(config: &ClusterConfig) -> Result<(Client, String), ClusterError> {
    cluster::connect(&config.args).await
}

/// Starts the cache, and with an audit interval the lease and the
/// background audit; all stop on `shutdown`.
pub fn start(
    client: Client,
    config: ClusterConfig,
    state: &AppState,
    shutdown: watch::Receiver<bool>,
) {
    let Some(cache) = state.cache.clone() else {
        return;
    };
    let policy = state.policy.clone();
    tokio::spawn(cache::run(
        client.clone(),
        move || policy.get(),
        cache,
        state.metrics.clone(),
        REDISCOVER,
        config.cache,
        shutdown.clone(),
    ));
    let Some(interval) = config.audit_interval else {
        return;
    };
    let (leader_tx, leader) = watch::channel(false);
    tokio::spawn(lease::hold(
        client.clone(),
        config.lease.clone(),
        leader_tx,
        shutdown.clone(),
    ));
    tokio::spawn(audit_loop(
        client,
        state.clone(),
        leader,
        interval,
        shutdown,
    ));
}

/// Every `interval`, while this replica leads: audit the namespace from
/// the cache and write the reports.
async fn audit_loop(
    client: Client,
    state: AppState,
    mut leader: watch::Receiver<bool>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    state
        .metrics
        .audit_interval_seconds
        .set(interval.as_secs_f64());
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lease_held = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = leader.changed(), if lease_held => {
                if changed.is_err() {
                    lease_held = false; // the lease task ended: leading no more
                    state.metrics.audit_leading(false);
                    continue;
                }
                // Run at once on becoming the leader.
                if !*leader.borrow() {
                    state.metrics.audit_leading(false);
                    continue;
                }
            }
            _ = shutdown.changed() => return,
        }
        let leading = lease_held && *leader.borrow();
        state.metrics.audit_leading(leading);
        if !leading {
            continue;
        }
        let Some(snapshot) = state.cache.as_ref().and_then(|c| c.snapshot()) else {
            state.metrics.audit_not_done("skipped");
            match state.cache.as_ref().and_then(|c| c.dropped()) {
                Some(why) => {
                    tracing::warn!(reason = why.as_str(), "audit: skipped, no snapshot: {why}")
                }
                None => {
                    tracing::info!("audit: skipped, the cache has not listed the namespace yet")
                }
            }
            continue;
        };
        let policy = state.policy.get();
        let started = Instant::now();
        match audit_once(&client, &snapshot, policy.clone()).await {
            Ok((audit, written)) => {
                let took = started.elapsed();
                state.metrics.audit_finished(&audit, took);
                let findings: usize = audit.objects.iter().map(|o| o.violations.len()).sum();
                let reports: Vec<String> = written.iter().map(ToString::to_string).collect();
                tracing::info!(
                    objects = audit.objects.len(),
                    findings,
                    errors = audit.errors.len(),
                    duration_ms = took.as_millis() as u64,
                    reports = %reports.join("; "),
                    "audit: done"
                );
            }
            Err(error) => {
                state.metrics.audit_not_done("failure");
                tracing::error!(%error, "audit: failed");
            }
        }
    }
}

/// Why a background audit did not finish.
#[derive(Debug, thiserror::Error)]
enum AuditError {
    /// Reading what the snapshot lacks (discovery, the Namespace, other
    /// namespaces' routes).
    #[error("{0}")]
    Read(#[from] ClusterError),
    /// Judging stopped (it panicked, or the runtime is shutting down).
    #[error("the audit stopped: {0}")]
    Stopped(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Report(#[from] policy_report::ReportError),
}

/// One audit: the namespace from the snapshot, the Namespace and other
/// namespaces' routes read fresh (they are not cached: routes of every
/// namespace could be many), judged off the async threads, then the
/// reports written.
async fn audit_once(
    client: &Client,
    snapshot: &Arc<Snapshot>,
    policy: Arc<Policy>,
) -> Result<(Audit, Vec<policy_report::Written>), AuditError> {
    let discovered = cluster::discover(client).await?;
    let mut objects: Vec<Live> = snapshot.live.clone();
    let namespace = policy.namespace.clone();
    // The cache holds the namespace's objects; what the audit reads
    // beyond them is the Namespace and the routes of other namespaces.
    for served in &discovered.served {
        if served.kind == Kind::Namespace || served.kind.claims_hostnames() {
            let found = cluster::read_served(client, served, &namespace).await?;
            objects.extend(found.into_iter().filter(|o| {
                served.kind == Kind::Namespace
                    || o.object.metadata.namespace.as_deref() != Some(namespace.as_str())
            }));
        }
    }
    let inventory = Inventory {
        objects,
        complete: snapshot.complete.clone(),
        not_served: discovered.not_served,
    };
    let judged = policy.clone();
    let audit = tokio::task::spawn_blocking(move || audit::judge(&inventory, &judged)).await?;
    let written = policy_report::write(client, &audit, &namespace).await?;
    Ok((audit, written))
}
