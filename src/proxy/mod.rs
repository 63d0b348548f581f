//! Reverse proxies, behind one small trait in our words: make sure a domain routes to an
//! upstream, delete such a route, list the routes we own, check the settings.
//!
//! Adapters: [`npm`] (Nginx Proxy Manager's REST API), [`caddy`] (Caddy's admin API),
//! [`traefik`] (no API: routing comes from container labels) and [`NoProxy`]. Each adapter
//! only translates; which hosts an instance gets, and when they move, is the deployer's
//! business. Every adapter marks what it creates and never touches what it did not create.
//!
//! Invariant: no secret (the proxy password, a token) appears in an error, a log line or a
//! `Debug` output.

pub mod caddy;
pub mod npm;
pub mod traefik;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::errors::error_chain;
pub use crate::store::ProxyKind;
use crate::store::Settings;
use crate::subdomain::Subdomain;

/// A reverse proxy as the deployer sees it. Held as `Arc<dyn Proxy>`.
#[async_trait::async_trait]
pub trait Proxy: Send + Sync {
    fn kind(&self) -> ProxyKind;

    /// Makes `spec.domain` route to `spec.upstream`. Idempotent: a host we own for the
    /// domain with the same target is left as it is; with another target it is updated in
    /// place, never duplicated. A domain held by a host we do not own is
    /// [`ProxyError::DomainInUse`].
    async fn ensure_host(&self, spec: &HostSpec) -> Result<HostId, ProxyError>;

    /// Makes `domain` route to every one of `upstreams` (a swarm service's tasks), a
    /// request going on to another upstream when one does not answer. Proxies that route
    /// a domain to one upstream only (the default) take the first.
    async fn ensure_pool(
        &self,
        domain: &Subdomain,
        upstreams: &[Upstream],
    ) -> Result<HostId, ProxyError> {
        let upstream = upstreams
            .first()
            .ok_or_else(|| ProxyError::Invalid(format!("no upstream to route {domain} to")))?;
        self.ensure_host(&HostSpec {
            domain: domain.clone(),
            upstream: upstream.clone(),
        })
        .await
    }

    /// Deletes a host we own. A host that is already gone is not an error.
    async fn delete_host(&self, id: &HostId) -> Result<(), ProxyError>;

    /// The hosts this proxy holds that docker-watcher made (and only those).
    async fn list_hosts(&self) -> Result<Vec<OwnedHost>, ProxyError>;

    /// Tests the settings: the proxy answers, the credentials work. The `Ok` text and the
    /// error both say, in words a person can act on, what was found.
    async fn check(&self) -> Result<String, ProxyError>;

    /// Labels a container needs so the proxy routes `domains` to its `container_port`.
    /// Empty for every proxy except Traefik.
    fn container_labels(&self, domains: &[String], container_port: u16)
    -> BTreeMap<String, String>;
}

/// Where a proxy host sends its traffic.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
}

impl Upstream {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// One domain routed to one upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    pub domain: Subdomain,
    pub upstream: Upstream,
}

/// A proxy-side host id that carries its proxy's kind, e.g. `npm:12` or
/// `caddy:dw-stage-dev-shop.example.com`, so an id stored under one proxy is recognised
/// after the settings switch to another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(String);

impl HostId {
    pub fn new(kind: ProxyKind, local: &str) -> HostId {
        HostId(format!("{}:{local}", kind.as_str()))
    }

    /// Reads an id back (from the store).
    pub fn parse(text: &str) -> Result<HostId, ProxyError> {
        let invalid = || {
            ProxyError::Invalid(format!(
                "{text:?} is not a proxy host id (expected kind:id, like npm:12)"
            ))
        };
        let (kind, local) = text.split_once(':').ok_or_else(invalid)?;
        kind.parse::<ProxyKind>().map_err(|_| invalid())?;
        if local.is_empty() {
            return Err(invalid());
        }
        Ok(HostId(text.to_string()))
    }

    pub fn kind(&self) -> ProxyKind {
        self.0
            .split_once(':')
            .and_then(|(kind, _)| kind.parse().ok())
            .unwrap_or(ProxyKind::None)
    }

    /// The proxy's own id (after `kind:`).
    pub fn local(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, local)| local)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for HostId {
    type Err = ProxyError;
    fn from_str(s: &str) -> Result<HostId, ProxyError> {
        HostId::parse(s)
    }
}

