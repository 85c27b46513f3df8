//! Reading manifests for the offline commands: files, directories
//! (recursively: *.yaml, *.yml, *.json), multi-document YAML, lists (any
//! object with `items`: `kind: List`, `DeploymentList`), standard input,
//! and kustomizations rendered with `kubectl kustomize`.
//!
//! Every document keeps the position of each of its fields, so a finding
//! can name `file:line:column`. Every problem names the file, and the line
//! and column or byte offset where there is one. Reading is bounded: file
//! size, documents per file, nesting depth, alias expansion, directory
//! depth, and directory symlink loops are detected.

use crate::yaml::{self, Pos, PosNode, YamlDocument};
use serde_json::Value;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One Kubernetes object read from input.
#[derive(Clone, Debug)]
pub struct Document {
    /// `deploy/portkey/deployment.yaml#1` (1-based document index).
    pub source: String,
    /// The file it was read from, as named on the command line (`<stdin>`
    /// for standard input).
    pub file: String,
    pub value: Value,
    /// Where each of its fields was written in `file`.
    pub positions: PosNode,
}

impl Document {
    /// The line and column of the field at `path` (a violation's display
    /// path), or of its nearest existing parent.
    pub fn locate(&self, path: &str) -> yaml::Located {
        self.positions.locate(&yaml::parse_path(path))
    }
}

/// A file that was read but holds no object to judge, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SkippedFile {
    pub file: String,
    pub reason: String,
}

/// What the inputs held.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub documents: Vec<Document>,
    pub skipped: Vec<SkippedFile>,
}

/// Bounds on reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one file (or of standard input, or of rendered output).
    pub max_file_bytes: u64,
    /// Nesting depth, documents per file and alias expansion.
    pub yaml: yaml::Limits,
    /// Directories below a PATH.
    pub max_directory_depth: usize,
}

/// 16 MiB: the API server takes requests of at most 3 MiB, and a rendered
/// bundle of many objects stays well below this.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            yaml: yaml::Limits::default(),
            max_directory_depth: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: larger than the limit of {limit} bytes (--max-file-bytes)")]
    TooLarge { file: String, limit: u64 },
    #[error("{file}:{line}: not UTF-8: invalid byte at offset {offset}")]
    NotUtf8 {
        file: String,
        line: usize,
        offset: usize,
    },
    #[error("{path}: directory symlink loop (it leads back to {target})")]
    SymlinkLoop { path: String, target: String },
    #[error("{path}: directories nested deeper than {limit} levels")]
    TooDeep { path: String, limit: usize },
    #[error("cannot render {dir} with `kubectl kustomize`: {message}")]
    Kustomize { dir: String, message: String },
    #[error("nothing to read: give a PATH, -k DIR, or - for standard input")]
    NoInput,
}

pub const STDIN: &str = "-";
const STDIN_NAME: &str = "<stdin>";

/// Reads every document of every input, in order.
pub fn read_inputs(paths: &[PathBuf], limits: &Limits) -> Result<Inputs, InputError> {
    if paths.is_empty() {
        return Err(InputError::NoInput);
    }
    let mut inputs = Inputs::default();
    for path in paths {
        if path.as_os_str() == STDIN {
            let text = read_bounded(std::io::stdin().lock(), STDIN_NAME, limits)?;
            inputs
                .documents
                .extend(parse_file(STDIN_NAME, &text, limits, Mode::Named)?.unwrap_or_default());
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| InputError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            let mut walk = Walk {
                limits,
                ancestors: Vec::new(),
                seen: HashSet::new(),
                inputs: &mut inputs,
            };
            walk.directory(path, 0)?;
        } else {
            let name = path.display().to_string();
            let text = read_file(path, &name, limits)?;
            inputs
                .documents
                .extend(parse_file(&name, &text, limits, Mode::Named)?.unwrap_or_default());
        }
    }
    Ok(inputs)
}

