//! Who may use the API: the admin account (argon2id password hash), sessions for the UI
//! (an HttpOnly cookie, with a CSRF token for state-changing requests) and bearer tokens
//! for scripts (the session id from a login, or a named API token).
//!
//! [`require_auth`] guards every route except the few [`super::router`] lists as public,
//! and lets a request through only when the caller's scope covers the route's (from
//! [`super::scopes::ROUTE_SCOPES`]): sessions are `admin`, an API token has its own scope.
//! Only hashes are stored: argon2id for the password, SHA-256 for session ids and tokens
//! (long random strings need no slow hash). A token is shown once, when it is made.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, FieldErrors};
use super::extract::{ApiJson, Path};
use super::login_audit::{FailedLogins, unlisted_note};
use super::{AppState, validate};
use crate::audit::{self, Actor, Target};
use crate::store::{ApiToken, Store, StoreError, TokenScope, User};

/// The account made on first start.
pub const ADMIN_USERNAME: &str = "admin";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "dw_session";
/// Header that must carry the session's CSRF token on state-changing cookie requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Logins allowed per client address in a burst; one more comes back every
/// `LOGIN_REFILL`, so 5 per minute on average.
pub const LOGIN_BURST: u32 = 5;
pub const LOGIN_REFILL: Duration = Duration::from_secs(12);
/// Password guesses allowed per username (logins and the current password on a password
/// change), whatever the address: 10 per minute on average, so many addresses do not
/// multiply the guessing rate.
pub const USERNAME_BURST: u32 = 10;
pub const USERNAME_REFILL: Duration = Duration::from_secs(6);
/// Password hashes computed at once. Each argon2id hash takes ~19 MiB and a core for a
/// moment; unbounded, a login flood took the daemon to gigabytes, so hashing is bounded
/// and the rest wait `HASH_WAIT`, then get 429. The hashes run on that many threads of
/// their own (not tokio's blocking pool, whose many threads each keep a glibc arena with
/// the freed 19 MiB in it), so memory stays near the idle figure after a flood.
pub const HASH_PERMITS: usize = 2;
pub const HASH_WAIT: Duration = Duration::from_secs(1);

/// Who made a request, put in the request's extensions by [`require_auth`].
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: i64,
    pub via: AuthVia,
    /// What the caller may do: `admin` for sessions, the token's scope for API tokens.
    pub scope: TokenScope,
}

#[derive(Clone, Debug)]
pub enum AuthVia {
    /// The UI's cookie; state-changing requests carried the CSRF token.
    Cookie {
        session_hash: String,
        csrf_token: String,
    },
    /// A session id sent as a bearer token (what login returns for scripts).
    BearerSession { session_hash: String },
    /// A named API token (its hash names it for the audit log).
    ApiToken { token_hash: String },
}

impl Principal {
    /// Scripts (bearer) deploy as `api`, people in the UI as `manual`.
    pub fn trigger(&self) -> crate::store::Trigger {
        match self.via {
            AuthVia::Cookie { .. } => crate::store::Trigger::Manual,
            _ => crate::store::Trigger::Api,
        }
    }

    fn session_hash(&self) -> Option<&str> {
        match &self.via {
            AuthVia::Cookie { session_hash, .. } | AuthVia::BearerSession { session_hash } => {
                Some(session_hash)
            }
            AuthVia::ApiToken { .. } => None,
        }
    }
}

/// Creates the admin account when there is no user yet. The password is `given`, or a
/// generated one that is returned so the caller shows it once.
pub fn ensure_admin(store: &Store, given: Option<&str>) -> anyhow::Result<Option<String>> {
    if store.count_users()? > 0 {
        return Ok(None);
    }
    let (password, generated) = match given {
        Some(password) => {
            validate::password(password).map_err(|e| {
                anyhow::anyhow!("DW_ADMIN_PASSWORD {e}; choose a longer admin password")
            })?;
            (password.to_string(), false)
        }
        None => (random_string(18), true),
    };
    store.create_user(ADMIN_USERNAME, &hash_password(&password)?)?;
    Ok(generated.then_some(password))
}

