//! An in-process Nginx Proxy Manager that follows the v2.15.1 OpenAPI spec in
//! ../shared/reference/ (and the behaviour observed on a real backend) for the parts
//! docker-watcher uses: login and token refresh, proxy hosts (list, create, read, update,
//! soft delete), certificates by id, and `GET /api/`.
//!
//! What it reproduces: error bodies `{"error":{"code":N,"message":"…"}}`; 404 for a
//! missing token (since 2.13), 400 `Token has expired` for an expired one, 500 `Internal
//! Error` for a token whose signature no longer verifies (NPM restarted with new keys, or a
//! token it never issued); proxy-host
//! writes validated against the schema (required fields on create,
//! `additionalProperties: false`, types and ranges) with 400 on violation; 400
//! `<domain> is already in use`; `meta.nginx_online`/`nginx_err` set after every write (201
//! even when nginx refuses the config); soft deletes and ids never reused; SQLite-style
//! dates. Tests steer it (expire tokens, rotate its signing keys, make nginx reject the next
//! config, add hosts a person made) and read its counters.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

pub const IDENTITY: &str = "admin@example.test";
pub const SECRET: &str = "fake-npm-password-123";
pub const VERSION: (u64, u64, u64) = (2, 15, 1);

pub struct FakeNpm {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct FakeState {
    tokens: HashMap<String, IssuedToken>,
    token_lifetime: Option<chrono::TimeDelta>,
    hosts: BTreeMap<u64, Value>,
    deleted: BTreeMap<u64, Value>,
    next_id: u64,
    certificates: BTreeMap<u64, Value>,
    next_certificate: u64,
    /// Domains held by NPM hosts of other kinds (redirection, 404 hosts), which also count
    /// as "in use" but are not in the proxy-host list.
    other_domains: Vec<String>,
    reject_next: Option<String>,
    logins: usize,
    failed_logins: usize,
    refreshes: usize,
    accepted_writes: usize,
    requests: BTreeMap<String, usize>,
}

struct IssuedToken {
    expires: chrono::DateTime<chrono::Utc>,
}

type Shared = Arc<Mutex<FakeState>>;

impl FakeNpm {
    pub async fn start() -> FakeNpm {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            next_id: 1,
            next_certificate: 1,
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/api/", get(health))
            .route("/api/tokens", get(refresh).post(login))
            .route("/api/nginx/proxy-hosts", get(list_hosts).post(create_host))
            .route(
                "/api/nginx/proxy-hosts/{id}",
                get(read_host).put(update_host).delete(delete_host),
            )
            .route("/api/nginx/certificates/{id}", get(read_certificate))
            .fallback(|| async { npm_error(StatusCode::NOT_FOUND, "Not Found") })
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake NPM");
        let addr = listener.local_addr().expect("fake NPM address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake NPM serves");
        });
        FakeNpm { addr, state, task }
    }

    /// The admin address, as a person would type it into the settings.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every token issued so far expires (a day passed, or the clocks drifted apart): NPM
    /// answers them with 400 `Token has expired`.
    pub fn expire_tokens(&self) {
        let past = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
        for token in self.lock().tokens.values_mut() {
            token.expires = past;
        }
    }

    /// NPM restarted with new keys in `/data/keys.json`: no token issued so far verifies
    /// any more, and NPM answers them with 500 `Internal Error`.
    pub fn rotate_keys(&self) {
        self.lock().tokens.clear();
    }

    /// How long new tokens live (NPM's default is a day).
    pub fn set_token_lifetime(&self, lifetime: chrono::TimeDelta) {
        self.lock().token_lifetime = Some(lifetime);
    }

    /// The next proxy-host write gets `nginx_online: false` with this `nginx_err`.
    pub fn reject_next_config(&self, nginx_err: &str) {
        self.lock().reject_next = Some(nginx_err.to_string());
    }

    /// A custom certificate, as uploaded in NPM's UI; returns its id.
    pub fn add_certificate(&self, domain: &str) -> u64 {
        let mut state = self.lock();
        let id = state.next_certificate;
        state.next_certificate += 1;
        state
            .certificates
            .insert(id, certificate_json(id, "other", domain));
        id
    }

    /// A proxy host a person made by hand in NPM's UI (no docker-watcher mark).
    pub fn add_foreign_host(&self, domain: &str, forward_host: &str, forward_port: u16) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let mut host = host_json(id, &Map::new());
        host["domain_names"] = json!([domain]);
        host["forward_host"] = json!(forward_host);
        host["forward_port"] = json!(forward_port);
        host["meta"] = json!({"letsencrypt_agree": false, "dns_challenge": false, "nginx_online": true, "nginx_err": null});
        state.hosts.insert(id, host);
        id
    }

    /// A domain held by another kind of NPM host (a redirection host, say).
    pub fn hold_domain_elsewhere(&self, domain: &str) {
        self.lock().other_domains.push(domain.to_string());
    }

    /// A person deletes a proxy host in NPM's UI (or NPM lost it).
    pub fn delete_by_hand(&self, id: u64) {
        let mut state = self.lock();
        if let Some(host) = state.hosts.remove(&id) {
            state.deleted.insert(id, host);
        }
    }

    /// A live (not deleted) proxy host.
    pub fn host(&self, id: u64) -> Option<Value> {
        self.lock().hosts.get(&id).cloned()
    }

    pub fn hosts(&self) -> Vec<Value> {
        self.lock().hosts.values().cloned().collect()
    }

    pub fn was_deleted(&self, id: u64) -> bool {
        self.lock().deleted.contains_key(&id)
    }

    /// Successful logins (`POST /api/tokens` with good credentials).
    pub fn logins(&self) -> usize {
        self.lock().logins
    }

    pub fn failed_logins(&self) -> usize {
        self.lock().failed_logins
    }

    /// Successful `GET /api/tokens` refreshes.
    pub fn refreshes(&self) -> usize {
        self.lock().refreshes
    }

    /// Creates, updates and deletes of proxy hosts that were accepted.
    pub fn host_writes(&self) -> usize {
        self.lock().accepted_writes
    }

    /// Requests that reached a route, by `METHOD /route`, whatever their answer.
    pub fn requests(&self, key: &str) -> usize {
        self.lock().requests.get(key).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake NPM state")
    }
}

