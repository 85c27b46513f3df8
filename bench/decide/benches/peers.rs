//! portkey-guard against the same rules in Rego and in CEL: first the
//! verdicts must agree on every gateway Deployment fixture, then each is
//! timed from the same JSON text to a verdict.

use criterion::{criterion_group, criterion_main, Criterion};
use portkey_guard_bench::peers::{deployment_fixtures, Cel, Guard, Rego};
use portkey_guard_bench::review_for;
use std::hint::black_box;

/// Fixtures whose verdict needs quantities compared by meaning.
const CEL_WITHOUT_QUANTITY: &[&str] = &["quantities compare by meaning"];

fn agree_then_time(c: &mut Criterion) {
    let guard = Guard::default();
    let mut rego = Rego::default();
    let cel = Cel::default();
    let mut disagreements = Vec::new();
    let fixtures = deployment_fixtures();
    for (name, object) in &fixtures {
        let object_json = serde_json::to_string(object).expect("json");
        let review = serde_json::to_vec(&review_for(object)).expect("review");
        let expected = guard.allowed(&review);
        if rego.allowed(&object_json) != expected {
            disagreements.push(format!(
                "rego on {name:?}: guard allowed={expected}; rego says {}",
                rego.reasons(&object_json)
            ));
        }
        let cel_failed = cel.failed(&object_json);
        if CEL_WITHOUT_QUANTITY.contains(&name.as_str()) {
            // Without Kubernetes' quantity() library, CEL compares "0.1" and
            // "100m" as strings: the one expected difference, and only it.
            if !(expected && cel_failed.len() == 1 && cel_failed[0].starts_with("resources:")) {
                disagreements.push(format!(
                    "cel on {name:?}: expected only the resources difference, got {cel_failed:?}"
                ));
            }
        } else if cel_failed.is_empty() != expected {
            disagreements.push(format!(
                "cel on {name:?}: guard allowed={expected}; cel failed {cel_failed:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "verdicts differ:\n{}",
        disagreements.join("\n")
    );
    println!(
        "verdicts agree on {} gateway Deployment fixtures",
        fixtures.len()
    );

    for (name, object) in fixtures
        .iter()
        .filter(|(n, _)| n == "shipped" || n == "image latest")
    {
        let object_json = serde_json::to_string(object).expect("json");
        let review = serde_json::to_vec(&review_for(object)).expect("review");
        let mut group = c.benchmark_group(format!("peers/{name}"));
        group.bench_function("portkey-guard", |b| {
            b.iter(|| guard.allowed(black_box(&review)))
        });
        group.bench_function("rego (regorus)", |b| {
            b.iter(|| rego.allowed(black_box(&object_json)))
        });
        group.bench_function("cel (cel-interpreter)", |b| {
            b.iter(|| cel.allowed(black_box(&object_json)))
        });
        group.finish();
    }
}

criterion_group!(benches, agree_then_time);
criterion_main!(benches);
