//! Registry authentication: credentials, the `WWW-Authenticate` challenge, and the Bearer
//! token dance (realm + service + scope → token), with tokens cached per scope until
//! they expire.
//!
//! Tokens and secrets live only in memory here; `Debug` redacts them.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::Deserialize;

use super::RegistryConfig;
use super::error::{RegistryError, origin};

/// The credentials a registry was configured with.
#[derive(Clone)]
pub(crate) enum Credentials {
    None,
    /// Username and password or token: Basic auth, and for token endpoints.
    Basic {
        username: String,
        secret: String,
    },
    /// A token without a username: enough for Gitea's packages API only.
    Token(String),
}

impl Credentials {
    pub(crate) fn from_config(config: &RegistryConfig) -> Result<Credentials, RegistryError> {
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        match (non_empty(&config.username), non_empty(&config.secret)) {
            (None, None) => Ok(Credentials::None),
            (Some(username), Some(secret)) => Ok(Credentials::Basic { username, secret }),
            (None, Some(secret)) if config.kind == super::RegistryKind::Gitea => {
                Ok(Credentials::Token(secret))
            }
            (None, Some(_)) => Err(RegistryError::config(
                "a password or token is set without a username: set the username too",
            )),
            (Some(username), None) => Err(RegistryError::config(format!(
                "user {username:?} has no password or token: set one, or clear the username"
            ))),
        }
    }

    /// The part the OCI API can use: a lone token is no Basic credential.
    pub(crate) fn basic(self) -> Option<BasicAuth> {
        match self {
            Credentials::Basic { username, secret } => Some(BasicAuth { username, secret }),
            Credentials::None | Credentials::Token(_) => None,
        }
    }

    /// The secret, for `Authorization: token …` (Gitea).
    pub(crate) fn secret(&self) -> Option<&str> {
        match self {
            Credentials::None => None,
            Credentials::Basic { secret, .. } | Credentials::Token(secret) => Some(secret),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Username and secret for Basic auth.
#[derive(Clone)]
pub(crate) struct BasicAuth {
    username: String,
    secret: String,
}

impl BasicAuth {
    pub(crate) fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        request.basic_auth(&self.username, Some(&self.secret))
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) scheme: Scheme,
    pub(crate) realm: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) scope: Option<String>,
    /// `insufficient_scope`, `invalid_token`: why a Bearer request was refused.
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Basic,
    Bearer,
}

impl Challenge {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Challenge> {
        Challenge::parse(headers.get(WWW_AUTHENTICATE)?.to_str().ok()?)
    }

    /// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. Quoted
    /// values may hold commas (`scope="repository:a:pull,push"`).
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else if scheme.eq_ignore_ascii_case("basic") {
            Scheme::Basic
        } else {
            return None;
        };
        let mut values: HashMap<String, String> = HashMap::new();
        let mut rest = params.trim();
        while let Some((key, after)) = rest.split_once('=') {
            let key = key
                .trim()
                .trim_start_matches(',')
                .trim()
                .to_ascii_lowercase();
            let after = after.trim_start();
            let (value, remaining) = match after.strip_prefix('"') {
                Some(quoted) => match quoted.split_once('"') {
                    Some((value, remaining)) => (value, remaining),
                    None => (quoted, ""),
                },
                None => after.split_once(',').unwrap_or((after, "")),
            };
            values.insert(key, value.to_string());
            rest = remaining.trim_start().trim_start_matches(',');
        }
        Some(Challenge {
            scheme,
            realm: values.remove("realm"),
            service: values.remove("service"),
            scope: values.remove("scope"),
            error: values.remove("error"),
        })
    }
}

/// Where Bearer tokens come from, as learnt from a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenEndpoint {
    pub(crate) realm: Url,
    pub(crate) service: Option<String>,
}

/// What one client has learnt about its registry's auth, shared by its requests.
#[derive(Default)]
pub(crate) struct AuthState {
    inner: Mutex<Learnt>,
    clock: Clock,
}

#[derive(Default)]
struct Learnt {
    /// `GET /v2/` was asked once to learn the challenge.
    probed: bool,
    /// The registry asked for Basic auth: send it up front from now on.
    basic: bool,
    /// The registry asked for Bearer tokens from here.
    token_endpoint: Option<TokenEndpoint>,
    /// Bearer tokens by scope (`repository:acme/shop:pull`, or `` for `/v2/`).
    tokens: HashMap<String, (String, Instant)>,
}

/// How the next request should authenticate.
pub(crate) enum Plan {
    Anonymous,
    Basic,
    Bearer(String),
    /// A token endpoint is known but holds no valid token for this scope: fetch one.
    FetchToken(TokenEndpoint),
}

impl AuthState {
    #[cfg(test)]
    pub(crate) fn with_clock(clock: Clock) -> AuthState {
        AuthState {
            inner: Mutex::default(),
            clock,
        }
    }

    pub(crate) fn plan(&self, scope: &str) -> Plan {
        let now = self.clock.now();
        let learnt = self.lock();
        if let Some((token, _)) = learnt.tokens.get(scope).filter(|(_, until)| now < *until) {
            Plan::Bearer(token.clone())
        } else if let Some(endpoint) = &learnt.token_endpoint {
            Plan::FetchToken(endpoint.clone())
        } else if learnt.basic {
            Plan::Basic
        } else {
            Plan::Anonymous
        }
    }