/// An argon2id hash in PHC form, with a fresh salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches `hash`; a malformed hash matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Middleware: lets a request through only with a valid session cookie (and, for a
/// state-changing method, the matching CSRF header) or bearer token.
pub async fn require_auth(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = authenticate(&state.store, request.method(), request.headers())?;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let needed = super::scopes::needed(request.method(), route);
    if !principal.scope.allows(needed) {
        return Err(ApiError::Forbidden(format!(
            "this needs a token with scope `{needed}` (this token's scope is `{}`); an admin can make one in Settings → API tokens",
            principal.scope
        )));
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// What stands between password guessing and the password hash: token buckets per
/// client address and per username, and a bound on hashes computed at once.
pub struct LoginLimiter {
    by_address: Buckets<IpAddr>,
    by_username: Buckets<String>,
    hashing: tokio::sync::Semaphore,
    /// Wrong passwords per user, for the audit log (at most one entry a window).
    failed: FailedLogins,
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        LoginLimiter {
            by_address: Buckets::new(LOGIN_BURST, LOGIN_REFILL),
            by_username: Buckets::new(USERNAME_BURST, USERNAME_REFILL),
            hashing: tokio::sync::Semaphore::new(HASH_PERMITS),
            failed: FailedLogins::default(),
        }
    }
}

type HashJob = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue, started on first use and shared by every daemon in the
/// process; the semaphore in front keeps at most `HASH_PERMITS` jobs in it.
fn hash_queue() -> &'static Mutex<std::sync::mpsc::Sender<HashJob>> {
    static QUEUE: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<HashJob>>> =
        std::sync::OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<HashJob>();
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        for i in 0..HASH_PERMITS {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("dw-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => {
                                job();
                                release_freed_memory();
                            }
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a password hashing thread: {e}");
            }
        }
        Mutex::new(sender)
    })
}

/// Hands memory freed by a hash back to the system. Each argon2id hash allocates its
/// memory cost (~19 MiB) and frees it, but glibc keeps freed memory of that size in its
/// arenas for reuse, so a burst of logins would leave the daemon tens of MiB larger for
/// good. Trimming after each hash (a few ms, on the hashing thread, never on the async
/// workers) brings it back to its idle figure.
fn release_freed_memory() {
    crate::memory::release_freed();
}

impl LoginLimiter {
    /// Takes one attempt for `ip` and `username`, or says how long to wait for the next.
    /// The address is asked first, so a limited address spends nothing of the name's.
    pub fn attempt(&self, ip: IpAddr, username: &str) -> Result<(), Duration> {
        self.by_address.take(ip)?;
        self.by_username.take(username_key(username))
    }

    /// Takes one password guess for `username` (the current password on a change).
    pub fn guess(&self, username: &str) -> Result<(), Duration> {
        self.by_username.take(username_key(username))
    }

    /// Runs `work` (a password hash) on a hashing thread once one of the few hashing
    /// slots is free; 429 when none frees up within [`HASH_WAIT`].
    pub async fn hash<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = tokio::time::timeout(HASH_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| ApiError::TooManyRequests(Duration::from_secs(1)))?
            .map_err(|e| ApiError::Internal(e.into()))?;
        let (answer, result) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            let _ = answer.send(work());
        });
        hash_queue()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("the hashing threads are gone")))?;
        result
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("a password hash failed")))
    }
}

/// Usernames as limiter keys: bounded in length, so a huge name costs no memory.
fn username_key(username: &str) -> String {
    username.chars().take(64).collect()
}

/// Token buckets by key: `burst` attempts, one more back every `refill`.
struct Buckets<K> {
    burst: f64,
    refill: Duration,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Keys kept at most; beyond it the full ones are forgotten, then the oldest.
const MAX_BUCKETS: usize = 10_000;

impl<K: std::hash::Hash + Eq> Buckets<K> {
    fn new(burst: u32, refill: Duration) -> Buckets<K> {
        Buckets {
            burst: f64::from(burst),
            refill,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, key: K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (burst, refill) = (self.burst, self.refill.as_secs_f64());
        if buckets.len() > MAX_BUCKETS {
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() / refill < burst);
        }
        if buckets.len() > MAX_BUCKETS {
            // Still full (a flood of distinct keys): keep the most recent half.
            let mut times: Vec<Instant> = buckets.values().map(|b| b.at).collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            buckets.retain(|_, b| b.at >= cut);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() / refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) * refill))
        }
    }
}

