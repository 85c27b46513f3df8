//! The server's log: one line per event on stderr (through a
//! [`LogQueue`]), as JSON objects or as text.
//!
//! The JSON line is written by [`JsonLines`], field by field, straight into
//! the subscriber's line buffer. It has the shape of tracing-subscriber's
//! own flattened JSON format (`timestamp`, `level`, the event's fields in
//! the order given, `target`), byte for byte after the timestamp, in 11k
//! instructions instead of 26k: that format passes every field through a
//! serde serializer and an `io::Write` adapter that checks each piece for
//! UTF-8 again. One line is written per admission, so this is on the hot
//! path.

use super::log_queue::{LogQueue, LogQueueGuard};
use super::LogFormat;
use std::fmt::{self, Write};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// Logs events at INFO and above to stderr, through a [`LogQueue`]. Hold
/// the guard until the process ends: dropping it writes what is queued.
pub fn init(format: LogFormat) -> LogQueueGuard {
    let (queue, guard) = LogQueue::start(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_writer(queue)
        .with_max_level(tracing::Level::INFO);
    let result = match format {
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    if let Err(error) = result {
        eprintln!("portkey-guard: logging not initialised: {error}");
    }
    guard
}

/// Formats an event as one JSON object: `timestamp` (RFC 3339, UTC),
/// `level`, the event's fields (`message` among them), `target`. A field
/// recorded as a string, or with `%`/`?`, is a JSON string; numbers and
/// booleans are themselves; a float that is not finite is `null`. Spans are
/// not written: the server opens none.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, time::OffsetDateTime::now_utc())?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = JsonFields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_json_string(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`; the first error stops the rest.
struct JsonFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_char(',')?;
                write_json_string(self.writer, field.name())?;
                self.writer.write_char(':')?;
                value(self.writer)
            })();
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| write_json_string(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(JsonEscaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's spelling of a float (`1.0`, not `1`), and `null` for
        // what JSON cannot hold.
        self.entry(field, |w| match serde_json::Number::from_f64(value) {
            Some(number) => write!(w, "{number}"),
            None => w.write_str("null"),
        });
    }
}

