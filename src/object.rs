//! Objects as they arrive in an AdmissionReview: the JSON text as sent, its
//! `apiVersion`, `kind` and `metadata` read once, and a JSON tree built only
//! when something needs one (a mutation, a rule that reads the tree).
//!
//! Most admissions are judged without the tree: the rules of the busiest
//! kinds read typed views straight from the text ([`Doc::read_at`]), and
//! reading a part skips every other part without allocating. kube-core's
//! `DynamicObject` buffers the whole object twice (`#[serde(flatten)]`) and
//! its metadata carries `managedFields`, often half the object, which no
//! rule reads.

mod outline;

#[cfg(test)]
pub(crate) use outline::broken_at;
pub(crate) use outline::{list_index, MemberIndex, Outline, ReviewOutline};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube_core::dynamic::ApiResource;
use kube_core::{DynamicResourceScope, Resource};
use outline::{OutlineError, TemplateParts};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A Kubernetes object of any kind.
#[derive(Clone, Debug)]
pub struct RawObject {
    /// The object exactly as received, checked as JSON when it was read.
    text: Box<str>,
    /// The same, as a JSON tree: built on first use.
    tree: OnceLock<Value>,
    api_version: String,
    kind: String,
    /// Where `spec` is in the text (found while reading the head), so that
    /// reading the busiest part does not scan the object again.
    spec: Option<std::ops::Range<usize>>,
    /// Where a workload's pod template keeps its `metadata` and `spec`
    /// (`spec.template`, `spec.jobTemplate.spec.template`), found in the
    /// same pass.
    templates: [Option<TemplateParts>; 2],
    /// Its `metadata`, read from the text (without `managedFields`);
    /// shared with the views that keep it (a workload's pod template).
    pub metadata: Arc<ObjectMeta>,
    /// A typed view read from the text, kept for whoever reads the same
    /// view next ([`RawObject::shared_view`]).
    view: SharedView,
}

/// One typed view of an object, of any type, read once.
#[derive(Clone, Default)]
struct SharedView(OnceLock<Arc<dyn Any + Send + Sync>>);

impl fmt::Debug for SharedView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "SharedView(read)"
        } else {
            "SharedView(unread)"
        })
    }
}

impl PartialEq for RawObject {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

/// ObjectMeta without `managedFields` (the API server's bookkeeping of who
/// set which field: nothing a rule reads, and often the largest part of an
/// object).
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metadata {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

impl From<Metadata> for ObjectMeta {
    fn from(m: Metadata) -> Self {
        ObjectMeta {
            annotations: m.annotations,
            creation_timestamp: m.creation_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            generate_name: m.generate_name,
            generation: m.generation,
            labels: m.labels,
            managed_fields: None,
            name: m.name,
            namespace: m.namespace,
            owner_references: m.owner_references,
            resource_version: m.resource_version,
            self_link: m.self_link,
            uid: m.uid,
        }
    }
}

/// The part of `text` at `range`, if there is one.
fn slice<'t>(text: &'t str, range: &Option<std::ops::Range<usize>>) -> Option<&'t str> {
    range.clone().and_then(|r| text.get(r))
}

/// A head member's string (anything else, null or absent: empty).
fn string_of(text: Option<&str>) -> Result<String, serde_json::Error> {
    Ok(match text.map(serde_json::from_str::<Value>).transpose()? {
        Some(Value::String(s)) => s,
        _ => String::new(),
    })
}

impl RawObject {
    /// The owner reference marked `controller: true`, if any.
    pub fn controller_owner(&self) -> Option<&OwnerReference> {
        self.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
    }

    /// An object from its JSON text: its head read, and where its parts
    /// are found, in one pass ([`Outline`]).
    pub fn from_text(text: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let outline = Outline::of(text.get()).map_err(|e| match e {
            OutlineError::NotAnObject => {
                serde_json::Error::custom("an object must be a JSON object")
            }
            OutlineError::Duplicate(name) => serde_json::Error::duplicate_field(name),
            OutlineError::Malformed => serde_json::Error::custom("malformed JSON"),
            OutlineError::TooDeep => serde_json::Error::custom(format_args!(
                "nested more than {} deep",
                outline::MAX_NESTING
            )),
        })?;
        RawObject::from_outline(text.into(), outline)
    }

