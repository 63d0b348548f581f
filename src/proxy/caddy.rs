//! Caddy, through its admin API (the JSON config API: `/config/…` and `/id/{id}`).
//!
//! Our routes live in an HTTP server of their own, `docker_watcher`, created on first use
//! (listening on the configured addresses, `:80` by default, automatic HTTPS off) without
//! touching any other server. Each route we own has an `@id` of `dw-` plus its domain,
//! matches that host and hands the request to `reverse_proxy` with one upstream; it is
//! added, replaced and removed through `/id/{id}`, so routes without our prefix are never
//! changed. Caddy applies each change with a graceful reload, so moving a domain to a new
//! upstream drops no request.
//!
//! Caddy keeps what the admin API writes only in its running config (and its autosave
//! file); the deployer's reconciliation puts routes back after Caddy restarts from a
//! Caddyfile.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{
    HostId, HostSpec, OwnedHost, Proxy, ProxyConfig, ProxyError, ProxyKind, REQUEST_TIMEOUT,
    Upstream, base_url, expect_kind, http_client, read_json, transport_error,
};
use crate::subdomain::Subdomain;

/// The name of the Caddy HTTP server that holds our routes.
pub const SERVER_NAME: &str = "docker_watcher";
/// The prefix of every route `@id` we own.
pub const ROUTE_PREFIX: &str = "dw-";
/// Where Caddy's admin API listens unless the settings say otherwise.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:2019";

/// The Caddy adapter.
pub struct CaddyProxy {
    http: reqwest::Client,
    admin: String,
    listen: Vec<String>,
    /// One change at a time from this process: creating the server and then a route is two
    /// requests.
    writes: Mutex<()>,
}

impl CaddyProxy {
    pub fn new(config: &ProxyConfig) -> Result<CaddyProxy, ProxyError> {
        let admin = base_url(
            "Caddy admin API",
            config.url.as_deref().unwrap_or(DEFAULT_ADMIN_URL),
        )?;
        let listen = if config.caddy_listen.is_empty() {
            vec![":80".to_string()]
        } else {
            config.caddy_listen.clone()
        };
        Ok(CaddyProxy {
            // Caddy restarts its admin endpoint on every config change and drops the
            // connections it had; a pooled one would fail the next request.
            http: http_client(false)?,
            admin,
            listen,
            writes: Mutex::new(()),
        })
    }
}