impl Drop for FakeNpm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn npm_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

/// An NPM error answer, small enough to travel in a `Result`.
struct NpmError(StatusCode, String);

impl IntoResponse for NpmError {
    fn into_response(self) -> Response {
        npm_error(self.0, &self.1)
    }
}

fn ok_json(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

fn now_sqlite() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

impl FakeState {
    fn count(&mut self, method: &Method, route: &str) {
        *self
            .requests
            .entry(format!("{method} {route}"))
            .or_default() += 1;
    }

    /// The bearer check in front of every route but login and health, as the real
    /// backend answers: a missing token 404 (since 2.13); an expired one 400 `Token has
    /// expired`; one whose signature does not verify (issued under other keys, or never)
    /// 500 `Internal Error`.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), NpmError> {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return Err(NpmError(StatusCode::NOT_FOUND, "Not Found".into()));
        };
        match self.tokens.get(token) {
            None => Err(NpmError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Error".into(),
            )),
            Some(issued) if issued.expires <= chrono::Utc::now() => Err(NpmError(
                StatusCode::BAD_REQUEST,
                "Token has expired".into(),
            )),
            Some(_) => Ok(()),
        }
    }

    fn issue_token(&mut self) -> Value {
        let token = format!(
            "eyJfake.{}.{}",
            uuid::Uuid::new_v4().simple(),
            rand::random::<u32>()
        );
        let expires =
            chrono::Utc::now() + self.token_lifetime.unwrap_or(chrono::TimeDelta::days(1));
        self.tokens.insert(token.clone(), IssuedToken { expires });
        json!({
            "token": token,
            "expires": expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }

    fn domain_in_use(&self, domains: &[String], except: Option<u64>) -> Option<String> {
        domains
            .iter()
            .find(|domain| {
                self.other_domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(domain))
                    || self.hosts.iter().any(|(id, host)| {
                        Some(*id) != except
                            && host["domain_names"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(Value::as_str)
                                .any(|d| d.eq_ignore_ascii_case(domain))
                    })
            })
            .cloned()
    }

    /// What NPM does after writing a host: render the nginx config, test it, and record
    /// the outcome in `meta`.
    fn configure(&mut self, id: u64) {
        let rejected = self.reject_next.take();
        if let Some(host) = self.hosts.get_mut(&id) {
            if !host["meta"].is_object() {
                host["meta"] = json!({});
            }
            host["meta"]["nginx_online"] = json!(rejected.is_none());
            host["meta"]["nginx_err"] = rejected.map_or(Value::Null, Value::String);
        }
    }

    /// `certificate_id: "new"` orders a Let's Encrypt certificate; the fake makes one at once.
    fn resolve_certificate(&mut self, body: &mut Map<String, Value>) {
        if body.get("certificate_id").is_some_and(|c| c == "new") {
            let id = self.next_certificate;
            self.next_certificate += 1;
            let domain = body["domain_names"][0].as_str().unwrap_or("").to_string();
            self.certificates
                .insert(id, certificate_json(id, "letsencrypt", &domain));
            body.insert("certificate_id".into(), json!(id));
        }
    }
}

/// NPM's `cleanSslHstsData`: without a certificate, SSL cannot be forced.
fn clean_ssl(host: &mut Value) {
    if host["certificate_id"].as_u64().unwrap_or(0) == 0 {
        host["ssl_forced"] = json!(false);
        host["hsts_enabled"] = json!(false);
        host["hsts_subdomains"] = json!(false);
    }
}

fn host_json(id: u64, body: &Map<String, Value>) -> Value {
    let now = now_sqlite();
    let mut host = json!({
        "id": id,
        "created_on": now,
        "modified_on": now,
        "owner_user_id": 1,
        "domain_names": [],
        "forward_host": "",
        "forward_port": 80,
        "access_list_id": 0,
        "certificate_id": 0,
        "ssl_forced": false,
        "caching_enabled": false,
        "block_exploits": false,
        "advanced_config": "",
        "meta": {},
        "allow_websocket_upgrade": false,
        "http2_support": false,
        "forward_scheme": "http",
        "enabled": true,
        // Observed: a host created without locations reads back with `null`.
        "locations": null,
        "hsts_enabled": false,
        "hsts_subdomains": false,
        "trust_forwarded_proto": false,
    });
    for (key, value) in body {
        host[key] = value.clone();
    }
    host
}

fn certificate_json(id: u64, provider: &str, domain: &str) -> Value {
    let now = now_sqlite();
    json!({
        "id": id, "created_on": now, "modified_on": now, "owner_user_id": 1,
        "provider": provider, "nice_name": domain, "domain_names": [domain],
        "expires_on": "2027-02-21 10:41:20", "meta": {},
    })
}

/// The fields the proxy-host write schema knows (it has `additionalProperties: false`).
const HOST_FIELDS: &[&str] = &[
    "domain_names",
    "forward_scheme",
    "forward_host",
    "forward_port",
    "certificate_id",
    "ssl_forced",
    "hsts_enabled",
    "hsts_subdomains",
    "trust_forwarded_proto",
    "http2_support",
    "block_exploits",
    "caching_enabled",
    "allow_websocket_upgrade",
    "access_list_id",
    "advanced_config",
    "enabled",
    "meta",
    "locations",
];
const HOST_REQUIRED: &[&str] = &[
    "domain_names",
    "forward_scheme",
    "forward_host",
    "forward_port",
];
const BOOLEAN_FIELDS: &[&str] = &[
    "ssl_forced",
    "hsts_enabled",
    "hsts_subdomains",
    "trust_forwarded_proto",
    "http2_support",
    "block_exploits",
    "caching_enabled",
    "allow_websocket_upgrade",
    "enabled",
];

/// Validates a proxy-host write body the way NPM's JSON-schema check does, with its
/// ajv-style messages.
fn validate_host(body: &Bytes, create: bool) -> Result<Map<String, Value>, NpmError> {
    let bad = |message: String| NpmError(StatusCode::BAD_REQUEST, message);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("Unexpected token in JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(bad("data must be object".into()));
    };
    if create {
        for field in HOST_REQUIRED {
            if !object.contains_key(*field) {
                return Err(bad(format!("data must have required property '{field}'")));
            }
        }
    }
    if let Some(extra) = object.keys().find(|k| !HOST_FIELDS.contains(&k.as_str())) {
        return Err(bad(format!(
            "data must NOT have additional properties ({extra})"
        )));
    }
    if let Some(names) = object.get("domain_names") {
        let forbidden = "&| @!#%^();:/\\}{=+?<>,~`'\"";
        let list = names
            .as_array()
            .ok_or_else(|| bad("data/domain_names must be array".into()))?;
        if list.is_empty() || list.len() > 100 {
            return Err(bad(
                "data/domain_names must NOT have fewer than 1 items".into()
            ));
        }
        let mut seen = Vec::new();
        for name in list {
            let name = name
                .as_str()
                .ok_or_else(|| bad("data/domain_names/0 must be string".into()))?;
            if name.is_empty() || name.chars().any(|c| forbidden.contains(c)) {
                return Err(bad(format!(
                    "data/domain_names must match pattern \"^[^&| @!#%^();:/\\\\}}{{=+?<>,~`'\\\"]+$\" ({name})"
                )));
            }
            if seen.contains(&name) {
                return Err(bad("data/domain_names must NOT have duplicate items".into()));
            }
            seen.push(name);
        }
    }
    if let Some(scheme) = object.get("forward_scheme")
        && scheme != "http"
        && scheme != "https"
    {
        return Err(bad(
            "data/forward_scheme must be equal to one of the allowed values".into(),
        ));
    }
    if let Some(host) = object.get("forward_host") {
        let length = host.as_str().map(str::len);
        if !matches!(length, Some(1..=255)) {
            return Err(bad(
                "data/forward_host must NOT have fewer than 1 characters".into(),
            ));
        }
    }
    if let Some(port) = object.get("forward_port")
        && !port.as_u64().is_some_and(|p| (1..=65535).contains(&p))
    {
        return Err(bad("data/forward_port must be <= 65535".into()));
    }
    if let Some(certificate) = object.get("certificate_id")
        && !(certificate.is_u64() || certificate == "new")
    {
        return Err(bad(
            "data/certificate_id must match a schema in anyOf".into()
        ));
    }
    if let Some(list) = object.get("access_list_id")
        && !list.is_u64()
    {
        return Err(bad("data/access_list_id must be integer".into()));
    }
    for field in BOOLEAN_FIELDS {
        if object.get(*field).is_some_and(|v| !v.is_boolean()) {
            return Err(bad(format!("data/{field} must be boolean")));
        }
    }
    if object
        .get("advanced_config")
        .is_some_and(|v| !v.is_string())
    {
        return Err(bad("data/advanced_config must be string".into()));
    }
    if object.get("meta").is_some_and(|v| !v.is_object()) {
        return Err(bad("data/meta must be object".into()));
    }
    if object.get("locations").is_some_and(|v| !v.is_array()) {
        return Err(bad("data/locations must be array".into()));
    }
    Ok(object)
}

fn parse_id(id: &str) -> Result<u64, NpmError> {
    id.parse::<u64>().ok().filter(|id| *id >= 1).ok_or_else(|| {
        NpmError(
            StatusCode::BAD_REQUEST,
            "params/hostID must be integer".into(),
        )
    })
}

async fn health(State(state): State<Shared>) -> Response {
    state.lock().unwrap().count(&Method::GET, "/api/");
    ok_json(
        StatusCode::OK,
        json!({"status": "OK", "setup": true, "version": {"major": VERSION.0, "minor": VERSION.1, "revision": VERSION.2}}),
    )
}

async fn login(State(state): State<Shared>, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    state.count(&Method::POST, "/api/tokens");
    let bad = |message: &str| npm_error(StatusCode::BAD_REQUEST, message);
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&body) else {
        return bad("data must be object");
    };
    if object
        .keys()
        .any(|k| !["identity", "secret", "scope"].contains(&k.as_str()))
    {
        return bad("data must NOT have additional properties");
    }
    let identity = object.get("identity").and_then(Value::as_str).unwrap_or("");
    let secret = object.get("secret").and_then(Value::as_str).unwrap_or("");
    if identity.is_empty() {
        return bad("data must have required property 'identity'");
    }
    if secret.is_empty() {
        return bad("data must have required property 'secret'");
    }
    if identity != IDENTITY || secret != SECRET {
        state.failed_logins += 1;
        return npm_error(StatusCode::UNAUTHORIZED, "Invalid email or password");
    }
    state.logins += 1;
    let token = state.issue_token();
    ok_json(StatusCode::OK, token)
}

