//! Where each field of a document was written, and the display paths of
//! violations (`spec.template.spec.containers[0].image`,
//! `metadata.labels["app.kubernetes.io/name"]`) resolved against it.

use serde::Serialize;
use std::collections::HashMap;

/// A place in a file: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// The positions of one node and of everything below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PosNode {
    Scalar(Pos),
    /// A mapping: its own position and, per key, where the key was written
    /// and the positions of its value.
    Map(Pos, HashMap<String, (Pos, PosNode)>),
    Seq(Pos, Vec<PosNode>),
}

impl PosNode {
    pub fn pos(&self) -> Pos {
        match self {
            PosNode::Scalar(p) | PosNode::Map(p, _) | PosNode::Seq(p, _) => *p,
        }
    }

    /// The same tree seen from another place: an alias is written where it
    /// is used, its contents where its anchor was.
    pub(crate) fn at(&self, pos: Pos) -> PosNode {
        let mut copy = self.clone();
        match &mut copy {
            PosNode::Scalar(p) | PosNode::Map(p, _) | PosNode::Seq(p, _) => *p = pos,
        }
        copy
    }

    /// The position of the field at `path`, or of its nearest existing
    /// parent when the field is absent. `exact` tells which.
    pub fn locate(&self, path: &[Segment]) -> Located {
        let mut node = self;
        let mut pos = self.pos();
        for segment in path {
            let next = match (node, segment) {
                (PosNode::Map(_, entries), Segment::Key(key)) => {
                    entries.get(key.as_str()).map(|(at, n)| (*at, n))
                }
                (PosNode::Seq(_, items), Segment::Index(i)) => items.get(*i).map(|n| (n.pos(), n)),
                _ => None,
            };
            match next {
                Some((at, child)) => {
                    pos = at;
                    node = child;
                }
                None => return Located { pos, exact: false },
            }
        }
        Located { pos, exact: true }
    }
}

/// The answer of [`PosNode::locate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    pub pos: Pos,
    /// `false` when `pos` is the nearest existing parent of an absent field.
    pub exact: bool,
}

/// One step of a display path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Reads a display path: `name` and `.name` are map keys, `[3]` a list
/// index, `["a.b/c"]` a quoted map key (escaped as Rust's `{:?}` writes
/// it). Text that is not a valid path reads as far as it is valid.
pub fn parse_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut chars = path.chars().peekable();
    let mut name = String::new();
    let flush = |name: &mut String, out: &mut Vec<Segment>| {
        if !name.is_empty() {
            out.push(Segment::Key(std::mem::take(name)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut name, &mut out),
            '[' => {
                flush(&mut name, &mut out);
                if chars.peek() == Some(&'"') {
                    chars.next();
                    let Some(key) = quoted(&mut chars) else {
                        return out;
                    };
                    if chars.next() != Some(']') {
                        return out;
                    }
                    out.push(Segment::Key(key));
                } else {
                    let mut digits = String::new();
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                        digits.push(c);
                    }
                    match digits.parse() {
                        Ok(i) => out.push(Segment::Index(i)),
                        Err(_) => return out,
                    }
                }
            }
            c => name.push(c),
        }
    }
    flush(&mut name, &mut out);
    out
}

/// The rest of a `"..."` string (opening quote consumed), unescaped.
fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                'u' => {
                    if chars.next()? != '{' {
                        return None;
                    }
                    let mut hex = String::new();
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                        hex.push(c);
                    }
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::violation::FieldPath;

    #[test]
    fn reads_what_field_path_writes() {
        let path = FieldPath::root("spec")
            .field("template")
            .field("spec")
            .field("containers")
            .index(0)
            .field("image");
        assert_eq!(
            parse_path(&path.to_string()),
            vec![
                Segment::Key("spec".into()),
                Segment::Key("template".into()),
                Segment::Key("spec".into()),
                Segment::Key("containers".into()),
                Segment::Index(0),
                Segment::Key("image".into()),
            ]
        );
        for key in [
            "app.kubernetes.io/name",
            "quote\"and\\slash",
            "tab\there",
            "ünïcode.key",
        ] {
            let path = FieldPath::root("metadata").field("labels").key(key);
            assert_eq!(
                parse_path(&path.to_string()),
                vec![
                    Segment::Key("metadata".into()),
                    Segment::Key("labels".into()),
                    Segment::Key(key.into()),
                ],
                "{path}"
            );
        }
        assert_eq!(
            parse_path("data[\"a.json\"].targets[2]"),
            vec![
                Segment::Key("data".into()),
                Segment::Key("a.json".into()),
                Segment::Key("targets".into()),
                Segment::Index(2),
            ]
        );
        assert_eq!(parse_path(""), vec![]);
        assert_eq!(parse_path("a[x]"), vec![Segment::Key("a".into())]);
        assert_eq!(parse_path("a[\"unclosed"), vec![Segment::Key("a".into())]);
    }
}
