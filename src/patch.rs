//! Building a JSON Patch that only ever *adds* what is absent.
//!
//! The builder applies every operation it records to its document, so later
//! additions see earlier ones (a parent added for one field is reused by the
//! next) and the final document is exactly what the API server stores after
//! the patch. It copies the document it is given only when it first adds
//! something, and builds a value only when it adds it: most objects arrive
//! complete.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde_json::{Map, Value};
use std::borrow::Cow;

pub struct PatchBuilder<'a> {
    doc: Cow<'a, Value>,
    ops: Vec<PatchOperation>,
}

impl<'a> PatchBuilder<'a> {
    pub fn new(doc: Value) -> Self {
        PatchBuilder {
            doc: Cow::Owned(doc),
            ops: Vec::new(),
        }
    }

    /// A builder over `doc`, copied on the first addition.
    pub fn over(doc: &'a Value) -> Self {
        PatchBuilder {
            doc: Cow::Borrowed(doc),
            ops: Vec::new(),
        }
    }

    /// The document with every recorded operation applied.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The patched document (none when nothing was added: the document
    /// was never copied) and the operations.
    pub fn finish(self) -> (Option<Value>, Vec<PatchOperation>) {
        let patched = match self.doc {
            Cow::Owned(doc) => Some(doc),
            Cow::Borrowed(_) => None,
        };
        (patched, self.ops)
    }

    /// Sets `path` to `value()` unless something non-null is already there.
    /// Missing parent objects are added first, one operation each. Returns
    /// whether anything was added. A parent that exists but is not an object
    /// (a list where a map belongs) is left alone: that is for validation.
    pub fn add_if_absent<S: AsRef<str>>(
        &mut self,
        path: &[S],
        value: impl FnOnce() -> Value,
    ) -> bool {
        let Some((leaf, parents)) = path.split_last() else {
            return false;
        };
        if !would_add(&self.doc, parents, leaf.as_ref()) {
            return false;
        }
        let value = value();
        let mut node = self.doc.to_mut();
        for (depth, segment) in parents.iter().enumerate() {
            let next = match node {
                Value::Object(map) => {
                    let segment = segment.as_ref();
                    let missing = map.get(segment).is_none_or(Value::is_null);
                    if missing {
                        map.insert(segment.to_owned(), Value::Object(Map::new()));
                        self.ops
                            .push(add_op(&path[..=depth], Value::Object(Map::new())));
                    }
                    map.get_mut(segment)
                }
                other => child_mut(other, segment.as_ref()),
            };
            match next {
                Some(child) => node = child,
                None => return false,
            }
        }
        let Value::Object(map) = node else {
            return false;
        };
        let leaf = leaf.as_ref();
        if !map.get(leaf).is_none_or(Value::is_null) {
            return false;
        }
        map.insert(leaf.to_owned(), value.clone());
        self.ops.push(add_op(path, value));
        true
    }

    /// The value at `path` in the document so far.
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Option<&Value> {
        path.iter()
            .try_fold(&*self.doc, |node, segment| child(node, segment.as_ref()))
    }

    /// Appends `value` to the list at `path`, creating the list (and its
    /// parents) when it is missing.
    pub fn append<S: AsRef<str>>(&mut self, path: &[S], value: Value) {
        if self.add_if_absent(path, || Value::Array(vec![value.clone()])) {
            return;
        }
        if !matches!(self.get(path), Some(Value::Array(_))) {
            return;
        }
        let items = path.iter().try_fold(self.doc.to_mut(), |node, segment| {
            child_mut(node, segment.as_ref())
        });
        if let Some(Value::Array(items)) = items {
            items.push(value.clone());
            let mut dash: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
            dash.push("-");
            self.ops.push(add_op(&dash, value));
        }
    }

