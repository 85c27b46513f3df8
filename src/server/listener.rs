//! Accepting connections: TLS handshake with a deadline, HTTP/1.1 or HTTP/2
//! by ALPN, bounds on concurrent connections, on request headers, and on
//! streams and flow-control windows per HTTP/2 connection, connections
//! closed once idle, and a graceful drain.

use super::body;
use super::metrics::{Metrics, ProtocolLabels};
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Streams one HTTP/2 connection may have open at once. More than the API
/// server needs; each open stream may hold a request body.
pub const MAX_CONCURRENT_STREAMS: u32 = 32;
/// How much one HTTP/2 stream may send before its data is read.
pub const STREAM_WINDOW_BYTES: u32 = 256 * 1024;
/// How much one HTTP/2 connection may send, over all its streams, before
/// its data is read. Data is read at once into a reserved body buffer, or
/// the stream is answered and reset, so a client cannot hold more than this
/// unread beyond the body budget.
pub const CONNECTION_WINDOW_BYTES: u32 = 1024 * 1024;

/// Most bytes of request headers one request may hold: the HTTP/1.1 read
/// buffer (a request head that does not fit in it is answered 431 and the
/// connection closed) and one HTTP/2 stream's header list, counted as
/// HTTP/2 counts it (name, value and 32 bytes per field; a larger list is
/// answered 431 and the stream reset, and a header block that keeps
/// growing past it ends the connection). Admission requests carry a
/// handful of headers, a bearer token included, well under this. A request
/// waiting for its body holds a head charge against the budget sized for
/// a header list at this limit (`body::HEAD_CHARGE_BYTES`).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Most header fields one request may carry: hyper's bound for an
/// HTTP/1.1 request head, which it answers 431 beyond. An HTTP/2 request
/// with more is answered 431 as soon as it arrives, before the router, so
/// its fields are not held while its body is awaited: many small fields
/// cost several times their counted size.
pub const MAX_HEADER_FIELDS: usize = 100;

/// Connections held at once unless configured. What a connection holds
/// while no request of its own is in flight is outside the request budget:
/// TLS state, HTTP/2 connection state, an incomplete header block or
/// HTTP/1.1 request head (16 KiB at most); `tests/resources.rs` bounds it
/// at 128 KiB per connection. 512 of them come to 64 MiB at most, so the
/// process (about 40 MiB), the default budget (64 MiB) and these stay under
/// 170 MiB, well inside the pod's 256 MiB; the API server uses tens of
/// connections. More wait in the kernel's accept queue.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 512;

/// Connection limits and deadlines.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    /// A connection with no request open for this long is closed, whatever
    /// else (HTTP/2 PINGs, settings) the client sends.
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(25),
        }
    }
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADER_FIELDS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