    /// An object from its JSON text, already checked as JSON, and the
    /// outline found in it ([`ReviewOutline`]).
    pub(crate) fn from_outline(
        text: Box<str>,
        outline: Outline,
    ) -> Result<Self, serde_json::Error> {
        let part = |range| slice(&text, range);
        let metadata = match part(&outline.metadata) {
            Some(m) => serde_json::from_str::<Option<Metadata>>(m)?,
            None => None,
        };
        let spec = outline.spec.filter(|r| text.get(r.clone()) != Some("null"));
        Ok(RawObject {
            api_version: string_of(part(&outline.api_version))?,
            kind: string_of(part(&outline.kind))?,
            tree: OnceLock::new(),
            spec,
            templates: [outline.template, outline.job_template],
            metadata: Arc::new(metadata.map(ObjectMeta::from).unwrap_or_default()),
            view: SharedView::default(),
            text,
        })
    }

    /// The `metadata` and `spec` of the pod template at `pointer`, when the
    /// head's pass found it an object there (else `None`: look it up).
    fn template_parts(&self, pointer: &[&str]) -> Option<[Option<&str>; 2]> {
        let parts = match pointer {
            ["spec", "template"] => self.templates[0].as_ref()?,
            ["spec", "jobTemplate", "spec", "template"] => self.templates[1].as_ref()?,
            _ => return None,
        };
        let part = |range| slice(&self.text, range).filter(|t| *t != "null");
        Some([part(&parts.metadata), part(&parts.spec)])
    }

    /// `read()`, done once per object: the first view read is kept, and a
    /// later call for a view of the same type that `matches` it gets it
    /// back without reading the text again (the webhook's relation step
    /// reads the pod template that `admit()` read). Errors are not kept;
    /// a view of another type is read each time.
    pub fn shared_view<T, E>(
        &self,
        matches: impl Fn(&T) -> bool,
        read: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
    {
        if let Some(kept) = self.view.0.get() {
            if let Ok(kept) = Arc::clone(kept).downcast::<T>() {
                if matches(&kept) {
                    return Ok(kept);
                }
            }
            return read().map(Arc::new);
        }
        let view = Arc::new(read()?);
        let _ = self
            .view
            .0
            .set(Arc::clone(&view) as Arc<dyn Any + Send + Sync>);
        Ok(view)
    }

    /// An object from a JSON tree (the offline path, tests).
    pub fn from_json(json: Value) -> Result<Self, serde_json::Error> {
        let mut object = RawObject::from_text(serde_json::value::to_raw_value(&json)?)?;
        object.tree = OnceLock::from(json);
        Ok(object)
    }

    /// The object as a JSON tree, built on the first call.
    pub fn json(&self) -> &Value {
        self.tree.get_or_init(|| self.parse_tree())
    }

    /// The object as a JSON tree of its own, to change: read from the text
    /// unless the tree was already built.
    pub fn to_json(&self) -> Value {
        self.tree
            .get()
            .map_or_else(|| self.parse_tree(), Value::clone)
    }

    fn parse_tree(&self) -> Value {
        // The text is valid JSON: it was read as such.
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The object as received.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawObject::from_text(Box::<RawValue>::deserialize(d)?).map_err(D::Error::custom)
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // As it was received (serde_json writes a raw value as it is).
        let raw: &RawValue = serde_json::from_str(&self.text).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl Resource for RawObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Changes here are not written back to the text; decisions never
    /// change the object they read. A view read before (which may hold
    /// the metadata) is forgotten.
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.view = SharedView::default();
        Arc::make_mut(&mut self.metadata)
    }
}

/// An object the rules read: a JSON tree (a mutated object, a manifest), or
/// an object as received, read from its text.
#[derive(Clone, Copy, Debug)]
pub enum Doc<'a> {
    Tree(&'a Value),
    Object(&'a RawObject),
}

impl<'a> From<&'a Value> for Doc<'a> {
    fn from(value: &'a Value) -> Self {
        Doc::Tree(value)
    }
}

/// A part of a [`Doc`]: a subtree, or a slice of the text.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    Tree(&'a Value),
    Text(&'a str),
}

impl<'a> Doc<'a> {
    /// The whole object as a JSON tree (built once for an object as
    /// received).
    pub fn value(self) -> &'a Value {
        match self {
            Doc::Tree(value) => value,
            Doc::Object(object) => object.json(),
        }
    }