/// Renders `dir` with `kubectl kustomize` and reads the result. Each object
/// is attributed to the file in `dir` that defines it (same kind and name)
/// with that file's positions; objects kustomize generates are attributed
/// to the kustomization file itself.
pub fn read_kustomization(dir: &Path, limits: &Limits) -> Result<Inputs, InputError> {
    let name = dir.display().to_string();
    let fail = |message: String| InputError::Kustomize {
        dir: name.clone(),
        message,
    };
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| fail(format!("cannot run kubectl: {e}")))?;
    if !output.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    let rendered_name = format!("{name} (kubectl kustomize)");
    if output.stdout.len() as u64 > limits.max_file_bytes {
        return Err(InputError::TooLarge {
            file: rendered_name,
            limit: limits.max_file_bytes,
        });
    }
    let text = utf8(output.stdout, &rendered_name)?;
    let rendered = parse_file(&rendered_name, &text, limits, Mode::Named)?.unwrap_or_default();
    let kustomization = kustomization_file(dir);
    let sources = kustomization
        .as_deref()
        .map(|k| {
            let mut sources = Vec::new();
            let mut seen = HashSet::new();
            resource_documents(dir, k, limits, 0, &mut seen, &mut sources);
            sources
        })
        .unwrap_or_default();
    let kustomization = kustomization.map_or_else(|| name.clone(), |p| p.display().to_string());
    let mut documents = Vec::new();
    for (i, doc) in rendered.into_iter().enumerate() {
        // The name kustomize gives it first; then the name as written, for
        // the kinds its name transformers leave alone.
        let source = sources
            .iter()
            .find(|s| s.renders_as(&doc.value, true))
            .or_else(|| sources.iter().find(|s| s.renders_as(&doc.value, false)));
        documents.push(match source {
            Some(s) => Document {
                source: s.document.source.clone(),
                file: s.document.file.clone(),
                value: doc.value,
                positions: s.document.positions.clone(),
            },
            None => Document {
                source: format!("{kustomization}#generated-{}", i + 1),
                file: kustomization.clone(),
                value: doc.value,
                positions: PosNode::Scalar(Pos { line: 1, column: 1 }),
            },
        });
    }
    Ok(Inputs {
        documents,
        skipped: Vec::new(),
    })
}

/// An object as written in a file a kustomization reads, with the name and
/// namespace the kustomizations above it give it when rendered.
struct Source {
    document: Document,
    name: String,
    namespace: Option<String>,
}

impl Source {
    /// Whether `rendered` is this object: same kind, and the rendered name
    /// (`transformed`) or the name as written.
    fn renders_as(&self, rendered: &Value, transformed: bool) -> bool {
        let written = &self.document.value;
        let kind = written.get("kind");
        let rendered_name = rendered.pointer("/metadata/name").and_then(Value::as_str);
        let name = if transformed {
            Some(self.name.as_str())
        } else {
            written.pointer("/metadata/name").and_then(Value::as_str)
        };
        let rendered_namespace = rendered
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        let namespace_agrees = match (transformed, &self.namespace, rendered_namespace) {
            (true, Some(expected), Some(got)) => expected == got,
            _ => true,
        };
        kind.is_some()
            && kind == rendered.get("kind")
            && name.is_some()
            && name == rendered_name
            && namespace_agrees
    }
}

/// The objects of the files a kustomization lists as `resources` (and
/// `components`, and the older `bases`): where a person edits the objects
/// it renders. A directory entry is another kustomization, read the same
/// way, down to the directory depth limit and once each; remote entries
/// and anything unreadable are left out (kustomize itself reports them).
/// Names and namespaces are carried through each level's `namePrefix`,
/// `nameSuffix` and `namespace`.
fn resource_documents(
    dir: &Path,
    kustomization: &Path,
    limits: &Limits,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    out: &mut Vec<Source>,
) {
    if depth > limits.max_directory_depth {
        return;
    }
    let Ok(canonical) = dir.canonicalize() else {
        return;
    };
    if !seen.insert(canonical) {
        return;
    }
    let Ok(text) = read_file(kustomization, "", limits) else {
        return;
    };
    let Ok(k) = yaml::parse_one(&text) else {
        return;
    };
    let field = |name: &str| k.get(name).and_then(Value::as_str).unwrap_or_default();
    let (prefix, suffix) = (field("namePrefix"), field("nameSuffix"));
    let namespace = k.get("namespace").and_then(Value::as_str);
    let first = out.len();
    let entries = ["resources", "bases", "components"]
        .iter()
        .filter_map(|list| k.get(*list).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str);
    for entry in entries {
        let path = dir.join(entry);
        if path.is_dir() {
            let child = kustomization_file(&path);
            if let Some(child) = child {
                resource_documents(&path, &child, limits, depth + 1, seen, out);
            }
            continue;
        }
        if !path.is_file() {
            continue;
        }
        let name = lexically_normal(&path).display().to_string();
        let Ok(text) = read_file(&path, &name, limits) else {
            continue;
        };
        let Ok(Some(found)) = parse_file(&name, &text, limits, Mode::Found) else {
            continue;
        };
        out.extend(found.into_iter().map(|document| {
            Source {
                name: document
                    .value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                namespace: document
                    .value
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                document,
            }
        }));
    }
    for source in &mut out[first..] {
        source.name = format!("{prefix}{}{suffix}", source.name);
        if let Some(namespace) = namespace {
            source.namespace = Some(namespace.to_owned());
        }
    }
}

