//! The Dockerfile agrees with the project: base images pinned by digest,
//! a build stage that runs on the build machine's platform and
//! cross-compiles, a dependency layer built from every workspace member's
//! manifest and an empty file for every target those manifests declare
//! (cargo refuses a manifest whose target is missing), `cargo build
//! --locked --release` as CI builds, and OCI labels
//! that match Cargo.toml. (No container engine runs in CI: hadolint lints
//! the file in scripts/check-deploy.sh; building it is left to a machine
//! with buildx.)

mod common;

use common::{repo_path, ScratchDir};

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

/// The dependency layer as the Dockerfile writes it: the files the COPY
/// instructions before it bring, the commands of its RUN before the build
/// (`mkdir -p`, `echo ... > FILE`, `touch`), and what they create.
struct DependencyLayer {
    copied: Vec<String>,
    commands: Vec<String>,
    dirs: Vec<String>,
    files: Vec<String>,
    removed: Vec<String>,
}

fn dependency_layer() -> DependencyLayer {
    let instructions = instructions();
    let run = instructions
        .iter()
        .position(|i| i.starts_with("RUN ") && i.contains("cargo build"))
        .expect("a RUN with cargo build");
    let mut copied = Vec::new();
    for instruction in &instructions[..run] {
        let Some(rest) = instruction.strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        assert!(!words[0].starts_with("--"), "{instruction}");
        let (sources, destination) = words.split_at(words.len() - 1);
        for source in sources {
            copied.push(if destination[0].ends_with('/') {
                format!("{}{source}", destination[0].trim_start_matches("./"))
            } else {
                destination[0].to_owned()
            });
        }
    }
    let mut layer = DependencyLayer {
        copied,
        commands: Vec::new(),
        dirs: Vec::new(),
        files: Vec::new(),
        removed: Vec::new(),
    };
    let body = instructions[run].strip_prefix("RUN ").unwrap();
    let mut before_build = true;
    for command in body.split("&&").map(str::trim) {
        if command.starts_with(". /cross.env") || command.starts_with("cargo build") {
            before_build = false;
            continue;
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["mkdir", "-p", dirs @ ..] => layer.dirs.extend(dirs.iter().map(|d| d.to_string())),
            ["touch", files @ ..] => layer.files.extend(files.iter().map(|f| f.to_string())),
            ["echo", .., ">", file] => layer.files.push(file.to_string()),
            ["rm", "-rf", paths @ ..] => {
                layer.removed.extend(paths.iter().map(|p| p.to_string()));
                continue;
            }
            _ if !before_build => continue,
            _ => panic!("the dependency layer runs {command:?}: teach this test what it creates"),
        }
        assert!(before_build, "{command:?} after the dependency build");
        layer.commands.push(command.to_owned());
    }
    layer
}

/// A target a member's manifest declares: `[lib]`, `[[bin]]`, `[[test]]`,
/// `[[bench]]`, `[[example]]`, each with the paths cargo looks for when
/// the manifest gives none.
#[derive(Debug)]
struct Declared {
    manifest: String,
    section: &'static str,
    name: String,
    candidates: Vec<String>,
}

fn declared_targets(member: &str) -> Vec<Declared> {
    let prefix = if member == "." {
        String::new()
    } else {
        format!("{member}/")
    };
    let manifest = format!("{prefix}Cargo.toml");
    let text = std::fs::read_to_string(repo_path(&manifest)).expect("a member manifest");
    let mut out = Vec::new();
    let mut current: Option<(&'static str, Option<String>, Option<String>)> = None;
    let mut finish = |current: Option<(&'static str, Option<String>, Option<String>)>| {
        let Some((section, name, path)) = current else {
            return;
        };
        let name = name.unwrap_or_else(|| format!("the {section} of {manifest}"));
        let candidates = match (path, section) {
            (Some(path), _) => vec![path],
            (None, "lib") => vec!["src/lib.rs".to_owned()],
            (None, "bin") => vec![
                format!("src/bin/{name}.rs"),
                format!("src/bin/{name}/main.rs"),
            ],
            (None, dir_section) => {
                let dir = match dir_section {
                    "test" => "tests",
                    "bench" => "benches",
                    _ => "examples",
                };
                vec![format!("{dir}/{name}.rs"), format!("{dir}/{name}/main.rs")]
            }
        };
        out.push(Declared {
            manifest: manifest.clone(),
            section,
            name,
            candidates: candidates
                .into_iter()
                .map(|c| format!("{prefix}{c}"))
                .collect(),
        });
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            finish(current.take());
            current = match line {
                "[lib]" => Some(("lib", None, None)),
                "[[bin]]" => Some(("bin", None, None)),
                "[[test]]" => Some(("test", None, None)),
                "[[bench]]" => Some(("bench", None, None)),
                "[[example]]" => Some(("example", None, None)),
                _ => None,
            };
            continue;
        }
        let (Some((_, name, path)), Some((key, value))) = (current.as_mut(), line.split_once('='))
        else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim() {
            "name" => *name = Some(value),
            "path" => *path = Some(value),
            _ => {}
        }
    }
    finish(current.take());
    out
}

