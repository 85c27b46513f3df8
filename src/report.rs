//! Rendering offline verdicts: JSON for machines, text for people.

use crate::offline::ObjectReport;
use crate::rules::Action;
use serde::Serialize;
use std::fmt::Write;

#[derive(Serialize)]
pub struct CheckReport<'a> {
    pub allowed: bool,
    pub objects: &'a [ObjectReport],
}

pub fn json(objects: &[ObjectReport]) -> String {
    let report = CheckReport {
        allowed: objects.iter().all(|o| o.allowed),
        objects,
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

struct Palette {
    red: &'static str,
    green: &'static str,
    yellow: &'static str,
    dim: &'static str,
    reset: &'static str,
}

const COLOUR: Palette = Palette {
    red: "\x1b[31m",
    green: "\x1b[32m",
    yellow: "\x1b[33m",
    dim: "\x1b[2m",
    reset: "\x1b[0m",
};
const PLAIN: Palette = Palette {
    red: "",
    green: "",
    yellow: "",
    dim: "",
    reset: "",
};

/// Per object a header, one line per violation and warning, then a summary.
pub fn text(objects: &[ObjectReport], colour: bool) -> String {
    let c = if colour { &COLOUR } else { &PLAIN };
    let mut out = String::new();
    let mut violations = 0;
    let mut warnings = 0;
    for o in objects {
        let (mark, colour) = if o.allowed {
            ("ALLOWED", c.green)
        } else {
            ("DENIED ", c.red)
        };
        let place = match &o.namespace {
            Some(ns) => format!("{ns}/{}", o.name),
            None => o.name.clone(),
        };
        let _ = writeln!(
            out,
            "{colour}{mark}{} {} {place} {}({}){}",
            c.reset, o.kind, c.dim, o.source, c.reset
        );
        for f in o.violations.iter().filter(|f| f.action != Action::Warn) {
            violations += usize::from(f.action == Action::Deny);
            let tag = match f.action {
                Action::Deny => format!("{}deny{} ", c.red, c.reset),
                _ => format!("{}audit{}", c.dim, c.reset),
            };
            let _ = writeln!(out, "  {tag}  {}", f.violation);
        }
        for w in &o.warnings {
            warnings += 1;
            let _ = writeln!(out, "  {}warn{}   {w}", c.yellow, c.reset);
        }
        if !o.mutations.is_empty() {
            let _ = writeln!(
                out,
                "  {}{} field(s) would be added by mutation{}",
                c.dim,
                o.mutations.len(),
                c.reset
            );
        }
    }
    let denied = objects.iter().filter(|o| !o.allowed).count();
    let _ = writeln!(
        out,
        "{} objects: {} allowed, {} denied ({} violations, {} warnings)",
        objects.len(),
        objects.len() - denied,
        denied,
        violations,
        warnings
    );
    out
}