/// The names kustomize looks for in a directory, in its order.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomization file of `dir`, the first name kustomize looks for.
fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// `path` with `.` and `..` taken out by name, to name a file as a person
/// would write it (`overlay/../base/x.yaml` is `base/x.yaml`). The file is
/// read by its own path, so a symlinked directory is still followed.
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(normal.components().next_back(), Some(Component::Normal(_))) =>
            {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    if normal.as_os_str().is_empty() {
        normal.push(".");
    }
    normal
}

/// Splits `text` into documents, expands lists (any object with `items`),
/// and checks every object has `apiVersion` and `kind`. Empty documents
/// are left out.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Document>, InputError> {
    Ok(parse_file(file, text, &Limits::default(), Mode::Named)?.unwrap_or_default())
}

/// How strict to be with documents that are not Kubernetes objects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Named on the command line: every document must be an object.
    Named,
    /// Found in a directory: a file with no object at all is skipped.
    Found,
}

/// The objects of one file; `None` when a found file holds none.
fn parse_file(
    file: &str,
    text: &str,
    limits: &Limits,
    mode: Mode,
) -> Result<Option<Vec<Document>>, InputError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = yaml::parse_stream(text, &limits.yaml).map_err(|e| InputError::Invalid {
        file: file.to_owned(),
        line: e.line,
        column: e.column,
        message: format!("not valid YAML: {}", e.message),
    })?;
    let parsed: Vec<YamlDocument> = parsed.into_iter().filter(|d| !d.value.is_null()).collect();
    // A found file is judged only when it holds a Kubernetes object: well-
    // formed YAML or JSON with no document carrying both fields (a strategy
    // file, a Helm `Chart.yaml` with `apiVersion` but no `kind`) is not one.
    if mode == Mode::Found && !parsed.iter().any(|d| is_object(&d.value)) {
        return Ok(None);
    }
    let mut docs = Vec::new();
    for doc in parsed {
        let items: Vec<(Value, PosNode)> = match (doc.value, doc.positions) {
            // As kubectl reads it: any object with an `items` list is a
            // list (`List`, `DeploymentList`, ...), applied item by item.
            (Value::Object(mut map), PosNode::Map(pos, mut entries))
                if map.get("items").is_some_and(Value::is_array) =>
            {
                let items = match map.remove("items") {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                let item_positions = match entries.remove("items") {
                    Some((_, PosNode::Seq(_, p))) => p,
                    _ => Vec::new(),
                };
                let fallback = PosNode::Scalar(pos);
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let p = item_positions.get(i).cloned().unwrap_or(fallback.clone());
                        (item, p)
                    })
                    .collect()
            }
            (value, positions) => vec![(value, positions)],
        };
        for (item, positions) in items {
            let start = positions.pos();
            for field in OBJECT_FIELDS {
                if !item.get(field).is_some_and(Value::is_string) {
                    return Err(InputError::Invalid {
                        file: file.to_owned(),
                        line: start.line,
                        column: start.column,
                        message: format!("not a Kubernetes object: `{field}` is missing"),
                    });
                }
            }
            docs.push(Document {
                source: format!("{file}#{}", docs.len() + 1),
                file: file.to_owned(),
                value: item,
                positions,
            });
        }
    }
    Ok(Some(docs))
}

