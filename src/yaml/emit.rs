//! JSON written as block-style YAML that every reader (YAML 1.1 and 1.2)
//! reads back as the same JSON: a string is left unquoted only when it
//! cannot be mistaken for anything else.

use super::scalar::{resolve_plain, Scalar};
use serde_json::Value;

/// `value` as a YAML document (no `---`), ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    block(value, 0, false, &mut out);
    out
}

/// A node at `indent`. `inline_first`: the first line already has its
/// place (after a sequence item's `- `).
fn block(value: &Value, indent: usize, inline_first: bool, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 || !inline_first {
                    push_indent(out, indent);
                }
                out.push_str(&string(key, indent));
                out.push(':');
                match value {
                    Value::Object(m) if !m.is_empty() => {
                        out.push('\n');
                        block(value, indent + 2, false, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        block(value, indent + 2, false, out);
                    }
                    scalar => {
                        out.push(' ');
                        out.push_str(&inline(scalar, indent + 2));
                        out.push('\n');
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 || !inline_first {
                    push_indent(out, indent);
                }
                out.push_str("- ");
                block(item, indent + 2, true, out);
            }
        }
        scalar => {
            if !inline_first {
                push_indent(out, indent);
            }
            out.push_str(&inline(scalar, indent));
            out.push('\n');
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn inline(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// A string plain, as a literal block, or double-quoted.
fn string(s: &str, indent: usize) -> String {
    if plain_is_safe(s) {
        return s.to_owned();
    }
    if let Some(block) = literal_block(s, indent) {
        return block;
    }
    // JSON's string escapes are valid YAML double-quoted escapes.
    serde_json::to_string(s).unwrap_or_default()
}

/// Unquoted only if it reads back as this exact string in YAML 1.1 and 1.2
/// (no indicator, no `: ` or ` #`, nothing a number, boolean, null, date
/// or sexagesimal could be made of).
fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`<=~".contains(first) || first.is_whitespace() {
        return false;
    }
    if s.ends_with(char::is_whitespace) || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(['\t', ',', '[', ']', '{', '}']) {
        return false;
    }
    if s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}'))
    {
        return false;
    }
    if resolve_plain(s) != Scalar::Str {
        return false;
    }
    // Other readers: YAML 1.1 sexagesimals and timestamps, 1.2 numbers.
    let digitish = first.is_ascii_digit() || matches!(first, '+' | '.');
    !(digitish && (s.contains(':') || looks_like_date(s) || s.parse::<f64>().is_ok()))
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// `|`, `|-` or `|+` with the lines indented, for multi-line strings that a
/// literal block can hold exactly.
fn literal_block(s: &str, indent: usize) -> Option<String> {
    if !s.contains('\n')
        || s.starts_with([' ', '\n', '\t'])
        || s.chars().any(|c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{feff}' | '\u{85}' | '\u{2028}' | '\u{2029}')
        })
    {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    let pad = " ".repeat(indent.max(2));
    for line in s[..body.len()].split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_one;
    use serde_json::json;

    fn round_trip(value: &Value) {
        let text = to_yaml(value);
        let back = parse_one(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, value, "\n{text}");
    }

    #[test]
    fn strings_that_look_like_other_things_are_quoted() {
        for s in [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "true",
            "null",
            "~",
            "",
            "0777",
            "0b11",
            "1_000",
            "1.5",
            "1e3",
            ".inf",
            "<<",
            "-",
            "- a",
            "a: b",
            "a #b",
            "#c",
            "@x",
            "`x",
            "1:20",
            "2001-12-14",
            " lead",
            "trail ",
            "tab\tin",
            "*alias",
            "&anchor",
            "!tag",
            "%x",
            "'q'",
            "\"q\"",
            "{a}",
            "[a]",
            "a,b",
            "=",
            "key:",
            "\u{7f}",
            "line\r\nbreak",
        ] {
            let text = to_yaml(&json!({ "k": s }));
            assert_ne!(text, format!("k: {s}\n"), "{s:?} must not be plain");
            round_trip(&json!({ "k": s, s: 1 }));
        }
        assert_eq!(to_yaml(&json!({"version": "1.12.1"})), "version: 1.12.1\n");
        assert_eq!(
            to_yaml(&json!({"app.kubernetes.io/name": "portkey-gateway"})),
            "app.kubernetes.io/name: portkey-gateway\n"
        );
    }

    #[test]
    fn documents_round_trip() {
        round_trip(&json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {
                "a.json": "{\n  \"strategy\": {\"mode\": \"fallback\"}\n}\n",
                "no-newline": "one\ntwo",
                "many-newlines": "one\n\n\n",
                "blank-lines": "a\n\n\nb\n",
                "indented-second": "a\n  b\n",
                "leading-space": "  x\ny",
            },
            "list": [1, -2.5, true, null, "s", [], {}, [[1, 2], [3]], [{"a": 1, "b": [1, {"c": "d"}]}]],
            "empty": {},
            "nested": {"deeper": {"deepest": ["x", {"y": "z"}]}},
            "big": 18_446_744_073_709_551_615u64,
        }));
        round_trip(&json!([{"a": 1}, "b"]));
        round_trip(&json!("top"));
        round_trip(&json!(null));
    }
}