    /// The whole object. A tree already built is read in place.
    pub fn root(self) -> Part<'a> {
        match self {
            Doc::Tree(value) => Part::Tree(value),
            Doc::Object(object) => match object.tree.get() {
                Some(value) => Part::Tree(value),
                None => Part::Text(object.text()),
            },
        }
    }

    /// The `metadata` and `spec` of the pod template at `pointer` (object
    /// members only), each unless absent or null; an object as received
    /// has them from its head's pass.
    pub fn template_parts(self, pointer: &[&str]) -> [Option<Part<'a>>; 2] {
        if let (Doc::Object(object), Part::Text(_)) = (self, self.root()) {
            if let Some(found) = object.template_parts(pointer) {
                return found.map(|part| part.map(Part::Text));
            }
        }
        self.at(pointer)
            .map_or([None, None], |t| t.members(["metadata", "spec"]))
    }

    /// The part at `pointer` (object members only), if every member on the
    /// way is there and not null.
    pub fn at(self, pointer: &[&str]) -> Option<Part<'a>> {
        let (mut part, rest) = match (self, self.root(), pointer.split_first()) {
            (Doc::Object(object), Part::Text(text), Some((&"spec", rest))) => {
                (Part::Text(text.get(object.spec.clone()?)?), rest)
            }
            (_, root, _) => (root, pointer),
        };
        for key in rest {
            part = part.member(key)?;
        }
        if let Part::Tree(Value::Null) = part {
            return None;
        }
        Some(part)
    }
}

impl<'a> Part<'a> {
    /// The member `key`, unless absent or null (nothing when this is not an
    /// object).
    pub fn member(self, key: &str) -> Option<Part<'a>> {
        let [found] = self.members([key]);
        found
    }

    /// The members `keys`, each unless absent or null, read in one pass.
    /// Of a key given twice, the last counts, as when text is read into a
    /// tree.
    pub fn members<const N: usize>(self, keys: [&str; N]) -> [Option<Part<'a>>; N] {
        match self {
            Part::Tree(value) => {
                keys.map(|key| value.get(key).filter(|v| !v.is_null()).map(Part::Tree))
            }
            Part::Text(text) => {
                let found = if text.starts_with('{') {
                    Members(keys)
                        .deserialize(&mut serde_json::Deserializer::from_str(text))
                        .unwrap_or([None; N])
                } else {
                    [None; N]
                };
                found.map(|f| f.filter(|f| *f != "null").map(Part::Text))
            }
        }
    }

    /// The part read as `T`.
    pub fn read<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        match self {
            Part::Tree(value) => T::deserialize(value),
            Part::Text(text) => serde_json::from_str(text),
        }
    }

    /// The part read as `T`, with the path inside it of what fails.
    pub fn read_tracked<T: serde::de::DeserializeOwned>(
        self,
    ) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
        match self {
            Part::Tree(value) => serde_path_to_error::deserialize(value),
            Part::Text(text) => {
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
            }
        }
    }
}

/// The text of the members named by the keys of a JSON object; the
/// others are skipped without being read.
struct Members<'k, const N: usize>([&'k str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for Members<'_, N> {
    type Value = [Option<&'de str>; N];

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Members<'_, N> {
    type Value = [Option<&'de str>; N];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = [None; N];
        while let Some(wanted) = map.next_key_seed(KeyIndex(&self.0))? {
            match wanted {
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?.get()),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Which of the wanted keys a member name is.
struct KeyIndex<'k, 'a>(&'a [&'k str]);

impl<'de> DeserializeSeed<'de> for KeyIndex<'_, '_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIndex<'_, '_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|k| *k == v))
    }
}

