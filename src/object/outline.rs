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
//! The scan checks the text as JSON while it goes, as strictly as serde_json
//! reads it (RFC 8259's grammar, nesting bounded by [`MAX_NESTING`]), so
//! that a review's object needs no other pass to be known well-formed
//! ([`ReviewOutline`]). What it does not accept is an error, never a panic.
//! A member given twice counts as its last occurrence, as when the text is
//! read into a tree, except in the head, where it is an error (as serde's
//! derived reading has it).

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
    /// Arrays and objects nested more than [`MAX_NESTING`] deep.
    TooDeep,
    /// Not JSON.
    Malformed,
}

type Scanned<T> = Result<T, OutlineError>;

/// How deep arrays and objects may nest inside a value the scan skips. An
/// object nested deeper is refused: with the levels above the value, it
/// stays under serde_json's limit of 128, so that the object can always be
/// read into a tree (a tree that cannot be read is no tree to judge).
pub const MAX_NESTING: usize = 100;

impl Outline {
    pub fn of(text: &str) -> Scanned<Outline> {
        Scan::whole(text, Scan::outline)
    }
}

/// Where an AdmissionReview's `request.object` and `request.oldObject` are
/// in its text, with their outlines, found while the whole text is checked
/// as JSON. Only members that are objects are found; of a member given
/// twice, the last (serde's reading refuses the review anyway).
#[derive(Debug, Default)]
pub struct ReviewOutline {
    pub object: Option<(Range<usize>, Outline)>,
    pub old_object: Option<(Range<usize>, Outline)>,
}

impl ReviewOutline {
    pub fn of(text: &str) -> Scanned<ReviewOutline> {
        Scan::whole(text, |scan, open| {
            if !scan.is_object(open) {
                return Err(OutlineError::NotAnObject);
            }
            let mut found = ReviewOutline::default();
            let end = scan.members(open, |key, value| {
                if key != "request" || !scan.is_object(value) {
                    return scan.value_end(value);
                }
                scan.members(value, |key, value| {
                    let slot = match &*key {
                        "object" => &mut found.object,
                        "oldObject" => &mut found.old_object,
                        _ => return scan.value_end(value),
                    };
                    if !scan.is_object(value) {
                        return scan.value_end(value);
                    }
                    // Scanned as a text of its own: the outline's ranges are
                    // the object's.
                    let object = Scan::new(text.get(value..).ok_or(OutlineError::Malformed)?);
                    let (length, outline) = object.outline(0)?;
                    *slot = Some((value..value + length, outline));
                    Ok(value + length)
                })
            })?;
            Ok((end, found))
        })
    }
}

/// Where the first of eight bytes (read little-endian) that is `"`, `\\`
/// or a control character (below 0x20) is, if one is. Each test sets the
/// high bit of every byte that passes it, and may set it in bytes above one
/// that does (a borrow carried up), never below: the lowest bit set is
/// always a byte that passes.
fn first_string_stop(eight: u64) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |n: u8, w: u64| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS;
    let zero = |w: u64| below(1, w);
    let stops = zero(eight ^ (ONES * u64::from(b'"')))
        | zero(eight ^ (ONES * u64::from(b'\\')))
        | below(0x20, eight);
    (stops != 0).then(|| stops.trailing_zeros() as usize / 8)
}

impl<'a> Scan<'a> {
    /// The object at `open`: where it ends, and its outline.
    fn outline(&self, open: usize) -> Scanned<(usize, Outline)> {
        if !self.is_object(open) {
            return Err(OutlineError::NotAnObject);
        }
        let mut outline = Outline::default();
        let end = self.members(open, |key, value| {
            let (name, slot) = match &*key {
                "apiVersion" => ("apiVersion", &mut outline.api_version),
                "kind" => ("kind", &mut outline.kind),
                "metadata" => ("metadata", &mut outline.metadata),
                "spec" => ("spec", &mut outline.spec),
                _ => return self.value_end(value),
            };
            if slot.is_some() {
                return Err(OutlineError::Duplicate(name));
            }
            let end = if name == "spec" && self.is_object(value) {
                let (end, template, job_template) = self.workload_spec(value)?;
                (outline.template, outline.job_template) = (template, job_template);
                end
            } else {
                self.value_end(value)?
            };
            *slot = Some(value..end);
            Ok(end)
        })?;
        Ok((end, outline))
    }
}

