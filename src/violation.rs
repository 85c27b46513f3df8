//! Violations as data, and the one place they become text.

use crate::rules::RuleId;
use serde::Serialize;
use std::fmt;

/// One broken field: which rule, where, what is wrong, what was expected and
/// what was found. `actual` never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: RuleId,
    pub path: String,
    pub message: String,
    pub expected: String,
    pub actual: String,
}

impl Violation {
    pub fn new(
        rule: RuleId,
        path: impl fmt::Display,
        message: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Violation {
            rule,
            path: path.to_string(),
            message: message.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn root(field: &str) -> Self {
        FieldPath(field.to_owned())
    }

    pub fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            return FieldPath(name.to_owned());
        }
        FieldPath(format!("{}.{name}", self.0))
    }

    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// A map key, bracketed when it is not a plain identifier.
    pub fn key(&self, key: &str) -> Self {
        if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.field(key)
        } else {
            FieldPath(format!("{}[{key:?}]", self.0))
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