async fn refresh(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    state.count(&Method::GET, "/api/tokens");
    if let Err(error) = state.authorize(&headers) {
        return error.into_response();
    }
    state.refreshes += 1;
    let token = state.issue_token();
    ok_json(StatusCode::OK, token)
}

async fn list_hosts(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    state.count(&Method::GET, "/api/nginx/proxy-hosts");
    if let Err(error) = state.authorize(&headers) {
        return error.into_response();
    }
    ok_json(
        StatusCode::OK,
        Value::Array(state.hosts.values().cloned().collect()),
    )
}

async fn create_host(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    state.count(&Method::POST, "/api/nginx/proxy-hosts");
    if let Err(error) = state.authorize(&headers) {
        return error.into_response();
    }
    let mut object = match validate_host(&body, true) {
        Ok(object) => object,
        Err(error) => return error.into_response(),
    };
    let domains: Vec<String> = serde_json::from_value(object["domain_names"].clone()).unwrap();
    if let Some(domain) = state.domain_in_use(&domains, None) {
        return npm_error(
            StatusCode::BAD_REQUEST,
            &format!("{domain} is already in use"),
        );
    }
    state.accepted_writes += 1;
    state.resolve_certificate(&mut object);
    let id = state.next_id;
    state.next_id += 1;
    let mut host = host_json(id, &object);
    clean_ssl(&mut host);
    state.hosts.insert(id, host);
    state.configure(id);
    let mut answer = state.hosts[&id].clone();
    answer["certificate"] = Value::Null;
    answer["access_list"] = Value::Null;
    answer["owner"] = json!({"id": 1, "created_on": "2026-01-01 00:00:00", "modified_on": "2026-01-01 00:00:00", "is_disabled": false, "email": IDENTITY, "name": "Admin", "nickname": "Admin", "avatar": "", "roles": ["admin"]});
    ok_json(StatusCode::CREATED, answer)
}

