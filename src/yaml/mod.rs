//! YAML read the way `kubectl` reads it, with the source position of every
//! node, and YAML written back.
//!
//! The events come from `saphyr-parser` (a maintained, dependency-light YAML
//! parser that reports a span for every event); this module builds JSON
//! from them as sigs.k8s.io/yaml does: YAML 1.1 scalars (see [`scalar`]),
//! anchors and aliases, merge keys (`<<`), flow style, multi-document
//! streams, keys turned into strings. Alongside each document it keeps a
//! [`PosNode`] tree: document → JSON path → line and column.
//!
//! Everything is bounded: nesting depth, documents per stream, and what
//! aliases may expand to (a "billion laughs" document fails fast instead of
//! filling memory).

pub mod emit;
pub mod position;
pub mod scalar;

pub use emit::to_yaml;
pub use position::{parse_path, Located, Pos, PosNode, Segment};

use base64::Engine;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use scalar::{go_format_float_key, resolve_plain, Scalar, MERGE_KEY};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Bounds on what one stream may make the reader do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Mappings and sequences nested deeper than this are refused.
    pub max_depth: usize,
    /// Documents in one stream.
    pub max_documents: usize,
    /// Nodes that aliases may add to one stream, all aliases together.
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 200,
            max_documents: 10_000,
            max_alias_nodes: 100_000,
        }
    }
}

/// Unusable YAML, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl YamlError {
    fn at(pos: Pos, message: impl Into<String>) -> Self {
        YamlError {
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }
}

/// One document of a stream.
#[derive(Clone, Debug)]
pub struct YamlDocument {
    /// The document as JSON (`Value::Null` for an empty document).
    pub value: Value,
    /// Where each of its nodes was written.
    pub positions: PosNode,
}

/// Reads every document of `text`.
pub fn parse_stream(text: &str, limits: &Limits) -> Result<Vec<YamlDocument>, YamlError> {
    // The parser is fuzzed upstream; should it still panic on some input,
    // that input is reported as unreadable rather than aborting the run.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Reader::new(text, limits).stream()
    }))
    .unwrap_or_else(|_| {
        Err(YamlError::at(
            Pos { line: 1, column: 1 },
            "the YAML parser failed on this input",
        ))
    })
}

