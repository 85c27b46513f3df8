//! Rendering offline verdicts: text for people, JSON for machines, SARIF
//! 2.1.0 for code-scanning UIs, JUnit XML for CI test reports, GitHub
//! workflow commands for pull-request annotations.
//!
//! Every format is rendered from the findings themselves (full messages,
//! `file:line:column`), never from the warnings the webhook relays through
//! the API server, which are cut to 120 characters.

use crate::manifest::SkippedFile;
use crate::offline::{LocatedFinding, ObjectReport, Status};
use crate::policy::Policy;
use crate::rules::{Action, RuleId};
use serde::Serialize;
use serde_json::json;
use std::fmt::Write;

/// Everything a report is made of.
pub struct Report<'a> {
    pub objects: &'a [ObjectReport],
    pub skipped_files: &'a [SkippedFile],
    pub policy: &'a Policy,
}

impl Report<'_> {
    fn count(&self, status: Status) -> usize {
        self.objects.iter().filter(|o| o.status == status).count()
    }

    fn findings(&self, action: Action) -> usize {
        self.objects
            .iter()
            .map(|o| o.with_action(action).count())
            .sum()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    allowed: bool,
    summary: Summary,
    objects: &'a [ObjectReport],
    skipped_files: &'a [SkippedFile],
    /// `audit` only: the objects that could not be judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [crate::audit::Unjudged]>,
    /// `audit` only: the policed kinds the API server does not serve.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_served: Option<Vec<&'static str>>,
}

#[derive(Serialize)]
struct Summary {
    objects: usize,
    allowed: usize,
    denied: usize,
    skipped: usize,
    violations: usize,
    warnings: usize,
}

/// The closing line of the text and GitHub outputs.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} objects: {} allowed, {} denied, {} skipped ({} violations, {} warnings)",
            self.objects, self.allowed, self.denied, self.skipped, self.violations, self.warnings
        )
    }
}

fn summary(report: &Report<'_>) -> Summary {
    Summary {
        objects: report.objects.len(),
        allowed: report.count(Status::Allowed),
        denied: report.count(Status::Denied),
        skipped: report.count(Status::Skipped),
        violations: report.findings(Action::Deny),
        warnings: report.findings(Action::Warn),
    }
}

/// One JSON document: the verdict, counts, each object with its status and
/// located findings, and the files that held no object.
pub fn json(report: &Report<'_>) -> String {
    json_document(JsonReport {
        allowed: report.objects.iter().all(|o| o.allowed),
        summary: summary(report),
        objects: report.objects,
        skipped_files: report.skipped_files,
        errors: None,
        not_served: None,
    })
}

/// The same document for an audit, with the objects that could not be
/// judged (any of them makes it not allowed) and the kinds not served.
pub fn audit_json(report: &Report<'_>, audit: &crate::audit::Audit) -> String {
    json_document(JsonReport {
        allowed: report.objects.iter().all(|o| o.allowed) && audit.errors.is_empty(),
        summary: summary(report),
        objects: report.objects,
        skipped_files: report.skipped_files,
        errors: Some(&audit.errors),
        not_served: Some(audit.not_served.iter().map(|k| k.info().name).collect()),
    })
}

