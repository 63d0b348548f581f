//! Nginx Proxy Manager, through its REST API as the v2.15.1 OpenAPI spec describes it.
//!
//! Login is `POST /api/tokens {identity, secret}`; the token is cached, refreshed with
//! `GET /api/tokens` shortly before it expires, and replaced by one new login (then the
//! request is sent once more) when NPM refuses it: 401, 400 `Token has expired` (an expired
//! token, also after clock skew), 404 (a missing token since 2.13) or 500 `Internal Error`
//! (a token whose signature no longer verifies: NPM restarted with new keys). A 404 or 500
//! may also be a missing host or a real failure: those are told apart by asking whether
//! the token still refreshes. The settings check goes through the same token and says when
//! it had to sign in again.
//!
//! Ownership: a host we create carries `"docker_watcher": true` in its `meta` object. The
//! spec lets clients write `meta` on create and update, NPM merges its own
//! `nginx_online`/`nginx_err` into it, and it is invisible in NPM's UI, so the mark neither
//! clutters the nginx config (as a comment in `advanced_config` would) nor gets lost when
//! NPM re-renders the host. Hosts without the mark are never changed or deleted. (Saving
//! one of our hosts by hand in NPM's UI may drop the mark; the host then counts as the
//! person's, and its domain as in use.)
//!
//! Writes send only fields the spec's proxy-host schema allows (it has
//! `additionalProperties: false`). A create answers 201 even when nginx refuses the new
//! config, so every write is read back and `meta.nginx_online: false` becomes
//! [`ProxyError::NginxRejected`] with NPM's `nginx_err`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use super::{
    HostId, HostSpec, OwnedHost, Proxy, ProxyConfig, ProxyError, ProxyKind, REQUEST_TIMEOUT,
    Upstream, base_url, expect_kind, http_client, read_json, transport_error,
};

/// The key in a proxy host's `meta` that marks it as ours.
pub const OWNER_MARK: &str = "docker_watcher";

/// The Nginx Proxy Manager adapter.
pub struct NpmProxy {
    http: reqwest::Client,
    /// `http://host:81` (no `/api`).
    base: String,
    identity: String,
    secret: Zeroizing<String>,
    certificate: Option<Certificate>,
    force_ssl: bool,
    token: Mutex<Option<Token>>,
    /// Why the token was last replaced by a new login (NPM's status and message), for the
    /// settings check; taken by the check that reports it.
    renewal: std::sync::Mutex<Option<String>>,
    /// One write at a time from this process, so two deploys never race to create the same
    /// domain.
    writes: Mutex<()>,
}

/// Which certificate our hosts get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Certificate {
    /// Ask NPM for a Let's Encrypt certificate (`certificate_id: "new"`).
    New,
    /// An existing certificate of NPM.
    Existing(u64),
}

impl Certificate {
    /// Reads the settings' value: empty or `None`, `new`, or a certificate id.
    pub fn parse(value: Option<&str>) -> Result<Option<Certificate>, ProxyError> {
        match value.map(str::trim) {
            None | Some("") | Some("0") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("new") => Ok(Some(Certificate::New)),
            Some(v) => v.parse().map(|id| Some(Certificate::Existing(id))).map_err(|_| {
                ProxyError::Invalid(format!(
                    "the proxy certificate {v:?} is neither `new` nor a certificate id; use `new` for Let's Encrypt or the number of an existing certificate"
                ))
            }),
        }
    }
}

impl NpmProxy {
    pub fn new(config: &ProxyConfig) -> Result<NpmProxy, ProxyError> {
        let url = config.url.as_deref().ok_or_else(|| {
            ProxyError::Invalid(
                "set the Nginx Proxy Manager URL (its admin address, like http://npm:81)".into(),
            )
        })?;
        let mut base = base_url("Nginx Proxy Manager", url)?;
        // People paste the API address too; both mean the same installation.
        if let Some(stripped) = base.strip_suffix("/api") {
            base = stripped.to_string();
        }
        let identity = config
            .username
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                ProxyError::Invalid("set the Nginx Proxy Manager user (its email address)".into())
            })?;
        let secret = config
            .secret
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ProxyError::Invalid("set the Nginx Proxy Manager password".into()))?;
        Ok(NpmProxy {
            http: http_client(true)?,
            base,
            identity,
            secret: Zeroizing::new(secret),
            certificate: Certificate::parse(config.certificate.as_deref())?,
            force_ssl: config.force_ssl,
            token: Mutex::new(None),
            renewal: std::sync::Mutex::new(None),
            writes: Mutex::new(()),
        })
    }
}