/// The fields that make a document a Kubernetes object.
const OBJECT_FIELDS: [&str; 2] = ["apiVersion", "kind"];

fn is_object(value: &Value) -> bool {
    OBJECT_FIELDS
        .iter()
        .all(|field| value.get(field).is_some_and(Value::is_string))
}

fn read_file(path: &Path, name: &str, limits: &Limits) -> Result<String, InputError> {
    let file = std::fs::File::open(path).map_err(|source| InputError::Read {
        path: name.to_owned(),
        source,
    })?;
    read_bounded(file, name, limits)
}

/// Reads at most the size limit (a device or a pipe has no size to check
/// up front).
fn read_bounded(reader: impl Read, name: &str, limits: &Limits) -> Result<String, InputError> {
    let mut bytes = Vec::new();
    reader
        .take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Read {
            path: name.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(InputError::TooLarge {
            file: name.to_owned(),
            limit: limits.max_file_bytes,
        });
    }
    utf8(bytes, name)
}

fn utf8(bytes: Vec<u8>, name: &str) -> Result<String, InputError> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        InputError::NotUtf8 {
            file: name.to_owned(),
            line,
            offset,
        }
    })
}

fn is_kustomization(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| KUSTOMIZATION_FILES.contains(&n))
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

/// A recursive directory read that notices symlink loops.
struct Walk<'a> {
    limits: &'a Limits,
    /// Canonical paths of the directories being read, outermost first.
    ancestors: Vec<PathBuf>,
    /// Canonical paths of every directory read so far.
    seen: HashSet<PathBuf>,
    inputs: &'a mut Inputs,
}

