//! One reader per webhook format. Each turns a parsed JSON body into events; none decides
//! anything beyond "is this a tag push, and of which image".

pub(super) mod distribution;
pub(super) mod docker_hub;
pub(super) mod generic;
pub(super) mod gitea;
pub(super) mod github;

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
    use super::url_host;

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
}