/// Reads a stream that holds at most one document (`Value::Null` if none).
pub fn parse_one(text: &str) -> Result<Value, YamlError> {
    let docs = parse_stream(text, &Limits::default())?;
    let mut docs = docs.into_iter().filter(|d| !d.value.is_null());
    let first = docs.next().map_or(Value::Null, |d| d.value);
    match docs.next() {
        Some(d) => Err(YamlError::at(
            d.positions.pos(),
            "expected one YAML document, found more",
        )),
        None => Ok(first),
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn scan_error(e: &ScanError) -> YamlError {
    YamlError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_owned(),
    }
}

/// A node as built: its JSON, its positions, its size in nodes.
#[derive(Clone)]
struct Built {
    value: Value,
    positions: PosNode,
    nodes: usize,
    /// The text of a scalar key, for error messages and merge detection.
    merge_key: bool,
}

struct Reader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    limits: &'a Limits,
    anchors: HashMap<usize, Built>,
    depth: usize,
    alias_nodes: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str, limits: &'a Limits) -> Self {
        Reader {
            parser: Parser::new_from_str(text),
            limits,
            anchors: HashMap::new(),
            depth: 0,
            alias_nodes: 0,
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(e)) => Err(scan_error(&e)),
            None => Err(YamlError::at(Pos::default(), "unexpected end of input")),
        }
    }

    fn stream(mut self) -> Result<Vec<YamlDocument>, YamlError> {
        let mut docs = Vec::new();
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(_) => {
                    if docs.len() == self.limits.max_documents {
                        return Err(YamlError::at(
                            pos_of(&span),
                            format!(
                                "more than {} documents in one stream",
                                self.limits.max_documents
                            ),
                        ));
                    }
                    // Anchors do not reach across documents.
                    self.anchors.clear();
                    let (event, span) = self.next()?;
                    let root = self.node(event, span)?;
                    docs.push(YamlDocument {
                        value: root.value,
                        positions: root.positions,
                    });
                }
                other => {
                    return Err(YamlError::at(
                        pos_of(&span),
                        format!("unexpected {other:?} outside a document"),
                    ))
                }
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Built, YamlError> {
        let pos = pos_of(&span);
        let (built, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                (self.scalar(&text, style, tag.as_deref(), pos)?, anchor)
            }
            Event::SequenceStart(anchor, _) => (self.sequence(pos)?, anchor),
            Event::MappingStart(anchor, _) => (self.mapping(pos)?, anchor),
            Event::Alias(id) => (self.alias(id, pos)?, 0),
            other => {
                return Err(YamlError::at(pos, format!("unexpected {other:?}")));
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, built.clone());
        }
        Ok(built)
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<Built, YamlError> {
        let Some(target) = self.anchors.get(&id) else {
            return Err(YamlError::at(pos, "alias to an unknown anchor"));
        };
        self.alias_nodes = self.alias_nodes.saturating_add(target.nodes);
        if self.alias_nodes > self.limits.max_alias_nodes {
            return Err(YamlError::at(
                pos,
                format!(
                    "aliases expand to more than {} nodes",
                    self.limits.max_alias_nodes
                ),
            ));
        }
        let mut built = target.clone();
        built.positions = built.positions.at(pos);
        built.merge_key = false;
        Ok(built)
    }

    fn enter(&mut self, pos: Pos) -> Result<(), YamlError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(YamlError::at(
                pos,
                format!("nested deeper than {} levels", self.limits.max_depth),
            ));
        }
        Ok(())
    }

    fn sequence(&mut self, pos: Pos) -> Result<Built, YamlError> {
        self.enter(pos)?;
        let mut values = Vec::new();
        let mut positions = Vec::new();
        let mut nodes = 1usize;
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                break;
            }
            let item = self.node(event, span)?;
            nodes = nodes.saturating_add(item.nodes);
            values.push(item.value);
            positions.push(item.positions);
        }
        self.depth -= 1;
        Ok(Built {
            value: Value::Array(values),
            positions: PosNode::Seq(pos, positions),
            nodes,
            merge_key: false,
        })
    }

    fn mapping(&mut self, pos: Pos) -> Result<Built, YamlError> {
        self.enter(pos)?;
        let mut map = MapBuilder::default();
        let mut nodes = 1usize;
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key_pos = pos_of(&span);
            let key = self.node(event, span)?;
            let (event, span) = self.next()?;
            let value = self.node(event, span)?;
            nodes = nodes.saturating_add(key.nodes).saturating_add(value.nodes);
            if key.merge_key {
                map.merge(key_pos, value)?;
            } else {
                let name = key_string(&key.value, key_pos)?;
                map.explicit(name, key_pos, value)?;
            }
        }
        self.depth -= 1;
        let (value, entries) = map.finish();
        Ok(Built {
            value: Value::Object(value),
            positions: PosNode::Map(pos, entries),
            nodes,
            merge_key: false,
        })
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<Built, YamlError> {
        let plain = style == ScalarStyle::Plain;
        let core = tag
            .filter(|t| t.is_yaml_core_schema())
            .map(|t| t.suffix.as_str());
        let merge_key = (plain && tag.is_none() && text == MERGE_KEY) || core == Some("merge");
        let string = || Value::String(text.to_owned());
        let value = match (tag, core) {
            (None, _) if plain => json_scalar(&resolve_plain(text), text, pos)?,
            (None, _) => string(),
            (Some(_), Some("str" | "merge" | "map" | "seq" | "set" | "omap" | "pairs")) => string(),
            (Some(_), Some("binary")) => {
                let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| YamlError::at(pos, "!!binary value is not valid base64"))?;
                Value::String(String::from_utf8_lossy(&bytes).into_owned())
            }
            (Some(_), Some(wanted @ ("bool" | "int" | "float" | "null" | "timestamp"))) => {
                tagged(text, wanted, pos)?
            }
            // A local or unknown tag (`!`, `!foo`): go-yaml v2 keeps the text.
            (Some(_), _) => string(),
        };
        Ok(Built {
            value,
            positions: PosNode::Scalar(pos),
            nodes: 1,
            merge_key,
        })
    }
}

