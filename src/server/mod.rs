//! `portkey-guard serve`: the admission webhook over HTTPS, and its probe
//! port. Configuration is parsed once into [`Config`]; [`Server`] runs it.

pub mod body;
pub mod cluster;
pub mod listener;
pub mod log_queue;
pub mod logging;
pub mod metrics;
pub mod probes;
pub mod reload;
pub mod tls;
pub mod webhook;

use crate::certs;
use crate::policy::{Policy, PolicyArg, PolicyError};
use listener::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tls::{CertResolver, ServingCert, TlsError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use webhook::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// HTTPS address for /mutate and /validate. Loopback by default: a
    /// cluster deployment names its address (deploy/webhook passes
    /// --addr=0.0.0.0:8443).
    #[arg(long, env = "PORTKEY_GUARD_ADDR", default_value = "127.0.0.1:8443")]
    pub addr: SocketAddr,
    /// Serving certificate (PEM), reloaded when it changes. Without
    /// --tls-cert and --tls-key, a self-signed certificate for localhost is
    /// made in memory (local use only).
    #[arg(long, env = "PORTKEY_GUARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, env = "PORTKEY_GUARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, env = "PORTKEY_GUARD_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArg,
    /// Plain HTTP address for /healthz, /readyz and /metrics (loopback by
    /// default, like --addr).
    #[arg(
        long,
        env = "PORTKEY_GUARD_PROBE_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub probe_addr: SocketAddr,
    #[arg(long, env = "PORTKEY_GUARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Most connections held at once; more wait in the kernel's accept
    /// queue. What a connection holds outside the request budget (TLS and
    /// HTTP/2 state, an incomplete request head) is at most 128 KiB, so
    /// the default keeps that under 64 MiB. Keep it below the open-file
    /// limit, and its product with 128 KiB within the memory limit.
    #[arg(long, default_value_t = listener::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// How often certificate and policy files are checked for changes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub reload_interval_seconds: u64,
    /// Deadline for a TLS handshake, for request headers, and for a whole
    /// request to arrive and be answered: a slow client cannot hold a
    /// connection longer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_timeout_seconds: u64,
    /// Most bytes of request bodies held in memory at once, in MiB. A
    /// request that does not fit is answered 503 with Retry-After at once;
    /// bodies over 256 KiB may fill three quarters of it only. Keep it well
    /// under the container's memory limit.
    #[arg(long, env = "PORTKEY_GUARD_BODY_BUDGET_MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(4..=65_536))]
    pub body_budget_mib: u64,
    /// A connection with no request open for this long is closed (HTTP/2
    /// PINGs do not keep it open).
    #[arg(long, env = "PORTKEY_GUARD_IDLE_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_seconds: u64,
    /// Longest wait for in-flight requests on shutdown.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout_seconds: u64,
    /// Watch the policed namespace through the API server (the pod's
    /// service account, or --kubeconfig): an admitted object's broken
    /// relations with the others are added as warnings. Secrets are never
    /// watched. Admission and readiness never wait on it.
    #[arg(long, env = "PORTKEY_GUARD_CLUSTER")]
    pub cluster: bool,
    #[command(flatten)]
    pub cluster_args: crate::cluster::ClusterArgs,
    /// With --cluster: audit the namespace this often (30s, 5m, 1h) and
    /// keep its PolicyReports current. With several replicas only the one
    /// holding the audit Lease does.
    #[arg(long, env = "PORTKEY_GUARD_AUDIT_INTERVAL", value_parser = parse_interval, requires = "cluster")]
    pub audit_interval: Option<Duration>,
    /// Namespace of the audit Lease (the webhook's own).
    #[arg(
        long,
        env = "PORTKEY_GUARD_LEASE_NAMESPACE",
        default_value = "portkey-guard"
    )]
    pub lease_namespace: String,
    /// Name of the audit Lease (coordination.k8s.io/v1).
    #[arg(
        long,
        env = "PORTKEY_GUARD_LEASE_NAME",
        default_value = "portkey-guard-audit"
    )]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: HOSTNAME, the pod's
    /// name).
    #[arg(long, env = "PORTKEY_GUARD_LEASE_IDENTITY")]
    pub lease_identity: Option<String>,
    /// Seconds an unrenewed Lease stays held before another replica takes
    /// the audit over.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_duration_seconds: u64,
    /// With --cluster: the most objects the cache holds; a namespace with
    /// more has no snapshot (relations are skipped, and the background
    /// audit too) and is listed again a minute later.
    #[arg(long, env = "PORTKEY_GUARD_CACHE_MAX_OBJECTS",
          default_value_t = crate::cluster::cache::CacheLimits::DEFAULT_MAX_OBJECTS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub cache_max_objects: u64,
    /// With --cluster: how long the last snapshot is still used while the
    /// API server cannot be reached; then it is dropped until the
    /// namespace is listed again.
    #[arg(long, env = "PORTKEY_GUARD_CACHE_MAX_STALE_SECONDS",
          default_value_t = crate::cluster::cache::CacheLimits::DEFAULT_MAX_STALE.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub cache_max_stale_seconds: u64,
}