    /// Number of operations so far; mutation steps compare it before and
    /// after to know whether they injected anything.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// Whether [`PatchBuilder::add_if_absent`] would add anything at
/// `parents` + `leaf`: the same walk, without changing anything.
fn would_add<S: AsRef<str>>(doc: &Value, parents: &[S], leaf: &str) -> bool {
    let mut node = doc;
    for segment in parents {
        node = match node {
            Value::Object(map) => match map.get(segment.as_ref()) {
                None | Some(Value::Null) => return true,
                Some(child) => child,
            },
            other => match child(other, segment.as_ref()) {
                Some(child) => child,
                None => return false,
            },
        };
    }
    matches!(node, Value::Object(map) if map.get(leaf).is_none_or(Value::is_null))
}

/// The member `segment` of an object, or the item at index `segment` of a
/// list.
fn child<'v>(node: &'v Value, segment: &str) -> Option<&'v Value> {
    match node {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

/// [`child`], to change it.
fn child_mut<'v>(node: &'v mut Value, segment: &str) -> Option<&'v mut Value> {
    match node {
        Value::Object(map) => map.get_mut(segment),
        Value::Array(items) => items.get_mut(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

/// The JSON Pointer of `path`, written into a string sized once.
pub fn pointer<S: AsRef<str>>(path: &[S]) -> PointerBuf {
    let size = path.iter().map(|s| s.as_ref().len() + 1).sum::<usize>();
    let mut encoded = String::with_capacity(size + size / 8);
    for segment in path {
        encoded.push('/');
        let segment = segment.as_ref();
        if !segment.contains(['~', '/']) {
            encoded.push_str(segment);
            continue;
        }
        for c in segment.chars() {
            match c {
                '~' => encoded.push_str("~0"),
                '/' => encoded.push_str("~1"),
                c => encoded.push(c),
            }
        }
    }
    // Every `~` written is followed by 0 or 1: it always parses.
    PointerBuf::parse(encoded)
        .unwrap_or_else(|_| PointerBuf::from_tokens(path.iter().map(AsRef::as_ref)))
}

fn add_op<S: AsRef<str>>(path: &[S], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: pointer(path),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(ops: &[PatchOperation]) -> Vec<String> {
        ops.iter().map(|op| op.path().to_string()).collect()
    }

    #[test]
    fn pointers_escape_tilde_then_slash() {
        for path in [
            &["a", "b"][..],
            &["a~b/c", "", "~1", "/"],
            &["ünï/cødé~"],
            &[],
        ] {
            assert_eq!(pointer(path), PointerBuf::from_tokens(path.iter().copied()));
        }
        assert_eq!(pointer(&["~1", "/"]).as_str(), "/~01/~1");
    }

    #[test]
    fn adds_missing_parents_first_and_escapes_keys() {
        let mut b = PatchBuilder::new(json!({"metadata": {}}));
        assert!(b.add_if_absent(
            &["metadata", "annotations", "prometheus.io/path"],
            || json!("/metrics")
        ));
        assert!(b.add_if_absent(&["metadata", "annotations", "a~b"], || json!("x")));
        let (doc, ops) = b.finish();
        assert_eq!(
            paths(&ops),
            [
                "/metadata/annotations",
                "/metadata/annotations/prometheus.io~1path",
                "/metadata/annotations/a~0b"
            ]
        );
        let mut original = json!({"metadata": {}});
        json_patch::patch(&mut original, &ops).unwrap();
        assert_eq!(Some(original), doc);
    }

    #[test]
    fn never_overwrites() {
        let mut b = PatchBuilder::new(json!({"a": {"b": 1}}));
        assert!(!b.add_if_absent(&["a", "b"], || json!(2)));
        assert!(b.is_empty());
        assert!(
            !b.add_if_absent(&["a", "b", "c"], || json!(2)),
            "scalar parent"
        );
        assert!(b.is_empty());
    }

    #[test]
    fn copies_and_builds_values_only_when_adding() {
        let doc = json!({"a": {"b": 1}, "list": [{"c": 2}]});
        let mut b = PatchBuilder::over(&doc);
        assert!(!b.add_if_absent(&["a", "b"], || unreachable!("present")));
        assert!(!b.add_if_absent(&["list", "0", "c"], || unreachable!("present")));
        assert!(!b.add_if_absent(&["list", "5", "c"], || unreachable!("no such item")));
        assert!(b.finish().0.is_none(), "not copied");
        let mut b = PatchBuilder::over(&doc);
        assert!(b.add_if_absent(&["list", "0", "d"], || json!(3)));
        let (changed, ops) = b.finish();
        assert!(changed.is_some());
        assert_eq!(ops.len(), 1);
        assert_eq!(doc["list"][0].get("d"), None, "the original is untouched");
    }

    #[test]
    fn null_counts_as_absent() {
        let mut b = PatchBuilder::new(json!({"a": null}));
        assert!(b.add_if_absent(&["a", "b"], || json!(1)));
        assert_eq!(b.doc(), &json!({"a": {"b": 1}}));
    }

    #[test]
    fn append_creates_or_extends_lists() {
        let mut b = PatchBuilder::new(json!({"spec": {"containers": [{"name": "c"}]}}));
        b.append(&["spec", "volumes"], json!({"name": "tmp"}));
        b.append(&["spec", "volumes"], json!({"name": "var-tmp"}));
        b.append(
            &["spec", "containers", "0", "volumeMounts"],
            json!({"mountPath": "/tmp"}),
        );
        let (doc, ops) = b.finish();
        assert_eq!(
            paths(&ops),
            [
                "/spec/volumes",
                "/spec/volumes/-",
                "/spec/containers/0/volumeMounts"
            ]
        );
        let mut original = json!({"spec": {"containers": [{"name": "c"}]}});
        json_patch::patch(&mut original, &ops).unwrap();
        assert_eq!(Some(original), doc);
    }
}
