//! Heap allocations per admission through the whole handler path the
//! server runs for each request (`review`: parse the body, decide, record
//! metrics, write the one JSON log line, serialise the response), counted
//! by a global allocator that wraps the system one.
//!
//!     cargo bench -p portkey-guard-bench --bench allocations
//!
//! Prints a Markdown table: allocations and bytes allocated per request,
//! for `/validate` and `/mutate` of each benchmark object (`-- <name>`:
//! only the objects whose name contains it), with the share of parsing the
//! review and of deciding (`admit`).

use kube_core::admission::AdmissionRequest;
use portkey_guard::admission::{admit, AdmissionReview, Stage};
use portkey_guard::object::RawObject;
use portkey_guard::policy::Policy;
use portkey_guard::server::webhook::{review, AppState, Webhook};
use portkey_guard_bench::{objects, review_for};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counters are only added to.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUNDS: u64 = 200;

/// Allocations and bytes per call of `f`, after one call to warm up.
fn per_call(mut f: impl FnMut()) -> (u64, u64) {
    f();
    let (count, bytes) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
    for _ in 0..ROUNDS {
        f();
    }
    (
        (ALLOCATIONS.load(Relaxed) - count) / ROUNDS,
        (BYTES.load(Relaxed) - bytes) / ROUNDS,
    )
}

fn main() {
    // The server's own log line, written where it costs nothing to keep.
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::INFO)
        .event_format(portkey_guard::server::logging::JsonLines)
        .init();
    let state = AppState::new(Policy::default_policy());
    let policy = Policy::default_policy();
    println!("| object | webhook | allocations | bytes allocated | of which parsing | of which deciding |");
    println!("|---|---|---|---|---|---|");
    // `-- <name>` measures only the objects whose name contains it.
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    for (name, object) in objects().into_iter().filter(|(n, _)| n.contains(&only)) {
        let body = serde_json::to_vec(&review_for(&object)).expect("body");
        let (parsing, _) = per_call(|| {
            let review: AdmissionReview = serde_json::from_slice(black_box(&body)).expect("review");
            let request: AdmissionRequest<RawObject> = review.try_into().expect("request");
            black_box(request);
        });
        for (webhook, stage) in [
            (Webhook::Validate, Stage::Validate),
            (Webhook::Mutate, Stage::Mutate),
        ] {
            let (count, bytes) = per_call(|| {
                black_box(review(&state, webhook, black_box(&body)));
            });
            // A fresh request each time, as the server has: what admit()
            // reads of an object is kept with it for the rest of the request.
            let (parsing_and_deciding, _) = per_call(|| {
                let review: AdmissionReview =
                    serde_json::from_slice(black_box(&body)).expect("review");
                let request: AdmissionRequest<RawObject> = review.try_into().expect("request");
                black_box(admit(black_box(&request), &policy, stage).expect("admit"));
            });
            let deciding = parsing_and_deciding - parsing;
            println!(
                "| {name} | /{} | {count} | {bytes} | {parsing} | {deciding} |",
                webhook.name()
            );
        }
    }
}