/// An interval such as `30s`, `5m` or `1h`, at least a second.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let parsed = crate::duration::PromDuration::parse(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as 30s, 5m or 1h"))?;
    if parsed.millis() < 1000 {
        return Err(format!("{text:?} is under a second"));
    }
    Ok(Duration::from_millis(parsed.millis()))
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Tls { path: String, source: TlsError },
    #[error("cannot make the local certificate: {0}")]
    LocalCert(#[from] certs::CertError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

fn read(path: &PathBuf) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// In-memory, self-signed for localhost; its CA is written once the
    /// listener is bound (see [`local_ca_path`]).
    Local {
        ca_pem: String,
    },
}

/// Everything `serve` needs, checked once.
pub struct Config {
    pub addr: SocketAddr,
    pub probe_addr: SocketAddr,
    pub cert_source: CertSource,
    pub serving_cert: ServingCert,
    pub client_ca_pem: Option<Vec<u8>>,
    pub policy: Policy,
    pub policy_file: Option<PathBuf>,
    pub limits: Limits,
    /// Most bytes of request bodies held at once.
    pub body_budget: u64,
    pub reload_interval: Duration,
    /// `--cluster`: the cache, and the background audit.
    pub cluster: Option<cluster::ClusterConfig>,
}

impl Config {
    pub fn from_args(args: &ServeArgs) -> Result<Config, ServeError> {
        let policy = args.policy.load()?;
        let (cert_source, serving_cert) = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let serving =
                    ServingCert::from_pem(&read(cert)?, &read(key)?).map_err(|source| {
                        ServeError::Tls {
                            path: cert.display().to_string(),
                            source,
                        }
                    })?;
                (
                    CertSource::Files {
                        cert: cert.clone(),
                        key: key.clone(),
                    },
                    serving,
                )
            }
            _ => local_certificate()?,
        };
        let client_ca_pem = args.client_ca.as_ref().map(read).transpose()?;
        Ok(Config {
            addr: args.addr,
            probe_addr: args.probe_addr,
            cert_source,
            serving_cert,
            client_ca_pem,
            policy,
            policy_file: args.policy.path.clone(),
            limits: Limits {
                max_connections: args.max_connections as usize,
                handshake_timeout: Duration::from_secs(args.request_timeout_seconds),
                header_read_timeout: Duration::from_secs(args.request_timeout_seconds),
                idle_timeout: Duration::from_secs(args.idle_timeout_seconds),
                drain_timeout: Duration::from_secs(args.shutdown_timeout_seconds),
            },
            body_budget: args.body_budget_mib * 1024 * 1024,
            reload_interval: Duration::from_secs(args.reload_interval_seconds),
            cluster: args.cluster.then(|| cluster::ClusterConfig {
                args: args.cluster_args.clone(),
                audit_interval: args.audit_interval,
                cache: crate::cluster::cache::CacheLimits {
                    max_objects: usize::try_from(args.cache_max_objects).unwrap_or(usize::MAX),
                    max_stale: Duration::from_secs(args.cache_max_stale_seconds),
                },
                lease: crate::cluster::lease::LeaseConfig {
                    namespace: args.lease_namespace.clone(),
                    name: args.lease_name.clone(),
                    identity: args
                        .lease_identity
                        .clone()
                        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
                        .unwrap_or_else(|| format!("portkey-guard-{}", std::process::id())),
                    duration: Duration::from_secs(args.lease_duration_seconds),
                },
            }),
        })
    }
}