impl Walk<'_> {
    fn directory(&mut self, dir: &Path, depth: usize) -> Result<(), InputError> {
        let name = dir.display().to_string();
        let read_err = |source| InputError::Read {
            path: name.clone(),
            source,
        };
        if depth > self.limits.max_directory_depth {
            return Err(InputError::TooDeep {
                path: name,
                limit: self.limits.max_directory_depth,
            });
        }
        let canonical = dir.canonicalize().map_err(read_err)?;
        if self.ancestors.contains(&canonical) {
            return Err(InputError::SymlinkLoop {
                path: name,
                target: canonical.display().to_string(),
            });
        }
        if !self.seen.insert(canonical.clone()) {
            self.inputs.skipped.push(SkippedFile {
                file: name,
                reason: format!("already read as {}", canonical.display()),
            });
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        entries.sort();
        self.ancestors.push(canonical);
        for entry in entries {
            let entry_name = entry.display().to_string();
            let meta = match std::fs::metadata(&entry) {
                Ok(meta) => meta,
                // A dangling symlink that is not a manifest is no concern.
                Err(_) if !is_manifest(&entry) => continue,
                Err(source) => {
                    return Err(InputError::Read {
                        path: entry_name,
                        source,
                    })
                }
            };
            if meta.is_dir() {
                self.directory(&entry, depth + 1)?;
            } else if is_kustomization(&entry) {
                self.inputs.skipped.push(SkippedFile {
                    file: entry_name,
                    reason: "a kustomization: use -k DIR to render and check it".to_owned(),
                });
            } else if is_manifest(&entry) {
                let text = read_file(&entry, &entry_name, self.limits)?;
                match parse_file(&entry_name, &text, self.limits, Mode::Found)? {
                    Some(docs) => self.inputs.documents.extend(docs),
                    None => self.inputs.skipped.push(SkippedFile {
                        file: entry_name,
                        reason:
                            "not a Kubernetes object (no document has both apiVersion and kind)"
                                .to_owned(),
                    }),
                }
            }
        }
        self.ancestors.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_with_positions() {
        let text = "apiVersion: v1\nkind: ConfigMap\n---\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n";
        let docs = parse_documents("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].source, "f.yaml#2");
        assert_eq!(docs[1].value["kind"], "Service");
        let at = docs[1].locate("metadata.name").pos;
        assert_eq!((at.line, at.column), (8, 3));
        let at = docs[1].locate("spec.ports[0]");
        assert_eq!((at.pos.line, at.pos.column, at.exact), (5, 1, false));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let text = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: x\n  bad: indent\n";
        let err = parse_documents("f.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("f.yaml:6:"), "{err}");
        let err = parse_documents("g.yaml", "a: 1\n").unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:1:1:") && err.contains("apiVersion"),
            "{err}"
        );
        let err = parse_documents("h.yaml", "- 1\n- 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("apiVersion"), "{err}");
    }

    #[test]
    fn lists_are_expanded_with_item_positions() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service}\n- apiVersion: v1\n  kind: Pod\n";
        let docs = parse_documents("l.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value["kind"], "Pod");
        assert_eq!(docs[1].locate("kind").pos, Pos { line: 6, column: 3 });
        // A typed list is a list too: kubectl applies its items.
        let typed = "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- {apiVersion: apps/v1, kind: Deployment}\n";
        let docs = parse_documents("d.yaml", typed).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].value["kind"], "Deployment");
    }

    #[test]
    fn found_files_without_objects_are_skipped_named_ones_are_not() {
        let limits = Limits::default();
        assert!(
            parse_file("s.json", "{\"strategy\": {}}", &limits, Mode::Found)
                .unwrap()
                .is_none()
        );
        assert!(parse_file("s.json", "{\"strategy\": {}}", &limits, Mode::Named).is_err());
        // Helm's Chart.yaml: `apiVersion` but no `kind`.
        let chart = "apiVersion: v2\nname: gateway\nversion: 0.1.0\n";
        assert!(parse_file("Chart.yaml", chart, &limits, Mode::Found)
            .unwrap()
            .is_none());
        assert!(parse_file("Chart.yaml", chart, &limits, Mode::Named).is_err());
        // An object in the file: every document must be one.
        assert!(parse_file(
            "m.yaml",
            "apiVersion: v1\nkind: Pod\n---\na: 1\n",
            &limits,
            Mode::Found
        )
        .is_err());
    }

    #[test]
    fn kustomization_sources_follow_bases_with_their_names_and_end_on_loops() {
        let dir = std::env::temp_dir().join(format!("pg-sources-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\n",
        );
        // The base lists the overlay back: a loop, read once.
        write(
            "base/kustomization.yaml",
            "namePrefix: b-\nresources: [cm.yaml, ../overlay, https://example.com/x]\n",
        );
        write(
            "overlay/kustomization.yaml",
            "namespace: portkey\nnamePrefix: o-\nnameSuffix: -s\nresources: [../base, missing.yaml]\n",
        );
        let overlay = dir.join("overlay");
        let mut sources = Vec::new();
        resource_documents(
            &overlay,
            &overlay.join("kustomization.yaml"),
            &Limits::default(),
            0,
            &mut HashSet::new(),
            &mut sources,
        );
        assert_eq!(sources.len(), 1);
        let source = &sources[0];
        assert_eq!(source.name, "o-b-c-s");
        assert_eq!(source.namespace.as_deref(), Some("portkey"));
        assert_eq!(
            source.document.file,
            dir.join("base/cm.yaml").display().to_string()
        );
        let rendered = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "o-b-c-s", "namespace": "portkey"}});
        assert!(source.renders_as(&rendered, true));
        let elsewhere = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "o-b-c-s", "namespace": "other"}});
        assert!(!source.renders_as(&elsewhere, true));
        let untouched = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(!source.renders_as(&untouched, true));
        assert!(source.renders_as(&untouched, false));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_names_lose_dot_segments() {
        for (path, normal) in [
            ("ov/staging/../../base/d.yaml", "base/d.yaml"),
            ("./a/./b.yaml", "a/b.yaml"),
            ("../up/x.yaml", "../up/x.yaml"),
            ("/abs/ov/../b.yaml", "/abs/b.yaml"),
            ("a/..", "."),
        ] {
            assert_eq!(lexically_normal(Path::new(path)), Path::new(normal));
        }
    }

    #[test]
    fn non_utf8_names_the_byte_offset() {
        let err = utf8(b"a: 1\nb: \xff\n".to_vec(), "x.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.yaml:2: not UTF-8: invalid byte at offset 8"
        );
    }
}
