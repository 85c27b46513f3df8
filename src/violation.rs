//! Violations as data, and the one place they become text.

use crate::rules::RuleId;
use serde::Serialize;
use std::fmt;

/// One broken field: which rule, where, what is wrong, what was expected and
/// what was found. `actual` never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: RuleId,
    /// Where, with list elements by index: `spec.template.spec.containers[0].image`.
    pub path: String,
    /// The same place with list elements by their key where they have one
    /// (`containers[gateway]`, `volumes[tmp]`): stable when a list is
    /// reordered or grows, so an UPDATE can tell old violations from new.
    #[serde(skip)]
    pub keyed_path: String,
    pub message: String,
    pub expected: String,
    pub actual: String,
    /// A fingerprint of a value that `actual` must not show (a literal
    /// credential): changing it is a new violation even though `actual`
    /// reads the same. Never serialised or shown.
    #[serde(skip)]
    pub witness: u64,
}

impl Violation {
    pub fn new(
        rule: RuleId,
        path: impl Into<FieldPath>,
        message: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        let path = path.into();
        Violation {
            rule,
            path: path.to_string(),
            keyed_path: path.keyed().to_owned(),
            message: message.into(),
            expected: expected.into(),
            actual: actual.into(),
            witness: 0,
        }
    }

    /// Records a fingerprint of a hidden value (see [`Violation::witness`]).
    pub fn with_witness(mut self, hidden: &str) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        hidden.hash(&mut hasher);
        self.witness = hasher.finish();
        self
    }

    /// Whether `other` is the same violation of the same field with the
    /// same value: what makes a violation "present before this change".
    pub fn same_as(&self, other: &Violation) -> bool {
        self.rule == other.rule
            && self.keyed_path == other.keyed_path
            && self.actual == other.actual
            && self.witness == other.witness
    }

    /// The parts of the one-line text, in order.
    fn text_parts(&self) -> [&str; 10] {
        [
            self.rule.as_str(),
            ": ",
            &self.path,
            ": ",
            &self.message,
            " (expected ",
            &self.expected,
            ", got ",
            &self.actual,
            ")",
        ]
    }

    /// The length of the one-line text.
    fn text_len(&self) -> usize {
        self.text_parts().iter().map(|p| p.len()).sum()
    }

    fn push_text(&self, text: &mut String) {
        self.text_parts().iter().for_each(|p| text.push_str(p));
    }

    /// The one-line text ([`Violation`]'s `Display`) after `prefix`, in a
    /// string sized once: violations become text on every denial.
    pub fn text_after(&self, prefix: &str) -> String {
        let mut text = String::with_capacity(prefix.len() + self.text_len());
        text.push_str(prefix);
        self.push_text(&mut text);
        text
    }

    /// The one-line texts of `violations`, a line each, in one string
    /// sized once.
    pub fn lines<'v>(violations: impl Iterator<Item = &'v Violation> + Clone) -> String {
        let size = violations.clone().map(|v| v.text_len() + 1).sum();
        let mut text = String::with_capacity(size);
        for (i, violation) in violations.enumerate() {
            if i > 0 {
                text.push('\n');
            }
            violation.push_text(&mut text);
        }
        text
    }
}

/// `<rule>: <field path>: <problem> (expected <x>, got <y>)`
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text_parts().iter().try_for_each(|p| f.write_str(p))
    }
}

/// What `actual` says when a field is not set at all.
pub const UNSET: &str = "unset";

/// Shows an optional value for `actual`: the value, or `unset`.
pub fn shown<T: fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| UNSET.to_owned(), |v| v.to_string())
}

/// A field path in the dotted form kubectl users know:
/// `spec.template.spec.containers[0].securityContext.runAsUser`, with map keys
/// that contain dots or slashes in brackets: `metadata.labels["app.kubernetes.io/name"]`.
///
/// It is built in two forms at once: shown (list elements by index) and
/// keyed (list elements by their name where they have one, see
/// [`FieldPath::item`]). Rules build paths for every field they look at and
/// keep few, so both forms live inline up to [`INLINE_PATH_BYTES`] and
/// building one allocates nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath {
    shown: PathText,
    keyed: PathText,
}

/// Longer paths than this spill to the heap.
pub const INLINE_PATH_BYTES: usize = 96;

/// UTF-8 text, appended to only from `&str`s and numbers.
#[derive(Debug, Default, PartialEq, Eq)]
struct PathText(smallvec::SmallVec<[u8; INLINE_PATH_BYTES]>);

impl Clone for PathText {
    /// One copy of the bytes (`SmallVec`'s own `clone` copies item by item).
    fn clone(&self) -> Self {
        PathText(smallvec::SmallVec::from_slice(&self.0))
    }
}

impl PathText {
    fn with(&self, parts: &[&str]) -> PathText {
        let mut text = self.clone();
        for part in parts {
            text.0.extend_from_slice(part.as_bytes());
        }
        text
    }

