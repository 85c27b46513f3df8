//! Image references against distribution/reference's own cases
//! (tests/fixtures/image-references): what the runtime accepts, portkey-guard
//! accepts, with the same tag and digest; what it refuses, portkey-guard
//! refuses.

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
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [input, _name, _domain, _path, tag, algo, encoded, err] = fields[..] else {
            panic!("malformed line {line:?}");
        };
        checked += 1;
        match (ImageRef::parse(input), err.is_empty()) {
            (Ok(r), true) => {
                let digest = (!algo.is_empty()).then(|| format!("{algo}:{encoded}"));
                if r.tag.as_deref() != (!tag.is_empty()).then_some(tag) || r.digest != digest {
                    problems.push(format!(
                        "{input}: got tag {:?} digest {:?}",
                        r.tag, r.digest
                    ));
                }
            }
            (Err(_), false) => {}
            (Ok(_), false) => problems.push(format!("{input}: accepted, upstream says {err}")),
            (Err(e), true) => problems.push(format!("{input}: refused ({e}), upstream accepts it")),
        }
    }
    assert!(checked > 40, "only {checked} cases read");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
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