#[async_trait::async_trait]
impl Proxy for NpmProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Npm
    }

    async fn ensure_host(&self, spec: &HostSpec) -> Result<HostId, ProxyError> {
        let _write = self.writes.lock().await;
        let domain = spec.domain.as_str();
        let hosts = self.all_hosts().await?;
        let holders: Vec<&NpmHost> = hosts.iter().filter(|h| h.serves(domain)).collect();
        if holders.iter().any(|h| !h.ours) {
            return Err(ProxyError::DomainInUse {
                domain: domain.to_string(),
            });
        }
        if let Some(existing) = holders.first() {
            let id = HostId::new(ProxyKind::Npm, &existing.id.to_string());
            // A host nginx refused earlier is written again even when it looks right: NPM
            // re-renders and re-tests it, and what nginx lacked then (an upstream name that
            // did not resolve yet) may be there now.
            let offline = existing.nginx_online == Some(false);
            let Some(body) = self.update_body(existing, spec, offline) else {
                return Ok(id);
            };
            let path = format!("/nginx/proxy-hosts/{}", existing.id);
            let answer = self.request(Method::PUT, &path, Some(&body)).await?;
            if !answer.status.is_success() {
                return Err(write_error(&answer, "update", domain));
            }
            self.verify(existing.id, domain).await?;
            tracing::info!(host = %id, %domain, upstream = %spec.upstream, "updated Nginx Proxy Manager host");
            return Ok(id);
        }
        let answer = self
            .request(
                Method::POST,
                "/nginx/proxy-hosts",
                Some(&self.create_body(spec)),
            )
            .await?;
        if answer.status != StatusCode::CREATED && answer.status != StatusCode::OK {
            return Err(write_error(&answer, "create", domain));
        }
        let created = NpmHost::from_json(&answer.body).ok_or_else(|| {
            ProxyError::Unexpected(format!(
                "creating the proxy host for {domain} answered without a host id"
            ))
        })?;
        self.verify(created.id, domain).await?;
        let id = HostId::new(ProxyKind::Npm, &created.id.to_string());
        tracing::info!(host = %id, %domain, upstream = %spec.upstream, "created Nginx Proxy Manager host");
        Ok(id)
    }

    async fn delete_host(&self, id: &HostId) -> Result<(), ProxyError> {
        expect_kind(id, ProxyKind::Npm)?;
        let number: u64 = id.local().parse().map_err(|_| {
            ProxyError::Invalid(format!("{id} is not a Nginx Proxy Manager host id"))
        })?;
        let _write = self.writes.lock().await;
        let path = format!("/nginx/proxy-hosts/{number}");
        let answer = self.request(Method::GET, &path, None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        if !answer.status.is_success() {
            return Err(unexpected(&answer, "GET", &path));
        }
        let host = NpmHost::from_json(&answer.body)
            .ok_or_else(|| ProxyError::Unexpected(format!("GET {path} answered no host")))?;
        if !host.ours {
            return Err(ProxyError::NotOwned { id: id.clone() });
        }
        let answer = self.request(Method::DELETE, &path, None).await?;
        // NPM deletes softly; a host deleted meanwhile answers 404, which is what we wanted.
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            tracing::info!(host = %id, "deleted Nginx Proxy Manager host");
            Ok(())
        } else {
            Err(unexpected(&answer, "DELETE", &path))
        }
    }

    async fn list_hosts(&self) -> Result<Vec<OwnedHost>, ProxyError> {
        Ok(self
            .all_hosts()
            .await?
            .into_iter()
            .filter(|h| h.ours)
            .filter_map(|h| {
                Some(OwnedHost {
                    id: HostId::new(ProxyKind::Npm, &h.id.to_string()),
                    domain: h.domain_names.first()?.clone(),
                    upstream: Upstream {
                        host: h.forward_host,
                        port: h.forward_port,
                    },
                })
            })
            .collect())
    }

    async fn check(&self) -> Result<String, ProxyError> {
        let version = self.version().await?;
        // Through the token deploys use (signing in when there is none, or again when NPM
        // refuses it), so the check sees what the next deploy will see.
        let hosts = self.all_hosts().await?;
        let ours = hosts.iter().filter(|h| h.ours).count();
        if let Some(Certificate::Existing(number)) = self.certificate {
            let path = format!("/nginx/certificates/{number}");
            let answer = self.request(Method::GET, &path, None).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Err(ProxyError::Invalid(format!(
                    "Nginx Proxy Manager has no certificate {number}; set the proxy certificate to an existing certificate id, or to `new` for Let's Encrypt"
                )));
            }
            if !answer.status.is_success() {
                return Err(unexpected(&answer, "GET", &path));
            }
        }
        let renewed = self
            .renewal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|why| {
                format!(
                    " (NPM had refused the token in use with {why}; docker-watcher signed in again)"
                )
            })
            .unwrap_or_default();
        Ok(format!(
            "Nginx Proxy Manager {version} at {}: signed in as {}{renewed}; {} proxy hosts, {ours} of them made by docker-watcher",
            self.base,
            self.identity,
            hosts.len()
        ))
    }

    fn container_labels(&self, _domains: &[String], _port: u16) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// Refresh a token when less than this is left of its life.
