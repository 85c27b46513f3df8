//! The Dockerfile agrees with the project: base images pinned by digest,
//! a build stage that runs on the build machine's platform and
//! cross-compiles, a dependency layer built from every workspace member's
//! manifest, `cargo build --locked --release` as CI builds, and OCI labels
//! that match Cargo.toml. (No container engine runs in CI: hadolint lints
//! the file in scripts/check-deploy.sh; building it is left to a machine
//! with buildx.)

mod common;

use common::repo_path;

fn dockerfile() -> String {
    std::fs::read_to_string(repo_path("Dockerfile")).expect("Dockerfile")
}

/// Instructions with their continuation lines joined, comments dropped.
fn instructions() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile().lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

fn cargo_toml() -> toml_like::Manifest {
    toml_like::Manifest::read(&repo_path("Cargo.toml"))
}

/// Just enough of Cargo.toml: `key = "value"` in [package], and the
/// workspace members.
mod toml_like {
    pub struct Manifest {
        pub version: String,
        pub license: String,
        pub members: Vec<String>,
    }

    impl Manifest {
        pub fn read(path: &std::path::Path) -> Manifest {
            let text = std::fs::read_to_string(path).unwrap();
            let mut section = "";
            let (mut version, mut license, mut members) = (None, None, Vec::new());
            for line in text.lines() {
                let line = line.trim();
                if line.starts_with('[') {
                    section = if line == "[package]" {
                        "package"
                    } else if line == "[workspace]" {
                        "workspace"
                    } else {
                        ""
                    };
                    continue;
                }
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let value = value.trim();
                match (section, key.trim()) {
                    ("package", "version") => version = Some(value.trim_matches('"').to_owned()),
                    ("package", "license") => license = Some(value.trim_matches('"').to_owned()),
                    ("workspace", "members") => {
                        members = value
                            .trim_matches(|c| c == '[' || c == ']')
                            .split(',')
                            .map(|m| m.trim().trim_matches('"').to_owned())
                            .filter(|m| !m.is_empty())
                            .collect()
                    }
                    _ => {}
                }
            }
            Manifest {
                version: version.expect("package.version"),
                license: license.expect("package.license"),
                members,
            }
        }
    }
}

fn arg_default(name: &str) -> String {
    let prefix = format!("ARG {name}=");
    instructions()
        .iter()
        .find_map(|i| i.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no ARG {name} with a default"))
}

#[test]
fn base_images_are_pinned_by_digest() {
    for arg in ["RUST_IMAGE", "RUNTIME_IMAGE"] {
        let image = arg_default(arg);
        let (_, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("{arg}={image}: not pinned by digest"));
        assert_eq!(digest.len(), 64, "{image}");
        assert!(digest
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
    let froms: Vec<String> = instructions()
        .into_iter()
        .filter(|i| i.starts_with("FROM "))
        .collect();
    assert_eq!(
        froms,
        [
            "FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS build",
            "FROM ${RUNTIME_IMAGE}"
        ],
        "the builder runs natively on the build platform; only the runtime is the target's"
    );
}

#[test]
fn the_build_cross_compiles_for_the_target_platform() {
    let all = instructions().join("\n");
    assert!(all.contains("ARG TARGETARCH"));
    assert!(all.contains("arm64) triple=aarch64-unknown-linux-gnu"));
    assert!(all.contains("rustup target add \"$triple\""));
    // A foreign target gets a C cross compiler and linker, not an emulator.
    assert!(all.contains("CARGO_TARGET_${env_triple^^}_LINKER=${gnu}-gcc"));
    assert!(!all.contains("qemu"), "no emulation");
}

#[test]
fn cargo_builds_exactly_as_ci_does() {
    let ci = std::fs::read_to_string(repo_path("scripts/test.sh")).unwrap();
    assert!(
        ci.contains("cargo build --locked --release"),
        "CI's build command changed: change the Dockerfile with it"
    );
    let builds: Vec<String> = instructions()
        .iter()
        .flat_map(|i| {
            i.split("&&")
                .map(str::trim)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|c| c.starts_with("cargo build"))
        .collect();
    assert_eq!(
        builds.len(),
        2,
        "the dependency layer and the real build: {builds:?}"
    );
    for build in builds {
        assert_eq!(
            build, "cargo build --locked --release --target \"$RUST_TARGET\"",
            "CI's command, for the target platform"
        );
    }
}

#[test]
fn the_dependency_layer_has_every_workspace_manifest() {
    let instructions = instructions();
    let position = |needle: &str| {
        instructions
            .iter()
            .position(|i| i.contains(needle))
            .unwrap_or_else(|| panic!("no instruction with {needle}"))
    };
    let sources = position("COPY src src");
    assert!(position("COPY Cargo.toml Cargo.lock ./") < sources);
    for member in cargo_toml().members.iter().filter(|m| *m != ".") {
        let copy = format!("COPY {member}/Cargo.toml {member}/Cargo.toml");
        assert!(position(&copy) < sources, "{copy} before the sources");
    }
    // The first cargo build (the dependency layer) runs before any source
    // is copied.
    assert!(position("cargo build") < sources);
}

#[test]
fn oci_labels_match_the_package() {
    let manifest = cargo_toml();
    assert_eq!(arg_default("VERSION"), manifest.version);
    let all = instructions().join("\n");
    for label in [
        "org.opencontainers.image.source=\"https://github.com/pc-tips/portkey-guard\"",
        "org.opencontainers.image.version=\"${VERSION}\"",
        "org.opencontainers.image.revision=\"${REVISION}\"",
        &format!("org.opencontainers.image.licenses=\"{}\"", manifest.license),
    ] {
        assert!(all.contains(label), "no label {label}");
    }
    // The shipped Deployment runs the image of this version.
    let deployment = std::fs::read_to_string(repo_path("deploy/webhook/deployment.yaml")).unwrap();
    assert!(deployment.contains(&format!(
        "image: ghcr.io/pc-tips/portkey-guard:{}",
        manifest.version
    )));
}

#[test]
fn the_runtime_is_non_root_and_the_context_holds_no_secrets() {
    let instructions = instructions();
    let runtime = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .unwrap();
    assert!(instructions[runtime..].contains(&"USER 65532:65532".to_owned()));
    let ignore = std::fs::read_to_string(repo_path(".dockerignore")).unwrap();
    for entry in ["target", ".git", "certs/out", "*.key"] {
        assert!(
            ignore.lines().any(|l| l.trim() == entry),
            "{entry} not ignored"
        );
    }
}
