//! Building a JSON Patch that only ever *adds* what is absent.
//!
//! The builder applies every addition to its document, so later additions
//! see earlier ones (a parent added for one field is reused by the next)
//! and the final document is exactly what the API server stores after the
//! patch. It copies the document it is given only when it first adds
//! something, and builds a value only when it adds it: most objects arrive
//! complete. Given an object as received, it reads it into a tree only
//! when it first changes or reads a list, or adds (or when the text has no
//! index: an escaped key): until then whether a place is absent is
//! answered from the object's text ([`MemberIndex`]).
//!
//! One operation is recorded per place the original lacked: what is added
//! later inside an added value is part of that value, which is read from
//! the final document when the patch is finished. A bare pod spec gets one
//! `add` of its whole `securityContext`, not one per field.

use crate::object::{list_index, Doc, MemberIndex, RawObject};
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde_json::{Map, Value};
use std::borrow::Cow;

pub struct PatchBuilder<'a> {
    doc: Document<'a>,
    /// The operations so far, without their values (see the module's text).
    ops: Vec<Addition>,
    /// Every addition, those inside an earlier one included.
    additions: usize,
    /// The place of the addition being recorded, as pointer text: written
    /// over for each, and copied only into an operation.
    place: String,
}

/// What the builder adds to.
enum Document<'a> {
    /// An object as received, with nothing added yet: read into a tree of
    /// the builder's own on the first addition, `append` or `get`, or when
    /// its text has no index. The index is built on the first question.
    Text {
        object: &'a RawObject,
        index: Option<MemberIndex<'a>>,
    },
    /// A tree, borrowed until the first addition copies it.
    Tree(Cow<'a, Value>),
}

/// One `add` operation: where it adds, as JSON Pointer text (for an
/// append, at the index the item took), and whether it appends (its path
/// ends in `-`).
struct Addition {
    at: String,
    appends: bool,
}

