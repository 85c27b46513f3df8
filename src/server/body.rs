//! Request bodies: read whole under the size limit and under one budget for
//! the memory of every request in flight (a fixed charge for its headers and
//! the bytes of its body), and kept alive until the response is sent.
//!
//! Without a budget, memory grows with the number of requests in flight:
//! sixty HTTP/1.1 connections each stalling one byte short of 3 MiB, or one
//! HTTP/2 connection with 200 such streams, would hold 180 MiB or 600 MiB,
//! past the pod's limit; streams that only send their headers and stall
//! cost tens of KiB each, on every connection. With it, a request waits for
//! its body only while its head charge is reserved, and a body is read only
//! while its bytes are reserved; past the budget the request is answered
//! 503 at once.

use super::metrics::Metrics;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as _, Frame, SizeHint};
use prometheus_client::metrics::gauge::Gauge;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The budget when none is configured: room for 21 bodies of the largest
/// size the API server sends, well inside the pod's 256 MiB.
pub const DEFAULT_BUDGET_BYTES: u64 = 64 * 1024 * 1024;
/// Bodies up to this size may use the whole budget; larger ones only three
/// quarters of it. The last quarter stays free for ordinary objects (a
/// Deployment's review is about 10 KiB) while large bodies fill the rest.
pub const SMALL_BODY_BYTES: u64 = 256 * 1024;
/// What every request in flight is charged for its headers and its state
/// (HTTP/2 stream, task, parsed header map) from the moment its body is
/// awaited until it is answered. An HTTP/2 stream holding a header list at
/// the limit (16 KiB as HTTP/2 counts it, 100 fields) costs 35–47 KiB of
/// RSS (`tests/resources.rs`, 32 such streams on a connection); the charge
/// is above that worst case, so that the budget bounds the real memory of
/// stalled requests and not only their bodies. A normal admission request
/// costs less, and the charge still leaves room for 1,000 requests in
/// flight in the default budget.
pub const HEAD_CHARGE_BYTES: u64 = 64 * 1024;
/// What a client over the budget is told to wait before retrying.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// The memory of requests in flight (head charges and body bytes), bounded.
#[derive(Debug)]
pub struct BodyBudget {
    capacity: u64,
    used: AtomicU64,
    gauge: Gauge,
}

impl BodyBudget {
    /// A budget of `capacity` bytes, shown with its use in `metrics`.
    pub fn new(capacity: u64, metrics: &Metrics) -> Arc<BodyBudget> {
        metrics.body_budget_bytes.set(gauge_value(capacity));
        let gauge = metrics.budget_held_bytes.clone();
        gauge.set(0);
        Arc::new(BodyBudget {
            capacity,
            used: AtomicU64::new(0),
            gauge,
        })
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// The most that may be reserved in all once a body of `body` bytes
    /// holds its share.
    fn ceiling(&self, body: u64) -> u64 {
        if body <= SMALL_BODY_BYTES {
            self.capacity
        } else {
            self.capacity - self.capacity / 4
        }
    }

    /// Reserves `more` bytes for a request whose body then holds `body`;
    /// false when that would pass the ceiling.
    fn take(&self, more: u64, body: u64) -> bool {
        let ceiling = self.ceiling(body);
        let taken = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(more).filter(|after| *after <= ceiling)
            })
            .is_ok();
        if taken {
            self.gauge.inc_by(gauge_value(more));
        }
        taken
    }

    fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
        self.gauge.dec_by(gauge_value(bytes));
    }
}

fn gauge_value(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Bytes held against a [`BodyBudget`] for one request: its head charge,
/// if taken, and its body; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    head: u64,
    bytes: u64,
}

impl Reservation {
    pub fn new(budget: &Arc<BodyBudget>) -> Reservation {
        Reservation {
            budget: budget.clone(),
            head: 0,
            bytes: 0,
        }
    }

    /// All bytes reserved: the head charge and the body.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Reserves the head charge ([`HEAD_CHARGE_BYTES`]) before any body
    /// byte; it counts as a small body's share. False, and unchanged, when
    /// the budget cannot cover it.
    pub fn take_head(&mut self) -> bool {
        if self.head > 0 {
            return true;
        }
        if !self.budget.take(HEAD_CHARGE_BYTES, 0) {
            return false;
        }
        self.head = HEAD_CHARGE_BYTES;
        self.bytes += HEAD_CHARGE_BYTES;
        true
    }

