//! Reloading the serving certificate and the policy file while serving.
//!
//! Both are polled by content, which follows the atomic `..data` symlink
//! swap of a Kubernetes Secret or ConfigMap volume. A new version is taken
//! only when it is complete and valid; otherwise the last good one keeps
//! serving, and the failure is logged and counted once per version.

use super::metrics::Metrics;
use super::tls::{CertResolver, ServingCert};
use super::webhook::PolicyStore;
use crate::policy::{Policy, PolicyError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why a new version of the policy file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PolicyReloadError {
    #[error("the policy file is not UTF-8: {0}")]
    NotUtf8(#[source] std::str::Utf8Error),
    #[error("{0}")]
    Invalid(#[source] PolicyError),
}

/// The policy in a new version of the policy file.
fn read_policy(bytes: &[u8]) -> Result<Policy, PolicyReloadError> {
    let text = std::str::from_utf8(bytes).map_err(PolicyReloadError::NotUtf8)?;
    Policy::from_yaml(text).map_err(PolicyReloadError::Invalid)
}

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
    poll(
        vec![path.clone()],
        interval,
        shutdown,
        |contents| match read_policy(&contents[0]) {
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
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_refused_policy_says_why_and_keeps_its_cause() {
        let err = read_policy(b"gateway:\n  version: \xff\n").unwrap_err();
        assert!(matches!(err, PolicyReloadError::NotUtf8(_)), "{err}");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert!(err.source().is_some_and(|s| s.is::<std::str::Utf8Error>()));

        let err = read_policy(b"gateway:\n  probes: {startup: {delay: 3}}\n").unwrap_err();
        assert!(matches!(err, PolicyReloadError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("gateway.probes.startup"), "{err}");
        assert!(err.source().is_some_and(|s| s.is::<PolicyError>()));

        let policy = read_policy(b"gateway:\n  version: \"1.13.0\"\n").unwrap();
        assert_eq!(policy.gateway.version, "1.13.0");
    }
}
