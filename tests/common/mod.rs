//! Shared helpers for the integration tests.
#![allow(dead_code)]

use portkey_guard::admission::{admit, Decision, Stage};
use portkey_guard::manifest::parse_documents;
use portkey_guard::offline::create_request;
use portkey_guard::policy::Policy;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A fresh directory for one test (`pg-<name>-<pid>` in the system's
/// temporary directory), removed when dropped unless the test is failing:
/// what a failed test leaves is there to read.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl ScratchDir {
    /// Writes `text` to `name` inside, making its directories; its path.
    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The directory's path as text, for command lines.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Every document of a YAML file.
pub fn load_yaml(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_documents(&path.display().to_string(), &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|d| d.value)
        .collect()
}

/// The only document of a YAML file.
pub fn load_one(path: &Path) -> Value {
    let mut docs = load_yaml(path);
    assert_eq!(docs.len(), 1, "{} holds one object", path.display());
    docs.remove(0)
}

/// Admits `object` as a create by `username` (offline user when `None`).
pub fn admit_as(object: &Value, username: Option<&str>, stage: Stage) -> Decision {
    let policy = Policy::default_policy();
    let mut req = create_request(object, &policy).expect("request");
    if let Some(user) = username {
        req.user_info.username = Some(user.to_owned());
    }
    admit(&req, &policy, stage).expect("admit")
}

/// Every `*.yaml` file directly in `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The gateway's manifests from deploy/portkey, with the strategies
/// ConfigMap built from its files the way kustomize generates it.
pub fn deploy_portkey() -> Vec<Value> {
    let dir = repo_path("deploy/portkey");
    let mut objects: Vec<Value> = yaml_files(&dir)
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .flat_map(|p| load_yaml(&p))
        .collect();
    let mut data = serde_json::Map::new();
    for file in std::fs::read_dir(dir.join("strategies")).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        data.insert(name, Value::String(std::fs::read_to_string(&path).unwrap()));
    }
    objects.push(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "portkey-model-configs", "namespace": "portkey",
                     "labels": {"app.kubernetes.io/name": "portkey-gateway"}},
        "data": data,
    }));
    for o in &mut objects {
        if o["kind"] != "Namespace" {
            o["metadata"]["namespace"] = Value::from("portkey");
        }
    }
    objects
}

pub mod api_server;
pub mod server;
