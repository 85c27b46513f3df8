//! Plain scalars read the way `kubectl` reads them.
//!
//! kubectl turns YAML into JSON with sigs.k8s.io/yaml, which parses with
//! go-yaml v2: YAML 1.1 scalars. So `privileged: yes` is `true`, `on`/`off`,
//! `y`/`n` are booleans, `0777` is octal, `0b101` binary, `1_000` an integer,
//! `-0x1F` a negative hexadecimal number. [`resolve_plain`] follows go-yaml
//! v2's `resolve()` (resolve.go) case by case; a YAML 1.2 reader reads each
//! of those as a string or a different number.

/// What a scalar means.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    /// Above `i64::MAX`.
    UInt(u64),
    Float(f64),
    /// The text itself.
    Str,
}

impl Scalar {
    /// The YAML tag the value resolves to, for messages.
    pub fn tag(&self) -> &'static str {
        match self {
            Scalar::Null => "!!null",
            Scalar::Bool(_) => "!!bool",
            Scalar::Int(_) | Scalar::UInt(_) => "!!int",
            Scalar::Float(_) => "!!float",
            Scalar::Str => "!!str",
        }
    }
}

/// The fixed words of go-yaml v2's resolve table.
fn word(text: &str) -> Option<Scalar> {
    Some(match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Scalar::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Scalar::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
        ".nan" | ".NaN" | ".NAN" => Scalar::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Scalar::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Scalar::Float(f64::NEG_INFINITY),
        _ => return None,
    })
}

/// The merge key `<<`, which go-yaml v2 resolves to `!!merge`.
pub const MERGE_KEY: &str = "<<";

/// Resolves an untagged plain scalar as go-yaml v2 does.
pub fn resolve_plain(text: &str) -> Scalar {
    if let Some(s) = word(text) {
        return s;
    }
    let Some(&first) = text.as_bytes().first() else {
        return Scalar::Null;
    };
    match first {
        // Only the words above start with these letters.
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => Scalar::Str,
        b'.' => go_parse_float(text).map_or(Scalar::Str, Scalar::Float),
        b'0'..=b'9' | b'+' | b'-' => number(text),
        _ => Scalar::Str,
    }
}

/// Digits, signs and dots: an integer (any base Go's `ParseInt(s, 0, 64)`
/// takes, underscores removed), an unsigned integer, a float, or a string.
/// (Timestamps such as `2001-12-14` stay strings, as go-yaml v2 leaves them
/// when decoding into an untyped value.)
fn number(text: &str) -> Scalar {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return match i64::try_from(i) {
            Ok(i) => Scalar::Int(i),
            Err(_) => match u64::try_from(i) {
                Ok(u) => Scalar::UInt(u),
                Err(_) => Scalar::Str,
            },
        };
    }
    if yaml_style_float(&plain) {
        if let Some(f) = plain.parse::<f64>().ok().filter(|f| f.is_finite()) {
            return Scalar::Float(f);
        }
    }
    Scalar::Str
}

