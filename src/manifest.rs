//! Reading manifests for the offline commands: files, directories
//! (recursively: *.yaml, *.yml, *.json), multi-document YAML, `kind: List`,
//! standard input, and kustomizations rendered with `kubectl kustomize`.
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
    let kustomization = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file());
    let sources = kustomization
        .as_deref()
        .map(|k| resource_documents(dir, k, limits))
        .unwrap_or_default();
    let kustomization = kustomization.map_or_else(|| name.clone(), |p| p.display().to_string());
    let mut documents = Vec::new();
    for (i, doc) in rendered.into_iter().enumerate() {
        let source = sources.iter().find(|s| same_object(&s.value, &doc.value));
        documents.push(match source {
            Some(s) => Document {
                source: s.source.clone(),
                file: s.file.clone(),
                value: doc.value,
                positions: s.positions.clone(),
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

/// The documents of the files a kustomization lists as `resources`: where
/// a person edits the objects it renders.
fn resource_documents(dir: &Path, kustomization: &Path, limits: &Limits) -> Vec<Document> {
    let Ok(text) = read_file(kustomization, "", limits) else {
        return Vec::new();
    };
    let Ok(k) = yaml::parse_one(&text) else {
        return Vec::new();
    };
    let resources = k.get("resources").and_then(Value::as_array);
    let mut docs = Vec::new();
    for resource in resources.into_iter().flatten().filter_map(Value::as_str) {
        let path = dir.join(resource);
        if !path.is_file() {
            continue;
        }
        let name = path.display().to_string();
        if let Ok(text) = read_file(&path, &name, limits) {
            if let Ok(Some(found)) = parse_file(&name, &text, limits, Mode::Found) {
                docs.extend(found);
            }
        }
    }
    docs
}

fn same_object(a: &Value, b: &Value) -> bool {
    let name = |v: &Value| v.pointer("/metadata/name").cloned();
    a.get("kind") == b.get("kind") && name(a).is_some() && name(a) == name(b)
}

/// Splits `text` into documents, expands `kind: List`, and checks every
/// object has `apiVersion` and `kind`. Empty documents are left out.
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
    let looks_like_object = |v: &Value| v.get("apiVersion").is_some() || v.get("kind").is_some();
    if mode == Mode::Found && !parsed.iter().any(|d| looks_like_object(&d.value)) {
        return Ok(None);
    }
    let mut docs = Vec::new();
    for doc in parsed {
        let items: Vec<(Value, PosNode)> = match (doc.value, doc.positions) {
            (Value::Object(mut map), PosNode::Map(pos, mut entries))
                if map.get("kind").and_then(Value::as_str) == Some("List")
                    && map.get("items").is_some_and(Value::is_array) =>
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
            for field in ["apiVersion", "kind"] {
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
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        matches!(
            n,
            "kustomization.yaml" | "kustomization.yml" | "Kustomization"
        )
    })
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
                        reason: "not a Kubernetes object (no apiVersion or kind)".to_owned(),
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
    fn non_utf8_names_the_byte_offset() {
        let err = utf8(b"a: 1\nb: \xff\n".to_vec(), "x.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.yaml:2: not UTF-8: invalid byte at offset 8"
        );
    }
}
