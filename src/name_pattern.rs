//! Name patterns such as `*_API_KEY` or `*secret*`: `*` matches any run of
//! characters, everything else matches itself, ignoring ASCII case.

pub fn matches(pattern: &str, name: &str) -> bool {
    // Byte-wise: ASCII case folding never changes other bytes.
    let mut parts = pattern.as_bytes().split(|b| *b == b'*').peekable();
    let first = parts.next().unwrap_or_default();
    let name = name.as_bytes();
    if name.len() < first.len() || !name[..first.len()].eq_ignore_ascii_case(first) {
        return false;
    }
    let mut rest = &name[first.len()..];
    if parts.peek().is_none() {
        // No '*' at all: the whole name must equal the pattern.
        return rest.is_empty();
    }
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return rest.len() >= part.len()
                && rest[rest.len() - part.len()..].eq_ignore_ascii_case(part);
        }
        if part.is_empty() {
            continue;
        }
        match rest
            .windows(part.len())
            .position(|w| w.eq_ignore_ascii_case(part))
        {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| matches(p, name))
}

/// The characters of kustomize's name-suffix hash: hex digits with 0, 1,
/// 3, a and e replaced (kustomize's `encodeHash`), ten of them.
const KUSTOMIZE_HASH_CHARS: &str = "2456789bcdfghkmt";
const KUSTOMIZE_HASH_LEN: usize = 10;

/// `name` is `base`, or `base` with kustomize's name-suffix hash
/// (`portkey-model-configs-5fgk9b7hc2`): what a configMapGenerator makes.
pub fn is_generated_from(base: &str, name: &str) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hash| {
                hash.len() == KUSTOMIZE_HASH_LEN
                    && hash.chars().all(|c| KUSTOMIZE_HASH_CHARS.contains(c))
            })
}

/// `name` is `base` or `base-<anything>`: the names judged as `base`, so
/// that no suffix is a way around its rules.
pub fn is_variant_of(base: &str, name: &str) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names() {
        let base = "portkey-model-configs";
        assert!(is_generated_from(base, base));
        assert!(is_generated_from(base, "portkey-model-configs-5fgk9b7hc2"));
        assert!(!is_generated_from(base, "portkey-model-configs-evil"));
        assert!(!is_generated_from(base, "portkey-model-configs-5fgk9b7hc"));
        assert!(!is_generated_from(base, "portkey-model-configs-0123456789"));
        assert!(!is_generated_from(base, "portkey-model-configsx"));
        assert!(is_variant_of(base, "portkey-model-configs-evil"));
        assert!(is_variant_of(base, "portkey-model-configs-5fgk9b7hc2"));
        assert!(!is_variant_of(base, "portkey-model-configsx"));
        assert!(!is_variant_of(base, "other"));
    }

    #[test]
    fn wildcards() {
        assert!(matches("*_API_KEY", "OPENAI_API_KEY"));
        assert!(matches("*_API_KEY", "openai_api_key"));
        assert!(!matches("*_API_KEY", "API_KEY"));
        assert!(matches("*_KEY", "AZURE_KEY"));
        assert!(!matches("*_KEY", "PORTKEY"));
        assert!(matches("*SECRET*", "SECRET"));
        assert!(matches("*SECRET*", "MY_SECRET_VALUE"));
        assert!(matches("*secret*", "client_secret"));
        assert!(matches("api_key", "API_KEY"));
        assert!(!matches("api_key", "api_keys"));
        assert!(matches("*token*", "max_tokens"));
        assert!(!matches("a*b*c", "ac"));
        assert!(matches("a*b*c", "abc"));
        assert!(!matches("*ab*ab", "ab"));
    }

    /// What `matches` means: the pattern and the name both lower-cased,
    /// then `*` matching any run.
    fn reference(pattern: &str, name: &str) -> bool {
        let (pattern, name) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
        let parts: Vec<&str> = pattern.split('*').collect();
        let Some(mut rest) = name.strip_prefix(parts[0]) else {
            return false;
        };
        let Some((last, middle)) = parts[1..].split_last() else {
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }

    #[test]
    fn agrees_with_lower_casing_both() {
        let patterns = [
            "*", "**", "a**b", "*_KEY", "*key*", "K*y", "*é*", "ÉTÉ", "*x", "x*", "",
        ];
        let names = [
            "", "key", "KEY", "a_key", "ab", "aXb", "kxy", "été", "ÉTÉ", "x", "xx", "k",
        ];
        for pattern in patterns {
            for name in names {
                assert_eq!(
                    matches(pattern, name),
                    reference(pattern, name),
                    "{pattern} {name}"
                );
            }
        }
    }
}
