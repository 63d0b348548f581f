//! Image references (`[registry[:port]/]path[:tag][@digest]`), parsed once at the edge the
//! way Docker's reference grammar (distribution/reference) parses them, into a value that
//! is valid by construction.
//!
//! Normalisation follows Docker: no registry means `docker.io`, `index.docker.io` and
//! `registry-1.docker.io` mean `docker.io`, and a one-component name on Docker Hub gets
//! `library/`. Two deliberate differences: the registry host is lower-cased (DNS names
//! are case-insensitive, and the project's image identity must compare equal however a
//! user typed the host), and a port must fit in 16 bits.
//!
//! This module knows nothing of registries, tag patterns or projects; it only reads and
//! writes the reference text.

use std::fmt;
use std::str::FromStr;

/// The registry an image without a host lives in.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// Longest name (registry + `/` + repository) Docker accepts.
pub const NAME_MAX_LEN: usize = 255;

/// Longest tag Docker accepts.
pub const TAG_MAX_LEN: usize = 128;

/// A parsed image reference: registry, repository, and an optional tag and digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<Tag>,
    digest: Option<String>,
}

/// A valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

/// Why a string is not an image reference (or a tag).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {}: {kind}", shorten(.input))]
pub struct ImageRefError {
    input: String,
    kind: ImageRefErrorKind,
}

/// The reason inside an [`ImageRefError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefErrorKind {
    #[error("the reference is empty")]
    Empty,
    #[error("there is no name before the tag or digest")]
    EmptyName,
    #[error("the name is {len} characters long, at most {NAME_MAX_LEN} are allowed")]
    NameTooLong { len: usize },
    #[error("a 64-character hexadecimal string is an image ID, not a name")]
    ImageId,
    #[error("registry {} is not a host[:port]: {why}", shorten(.registry))]
    InvalidRegistry { registry: String, why: &'static str },
    #[error("repository name {} must be lowercase", shorten(.repository))]
    Uppercase { repository: String },
    #[error("the repository path has an empty component (a double, leading or trailing slash)")]
    EmptyComponent,
    #[error(
        "path component {} may contain only lowercase letters, digits and single separators \
         (., _, __ or dashes) between them",
        shorten(.component)
    )]
    InvalidComponent { component: String },
    #[error(
        "tag {} must be 1 to {TAG_MAX_LEN} letters, digits, _, . or -, not starting with . or -",
        shorten(.tag)
    )]
    InvalidTag { tag: String },
    #[error("digest {} is invalid: {why}", shorten(.digest))]
    InvalidDigest { digest: String, why: &'static str },
}

impl ImageRef {
    /// Parses a reference the way `docker pull` does, normalising the registry and the
    /// `library/` prefix.
    pub fn parse(input: &str) -> Result<ImageRef, ImageRefError> {
        parse_reference(input).map_err(|kind| ImageRefError {
            input: input.to_string(),
            kind,
        })
    }

    /// Builds a reference from a registry host and a repository path as a registry names
    /// them (a notification's `request.host` and `target.repository`). The host must look
    /// like one (a dot, a port, or `localhost`): otherwise Docker would read the same text
    /// as a Docker Hub namespace, and the reference could not be written down.
    pub fn from_parts(registry: &str, repository: &str) -> Result<ImageRef, ImageRefError> {
        let error = |kind| ImageRefError {
            input: format!("{registry}/{repository}"),
            kind,
        };
        if !looks_like_host(registry) {
            return Err(error(ImageRefErrorKind::InvalidRegistry {
                registry: registry.to_string(),
                why: "a registry host needs a dot, a port or to be localhost, \
                      or Docker reads it as a Docker Hub namespace",
            }));
        }
        build(Some(registry), repository, None, None).map_err(error)
    }