/// `at` in RFC 3339, in UTC, with microseconds, as tracing-subscriber
/// writes it: `2026-11-29T23:15:17.496083Z`, its digits placed rather than
/// formatted.
fn write_timestamp(w: &mut Writer<'_>, at: time::OffsetDateTime) -> fmt::Result {
    let Ok(year) = u32::try_from(at.year()) else {
        return SystemTime.format_time(w);
    };
    if year > 9999 {
        return SystemTime.format_time(w);
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut place = |at: usize, width: usize, mut value: u32| {
        for slot in text[at..at + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    place(0, 4, year);
    place(5, 2, u32::from(u8::from(at.month())));
    place(8, 2, u32::from(at.day()));
    place(11, 2, u32::from(at.hour()));
    place(14, 2, u32::from(at.minute()));
    place(17, 2, u32::from(at.second()));
    place(20, 6, at.microsecond());
    // Only ASCII digits and separators were written.
    w.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

fn write_json_string(w: &mut Writer<'_>, text: &str) -> fmt::Result {
    w.write_char('"')?;
    JsonEscaped(w).write_str(text)?;
    w.write_char('"')
}

/// Writes text as the inside of a JSON string, escaped as serde_json
/// escapes it: `"`, `\`, and the control characters (`\b`, `\t`, `\n`,
/// `\f`, `\r` by name, the others as `\u00XX`).
struct JsonEscaped<'a, 'w>(&'a mut Writer<'w>);

/// For each byte, the character after the `\` that escapes it (`u` for
/// `\u00XX`), or 0 for a byte written as it is.
const ESCAPES: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[b'\t' as usize] = b't';
    table[b'\n' as usize] = b'n';
    table[0x0c] = b'f';
    table[b'\r' as usize] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

impl Write for JsonEscaped<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut clean_from = 0;
        for (at, &byte) in text.as_bytes().iter().enumerate() {
            let escape = ESCAPES[usize::from(byte)];
            if escape == 0 {
                continue;
            }
            // Every byte escaped is ASCII, so `at` is a character boundary.
            self.0.write_str(&text[clean_from..at])?;
            if escape == b'u' {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_char('\\')?;
                self.0.write_char(char::from(escape))?;
            }
            clean_from = at + 1;
        }
        self.0.write_str(&text[clean_from..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[derive(Debug)]
    struct Opaque {
        #[allow(dead_code)]
        name: &'static str,
    }

    /// Every kind of field value, and text that needs every kind of escape.
    fn events() {
        let awkward = "quote \" backslash \\ newline \n tab \t cr \r bell \x07 \
                       backspace \x08 formfeed \x0c unit \x1f del \x7f é 日本 🦀 /";
        tracing::info!("admission");
        tracing::info!(
            uid = "705ab4f5-6393-11e8-b7cc-42010a800002",
            kind = %"Deployment",
            dry_run = false,
            allowed = true,
            patch_operations = 14_u64,
            offset = -3_i64,
            ratio = 1.0_f64,
            half = 0.5_f64,
            nothing = f64::NAN,
            infinite = f64::INFINITY,
            big = u128::MAX,
            opaque = ?Opaque { name: "x\"y" },
            "admission"
        );
        tracing::warn!(text = awkward, shown = %awkward, debugged = ?awkward, "{awkward}");
        let error = std::io::Error::other("disk \"full\"\n");
        tracing::error!(error = &error as &dyn std::error::Error, "audit: failed");
        tracing::info!(message = "an explicit message", after = 1_u64);
        tracing::info!(target: "custom::target\"quoted", "");
    }

    fn with_format(json_lines: bool) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO);
        let dispatch = if json_lines {
            tracing::Dispatch::new(builder.event_format(JsonLines).finish())
        } else {
            tracing::Dispatch::new(builder.json().flatten_event(true).finish())
        };
        tracing::dispatcher::with_default(&dispatch, events);
        lines.text()
    }

    #[test]
    fn lines_are_tracing_subscribers_json_lines_byte_for_byte_after_the_timestamp() {
        let ours = with_format(true);
        let theirs = with_format(false);
        assert_eq!(ours.lines().count(), 6);
        assert_eq!(ours.lines().count(), theirs.lines().count());
        for (ours, theirs) in ours.lines().zip(theirs.lines()) {
            let after_timestamp = |line: &str| {
                let (_, rest) = line.split_once("\",\"level\":").expect("a level");
                rest.to_owned()
            };
            assert_eq!(after_timestamp(ours), after_timestamp(theirs));
            let value: serde_json::Value = serde_json::from_str(ours).expect("a JSON line");
            let timestamp = value["timestamp"].as_str().expect("a timestamp");
            // RFC 3339 in UTC with microseconds: 2026-11-29T23:50:01.123456Z
            assert_eq!(timestamp.len(), 27, "{timestamp}");
            assert!(timestamp.ends_with('Z') && &timestamp[10..11] == "T");
        }
    }

    fn timestamp(unix_nanos: i128) -> String {
        let mut text = String::new();
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(unix_nanos).unwrap();
        write_timestamp(&mut Writer::new(&mut text), at).unwrap();
        text
    }

    #[test]
    fn timestamps_are_rfc_3339_in_utc_with_microseconds() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            timestamp(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        // The last microsecond of a leap year's last day.
        assert_eq!(
            timestamp(1_735_689_599_999_999_000),
            "2024-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            timestamp(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn lines_parse_back_to_the_values_given() {
        let text = with_format(true);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect();
        let admission = &lines[1];
        assert_eq!(admission["level"], "INFO");
        assert_eq!(admission["message"], "admission");
        assert_eq!(admission["kind"], "Deployment");
        assert_eq!(admission["dry_run"], false);
        assert_eq!(admission["patch_operations"], 14);
        assert_eq!(admission["offset"], -3);
        assert_eq!(admission["ratio"], 1.0);
        assert!(admission["nothing"].is_null() && admission["infinite"].is_null());
        assert_eq!(admission["big"], u128::MAX.to_string());
        assert_eq!(admission["target"], module_path!());
        let awkward = &lines[2];
        assert_eq!(awkward["level"], "WARN");
        assert_eq!(awkward["text"], awkward["shown"]);
        assert!(awkward["text"]
            .as_str()
            .unwrap()
            .contains("\x07 backspace \x08"));
        assert_eq!(awkward["message"], awkward["text"]);
        assert_eq!(lines[3]["error"], "disk \"full\"\n");
        assert_eq!(lines[5]["target"], "custom::target\"quoted");
        assert_eq!(lines[5]["message"], "");
    }
}
