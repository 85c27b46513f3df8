//! Reloading the serving certificate and the policy file while serving.
//!
//! Both are polled by content, which follows the atomic `..data` symlink
//! swap of a Kubernetes Secret or ConfigMap volume. A new version is taken
//! only when it is complete and valid; otherwise the last good one keeps
//! serving, and the failure is logged and counted once per version.

use super::metrics::Metrics;
use super::tls::{CertResolver, ServingCert};
use super::webhook::PolicyStore;
use crate::policy::Policy;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The bytes of the watched files, to notice a change.
type Contents = Vec<Vec<u8>>;

fn read_all(paths: &[PathBuf]) -> Option<Contents> {
    paths.iter().map(|p| std::fs::read(p).ok()).collect()
}

/// Polls `paths` every `interval`; calls `apply` with the new contents when
/// they change.
async fn poll(
    paths: Vec<PathBuf>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut apply: impl FnMut(&Contents),
) {
    let mut seen = read_all(&paths);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let current = read_all(&paths);
        if current == seen {
            continue;
        }
        if let Some(contents) = &current {
            apply(contents);
        }
        // Taken or refused, this version is settled: a refused version is
        // reported once, and retried only when the files change again.
        seen = current;
    }
}

pub async fn watch_certificate(
    cert: PathBuf,
    key: PathBuf,
    resolver: Arc<CertResolver>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let files = vec![cert.clone(), key.clone()];
    poll(files, interval, shutdown, |contents| {
        match ServingCert::from_pem(&contents[0], &contents[1]) {
            Ok(serving) => {
                resolver.set(&serving);
                metrics.certificate_expiry.set(serving.not_after);
                metrics.certificate_reloaded(true);
                tracing::info!(cert = %cert.display(), not_after = serving.not_after, "serving certificate reloaded");
            }
            Err(error) => {
                metrics.certificate_reloaded(false);
                tracing::error!(cert = %cert.display(), key = %key.display(), %error,
                    "new certificate not taken; the previous one keeps serving");
            }
        }
    })
    .await;
}

pub async fn watch_policy(
    path: PathBuf,
    store: Arc<PolicyStore>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: watch::Receiver<bool>,
) {
    poll(vec![path.clone()], interval, shutdown, |contents| {
        let parsed = std::str::from_utf8(&contents[0])
            .map_err(|e| e.to_string())
            .and_then(|text| Policy::from_yaml(text).map_err(|e| e.to_string()));
        match parsed {
            Ok(policy) => {
                metrics.policy_reloaded(Some(&policy));
                store.set(policy);
                tracing::info!(policy = %path.display(), "policy reloaded");
            }
            Err(error) => {
                metrics.policy_reloaded(None);
                tracing::error!(policy = %path.display(), %error,
                    "new policy rejected; the previous one keeps serving");
            }
        }
    })
    .await;
}