const REFRESH_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// A create with `certificate_id: "new"` waits for Let's Encrypt.
const CERTIFICATE_TIMEOUT: Duration = Duration::from_secs(180);

struct Token {
    value: Zeroizing<String>,
    /// `None` when NPM's `expires` could not be read: then only a 401/404 renews it.
    expires: Option<DateTime<Utc>>,
}

impl Token {
    fn expiring(&self) -> bool {
        self.expires
            .is_some_and(|expires| expires - Utc::now() < REFRESH_MARGIN)
    }
}

struct Answer {
    status: StatusCode,
    body: Value,
}

/// What an answer says about the token it was sent with.
#[derive(Debug, PartialEq, Eq)]
enum TokenVerdict {
    Accepted,
    /// 401, or 400 `Token has expired` (NPM's answer to an expired token on every route).
    Dead,
    /// 404 (a missing token since 2.13, or a missing host) or 500 (a token whose signature
    /// no longer verifies after NPM restarted with new keys, or a real failure).
    Suspect,
}

fn token_verdict(answer: &Answer) -> TokenVerdict {
    match answer.status {
        StatusCode::UNAUTHORIZED => TokenVerdict::Dead,
        StatusCode::BAD_REQUEST
            if answer
                .message()
                .to_ascii_lowercase()
                .contains("token has expired") =>
        {
            TokenVerdict::Dead
        }
        StatusCode::NOT_FOUND | StatusCode::INTERNAL_SERVER_ERROR => TokenVerdict::Suspect,
        _ => TokenVerdict::Accepted,
    }
}

impl Answer {
    /// NPM's `{"error":{"message"}}`, or the body as text.
    fn message(&self) -> String {
        match self.body.pointer("/error/message").and_then(Value::as_str) {
            Some(message) => message.to_string(),
            None if self.body.is_null() => "no message".to_string(),
            None => {
                let text = self.body.to_string();
                text.chars().take(200).collect()
            }
        }
    }
}

/// The parts of NPM's proxy-host object that we read.
struct NpmHost {
    id: u64,
    domain_names: Vec<String>,
    forward_scheme: String,
    forward_host: String,
    forward_port: u16,
    certificate_id: u64,
    ssl_forced: bool,
    allow_websocket_upgrade: bool,
    block_exploits: bool,
    meta: Map<String, Value>,
    ours: bool,
    nginx_online: Option<bool>,
    nginx_err: String,
}