/// A host docker-watcher made, as the proxy holds it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedHost {
    pub id: HostId,
    pub domain: String,
    pub upstream: Upstream,
}

/// What went wrong talking to a proxy. Callers branch on the variant; the message says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "cannot reach the proxy at {url}: {reason}; check the proxy URL and that the proxy is running"
    )]
    Unreachable { url: String, reason: String },
    #[error("the proxy refused the login ({detail}); check the proxy username and password")]
    Unauthorized { detail: String },
    #[error(
        "the domain {domain} is already used by a proxy host docker-watcher did not make; remove that host or change the subdomain pattern"
    )]
    DomainInUse { domain: String },
    /// The host was written (`id` exists) but nginx refused its configuration.
    #[error(
        "nginx rejected the configuration of proxy host {id} for {domain}: {nginx_err}; look at that host in Nginx Proxy Manager"
    )]
    NginxRejected {
        id: HostId,
        domain: String,
        nginx_err: String,
    },
    #[error("proxy host {id} was not made by docker-watcher, so it was left alone")]
    NotOwned { id: HostId },
    /// An id of another proxy kind (the settings switched proxies since it was stored).
    #[error("proxy host {id} belongs to a {} proxy, but the configured proxy is {expected}", id.kind())]
    WrongKind { id: HostId, expected: ProxyKind },
    #[error("{0}")]
    Invalid(String),
    #[error("the proxy answered unexpectedly: {0}")]
    Unexpected(String),
}

/// Everything an adapter needs, read from the settings (see [`ProxyConfig::from_settings`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub kind: ProxyKind,
    /// NPM: its admin address (`http://npm:81`); Caddy: its admin API
    /// (default `http://127.0.0.1:2019`).
    pub url: Option<String>,
    pub username: Option<String>,
    pub secret: Option<String>,
    /// `None`, `new` (Let's Encrypt) or an existing certificate id (NPM only).
    pub certificate: Option<String>,
    pub force_ssl: bool,
    /// Addresses docker-watcher's Caddy server listens on; empty means `:80`.
    pub caddy_listen: Vec<String>,
}

impl ProxyConfig {
    /// A config from the settings row and the opened proxy secret.
    pub fn from_settings(settings: &Settings, secret: Option<String>) -> ProxyConfig {
        ProxyConfig {
            kind: settings.proxy_kind,
            url: settings.proxy_url.clone(),
            username: settings.proxy_username.clone(),
            secret,
            certificate: settings.proxy_certificate.clone(),
            force_ssl: settings.proxy_force_ssl,
            caddy_listen: settings
                .proxy_listen
                .as_deref()
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("certificate", &self.certificate)
            .field("force_ssl", &self.force_ssl)
            .field("caddy_listen", &self.caddy_listen)
            .finish()
    }
}

/// The adapter for `config.kind`. Makes no request: use [`Proxy::check`] to test it.
pub fn connect(config: &ProxyConfig) -> Result<Arc<dyn Proxy>, ProxyError> {
    Ok(match config.kind {
        ProxyKind::None => Arc::new(NoProxy),
        ProxyKind::Npm => Arc::new(npm::NpmProxy::new(config)?),
        ProxyKind::Caddy => Arc::new(caddy::CaddyProxy::new(config)?),
        ProxyKind::Traefik => Arc::new(traefik::TraefikProxy),
    })
}

/// Tests the proxy part of the settings with a new client made from them, for the API and
/// UI (a form not saved yet): the base domain and both subdomain patterns are usable, then
/// the proxy itself is checked ([`Proxy::check`]). The `Ok` text shows what the domains
/// will look like.
pub async fn check_settings(
    settings: &Settings,
    secret: Option<String>,
) -> Result<String, ProxyError> {
    let examples = example_domains(settings)?;
    let proxy = connect(&ProxyConfig::from_settings(settings, secret))?;
    Ok(format!("{}. {examples}", proxy.check().await?))
}

/// Like [`check_settings`], but through `proxy`, the client deploys use now: what it
/// reports (a token it had to renew, say) is what the next deploy meets.
pub async fn check_live(settings: &Settings, proxy: &dyn Proxy) -> Result<String, ProxyError> {
    let examples = example_domains(settings)?;
    Ok(format!("{}. {examples}", proxy.check().await?))
}

/// The proxy the saved settings name; a configuration that cannot work is logged and
/// replaced by no proxy, so the daemon still starts and the UI can fix the settings.
pub fn connect_saved(store: &crate::store::Store) -> Arc<dyn Proxy> {
    let config = match (store.settings(), store.proxy_secret()) {
        (Ok(settings), Ok(secret)) => ProxyConfig::from_settings(&settings, secret),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("cannot read the proxy settings: {e}");
            return Arc::new(NoProxy);
        }
    };
    match connect(&config) {
        Ok(proxy) => proxy,
        Err(e) => {
            tracing::error!(
                "proxy settings do not work ({e}); routing is off until they are fixed"
            );
            Arc::new(NoProxy)
        }
    }
}

