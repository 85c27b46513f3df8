//! The functions of cel-go's strings extension (`ext/strings.go`) that the
//! webhook configurations' `matchConditions` use and `cel-interpreter`
//! lacks, with cel-go's semantics:
//!
//! * `<string>.lowerAscii()`: folds `A`-`Z` only; every other character,
//!   non-ASCII letters included, is kept as it is.
//! * `<string>.substring(start)` and `<string>.substring(start, end)`:
//!   positions count Unicode code points (cel-go slices `[]rune`), and a
//!   position below zero or past the end, or an end before the start, is an
//!   error rather than a clamp.
//!
//! Both are member overloads only in cel-go (`lowerAscii('A')` does not
//! compile there), so calling them as global functions is an error here too.
//! Kubernetes enables this extension in every CEL environment of the API
//! server, `matchConditions` included.

use cel_interpreter::extractors::Arguments;
use cel_interpreter::{Context, ExecutionError, FunctionContext, Value};
use std::sync::Arc;

/// Adds `lowerAscii` and `substring` to `context`.
pub fn register(context: &mut Context) {
    context.add_function("lowerAscii", lower_ascii_function);
    context.add_function("substring", substring_function);
}

/// cel-go's `lowerASCII`: every rune up to U+007F through `unicode.ToLower`,
/// which for ASCII maps exactly `A`-`Z` to `a`-`z`.
pub fn lower_ascii(s: &str) -> String {
    s.chars().map(|c| c.to_ascii_lowercase()).collect()
}

/// cel-go's `substr`: the code points from `start` to the end.
pub fn substring(s: &str, start: i64) -> Result<String, String> {
    let length = code_points(s);
    if start < 0 || start > length {
        return Err(format!("index out of range: {start}"));
    }
    Ok(s.chars().skip(start as usize).collect())
}

/// cel-go's `substrRange`: the code points from `start` up to, not
/// including, `end`. The range is checked before the bounds, as there.
pub fn substring_range(s: &str, start: i64, end: i64) -> Result<String, String> {
    let length = code_points(s);
    if start > end {
        return Err(format!(
            "invalid substring range. start: {start}, end: {end}"
        ));
    }
    if start < 0 || start > length {
        return Err(format!("index out of range: {start}"));
    }
    if end < 0 || end > length {
        return Err(format!("index out of range: {end}"));
    }
    Ok(s.chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect())
}

fn code_points(s: &str) -> i64 {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
}

/// The string a member function is called on; anything else (a global call,
/// another type) has no overload, as in cel-go.
fn target(ftx: &FunctionContext) -> Result<Arc<String>, ExecutionError> {
    match &ftx.this {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ftx.error(format!("no such overload: {other:?}"))),
        None => Err(ftx.error("no such overload: a member function called without a target")),
    }
}

fn lower_ascii_function(
    ftx: &FunctionContext,
    Arguments(args): Arguments,
) -> Result<Value, ExecutionError> {
    let s = target(ftx)?;
    if !args.is_empty() {
        return Err(ftx.error(format!("no such overload: {} arguments", args.len())));
    }
    Ok(Value::String(Arc::new(lower_ascii(&s))))
}