#[async_trait::async_trait]
impl Proxy for CaddyProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Caddy
    }

    async fn ensure_host(&self, spec: &HostSpec) -> Result<HostId, ProxyError> {
        let _write = self.writes.lock().await;
        through_admin_restarts(|| self.ensure_route(spec)).await
    }

    async fn ensure_pool(
        &self,
        domain: &Subdomain,
        upstreams: &[Upstream],
    ) -> Result<HostId, ProxyError> {
        if upstreams.is_empty() {
            return Err(ProxyError::Invalid(format!(
                "no upstream to route {domain} to"
            )));
        }
        let _write = self.writes.lock().await;
        through_admin_restarts(|| self.ensure_pool_route(domain, upstreams)).await
    }

    async fn delete_host(&self, id: &HostId) -> Result<(), ProxyError> {
        expect_kind(id, ProxyKind::Caddy)?;
        if !id.local().starts_with(ROUTE_PREFIX) {
            return Err(ProxyError::NotOwned { id: id.clone() });
        }
        let _write = self.writes.lock().await;
        through_admin_restarts(|| self.delete_route(id)).await
    }

    async fn list_hosts(&self) -> Result<Vec<OwnedHost>, ProxyError> {
        let servers = through_admin_restarts(|| self.servers()).await?;
        let routes = servers
            .get(SERVER_NAME)
            .and_then(|s| s.get("routes"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(routes.iter().filter_map(owned_host).collect())
    }

    async fn check(&self) -> Result<String, ProxyError> {
        let (status, config) = self.admin_request(Method::GET, "/config/", None).await?;
        if status != StatusCode::OK {
            return Err(ProxyError::Invalid(format!(
                "{} does not look like Caddy's admin API (GET /config/ answered {status}); set the proxy URL to Caddy's admin address, usually http://127.0.0.1:2019",
                self.admin
            )));
        }
        let servers = config
            .pointer("/apps/http/servers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (name, server) in &servers {
            if name == SERVER_NAME {
                continue;
            }
            let taken = server
                .get("listen")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find(|address| self.listen.iter().any(|ours| ours == address));
            if let Some(address) = taken {
                return Err(ProxyError::Invalid(format!(
                    "Caddy's server {name:?} already listens on {address}, where docker-watcher's server {SERVER_NAME:?} wants to listen; give docker-watcher another Caddy listen address or move that server"
                )));
            }
        }
        let listen = self.listen.join(", ");
        Ok(match servers.get(SERVER_NAME) {
            Some(server) => {
                let routes = server
                    .get("routes")
                    .and_then(Value::as_array)
                    .map_or(0, |r| r.iter().filter(|r| owned_host(r).is_some()).count());
                format!(
                    "Caddy's admin API at {} answers; docker-watcher's server listens on {listen} with {routes} routes of ours",
                    self.admin
                )
            }
            None => format!(
                "Caddy's admin API at {} answers; docker-watcher will add its server on {listen} at the first deploy",
                self.admin
            ),
        })
    }

    fn container_labels(&self, _domains: &[String], _port: u16) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

fn route_id(domain: &str) -> String {
    format!("{ROUTE_PREFIX}{domain}")
}

/// Our route for `spec`, written the way Caddy gives it back, so the two compare equal.
fn route(route_id: &str, spec: &HostSpec) -> Value {
    json!({
        "@id": route_id,
        "match": [{ "host": [spec.domain.as_str()] }],
        "handle": [{
            "handler": "reverse_proxy",
            "upstreams": [{ "dial": spec.upstream.address() }],
        }],
        "terminal": true,
    })
}

/// How long a request may go on trying other upstreams of a pool when one does not
/// answer (a swarm task that Swarm just stopped), and how long a failed one is skipped.
const POOL_TRY_NANOS: u64 = 5_000_000_000;
const POOL_TRY_INTERVAL_NANOS: u64 = 50_000_000;
const POOL_FAIL_NANOS: u64 = 2_000_000_000;

/// Our route for a pool of upstreams (a swarm service's tasks): round robin, and a request
/// that meets an upstream that does not answer is tried on another for a while.
fn pool_route(route_id: &str, domain: &str, upstreams: &[Upstream]) -> Value {
    let dials: Vec<Value> = upstreams
        .iter()
        .map(|u| json!({ "dial": u.address() }))
        .collect();
    json!({
        "@id": route_id,
        "match": [{ "host": [domain] }],
        "handle": [{
            "handler": "reverse_proxy",
            "upstreams": dials,
            "load_balancing": {
                "selection_policy": { "policy": "round_robin" },
                "try_duration": POOL_TRY_NANOS,
                "try_interval": POOL_TRY_INTERVAL_NANOS,
            },
            "health_checks": { "passive": { "fail_duration": POOL_FAIL_NANOS } },
        }],
        "terminal": true,
    })
}

/// A route of ours read back as a host; `None` for routes we do not own (or cannot read).
fn owned_host(route: &Value) -> Option<OwnedHost> {
    let id = route.get("@id")?.as_str()?;
    if !id.starts_with(ROUTE_PREFIX) {
        return None;
    }
    let domain = route.pointer("/match/0/host/0")?.as_str()?.to_string();
    let dial = route.pointer("/handle/0/upstreams/0/dial")?.as_str()?;
    let (host, port) = dial.rsplit_once(':')?;
    Some(OwnedHost {
        id: HostId::new(ProxyKind::Caddy, id),
        domain,
        upstream: Upstream {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: port.parse().ok()?,
        },
    })
}

/// Whether a top-level route we do not own, in any server, matches exactly `domain`.
fn foreign_route_serves(servers: &serde_json::Map<String, Value>, domain: &str) -> bool {
    servers
        .values()
        .filter_map(|server| server.get("routes").and_then(Value::as_array))
        .flatten()
        .filter(|route| {
            !route
                .get("@id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.starts_with(ROUTE_PREFIX))
        })
        .filter_map(|route| route.get("match").and_then(Value::as_array))
        .flatten()
        .filter_map(|matcher| matcher.get("host").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .any(|host| host.eq_ignore_ascii_case(domain))
}

fn caddy_message(body: &Value) -> String {
    match body.get("error").and_then(Value::as_str) {
        Some(message) => message.to_string(),
        None if body.is_null() => "no message".to_string(),
        None => body.to_string().chars().take(200).collect(),
    }
}

impl CaddyProxy {
    /// `apps.http.servers`, empty when Caddy has no HTTP app yet.
    /// One attempt of `ensure_host`: read what Caddy has, then change only what differs.
    async fn ensure_route(&self, spec: &HostSpec) -> Result<HostId, ProxyError> {
        let route_id = route_id(spec.domain.as_str());
        let wanted = route(&route_id, spec);
        self.ensure_route_as(spec.domain.as_str(), wanted, &spec.upstream.to_string())
            .await
    }

    /// One attempt of `ensure_pool`.
    async fn ensure_pool_route(
        &self,
        domain: &Subdomain,
        upstreams: &[Upstream],
    ) -> Result<HostId, ProxyError> {
        let route_id = route_id(domain.as_str());
        let wanted = pool_route(&route_id, domain.as_str(), upstreams);
        let shown: Vec<String> = upstreams.iter().map(Upstream::address).collect();
        self.ensure_route_as(domain.as_str(), wanted, &shown.join(", "))
            .await
    }

    /// Makes our route for `domain` read `wanted` (`shown` names its upstreams in the log).
    async fn ensure_route_as(
        &self,
        domain: &str,
        wanted: Value,
        shown: &str,
    ) -> Result<HostId, ProxyError> {
        let route_id = route_id(domain);
        let servers = self.servers().await?;
        if foreign_route_serves(&servers, domain) {
            return Err(ProxyError::DomainInUse {
                domain: domain.to_string(),
            });
        }
        if servers.get(SERVER_NAME).is_none_or(Value::is_null) {
            self.create_server().await?;
        }
        let path = format!("/id/{route_id}");
        let current = self.admin_request(Method::GET, &path, None).await?;
        match current.0 {
            StatusCode::OK if current.1 == wanted => {}
            StatusCode::OK => {
                self.expect_ok(Method::PATCH, &path, Some(&wanted)).await?;
                tracing::info!(route = %route_id, upstream = %shown, "updated Caddy route");
            }
            StatusCode::NOT_FOUND => {
                let routes = format!("/config/apps/http/servers/{SERVER_NAME}/routes");
                let (_, current) = self.admin_request(Method::GET, &routes, None).await?;
                match current.as_array() {
                    // First in the list: a catch-all route someone put in our server must
                    // not shadow an exact host match. (PUT on an index inserts there.)
                    Some(list) if !list.is_empty() => {
                        self.expect_ok(Method::PUT, &format!("{routes}/0"), Some(&wanted))
                            .await?;
                    }
                    // An empty list has no index 0; POST appends.
                    Some(_) => self.expect_ok(Method::POST, &routes, Some(&wanted)).await?,
                    None => {
                        self.expect_ok(Method::PUT, &routes, Some(&json!([wanted])))
                            .await?;
                    }
                }
                tracing::info!(route = %route_id, upstream = %shown, "added Caddy route");
            }
            status => {
                return Err(ProxyError::Unexpected(format!(
                    "GET {path} answered {status}: {}",
                    caddy_message(&current.1)
                )));
            }
        }
        Ok(HostId::new(ProxyKind::Caddy, &route_id))
    }

    /// One attempt of `delete_host`.
    async fn delete_route(&self, id: &HostId) -> Result<(), ProxyError> {
        let path = format!("/id/{}", id.local());
        let (status, body) = self.admin_request(Method::DELETE, &path, None).await?;
        match status {
            StatusCode::OK => {
                tracing::info!(route = %id.local(), "deleted Caddy route");
                Ok(())
            }
            StatusCode::NOT_FOUND => Ok(()),
            status => Err(ProxyError::Unexpected(format!(
                "DELETE {path} answered {status}: {}",
                caddy_message(&body)
            ))),
        }
    }

    async fn servers(&self) -> Result<serde_json::Map<String, Value>, ProxyError> {
        let (status, config) = self.admin_request(Method::GET, "/config/", None).await?;
        if status != StatusCode::OK {
            return Err(ProxyError::Unexpected(format!(
                "GET /config/ answered {status}: {}",
                caddy_message(&config)
            )));
        }
        Ok(config
            .pointer("/apps/http/servers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default())
    }

    async fn create_server(&self) -> Result<(), ProxyError> {
        let server = json!({
            "listen": self.listen,
            "routes": [],
            // Our hosts are plain HTTP behind whatever terminates TLS; Caddy must not try to
            // obtain certificates for them on its own.
            "automatic_https": { "disable": true },
        });
        let path = format!("/config/apps/http/servers/{SERVER_NAME}");
        // PUT creates the missing parents (apps, http, servers) and never replaces a server.
        let (status, body) = self
            .admin_request(Method::PUT, &path, Some(&server))
            .await?;
        let message = caddy_message(&body);
        if status == StatusCode::OK || message.contains("already exists") {
            tracing::info!(listen = ?self.listen, "added docker-watcher's Caddy server");
            return Ok(());
        }
        Err(ProxyError::Unexpected(format!(
            "Caddy refused docker-watcher's server on {}: {message}; if another server listens there, give docker-watcher another Caddy listen address",
            self.listen.join(", ")
        )))
    }

    async fn expect_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(), ProxyError> {
        let (status, answer) = self.admin_request(method.clone(), path, body).await?;
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(ProxyError::Unexpected(format!(
                "{method} {path} answered {status}: {}",
                caddy_message(&answer)
            )))
        }
    }

    async fn admin_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ProxyError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.admin))
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.admin, e))?;
        let status = response.status();
        let body = read_json(&self.admin, response).await?;
        tracing::debug!(%method, %path, %status, "Caddy admin API answered");
        Ok((status, body))
    }
}

