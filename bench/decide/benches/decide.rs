//! Time per admission of `admit()` on realistic objects, and of the whole
//! HTTP handler path (body parse, decide, serialise) without the network.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portkey_guard::admission::{admit, Stage};
use portkey_guard::policy::Policy;
use portkey_guard::server::logging::JsonLines;
use portkey_guard::server::webhook::{review, AppState, Webhook};
use portkey_guard_bench::{objects, request_for, review_as_sent, review_for};
use std::hint::black_box;

fn decide(c: &mut Criterion) {
    let policy = Policy::default_policy();
    let mut group = c.benchmark_group("admit");
    for (name, object) in objects() {
        let request = request_for(&object);
        // A fresh copy per call (not timed): what admit() reads of an
        // object is kept with it for the rest of the request.
        for (stage_name, stage) in [
            ("mutate+validate", Stage::MutateThenValidate),
            ("validate", Stage::Validate),
        ] {
            group.bench_function(format!("{name}/{stage_name}"), |b| {
                b.iter_batched_ref(
                    || request.clone(),
                    |request| admit(black_box(request), &policy, stage).expect("admit"),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("review");
    for (name, object) in objects() {
        let body = serde_json::to_vec(&review_for(&object)).expect("body");
        group.bench_function(format!("{name}/parse"), |b| {
            b.iter(|| {
                serde_json::from_slice::<portkey_guard::admission::AdmissionReview>(black_box(
                    &body,
                ))
                .expect("review")
            })
        });
    }
    group.finish();

    // The handler as the server runs it, on the load benchmark's bodies:
    // parse, decide, relation step, response, metrics and the JSON log line
    // (written to a sink), without the network.
    let state = AppState::new(Policy::default_policy());
    let logger = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .event_format(JsonLines)
            .finish(),
    );
    let mut group = c.benchmark_group("handler");
    for (name, webhook, file) in [
        (
            "compliant-deployment/validate",
            Webhook::Validate,
            "compliant-deployment.json",
        ),
        (
            "bare-deployment/mutate",
            Webhook::Mutate,
            "bare-deployment.json",
        ),
        // What a living namespace sends most: an object that needs nothing.
        (
            "compliant-deployment/mutate",
            Webhook::Mutate,
            "compliant-deployment.json",
        ),
    ] {
        let body = review_as_sent(file);
        group.bench_function(format!("{name}/logged"), |b| {
            tracing::dispatcher::with_default(&logger, || {
                b.iter(|| review(&state, webhook, black_box(&body)))
            })
        });
        group.bench_function(format!("{name}/unlogged"), |b| {
            b.iter(|| review(&state, webhook, black_box(&body)))
        });
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
