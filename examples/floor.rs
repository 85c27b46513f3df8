//! The transport floor for benchmarks: portkey-guard's own listener, TLS,
//! HTTP stack and router layers (body read whole, limits, deadlines),
//! answering every review with a fixed AdmissionReview and deciding nothing. `bench/load.sh` runs it beside the real server; the
//! difference between them is what the policy costs.
//!
//! floor serve --addr A --probe-addr P --tls-cert F --tls-key F

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use portkey_guard::policy::Policy;
use portkey_guard::server::listener::{serve_tls, Limits};
use portkey_guard::server::metrics::Metrics;
use portkey_guard::server::tls::{server_config, CertResolver, ServingCert};
use portkey_guard::server::webhook::{router_with, AppState, Webhook};
use std::collections::HashMap;
use std::sync::Arc;

const FIXED: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"fixed","allowed":true}}"#;

/// Answers without parsing or deciding anything.
fn fixed(_: &AppState, _: Webhook, _body: &[u8]) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        FIXED,
    )
        .into_response()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let flags: HashMap<&str, &str> = args
        .chunks(2)
        .filter_map(|pair| Some((pair.first()?.as_str(), pair.get(1)?.as_str())))
        .collect();
    let flag = |name: &str| flags.get(name).copied().ok_or(format!("missing {name}"));
    let cert = ServingCert::from_pem(
        &std::fs::read(flag("--tls-cert")?)?,
        &std::fs::read(flag("--tls-key")?)?,
    )?;
    let tls = server_config(Arc::new(CertResolver::new(&cert)), None)?;
    let addr: std::net::SocketAddr = flag("--addr")?.parse()?;
    let probe_addr: std::net::SocketAddr = flag("--probe-addr")?.parse()?;

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = portkey_guard::server::bind(addr)?;
            let probes = portkey_guard::server::bind(probe_addr)?;
            let probe_app = Router::new().route("/readyz", get(|| async { "ready\n" }));
            tokio::spawn(async move { axum::serve(probes, probe_app).await });
            let app = router_with(AppState::new(Policy::default_policy()), fixed);
            let (_stop, shutdown) = tokio::sync::watch::channel(false);
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
            serve_tls(
                listener,
                acceptor,
                app,
                Limits::default(),
                Arc::new(Metrics::new()),
                shutdown,
            )
            .await;
            Ok(())
        })
}