    /// Grows the reservation to hold a body of `body` bytes besides the
    /// head charge. False, and unchanged, when the budget cannot cover it.
    pub fn grow_to(&mut self, body: u64) -> bool {
        let total = self.head.saturating_add(body);
        if total <= self.bytes {
            return true;
        }
        if !self.budget.take(total - self.bytes, body) {
            return false;
        }
        self.bytes = total;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.give_back(self.bytes);
        }
    }
}

/// Why a body was not read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Declared or found to be over the size limit.
    TooLarge,
    /// The budget cannot hold it now.
    OverBudget,
    /// The body broke off or was longer than declared.
    Unreadable,
}

impl Refusal {
    /// The `reason` label of `portkey_guard_rejected_requests_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::OverBudget => "budget",
            Refusal::Unreadable => "malformed",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::TooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body over 3 MiB\n").into_response()
            }
            Refusal::OverBudget => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)],
                "too many requests in flight; retry shortly\n",
            )
                .into_response(),
            Refusal::Unreadable => {
                (StatusCode::BAD_REQUEST, "request body not received whole\n").into_response()
            }
        }
    }
}

/// A body read whole; its bytes stay reserved until it is dropped.
#[derive(Debug)]
pub struct Buffered {
    bytes: Vec<u8>,
    _reservation: Reservation,
}

impl Buffered {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Frees the body, keeping its bytes reserved: for holding until the
    /// answer is sent.
    pub fn into_reservation(self) -> Reservation {
        self._reservation
    }
}

/// The `Content-Length` a request declares, if any.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads `body` whole, at most `limit` bytes. The request's head charge is
/// reserved first, then a declared length is checked and reserved before
/// the first byte is read; without one, the buffer and its reservation grow
/// as data arrives. Nothing is buffered that is not reserved, and no
/// request waits for its body without its head charge.
pub async fn read(
    body: &mut Body,
    declared: Option<u64>,
    limit: usize,
    budget: &Arc<BodyBudget>,
) -> Result<Buffered, Refusal> {
    let mut reservation = Reservation::new(budget);
    let mut bytes = Vec::new();
    // Checked before the head charge: a length over the limit is a 413
    // whatever the budget holds.
    let declared = declared
        .map(|length| {
            usize::try_from(length)
                .ok()
                .filter(|l| *l <= limit)
                .ok_or(Refusal::TooLarge)
        })
        .transpose()?;
    if !reservation.take_head() {
        return Err(Refusal::OverBudget);
    }
    if let Some(length) = declared {
        if !reservation.grow_to(length as u64) {
            return Err(Refusal::OverBudget);
        }
        bytes = Vec::with_capacity(length);
    }
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(|_| Refusal::Unreadable)?.into_data() else {
            continue; // trailers
        };
        let needed = bytes.len() + data.len();
        if needed > limit {
            return Err(Refusal::TooLarge);
        }
        if needed > bytes.capacity() {
            if declared.is_some() {
                return Err(Refusal::Unreadable);
            }
            let grown = needed.max(bytes.capacity().saturating_mul(2)).min(limit);
            if !reservation.grow_to(grown as u64) {
                return Err(Refusal::OverBudget);
            }
            bytes.reserve_exact(grown - bytes.len());
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Buffered {
        bytes,
        _reservation: reservation,
    })
}

/// `response`, sent at once, while the rest of `body` is read and dropped
/// in the background: at most `limit` bytes, within `deadline`, and never
/// before the response is out.
///
/// For an HTTP/2 request refused as too large: a stream answered early is
/// reset (`RST_STREAM(NO_ERROR)`) once `body` is dropped, and some clients
/// (curl 7.x among them) report that reset as an error in place of the
/// answer. Reading the rest lets the client finish sending and see the
/// answer; bodies longer than `limit` are still cut off. Nothing read here
/// is kept.
pub fn answer_then_discard(
    response: Response,
    mut body: Body,
    limit: u64,
    deadline: std::time::Duration,
) -> Response {
    let (sent, answer_out) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(deadline, discard(&mut body, limit)).await;
        // Resolves when `sent` is dropped with the response body.
        let _ = tokio::time::timeout(deadline, answer_out).await;
        drop(body);
    });
    keep_until_sent(response, sent)
}

/// Reads `body` to its end or until more than `limit` bytes have passed.
async fn discard(body: &mut Body, limit: u64) {
    let mut left = limit;
    while let Some(Ok(frame)) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
    {
        let Some(data) = frame.data_ref() else {
            continue;
        };
        match left.checked_sub(data.len() as u64) {
            Some(rest) => left = rest,
            None => return,
        }
    }
}