/// The text being scanned.
struct Scan<'a> {
    text: &'a str,
}

/// Which of the open levels are objects (the others arrays), one bit each.
#[derive(Default)]
struct Levels {
    depth: usize,
    objects: u128,
}

const _: () = assert!(MAX_NESTING <= 128, "a bit for each level");

impl Levels {
    fn open(&mut self, object: bool) {
        let bit = 1u128 << self.depth;
        self.objects = if object {
            self.objects | bit
        } else {
            self.objects & !bit
        };
        self.depth += 1;
    }

    /// Whether the innermost open level is an object.
    fn in_object(&self) -> bool {
        self.depth > 0 && self.objects & (1 << (self.depth - 1)) != 0
    }

    fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

impl<'a> Scan<'a> {
    fn new(text: &'a str) -> Self {
        Scan { text }
    }

    /// `text` read whole by `read` (given where its value starts, it
    /// answers where the value ends): only space may surround the value.
    fn whole<T>(
        text: &'a str,
        read: impl FnOnce(&Self, usize) -> Scanned<(usize, T)>,
    ) -> Scanned<T> {
        let scan = Scan::new(text);
        let (end, value) = read(&scan, scan.skip_space(0))?;
        if scan.skip_space(end) != text.len() {
            return Err(OutlineError::Malformed);
        }
        Ok(value)
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    // The scanner's small steps are inlined into each of its loops, the
    // outline's and the index's alike: left to the compiler, they were not
    // in the outline's once the index also used them (2% more instructions
    // per admission).
    #[inline(always)]
    fn at(&self, i: usize) -> Scanned<u8> {
        self.bytes().get(i).copied().ok_or(OutlineError::Malformed)
    }

    fn is_object(&self, i: usize) -> bool {
        self.bytes().get(i) == Some(&b'{')
    }

    #[inline(always)]
    fn skip_space(&self, mut i: usize) -> usize {
        while matches!(self.bytes().get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    }

    /// `i` at an opening quote: the index after the closing one. No
    /// control character unescaped, every escape one of JSON's.
    fn string_end(&self, i: usize) -> Scanned<usize> {
        self.string_end_escaped(i).map(|(end, _)| end)
    }

    /// `string_end`, and whether the string has an escape.
    fn string_end_escaped(&self, i: usize) -> Scanned<(usize, bool)> {
        let bytes = self.bytes();
        let (mut j, mut escaped) = (i + 1, false);
        loop {
            // To the next byte that is not the string's own: eight at a
            // time, the last few one by one.
            loop {
                match bytes.get(j..j + 8).map(<[u8; 8]>::try_from) {
                    Some(Ok(eight)) => match first_string_stop(u64::from_le_bytes(eight)) {
                        Some(at) => break j += at,
                        None => j += 8,
                    },
                    _ => {
                        while bytes
                            .get(j)
                            .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
                        {
                            j += 1;
                        }
                        break;
                    }
                }
            }
            match self.at(j)? {
                b'"' => return Ok((j + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    j += match self.at(j + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' if bytes
                            .get(j + 2..j + 6)
                            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            6
                        }
                        _ => return Err(OutlineError::Malformed),
                    }
                }
                _ => return Err(OutlineError::Malformed),
            }
        }
    }

    /// `i` at a number: the index after it (`-`, then `0` or digits not
    /// starting with `0`, then an optional fraction and exponent).
    fn number_end(&self, i: usize) -> Scanned<usize> {
        let digits_from = |j: usize| {
            let mut k = j;
            while self.bytes().get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            if k == j {
                Err(OutlineError::Malformed)
            } else {
                Ok(k)
            }
        };
        let mut j = i + usize::from(self.bytes().get(i) == Some(&b'-'));
        j = if self.at(j)? == b'0' {
            j + 1
        } else {
            digits_from(j)?
        };
        if self.bytes().get(j) == Some(&b'.') {
            j = digits_from(j + 1)?;
        }
        if matches!(self.bytes().get(j), Some(b'e' | b'E')) {
            j += 1;
            j += usize::from(matches!(self.bytes().get(j), Some(b'+' | b'-')));
            j = digits_from(j)?;
        }
        Ok(j)
    }

    /// `i` at a value that is not an array or object: the index after it.
    #[inline(always)]
    fn scalar_end(&self, i: usize) -> Scanned<usize> {
        let word = |word: &[u8]| {
            if self.bytes().get(i..i + word.len()) == Some(word) {
                Ok(i + word.len())
            } else {
                Err(OutlineError::Malformed)
            }
        };
        match self.at(i)? {
            b'"' => self.string_end(i),
            b't' => word(b"true"),
            b'f' => word(b"false"),
            b'n' => word(b"null"),
            _ => self.number_end(i),
        }
    }

    /// `i` at an object's key: the index of its value.
    #[inline(always)]
    fn after_key(&self, i: usize) -> Scanned<usize> {
        self.key(i).map(|(_, _, value)| value)
    }

    /// `i` at an object's key: where the key ends, whether it has an
    /// escape, and the index of its value.
    #[inline(always)]
    fn key(&self, i: usize) -> Scanned<(usize, bool, usize)> {
        if self.at(i)? != b'"' {
            return Err(OutlineError::Malformed);
        }
        let (key_end, escaped) = self.string_end_escaped(i)?;
        let colon = self.skip_space(key_end);
        if self.at(colon)? != b':' {
            return Err(OutlineError::Malformed);
        }
        Ok((key_end, escaped, self.skip_space(colon + 1)))
    }

    /// `i` at the start of a value: the index after its end. Arrays and
    /// objects are followed without recursion.
    fn value_end(&self, i: usize) -> Scanned<usize> {
        let (mut levels, mut j) = (Levels::default(), i);
        loop {
            // `j` at a value.
            match self.at(j)? {
                open @ (b'{' | b'[') => {
                    if levels.depth == MAX_NESTING {
                        return Err(OutlineError::TooDeep);
                    }
                    let object = open == b'{';
                    levels.open(object);
                    j = self.skip_space(j + 1);
                    if self.at(j)? != if object { b'}' } else { b']' } {
                        if object {
                            j = self.after_key(j)?;
                        }
                        continue;
                    }
                    j += 1;
                    levels.close();
                }
                _ => j = self.scalar_end(j)?,
            }
            // After a value: the rest of the levels it closes.
            loop {
                if levels.depth == 0 {
                    return Ok(j);
                }
                j = self.skip_space(j);
                let object = levels.in_object();
                match self.at(j)? {
                    b',' => {
                        j = self.skip_space(j + 1);
                        if object {
                            j = self.after_key(j)?;
                        }
                        break;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return Err(OutlineError::Malformed),
                }
                j += 1;
                levels.close();
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
            let (key_end, escaped, value) = self.key(i)?;
            let raw = self.text.get(i..key_end).ok_or(OutlineError::Malformed)?;
            let key = if escaped {
                Cow::Owned(serde_json::from_str(raw).map_err(|_| OutlineError::Malformed)?)
            } else {
                Cow::Borrowed(&raw[1..raw.len() - 1])
            };
            let end = member(key, value)?;
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

/// Every value of an object's text, in document order, each knowing where
/// its key is and where the values after its own end: enough to answer
/// "is this member there?" for a path, with no JSON tree. The patch
/// builder asks that of every place it might add to, and most objects
/// already have them all.
///
/// Keys are compared as written, so an object with an escape in any key
/// has no index (a key as written would not be the key as read).
pub struct MemberIndex<'t> {
    text: &'t str,
    nodes: Vec<IndexNode>,
}

#[derive(Clone, Copy)]
struct IndexNode {
    /// The key's text between its quotes (a list item's: empty).
    key: (u32, u32),
    /// Where the value starts.
    start: u32,
    /// The node after the last of this value's own.
    next: u32,
}

impl<'t> MemberIndex<'t> {
    /// The index of `text`, a JSON value already checked as such; `None`
    /// when a key has an escape, the text does not fit 32-bit offsets, or
    /// it nests deeper than [`MAX_NESTING`].
    pub fn of(text: &'t str) -> Option<MemberIndex<'t>> {
        u32::try_from(text.len()).ok()?;
        let scan = Scan::new(text);
        // About one value in every 16 bytes of a Kubernetes object.
        let mut nodes = Vec::with_capacity(text.len() / 16);
        scan.index_value(scan.skip_space(0), (0, 0), 0, &mut nodes)?;
        Some(MemberIndex { text, nodes })
    }

    fn first_byte(&self, node: usize) -> Option<u8> {
        let start = self.nodes.get(node)?.start;
        self.text.as_bytes().get(start as usize).copied()
    }

    /// The children of `node`, in order.
    fn children(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.nodes.get(node).map_or(0, |n| n.next as usize);
        let mut child = node + 1;
        std::iter::from_fn(move || {
            let this = child;
            child = self.nodes.get(this).filter(|_| this < end)?.next as usize;
            Some(this)
        })
    }

    /// The member `key` of the object at `node` (of a key given twice, the
    /// last, as when the text is read into a tree).
    fn member(&self, node: usize, key: &str) -> Option<usize> {
        self.children(node)
            .filter(|&child| {
                let (from, to) = self.nodes[child].key;
                self.text.get(from as usize..to as usize) == Some(key)
            })
            .last()
    }

    /// Whether adding `leaf` below `parents` would add anything: a parent
    /// or the leaf absent or null, every parent before it an object or a
    /// list holding the item named. The same answer as the patch builder's
    /// walk of the tree serde_json reads from the same text (a text serde
    /// refuses, such as a number beyond `f64`, reads as no tree at all).
    pub fn would_add<S: AsRef<str>>(&self, parents: &[S], leaf: &str) -> bool {
        let mut node = 0;
        for segment in parents {
            node = match self.first_byte(node) {
                Some(b'{') => match self.member(node, segment.as_ref()) {
                    Some(child) if self.first_byte(child) != Some(b'n') => child,
                    _ => return true,
                },
                Some(b'[') => {
                    match list_index(segment.as_ref()).and_then(|i| self.children(node).nth(i)) {
                        Some(child) => child,
                        None => return false,
                    }
                }
                _ => return false,
            };
        }
        self.first_byte(node) == Some(b'{')
            && self
                .member(node, leaf)
                .is_none_or(|child| self.first_byte(child) == Some(b'n'))
    }
}

/// A list index as JSON Pointer writes it: decimal digits, no leading zero
/// and no sign. Only one spelling per item, so that a place is known by
/// its text (`01` would name the item `1` does, and JSON Pointer refuses
/// it).
pub fn list_index(segment: &str) -> Option<usize> {
    let canonical = segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    canonical.then(|| segment.parse().ok()).flatten()
}

impl Scan<'_> {
    /// Indexes the value at `at` (with `key`, and below it everything it
    /// holds); returns where it ends.
    fn index_value(
        &self,
        at: usize,
        key: (u32, u32),
        depth: usize,
        nodes: &mut Vec<IndexNode>,
    ) -> Option<usize> {
        if depth > MAX_NESTING {
            return None;
        }
        let this = nodes.len();
        nodes.push(IndexNode {
            key,
            start: u32::try_from(at).ok()?,
            next: 0,
        });
        let close = match self.at(at).ok()? {
            b'{' => b'}',
            b'[' => b']',
            _ => {
                let end = self.scalar_end(at).ok()?;
                nodes[this].next = u32::try_from(nodes.len()).ok()?;
                return Some(end);
            }
        };
        let mut i = self.skip_space(at + 1);
        if self.at(i).ok()? != close {
            loop {
                let (value, key) = if close == b'}' {
                    let (key_end, escaped, value) = self.key(i).ok()?;
                    if escaped {
                        return None;
                    }
                    let key = (u32::try_from(i + 1).ok()?, u32::try_from(key_end - 1).ok()?);
                    (value, key)
                } else {
                    (i, (0, 0))
                };
                i = self.skip_space(self.index_value(value, key, depth + 1, nodes)?);
                match self.at(i).ok()? {
                    b',' => i = self.skip_space(i + 1),
                    byte if byte == close => break,
                    _ => return None,
                }
            }
        }
        nodes[this].next = u32::try_from(nodes.len()).ok()?;
        Some(i + 1)
    }
}

/// `text` broken at byte `at` (taken modulo its length) in one of four
/// ways: cut there, a byte removed, replaced by `byte`, or `byte` inserted.
/// `None` when that leaves no UTF-8. For the properties that break JSON at
/// random.
#[cfg(test)]
pub(crate) fn broken_at(text: String, at: usize, change: usize, byte: u8) -> Option<String> {
    let mut broken = text.into_bytes();
    let at = at % (broken.len() + 1);
    match change % 4 {
        0 => broken.truncate(at),
        1 if at < broken.len() => {
            broken.remove(at);
        }
        2 if at < broken.len() => broken[at] = byte,
        _ => broken.insert(at, byte),
    }
    String::from_utf8(broken).ok()
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

    /// Whether the scan takes `text` as one JSON value.
    fn scanned_whole(text: &str) -> bool {
        Scan::whole(text, |scan, start| {
            scan.value_end(start).map(|end| (end, ()))
        })
        .is_ok()
    }

    fn serde_reads(text: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    }

    #[test]
    fn json_as_strictly_as_serde_reads_it() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let valid = [
            "-0",
            "0.0e+0",
            "1E5",
            "-12.5e-3",
            "123",
            r#""\u00e9\/\b\f\n\r\t\"\\""#,
            "[]",
            "{}",
            " [ 1 , { \"a\" : [ ] } ] ",
            "\"é😀\"",
            "true",
            "false",
            "null",
        ];
        for text in valid
            .iter()
            .map(|t| t.to_string())
            .chain([nested(MAX_NESTING)])
        {
            assert!(serde_reads(&text), "{text}");
            assert!(scanned_whole(&text), "{text}");
        }
        let invalid = [
            "01",
            "-01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "1e+",
            "1.e5",
            "tru",
            "nul",
            "nulll",
            "NaN",
            "Infinity",
            "'a'",
            "[1,]",
            "{\"a\":1,}",
            "[,1]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":}",
            "{a:1}",
            "{1:1}",
            r#""\x""#,
            r#""\u12""#,
            r#""\u12g4""#,
            "\"a\u{1}b\"",
            "\"a\nb\"",
            "\"a\tb\"",
            "\"abc",
            "[",
            "]",
            "{",
            "}",
            "",
            "[1]]",
            "{}}",
            "[}",
            "{]",
        ];
        for text in invalid {
            assert!(!serde_reads(text), "{text}");
            assert!(!scanned_whole(text), "{text}");
        }
        // Deeper: refused, where serde's skipping would still take it.
        assert!(!scanned_whole(&nested(MAX_NESTING + 1)));
        for depth in [MAX_NESTING + 1, 127, 300, 100_000] {
            let text = format!(r#"{{"status":{}}}"#, nested(depth));
            assert!(serde_reads(&text), "{depth}");
            assert_eq!(Outline::of(&text).unwrap_err(), OutlineError::TooDeep);
        }
        let deepest = format!(r#"{{"status":{}}}"#, nested(MAX_NESTING));
        let tree: Value = serde_json::from_str(&deepest).unwrap();
        assert!(Outline::of(&deepest).is_ok() && tree.is_object());
        let mixed = format!("{}1{}", r#"[{"a":"#.repeat(50), "}]".repeat(50));
        assert!(Outline::of(&format!(r#"{{"status":{mixed}}}"#)).is_ok());
        let crossed = format!("{}1{}", r#"[{"a":"#.repeat(50), "]}".repeat(50));
        assert!(Outline::of(&format!(r#"{{"status":{crossed}}}"#)).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 4096,
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn the_first_stop_in_eight_bytes(eight: [u8; 8], stop in 0usize..9) {
            let mut eight = eight;
            // Often with a stop planted among bytes that are not.
            if stop < 8 {
                for b in &mut eight {
                    *b = (*b).max(0x20);
                    if *b == b'"' || *b == b'\\' {
                        *b = b'a';
                    }
                }
                eight[stop] = [b'"', b'\\', 0x1f, 0][stop % 4];
            }
            let naive = eight.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            proptest::prop_assert_eq!(first_string_stop(u64::from_le_bytes(eight)), naive);
        }

        /// Valid JSON is taken whole; a broken one is taken only if serde
        /// reads it too.
        #[test]
        fn never_takes_what_serde_refuses(
            value in any_json(),
            pretty: bool,
            at in 0usize..10_000,
            change in 0usize..4,
            byte in proptest::sample::select(
                br#" "\/{}[]:,.-+eE0123456789tfnulx"#.to_vec()
            ),
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            };
            proptest::prop_assert!(scanned_whole(&text), "{}", text);
            if let Some(broken) = broken_at(text, at, change, byte) {
                if scanned_whole(&broken) {
                    proptest::prop_assert!(serde_reads(&broken), "{}", broken);
                }
            }
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
