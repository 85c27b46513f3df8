//! Leadership through a `coordination.k8s.io/v1` Lease: with several
//! replicas, only the holder runs the background audit and writes reports.
//!
//! The holder renews the lease every third of its duration; another
//! replica takes it over only once it has gone unrenewed for the whole
//! duration. Writes carry the resourceVersion read, so two replicas never
//! both win. A holder that cannot renew stops leading before its lease can
//! have expired, and releases it on shutdown.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::Client;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica (its pod name).
    pub identity: String,
    pub duration: Duration,
}

/// What to do with the lease as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// There is no lease: create it, held by us.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Nobody holds it, or its holder let it expire: take it.
    TakeOver,
    /// Someone else holds it.
    Follow { holder: String },
}

/// Decides what to do with `lease` (as read, `None` when absent) at `now`.
pub fn step(lease: Option<&Lease>, identity: &str, now: Timestamp) -> Step {
    let Some(lease) = lease else {
        return Step::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder == identity {
        return Step::Renew;
    }
    if holder.is_empty() {
        return Step::TakeOver;
    }
    let renewed = spec.renew_time.or(spec.acquire_time).map(|t| t.0);
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    match renewed.and_then(|t| t.checked_add(duration).ok()) {
        Some(expiry) if expiry > now => Step::Follow { holder },
        // Never renewed, or expired.
        _ => Step::TakeOver,
    }
}

fn held_by(config: &LeaseConfig, previous: Option<&Lease>, now: Timestamp) -> Lease {
    let old = previous.and_then(|l| l.spec.clone()).unwrap_or_default();
    let ours = old.holder_identity.as_deref() == Some(config.identity.as_str());
    let transitions = old.lease_transitions.unwrap_or(0);
    Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(config.namespace.clone()),
            resource_version: previous.and_then(|l| l.metadata.resource_version.clone()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "portkey-guard".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(config.duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: if ours {
                old.acquire_time
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours || previous.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }),
    }
}

/// One round: read the lease and act. Returns whether we hold it now.
async fn round(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let found = api.get_opt(&config.name).await?;
    let now = Timestamp::now();
    let written = match step(found.as_ref(), &config.identity, now) {
        Step::Follow { .. } => return Ok(false),
        Step::Create => {
            api.create(&PostParams::default(), &held_by(config, None, now))
                .await
        }
        Step::Renew | Step::TakeOver => {
            let lease = held_by(config, found.as_ref(), now);
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
    };
    match written {
        Ok(_) => Ok(true),
        // Someone else wrote it first (409): they lead this round.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Holds the lease for as long as possible until `shutdown`, publishing
/// whether we lead on `leader`. On shutdown the lease is released.
pub async fn hold(
    client: Client,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let renew_every = (config.duration / 3).max(Duration::from_secs(1));
    let mut renewed_at: Option<Instant> = None;
    loop {
        let leading = match round(&api, &config).await {
            Ok(true) => {
                renewed_at = Some(Instant::now());
                true
            }
            Ok(false) => {
                renewed_at = None;
                false
            }
            Err(error) => {
                tracing::warn!(lease = %config.name, error = %super::chain(&error), "lease: cannot renew");
                // Still ours only while it cannot have expired for others.
                renewed_at.is_some_and(|t| t.elapsed() + renew_every < config.duration)
            }
        };
        if leading != *leader.borrow() {
            tracing::info!(lease = %config.name, identity = %config.identity, leading, "lease: leadership changed");
        }
        leader.send_replace(leading);
        tokio::select! {
            _ = tokio::time::sleep(renew_every) => {}
            _ = shutdown.changed() => break,
        }
    }
    if *leader.borrow() {
        release(&api, &config).await;
        leader.send_replace(false);
    }
}

/// Gives the lease up, so another replica takes over at once.
async fn release(api: &Api<Lease>, config: &LeaseConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    if let Err(error) = api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        tracing::warn!(lease = %config.name, error = %super::chain(&error), "lease: not released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed: Option<Timestamp>, seconds: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: renewed.map(MicroTime),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn a_lease_is_taken_only_when_absent_free_or_expired() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let ago = |s: i64| now.checked_sub(SignedDuration::from_secs(s)).unwrap();
        assert_eq!(step(None, "a", now), Step::Create);
        assert_eq!(
            step(Some(&lease(Some("a"), Some(ago(100)), 15)), "a", now),
            Step::Renew
        );
        assert_eq!(
            step(Some(&lease(None, Some(ago(1)), 15)), "a", now),
            Step::TakeOver
        );
        assert_eq!(
            step(Some(&lease(Some("b"), Some(ago(5)), 15)), "a", now),
            Step::Follow { holder: "b".into() }
        );
        assert_eq!(
            step(Some(&lease(Some("b"), Some(ago(16)), 15)), "a", now),
            Step::TakeOver
        );
        assert_eq!(
            step(Some(&lease(Some("b"), None, 15)), "a", now),
            Step::TakeOver
        );
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_keeps_the_acquire_time() {
        let config = LeaseConfig {
            namespace: "ns".into(),
            name: "l".into(),
            identity: "a".into(),
            duration: Duration::from_secs(15),
        };
        let t0 = Timestamp::from_second(10).unwrap();
        let t1 = Timestamp::from_second(20).unwrap();
        let mut theirs = lease(Some("b"), Some(t0), 15);
        theirs.spec.as_mut().unwrap().lease_transitions = Some(2);
        let taken = held_by(&config, Some(&theirs), t1);
        let spec = taken.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(spec.acquire_time, Some(MicroTime(t1)));
        let t2 = Timestamp::from_second(25).unwrap();
        let renewed = held_by(&config, Some(&taken), t2);
        let spec = renewed.spec.unwrap();
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(spec.acquire_time, Some(MicroTime(t1)));
        assert_eq!(spec.renew_time, Some(MicroTime(t2)));
    }
}
