//! Where an object's parts are in its text, found in one pass: the head's
//! members (`apiVersion`, `kind`, `metadata`, `spec`) and, in the same
//! pass, a workload's pod template (`spec.template` or
//! `spec.jobTemplate.spec.template`) with its `metadata` and `spec`.
//!
//! Reading these with serde took a pass over the pod spec's text for each
//! level (the head skipped `spec`, then `spec` was skipped to find
//! `template`, then `template` to find its parts): three passes over the
//! largest part of a workload before it was read once.
//!
//! The text is valid JSON (it was read as such), so the scan only follows
//! its structure: strings, brackets, and the ends of scalars. Anything it
//! does not expect is an error, never a panic. A member given twice counts
//! as its last occurrence, as when the text is read into a tree, except in
//! the head, where it is an error (as serde's derived reading has it).

use std::borrow::Cow;
use std::ops::Range;

/// The byte ranges of an object's parts in its text.
#[derive(Debug, Default)]
pub struct Outline {
    pub api_version: Option<Range<usize>>,
    pub kind: Option<Range<usize>>,
    pub metadata: Option<Range<usize>>,
    pub spec: Option<Range<usize>>,
    /// `spec.template`, when it is an object.
    pub template: Option<TemplateParts>,
    /// `spec.jobTemplate.spec.template`, when it is an object.
    pub job_template: Option<TemplateParts>,
}

/// A pod template's `metadata` and `spec`, as written (`null` included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateParts {
    pub metadata: Option<Range<usize>>,
    pub spec: Option<Range<usize>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum OutlineError {
    /// The text is not a JSON object.
    NotAnObject,
    /// A head member given twice.
    Duplicate(&'static str),
    /// Not the JSON the text was read as (never expected).
    Malformed,
}

type Scanned<T> = Result<T, OutlineError>;

impl Outline {
    pub fn of(text: &str) -> Scanned<Outline> {
        let scan = Scan(text);
        let open = scan.skip_space(0);
        if !scan.is_object(open) {
            return Err(OutlineError::NotAnObject);
        }
        let mut outline = Outline::default();
        let end = scan.members(open, |key, value| {
            let (name, slot) = match &*key {
                "apiVersion" => ("apiVersion", &mut outline.api_version),
                "kind" => ("kind", &mut outline.kind),
                "metadata" => ("metadata", &mut outline.metadata),
                "spec" => ("spec", &mut outline.spec),
                _ => return scan.value_end(value),
            };
            if slot.is_some() {
                return Err(OutlineError::Duplicate(name));
            }
            let end = if name == "spec" && scan.is_object(value) {
                let (end, template, job_template) = scan.workload_spec(value)?;
                (outline.template, outline.job_template) = (template, job_template);
                end
            } else {
                scan.value_end(value)?
            };
            *slot = Some(value..end);
            Ok(end)
        })?;
        // Only space may follow.
        if scan.skip_space(end) != text.len() {
            return Err(OutlineError::Malformed);
        }
        Ok(outline)
    }
}

/// The text being scanned.
struct Scan<'a>(&'a str);