/// Go's `strconv.ParseInt(s, 0, 64)` and, for values above `i64::MAX`,
/// `ParseUint(s, 0, 64)`: optional sign (ParseInt only), then `0x`, `0o`,
/// `0b` or a leading `0` (octal) or decimal digits.
fn go_parse_int(s: &str) -> Option<i128> {
    let (negative, signed, digits) = match s.as_bytes().first()? {
        b'-' => (true, true, &s[1..]),
        b'+' => (false, true, &s[1..]),
        _ => (false, false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(body, radix).ok()?;
    let value = if negative {
        -i128::try_from(magnitude).ok()?
    } else {
        i128::try_from(magnitude).ok()?
    };
    let fits = if signed {
        i64::try_from(value).is_ok()
    } else {
        i64::try_from(value).is_ok() || u64::try_from(value).is_ok()
    };
    fits.then_some(value)
}

/// go-yaml v2's `yamlStyleFloat`:
/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat` for text starting with `.`: decimal digits,
/// optionally an exponent, underscores only between digits. Out-of-range
/// values are an error in Go, so they stay strings.
fn go_parse_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let before = i.checked_sub(1).map(|j| b[j]);
            let after = b.get(i + 1).copied();
            if !before.is_some_and(|c| c.is_ascii_digit())
                || !after.is_some_and(|c| c.is_ascii_digit())
            {
                return None;
            }
        }
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if !yaml_style_float(&plain) {
        return None;
    }
    plain.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A float map key as sigs.k8s.io/yaml spells it:
/// `strconv.FormatFloat(f, 'g', -1, 32)` (shortest digits of the 32-bit
/// value, exponent form below 1e-4 and from 1e6 on).
pub fn go_format_float_key(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    // Go rounds to float32 first, as the key is formatted with bitSize 32.
    #[allow(clippy::cast_possible_truncation)]
    let single = f as f32;
    if single == 0.0 {
        return if single.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` prints the shortest round-trip digits: `1.2345e-5`.
    let sci = format!("{single:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let (head, tail) = digits.split_at(1);
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let esign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{head}{tail}e{esign}{:02}", exponent.abs());
    }
    let point = exponent + 1; // digits before the decimal point
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if digits.len() <= point {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every plain scalar form that YAML 1.1 (go-yaml v2, what kubectl uses)
    /// and YAML 1.2's core schema read differently, with what kubectl reads.
    #[test]
    fn yaml_1_1_forms_that_yaml_1_2_reads_differently() {
        let cases: &[(&str, Scalar)] = &[
            // Booleans: 1.2 knows only true/false.
            ("yes", Scalar::Bool(true)),
            ("Yes", Scalar::Bool(true)),
            ("YES", Scalar::Bool(true)),
            ("no", Scalar::Bool(false)),
            ("No", Scalar::Bool(false)),
            ("NO", Scalar::Bool(false)),
            ("on", Scalar::Bool(true)),
            ("On", Scalar::Bool(true)),
            ("ON", Scalar::Bool(true)),
            ("off", Scalar::Bool(false)),
            ("Off", Scalar::Bool(false)),
            ("OFF", Scalar::Bool(false)),
            ("y", Scalar::Bool(true)),
            ("Y", Scalar::Bool(true)),
            ("n", Scalar::Bool(false)),
            ("N", Scalar::Bool(false)),
            // A leading 0 is octal in 1.1, decimal in 1.2.
            ("0777", Scalar::Int(0o777)),
            ("0644", Scalar::Int(420)),
            ("-010", Scalar::Int(-8)),
            // Binary integers do not exist in 1.2.
            ("0b1010", Scalar::Int(10)),
            ("-0b11", Scalar::Int(-3)),
            // Underscores separate digits in 1.1 only.
            ("1_000", Scalar::Int(1000)),
            ("1_000.5", Scalar::Float(1000.5)),
            // A signed hexadecimal or octal number is a string in 1.2.
            ("-0x1F", Scalar::Int(-31)),
            ("+0x1F", Scalar::Int(31)),
            ("-0o17", Scalar::Int(-15)),
            // Not an octal number, but a YAML 1.1 float.
            ("08", Scalar::Float(8.0)),
            ("09.5", Scalar::Float(9.5)),
            // The merge key.
            ("<<", Scalar::Str),
        ];
        for (text, expected) in cases {
            assert_eq!(&resolve_plain(text), expected, "{text}");
        }
    }

    /// Forms both versions read alike, and forms YAML 1.1 defines that go-yaml
    /// v2 deliberately does not implement (so kubectl reads strings).
    #[test]
    fn forms_both_versions_agree_on_and_go_yaml_omissions() {
        let cases: &[(&str, Scalar)] = &[
            ("true", Scalar::Bool(true)),
            ("False", Scalar::Bool(false)),
            ("TRUE", Scalar::Bool(true)),
            ("~", Scalar::Null),
            ("null", Scalar::Null),
            ("NULL", Scalar::Null),
            ("", Scalar::Null),
            ("0", Scalar::Int(0)),
            ("-0", Scalar::Int(0)),
            ("+12", Scalar::Int(12)),
            ("0x1F", Scalar::Int(31)),
            ("0o17", Scalar::Int(15)),
            ("1.5", Scalar::Float(1.5)),
            ("1.", Scalar::Float(1.0)),
            (".5", Scalar::Float(0.5)),
            ("-.5", Scalar::Float(-0.5)),
            ("1e3", Scalar::Float(1000.0)),
            ("6.02E+23", Scalar::Float(6.02e23)),
            ("9223372036854775807", Scalar::Int(i64::MAX)),
            ("18446744073709551615", Scalar::UInt(u64::MAX)),
            (
                "-9223372036854775809",
                Scalar::Float(-9_223_372_036_854_775_809.0),
            ),
            // Sexagesimal numbers are YAML 1.1, but not in go-yaml v2.
            ("1:20", Scalar::Str),
            ("190:20:30.15", Scalar::Str),
            // Timestamps stay strings when decoded into an untyped value.
            ("2001-12-14", Scalar::Str),
            ("2001-12-14t21:59:43.10-05:00", Scalar::Str),
            // Out of range for a float: Go's ParseFloat fails.
            ("1e400", Scalar::Str),
            ("-", Scalar::Str),
            ("0x", Scalar::Str),
            ("1.12.1", Scalar::Str),
            ("100m", Scalar::Str),
            ("256Mi", Scalar::Str),
            ("tRUE", Scalar::Str),
            ("yEs", Scalar::Str),
            ("=", Scalar::Str),
            (".", Scalar::Str),
            ("._5", Scalar::Str),
            ("inf", Scalar::Str),
            ("nan", Scalar::Str),
            (".iNf", Scalar::Str),
        ];
        for (text, expected) in cases {
            assert_eq!(&resolve_plain(text), expected, "{text}");
        }
        assert!(matches!(resolve_plain(".nan"), Scalar::Float(f) if f.is_nan()));
        assert_eq!(resolve_plain("-.INF"), Scalar::Float(f64::NEG_INFINITY));
        assert_eq!(resolve_plain("+.inf"), Scalar::Float(f64::INFINITY));
    }

    #[test]
    fn float_keys_are_spelled_like_go() {
        for (f, text) in [
            (1.5, "1.5"),
            (0.1, "0.1"),
            (100.0, "100"),
            (123_456.0, "123456"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.000_01, "1e-05"),
            (-2.5, "-2.5"),
            (1.234_567_9e10, "1.2345679e+10"),
        ] {
            assert_eq!(go_format_float_key(f), text, "{f}");
        }
    }
}
