//! Container registries, behind the small [`Registry`] trait: list a repository's tags,
//! resolve a tag to its manifest digest, and check that a registry answers and accepts
//! its credentials.
//!
//! One client speaks the OCI distribution API (`oci`, and with their specifics
//! `dockerhub` and `ghcr`); Gitea's packages API adds creation times (`gitea`).
//! [`connect`] builds the right one from a stored registry's settings.
//!
//! *Invariant*: this module translates; it never decides which tag is new (that is
//! [`crate::tags`]) and reads the store only in [`for_project`] (a project's registry). Secrets arrive in plaintext in
//! [`RegistryConfig`] and never appear in an error, a log line or a `Debug` output.

mod auth;
mod error;
#[cfg(test)]
mod fake_tests;
mod gitea;
mod oci;
mod paging;
mod project;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Url;

pub use crate::tags::TagInfo;
pub use error::RegistryError;
pub use project::for_project;

/// A registry as the poller, the deployer and the API see it.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Every tag of `repository` (the path inside the registry, e.g. `acme/shop`), all
    /// pages. Order is the registry's; creation times where the registry gives them.
    async fn list_tags(&self, repository: &str) -> Result<Vec<TagInfo>, RegistryError>;

    /// The manifest digest (`sha256:…`) `tag` points at now. A HEAD request where the
    /// registry allows it, so polling spares pull rate limits.
    async fn resolve_digest(&self, repository: &str, tag: &str) -> Result<String, RegistryError>;

    /// "Test connection": the registry answers and accepts the credentials, and, when
    /// `repository` is given, that repository can be listed.
    async fn check(&self, repository: Option<&str>) -> Result<CheckReport, RegistryError>;
}

/// Which API a registry is spoken to with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryKind {
    /// Any registry with the OCI distribution (Docker v2) API.
    Oci,
    /// Gitea (or Forgejo): tags and creation times from its packages API.
    Gitea,
    /// Docker Hub: `registry-1.docker.io`, `library/` for single-name images.
    DockerHub,
    /// GitHub Container Registry: `ghcr.io`.
    Ghcr,
}

impl RegistryKind {
    pub const ALL: [RegistryKind; 4] = [
        RegistryKind::Oci,
        RegistryKind::Gitea,
        RegistryKind::DockerHub,
        RegistryKind::Ghcr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Oci => "oci",
            RegistryKind::Gitea => "gitea",
            RegistryKind::DockerHub => "dockerhub",
            RegistryKind::Ghcr => "ghcr",
        }
    }
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registry kind that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown registry kind {0:?}: use one of oci, gitea, dockerhub, ghcr")]
pub struct UnknownRegistryKind(pub String);

impl FromStr for RegistryKind {
    type Err = UnknownRegistryKind;

    fn from_str(s: &str) -> Result<RegistryKind, UnknownRegistryKind> {
        RegistryKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownRegistryKind(s.to_string()))
    }
}

/// What [`connect`] needs to talk to one registry.
#[derive(Clone)]
pub struct RegistryConfig {
    pub kind: RegistryKind,
    /// `https://ghcr.io`, `http://127.0.0.1:5000`, or a bare host (`registry.example.com`,
    /// which gets https, or http when `insecure`). May be empty for Docker Hub and GHCR.
    pub base_url: String,
    pub username: Option<String>,
    /// Password or token, in plaintext: the caller opens it from the sealed store.
    pub secret: Option<String>,
    /// Allow plain HTTP. It does not switch off certificate checks: a private CA belongs
    /// in the system's trust store.
    pub insecure: bool,
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// What a successful [`Registry::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The URL the client talks to (after defaults such as `registry-1.docker.io`).
    pub endpoint: String,
    /// Credentials were sent and accepted; `false` means anonymous access works.
    pub signed_in: bool,
    /// The repository that was listed, with its number of tags.
    pub repository: Option<(String, usize)>,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = if self.signed_in {
            "credentials accepted"
        } else {
            "anonymous access"
        };
        write!(f, "{} answers, {access}", self.endpoint)?;
        if let Some((repository, tags)) = &self.repository {
            write!(f, "; {repository} has {tags} tags")?;
        }
        Ok(())
    }
}

/// Builds the client for a stored registry. Contacts nothing: a wrong URL or password
/// shows at the first call (or with [`Registry::check`]).
pub fn connect(config: &RegistryConfig) -> Result<Arc<dyn Registry>, RegistryError> {
    let endpoint = endpoint(config)?;
    let credentials = auth::Credentials::from_config(config)?;
    Ok(match config.kind {
        RegistryKind::Gitea => Arc::new(gitea::GiteaClient::new(endpoint, credentials)?),
        kind => Arc::new(oci::OciClient::new(
            endpoint,
            credentials.basic(),
            kind == RegistryKind::DockerHub,
        )?),
    })
}

const DOCKER_HUB: &str = "https://registry-1.docker.io";
const DOCKER_HUB_ALIASES: [&str; 5] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
    "hub.docker.com",
];