impl NpmHost {
    /// Reads a host leniently: NPM on SQLite has been seen to send 0/1 for booleans and
    /// `null` for empty fields.
    fn from_json(value: &Value) -> Option<NpmHost> {
        let meta = value
            .get("meta")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Some(NpmHost {
            id: value.get("id")?.as_u64()?,
            domain_names: value
                .get("domain_names")
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            forward_scheme: text(value, "forward_scheme"),
            forward_host: text(value, "forward_host"),
            forward_port: value
                .get("forward_port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            certificate_id: value
                .get("certificate_id")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            ssl_forced: flag(value.get("ssl_forced")),
            allow_websocket_upgrade: flag(value.get("allow_websocket_upgrade")),
            block_exploits: flag(value.get("block_exploits")),
            ours: meta.get(OWNER_MARK).is_some_and(|v| flag(Some(v))),
            nginx_online: meta.get("nginx_online").and_then(|v| match v {
                Value::Null => None,
                other => Some(flag(Some(other))),
            }),
            nginx_err: meta
                .get("nginx_err")
                .and_then(Value::as_str)
                .unwrap_or("nginx gave no reason")
                .to_string(),
            meta,
        })
    }

    fn serves(&self, domain: &str) -> bool {
        self.domain_names
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

impl NpmProxy {
    fn create_body(&self, spec: &HostSpec) -> Value {
        let mut body = json!({
            "domain_names": [spec.domain.as_str()],
            "forward_scheme": "http",
            "forward_host": spec.upstream.host,
            "forward_port": spec.upstream.port,
            "allow_websocket_upgrade": true,
            "block_exploits": true,
            "meta": { OWNER_MARK: true },
        });
        if let Some(certificate) = self.certificate {
            body["certificate_id"] = certificate_value(certificate);
            body["ssl_forced"] = json!(self.force_ssl);
        }
        body
    }

    /// The partial update that brings `host` to `spec`, or `None` when it is there already
    /// (and a rewrite is not `forced`).
    fn update_body(&self, host: &NpmHost, spec: &HostSpec, forced: bool) -> Option<Value> {
        let certificate_missing = match self.certificate {
            None => false,
            // Any certificate will do once NPM made one; asking again would order another.
            Some(Certificate::New) => host.certificate_id == 0,
            Some(Certificate::Existing(number)) => host.certificate_id != number,
        };
        let differs = host.forward_scheme != "http"
            || host.forward_host != spec.upstream.host
            || host.forward_port != spec.upstream.port
            || host.domain_names != [spec.domain.as_str()]
            || !host.allow_websocket_upgrade
            || !host.block_exploits
            || certificate_missing
            || (self.certificate.is_some() && host.ssl_forced != self.force_ssl);
        if !differs && !forced {
            return None;
        }
        // `meta` is replaced as a whole on update: keep what NPM keeps there, minus its own
        // status (recomputed on every write), plus our mark.
        let mut meta = host.meta.clone();
        meta.remove("nginx_online");
        meta.remove("nginx_err");
        meta.insert(OWNER_MARK.to_string(), json!(true));
        let mut body = json!({
            "domain_names": [spec.domain.as_str()],
            "forward_scheme": "http",
            "forward_host": spec.upstream.host,
            "forward_port": spec.upstream.port,
            "allow_websocket_upgrade": true,
            "block_exploits": true,
            "meta": meta,
        });
        if let Some(certificate) = self.certificate {
            if certificate_missing {
                body["certificate_id"] = certificate_value(certificate);
            }
            body["ssl_forced"] = json!(self.force_ssl);
        }
        Some(body)
    }

    /// Reads a host back after a write and fails when nginx refused its config.
    async fn verify(&self, number: u64, domain: &str) -> Result<(), ProxyError> {
        let path = format!("/nginx/proxy-hosts/{number}");
        let answer = self.request(Method::GET, &path, None).await?;
        if !answer.status.is_success() {
            return Err(unexpected(&answer, "GET", &path));
        }
        let host = NpmHost::from_json(&answer.body)
            .ok_or_else(|| ProxyError::Unexpected(format!("GET {path} answered no host")))?;
        if host.nginx_online == Some(false) {
            return Err(ProxyError::NginxRejected {
                id: HostId::new(ProxyKind::Npm, &number.to_string()),
                domain: domain.to_string(),
                nginx_err: host.nginx_err,
            });
        }
        Ok(())
    }

    async fn all_hosts(&self) -> Result<Vec<NpmHost>, ProxyError> {
        let answer = self
            .request(Method::GET, "/nginx/proxy-hosts", None)
            .await?;
        if !answer.status.is_success() {
            return Err(unexpected(&answer, "GET", "/nginx/proxy-hosts"));
        }
        let list = answer.body.as_array().ok_or_else(|| {
            ProxyError::Unexpected("the list of proxy hosts is not a JSON array".into())
        })?;
        Ok(list.iter().filter_map(NpmHost::from_json).collect())
    }

    /// `GET /api/` (no login): NPM's version, and proof the URL points at NPM.
    async fn version(&self) -> Result<String, ProxyError> {
        let answer = self.send(Method::GET, "/", None, None).await?;
        let version = answer.body.get("version").and_then(|v| {
            Some(format!(
                "{}.{}.{}",
                v.get("major")?.as_u64()?,
                v.get("minor")?.as_u64()?,
                v.get("revision")?.as_u64()?
            ))
        });
        match version {
            Some(version) if answer.status.is_success() => Ok(version),
            _ => Err(ProxyError::Invalid(format!(
                "{} does not look like Nginx Proxy Manager (GET /api/ answered {}); set the proxy URL to NPM's admin address, usually on port 81",
                self.base, answer.status
            ))),
        }
    }

    /// An authenticated API request, with one new login when the token turns out dead.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ProxyError> {
        let token = self.token().await?;
        let answer = self.send(method.clone(), path, body, Some(&token)).await?;
        match token_verdict(&answer) {
            TokenVerdict::Accepted => return Ok(answer),
            TokenVerdict::Dead => {}
            // A 404 may be a missing host and a 500 a real failure, or either a dead token:
            // if the token still refreshes, the answer stands.
            TokenVerdict::Suspect => {
                if self.refresh_with(&token).await.is_ok() {
                    return Ok(answer);
                }
            }
        }
        tracing::info!(%path, status = %answer.status, reason = %answer.message(), "Nginx Proxy Manager no longer accepts our token; signing in again");
        let fresh = self.login().await?;
        let value = fresh.value.clone();
        *self.token.lock().await = Some(fresh);
        *self.renewal.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(format!("{} {}", answer.status.as_u16(), answer.message()));
        self.send(method, path, body, Some(&value)).await
    }

    /// The cached token, refreshed when close to expiry, or a new login.
    async fn token(&self) -> Result<Zeroizing<String>, ProxyError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if !token.expiring() {
                return Ok(token.value.clone());
            }
            match self.fetch_refresh(&token.value).await {
                Ok(fresh) => {
                    let value = fresh.value.clone();
                    *cached = Some(fresh);
                    return Ok(value);
                }
                Err(e @ ProxyError::Unreachable { .. }) => return Err(e),
                // A token too old to refresh: log in again below.
                Err(_) => {}
            }
        }
        let fresh = self.login().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Refreshes with `token` and stores the new one; `Err` when NPM no longer accepts it.
    async fn refresh_with(&self, token: &str) -> Result<(), ProxyError> {
        let fresh = self.fetch_refresh(token).await?;
        *self.token.lock().await = Some(fresh);
        Ok(())
    }

    async fn fetch_refresh(&self, token: &str) -> Result<Token, ProxyError> {
        let answer = self.send(Method::GET, "/tokens", None, Some(token)).await?;
        if !answer.status.is_success() {
            return Err(ProxyError::Unauthorized {
                detail: format!("token refresh answered {}", answer.status),
            });
        }
        parse_token(&answer.body)
    }

    async fn login(&self) -> Result<Token, ProxyError> {
        let body = json!({ "identity": self.identity, "secret": self.secret.as_str() });
        let answer = self
            .send(Method::POST, "/tokens", Some(&body), None)
            .await?;
        match answer.status {
            s if s.is_success() => {
                if answer.body.get("requires_2fa").is_some() {
                    return Err(ProxyError::Invalid(format!(
                        "the Nginx Proxy Manager user {} has two-factor authentication on; give docker-watcher a user without it",
                        self.identity
                    )));
                }
                tracing::debug!(identity = %self.identity, "logged in to Nginx Proxy Manager");
                parse_token(&answer.body)
            }
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(ProxyError::Unauthorized {
                    detail: format!("Nginx Proxy Manager says: {}", answer.message()),
                })
            }
            StatusCode::NOT_FOUND => Err(ProxyError::Invalid(format!(
                "{} has no Nginx Proxy Manager login (POST /api/tokens answered 404); set the proxy URL to NPM's admin address, usually on port 81",
                self.base
            ))),
            _ => Err(unexpected(&answer, "POST", "/tokens")),
        }
    }

