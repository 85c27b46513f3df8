//! Container image references, normalised the way the container runtime
//! resolves them (`portkeyai/gateway:1.12.1` = `docker.io/portkeyai/gateway:1.12.1`).

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry and path, normalised: `docker.io/portkeyai/gateway`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(image: &str) -> Self {
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d.to_owned())),
            None => (image, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before
        // it belongs to a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        ImageRef {
            repository: normalise_repository(name),
            tag,
            digest,
        }
    }
}

/// `gateway` → `docker.io/library/gateway`, `portkeyai/gateway` →
/// `docker.io/portkeyai/gateway`, `index.docker.io/...` → `docker.io/...`.
pub fn normalise_repository(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name.as_str(), None),
    };
    let first_is_registry = first.contains('.') || first.contains(':') || first == "localhost";
    match rest {
        None => format!("docker.io/library/{name}"),
        Some(rest) if first_is_registry => {
            let registry = match first {
                "index.docker.io" | "registry-1.docker.io" => "docker.io",
                other => other,
            };
            if registry == "docker.io" && !rest.contains('/') {
                format!("docker.io/library/{rest}")
            } else {
                format!("{registry}/{rest}")
            }
        }
        Some(_) => format!("docker.io/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_forms_are_one_repository() {
        let expected = "docker.io/portkeyai/gateway";
        for image in [
            "portkeyai/gateway:1.12.1",
            "docker.io/portkeyai/gateway:1.12.1",
            "index.docker.io/portkeyai/gateway:1.12.1",
        ] {
            let r = ImageRef::parse(image);
            assert_eq!(r.repository, expected, "{image}");
            assert_eq!(r.tag.as_deref(), Some("1.12.1"));
        }
    }

    #[test]
    fn tag_digest_and_registry_port() {
        let r = ImageRef::parse("portkeyai/gateway:1.12.1@sha256:abc");
        assert_eq!(r.tag.as_deref(), Some("1.12.1"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        let r = ImageRef::parse("registry.local:5000/portkeyai/gateway");
        assert_eq!(r.repository, "registry.local:5000/portkeyai/gateway");
        assert_eq!(r.tag, None);
        assert_eq!(
            ImageRef::parse("nginx").repository,
            "docker.io/library/nginx"
        );
        assert_eq!(
            ImageRef::parse("docker.io/nginx:1").repository,
            "docker.io/library/nginx"
        );
    }
}