/// Where and what kind of JSON error, without echoing any of the input
/// (which may hold a secret).
pub fn describe_json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong shape",
        serde_json::error::Category::Io => "read error",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn received(json: &Value) -> RawObject {
        serde_json::from_str(&json.to_string()).unwrap()
    }

    #[test]
    fn a_shared_view_is_read_once_and_only_for_its_own_type() {
        let object =
            received(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}));
        let reads = std::cell::Cell::new(0);
        let read = |n: u32| {
            reads.set(reads.get() + 1);
            Ok::<_, ()>(n)
        };
        assert!(object
            .shared_view(|_: &u32| true, || Err::<u32, _>(()))
            .is_err());
        let first = object.shared_view(|_: &u32| true, || read(1)).unwrap();
        let again = object.shared_view(|_: &u32| true, || read(2)).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "kept and shared");
        assert_eq!(
            reads.get(),
            1,
            "an error is not kept; a kept view is not read again"
        );
        // A view that does not match, or of another type, is read afresh
        // (and not kept: the first stays).
        assert_eq!(
            *object.shared_view(|n: &u32| *n == 2, || read(2)).unwrap(),
            2
        );
        assert_eq!(
            *object
                .shared_view(|_: &i64| true, || Ok::<_, ()>(-1))
                .unwrap(),
            -1
        );
        assert_eq!(*object.shared_view(|_: &u32| true, || read(3)).unwrap(), 1);
        assert_eq!(reads.get(), 2);
        // A copy of the object shares what was read of it, until its
        // metadata is changed.
        let mut copy = object.clone();
        assert!(Arc::ptr_eq(
            &first,
            &copy.shared_view(|_: &u32| true, || read(5)).unwrap()
        ));
        copy.meta_mut().name = Some("q".into());
        assert_eq!(*copy.shared_view(|_: &u32| true, || read(6)).unwrap(), 6);
    }

    #[test]
    fn keeps_the_text_and_reads_the_head() {
        let json = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]}, "spec": {"x": 1}});
        let object = received(&json);
        assert!(object.tree.get().is_none(), "no tree until asked for");
        assert_eq!(object.metadata.name.as_deref(), Some("p"));
        assert_eq!(object.metadata.managed_fields, None);
        assert_eq!((object.api_version(), object.kind()), ("v1", "Pod"));
        assert_eq!(object.json(), &json);
        assert_eq!(serde_json::to_value(&object).unwrap(), json);
        assert_eq!(RawObject::from_json(json.clone()).unwrap(), object);
        assert!(serde_json::from_value::<RawObject>(json!([1])).is_err());
        assert!(serde_json::from_str::<RawObject>("[]").is_err());
        assert!(serde_json::from_value::<RawObject>(json!({"metadata": {"name": 5}})).is_err());
        let odd = received(&json!({"apiVersion": 1, "metadata": null}));
        assert_eq!((odd.api_version(), odd.kind()), ("", ""));
    }

    #[test]
    fn parts_read_the_same_from_text_and_tree() {
        let json = json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "a", "emptyDir": {}}, {"name": "b", "configMap": {"name": "c"}, "x": null}, 5]}},
            "nothing": null, "list": [1]}, "spec\u{0}": 1, "esc\"aped": {"k": 2}});
        let object = received(&json);
        for doc in [Doc::Tree(&json), Doc::Object(&object)] {
            let volumes = doc.at(&["spec", "template", "spec", "volumes"]).unwrap();
            let volumes: Vec<Value> = volumes.read().unwrap();
            assert_eq!((volumes.len(), &volumes[1]["name"]), (3, &json!("b")));
            assert!(doc.at(&["spec", "nothing"]).is_none());
            assert!(doc.at(&["spec", "missing", "deeper"]).is_none());
            assert!(
                doc.at(&["spec", "list", "0"]).is_none(),
                "lists are not objects"
            );
            let escaped: BTreeMap<String, i64> = doc.at(&["esc\"aped"]).unwrap().read().unwrap();
            assert_eq!(escaped["k"], 2);
            let wrong = doc
                .at(&["spec", "list"])
                .unwrap()
                .read_tracked::<Vec<String>>();
            assert_eq!(wrong.unwrap_err().path().to_string(), "[0]");
        }
        assert!(object.tree.get().is_none(), "read without a tree");
    }

    #[test]
    fn repeated_members() {
        // Below the head, the last counts, as when read into a tree.
        let object: RawObject =
            serde_json::from_str(r#"{"spec": {"a": 1, "b": 0, "a": 2}}"#).unwrap();
        let doc = Doc::Object(&object);
        assert_eq!(doc.at(&["spec", "a"]).unwrap().read::<i64>().unwrap(), 2);
        assert_eq!(object.json()["spec"]["a"], 2);
        // A head member given twice is no object the API server sends.
        for twice in [
            r#"{"spec": {}, "spec": {}}"#,
            r#"{"metadata": {}, "metadata": {}}"#,
        ] {
            assert!(serde_json::from_str::<RawObject>(twice).is_err(), "{twice}");
        }
    }

    #[test]
    fn json_errors_are_described_without_content() {
        let e = serde_json::from_str::<Value>("{\"api_key\": sk-secret}").unwrap_err();
        let described = describe_json_error(&e);
        assert_eq!(described, "syntax error at line 1 column 13");
        assert!(!described.contains("sk-secret"));
    }
}