// ----- request and response shapes -----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    /// Send as `Authorization: Bearer <token>` from scripts; the UI uses the cookie.
    pub token: String,
    /// Send as `X-CSRF-Token` on state-changing requests that use the cookie.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct MeAnswer {
    pub user: UserView,
    /// `cookie`, `session` (a session id as bearer token) or `token` (an API token).
    pub auth: String,
    /// The CSRF token of the cookie session; absent for bearer requests, which need none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// What the caller may do: `read`, `deploy` or `admin` (always `admin` for a session).
    pub scope: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    pub name: String,
    /// `read` (GET only), `deploy` (read, plus deploy a tag, redeploy, roll back, poll
    /// now) or `admin` (everything). Default `deploy`; never wider than the caller's.
    pub scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// `read`, `deploy` or `admin`.
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    /// The token itself, shown this once: store it now.
    pub token: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> UserView {
        UserView {
            id: user.id,
            username: user.username.clone(),
            created_at: user.created_at,
        }
    }
}

impl From<ApiToken> for TokenView {
    fn from(token: ApiToken) -> TokenView {
        TokenView {
            id: token.id,
            name: token.name,
            scope: token.scope.as_str().into(),
            created_at: token.created_at,
            last_used_at: token.last_used_at,
        }
    }
}

// ----- handlers -----