fn substring_function(
    ftx: &FunctionContext,
    Arguments(args): Arguments,
) -> Result<Value, ExecutionError> {
    let s = target(ftx)?;
    let result = match args.as_slice() {
        [Value::Int(start)] => substring(&s, *start),
        [Value::Int(start), Value::Int(end)] => substring_range(&s, *start, *end),
        other => return Err(ftx.error(format!("no such overload: {other:?}"))),
    };
    result
        .map(|s| Value::String(Arc::new(s)))
        .map_err(|message| ftx.error(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cel_interpreter::Program;

    fn eval(expression: &str) -> Result<Value, ExecutionError> {
        let mut context = Context::default();
        register(&mut context);
        Program::compile(expression)
            .expect("compiles")
            .execute(&context)
    }

    fn string(value: &str) -> Value {
        Value::String(Arc::new(value.to_owned()))
    }

    #[test]
    fn lower_ascii_folds_ascii_only() {
        // cel-go's own examples.
        assert_eq!(lower_ascii("TacoCat"), "tacocat");
        assert_eq!(lower_ascii("TacoCÆt Xii"), "tacocÆt xii");
        // Letters whose Unicode lower case is ASCII stay as they are: the
        // Kelvin sign (U+212A) and the dotted capital I (U+0130).
        assert_eq!(lower_ascii("PORT\u{212A}EY"), "port\u{212A}ey");
        assert_eq!(lower_ascii("\u{130}STANBUL"), "\u{130}stanbul");
        assert_eq!(lower_ascii("ÅÄÖ.SE"), "ÅÄÖ.se");
        assert_eq!(lower_ascii(""), "");
        assert_eq!(lower_ascii("*.PC-TIPS.se"), "*.pc-tips.se");
        // Every ASCII character: only A-Z change.
        for c in '\0'..='\u{7f}' {
            let folded = lower_ascii(&c.to_string());
            let expected = if c.is_ascii_uppercase() {
                ((c as u8) + 32) as char
            } else {
                c
            };
            assert_eq!(folded, expected.to_string(), "{c:?}");
        }
    }

    #[test]
    fn substring_counts_code_points() {
        // cel-go's own examples.
        assert_eq!(substring("tacocat", 4).unwrap(), "cat");
        assert_eq!(substring_range("tacocat", 0, 4).unwrap(), "taco");
        // Positions are code points, not bytes: 'ö' is two bytes in UTF-8.
        assert_eq!(substring("pörtkey", 2).unwrap(), "rtkey");
        assert_eq!(substring_range("pörtkey", 1, 2).unwrap(), "ö");
        assert_eq!(substring("日本.se", 1).unwrap(), "本.se");
        // The end is a valid start and gives the empty string.
        assert_eq!(substring("abc", 3).unwrap(), "");
        assert_eq!(substring("", 0).unwrap(), "");
        assert_eq!(substring_range("abc", 3, 3).unwrap(), "");
        assert_eq!(substring_range("abc", 1, 1).unwrap(), "");
        assert_eq!(substring("*.pc-tips.se", 1).unwrap(), ".pc-tips.se");
    }

    #[test]
    fn substring_errors_out_of_range() {
        // cel-go's own examples and messages.
        assert_eq!(
            substring("tacocat", -1).unwrap_err(),
            "index out of range: -1"
        );
        assert_eq!(
            substring_range("tacocat", 2, 1).unwrap_err(),
            "invalid substring range. start: 2, end: 1"
        );
        // Past the end, counted in code points: "pö" is 3 bytes, 2 points.
        assert_eq!(substring("pö", 3).unwrap_err(), "index out of range: 3");
        assert_eq!(substring("", 1).unwrap_err(), "index out of range: 1");
        assert_eq!(
            substring_range("pö", 0, 3).unwrap_err(),
            "index out of range: 3"
        );
        assert_eq!(
            substring_range("abc", -1, 2).unwrap_err(),
            "index out of range: -1"
        );
        // The range check comes first, as in cel-go.
        assert_eq!(
            substring_range("abc", 5, -1).unwrap_err(),
            "invalid substring range. start: 5, end: -1"
        );
        assert_eq!(
            substring(&"a".repeat(10), i64::MAX).unwrap_err(),
            format!("index out of range: {}", i64::MAX)
        );
        assert_eq!(
            substring("a", i64::MIN).unwrap_err(),
            format!("index out of range: {}", i64::MIN)
        );
    }

    #[test]
    fn registered_as_member_functions() {
        assert_eq!(
            eval("'PortKey.SE'.lowerAscii()").unwrap(),
            string("portkey.se")
        );
        assert_eq!(
            eval("'*.pc-tips.se'.substring(1)").unwrap(),
            string(".pc-tips.se")
        );
        assert_eq!(eval("'tacocat'.substring(0, 4)").unwrap(), string("taco"));
        assert_eq!(
            eval("'portkey.pc-tips.se'.endsWith('*.PC-TIPS.se'.lowerAscii().substring(1))")
                .unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn errors_are_evaluation_errors() {
        for expression in [
            "'tacocat'.substring(-1)",
            "'tacocat'.substring(8)",
            "'tacocat'.substring(2, 1)",
            "'tacocat'.substring(0, 8)",
            // No overload: wrong argument types or counts, a non-string
            // target, a global call.
            "'tacocat'.substring('1')",
            "'tacocat'.substring()",
            "'tacocat'.substring(1, 2, 3)",
            "'tacocat'.lowerAscii(1)",
            "(1).lowerAscii()",
            "['A'].lowerAscii()",
            "lowerAscii('A')",
            "substring('abc', 1)",
        ] {
            let result = eval(expression);
            assert!(
                matches!(result, Err(ExecutionError::FunctionError { .. })),
                "{expression}: {result:?}"
            );
        }
        let message = eval("'tacocat'.substring(9)").unwrap_err().to_string();
        assert!(message.contains("index out of range: 9"), "{message}");
    }
}