#[test]
fn the_dependency_layer_stubs_every_declared_target() {
    let layer = dependency_layer();
    let mut members = cargo_toml().members;
    if !members.iter().any(|m| m == ".") {
        members.insert(0, ".".to_owned());
    }
    let mut declared = Vec::new();
    for member in &members {
        let prefix = if member == "." {
            String::new()
        } else {
            format!("{member}/")
        };
        declared.extend(declared_targets(member));
        // The targets cargo finds by itself where a member has them: a
        // member without its lib or main in the layer is another package.
        for (section, file) in [("lib", "src/lib.rs"), ("bin", "src/main.rs")] {
            let path = format!("{prefix}{file}");
            if repo_path(&path).exists() && !declared.iter().any(|d| d.candidates.contains(&path)) {
                declared.push(Declared {
                    manifest: format!("{prefix}Cargo.toml"),
                    section,
                    name: path.clone(),
                    candidates: vec![path],
                });
            }
        }
    }
    assert!(
        declared
            .iter()
            .any(|d| d.section == "test" && d.name == "cases"),
        "the root's [[test]] cases is read: {declared:?}"
    );
    assert!(
        declared.iter().filter(|d| d.section == "bench").count() >= 3,
        "the benchmark member's [[bench]] targets are read: {declared:?}"
    );
    for target in &declared {
        let stubbed = target
            .candidates
            .iter()
            .find(|c| layer.files.contains(c) || layer.copied.contains(c));
        let Some(stubbed) = stubbed else {
            panic!(
                "{} declares {} `{}`, which the build context lacks at the dependency \
                 layer: the stub step must create one of {:?} (it creates {:?})",
                target.manifest, target.section, target.name, target.candidates, layer.files
            );
        };
        // Its directory exists: made by `mkdir -p`, or a member's own
        // directory, made by the COPY of its manifest.
        let dir = stubbed.rsplit_once('/').map_or("", |(dir, _)| dir);
        assert!(
            dir.is_empty()
                || layer.dirs.iter().any(|d| d == dir)
                || layer
                    .copied
                    .iter()
                    .any(|c| c == &format!("{dir}/Cargo.toml")),
            "{stubbed}: no `mkdir -p {dir}` in the stub step"
        );
    }
    // What the layer removes must come back with the sources, or the real
    // build meets a manifest whose target is gone.
    let later_copies: Vec<String> = instructions()
        .into_iter()
        .filter_map(|i| i.strip_prefix("COPY ").map(str::to_owned))
        .filter_map(|i| i.split_whitespace().last().map(str::to_owned))
        .collect();
    for removed in &layer.removed {
        assert!(
            later_copies.contains(removed),
            "the dependency layer removes {removed}, which no later COPY brings back"
        );
    }
}

/// The stub step run for real: the manifests it leaves are read by cargo
/// (`cargo fetch --offline`, which parses every member's manifest and its
/// targets but compiles nothing).
#[test]
fn cargo_reads_the_manifests_the_dependency_layer_leaves() {
    let layer = dependency_layer();
    let dir = ScratchDir::new("image-layer");
    for copied in &layer.copied {
        let to = dir.join(copied);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo_path(copied), &to).unwrap_or_else(|e| panic!("{copied}: {e}"));
    }
    let script = layer.commands.join(" && ");
    let status = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&dir)
        .status()
        .expect("bash");
    assert!(status.success(), "the stub step failed: {script}");
    let host = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc's host triple");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args(["fetch", "--offline", "--locked", "--target", &host])
        .current_dir(&dir)
        .output()
        .expect("cargo fetch");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("failed to parse manifest"),
        "cargo refuses the dependency layer's manifests:\n{stderr}"
    );
    assert!(
        out.status.success(),
        "cargo fetch --offline failed for another reason (are the workspace's crates \
         fetched? `cargo fetch --locked` at the root):\n{stderr}"
    );
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