/// Sign in: sets the session cookie and returns a bearer token for scripts.
#[utoipa::path(post, path = "/auth/login", tag = "auth", security(()),
    request_body = LoginBody,
    responses(
        (status = 200, body = LoginAnswer, description = "signed in; the session cookie is set too"),
        (status = 401, body = ErrorBody, description = "wrong username or password"),
        (status = 429, body = ErrorBody, description = "too many attempts from this address or for this username, or too many logins at once; see Retry-After"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let ip = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    if let Err(wait) = state.login_limiter.attempt(ip, &body.username) {
        tracing::warn!(%ip, username = %body.username, "login refused: too many attempts");
        return Err(ApiError::TooManyRequests(wait));
    }
    let user = match state.store.get_user_by_name(&body.username) {
        Ok(user) => Some(user),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    // An unknown name costs the same hash as a known one, so timing tells nothing.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = body.password;
    let matches = state
        .login_limiter
        .hash(move || match hash {
            Some(hash) => verify_password(&hash, &password),
            None => verify_password(dummy_hash(), &password),
        })
        .await?;
    let user = match user {
        Some(user) if matches => user,
        known => {
            tracing::warn!(%ip, username = %body.username, "failed login");
            // Only a known user's failures are audited: a name nobody has is the caller's
            // own text, and an anonymous caller does not get to write it into the log.
            // And only one a window per user (`login_audit`), the rest counted.
            if let Some(user) = known
                && let Some(unlisted) = state.login_limiter.failed.failed(user.id, Instant::now())
            {
                audit::record(
                    &state.store,
                    &Actor::anonymous(ip),
                    "auth.login_failed",
                    user_target(&user),
                    format!(
                        "wrong password for {} from {ip}{}",
                        user.username,
                        unlisted_note(unlisted)
                    ),
                );
            }
            return Err(ApiError::LoginFailed);
        }
    };
    let token = random_string(32);
    let csrf_token = random_string(24);
    let expires_at =
        Utc::now() + chrono::Duration::from_std(SESSION_TTL).unwrap_or(chrono::Duration::days(7));
    state
        .store
        .create_session(&sha256_hex(&token), user.id, &csrf_token, expires_at)?;
    tracing::info!(%ip, username = %user.username, "signed in");
    audit::record(
        &state.store,
        &Actor::user(&user.username),
        "auth.login",
        user_target(&user),
        format!(
            "signed in from {ip}{}",
            unlisted_note(state.login_limiter.failed.signed_in(user.id))
        ),
    );
    let cookie = session_cookie(&token, SESSION_TTL.as_secs(), state.web.secure_cookies);
    let mut response = Json(LoginAnswer {
        token,
        csrf_token,
        expires_at,
        user: UserView::from(&user),
    })
    .into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// A user as the audit log names what was done to it.
fn user_target(user: &User) -> Target {
    Target {
        kind: "user",
        id: Some(user.id),
        name: Some(user.username.clone()),
        project_id: None,
    }
}

/// Sign out: ends the session (cookie or bearer session id) and clears the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "signed out")))]
pub async fn logout(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Response, ApiError> {
    if let Some(hash) = principal.session_hash() {
        state.store.delete_session(hash)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, state.web.secure_cookies),
    );
    Ok(response)
}

/// Who is signed in, and the CSRF token for cookie requests.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses((status = 200, body = MeAnswer)))]
pub async fn me(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<MeAnswer>, ApiError> {
    let user = state.store.get_user(principal.user_id)?;
    let (auth, csrf_token) = match principal.via.clone() {
        AuthVia::Cookie { csrf_token, .. } => ("cookie", Some(csrf_token)),
        AuthVia::BearerSession { .. } => ("session", None),
        AuthVia::ApiToken { .. } => ("token", None),
    };
    Ok(Json(MeAnswer {
        user: UserView::from(&user),
        auth: auth.into(),
        csrf_token,
        scope: principal.scope.as_str().into(),
    }))
}

/// Change the password; every session ends (API tokens stay valid).
#[utoipa::path(put, path = "/auth/password", tag = "auth",
    request_body = PasswordBody,
    responses(
        (status = 204, description = "changed; sign in again"),
        (status = 422, body = ErrorBody, description = "wrong current password or a weak new one"),
        (status = 429, body = ErrorBody, description = "too many guesses of the current password; see Retry-After"),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Response, ApiError> {
    let user = state.store.get_user(principal.user_id)?;
    // A stolen session must not become a fast way to guess the password.
    state
        .login_limiter
        .guess(&user.username)
        .map_err(ApiError::TooManyRequests)?;
    let mut errors = FieldErrors::new();
    errors.check("new_password", validate::password(&body.new_password));
    let hash = user.password_hash.clone();
    let current = body.current_password;
    let matches = state
        .login_limiter
        .hash(move || verify_password(&hash, &current))
        .await?;
    if !matches {
        errors.add("current_password", "is wrong");
    }
    errors.into_result()?;
    let new_password = body.new_password;
    let hash = state
        .login_limiter
        .hash(move || hash_password(&new_password))
        .await?
        .map_err(ApiError::Internal)?;
    state.store.set_user_password(user.id, &hash)?;
    tracing::info!(username = %user.username, "password changed; sessions ended");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, state.web.secure_cookies),
    );
    Ok(response)
}

/// The API tokens of the signed-in user (never their values).
#[utoipa::path(get, path = "/auth/tokens", tag = "auth",
    responses((status = 200, body = Vec<TokenView>)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_api_tokens(principal.user_id)?
            .into_iter()
            .map(TokenView::from)
            .collect(),
    ))
}

/// Make a named API token; its value is in this answer only.
#[utoipa::path(post, path = "/auth/tokens", tag = "auth",
    request_body = NewTokenBody,
    responses(
        (status = 201, body = CreatedToken),
        (status = 403, body = ErrorBody, description = "the scope is wider than the caller's"),
        (status = 409, body = ErrorBody, description = "a token with this name exists"),
        (status = 422, body = ErrorBody),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let mut errors = FieldErrors::new();
    errors.check("name", validate::dns_name(&body.name));
    let scope = match body.scope.as_deref() {
        None => Some(TokenScope::Deploy),
        Some(scope) => errors.check(
            "scope",
            scope
                .parse::<TokenScope>()
                .map_err(|_| "must be read, deploy or admin"),
        ),
    };
    errors.into_result()?;
    let scope = scope.unwrap_or(TokenScope::Deploy);
    if !principal.scope.allows(scope) {
        return Err(ApiError::Forbidden(format!(
            "a `{}` caller cannot make a `{scope}` token: a token is never wider than its maker",
            principal.scope
        )));
    }
    let token = format!("dw_{}", random_string(32));
    let stored =
        state
            .store
            .create_api_token(principal.user_id, &body.name, scope, &sha256_hex(&token))?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: stored.id,
            name: stored.name,
            scope: stored.scope.as_str().into(),
            created_at: stored.created_at,
            token,
        }),
    ))
}