fn json_document(report: JsonReport<'_>) -> String {
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
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

fn place(o: &ObjectReport) -> String {
    match &o.namespace {
        Some(ns) => format!("{ns}/{}", o.name),
        None => o.name.clone(),
    }
}

/// Per object a header, one `file:line:column` line per finding, then a
/// summary. (Skipped files are noted on standard error.)
pub fn text(report: &Report<'_>, colour: bool) -> String {
    let c = if colour { &COLOUR } else { &PLAIN };
    let mut out = String::new();
    for o in report.objects {
        let (mark, colour) = match o.status {
            Status::Allowed => ("ALLOWED", c.green),
            Status::Denied => ("DENIED ", c.red),
            Status::Skipped => ("SKIPPED", c.dim),
        };
        // Objects read from the API server have no file to point into.
        let origin = if o.file.is_empty() {
            String::new()
        } else {
            format!(" {}({}:{}:{}){}", c.dim, o.file, o.line, o.column, c.reset)
        };
        let _ = writeln!(
            out,
            "{colour}{mark}{} {} {}{origin}",
            c.reset,
            o.kind,
            place(o),
        );
        if o.status == Status::Skipped {
            let _ = writeln!(
                out,
                "  {}not judged: outside the policy's scope{}",
                c.dim, c.reset
            );
        }
        for f in &o.violations {
            let tag = match f.finding.action {
                Action::Deny => format!("{}deny{} ", c.red, c.reset),
                Action::Warn => format!("{}warn{} ", c.yellow, c.reset),
                Action::Audit => format!("{}audit{}", c.dim, c.reset),
            };
            let at = if f.file.is_empty() {
                String::new()
            } else {
                format!("{}:{}:{}: ", f.file, f.line, f.column)
            };
            let _ = writeln!(out, "  {at}{tag} {}", f.finding.violation);
        }
        for note in o.notes() {
            let _ = writeln!(out, "  {}note{}  {note}", c.dim, c.reset);
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
    let _ = writeln!(out, "{}", summary(report));
    out
}

fn sarif_level(action: Action) -> &'static str {
    match action {
        Action::Deny => "error",
        Action::Warn => "warning",
        Action::Audit => "note",
    }
}

/// A file name as a SARIF URI reference: relative paths stay relative (to
/// the directory the check ran in, which code scanning takes as the
/// repository root), absolute ones become `file://` URIs, and characters a
/// URI cannot hold are percent-encoded.
fn uri(file: &str) -> String {
    let mut out = String::new();
    if file.starts_with('/') {
        out.push_str("file://");
    }
    for b in file.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The message of a finding without its rule id (SARIF, GitHub and JUnit
/// name the rule separately).
fn message(f: &LocatedFinding) -> String {
    let v = &f.finding.violation;
    format!(
        "{}: {} (expected {}, got {})",
        v.path, v.message, v.expected, v.actual
    )
}

/// SARIF 2.1.0: the rule catalog as `tool.driver.rules`, each finding a
/// result with a `physicalLocation` region; files that held no object are
/// tool notifications.
pub fn sarif(report: &Report<'_>) -> String {
    let rules: Vec<serde_json::Value> = RuleId::ALL
        .iter()
        .map(|rule| {
            let action = report.policy.action(*rule);
            json!({
                "id": rule.as_str(),
                "shortDescription": {"text": rule.summary()},
                "fullDescription": {"text": rule.summary()},
                "help": {"text": format!(
                    "{} Action under the effective policy: {action} (change it under `rules:` in the policy file).",
                    rule.summary()
                )},
                "defaultConfiguration": {"level": sarif_level(action)},
            })
        })
        .collect();
    let mut results = Vec::new();
    for o in report.objects {
        for f in &o.violations {
            let rule = f.finding.violation.rule;
            let index = RuleId::ALL.iter().position(|r| *r == rule).unwrap_or(0);
            results.push(json!({
                "ruleId": rule.as_str(),
                "ruleIndex": index,
                "level": sarif_level(f.finding.action),
                "message": {"text": message(f)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.file)},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    },
                    "logicalLocations": [{
                        "name": f.finding.violation.path,
                        "fullyQualifiedName": format!("{} {}: {}", o.kind, place(o), f.finding.violation.path),
                        "kind": "member",
                    }],
                }],
            }));
        }
    }
    let notifications: Vec<serde_json::Value> = report
        .skipped_files
        .iter()
        .map(|s| {
            json!({
                "level": "note",
                "message": {"text": format!("skipped: {}", s.reason)},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri(&s.file)}}}],
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "portkey-guard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            // Columns count characters, as editors do.
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// Text for an XML attribute or element: markup escaped, and characters
/// XML 1.0 cannot hold replaced.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test suite per input file, one test case per object;
/// a denied object has one `<failure>` listing its violations, an object
/// outside the policy's scope is `<skipped>`.
pub fn junit(report: &Report<'_>) -> String {
    let mut files: Vec<&str> = Vec::new();
    for o in report.objects {
        if !files.contains(&o.file.as_str()) {
            files.push(&o.file);
        }
    }
    let s = summary(report);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"portkey-guard\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
        s.objects, s.denied, s.skipped
    );
    for file in files {
        let objects: Vec<&ObjectReport> =
            report.objects.iter().filter(|o| o.file == file).collect();
        let count = |status| objects.iter().filter(|o| o.status == status).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
            xml(file),
            objects.len(),
            count(Status::Denied),
            count(Status::Skipped)
        );
        for o in objects {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\">",
                xml(&format!("{} {}", o.kind, place(o))),
                xml(file),
                xml(file),
                o.line
            );
            match o.status {
                Status::Skipped => {
                    out.push_str(
                        "\n      <skipped message=\"outside the policy&apos;s scope\"/>\n    ",
                    );
                }
                Status::Denied => {
                    let denied: Vec<&LocatedFinding> = o.with_action(Action::Deny).collect();
                    let body: Vec<String> = denied
                        .iter()
                        .map(|f| {
                            format!(
                                "{}:{}:{}: {}",
                                f.file, f.line, f.column, f.finding.violation
                            )
                        })
                        .collect();
                    let _ = write!(
                        out,
                        "\n      <failure message=\"{}\" type=\"denied\">{}</failure>\n    ",
                        xml(&format!("{} violation(s)", denied.len())),
                        xml(&body.join("\n"))
                    );
                }
                Status::Allowed => {}
            }
            let others: Vec<String> = o
                .violations
                .iter()
                .filter(|f| f.finding.action != Action::Deny)
                .map(|f| {
                    format!(
                        "{}:{}:{}: {} {}",
                        f.file, f.line, f.column, f.finding.action, f.finding.violation
                    )
                })
                .collect();
            if !others.is_empty() {
                if o.status != Status::Denied {
                    out.push_str("\n      ");
                } else {
                    out.push_str("  ");
                }
                let _ = write!(
                    out,
                    "<system-out>{}</system-out>\n    ",
                    xml(&others.join("\n"))
                );
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// A workflow command's message: `%`, CR and LF escaped.
fn gh_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn gh_property(text: &str) -> String {
    gh_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands: `::error` for each denying finding,
/// `::warning` for warn, `::notice` for audit and skipped files, then a
/// summary line.
pub fn github(report: &Report<'_>) -> String {
    let mut out = String::new();
    for s in report.skipped_files {
        let _ = writeln!(
            out,
            "::notice file={},title={}::{}",
            gh_property(&s.file),
            gh_property("portkey-guard: file skipped"),
            gh_data(&s.reason)
        );
    }
    for o in report.objects {
        for f in &o.violations {
            let command = match f.finding.action {
                Action::Deny => "error",
                Action::Warn => "warning",
                Action::Audit => "notice",
            };
            let _ = writeln!(
                out,
                "::{command} file={},line={},col={},title={}::{}",
                gh_property(&f.file),
                f.line,
                f.column,
                gh_property(f.finding.violation.rule.as_str()),
                gh_data(&format!("{} {}: {}", o.kind, place(o), message(f)))
            );
        }
    }
    let _ = writeln!(out, "portkey-guard: {}", summary(report));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escapes_data_and_properties() {
        assert_eq!(gh_data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(gh_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn uris_and_xml_are_escaped() {
        assert_eq!(uri("deploy/portkey/a b.yaml"), "deploy/portkey/a%20b.yaml");
        assert_eq!(uri("/tmp/x#1.yaml"), "file:///tmp/x%231.yaml");
        assert_eq!(uri("<stdin>"), "%3Cstdin%3E");
        assert_eq!(xml("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;\u{fffd}");
    }
}