    fn as_str(&self) -> &str {
        // Built from `&str`s only: never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `i` in decimal, in `buf`.
fn decimal(i: usize, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    let mut n = i;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

impl FieldPath {
    pub fn root(field: &str) -> Self {
        let text = PathText::default().with(&[field]);
        FieldPath {
            keyed: text.clone(),
            shown: text,
        }
    }

    pub fn field(&self, name: &str) -> Self {
        if self.shown.0.is_empty() {
            return FieldPath::root(name);
        }
        FieldPath {
            shown: self.shown.with(&[".", name]),
            keyed: self.keyed.with(&[".", name]),
        }
    }

    /// A list element that has no key of its own.
    pub fn index(&self, i: usize) -> Self {
        let mut buf = [0; 20];
        let i = decimal(i, &mut buf);
        FieldPath {
            shown: self.shown.with(&["[", i, "]"]),
            keyed: self.keyed.with(&["[", i, "]"]),
        }
    }

    /// A list element known by a key (a container's or volume's name, a
    /// mount's path): shown by index, keyed by the key.
    pub fn item(&self, i: usize, key: &str) -> Self {
        let mut buf = [0; 20];
        FieldPath {
            shown: self.shown.with(&["[", decimal(i, &mut buf), "]"]),
            keyed: self.keyed.with(&["[", key, "]"]),
        }
    }

    /// A map key, bracketed when it is not a plain identifier.
    pub fn key(&self, key: &str) -> Self {
        if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.field(key)
        } else {
            let quoted = format!("{key:?}");
            FieldPath {
                shown: self.shown.with(&["[", &quoted, "]"]),
                keyed: self.keyed.with(&["[", &quoted, "]"]),
            }
        }
    }

    /// The keyed form: `spec.template.spec.containers[gateway].image`.
    pub fn keyed(&self) -> &str {
        self.keyed.as_str()
    }
}

impl From<&FieldPath> for FieldPath {
    fn from(path: &FieldPath) -> Self {
        path.clone()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_one_line_format() {
        let path = FieldPath::root("spec")
            .field("template")
            .field("spec")
            .field("containers")
            .index(0)
            .field("securityContext")
            .field("runAsUser");
        let v = Violation::new(RuleId::PodRunAsUser, &path, "wrong user", "1000", "0");
        let line = "pod.run-as-user: spec.template.spec.containers[0].securityContext.runAsUser: wrong user (expected 1000, got 0)";
        assert_eq!(v.to_string(), line);
        assert_eq!(v.text_after(""), line);
        assert_eq!(v.text_after("before: "), format!("before: {line}"));
        let other = Violation::new(
            RuleId::GatewayImage,
            FieldPath::root("image"),
            "m",
            "e",
            "a",
        );
        assert_eq!(
            Violation::lines([&v, &other].into_iter()),
            format!(
                "{line}\n{}: image: m (expected e, got a)",
                RuleId::GatewayImage.as_str()
            )
        );
        assert_eq!(Violation::lines([].into_iter()), "");
    }

    #[test]
    fn keyed_items_are_shown_by_index_and_compared_by_key() {
        let path = FieldPath::root("spec")
            .field("containers")
            .item(1, "gateway")
            .field("image");
        assert_eq!(path.to_string(), "spec.containers[1].image");
        assert_eq!(path.keyed(), "spec.containers[gateway].image");
        let v = Violation::new(RuleId::GatewayImage, &path, "m", "e", "a");
        assert_eq!(v.keyed_path, "spec.containers[gateway].image");
        let moved = Violation::new(
            RuleId::GatewayImage,
            FieldPath::root("spec")
                .field("containers")
                .item(0, "gateway")
                .field("image"),
            "m",
            "e",
            "a",
        );
        assert!(v.same_as(&moved));
        assert!(!v.same_as(&moved.clone().with_witness("another value")));
    }

    #[test]
    fn brackets_keys_with_dots_and_slashes() {
        let path = FieldPath::root("metadata")
            .field("labels")
            .key("app.kubernetes.io/name");
        assert_eq!(
            path.to_string(),
            r#"metadata.labels["app.kubernetes.io/name"]"#
        );
        assert_eq!(FieldPath::root("data").key("PORT").to_string(), "data.PORT");
    }

    #[test]
    fn numbers_and_long_paths() {
        let path = FieldPath::root("a").index(0).index(7).index(1234567890);
        assert_eq!(path.to_string(), "a[0][7][1234567890]");
        let mut long = FieldPath::root("spec");
        for i in 0..20 {
            long = long.field("template").item(i, "container-name");
        }
        assert!(long.to_string().len() > INLINE_PATH_BYTES);
        assert!(long.to_string().ends_with("template[19]"));
        assert!(long.keyed().ends_with("template[container-name]"));
        assert_eq!(FieldPath::default().field("x").to_string(), "x");
    }
}