    /// One HTTP exchange with `/api{path}`; never logs or returns the body it sent.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Answer, ProxyError> {
        let url = format!("{}/api{path}", self.base);
        let creates_certificate = body
            .and_then(|b| b.get("certificate_id"))
            .is_some_and(|c| c == "new");
        let mut request = self
            .http
            .request(method.clone(), &url)
            .timeout(if creates_certificate {
                CERTIFICATE_TIMEOUT
            } else {
                REQUEST_TIMEOUT
            })
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.base, e))?;
        let status = response.status();
        let body = read_json(&self.base, response).await?;
        tracing::debug!(%method, %path, %status, "Nginx Proxy Manager answered");
        Ok(Answer { status, body })
    }
}

fn parse_token(body: &Value) -> Result<Token, ProxyError> {
    let value = body
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| ProxyError::Unexpected("the login answer has no token".into()))?;
    let expires = body
        .get("expires")
        .and_then(Value::as_str)
        .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
        .map(|e| e.with_timezone(&Utc));
    Ok(Token {
        value: Zeroizing::new(value.to_string()),
        expires,
    })
}

fn certificate_value(certificate: Certificate) -> Value {
    match certificate {
        Certificate::New => json!("new"),
        Certificate::Existing(number) => json!(number),
    }
}

fn write_error(answer: &Answer, action: &str, domain: &str) -> ProxyError {
    let message = answer.message();
    if answer.status == StatusCode::BAD_REQUEST && message.contains("is already in use") {
        return ProxyError::DomainInUse {
            domain: domain.to_string(),
        };
    }
    if answer.status == StatusCode::BAD_REQUEST {
        return ProxyError::Invalid(format!(
            "Nginx Proxy Manager refused to {action} the proxy host for {domain}: {message}"
        ));
    }
    ProxyError::Unexpected(format!(
        "{action} of the proxy host for {domain} answered {}: {message}",
        answer.status
    ))
}