/// A self-signed certificate for localhost, for running without any setup.
fn local_certificate() -> Result<(CertSource, ServingCert), ServeError> {
    let names = ["localhost".to_owned()];
    let ips = [
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ];
    let bundle = certs::issue(&names, &ips, 30, None)?;
    let serving = ServingCert::from_pem(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes())
        .map_err(|source| ServeError::Tls {
            path: "(generated)".to_owned(),
            source,
        })?;
    let source = CertSource::Local {
        ca_pem: bundle.ca_cert_pem,
    };
    Ok((source, serving))
}

/// Where a local instance listening on `port` writes the CA of its
/// self-signed certificate: one directory per port, so instances never
/// share a file (`$TMPDIR/portkey-guard-8443/ca.crt`).
pub fn local_ca_path(port: u16) -> PathBuf {
    std::env::temp_dir()
        .join(format!("portkey-guard-{port}"))
        .join("ca.crt")
}

/// Writes the local CA to `path`, in a directory of its own that is not a
/// symlink and that nobody else may write to.
fn write_local_ca(path: &std::path::Path, pem: &str) -> Result<(), ServeError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let error = |source| ServeError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(dir).map_err(error)?;
            let foreign_writable = meta.permissions().mode() & 0o022 != 0;
            if !meta.is_dir() || foreign_writable {
                return Err(error(std::io::Error::other(
                    "exists and is not a private directory",
                )));
            }
        }
        Err(e) => return Err(error(e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(error)?;
    std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(error)
}

/// The kernel caps this at `net.core.somaxconn`. A short queue (the
/// default is 128) overflows under a burst of connections, and the kernel
/// then drops SYNs that clients retry only after a second or more.
const LISTEN_BACKLOG: u32 = 4096;

pub fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    socket
        .and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(LISTEN_BACKLOG)
        })
        .map_err(|source| ServeError::Bind { addr, source })
}

/// The bound addresses of a running server.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub admission: SocketAddr,
    pub probes: SocketAddr,
}

/// Runs the server until `shutdown` turns true. Returns whether in-flight
/// requests all finished in time.
pub async fn serve(
    config: Config,
    state: AppState,
    shutdown: watch::Receiver<bool>,
    on_bound: impl FnOnce(Bound),
) -> Result<bool, ServeError> {
    let resolver = Arc::new(CertResolver::new(&config.serving_cert));
    let tls_config = tls::server_config(resolver.clone(), config.client_ca_pem.as_deref())
        .map_err(|source| ServeError::Tls {
            path: "--client-ca".to_owned(),
            source,
        })?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));
    let admission = bind(config.addr)?;
    let probes = bind(config.probe_addr)?;
    let bound = Bound {
        admission: admission.local_addr().unwrap_or(config.addr),
        probes: probes.local_addr().unwrap_or(config.probe_addr),
    };
    state
        .metrics
        .certificate_expiry
        .set(config.serving_cert.not_after);
    state.metrics.policy_loaded(&state.policy.get());
    if let CertSource::Local { ca_pem } = &config.cert_source {
        let ca_file = local_ca_path(bound.admission.port());
        write_local_ca(&ca_file, ca_pem)?;
        let curl = format!(
            "curl --cacert {} -H 'Content-Type: application/json' --data @tests/data/reviews/denied-deployment.json https://localhost:{}/validate",
            ca_file.display(),
            bound.admission.port()
        );
        tracing::warn!(
            ca_file = %ca_file.display(),
            "NO --tls-cert/--tls-key: serving a self-signed certificate for localhost. \
             For local use only; clients must trust the CA written to ca_file"
        );
        eprintln!("portkey-guard: try it (from the repository): {curl}");
    }

    if let CertSource::Files { cert, key } = &config.cert_source {
        tokio::spawn(reload::watch_certificate(
            cert.clone(),
            key.clone(),
            resolver,
            state.metrics.clone(),
            config.reload_interval,
            shutdown.clone(),
        ));
    }
    if let Some(path) = &config.policy_file {
        tokio::spawn(reload::watch_policy(
            path.clone(),
            state.policy.clone(),
            state.metrics.clone(),
            config.reload_interval,
            shutdown.clone(),
        ));
    }

    // The probe port outlives the drain, so /readyz answers 503 meanwhile.
    let probe_app = probes::router(state.clone());
    let (probe_stop, mut probe_shutdown) = watch::channel(false);
    let probe_server = tokio::spawn(async move {
        let stop = async move {
            let _ = probe_shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(probes, probe_app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%error, "probe server failed");
        }
    });

    tracing::info!(admission = %bound.admission, probes = %bound.probes, "portkey-guard serving");
    state
        .health
        .serving
        .store(true, std::sync::atomic::Ordering::SeqCst);
    on_bound(bound);
    let drained = listener::serve_tls(
        admission,
        acceptor,
        webhook::router(state.clone()),
        config.limits,
        state.metrics.clone(),
        shutdown,
    )
    .await;
    let _ = probe_stop.send(true);
    let _ = probe_server.await;
    Ok(drained)
}

