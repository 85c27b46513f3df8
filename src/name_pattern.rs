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

#[cfg(test)]
mod tests {
    use super::matches;

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