/// Serves `app` on `listener` until `shutdown` turns true, then stops
/// accepting and lets in-flight requests finish (bounded by the drain
/// timeout). Returns whether the drain completed in time.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    // Every connection holds a permit until it ends.
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let builder = Arc::new(http_builder(&limits));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            acceptor: acceptor.clone(),
            builder: builder.clone(),
            app: app.clone(),
            limits,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            peer,
        };
        tokio::spawn(async move {
            connection.run(tcp).await;
            drop(permit);
        });
    }
    drop(listener);
    // All permits back: every connection has ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(limits.drain_timeout, permits.acquire_many(all))
        .await
        .is_ok();
    drained
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// One accepted TCP connection and what serving it needs.
struct Connection {
    acceptor: TlsAcceptor,
    builder: Arc<auto::Builder<TokioExecutor>>,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, tcp: TcpStream) {
        // No TLS state is allocated until the client sends something: an
        // idle connection costs little more than its socket. The later
        // stages are boxed so that a waiting task is small: an async block
        // is as large as its largest state.
        let acceptor = self.acceptor.clone();
        let handshake = async {
            tcp.readable().await?;
            Box::pin(acceptor.accept(tcp)).await
        };
        let tls = tokio::select! {
            result = tokio::time::timeout(self.limits.handshake_timeout, handshake) => match result {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    self.metrics.tls_handshake_failures.inc();
                    tracing::debug!(peer = %self.peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    self.metrics.tls_handshake_failures.inc();
                    tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                    return;
                }
            },
            // Draining: a connection that has not finished its handshake
            // has no request in flight.
            () = stopped(self.shutdown.clone()) => return,
        };
        let protocol = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => "h2",
            Some(b"http/1.1") => "http/1.1",
            _ => "none",
        };
        self.metrics
            .tls_connections
            .get_or_create(&ProtocolLabels { protocol })
            .inc();
        Box::pin(self.serve_http(tls)).await;
    }

    /// HTTP/1.1 or HTTP/2 until the client closes, the connection has been
    /// idle for the idle timeout, or the server drains.
    async fn serve_http(self, tls: TlsStream<TcpStream>) {
        let activity = Arc::new(Activity::new());
        let service = Tracked {
            app: TowerToHyperService::new(self.app),
            activity: activity.clone(),
            metrics: self.metrics.clone(),
        };
        let connection = self.builder.serve_connection(TokioIo::new(tls), service);
        tokio::pin!(connection);
        let idle = activity.idle_for(self.limits.idle_timeout);
        tokio::pin!(idle);
        let stop = stopped(self.shutdown);
        tokio::pin!(stop);
        let mut closing = false;
        let result = loop {
            tokio::select! {
                result = connection.as_mut() => break result,
                () = &mut idle, if !closing => {
                    closing = true;
                    self.metrics.idle_connections_closed.inc();
                    tracing::debug!(peer = %self.peer, "closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                }
                () = &mut stop, if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
        }
    }
}

// === impl Activity ===

/// The requests open on one connection: from their headers until their
/// response has been sent or abandoned. HTTP/2 PINGs and other frames that
/// are not requests do not count.
struct Activity {
    open: watch::Sender<usize>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            open: watch::Sender::new(0),
        }
    }

    fn start(self: &Arc<Self>) -> OpenRequest {
        self.open.send_modify(|open| *open += 1);
        OpenRequest(self.clone())
    }

    /// Resolves once no request has been open for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        let mut open = self.open.subscribe();
        loop {
            // The sender lives in `self`, so neither wait ends in an error.
            let _ = open.wait_for(|open| *open == 0).await;
            if tokio::time::timeout(timeout, open.changed()).await.is_err() {
                return;
            }
        }
    }
}

/// One open request; it ends when dropped.
struct OpenRequest(Arc<Activity>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0
            .open
            .send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// The router, with each request counted as open on its connection until
/// its response is sent, and a request with too many header fields
/// answered 431 without it.
#[derive(Clone)]
struct Tracked {
    app: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    metrics: Arc<Metrics>,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        if request.headers().len() > MAX_HEADER_FIELDS {
            // Dropped here: its fields are freed before the answer is sent.
            drop(request);
            self.metrics.reject("headers");
            let response = Response::builder()
                .status(hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .body(axum::body::Body::from(format!(
                    "more than {MAX_HEADER_FIELDS} header fields\n"
                )))
                .unwrap_or_default();
            return Box::pin(std::future::ready(Ok(response)));
        }
        let open = self.activity.start();
        let answer = self.app.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(body::keep_until_sent(response, open))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// When `activity` is first idle for `timeout`.
    fn idle_at(activity: &Arc<Activity>, timeout: Duration) -> tokio::task::JoinHandle<Instant> {
        let activity = activity.clone();
        tokio::spawn(async move {
            activity.idle_for(timeout).await;
            Instant::now()
        })
    }

    // Timers never fire early, so the lower bounds below hold on any
    // machine; the upper bounds are only there to end the test.
    #[tokio::test]
    async fn idle_means_no_request_open_for_the_whole_timeout() {
        let timeout = Duration::from_millis(100);
        let patience = Duration::from_secs(10);

        // Nothing ever open: idle after the timeout.
        let started = Instant::now();
        let quiet = Arc::new(Activity::new());
        let idle = tokio::time::timeout(patience, idle_at(&quiet, timeout)).await;
        assert!(idle.unwrap().unwrap() - started >= timeout);

        let activity = Arc::new(Activity::new());
        let request = activity.start();
        let idle = idle_at(&activity, timeout);
        // A request open for longer than the timeout keeps it busy ...
        tokio::time::sleep(3 * timeout).await;
        assert!(!idle.is_finished());
        drop(request);
        // ... and one that comes and goes restarts the clock when it ends.
        tokio::time::sleep(timeout / 2).await;
        let request = activity.start();
        let last_ended = Instant::now();
        drop(request);
        let idle = tokio::time::timeout(patience, idle).await;
        assert!(idle.unwrap().unwrap() - last_ended >= timeout);
    }
}