/// "Domains look like …" for the check, after checking the base domain and both patterns.
fn example_domains(settings: &Settings) -> Result<String, ProxyError> {
    let invalid = |e: crate::subdomain::SubdomainError| ProxyError::Invalid(e.to_string());
    Subdomain::check_stage_pattern(&settings.stage_subdomain_pattern).map_err(invalid)?;
    Subdomain::check_instance_pattern(&settings.instance_subdomain_pattern).map_err(invalid)?;
    let stage = Subdomain::for_stage(
        &settings.stage_subdomain_pattern,
        &settings.base_domain,
        "shop",
        "dev",
    )
    .map_err(invalid)?;
    let instance = Subdomain::for_instance(
        &settings.instance_subdomain_pattern,
        &settings.base_domain,
        "shop",
        "dev",
        "dev-4f2a91",
    )
    .map_err(invalid)?;
    Ok(format!(
        "Domains look like {stage} (stage dev of project shop) and {instance} (its tag dev-4f2a91)"
    ))
}

/// No reverse proxy: instances are reached on their published ports only. Hosts are
/// accepted and forgotten, so the deployer needs no special case.
pub struct NoProxy;

#[async_trait::async_trait]
impl Proxy for NoProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::None
    }

    async fn ensure_host(&self, spec: &HostSpec) -> Result<HostId, ProxyError> {
        Ok(HostId::new(ProxyKind::None, spec.domain.as_str()))
    }

    async fn delete_host(&self, id: &HostId) -> Result<(), ProxyError> {
        expect_kind(id, ProxyKind::None)
    }

    async fn list_hosts(&self) -> Result<Vec<OwnedHost>, ProxyError> {
        Ok(Vec::new())
    }

    async fn check(&self) -> Result<String, ProxyError> {
        Ok(
            "no reverse proxy is configured: instances are reached on their published ports only"
                .into(),
        )
    }

    fn container_labels(&self, _domains: &[String], _port: u16) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// Time limit for one ordinary request to a proxy.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `Err(WrongKind)` unless `id` was made by a proxy of `kind`.
pub(crate) fn expect_kind(id: &HostId, kind: ProxyKind) -> Result<(), ProxyError> {
    if id.kind() == kind {
        Ok(())
    } else {
        Err(ProxyError::WrongKind {
            id: id.clone(),
            expected: kind,
        })
    }
}

