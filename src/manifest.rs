//! Reading manifests for the offline commands: files, directories
//! (recursively: *.yaml, *.yml, *.json), multi-document YAML and standard
//! input. Every problem names `file:line`.

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One Kubernetes object read from input.
#[derive(Clone, Debug)]
pub struct Document {
    /// `deploy/portkey/deployment.yaml#1` (1-based document index).
    pub source: String,
    pub value: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("nothing to read: give a PATH, or - for standard input")]
    NoInput,
}

pub const STDIN: &str = "-";

/// Reads every document of every input, in order.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Document>, InputError> {
    if paths.is_empty() {
        return Err(InputError::NoInput);
    }
    let mut docs = Vec::new();
    for path in paths {
        if path.as_os_str() == STDIN {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| InputError::Read {
                    path: "<stdin>".to_owned(),
                    source,
                })?;
            docs.extend(parse_documents("<stdin>", &text)?);
            continue;
        }
        for file in files_under(path)? {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|source| InputError::Read {
                path: name.clone(),
                source,
            })?;
            docs.extend(parse_documents(&name, &text)?);
        }
    }
    Ok(docs)
}

fn files_under(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    let read_err = |source| InputError::Read {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            files.extend(files_under(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            files.push(entry);
        }
    }
    Ok(files)
}

/// Splits `text` into YAML documents at `---` lines, parses each, expands
/// `kind: List`, and checks every object has `apiVersion` and `kind`.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Document>, InputError> {
    let mut docs = Vec::new();
    let mut index = 0;
    for (start_line, chunk) in split_documents(text) {
        let invalid = |line: usize, message: String| InputError::Invalid {
            file: file.to_owned(),
            line,
            message,
        };
        let yaml: serde_yaml::Value = serde_yaml::from_str(&chunk).map_err(|e| {
            let line = start_line + e.location().map_or(0, |l| l.line().saturating_sub(1));
            // The location inside the document is already in `line`.
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or_default();
            invalid(line, format!("not valid YAML: {message}"))
        })?;
        if yaml.is_null() {
            continue; // an empty document, e.g. after a trailing `---`
        }
        let value: Value = serde_json::to_value(&yaml)
            .map_err(|e| invalid(start_line, format!("not representable as JSON: {e}")))?;
        let items = match value.get("kind").and_then(Value::as_str) {
            Some("List") if value.get("items").is_some_and(Value::is_array) => {
                value["items"].as_array().cloned().unwrap_or_default()
            }
            _ => vec![value],
        };
        for item in items {
            for field in ["apiVersion", "kind"] {
                if !item.get(field).is_some_and(Value::is_string) {
                    return Err(invalid(
                        start_line,
                        format!("not a Kubernetes object: `{field}` is missing"),
                    ));
                }
            }
            index += 1;
            docs.push(Document {
                source: format!("{file}#{index}"),
                value: item,
            });
        }
    }
    Ok(docs)
}

/// `(first line number, text)` of each document.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let separator = line == "---" || line.starts_with("--- ") || line == "...";
        if separator {
            if !current.trim().is_empty() {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = i + 2;
        } else {
            if current.is_empty() {
                start = i + 1;
            }
            current.push_str(line);
            current.push('\n');
        }
    }
    if !current.trim().is_empty() {
        docs.push((start, current));
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_with_line_numbers() {
        let text = "apiVersion: v1\nkind: ConfigMap\n---\n---\napiVersion: v1\nkind: Service\n";
        let docs = parse_documents("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].source, "f.yaml#2");
        assert_eq!(docs[1].value["kind"], "Service");
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: x\n  bad: indent\n";
        let err = parse_documents("f.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("f.yaml:6:"), "{err}");
        let err = parse_documents("g.yaml", "a: 1\n").unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:1:") && err.contains("apiVersion"),
            "{err}"
        );
        let err = parse_documents("h.yaml", "- 1\n- 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("apiVersion"), "{err}");
    }

    #[test]
    fn lists_are_expanded() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service}\n- {apiVersion: v1, kind: Pod}\n";
        let docs = parse_documents("l.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value["kind"], "Pod");
    }
}
