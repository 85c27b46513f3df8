//! Prometheus durations (`30s`, `1m30s`, `500ms`), as ServiceMonitors and
//! the policy write them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A duration as written, with its value in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromDuration {
    text: String,
    millis: u64,
}

impl PromDuration {
    /// Parses `30s`, `1m30s`, `500ms`; units ms, s, m, h, d, w, y.
    pub fn parse(text: &str) -> Option<PromDuration> {
        let mut rest = text.trim();
        if rest.is_empty() {
            return None;
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return None;
            }
            let n: u64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let ms = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 604_800_000,
                "y" => 31_536_000_000,
                _ => return None,
            };
            total = total.checked_add(n.checked_mul(ms)?)?;
            rest = &rest[unit_len..];
        }
        Some(PromDuration {
            text: text.to_owned(),
            millis: total,
        })
    }

    pub fn millis(&self) -> u64 {
        self.millis
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PromDuration::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not a Prometheus duration such as 30s"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PromDuration;

    fn ms(text: &str) -> Option<u64> {
        PromDuration::parse(text).map(|d| d.millis())
    }

    #[test]
    fn durations() {
        assert_eq!(ms("30s"), Some(30_000));
        assert_eq!(ms("1m30s"), Some(90_000));
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("0.5m"), None);
        assert_eq!(ms("30"), None);
        assert_eq!(ms(""), None);
        assert_eq!(ms("99999999999999999999y"), None);
    }
}
