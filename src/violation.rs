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
            path: path.shown,
            keyed_path: path.keyed,
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
}

/// `<rule>: <field path>: <problem> (expected <x>, got <y>)`
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} (expected {}, got {})",
            self.rule, self.path, self.message, self.expected, self.actual
        )
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
/// [`FieldPath::item`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath {
    shown: String,
    keyed: String,
}

impl FieldPath {
    pub fn root(field: &str) -> Self {
        FieldPath {
            shown: field.to_owned(),
            keyed: field.to_owned(),
        }
    }

    pub fn field(&self, name: &str) -> Self {
        if self.shown.is_empty() {
            return FieldPath::root(name);
        }
        FieldPath {
            shown: format!("{}.{name}", self.shown),
            keyed: format!("{}.{name}", self.keyed),
        }
    }

    /// A list element that has no key of its own.
    pub fn index(&self, i: usize) -> Self {
        FieldPath {
            shown: format!("{}[{i}]", self.shown),
            keyed: format!("{}[{i}]", self.keyed),
        }
    }

    /// A list element known by a key (a container's or volume's name, a
    /// mount's path): shown by index, keyed by the key.
    pub fn item(&self, i: usize, key: &str) -> Self {
        FieldPath {
            shown: format!("{}[{i}]", self.shown),
            keyed: format!("{}[{key}]", self.keyed),
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
            FieldPath {
                shown: format!("{}[{key:?}]", self.shown),
                keyed: format!("{}[{key:?}]", self.keyed),
            }
        }
    }

    /// The keyed form: `spec.template.spec.containers[gateway].image`.
    pub fn keyed(&self) -> &str {
        &self.keyed
    }
}

impl From<&FieldPath> for FieldPath {
    fn from(path: &FieldPath) -> Self {
        path.clone()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
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
        assert_eq!(
            v.to_string(),
            "pod.run-as-user: spec.template.spec.containers[0].securityContext.runAsUser: wrong user (expected 1000, got 0)"
        );
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
}