/// Revoke an API token: it stops working at once.
#[utoipa::path(delete, path = "/auth/tokens/{id}", tag = "auth",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_api_token(principal.user_id, id)?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- helpers -----

fn authenticate(
    store: &Store,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hash = sha256_hex(token);
        if let Some((user_id, scope)) = store.user_for_token(&hash)? {
            return Ok(Principal {
                user_id,
                via: AuthVia::ApiToken { token_hash: hash },
                scope,
            });
        }
        if let Some(session) = store.get_session(&hash)? {
            return Ok(Principal {
                user_id: session.user_id,
                via: AuthVia::BearerSession { session_hash: hash },
                scope: TokenScope::Admin,
            });
        }
        return Err(ApiError::Unauthorized);
    }
    let Some(cookie) = session_from_cookies(headers) else {
        return Err(ApiError::Unauthorized);
    };
    let hash = sha256_hex(&cookie);
    let session = store.get_session(&hash)?.ok_or(ApiError::Unauthorized)?;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(session.csrf_token.as_bytes())) {
            return Err(ApiError::Forbidden(
                "missing or wrong X-CSRF-Token header: send the csrf_token from login or /api/auth/me".into(),
            ));
        }
    }
    Ok(Principal {
        user_id: session.user_id,
        via: AuthVia::Cookie {
            session_hash: hash,
            csrf_token: session.csrf_token,
        },
        scope: TokenScope::Admin,
    })
}

fn session_from_cookies(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

fn session_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A valid argon2id hash of nothing anyone knows, to verify against for unknown names.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_string(16)).unwrap_or_default())
}

/// `bytes` random bytes, URL-safe base64 without padding.
fn random_string(bytes: usize) -> String {
    use base64::Engine;
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

pub(super) fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn the_limiter_allows_a_burst_then_refuses() {
        let limiter = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for i in 0..LOGIN_BURST {
            assert!(limiter.attempt(ip, &format!("user{i}")).is_ok());
        }
        let wait = limiter.attempt(ip, "another").unwrap_err();
        assert!(wait <= LOGIN_REFILL, "{wait:?}");
        assert!(
            limiter
                .attempt(IpAddr::from([10, 0, 0, 2]), "another")
                .is_ok(),
            "per address"
        );
    }

    #[test]
    fn the_limiter_counts_per_username_across_addresses() {
        let limiter = LoginLimiter::default();
        for i in 0..USERNAME_BURST {
            let ip = IpAddr::from([10, 1, 0, u8::try_from(i).unwrap()]);
            assert!(limiter.attempt(ip, "admin").is_ok());
        }
        let fresh = IpAddr::from([10, 2, 0, 1]);
        assert!(
            limiter.attempt(fresh, "admin").is_err(),
            "many addresses, one name"
        );
        assert!(
            limiter.guess("admin").is_err(),
            "password changes share the budget"
        );
        assert!(limiter.attempt(fresh, "someone").is_ok());
    }

    #[test]
    fn the_limiter_stays_bounded_under_a_flood_of_names() {
        let buckets: Buckets<String> = Buckets::new(USERNAME_BURST, USERNAME_REFILL);
        for i in 0..(MAX_BUCKETS * 2) {
            let _ = buckets.take(format!("name-{i}"));
        }
        let kept = buckets.buckets.lock().unwrap().len();
        assert!(kept <= MAX_BUCKETS + 1, "{kept}");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; dw_session=abc; b=2"),
        );
        assert_eq!(session_from_cookies(&headers).as_deref(), Some("abc"));
        let cookie = session_cookie("abc", 60, true);
        let text = cookie.to_str().unwrap();
        assert!(
            text.contains("HttpOnly")
                && text.contains("SameSite=Strict")
                && text.contains("Secure")
        );
        assert!(
            !session_cookie("abc", 60, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