/// `response`, keeping `held` alive until the response has been sent or
/// abandoned.
///
/// Answering before a request body is read whole (413, 503, 408), the
/// request body is kept until then: HTTP/2 then ends the client's stream
/// with `RST_STREAM(NO_ERROR)`, which clients read as "stop sending, the
/// answer is complete", rather than `CANCEL`, which they report as an
/// error instead of the answer.
pub fn keep_until_sent<T: Send + Unpin + 'static>(response: Response, held: T) -> Response {
    response.map(|body| Body::new(Holding { body, _held: held }))
}

struct Holding<T> {
    body: Body,
    _held: T,
}

impl<T: Unpin> hyper::body::Body for Holding<T> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn budget(capacity: u64) -> (Arc<BodyBudget>, Gauge) {
        let metrics = Metrics::new();
        let budget = BodyBudget::new(capacity, &metrics);
        assert_eq!(metrics.body_budget_bytes.get(), capacity as i64);
        (budget, metrics.budget_held_bytes.clone())
    }

    #[test]
    fn reservations_are_given_back_when_dropped() {
        let (budget, gauge) = budget(8 * MIB);
        let mut a = Reservation::new(&budget);
        assert!(a.grow_to(MIB));
        assert!(a.grow_to(3 * MIB));
        assert!(a.grow_to(2 * MIB), "shrinking is a no-op");
        assert_eq!(
            (a.bytes(), budget.in_use(), gauge.get()),
            (3 * MIB, 3 * MIB, 3 << 20)
        );
        let mut b = Reservation::new(&budget);
        assert!(b.grow_to(3 * MIB));
        // Large bodies may fill three quarters (6 MiB) only.
        let mut c = Reservation::new(&budget);
        assert!(!c.grow_to(MIB));
        assert_eq!(c.bytes(), 0);
        // The last quarter is for small bodies.
        let small: Vec<Reservation> = (0..8)
            .map(|_| {
                let mut r = Reservation::new(&budget);
                assert!(r.grow_to(SMALL_BODY_BYTES));
                r
            })
            .collect();
        assert_eq!(budget.in_use(), budget.capacity());
        assert!(!c.grow_to(1));
        drop((a, b, c, small));
        assert_eq!((budget.in_use(), gauge.get()), (0, 0));
    }

    #[test]
    fn the_budget_is_never_exceeded() {
        let (budget, _) = budget(MIB);
        let mut held = Vec::new();
        loop {
            let mut r = Reservation::new(&budget);
            if !r.grow_to(1000) {
                break;
            }
            held.push(r);
        }
        assert_eq!(held.len() as u64, MIB / 1000);
        assert!(budget.in_use() <= budget.capacity());
        assert!(!Reservation::new(&budget).grow_to(u64::MAX));
    }

    #[tokio::test]
    async fn every_request_waiting_for_its_body_holds_its_head_charge() {
        let heads = 10 * HEAD_CHARGE_BYTES;
        let (budget, gauge) = budget(heads + 16);
        // Ten requests whose bodies have not arrived fill the budget ...
        let mut waiting = Vec::new();
        for _ in 0..10 {
            let (tx, body) = tokio::sync::mpsc::channel::<Item>(1);
            let budget = budget.clone();
            waiting.push((
                tx,
                tokio::spawn(async move {
                    let mut body = Body::new(Channel(body));
                    read(&mut body, None, 10, &budget).await.map(|_| ())
                }),
            ));
        }
        while budget.in_use() < heads {
            tokio::task::yield_now().await;
        }
        assert_eq!(gauge.get(), heads as i64);
        // ... so the next is refused at once, before its body, and a
        // declared length over the limit is still a 413.
        let mut body = chunks(&[b"{}"]);
        assert_eq!(
            read(&mut body, None, 10, &budget).await.unwrap_err(),
            Refusal::OverBudget
        );
        let mut body = chunks(&[]);
        assert_eq!(
            read(&mut body, Some(11), 10, &budget).await.unwrap_err(),
            Refusal::TooLarge
        );
        // A request that ends gives its charge back.
        let (tx, task) = waiting.pop().unwrap();
        drop(tx);
        assert_eq!(task.await.unwrap(), Ok(()));
        assert_eq!(budget.in_use(), heads - HEAD_CHARGE_BYTES);
        let mut body = chunks(&[b"{}"]);
        assert!(read(&mut body, None, 10, &budget).await.is_ok());
        for (tx, task) in waiting {
            drop(tx);
            task.await.unwrap().unwrap();
        }
        assert_eq!((budget.in_use(), gauge.get()), (0, 0));
    }

    type Item = Result<Frame<Bytes>, std::io::Error>;

    /// A body of these frames, in order.
    struct Frames(std::vec::IntoIter<Item>);

    impl hyper::body::Body for Frames {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Item>> {
            Poll::Ready(self.0.next())
        }
    }

    /// A body of the frames sent on a channel, ended when it closes.
    struct Channel(tokio::sync::mpsc::Receiver<Item>);

    impl hyper::body::Body for Channel {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
            self.0.poll_recv(cx)
        }
    }

    fn frames(items: Vec<Item>) -> Body {
        Body::new(Frames(items.into_iter()))
    }

    fn chunks(parts: &[&[u8]]) -> Body {
        frames(
            parts
                .iter()
                .map(|p| Ok(Frame::data(Bytes::copy_from_slice(p))))
                .collect(),
        )
    }

    #[tokio::test]
    async fn bodies_are_read_under_the_limit_and_the_budget() {
        let (budget, gauge) = budget(MIB);
        // Undeclared: grows with the data, released on drop.
        let mut body = chunks(&[b"ab", b"cd", b"e"]);
        let read_whole = read(&mut body, None, 10, &budget).await.unwrap();
        assert_eq!(read_whole.bytes(), b"abcde");
        let held = HEAD_CHARGE_BYTES + 5;
        assert!(budget.in_use() >= held && gauge.get() >= held as i64);
        drop(read_whole);
        assert_eq!(budget.in_use(), 0);

        // Declared: reserved up front, exactly, besides the head charge.
        let mut body = chunks(&[b"abc"]);
        let read_whole = read(&mut body, Some(3), 10, &budget).await.unwrap();
        assert_eq!(
            (read_whole.bytes(), budget.in_use()),
            (&b"abc"[..], HEAD_CHARGE_BYTES + 3)
        );
        drop(read_whole);

        let mut body = chunks(&[b"0123456789", b"x"]);
        assert_eq!(
            read(&mut body, None, 10, &budget).await.unwrap_err(),
            Refusal::TooLarge
        );
        let mut body = chunks(&[]);
        assert_eq!(
            read(&mut body, Some(11), 10, &budget).await.unwrap_err(),
            Refusal::TooLarge
        );
        assert_eq!(
            read(&mut body, Some(u64::MAX), 10, &budget)
                .await
                .unwrap_err(),
            Refusal::TooLarge
        );
        assert_eq!(
            read(&mut body, Some(u64::MAX), usize::MAX, &budget)
                .await
                .unwrap_err(),
            Refusal::OverBudget
        );
        let mut body = chunks(&[b"abcd"]);
        assert_eq!(
            read(&mut body, Some(3), 10, &budget).await.unwrap_err(),
            Refusal::Unreadable
        );

        // Over the budget: refused, nothing kept.
        let big = vec![b' '; 512 * 1024];
        let mut body = chunks(&[&big, &big]);
        assert_eq!(
            read(&mut body, None, 4 * MIB as usize, &budget)
                .await
                .unwrap_err(),
            Refusal::OverBudget
        );
        let mut body = chunks(&[]);
        assert_eq!(
            read(&mut body, Some(MIB), 4 * MIB as usize, &budget)
                .await
                .unwrap_err(),
            Refusal::OverBudget
        );
        assert_eq!((budget.in_use(), gauge.get()), (0, 0));

        // A body that breaks off.
        let mut body = frames(vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err(std::io::Error::other("reset")),
        ]);
        assert_eq!(
            read(&mut body, None, 10, &budget).await.unwrap_err(),
            Refusal::Unreadable
        );
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn refusals_say_why() {
        let busy = Refusal::OverBudget.into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        assert_eq!(
            Refusal::TooLarge.into_response().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(Refusal::OverBudget.reason(), "budget");
        let mut headers = HeaderMap::new();
        assert_eq!(declared_length(&headers), None);
        headers.insert(header::CONTENT_LENGTH, "42".parse().unwrap());
        assert_eq!(declared_length(&headers), Some(42));
        headers.insert(header::CONTENT_LENGTH, "x".parse().unwrap());
        assert_eq!(declared_length(&headers), None);
    }
}