/// The URL requests go to: defaults for Docker Hub and GHCR, a scheme for a bare host,
/// and plain HTTP refused unless the registry is marked insecure.
fn endpoint(config: &RegistryConfig) -> Result<Url, RegistryError> {
    let given = config.base_url.trim().trim_end_matches('/');
    let bare = given
        .split_once("://")
        .map_or(given, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let given = match config.kind {
        RegistryKind::DockerHub if given.is_empty() || DOCKER_HUB_ALIASES.contains(&bare) => {
            DOCKER_HUB
        }
        RegistryKind::Ghcr if given.is_empty() => "https://ghcr.io",
        _ if given.is_empty() => {
            return Err(RegistryError::config(
                "the registry URL is empty: set it, e.g. https://registry.example.com",
            ));
        }
        _ => given,
    };
    let with_scheme = if given.contains("://") {
        given.to_string()
    } else if config.insecure {
        format!("http://{given}")
    } else {
        format!("https://{given}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| {
        RegistryError::config(format!("the registry URL {given:?} is not a URL ({e})"))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RegistryError::config(
            "the registry URL contains credentials: remove them and set the username and token fields instead",
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if config.insecure => Ok(url),
        "http" => Err(RegistryError::config(format!(
            "{url} uses plain HTTP: mark the registry insecure, or use https"
        ))),
        other => Err(RegistryError::config(format!(
            "the registry URL has scheme {other:?}: use https:// (or http:// for an insecure registry)"
        ))),
    }
}

/// Checks a repository path (`acme/shop`) before it goes into a URL.
fn valid_repository(repository: &str) -> Result<&str, RegistryError> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if repository.split('/').all(component_ok) {
        Ok(repository)
    } else {
        Err(RegistryError::config(format!(
            "invalid repository {repository:?}: use lower-case path components such as acme/shop"
        )))
    }
}

/// Checks a tag before it goes into a URL.
fn valid_tag(tag: &str) -> Result<&str, RegistryError> {
    let ok = (1..=128).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(tag)
    } else {
        Err(RegistryError::config(format!(
            "invalid tag {tag:?}: tags are up to 128 letters, digits, '.', '_' and '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: RegistryKind, base_url: &str, insecure: bool) -> RegistryConfig {
        RegistryConfig {
            kind,
            base_url: base_url.into(),
            username: Some("ci".into()),
            secret: Some("hunter2".into()),
            insecure,
        }
    }

    fn endpoint_of(kind: RegistryKind, base_url: &str, insecure: bool) -> String {
        endpoint(&config(kind, base_url, insecure))
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in RegistryKind::ALL {
            assert_eq!(kind.as_str().parse::<RegistryKind>(), Ok(kind));
        }
        let unknown = "quay".parse::<RegistryKind>().unwrap_err();
        assert!(unknown.to_string().contains("oci, gitea, dockerhub, ghcr"));
    }

    #[test]
    fn endpoints() {
        use RegistryKind::*;
        assert_eq!(
            endpoint_of(Oci, "registry.example.com", false),
            "https://registry.example.com/"
        );
        assert_eq!(
            endpoint_of(Oci, "127.0.0.1:5000", true),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            endpoint_of(Oci, "http://127.0.0.1:5000/", true),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            endpoint_of(DockerHub, "", false),
            "https://registry-1.docker.io/"
        );
        assert_eq!(
            endpoint_of(DockerHub, "https://docker.io", false),
            "https://registry-1.docker.io/"
        );
        assert_eq!(
            endpoint_of(DockerHub, "mirror.local:5000", false),
            "https://mirror.local:5000/"
        );
        assert_eq!(endpoint_of(Ghcr, " ", false), "https://ghcr.io/");
        let plain = endpoint_of(Oci, "http://127.0.0.1:5000", false);
        assert!(plain.contains("mark the registry insecure"), "{plain}");
        let empty = endpoint_of(Gitea, "", false);
        assert!(empty.contains("URL is empty"), "{empty}");
        let with_password = endpoint_of(Oci, "https://ci:hunter2@registry.example.com", false);
        assert!(
            with_password.contains("contains credentials"),
            "{with_password}"
        );
        assert!(!with_password.contains("hunter2"), "{with_password}");
        assert!(endpoint_of(Oci, "ftp://x", false).contains("scheme \"ftp\""));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", config(RegistryKind::Oci, "r.example.com", false));
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn repository_and_tag_names_are_checked_before_use() {
        assert!(valid_repository("acme/shop").is_ok());
        assert!(valid_repository("a/b.c/d_e-f").is_ok());
        for bad in [
            "",
            "Acme/shop",
            "acme//shop",
            "/shop",
            "acme/../x",
            "a?b",
            "a/-b",
        ] {
            assert!(valid_repository(bad).is_err(), "{bad}");
        }
        assert!(valid_tag("v1.2.3-rc_1").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a:b", &"x".repeat(129)] {
            assert!(valid_tag(bad).is_err(), "{bad}");
        }
    }
}