async fn read_host(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    state.count(&Method::GET, "/api/nginx/proxy-hosts/{id}");
    if let Err(error) = state.authorize(&headers) {
        return error.into_response();
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    match state.hosts.get(&id) {
        Some(host) => ok_json(StatusCode::OK, host.clone()),
        None => npm_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn update_host(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    state.count(&Method::PUT, "/api/nginx/proxy-hosts/{id}");
    if let Err(error) = state.authorize(&headers) {
        return error.into_response();
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let mut object = match validate_host(&body, false) {
        Ok(object) => object,
        Err(error) => return error.into_response(),
    };
    if !state.hosts.contains_key(&id) {
        return npm_error(StatusCode::NOT_FOUND, "Not Found");
    }
    if let Some(names) = object.get("domain_names") {
        let domains: Vec<String> = serde_json::from_value(names.clone()).unwrap();
        if let Some(domain) = state.domain_in_use(&domains, Some(id)) {
            return npm_error(
                StatusCode::BAD_REQUEST,
                &format!("{domain} is already in use"),
            );
        }
    }
    state.accepted_writes += 1;
    if !object.contains_key("domain_names") {
        object.insert(
            "domain_names".into(),
            state.hosts[&id]["domain_names"].clone(),
        );
    }
    state.resolve_certificate(&mut object);
    let host = state.hosts.get_mut(&id).unwrap();
    // PUT is partial: the fields sent replace theirs (`meta` as a whole), the rest stays.
    for (key, value) in object {
        host[key.as_str()] = value;
    }
    host["modified_on"] = json!(now_sqlite());
    clean_ssl(host);
    state.configure(id);
    ok_json(StatusCode::OK, state.hosts[&id].clone())
}

async fn delete_host(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    state.count(&Method::DELETE, "/api/nginx/proxy-hosts/{id}");
    if let Err(error) = state.authorize(&headers) {
        return error.into_response();
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let Some(host) = state.hosts.remove(&id) else {
        return npm_error(StatusCode::NOT_FOUND, "Not Found");
    };
    state.accepted_writes += 1;
    state.deleted.insert(id, host);
    ok_json(StatusCode::OK, json!(true))
}

async fn read_certificate(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    state.count(&Method::GET, "/api/nginx/certificates/{id}");
    if let Err(error) = state.authorize(&headers) {
        return error.into_response();
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    match state.certificates.get(&id) {
        Some(certificate) => ok_json(StatusCode::OK, certificate.clone()),
        None => npm_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}