    /// The registry host, with its port when there is one (`127.0.0.1:5000`, `docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The path inside the registry (`acme/shop`, `library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_ref().map(Tag::as_str)
    }

    /// The tag as a [`Tag`], for callers that pass it on.
    pub fn tag_ref(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest (`sha256:<64 hex>`), when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`: the image's identity, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same image at another tag. The digest is dropped: it belonged to the old tag.
    pub fn with_tag(&self, tag: Tag) -> ImageRef {
        ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag),
            digest: None,
        }
    }

    /// The same image with neither tag nor digest.
    pub fn without_tag(&self) -> ImageRef {
        ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: None,
        }
    }

    /// Whether both refer to the same image (registry and repository), whatever the tag.
    pub fn is_same_image(&self, other: &ImageRef) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }
}

impl fmt::Display for ImageRef {
    /// The canonical full form: `docker.io/library/nginx:1.25[@sha256:…]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl Tag {
    pub fn parse(input: &str) -> Result<Tag, ImageRefError> {
        if is_valid_tag(input) {
            Ok(Tag(input.to_string()))
        } else {
            Err(ImageRefError {
                input: input.to_string(),
                kind: ImageRefErrorKind::InvalidTag {
                    tag: input.to_string(),
                },
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Tag {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tag::parse(s)
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl ImageRefError {
    pub fn kind(&self) -> &ImageRefErrorKind {
        &self.kind
    }
}

/// Whether `input` is a valid digest (`sha256:<64 lowercase hex>`, or sha384/sha512).
pub fn is_valid_digest(input: &str) -> bool {
    check_digest(input).is_ok()
}

fn parse_reference(input: &str) -> Result<ImageRef, ImageRefErrorKind> {
    if input.is_empty() {
        return Err(ImageRefErrorKind::Empty);
    }
    if input.len() == 64 && input.bytes().all(is_lower_hex) {
        return Err(ImageRefErrorKind::ImageId);
    }
    // Neither names nor tags may contain '@', so the first one starts the digest.
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest)?;
            (rest, Some(digest.to_string()))
        }
        None => (input, None),
    };
    // A ':' after the last '/' starts the tag; one before it belongs to a registry port.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => {
            let tag = &rest[i + 1..];
            if !is_valid_tag(tag) {
                return Err(ImageRefErrorKind::InvalidTag {
                    tag: tag.to_string(),
                });
            }
            (&rest[..i], Some(Tag(tag.to_string())))
        }
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(ImageRefErrorKind::EmptyName);
    }
    let (registry, remainder) = split_registry(name);
    build(registry, remainder, tag, digest)
}

/// Validates and normalises the parts of a reference into an [`ImageRef`].
fn build(
    registry: Option<&str>,
    remainder: &str,
    tag: Option<Tag>,
    digest: Option<String>,
) -> Result<ImageRef, ImageRefErrorKind> {
    let registry = match registry {
        Some(registry) => {
            check_registry(registry)?;
            let registry = registry.to_ascii_lowercase();
            match registry.as_str() {
                "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_string(),
                _ => registry,
            }
        }
        None => DEFAULT_REGISTRY.to_string(),
    };
    check_repository(remainder)?;
    let repository = if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder.to_string()
    };
    let len = registry.len() + 1 + repository.len();
    if len > NAME_MAX_LEN {
        return Err(ImageRefErrorKind::NameTooLong { len });
    }
    Ok(ImageRef {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Splits `name` into the registry as written (if any) and the repository path. The first
/// component is a registry only when it looks like a host.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, remainder)) if looks_like_host(first) => (Some(first), remainder),
        _ => (None, name),
    }
}

/// Docker's rule: a '.' or ':' or `localhost`. '[' can only start an IPv6 host; treating it
/// as one gives the better error message.
fn looks_like_host(component: &str) -> bool {
    component.contains('.')
        || component.contains(':')
        || component == "localhost"
        || component.starts_with('[')
}

fn check_registry(registry: &str) -> Result<(), ImageRefErrorKind> {
    let invalid = |why| ImageRefErrorKind::InvalidRegistry {
        registry: registry.to_string(),
        why,
    };
    let (host, port) = if let Some(bracketed) = registry.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("an IPv6 address needs a closing ]"))?;
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(invalid(
                "an IPv6 address may contain only hex digits and colons",
            ));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| invalid("only a :port may follow an IPv6 address"))?,
            ),
        };
        (None, port)
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host
        && !host.split('.').all(is_valid_domain_component)
    {
        return Err(invalid(
            "host names are letters, digits and inner dashes, in dot-separated labels",
        ));
    }
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return Err(invalid("the port must be a number from 0 to 65535"));
    }
    Ok(())
}

