//! One reader per webhook format. Each turns a parsed JSON body into events; none decides
//! anything beyond "is this a tag push, and of which image".

pub(super) mod distribution;
pub(super) mod docker_hub;
pub(super) mod event_grid;
pub(super) mod generic;
pub(super) mod gitea;
pub(super) mod github;
pub(super) mod harbor;
pub(super) mod jfrog;
pub(super) mod pubsub;
pub(super) mod quay;

use crate::image_ref::is_valid_digest;

/// `ghcr.io/o/n:tag@sha256:…` → `ghcr.io/o/n`; a ':' before the last '/' is a port.
pub(super) fn strip_tag_and_digest(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// The digest when it is a valid one. Registries that only describe a push (rather than
/// name what to pull) lose nothing by a digest left out: the deploy pulls the tag.
pub(super) fn valid_digest(digest: Option<&str>) -> Option<String> {
    digest.filter(|d| is_valid_digest(d)).map(str::to_string)
}

/// `host[:port]` of an absolute `http(s)://` URL, e.g. a package's `html_url`.
pub(super) fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    // Drop any user:password@ before the host.
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::{strip_tag_and_digest, url_host};
    use crate::webhook::test_support::DIGEST;

    #[test]
    fn url_host_takes_host_and_port() {
        assert_eq!(
            url_host("https://git.example.com/acme/-/packages/container/shop/dev-1"),
            Some("git.example.com")
        );
        assert_eq!(
            url_host("http://localhost:3000/acme"),
            Some("localhost:3000")
        );
        assert_eq!(url_host("http://user:pw@[::1]:3000"), Some("[::1]:3000"));
        assert_eq!(url_host("https://"), None);
        assert_eq!(url_host("git.example.com/acme"), None);
    }

    #[test]
    fn strip_tag_and_digest_keeps_ports() {
        assert_eq!(strip_tag_and_digest("ghcr.io/o/n:v1"), "ghcr.io/o/n");
        assert_eq!(
            strip_tag_and_digest(&format!("ghcr.io/o/n:v1@{DIGEST}")),
            "ghcr.io/o/n"
        );
        assert_eq!(strip_tag_and_digest("host:5000/o/n"), "host:5000/o/n");
        assert_eq!(strip_tag_and_digest("ghcr.io/o/n"), "ghcr.io/o/n");
    }
}
