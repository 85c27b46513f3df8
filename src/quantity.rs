//! Kubernetes resource quantities compared by meaning (`0.1` = `100m`,
//! `268435456` = `256Mi`).

use std::fmt;

/// A quantity as an exact count of nano-units, so every suffix from `n` to
/// `Ei` compares exactly. Values past that precision round up, like the API
/// server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i128);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a Kubernetes quantity")]
pub struct QuantityError(pub String);

const NANO: i128 = 1_000_000_000;

impl Quantity {
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let err = || QuantityError(text.to_owned());
        let s = text.trim();
        let (sign, s) = match s.as_bytes().first() {
            Some(b'-') => (-1, &s[1..]),
            Some(b'+') => (1, &s[1..]),
            _ => (1, s),
        };
        let number_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(err());
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        // Scale: (multiplier numerator, power of ten).
        let (binary, decimal_exp): (i128, i32) = match suffix {
            "" => (1, 0),
            "n" => (1, -9),
            "u" => (1, -6),
            "m" => (1, -3),
            "k" => (1, 3),
            "M" => (1, 6),
            "G" => (1, 9),
            "T" => (1, 12),
            "P" => (1, 15),
            "E" => (1, 18),
            "Ki" => (1 << 10, 0),
            "Mi" => (1 << 20, 0),
            "Gi" => (1 << 30, 0),
            "Ti" => (1 << 40, 0),
            "Pi" => (1 << 50, 0),
            "Ei" => (1 << 60, 0),
            exp if exp.starts_with(['e', 'E']) => {
                let e: i32 = exp[1..].parse().map_err(|_| err())?;
                if !(-30..=30).contains(&e) {
                    return Err(err());
                }
                (1, e)
            }
            _ => return Err(err()),
        };
        if int_part.len() + frac_part.len() > 30 {
            return Err(err());
        }
        // At most 30 digits: below i128's limit, read without a copy.
        let mantissa = int_part
            .bytes()
            .chain(frac_part.bytes())
            .fold(0i128, |m, digit| m * 10 + i128::from(digit - b'0'));
        // value = mantissa * 10^(decimal_exp - frac_len) * binary, in nano-units.
        let exp = decimal_exp - frac_part.len() as i32 + 9;
        let scaled = mantissa.checked_mul(binary).ok_or_else(err)?;
        let nanos = if exp >= 0 {
            10i128
                .checked_pow(exp as u32)
                .and_then(|p| scaled.checked_mul(p))
                .ok_or_else(err)?
        } else {
            let p = 10i128.checked_pow((-exp) as u32).ok_or_else(err)?;
            (scaled + p - 1) / p
        };
        Ok(Quantity(sign * nanos))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % NANO == 0 {
            write!(f, "{}", self.0 / NANO)
        } else {
            write!(f, "{}n", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn equal_by_meaning() {
        assert_eq!(q("0.1"), q("100m"));
        assert_eq!(q("268435456"), q("256Mi"));
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1k"), q("1000"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("1.5Gi"), q("1536Mi"));
        assert_ne!(q("100m"), q("101m"));
        assert!(q("600m") > q("500m"));
        assert!(q("1Gi") > q("512Mi"));
        assert_eq!(q("-1.5"), q("-1500m"));
        assert_eq!(q("0012.50"), q("12500m"));
        assert!(q("-1") < q("0"));
    }

    #[test]
    fn thirty_digits_at_most() {
        let (whole, nanos) = ("123456789012345678901", "123456789");
        assert_eq!(
            q(&format!("{whole}.{nanos}")),
            q(&format!("{whole}{nanos}n"))
        );
        assert!(q(&format!("{whole}.{nanos}")) > q(whole));
        assert!(Quantity::parse(&format!("{whole}.{nanos}0")).is_err());
        assert!(Quantity::parse(&format!("{whole}{nanos}0n")).is_err());
        // Thirty digits, but more nano-units than the type holds.
        assert!(Quantity::parse(&"9".repeat(30)).is_err());
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1.2.3", "10Xi", ".", "1e", "--1", "1e99"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }
}