fn check_repository(path: &str) -> Result<(), ImageRefErrorKind> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ImageRefErrorKind::EmptyComponent);
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ImageRefErrorKind::Uppercase {
                repository: path.to_string(),
            });
        }
        if !is_valid_path_component(component) {
            return Err(ImageRefErrorKind::InvalidComponent {
                component: component.to_string(),
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
fn is_valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_lowercase() || bytes[i].is_ascii_digit()) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_valid_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `[\w][\w.-]{0,127}`
fn is_valid_tag(tag: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= TAG_MAX_LEN
                && is_word(*first)
                && rest.iter().all(|b| is_word(*b) || *b == b'.' || *b == b'-')
        }
        None => false,
    }
}

fn check_digest(digest: &str) -> Result<(), ImageRefErrorKind> {
    let invalid = |why| ImageRefErrorKind::InvalidDigest {
        digest: digest.to_string(),
        why,
    };
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| invalid("expected algorithm:hex, e.g. sha256:<64 hex digits>"))?;
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(invalid(
                "only sha256, sha384 and sha512 digests are supported",
            ));
        }
    };
    if hex.len() != expected_len {
        return Err(invalid(
            "the hex part has the wrong length for its algorithm",
        ));
    }
    if !hex.bytes().all(is_lower_hex) {
        return Err(invalid("the hex part must be lowercase hexadecimal digits"));
    }
    Ok(())
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Keeps error messages readable when the input is a megabyte of garbage.
fn shorten(input: &str) -> String {
    const MAX: usize = 120;
    if input.chars().count() <= MAX {
        format!("{input:?}")
    } else {
        let head: String = input.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(input: &str) -> ImageRef {
        ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn parts(input: &str) -> (String, String, Option<String>, Option<String>) {
        let r = parsed(input);
        (
            r.registry().to_string(),
            r.repository().to_string(),
            r.tag().map(str::to_string),
            r.digest().map(str::to_string),
        )
    }

    fn kind(input: &str) -> ImageRefErrorKind {
        match ImageRef::parse(input) {
            Ok(r) => panic!("{input} parsed as {r}, expected an error"),
            Err(e) => e.kind().clone(),
        }
    }

    const DIGEST: &str = "sha256:0d5a7b6f1e4c3b2a19f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4938";

    #[test]
    fn docker_hub_short_names_get_registry_and_library() {
        assert_eq!(
            parts("nginx"),
            ("docker.io".into(), "library/nginx".into(), None, None)
        );
        assert_eq!(
            parts("nginx:1.25"),
            (
                "docker.io".into(),
                "library/nginx".into(),
                Some("1.25".into()),
                None
            )
        );
        assert_eq!(
            parsed("nginx:1.25").to_string(),
            "docker.io/library/nginx:1.25"
        );
        assert_eq!(
            parsed("bitnami/redis:7.2").to_string(),
            "docker.io/bitnami/redis:7.2"
        );
        assert_eq!(
            parsed("docker.io/nginx").to_string(),
            "docker.io/library/nginx"
        );
        assert_eq!(
            parsed("docker.io/library/nginx:latest").to_string(),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn legacy_docker_hub_hosts_normalise_to_docker_io() {
        for input in [
            "index.docker.io/library/nginx:1",
            "index.docker.io/nginx:1",
            "registry-1.docker.io/library/nginx:1",
            "Index.Docker.IO/nginx:1",
        ] {
            assert_eq!(
                parsed(input).to_string(),
                "docker.io/library/nginx:1",
                "{input}"
            );
        }
    }

    #[test]
    fn first_component_is_a_registry_only_when_it_looks_like_a_host() {
        assert_eq!(parsed("localhost/app").registry(), "localhost");
        assert_eq!(parsed("localhost/app").repository(), "app");
        assert_eq!(parsed("localhost:5000/app:v1").registry(), "localhost:5000");
        assert_eq!(parsed("ghcr.io/acme/shop:dev-1").registry(), "ghcr.io");
        assert_eq!(parsed("ghcr.io/acme/shop:dev-1").repository(), "acme/shop");
        // No dot, no colon, not localhost: a Docker Hub user.
        assert_eq!(parsed("acme/shop").registry(), "docker.io");
        assert_eq!(parsed("acme/shop").repository(), "acme/shop");
        assert_eq!(parsed("localhostx/app").registry(), "docker.io");
    }

    #[test]
    fn real_world_references() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            (
                "127.0.0.1:5000/acme/shop:dev-1",
                "127.0.0.1:5000",
                "acme/shop",
                Some("dev-1"),
            ),
            (
                "ghcr.io/home-assistant/home-assistant:2024.6.1",
                "ghcr.io",
                "home-assistant/home-assistant",
                Some("2024.6.1"),
            ),
            (
                "quay.io/prometheus/node-exporter:v1.8.1",
                "quay.io",
                "prometheus/node-exporter",
                Some("v1.8.1"),
            ),
            (
                "registry.gitlab.com/group/sub/project/image:latest",
                "registry.gitlab.com",
                "group/sub/project/image",
                Some("latest"),
            ),
            (
                "mcr.microsoft.com/dotnet/aspnet:8.0-bookworm-slim",
                "mcr.microsoft.com",
                "dotnet/aspnet",
                Some("8.0-bookworm-slim"),
            ),
            (
                "gcr.io/distroless/static-debian12:nonroot",
                "gcr.io",
                "distroless/static-debian12",
                Some("nonroot"),
            ),
            (
                "public.ecr.aws/docker/library/alpine:3.20",
                "public.ecr.aws",
                "docker/library/alpine",
                Some("3.20"),
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:build_42",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "team/api",
                Some("build_42"),
            ),
            (
                "git.example.com/acme/web__frontend:main",
                "git.example.com",
                "acme/web__frontend",
                Some("main"),
            ),
            (
                "git.example.com:3000/acme/my.app---x:v1",
                "git.example.com:3000",
                "acme/my.app---x",
                Some("v1"),
            ),
            (
                "[::1]:5000/acme/shop:dev-1",
                "[::1]:5000",
                "acme/shop",
                Some("dev-1"),
            ),
            ("[2001:db8::1]/app", "[2001:db8::1]", "app", None),
            (
                "Registry.Example.COM/app:Tag_With_Caps",
                "registry.example.com",
                "app",
                Some("Tag_With_Caps"),
            ),
            (
                "postgres:16-alpine",
                "docker.io",
                "library/postgres",
                Some("16-alpine"),
            ),
            ("traefik", "docker.io", "library/traefik", None),
        ];
        for (input, registry, repository, tag) in cases {
            let r = parsed(input);
            assert_eq!(r.registry(), *registry, "{input}");
            assert_eq!(r.repository(), *repository, "{input}");
            assert_eq!(r.tag(), *tag, "{input}");
        }
    }

    #[test]
    fn digests_with_and_without_tags() {
        let with_digest = format!("alpine@{DIGEST}");
        assert_eq!(
            parts(&with_digest),
            (
                "docker.io".into(),
                "library/alpine".into(),
                None,
                Some(DIGEST.into())
            )
        );
        let both = format!("127.0.0.1:5000/acme/shop:dev-1@{DIGEST}");
        let r = parsed(&both);
        assert_eq!(r.tag(), Some("dev-1"));
        assert_eq!(r.digest(), Some(DIGEST));
        assert_eq!(r.to_string(), both);
        let sha512 = format!("app@sha512:{}", "ab".repeat(64));
        assert!(parsed(&sha512).digest().is_some());
    }

    #[test]
    fn invalid_references_say_why() {
        assert_eq!(kind(""), ImageRefErrorKind::Empty);
        assert_eq!(kind(":tag"), ImageRefErrorKind::EmptyName);
        assert!(matches!(
            kind("Acme/shop"),
            ImageRefErrorKind::Uppercase { .. }
        ));
        assert!(matches!(
            kind("ghcr.io/Acme/shop:1"),
            ImageRefErrorKind::Uppercase { .. }
        ));
        assert!(matches!(kind("NGINX"), ImageRefErrorKind::Uppercase { .. }));
        assert_eq!(kind("ghcr.io//shop"), ImageRefErrorKind::EmptyComponent);
        assert_eq!(kind("ghcr.io/acme/"), ImageRefErrorKind::EmptyComponent);
        assert_eq!(kind("/acme/shop"), ImageRefErrorKind::EmptyComponent);
        assert_eq!(kind("ghcr.io/"), ImageRefErrorKind::EmptyComponent);
        for bad in [
            "acme/-shop",
            "acme/shop-",
            "acme/sh..op",
            "acme/sh___op",
            "acme/sh op",
            "acme/shöp",
            "acme/_x",
        ] {
            assert!(
                matches!(kind(bad), ImageRefErrorKind::InvalidComponent { .. }),
                "{bad}"
            );
        }
        for bad in [
            "nginx:",
            "nginx:-x",
            "nginx:.x",
            "nginx:sp ace",
            &format!("nginx:{}", "a".repeat(129)),
        ] {
            let k = kind(bad);
            assert!(
                matches!(
                    k,
                    ImageRefErrorKind::InvalidTag { .. }
                        | ImageRefErrorKind::InvalidComponent { .. }
                ),
                "{bad}: {k:?}"
            );
        }
        assert!(matches!(
            kind("nginx:"),
            ImageRefErrorKind::InvalidTag { .. }
        ));
        assert!(matches!(
            kind(&format!("nginx:{}", "a".repeat(129))),
            ImageRefErrorKind::InvalidTag { .. }
        ));
        assert!(
            parsed(&format!("nginx:{}", "a".repeat(128)))
                .tag()
                .is_some()
        );
        for bad in [
            "nginx@",
            "nginx@sha256:abc",
            "nginx@md5:0123456789abcdef0123456789abcdef",
            &format!("nginx@sha256:{}", "A".repeat(64)),
            &format!("nginx@sha256:{}", "g".repeat(64)),
            &format!("nginx@sha256:{}@{DIGEST}", "a".repeat(64)),
        ] {
            assert!(
                matches!(kind(bad), ImageRefErrorKind::InvalidDigest { .. }),
                "{bad}"
            );
        }
        for bad in [
            "exa_mple.com/app",
            "-bad.com/app",
            "host.com:/app",
            "host.com:99999/app",
            "host.com:5x/app",
            "[::1/app",
            "[]/app",
            "[::g]/app",
            "[::1]x/app",
        ] {
            assert!(
                matches!(kind(bad), ImageRefErrorKind::InvalidRegistry { .. }),
                "{bad}"
            );
        }
        assert_eq!(kind(&"a".repeat(64)), ImageRefErrorKind::ImageId);
        let long = format!("registry.example.com/{}", "a".repeat(240));
        assert!(matches!(kind(&long), ImageRefErrorKind::NameTooLong { .. }));
        // library/ counts towards the limit: 255 - "docker.io/library/".len() = 237.
        assert!(ImageRef::parse(&"a".repeat(237)).is_ok());
        assert!(matches!(
            kind(&"a".repeat(238)),
            ImageRefErrorKind::NameTooLong { .. }
        ));
    }

    #[test]
    fn error_messages_name_the_input_and_the_reason() {
        let message = ImageRef::parse("ghcr.io/Acme/shop:1")
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("invalid image reference \"ghcr.io/Acme/shop:1\""),
            "{message}"
        );
        assert!(message.contains("must be lowercase"), "{message}");
        let huge = "A".repeat(100_000);
        let message = ImageRef::parse(&huge).unwrap_err().to_string();
        assert!(message.len() < 600, "message is {} bytes", message.len());
    }

    #[test]
    fn name_same_image_and_with_tag() {
        let a = parsed("127.0.0.1:5000/acme/shop:dev-1");
        let b = parsed(&format!("127.0.0.1:5000/acme/shop:dev-2@{DIGEST}"));
        let other_host = parsed("127.0.0.1:5001/acme/shop:dev-1");
        assert_eq!(a.name(), "127.0.0.1:5000/acme/shop");
        assert!(a.is_same_image(&b));
        assert!(!a.is_same_image(&other_host));
        assert!(parsed("nginx").is_same_image(&parsed("docker.io/library/nginx:1")));
        let retagged = b.with_tag(Tag::parse("v2").unwrap());
        assert_eq!(retagged.to_string(), "127.0.0.1:5000/acme/shop:v2");
        assert_eq!(retagged.digest(), None);
        assert_eq!(b.without_tag().to_string(), "127.0.0.1:5000/acme/shop");
    }

    #[test]
    fn from_parts_builds_what_a_registry_names() {
        let r = ImageRef::from_parts("127.0.0.1:5000", "acme/shop").unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/acme/shop");
        assert_eq!(
            ImageRef::from_parts("docker.io", "nginx")
                .unwrap()
                .repository(),
            "library/nginx"
        );
        assert_eq!(
            ImageRef::from_parts("Git.Example.com", "a/b")
                .unwrap()
                .registry(),
            "git.example.com"
        );
        // A bare word would round-trip as a Docker Hub namespace, so it is refused.
        let e = ImageRef::from_parts("registry", "acme/shop").unwrap_err();
        assert!(
            matches!(e.kind(), ImageRefErrorKind::InvalidRegistry { .. }),
            "{e}"
        );
        // A repository can not smuggle in a tag or digest.
        assert!(ImageRef::from_parts("ghcr.io", "acme/shop:v1").is_err());
        assert!(ImageRef::from_parts("ghcr.io", &format!("acme/shop@{DIGEST}")).is_err());
        assert!(ImageRef::from_parts("ghcr.io", "").is_err());
    }

    #[test]
    fn tags_parse_on_their_own() {
        assert_eq!(Tag::parse("v1.2.3").unwrap().as_str(), "v1.2.3");
        assert_eq!(Tag::parse("_x").unwrap().to_string(), "_x");
        assert!(Tag::parse("").is_err());
        assert!(Tag::parse(".x").is_err());
        assert!(Tag::parse("sha256:abc").is_err());
        assert!("dev-1".parse::<Tag>().is_ok());
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}"
    }

    fn registry() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some("docker.io".to_string())),
            Just(Some("index.docker.io".to_string())),
            Just(Some("localhost".to_string())),
            "[a-z0-9]{1,8}(\\.[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?){1,3}(:[0-9]{1,4})?".prop_map(Some),
            "(127\\.0\\.0\\.1|localhost):[0-9]{1,5}"
                .prop_filter("port fits u16", |r| r
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .is_some())
                .prop_map(Some),
            "\\[[0-9a-f:]{1,12}\\](:[0-9]{1,4})?".prop_map(Some),
        ]
    }

    fn reference() -> impl Strategy<Value = String> {
        (
            registry(),
            proptest::collection::vec(component(), 1..4),
            proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}"),
            proptest::option::of("[0-9a-f]{64}"),
        )
            .prop_map(|(registry, mut path, tag, digest)| {
                let mut s = String::new();
                if let Some(r) = registry {
                    s.push_str(&r);
                    s.push('/');
                } else if path.len() > 1 {
                    // Without a registry a dotted first component would be read as a host.
                    path[0] = path[0].replace('.', "-");
                }
                s.push_str(&path.join("/"));
                if let Some(t) = tag {
                    s.push(':');
                    s.push_str(&t);
                }
                if let Some(d) = digest {
                    s.push_str("@sha256:");
                    s.push_str(&d);
                }
                s
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in any::<String>()) {
            let _ = ImageRef::parse(&input);
        }

        #[test]
        fn parse_never_panics_on_reference_like_strings(input in "[a-zA-Z0-9:/@.\\[\\]_-]{0,80}") {
            if let Ok(r) = ImageRef::parse(&input) {
                prop_assert_eq!(ImageRef::parse(&r.to_string()), Ok(r));
            }
        }

        #[test]
        fn display_parses_back_to_the_same_reference(input in reference()) {
            let r = ImageRef::parse(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let again = ImageRef::parse(&r.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&again, &r);
            prop_assert_eq!(again.to_string(), r.to_string());
        }
    }
}