impl Addition {
    /// Whether `place` (pointer text) is this addition's place or one
    /// inside it. Each place has one spelling as a pointer (a token's `/`
    /// and `~` have one escape each, a list index one form), so this is a
    /// prefix that ends where a token does.
    fn holds(&self, place: &str) -> bool {
        place
            .strip_prefix(self.at.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The operation, with what it adds taken from the finished document
    /// by `value_of`. None only if its place were not a pointer, which
    /// [`encode_into`] never writes.
    fn into_operation(
        self,
        doc: &mut Value,
        value_of: fn(&mut Value) -> Value,
    ) -> Option<PatchOperation> {
        let Addition { at, appends } = self;
        let at = PointerBuf::parse(at).ok()?;
        let value = (at.tokens())
            .try_fold(doc, |node, token| child_mut(node, &token.decoded()))
            .map_or(Value::Null, value_of);
        let path = match at.parent() {
            Some(list) if appends => list.with_trailing_token("-"),
            _ => at,
        };
        Some(PatchOperation::Add(AddOperation { path, value }))
    }
}

impl<'a> PatchBuilder<'a> {
    pub fn new(doc: Value) -> Self {
        Self::with(Document::Tree(Cow::Owned(doc)))
    }

    /// A builder over `doc`, copied on the first addition.
    pub fn over(doc: &'a Value) -> Self {
        Self::with(Document::Tree(Cow::Borrowed(doc)))
    }

    /// A builder over `doc`. An object as received is read into a tree
    /// only when something is added to it.
    pub fn of(doc: Doc<'a>) -> Self {
        match doc {
            Doc::Tree(tree) => Self::over(tree),
            Doc::Object(object) => Self::with(Document::Text {
                object,
                index: None,
            }),
        }
    }

    fn with(doc: Document<'a>) -> Self {
        PatchBuilder {
            doc,
            ops: Vec::new(),
            additions: 0,
            place: String::new(),
        }
    }

    /// The document with every recorded operation applied.
    pub fn doc(&self) -> Doc<'_> {
        match &self.doc {
            Document::Text { object, .. } => Doc::Object(object),
            Document::Tree(tree) => Doc::Tree(tree),
        }
    }

    /// The tree, read from the object's text if it was not yet.
    fn tree(&mut self) -> &mut Cow<'a, Value> {
        if let Document::Text { object, .. } = self.doc {
            self.doc = Document::Tree(Cow::Owned(object.to_json()));
        }
        match &mut self.doc {
            Document::Tree(tree) => tree,
            Document::Text { .. } => unreachable!("read into a tree above"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The patched document (none when nothing was added) and the
    /// operations.
    pub fn finish(self) -> (Option<Value>, Vec<PatchOperation>) {
        match self.operations(|value| value.clone()) {
            Some((doc, ops)) => (Some(doc), ops),
            None => (None, Vec::new()),
        }
    }

    /// The operations alone, their values moved out of the document: what
    /// the mutating webhook sends, with no use for the patched document.
    /// No operation's place is inside another's, so each value is whole.
    pub fn into_patch(self) -> Vec<PatchOperation> {
        self.operations(Value::take)
            .map(|(_, ops)| ops)
            .unwrap_or_default()
    }

    /// The patched document and the operations, each with the value
    /// `value_of` gives for its place; none when nothing was added.
    fn operations(self, value_of: fn(&mut Value) -> Value) -> Option<(Value, Vec<PatchOperation>)> {
        if self.ops.is_empty() {
            return None;
        }
        let mut doc = match self.doc {
            Document::Tree(tree) => tree.into_owned(),
            // Not reached: an operation is recorded only on a tree.
            Document::Text { object, .. } => object.to_json(),
        };
        let ops = (self.ops.into_iter())
            .filter_map(|op| op.into_operation(&mut doc, value_of))
            .collect();
        Some((doc, ops))
    }

    /// Records an addition at `place` (for an append, the list and the
    /// index its item took): one operation, unless it is inside an earlier
    /// addition.
    fn record<S: AsRef<str>>(&mut self, place: &[S], appended_at: Option<usize>) {
        self.additions += 1;
        encode_into(place, &mut self.place);
        if self.ops.iter().rev().any(|op| op.holds(&self.place)) {
            return;
        }
        let mut at = String::with_capacity(self.place.len() + 8);
        at.push_str(&self.place);
        if let Some(index) = appended_at {
            at.push('/');
            at.push_str(itoa::Buffer::new().format(index));
        }
        self.ops.push(Addition {
            at,
            appends: appended_at.is_some(),
        });
    }

    /// Sets `path` to `value()` unless something non-null is already there.
    /// Missing parent objects are added first. Returns whether anything was
    /// added. A parent that exists but is not an object (a list where a map
    /// belongs) is left alone: that is for validation.
    pub fn add_if_absent<S: AsRef<str>>(
        &mut self,
        path: &[S],
        value: impl FnOnce() -> Value,
    ) -> bool {
        // A document shared with its owner is copied on the first
        // addition, and an object's text read into a tree, so they are
        // looked at before anything is added; a tree of the builder's own
        // is added to in one walk.
        if !matches!(self.doc, Document::Tree(Cow::Owned(_))) && !self.would_add(path) {
            return false;
        }
        self.add(path, value)
    }

    /// Whether [`PatchBuilder::add_if_absent`] would add anything at `path`.
    fn would_add<S: AsRef<str>>(&mut self, path: &[S]) -> bool {
        let Some((leaf, parents)) = path.split_last() else {
            return false;
        };
        if let Document::Text { object, index } = &mut self.doc {
            if index.is_none() {
                *index = MemberIndex::of(object.text());
            }
            if let Some(index) = index {
                return index.would_add(parents, leaf.as_ref());
            }
        }
        would_add(self.tree(), parents, leaf.as_ref())
    }

    /// [`PatchBuilder::add_if_absent`] on the document itself: parents
    /// are added only where one is missing, and everything below a missing
    /// parent is absent, so nothing is added unless the value is.
    fn add<S: AsRef<str>>(&mut self, path: &[S], value: impl FnOnce() -> Value) -> bool {
        let Some((leaf, parents)) = path.split_last() else {
            return false;
        };
        // The first parent added holds everything below it.
        let mut first_added = None;
        let mut node = self.tree().to_mut();
        for (depth, segment) in parents.iter().enumerate() {
            let next = match node {
                Value::Object(map) => {
                    let segment = segment.as_ref();
                    if map.get(segment).is_none_or(Value::is_null) {
                        map.insert(segment.to_owned(), Value::Object(Map::new()));
                        first_added = first_added.or(Some(depth));
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
        map.insert(leaf.to_owned(), value());
        let added = first_added.map_or(path, |depth| &path[..=depth]);
        self.record(added, None);
        true
    }

    /// The value at `path` in the document so far (read into a tree).
    pub fn get<S: AsRef<str>>(&mut self, path: &[S]) -> Option<&Value> {
        path.iter().try_fold(&**self.tree(), |node, segment| {
            child(node, segment.as_ref())
        })
    }

    /// Appends `value` to the list at `path`, creating the list (and its
    /// parents) when it is missing.
    pub fn append<S: AsRef<str>>(&mut self, path: &[S], value: Value) {
        if self.would_add(path) {
            self.add(path, || Value::Array(vec![value]));
            return;
        }
        if !matches!(self.get(path), Some(Value::Array(_))) {
            return;
        }
        let items = path.iter().try_fold(self.tree().to_mut(), |node, segment| {
            child_mut(node, segment.as_ref())
        });
        if let Some(Value::Array(items)) = items {
            items.push(value);
            let index = items.len() - 1;
            self.record(path, Some(index));
        }
    }

    /// Number of additions so far (those inside an earlier one included);
    /// mutation steps compare it before and after to know whether they
    /// injected anything.
    pub fn len(&self) -> usize {
        self.additions
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
        Value::Array(items) => items.get(list_index(segment)?),
        _ => None,
    }
}

/// [`child`], to change it.
fn child_mut<'v>(node: &'v mut Value, segment: &str) -> Option<&'v mut Value> {
    match node {
        Value::Object(map) => map.get_mut(segment),
        Value::Array(items) => items.get_mut(list_index(segment)?),
        _ => None,
    }
}

/// The JSON Pointer text of `path`, written over `encoded`; every `~` it
/// writes is followed by `0` or `1`, so it parses.
fn encode_into<S: AsRef<str>>(path: &[S], encoded: &mut String) {
    encoded.clear();
    for segment in path {
        encoded.push('/');
        let segment = segment.as_ref();
        // Segments are short: a plain loop beats memchr's setup.
        if !segment.bytes().any(|b| b == b'~' || b == b'/') {
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
}

#[cfg(test)]
fn encode<S: AsRef<str>>(path: &[S]) -> String {
    let mut encoded = String::new();
    encode_into(path, &mut encoded);
    encoded
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
            let at = PointerBuf::parse(encode(path)).unwrap();
            assert_eq!(at, PointerBuf::from_tokens(path.iter().copied()));
        }
        assert_eq!(encode(&["~1", "/"]), "/~01/~1");
    }

    /// Finishes `b` both ways, checks they agree and that the operations
    /// turn `original` into the patched document; the operations.
    fn finished(b: impl Fn() -> PatchBuilder<'static>, original: Value) -> Vec<PatchOperation> {
        let (doc, ops) = b().finish();
        assert_eq!(b().into_patch(), ops, "the webhook's patch is the same");
        let mut patched = original;
        json_patch::patch(&mut patched, &ops).unwrap();
        assert_eq!(Some(patched), doc);
        ops
    }

    #[test]
    fn an_added_parent_holds_what_is_added_inside_it() {
        let build = || {
            let mut b = PatchBuilder::new(json!({"metadata": {}}));
            assert!(b.add_if_absent(
                &["metadata", "annotations", "prometheus.io/path"],
                || json!("/metrics")
            ));
            assert!(b.add_if_absent(&["metadata", "annotations", "a~b"], || json!("x")));
            assert!(b.add_if_absent(&["metadata", "labels", "x"], || json!({})));
            assert!(b.add_if_absent(&["metadata", "labels", "x", "y"], || json!(1)));
            assert_eq!(b.len(), 4, "every addition counts");
            b
        };
        let ops = finished(build, json!({"metadata": {}}));
        assert_eq!(
            serde_json::to_value(&ops).unwrap(),
            json!([
                {"op": "add", "path": "/metadata/annotations",
                 "value": {"prometheus.io/path": "/metrics", "a~b": "x"}},
                {"op": "add", "path": "/metadata/labels", "value": {"x": {"y": 1}}},
            ])
        );
    }

    #[test]
    fn keys_are_escaped_and_matched_escaped() {
        let original = json!({"metadata": {"annotations": {}}});
        let build = || {
            let mut b = PatchBuilder::new(json!({"metadata": {"annotations": {}}}));
            assert!(b.add_if_absent(&["metadata", "annotations", "a/b"], || json!({})));
            assert!(b.add_if_absent(&["metadata", "annotations", "a~b"], || json!({})));
            assert!(b.add_if_absent(&["metadata", "annotations", "a~b", "c"], || json!(1)));
            assert!(b.add_if_absent(&["metadata", "annotations", "a/b", "~"], || json!(2)));
            b
        };
        let ops = finished(build, original);
        assert_eq!(
            paths(&ops),
            ["/metadata/annotations/a~1b", "/metadata/annotations/a~0b"]
        );
        let added = |at: &[&str]| Addition {
            at: encode(at),
            appends: false,
        };
        let holds = |op: &Addition, place: &[&str]| op.holds(&encode(place));
        assert!(holds(&added(&["a~b"]), &["a~b", "c"]));
        assert!(holds(&added(&["a/b"]), &["a/b"]));
        assert!(!holds(&added(&["a/b"]), &["a~b"]));
        assert!(!holds(&added(&["a"]), &["a", "b"][1..]));
        assert!(!holds(&added(&["a"]), &["ab"]), "a key is not a prefix");
        assert!(!holds(&added(&["a", "b"]), &["a"]), "nor its parent");
        assert!(holds(&added(&[]), &["a"]), "the root holds all");
    }

    #[test]
    fn list_indexes_have_one_spelling() {
        assert_eq!(list_index("0"), Some(0));
        assert_eq!(list_index("12"), Some(12));
        for other in ["", "01", "+1", "-1", "1a", "-", "00"] {
            assert_eq!(list_index(other), None, "{other:?}");
        }
        let mut b = PatchBuilder::new(json!({"l": [0]}));
        b.append(&["l"], json!({}));
        assert!(!b.add_if_absent(&["l", "01", "x"], || json!(1)));
        assert!(b.add_if_absent(&["l", "1", "x"], || json!(1)));
        assert_eq!(paths(&b.finish().1), ["/l/-"]);
    }

    /// Documents and paths over a few keys, escapes and list indexes
    /// included, so that additions meet, nest and miss.
    fn segment() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::sample::select(vec!["a", "b", "a/b", "a~b", "0", "1", "01"])
            .prop_map(str::to_owned)
    }

    fn document() -> impl proptest::strategy::Strategy<Value = Value> {
        let leaf = proptest::prop_oneof![Just(Value::Null), (0..3u8).prop_map(Value::from)];
        leaf.prop_recursive(3, 24, 3, |inner| {
            proptest::prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map(segment(), inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    use proptest::prelude::{Just, Strategy};

    /// Appends (`true`) or additions of `{"v": n}`; whether each added
    /// anything.
    fn take_steps<'a>(
        mut b: PatchBuilder<'a>,
        steps: &[(bool, Vec<String>, u8)],
    ) -> (Vec<bool>, PatchBuilder<'a>) {
        let added = (steps.iter())
            .map(|(appends, path, value)| {
                let before = b.len();
                if *appends {
                    b.append(path, json!(value));
                } else {
                    b.add_if_absent(path, || json!({ "v": value }));
                }
                b.len() > before
            })
            .collect();
        (added, b)
    }

    proptest::proptest! {
        /// Over any document, the builder answers the same whether it
        /// owns the document or borrows it; its operations turn the
        /// original into the document it built; no operation's place is
        /// inside another's; and the webhook's patch is the same.
        #[test]
        fn any_additions_patch_the_original_into_the_built_document(
            original in proptest::prop_oneof![
                document(),
                document().prop_map(|d| json!({"a": d})),
            ],
            steps in proptest::collection::vec(
                (proptest::bool::ANY, proptest::collection::vec(segment(), 1..5), 0..3u8),
                1..12,
            ),
        ) {
            let run = |b| take_steps(b, &steps);
            let (added, owned) = run(PatchBuilder::new(original.clone()));
            let (added_over, borrowed) = run(PatchBuilder::over(&original));
            proptest::prop_assert_eq!(&added, &added_over);
            let (doc, ops) = owned.finish();
            let (doc_over, ops_over) = borrowed.finish();
            proptest::prop_assert_eq!(&doc, &doc_over);
            proptest::prop_assert_eq!(&ops, &ops_over);
            proptest::prop_assert_eq!(doc.is_some(), added.contains(&true));
            let (_, again) = run(PatchBuilder::new(original.clone()));
            proptest::prop_assert_eq!(&again.into_patch(), &ops);
            // An object as received: the same answers from its text, read
            // into a tree only by an addition.
            if let Ok(object) = serde_json::value::to_raw_value(&original)
                .and_then(RawObject::from_text)
            {
                let (added_text, from_text) = run(PatchBuilder::of(Doc::Object(&object)));
                proptest::prop_assert_eq!(&added_text, &added);
                proptest::prop_assert_eq!(from_text.finish(), (doc.clone(), ops.clone()));
            }
            // An append's path names its list, not the item it added.
            let places: Vec<String> =
                paths(&ops).into_iter().filter(|p| !p.ends_with("/-")).collect();
            for (i, a) in places.iter().enumerate() {
                for (j, b) in places.iter().enumerate() {
                    let inside = b.strip_prefix(a.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
                    proptest::prop_assert!(i == j || !inside, "{} is inside {}", b, a);
                }
            }
            let mut patched = original.clone();
            proptest::prop_assert!(json_patch::patch(&mut patched, &ops).is_ok());
            proptest::prop_assert_eq!(Some(patched), doc.or(Some(original)));
        }
    }

    /// Object texts, compact or indented, to ask the index about.
    fn text_of(doc: &Value, indented: bool) -> String {
        if indented {
            serde_json::to_string_pretty(doc).unwrap()
        } else {
            serde_json::to_string(doc).unwrap()
        }
    }

    proptest::proptest! {
        /// The index of an object's text answers every question as the
        /// walk of its tree does.
        #[test]
        fn the_index_answers_as_the_tree_does(
            doc in document(),
            indented: bool,
            paths in proptest::collection::vec(proptest::collection::vec(segment(), 1..5), 1..16),
        ) {
            let text = text_of(&doc, indented);
            let index = MemberIndex::of(&text);
            proptest::prop_assert!(index.is_some(), "no escapes in these keys");
            let index = index.unwrap();
            for path in &paths {
                let (leaf, parents) = path.split_last().unwrap();
                proptest::prop_assert_eq!(
                    index.would_add(parents, leaf),
                    would_add(&doc, parents, leaf),
                    "{:?} in {}", path, text
                );
            }
        }
    }

    #[test]
    fn the_index_reads_the_last_of_a_key_given_twice_and_no_escaped_key() {
        let text = r#"{"a": {"b": 1}, "l": [null, {"c": 2}], "a": {"c": null}}"#;
        let index = MemberIndex::of(text).unwrap();
        let tree: Value = serde_json::from_str(text).unwrap();
        for path in [
            &["a", "b"][..],
            &["a", "c"],
            &["a", "c", "d"],
            &["l", "0", "x"],
            &["l", "1", "c"],
            &["l", "1", "d"],
            &["l", "2", "c"],
            &["l", "01", "c"],
            &["x", "y"],
        ] {
            let (leaf, parents) = path.split_last().unwrap();
            assert_eq!(
                index.would_add(parents, leaf),
                would_add(&tree, parents, leaf),
                "{path:?}"
            );
        }
        assert!(index.would_add(&["a"], "b"), "the last `a` has no `b`");
        // A key with an escape is not the key as written: no index, and
        // the builder reads the object into a tree instead.
        let escaped = r#"{"\u0061": {"b": 1}}"#;
        assert!(MemberIndex::of(escaped).is_none());
        let object: RawObject = serde_json::from_str(escaped).unwrap();
        let mut b = PatchBuilder::of(Doc::Object(&object));
        assert!(!b.add_if_absent(&["a", "b"], || unreachable!("present")));
        assert!(b.add_if_absent(&["a", "c"], || json!(2)));
        assert_eq!(paths(&b.finish().1), ["/a/c"]);
    }

    #[test]
    fn an_object_needing_nothing_is_never_read_into_a_tree() {
        let object: RawObject =
            serde_json::from_str(r#"{"kind": "Pod", "spec": {"a": {"b": 1}}}"#).unwrap();
        let mut b = PatchBuilder::of(Doc::Object(&object));
        assert!(!b.add_if_absent(&["spec", "a", "b"], || unreachable!("present")));
        assert!(!b.add_if_absent(&["kind", "x"], || unreachable!("a string")));
        assert!(matches!(b.doc(), Doc::Object(_)), "still the text");
        assert!(b.finish().0.is_none());
        let tree_built = !matches!(Doc::Object(&object).root(), crate::object::Part::Text(_));
        assert!(!tree_built, "no tree was built");
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
        assert_eq!(b.doc().value(), &json!({"a": {"b": 1}}));
    }

    #[test]
    fn appends_to_a_list_the_original_had_are_operations_of_their_own() {
        let original = json!({"spec": {"volumes": [{"name": "a"}]}});
        let build = || {
            let mut b = PatchBuilder::new(json!({"spec": {"volumes": [{"name": "a"}]}}));
            b.append(&["spec", "volumes"], json!({"name": "tmp"}));
            assert!(b.add_if_absent(&["spec", "volumes", "1", "emptyDir"], || json!({})));
            assert!(b.add_if_absent(&["spec", "volumes", "0", "emptyDir"], || json!({})));
            b.append(&["spec", "volumes"], json!({"name": "var-tmp"}));
            b
        };
        let ops = finished(build, original);
        assert_eq!(
            serde_json::to_value(&ops).unwrap(),
            json!([
                {"op": "add", "path": "/spec/volumes/-", "value": {"name": "tmp", "emptyDir": {}}},
                {"op": "add", "path": "/spec/volumes/0/emptyDir", "value": {}},
                {"op": "add", "path": "/spec/volumes/-", "value": {"name": "var-tmp"}},
            ])
        );
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
            ["/spec/volumes", "/spec/containers/0/volumeMounts"]
        );
        assert_eq!(
            ops[0].to_string(),
            json!({"op": "add", "path": "/spec/volumes",
                   "value": [{"name": "tmp"}, {"name": "var-tmp"}]})
            .to_string()
        );
        let mut original = json!({"spec": {"containers": [{"name": "c"}]}});
        json_patch::patch(&mut original, &ops).unwrap();
        assert_eq!(Some(original), doc);
    }
}
