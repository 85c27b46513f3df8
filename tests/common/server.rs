//! Starting the real binary and talking to it over real TLS.
#![allow(dead_code)]

use super::ScratchDir;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub const BIN: &str = env!("CARGO_BIN_EXE_portkey-guard");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `portkey-guard certs` into `dir` (reusing a CA already there).
pub fn make_certs(dir: &Path) {
    let out = Command::new(BIN)
        .args([
            "certs",
            "--out",
            dir.to_str().unwrap(),
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `portkey-guard serve`, killed on drop.
pub struct ServerProcess {
    pub child: Child,
    pub admission: SocketAddr,
    pub probes: SocketAddr,
    pub log: PathBuf,
}

impl ServerProcess {
    pub fn start(args: &[&str], log: PathBuf) -> ServerProcess {
        ServerProcess::start_with_env(args, &[], log)
    }

    /// Started with these environment variables set as well.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)], log: PathBuf) -> ServerProcess {
        let admission: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let probes: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .args([
                "--addr",
                &admission.to_string(),
                "--probe-addr",
                &probes.to_string(),
            ])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let server = ServerProcess {
            child,
            admission,
            probes,
            log,
        };
        server.wait_ready();
        server
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_get(self.probes, "/readyz").map(|(s, _)| s) == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "server not ready; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// The log, once `done` holds for it: info lines reach it within
    /// milliseconds, not at once (the server gathers them).
    pub fn log_when(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if done(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "the log never showed it:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn metrics(&self) -> String {
        http_get(self.probes, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET with a short timeout; `(status, body)`.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// A rustls client trusting `ca_pem` (or nothing), optionally with a
/// client certificate, offering `alpn`.
pub fn tls_client(
    ca_pem: Option<&[u8]>,
    client_cert: Option<(&[u8], &[u8])>,
    alpn: &[&[u8]],
) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert)
                    .map(|c| c.unwrap())
                    .collect(),
                PrivateKeyDer::from_pem_slice(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Every connection does a full handshake, so it shows the certificate
    // the server serves now (a resumed session does not resend it).
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

pub async fn connect(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// The DER of the certificate the server presented.
pub fn peer_certificate(stream: &TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// POSTs `body` over an established TLS stream with HTTP/2 or HTTP/1.1,
/// as negotiated by ALPN; returns `(status, body)`.
pub async fn post(
    stream: TlsStream<tokio::net::TcpStream>,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    let request = Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?
    };
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}

/// A review body from tests/data/reviews/.
pub fn review(name: &str) -> Vec<u8> {
    std::fs::read(super::repo_path(&format!("tests/data/reviews/{name}"))).unwrap()
}

/// The tls.crt/tls.key arguments for certificates in `dir`.
pub fn cert_args(dir: &Path) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        dir.join("tls.crt").display().to_string(),
        "--tls-key".into(),
        dir.join("tls.key").display().to_string(),
    ]
}

/// Fresh certificates in a fresh directory and a server using them.
pub fn start_with_certs(name: &str, extra: &[&str]) -> (ScratchDir, ServerProcess) {
    start_with_certs_and_env(name, extra, &[])
}

/// [`start_with_certs`], with these environment variables set as well.
pub fn start_with_certs_and_env(
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (ScratchDir, ServerProcess) {
    let dir = ScratchDir::new(name);
    make_certs(&dir);
    let mut args = cert_args(&dir);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start_with_env(&args, env, dir.join("serve.log"));
    (dir, server)
}

/// A client trusting the CA in `dir`.
pub fn trusting(dir: &Path, alpn: &[u8]) -> TlsConnector {
    tls_client(
        Some(&std::fs::read(dir.join("ca.crt")).unwrap()),
        None,
        &[alpn],
    )
}

/// Posts the shipped Deployment's review on a new connection; the status.
pub async fn post_compliant(client: &TlsConnector, addr: SocketAddr) -> u16 {
    let stream = connect(client, addr).await.unwrap();
    post(stream, "/validate", review("compliant-deployment.json"))
        .await
        .unwrap()
        .0
}

/// The head of an HTTP/1.1 POST to /validate announcing `length` body bytes,
/// for tests that write the request by hand.
pub fn validate_head(length: usize) -> String {
    format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// A request body fed chunk by chunk through a channel, with no declared
/// length; it ends when the sender is dropped.
pub struct StreamedBody(tokio::sync::mpsc::Receiver<Bytes>);

pub fn streamed_body(buffer: usize) -> (tokio::sync::mpsc::Sender<Bytes>, StreamedBody) {
    let (tx, rx) = tokio::sync::mpsc::channel(buffer);
    (tx, StreamedBody(rx))
}

impl hyper::body::Body for StreamedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|data| Ok(hyper::body::Frame::data(data))))
    }
}
