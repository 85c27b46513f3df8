//! SECURITY.md's claims point at tests that exist: every test function it
//! names is in the file it names, every case it quotes is in
//! tests/fixtures/cases.yaml, every end-to-end scenario it quotes is in
//! tests/e2e/run.sh. (A trailing "…" stands for any ending.)

mod common;

use common::repo_path;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_path(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `"name"` quotes in `text`, in order.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Whether `candidate` is what `quote` names: equal, or with "…" standing
/// for any text (the pieces in order, the first one a prefix when
/// `anchored`).
fn matches(quote: &str, candidate: &str, anchored: bool) -> bool {
    if !quote.contains('…') {
        return if anchored {
            candidate == quote
        } else {
            candidate.contains(quote)
        };
    }
    let mut rest = candidate;
    for (i, piece) in quote.split('…').map(str::trim).enumerate() {
        if piece.is_empty() {
            continue;
        }
        match rest.find(piece) {
            Some(0) => {}
            Some(_) if i > 0 || !anchored => {}
            _ => return false,
        }
        let at = rest.find(piece).unwrap_or_default();
        rest = &rest[at + piece.len()..];
    }
    true
}

#[test]
fn every_test_case_and_scenario_named_in_security_md_exists() {
    let security = read("SECURITY.md");
    let cases: Vec<String> = read("tests/fixtures/cases.yaml")
        .lines()
        .filter_map(|l| l.strip_prefix("- name: "))
        .map(|n| n.trim().trim_matches('"').to_owned())
        .collect();
    let e2e: Vec<String> = read("tests/e2e/run.sh")
        .lines()
        .filter_map(|l| l.strip_prefix("scenario \""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_owned)
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for row in security
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
    {
        let Some(covered) = row.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        for part in covered.split(';') {
            let part = part.trim();
            // `file.rs` `function`, `function`
            let ticks: Vec<&str> = part.split('`').skip(1).step_by(2).collect();
            if let Some((file, functions)) = ticks.split_first() {
                if file.ends_with(".rs") {
                    let source = read(file);
                    for function in functions {
                        checked += 1;
                        if !source.contains(&format!("fn {function}(")) {
                            problems.push(format!("{file} has no fn {function}"));
                        }
                    }
                }
            }
            let (list, names): (&Vec<String>, &str) = if part.starts_with("cases") {
                (&cases, "case")
            } else if part.starts_with("e2e") {
                (&e2e, "e2e scenario")
            } else {
                continue;
            };
            for quote in quoted(part) {
                checked += 1;
                let anchored = names == "case";
                let found = list.iter().any(|c| matches(&quote, c, anchored));
                if !found {
                    problems.push(format!("no {names} {quote:?}"));
                }
            }
        }
    }
    assert!(checked > 60, "only {checked} references read");
    assert!(
        problems.is_empty(),
        "SECURITY.md names what does not exist:\n{}",
        problems.join("\n")
    );
}