fn unexpected(answer: &Answer, method: &str, path: &str) -> ProxyError {
    ProxyError::Unexpected(format!(
        "{method} /api{path} answered {}: {}",
        answer.status,
        answer.message()
    ))
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_settings_are_read() {
        assert_eq!(Certificate::parse(None).unwrap(), None);
        assert_eq!(Certificate::parse(Some("")).unwrap(), None);
        assert_eq!(
            Certificate::parse(Some("new")).unwrap(),
            Some(Certificate::New)
        );
        assert_eq!(
            Certificate::parse(Some("7")).unwrap(),
            Some(Certificate::Existing(7))
        );
        assert!(Certificate::parse(Some("letsencrypt")).is_err());
    }

    #[test]
    fn hosts_are_read_leniently() {
        let host = NpmHost::from_json(&json!({
            "id": 4, "domain_names": ["a.example.com"], "forward_scheme": "http",
            "forward_host": "app", "forward_port": 8080, "certificate_id": 0,
            "ssl_forced": 0, "allow_websocket_upgrade": 1, "block_exploits": true,
            "meta": {"docker_watcher": true, "nginx_online": false, "nginx_err": "bad"},
            "locations": null
        }))
        .unwrap();
        assert!(host.ours && host.allow_websocket_upgrade && !host.ssl_forced);
        assert_eq!(host.nginx_online, Some(false));
        assert_eq!(host.nginx_err, "bad");
        let foreign = NpmHost::from_json(&json!({"id": 5, "meta": null})).unwrap();
        assert!(!foreign.ours);
    }
}