impl<'a> Scan<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.0.as_bytes()
    }

    fn at(&self, i: usize) -> Scanned<u8> {
        self.bytes().get(i).copied().ok_or(OutlineError::Malformed)
    }

    fn is_object(&self, i: usize) -> bool {
        self.bytes().get(i) == Some(&b'{')
    }

    fn skip_space(&self, mut i: usize) -> usize {
        while matches!(self.bytes().get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    }

    /// `i` at an opening quote: the index after the closing one.
    fn string_end(&self, i: usize) -> Scanned<usize> {
        let mut j = i + 1;
        loop {
            let rest = self.bytes().get(j..).ok_or(OutlineError::Malformed)?;
            let found = memchr::memchr2(b'"', b'\\', rest).ok_or(OutlineError::Malformed)?;
            j += found;
            if self.bytes()[j] == b'"' {
                return Ok(j + 1);
            }
            j += 2; // an escape and the character it escapes
        }
    }

    /// `i` at the start of a value: the index after its end.
    fn value_end(&self, i: usize) -> Scanned<usize> {
        match self.at(i)? {
            b'"' => self.string_end(i),
            b'{' | b'[' => {
                let (mut depth, mut j) = (0usize, i);
                loop {
                    match self.at(j)? {
                        b'"' => {
                            j = self.string_end(j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => {
                let mut j = i;
                while !matches!(
                    self.bytes().get(j),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    j += 1;
                }
                Ok(j)
            }
        }
    }

    /// `open` at a `{`: calls `member(key, value start)` for each member,
    /// which returns the index after the value; returns the index after
    /// the closing `}`.
    fn members(
        &self,
        open: usize,
        mut member: impl FnMut(Cow<'a, str>, usize) -> Scanned<usize>,
    ) -> Scanned<usize> {
        let mut i = self.skip_space(open + 1);
        if self.at(i)? == b'}' {
            return Ok(i + 1);
        }
        loop {
            if self.at(i)? != b'"' {
                return Err(OutlineError::Malformed);
            }
            let key_end = self.string_end(i)?;
            let raw = self.0.get(i..key_end).ok_or(OutlineError::Malformed)?;
            let key = if raw.contains('\\') {
                Cow::Owned(serde_json::from_str(raw).map_err(|_| OutlineError::Malformed)?)
            } else {
                Cow::Borrowed(&raw[1..raw.len() - 1])
            };
            let colon = self.skip_space(key_end);
            if self.at(colon)? != b':' {
                return Err(OutlineError::Malformed);
            }
            let end = member(key, self.skip_space(colon + 1))?;
            i = self.skip_space(end);
            match self.at(i)? {
                b',' => i = self.skip_space(i + 1),
                b'}' => return Ok(i + 1),
                _ => return Err(OutlineError::Malformed),
            }
        }
    }

    /// A workload's `spec` at `open`: where it ends, and its pod template
    /// under `template` or `jobTemplate.spec.template`.
    #[allow(clippy::type_complexity)]
    fn workload_spec(
        &self,
        open: usize,
    ) -> Scanned<(usize, Option<TemplateParts>, Option<TemplateParts>)> {
        let (mut template, mut job_template) = (None, None);
        let end = self.members(open, |key, value| {
            let (found, below) = match &*key {
                "template" => (&mut template, &[][..]),
                "jobTemplate" => (&mut job_template, &["spec", "template"][..]),
                _ => return self.value_end(value),
            };
            let (end, parts) = self.template_below(value, below)?;
            *found = parts;
            Ok(end)
        })?;
        Ok((end, template, job_template))
    }

    /// The pod template `path` below the value at `value` (the value itself
    /// when `path` is empty): where the value ends, and the template's
    /// parts when it and every step on the way are objects. Of a member
    /// given twice, the last counts.
    fn template_below(
        &self,
        value: usize,
        path: &[&str],
    ) -> Scanned<(usize, Option<TemplateParts>)> {
        let Some((step, rest)) = path.split_first() else {
            return self.template(value);
        };
        if !self.is_object(value) {
            return Ok((self.value_end(value)?, None));
        }
        let mut found = None;
        let end = self.members(value, |key, value| {
            if &*key != *step {
                return self.value_end(value);
            }
            let (end, parts) = self.template_below(value, rest)?;
            found = parts;
            Ok(end)
        })?;
        Ok((end, found))
    }

    /// A pod template at `value`: where it ends, and its parts when it is
    /// an object.
    fn template(&self, value: usize) -> Scanned<(usize, Option<TemplateParts>)> {
        if !self.is_object(value) {
            return Ok((self.value_end(value)?, None));
        }
        let mut parts = TemplateParts::default();
        let end = self.members(value, |key, value| {
            let end = self.value_end(value)?;
            match &*key {
                "metadata" => parts.metadata = Some(value..end),
                "spec" => parts.spec = Some(value..end),
                _ => {}
            }
            Ok(end)
        })?;
        Ok((end, Some(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What the outline found, read back as trees.
    fn parts(text: &str) -> Vec<(&'static str, Option<Value>)> {
        let o = Outline::of(text).unwrap();
        let read = |r: &Option<Range<usize>>| {
            r.clone()
                .map(|r| serde_json::from_str::<Value>(&text[r]).unwrap())
        };
        let t = o.template.clone().unwrap_or_default();
        let j = o.job_template.clone().unwrap_or_default();
        vec![
            ("apiVersion", read(&o.api_version)),
            ("kind", read(&o.kind)),
            ("metadata", read(&o.metadata)),
            ("spec", read(&o.spec)),
            ("template.metadata", read(&t.metadata)),
            ("template.spec", read(&t.spec)),
            ("jobTemplate.metadata", read(&j.metadata)),
            ("jobTemplate.spec", read(&j.spec)),
        ]
    }

    /// The same parts found by reading the text into a tree.
    fn parts_of_tree(text: &str) -> Vec<(&'static str, Option<Value>)> {
        let v: Value = serde_json::from_str(text).unwrap();
        let get = |p: &str| v.pointer(p).cloned();
        let object = |p: &str| get(p).filter(Value::is_object);
        vec![
            ("apiVersion", get("/apiVersion")),
            ("kind", get("/kind")),
            ("metadata", get("/metadata")),
            ("spec", get("/spec")),
            (
                "template.metadata",
                object("/spec/template").and(get("/spec/template/metadata")),
            ),
            (
                "template.spec",
                object("/spec/template").and(get("/spec/template/spec")),
            ),
            (
                "jobTemplate.metadata",
                object("/spec/jobTemplate/spec/template")
                    .and(get("/spec/jobTemplate/spec/template/metadata")),
            ),
            (
                "jobTemplate.spec",
                object("/spec/jobTemplate/spec/template")
                    .and(get("/spec/jobTemplate/spec/template/spec")),
            ),
        ]
    }

    #[test]
    fn finds_what_a_tree_holds() {
        let texts = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}}}})
            .to_string(),
            json!({"kind": "CronJob", "spec": {"schedule": "* * * * *", "jobTemplate": {"spec":
                {"template": {"spec": {"containers": []}}}}}})
            .to_string(),
            json!({"spec": {"template": 5, "x": [1, "]", {"}": "\"{"}], "y": -1.5e3, "z": null}})
                .to_string(),
            json!({"spec": {"template": {"metadata": null, "spec": null}}, "metadata": null}).to_string(),
            json!({"spec": [1, 2], "kind": true}).to_string(),
            json!({}).to_string(),
            // Space everywhere JSON allows it, escaped keys and strings.
            "\n { \"ki\\u006ed\" : \"K\" ,\t\"spec\":{ \"template\" :{\"spec\"\r: {\"a\\\"b\": \"\\\\\"} } } } "
                .to_owned(),
            // Repeated below the head: the last counts.
            r#"{"spec": {"template": {"spec": {"a": 1}, "spec": {"b": 2}}}}"#.to_owned(),
            r#"{"spec": {"template": {"spec": {"a": 1}}, "template": {"metadata": {}}}}"#.to_owned(),
            r#"{"spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}, "spec": 1}}}"#.to_owned(),
        ];
        for text in &texts {
            assert_eq!(parts(text), parts_of_tree(text), "{text}");
        }
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            r#"[a-z"\\{}\[\]:, é😀]{0,6}"#.prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 64, 5, |inner| {
            let key = prop_oneof![
                r#"[a-z"\\]{1,4}"#,
                Just("spec".to_owned()),
                Just("metadata".to_owned()),
                Just("template".to_owned()),
                Just("jobTemplate".to_owned()),
                Just("kind".to_owned()),
                Just("apiVersion".to_owned()),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key, inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2048,
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn finds_what_a_tree_holds_in_any_object(value in any_json(), pretty: bool) {
            let object = match value {
                Value::Object(_) => value,
                other => json!({"spec": {"template": other}}),
            };
            let text = if pretty {
                serde_json::to_string_pretty(&object).unwrap()
            } else {
                object.to_string()
            };
            proptest::prop_assert_eq!(parts(&text), parts_of_tree(&text));
        }
    }

    #[test]
    fn a_head_member_given_twice_is_an_error() {
        for (text, name) in [
            (r#"{"spec": {}, "spec": {}}"#, "spec"),
            (
                r#"{"metadata": {}, "kind": "a", "metadata": null}"#,
                "metadata",
            ),
        ] {
            assert_eq!(
                Outline::of(text).unwrap_err(),
                OutlineError::Duplicate(name)
            );
        }
    }

    #[test]
    fn what_is_not_an_object_or_not_json_is_an_error_not_a_panic() {
        for text in ["", "[]", "5", "\"x\"", " null"] {
            assert_eq!(
                Outline::of(text).unwrap_err(),
                OutlineError::NotAnObject,
                "{text}"
            );
        }
        for text in [
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":1,",
            "{\"a\" 1}",
            "{1:2}",
            "{\"a\":\"x",
            "{\"a\":\"x\\",
            "{\"spec\":{\"template\":{",
            "{\"a\":[{]}",
            "{} x",
        ] {
            assert!(Outline::of(text).is_err(), "{text}");
        }
    }
}