/// Runs `attempt` again when Caddy could not be reached, a few times over about a second.
/// Caddy restarts its admin endpoint after every config change and resets connections
/// that reach it meanwhile (even a writer's own next request), so a reset is usually
/// gone a moment later. Every attempt re-reads what Caddy has before it writes, so
/// repeating one never applies a change twice.
async fn through_admin_restarts<T, F, Fut>(mut attempt: F) -> Result<T, ProxyError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProxyError>>,
{
    let mut pause = Duration::from_millis(50);
    for _ in 0..ADMIN_RETRIES {
        match attempt().await {
            Err(ProxyError::Unreachable { reason, .. }) => {
                tracing::debug!(%reason, "Caddy's admin API did not answer; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            done => return done,
        }
    }
    attempt().await
}

/// Attempts after the first that [`through_admin_restarts`] makes.
const ADMIN_RETRIES: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subdomain::Subdomain;

    #[test]
    fn routes_read_back_as_hosts() {
        let spec = HostSpec {
            domain: Subdomain::parse("a.example.com").unwrap(),
            upstream: Upstream {
                host: "::1".into(),
                port: 8080,
            },
        };
        let host = owned_host(&route(&route_id("a.example.com"), &spec)).unwrap();
        assert_eq!(host.id.as_str(), "caddy:dw-a.example.com");
        assert_eq!(host.domain, "a.example.com");
        assert_eq!(host.upstream, spec.upstream);
        assert!(
            owned_host(&json!({"@id": "theirs", "match": [{"host": ["a.example.com"]}]})).is_none()
        );
    }
}
