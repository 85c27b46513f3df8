//! Name patterns such as `*_API_KEY` or `*secret*`: `*` matches any run of
//! characters, everything else matches itself, ignoring ASCII case.

pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No '*' at all: the whole name must equal the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
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
}