/// A scalar with an explicit core tag, as go-yaml v2 checks it.
fn tagged(text: &str, wanted: &str, pos: Pos) -> Result<Value, YamlError> {
    let resolved = resolve_plain(text);
    let ok = match (wanted, &resolved) {
        ("bool", Scalar::Bool(_)) | ("null", Scalar::Null) => true,
        ("int", Scalar::Int(_) | Scalar::UInt(_)) => true,
        ("float", Scalar::Float(_)) => true,
        ("float", Scalar::Int(i)) => {
            #[allow(clippy::cast_precision_loss)]
            return json_scalar(&Scalar::Float(*i as f64), text, pos);
        }
        // go-yaml v2 takes `YYYY-...` as a timestamp; into JSON it is the text.
        ("timestamp", _) => {
            let b = text.as_bytes();
            b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
        }
        _ => false,
    };
    if !ok {
        return Err(YamlError::at(
            pos,
            format!("cannot decode {} `{text}` as a !!{wanted}", resolved.tag()),
        ));
    }
    if wanted == "timestamp" {
        return Ok(Value::String(text.to_owned()));
    }
    json_scalar(&resolved, text, pos)
}

/// A resolved scalar as JSON, the way Go's encoding/json writes what go-yaml
/// produced: a whole float becomes an integer, NaN and infinities fail.
fn json_scalar(scalar: &Scalar, text: &str, pos: Pos) -> Result<Value, YamlError> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Int(i) => Value::from(*i),
        Scalar::UInt(u) => Value::from(*u),
        Scalar::Float(f) if !f.is_finite() => {
            return Err(YamlError::at(
                pos,
                format!("`{text}` is not a number JSON can hold"),
            ))
        }
        Scalar::Float(f) => whole_float(*f)
            .or_else(|| Number::from_f64(*f).map(Value::Number))
            .unwrap_or(Value::Null),
        Scalar::Str => Value::String(text.to_owned()),
    })
}

/// Go prints a whole float64 below 1e21 without a fraction, so what the API
/// server receives is an integer.
fn whole_float(f: f64) -> Option<Value> {
    if f.fract() != 0.0 || f.abs() >= 1e21 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    if f.abs() < 9.2e18 {
        return Some(Value::from(f as i64));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    if f > 0.0 && f < 1.8e19 {
        return Some(Value::from(f as u64));
    }
    None
}

/// A key as sigs.k8s.io/yaml turns it into a JSON object key.
fn key_string(key: &Value, pos: Pos) -> Result<String, YamlError> {
    match key {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) if n.is_f64() => Ok(go_format_float_key(n.as_f64().unwrap_or(0.0))),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Err(YamlError::at(pos, "a mapping key is null")),
        Value::Array(_) | Value::Object(_) => Err(YamlError::at(
            pos,
            "a mapping key is a mapping or sequence, which JSON cannot hold",
        )),
    }
}

/// How a key of a mapping got its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Explicit,
    Merged,
}

/// A mapping being built: explicit keys and merged ones (`<<`).
#[derive(Default)]
struct MapBuilder {
    values: Map<String, Value>,
    entries: HashMap<String, (Pos, PosNode)>,
    origin: HashMap<String, Origin>,
    merge_at: Option<Pos>,
}

impl MapBuilder {
    fn explicit(&mut self, key: String, at: Pos, value: Built) -> Result<(), YamlError> {
        match self.origin.get(&key) {
            Some(Origin::Explicit) => {
                let first = self.entries.get(&key).map_or(at, |e| e.0);
                return Err(YamlError::at(
                    at,
                    format!(
                        "duplicate key `{key}` (first at line {}); YAML readers disagree on which one counts",
                        first.line
                    ),
                ));
            }
            // An explicit key overrides a merged one, in every reader.
            Some(Origin::Merged) | None => {}
        }
        self.origin.insert(key.clone(), Origin::Explicit);
        self.entries.insert(key.clone(), (at, value.positions));
        self.values.insert(key, value.value);
        Ok(())
    }