/// Turns true on SIGTERM or SIGINT, after marking the server not ready.
async fn wait_for_signal(state: AppState, stop: watch::Sender<bool>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: not ready, draining in-flight requests");
    state
        .health
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = stop.send(true);
}

/// `portkey-guard serve`.
pub fn run(args: &ServeArgs) -> ExitCode {
    let _log = logging::init(args.log_format);
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            eprintln!("portkey-guard: error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("portkey-guard: error: {}", ServeError::Runtime(error));
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let mut state = AppState::new(config.policy.clone()).with_body_budget(config.body_budget);
        state.request_timeout = config.limits.header_read_timeout;
        let (stop, shutdown) = watch::channel(false);
        if let Some(cluster_config) = config.cluster.clone() {
            // A configuration that cannot be read stops the start; an API
            // server that cannot be reached does not.
            let (client, server) = match cluster::connect(&cluster_config).await {
                Ok(connected) => connected,
                Err(error) => {
                    tracing::error!(%error, "cannot start: --cluster");
                    eprintln!("portkey-guard: error: {error}");
                    return ExitCode::from(2);
                }
            };
            tracing::info!(%server, audit_interval_seconds = cluster_config.audit_interval.map(|d| d.as_secs()),
                "watching the policed namespace through the API server");
            state.cache = Some(Arc::new(crate::cluster::cache::Cache::default()));
            cluster::start(client, cluster_config, &state, shutdown.clone());
        }
        tokio::spawn(wait_for_signal(state.clone(), stop));
        match serve(config, state, shutdown, |_| {}).await {
            Ok(true) => {
                tracing::info!("shut down cleanly");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                tracing::warn!("shut down with requests still in flight after the drain timeout");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, "server failed");
                eprintln!("portkey-guard: error: {error}");
                ExitCode::from(2)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn listens_on_loopback_unless_told_otherwise() {
        let cli = crate::cli::Cli::try_parse_from(["portkey-guard", "serve"]).unwrap();
        let crate::cli::Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert!(args.addr.ip().is_loopback(), "{}", args.addr);
        assert!(args.probe_addr.ip().is_loopback(), "{}", args.probe_addr);
    }

    #[test]
    fn the_local_ca_goes_only_into_a_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("pg-local-ca-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let own = base.join("own").join("ca.crt");
        write_local_ca(&own, "first").unwrap();
        write_local_ca(&own, "second").unwrap();
        assert_eq!(std::fs::read_to_string(&own).unwrap(), "second");
        let mode = std::fs::metadata(own.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        std::os::unix::fs::symlink(&base, base.join("linked")).unwrap();
        assert!(write_local_ca(&base.join("linked").join("ca.crt"), "x").is_err());
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(write_local_ca(&open.join("ca.crt"), "x").is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
