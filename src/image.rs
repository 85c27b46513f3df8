//! Container image references: parsed with `container_image_dist_ref` (a
//! port of distribution/reference, the grammar the container runtimes use),
//! then normalised the way Docker resolves a short name
//! (`portkeyai/gateway:1.12.1` = `docker.io/portkeyai/gateway:1.12.1`).

use container_image_dist_ref::ImgRef;

/// A parsed, valid image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry and path, normalised: `docker.io/portkeyai/gateway`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:…`
    pub digest: Option<String>,
}

/// The text is not an image reference the runtime would pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid image reference")]
pub struct InvalidImage;

const DOCKER_HUB: &str = "docker.io";

impl ImageRef {
    pub fn parse(image: &str) -> Result<ImageRef, InvalidImage> {
        let parsed = ImgRef::new(image).map_err(|_| InvalidImage)?;
        let digest = parsed.digest().map(|d| d.to_str().to_owned());
        if digest.as_deref().is_some_and(|d| !registered_digest(d)) {
            return Err(InvalidImage);
        }
        Ok(ImageRef {
            repository: normalise(parsed.name().to_str()),
            tag: parsed.tag().map(str::to_owned),
            digest,
        })
    }

    /// Whether `image`, read leniently (case folded, as a careless or
    /// hostile writer might spell it), names `repository`: what identifies
    /// a container as running that image. Whether it is the *allowed*
    /// reference is [`ImageRef::parse`]'s strict business.
    ///
    /// `repository` is a reference in any form Docker resolves to it
    /// (`portkeyai/gateway`, `docker.io/portkeyai/gateway`). Asked of every
    /// container by several rules: nothing is allocated unless `image` has
    /// upper case.
    pub fn names_repository(image: &str, repository: &str) -> bool {
        let folded = if image.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(image.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(image)
        };
        let name_parts = |reference: &str, then: &dyn Fn(&str, &str, &str) -> bool| {
            let Ok(parsed) = ImgRef::new(reference) else {
                return false;
            };
            if parsed
                .digest()
                .is_some_and(|d| !registered_digest(d.to_str()))
            {
                return false;
            }
            let name = parsed.name();
            let (domain, library, path) = normalised_parts(name.to_str());
            then(domain, library, path)
        };
        name_parts(&folded, &|domain, library, path| {
            name_parts(repository, &|other_domain, other_library, other_path| {
                domain == other_domain
                    && library
                        .bytes()
                        .chain(path.bytes())
                        .eq(other_library.bytes().chain(other_path.bytes()))
            })
        })
    }
}

/// A digest of a registered algorithm, as the OCI image spec and
/// distribution/reference accept it: `sha256:` with 64 and `sha512:` with 128
/// lower-case hex digits.
fn registered_digest(digest: &str) -> bool {
    let hex_of_length = |encoded: &str, len: usize| {
        encoded.len() == len
            && encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    match digest.split_once(':') {
        Some(("sha256", encoded)) => hex_of_length(encoded, 64),
        Some(("sha512", encoded)) => hex_of_length(encoded, 128),
        _ => false,
    }
}

/// Docker's short names: a first component without `.` or `:` (and not
/// `localhost`) is a Docker Hub path, and a one-component Docker Hub path is
/// in `library/`. `index.docker.io` and `registry-1.docker.io` are Docker
/// Hub.
fn normalise(name: &str) -> String {
    let (domain, library, path) = normalised_parts(name);
    format!("{domain}/{library}{path}")
}

/// The normalised repository `domain/library/path` in its three parts (the
/// middle one `library/` or empty).
fn normalised_parts(name: &str) -> (&str, &'static str, &str) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_ascii_lowercase() != first =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    };
    let domain = match domain {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
        other => other,
    };
    if domain == DOCKER_HUB && !path.contains('/') {
        (DOCKER_HUB, "library/", path)
    } else {
        (domain, "", path)
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
            let r = ImageRef::parse(image).unwrap();
            assert_eq!(r.repository, expected, "{image}");
            assert_eq!(r.tag.as_deref(), Some("1.12.1"));
        }
        assert_eq!(
            ImageRef::parse("nginx").unwrap().repository,
            "docker.io/library/nginx"
        );
        assert_eq!(
            ImageRef::parse("docker.io/nginx:1").unwrap().repository,
            "docker.io/library/nginx"
        );
    }

    #[test]
    fn look_alikes_are_other_repositories() {
        for image in [
            "docker.io/library/portkeyai/gateway:1.12.1",
            "ghcr.io/portkey-ai/gateway:1.12.1",
            "localhost:5000/portkeyai/gateway:1.12.1",
            "portkeyai/gateway-evil:1.12.1",
        ] {
            let r = ImageRef::parse(image).unwrap();
            assert_ne!(r.repository, "docker.io/portkeyai/gateway", "{image}");
        }
        assert_eq!(
            ImageRef::parse("localhost:5000/portkeyai/gateway:latest")
                .unwrap()
                .repository,
            "localhost:5000/portkeyai/gateway"
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        for image in [
            "PortkeyAI/Gateway:1.12.1",
            "portkeyai/gateway:1.12.1@sha256:abc",
            "portkeyai/gateway:",
            "",
            " portkeyai/gateway:1.12.1",
            "portkeyai//gateway",
        ] {
            assert_eq!(ImageRef::parse(image), Err(InvalidImage), "{image:?}");
        }
        // Read leniently, the upper-case spelling still names the gateway.
        assert!(ImageRef::names_repository(
            "PortkeyAI/Gateway:1.12.1",
            "docker.io/portkeyai/gateway"
        ));
        for (image, repository) in [
            ("nginx:1", "docker.io/library/nginx"),
            ("docker.io/library/nginx", "nginx"),
            ("index.docker.io/portkeyai/gateway:1", "portkeyai/gateway"),
        ] {
            assert!(ImageRef::names_repository(image, repository), "{image}");
        }
        for (image, repository) in [
            ("portkeyai/gateway-evil:1", "portkeyai/gateway"),
            ("ghcr.io/portkeyai/gateway:1", "portkeyai/gateway"),
            ("docker.io/library/portkeyai/gateway", "portkeyai/gateway"),
        ] {
            assert!(!ImageRef::names_repository(image, repository), "{image}");
        }
    }

    #[test]
    fn tag_digest_and_registry_port() {
        let digest = "sha256:4b3e5f0e1c9a7d2b8f6a0c3e5d7b9f1a2c4e6d8b0a1c3e5f7d9b1a3c5e7f9d1b";
        let r = ImageRef::parse(&format!("portkeyai/gateway:1.12.1@{digest}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1.12.1"));
        assert_eq!(r.digest.as_deref(), Some(digest));
        let r = ImageRef::parse("registry.local:5000/portkeyai/gateway").unwrap();
        assert_eq!(r.repository, "registry.local:5000/portkeyai/gateway");
        assert_eq!(r.tag, None);
    }
}