    fn merge(&mut self, at: Pos, value: Built) -> Result<(), YamlError> {
        if let Some(first) = self.merge_at {
            return Err(YamlError::at(
                at,
                format!(
                    "duplicate merge key `<<` (first at line {}); list the mappings in one `<<: [...]`",
                    first.line
                ),
            ));
        }
        self.merge_at = Some(at);
        let not_a_map = || {
            YamlError::at(
                at,
                "a merge key `<<` takes a mapping, an alias of one, or a list of them",
            )
        };
        let sources: Vec<(Map<String, Value>, PosNode)> = match (value.value, value.positions) {
            (Value::Object(map), positions) => vec![(map, positions)],
            (Value::Array(items), PosNode::Seq(_, positions)) => items
                .into_iter()
                .zip(positions)
                .map(|(item, positions)| match item {
                    Value::Object(map) => Ok((map, positions)),
                    _ => Err(not_a_map()),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(not_a_map()),
        };
        // Earlier mappings in the list take precedence.
        for (map, positions) in sources.into_iter().rev() {
            let PosNode::Map(_, mut entries) = positions else {
                return Err(not_a_map());
            };
            for (key, value) in map {
                if self.origin.get(&key) == Some(&Origin::Explicit) {
                    let first = self.entries.get(&key).map_or(at, |e| e.0);
                    return Err(YamlError::at(
                        at,
                        format!(
                            "key `{key}` (line {}) is set before the merge key `<<` that sets it too; \
                             YAML readers disagree on which one counts: write `<<` first",
                            first.line
                        ),
                    ));
                }
                let place = entries.remove(&key).unwrap_or((at, PosNode::Scalar(at)));
                self.origin.insert(key.clone(), Origin::Merged);
                self.entries.insert(key.clone(), place);
                self.values.insert(key, value);
            }
        }
        Ok(())
    }

    fn finish(self) -> (Map<String, Value>, HashMap<String, (Pos, PosNode)>) {
        (self.values, self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        parse_one(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> YamlError {
        match parse_stream(text, &Limits::default()) {
            Ok(docs) => panic!("{text}: read as {:?}", docs.first().map(|d| &d.value)),
            Err(e) => e,
        }
    }

    #[test]
    fn scalars_are_yaml_1_1_as_kubectl_reads_them() {
        let doc = one(concat!(
            "privileged: yes\nreadOnly: off\nshort: n\nmode: 0777\nbinary: 0b11\n",
            "big: 1_000\nhex: -0x1F\nquoted: \"yes\"\nsingle: 'on'\n",
            "nothing: ~\nempty:\nfloat: 1.5\nwhole: 1e3\nversion: 1.12.1\n",
            "when: 2001-12-14\nblock: |\n  yes\n",
        ));
        assert_eq!(
            doc,
            json!({
                "privileged": true, "readOnly": false, "short": false, "mode": 511,
                "binary": 3, "big": 1000, "hex": -31, "quoted": "yes", "single": "on",
                "nothing": null, "empty": null, "float": 1.5, "whole": 1000,
                "version": "1.12.1", "when": "2001-12-14", "block": "yes\n",
            })
        );
    }

    #[test]
    fn tags_are_honoured_like_go_yaml_v2() {
        let doc = one(concat!(
            "a: !!str yes\nb: !!int \"12\"\nc: !!float 3\nd: !!bool \"off\"\n",
            "e: !!binary aGVsbG8=\nf: !custom 12\ng: ! 12\nh: !!null ''\n",
        ));
        assert_eq!(
            doc,
            json!({"a": "yes", "b": 12, "c": 3, "d": false, "e": "hello",
                   "f": "12", "g": "12", "h": null})
        );
        assert!(err("a: !!int abc\n").message.contains("as a !!int"));
        assert!(err("a: !!binary '%%%'\n").message.contains("base64"));
    }

    #[test]
    fn keys_become_strings_like_sigs_k8s_io_yaml() {
        let doc = one("1: a\nyes: b\n1.5: c\n0x10: d\n\"quoted\": e\n");
        assert_eq!(
            doc,
            json!({"1": "a", "true": "b", "1.5": "c", "16": "d", "quoted": "e"})
        );
        assert!(err("~: a\n").message.contains("null"));
        assert!(err("? [a]\n: b\n").message.contains("mapping or sequence"));
    }

    #[test]
    fn json_cannot_hold_infinity_or_nan() {
        assert!(err("a: .inf\n").message.contains("JSON"));
        assert!(err("a: .NaN\n").message.contains("JSON"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let doc = one(concat!(
            "base: &labels {app: gw, tier: web}\n",
            "copy: *labels\n",
            "merged:\n  <<: *labels\n  tier: api\n",
            "list:\n  <<: [{a: 1, b: 1}, {a: 2, c: 2}]\n",
            "quoted:\n  \"<<\": not a merge\n",
        ));
        assert_eq!(doc["copy"], json!({"app": "gw", "tier": "web"}));
        assert_eq!(doc["merged"], json!({"app": "gw", "tier": "api"}));
        assert_eq!(doc["list"], json!({"a": 1, "b": 1, "c": 2}));
        assert_eq!(doc["quoted"], json!({"<<": "not a merge"}));
        let e = err("m:\n  tier: api\n  <<: {tier: web}\n");
        assert!(e.message.contains("write `<<` first"), "{e}");
        assert!(err("<<: 5\n").message.contains("merge key"));
        assert!(err("a: *nope\n").line >= 1);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = err("a: 1\nb: 2\na: 3\n");
        assert_eq!((e.line, e.column), (3, 1));
        assert!(
            e.message.contains("duplicate key `a` (first at line 1)"),
            "{e}"
        );
        // After conversion to strings, too: `1` and "1" are the same key.
        assert!(err("1: a\n\"1\": b\n").message.contains("duplicate"));
    }

    #[test]
    fn flow_style_and_multi_document_streams() {
        let docs = parse_stream(
            "--- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n---\n--- [1, 2]\n...\n",
            &Limits::default(),
        )
        .unwrap();
        let values: Vec<&Value> = docs.iter().map(|d| &d.value).collect();
        assert_eq!(
            values,
            vec![
                &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
                &Value::Null,
                &json!([1, 2]),
            ]
        );
        assert!(parse_one("a: 1\n---\nb: 2\n").is_err());
        assert_eq!(parse_one("").unwrap(), Value::Null);
    }

    #[test]
    fn positions_of_keys_items_and_aliases() {
        let text = "a:\n  b: &x\n    c: 1\n  list:\n    - first\n    - {d: 2}\n  e: *x\n";
        let docs = parse_stream(text, &Limits::default()).unwrap();
        let p = &docs[0].positions;
        let at = |path: &str| {
            let l = p.locate(&parse_path(path));
            (l.pos.line, l.pos.column, l.exact)
        };
        assert_eq!(at(""), (1, 1, true));
        assert_eq!(at("a.b"), (2, 3, true));
        assert_eq!(at("a.b.c"), (3, 5, true));
        assert_eq!(at("a.list[1]"), (6, 7, true));
        assert_eq!(at("a.list[1].d"), (6, 8, true));
        // An alias: the key where it is used, the contents where the anchor was.
        assert_eq!(at("a.e"), (7, 3, true));
        assert_eq!(at("a.e.c"), (3, 5, true));
        // Absent: the nearest existing parent.
        assert_eq!(at("a.b.missing.deeper"), (2, 3, false));
        assert_eq!(at("a.list[9]"), (4, 3, false));
        assert_eq!(at("nothing"), (1, 1, false));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = err("a: 1\nb: [unclosed\n");
        assert!(e.line >= 2, "{e}");
        let e = err("a: 1\n  bad: indent\n");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn nesting_depth_is_bounded() {
        let deep = "[".repeat(100_000);
        let e = err(&deep);
        // The parser itself stops flow collections at 255 levels; whichever
        // bound comes first, the input is refused.
        assert!(
            e.message.contains("nested deeper than 200") || e.message.contains("recursion limit"),
            "{e}"
        );
        let ok = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse_stream(&ok, &Limits::default()).is_ok());
        let block: String = (0..250).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert!(err(&block).message.contains("nested deeper"));
    }

    #[test]
    fn alias_expansion_is_bounded() {
        let mut laughs = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
            let prev = ["a", "b", "c", "d", "e", "f", "g", "h"][i];
            laughs.push_str(&format!(
                "{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        let e = err(&laughs);
        assert!(e.message.contains("aliases expand to more than"), "{e}");
        let limits = Limits {
            max_alias_nodes: 5,
            ..Limits::default()
        };
        assert!(parse_stream("a: &a [1, 2]\nb: *a\n", &limits).is_ok());
        assert!(parse_stream("a: &a [1, 2]\nb: *a\nc: *a\n", &limits).is_err());
    }

    #[test]
    fn document_count_is_bounded() {
        let limits = Limits {
            max_documents: 3,
            ..Limits::default()
        };
        assert!(parse_stream("a: 1\n---\nb: 2\n---\nc: 3\n", &limits).is_ok());
        let e = parse_stream("a: 1\n---\nb: 2\n---\nc: 3\n---\nd: 4\n", &limits).unwrap_err();
        assert_eq!(e.line, 6);
        assert!(e.message.contains("more than 3 documents"));
    }
}