/// An HTTP client for talking to a proxy: no redirects (a login answered with a redirect
/// is a wrong URL, and credentials must not follow it elsewhere), a short connect timeout;
/// idle connections are kept for reuse only when `pooled`.
pub(crate) fn http_client(pooled: bool) -> Result<reqwest::Client, ProxyError> {
    let builder = crate::http_client::builder();
    let builder = if pooled {
        builder
    } else {
        builder.pool_max_idle_per_host(0)
    };
    builder
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("docker-watcher/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProxyError::Unexpected(format!("cannot build an HTTP client: {e}")))
}

/// Checks a proxy URL from the settings and returns it without a trailing slash.
pub(crate) fn base_url(what: &str, url: &str) -> Result<String, ProxyError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        ProxyError::Invalid(format!(
            "the {what} URL {url:?} is not a URL ({e}); write it like http://host:port"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ProxyError::Invalid(format!(
            "the {what} URL must start with http:// or https://"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ProxyError::Invalid(format!(
            "the {what} URL carries credentials; put them in the proxy username and password instead"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ProxyError::Invalid(format!(
            "the {what} URL must not have a query or fragment"
        )));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Translates a failed request: no answer at all is `Unreachable`, naming the proxy's base
/// URL (never a request body).
pub(crate) fn transport_error(base: &str, error: reqwest::Error) -> ProxyError {
    let reason = error_chain(&error.without_url());
    ProxyError::Unreachable {
        url: base.to_string(),
        reason,
    }
}

/// The text of an HTTP answer as JSON (`Null` when empty, a JSON string when not JSON).
pub(crate) async fn read_json(
    base: &str,
    response: reqwest::Response,
) -> Result<serde_json::Value, ProxyError> {
    let text = response
        .text()
        .await
        .map_err(|e| transport_error(base, e))?;
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_carry_their_kind() {
        let id = HostId::new(ProxyKind::Npm, "12");
        assert_eq!(id.as_str(), "npm:12");
        assert_eq!(id.kind(), ProxyKind::Npm);
        assert_eq!(id.local(), "12");
        let caddy = HostId::parse("caddy:dw-a.example.com").unwrap();
        assert_eq!(caddy.kind(), ProxyKind::Caddy);
        assert_eq!(caddy.local(), "dw-a.example.com");
        for bad in ["12", "nginx:12", "npm:", ""] {
            assert!(HostId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_debug_hides_the_secret() {
        let config = ProxyConfig {
            kind: ProxyKind::Npm,
            url: Some("http://npm:81".into()),
            username: Some("admin@example.com".into()),
            secret: Some("hunter2-very-secret".into()),
            certificate: None,
            force_ssl: false,
            caddy_listen: Vec::new(),
        };
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            base_url("proxy", "http://npm:81/").unwrap(),
            "http://npm:81"
        );
        assert!(base_url("proxy", "npm:81").is_err());
        assert!(base_url("proxy", "ftp://npm").is_err());
        let error = base_url("proxy", "http://admin:hunter2@npm:81")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn upstream_addresses_bracket_ipv6() {
        let v4 = Upstream {
            host: "127.0.0.1".into(),
            port: 8080,
        };
        let v6 = Upstream {
            host: "::1".into(),
            port: 8080,
        };
        assert_eq!(v4.address(), "127.0.0.1:8080");
        assert_eq!(v6.address(), "[::1]:8080");
    }

    /// The deployer's pure-test settings, with no proxy, on `example.com`.
    fn settings() -> Settings {
        Settings {
            base_domain: "example.com".into(),
            ..crate::deployer::fakes::settings(ProxyKind::None)
        }
    }

    #[tokio::test]
    async fn settings_check_covers_domains_and_the_proxy() {
        let report = check_settings(&settings(), None).await.unwrap();
        assert!(report.contains("stage-dev-shop.example.com"), "{report}");
        assert!(
            report.contains("stage-dev-shop-dev-4f2a91.example.com"),
            "{report}"
        );

        let bad_pattern = Settings {
            instance_subdomain_pattern: "stage-{stage}-{project}".into(),
            ..settings()
        };
        let error = check_settings(&bad_pattern, None).await.unwrap_err();
        assert!(error.to_string().contains("{tag}"), "{error}");

        let bad_domain = Settings {
            base_domain: "example com".into(),
            ..settings()
        };
        assert!(matches!(
            check_settings(&bad_domain, None).await,
            Err(ProxyError::Invalid(_))
        ));

        let npm_without_url = Settings {
            proxy_kind: ProxyKind::Npm,
            ..settings()
        };
        let error = check_settings(&npm_without_url, None).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("set the Nginx Proxy Manager URL"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn no_proxy_accepts_and_forgets() {
        let proxy = connect(&ProxyConfig {
            kind: ProxyKind::None,
            url: None,
            username: None,
            secret: None,
            certificate: None,
            force_ssl: false,
            caddy_listen: Vec::new(),
        })
        .unwrap();
        let spec = HostSpec {
            domain: Subdomain::parse("a.example.com").unwrap(),
            upstream: Upstream {
                host: "127.0.0.1".into(),
                port: 1,
            },
        };
        let id = proxy.ensure_host(&spec).await.unwrap();
        assert_eq!(id.kind(), ProxyKind::None);
        proxy.delete_host(&id).await.unwrap();
        assert!(proxy.list_hosts().await.unwrap().is_empty());
        assert!(
            proxy
                .container_labels(&["a.example.com".into()], 80)
                .is_empty()
        );
        assert!(matches!(
            proxy.delete_host(&HostId::new(ProxyKind::Npm, "3")).await,
            Err(ProxyError::WrongKind { .. })
        ));
    }
}
