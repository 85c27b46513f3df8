//! Image references against distribution/reference's own cases
//! (tests/fixtures/image-references): what the runtime accepts, portkey-guard
//! accepts, with the same repository (upstream's name, normalised as
//! Docker does), tag and digest; what it refuses, portkey-guard refuses.

mod common;

use common::repo_path;
use portkey_guard::image::ImageRef;
use proptest::prelude::*;

#[test]
fn agrees_with_distribution_reference() {
    let table =
        std::fs::read_to_string(repo_path("tests/fixtures/image-references/references.tsv"))
            .unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut named = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [input, name, domain, path, tag, algo, encoded, err] = fields[..] else {
            panic!("malformed line {line:?}");
        };
        checked += 1;
        match (ImageRef::parse(input), err.is_empty()) {
            (Ok(r), true) => {
                // Upstream's name is its domain and path.
                let joined = if domain.is_empty() {
                    path.to_owned()
                } else {
                    format!("{domain}/{path}")
                };
                assert_eq!(joined, name, "the table's columns disagree for {input}");
                let repository = normalise(name);
                if r.repository != repository {
                    problems.push(format!(
                        "{input}: got repository {:?}, upstream's name {name:?} normalises to {repository:?}",
                        r.repository
                    ));
                }
                let digest = (!algo.is_empty()).then(|| format!("{algo}:{encoded}"));
                if r.tag.as_deref() != (!tag.is_empty()).then_some(tag) || r.digest != digest {
                    problems.push(format!(
                        "{input}: got tag {:?} digest {:?}",
                        r.tag, r.digest
                    ));
                }
                named += 1;
            }
            (Err(_), false) => {}
            (Ok(_), false) => problems.push(format!("{input}: accepted, upstream says {err}")),
            (Err(e), true) => problems.push(format!("{input}: refused ({e}), upstream accepts it")),
        }
    }
    assert!(checked > 40, "only {checked} cases read");
    assert!(named > 20, "only {named} accepted cases compared");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Upstream's name as Docker normalises it (ParseNormalizedNamed), the
/// rule src/image.rs follows: the first component is a registry when it
/// has a `.` or `:`, is `localhost`, or is not lowercase; otherwise the
/// name is on Docker Hub (`docker.io`, also spelt `index.docker.io` or
/// `registry-1.docker.io`), where a one-component name is in `library/`.
fn normalise(name: &str) -> String {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    let domain = match domain {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    };
    if domain == "docker.io" && !path.contains('/') {
        format!("docker.io/library/{path}")
    } else {
        format!("{domain}/{path}")
    }
}

#[test]
fn normalisation_follows_docker() {
    for (name, expected) in [
        ("test_com", "docker.io/library/test_com"),
        ("foo/foo_bar.com", "docker.io/foo/foo_bar.com"),
        ("test:5000/repo", "test:5000/repo"),
        ("localhost/repo", "localhost/repo"),
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        (
            "registry-1.docker.io/portkeyai/gateway",
            "docker.io/portkeyai/gateway",
        ),
    ] {
        assert_eq!(normalise(name), expected, "{name}");
    }
}

proptest! {
    #[test]
    fn never_panics(image in "\\PC{0,80}") {
        let _ = ImageRef::parse(&image);
        let _ = ImageRef::names_repository(&image, "docker.io/portkeyai/gateway");
    }

    #[test]
    fn never_panics_on_reference_shaped_text(image in "[a-zA-Z0-9.:/@_\\-\\[\\]%]{0,60}") {
        let _ = ImageRef::parse(&image);
    }
}