    /// Whether the registry ever asked for credentials (Basic or a token).
    pub(crate) fn asked_for_credentials(&self) -> bool {
        let learnt = self.lock();
        learnt.basic || learnt.token_endpoint.is_some()
    }

    pub(crate) fn probed(&self) -> bool {
        self.lock().probed
    }

    pub(crate) fn mark_probed(&self) {
        self.lock().probed = true;
    }

    pub(crate) fn learn_basic(&self) {
        self.lock().basic = true;
    }

    pub(crate) fn learn_token_endpoint(&self, endpoint: TokenEndpoint) {
        self.lock().token_endpoint = Some(endpoint);
    }

    pub(crate) fn store_token(&self, scope: &str, token: String, lifetime: Duration) {
        let until = self.clock.now() + lifetime;
        self.lock().tokens.insert(scope.to_string(), (token, until));
    }

    pub(crate) fn forget_token(&self, scope: &str) {
        self.lock().tokens.remove(scope);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Learnt> {
        // A panic while holding this lock leaves only a cache behind: keep using it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How long a token lives when the token endpoint does not say (the distribution spec's
/// default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Fetches a Bearer token for `scope` (empty: no scope, as for `/v2/`) and returns it with
/// its lifetime.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    endpoint: &TokenEndpoint,
    scope: &str,
    credentials: Option<&BasicAuth>,
) -> Result<(String, Duration), RegistryError> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = &endpoint.service {
        query.push(("service", service));
    }
    if !scope.is_empty() {
        query.push(("scope", scope));
    }
    let mut request = http.get(endpoint.realm.clone()).query(&query);
    if let Some(credentials) = credentials {
        request = credentials.apply(request);
    }
    let response = request
        .send()
        .await
        .map_err(|e| RegistryError::transport(&endpoint.realm, e))?;
    match response.status() {
        status if status.is_success() => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(RegistryError::Unauthorized {
                registry: origin(&endpoint.realm),
                with_credentials: credentials.is_some(),
            });
        }
        _ => {
            let what = "a token from the token endpoint";
            let with_credentials = credentials.is_some();
            return Err(RegistryError::from_response(
                &endpoint.realm,
                response,
                what,
                with_credentials,
            )
            .await);
        }
    }
    let body: TokenResponse = response.json().await.map_err(|e| {
        RegistryError::protocol(&endpoint.realm, format!("unreadable token response ({e})"))
    })?;
    let token = body
        .token
        .or(body.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            RegistryError::protocol(&endpoint.realm, "the token response has no token")
        })?;
    let lifetime = body
        .expires_in
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    Ok((token, lifetime))
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Time for token expiry. Tests move it forward instead of sleeping.
#[derive(Clone, Default)]
pub(crate) struct Clock {
    skipped_secs: Option<Arc<AtomicU64>>,
}

impl Clock {
    fn now(&self) -> Instant {
        let skipped = self
            .skipped_secs
            .as_ref()
            .map_or(0, |s| s.load(Ordering::SeqCst));
        Instant::now() + Duration::from_secs(skipped)
    }

    #[cfg(test)]
    pub(crate) fn manual() -> Clock {
        Clock {
            skipped_secs: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    #[cfg(test)]
    pub(crate) fn advance(&self, by: Duration) {
        if let Some(skipped) = &self.skipped_secs {
            skipped.fetch_add(by.as_secs(), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let bearer = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#,
        )
        .unwrap();
        assert_eq!(bearer.scheme, Scheme::Bearer);
        assert_eq!(
            bearer.realm.as_deref(),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(bearer.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            bearer.scope.as_deref(),
            Some("repository:library/nginx:pull,push")
        );
        let denied = Challenge::parse(
            r#"Bearer realm="https://ghcr.io/token", service="ghcr.io", error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(denied.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(denied.service.as_deref(), Some("ghcr.io"));
        let basic = Challenge::parse(r#"Basic realm="test-registry""#).unwrap();
        assert_eq!(
            (basic.scheme, basic.realm.as_deref()),
            (Scheme::Basic, Some("test-registry"))
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
    }

    #[test]
    fn tokens_are_reused_until_they_expire() {
        let clock = Clock::manual();
        let state = AuthState::with_clock(clock.clone());
        let scope = "repository:acme/shop:pull";
        assert!(matches!(state.plan(scope), Plan::Anonymous));
        state.learn_token_endpoint(TokenEndpoint {
            realm: Url::parse("http://127.0.0.1:1/token").unwrap(),
            service: None,
        });
        assert!(matches!(state.plan(scope), Plan::FetchToken(_)));
        state.store_token(scope, "t1".into(), Duration::from_secs(60));
        assert!(matches!(state.plan(scope), Plan::Bearer(t) if t == "t1"));
        assert!(matches!(
            state.plan("repository:other:pull"),
            Plan::FetchToken(_)
        ));
        clock.advance(Duration::from_secs(59));
        assert!(matches!(state.plan(scope), Plan::Bearer(_)));
        clock.advance(Duration::from_secs(1));
        assert!(matches!(state.plan(scope), Plan::FetchToken(_)));
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let basic = Credentials::Basic {
            username: "ci".into(),
            secret: "hunter2".into(),
        };
        let token = Credentials::Token("hunter2".into());
        for shown in [format!("{basic:?}"), format!("{token:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
