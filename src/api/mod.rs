//! The HTTP surface: `router(state)` builds every route, so handlers can be tested with
//! `oneshot` and the daemon serves the same router on a socket.
//!
//! Routes come in three groups, each mounted with its own layers:
//! - public: `/healthz`, the webhook, login (and the docs and `/api/openapi.json`);
//! - protected: everything else, behind [`auth::require_auth`], a body limit and a
//!   request timeout;
//! - streams (SSE): protected too, but outside the timeout.
//!
//! Any other path is the fallback's: the embedded web UI for page paths (`ui`), the JSON
//! 404 for everything under `/api`.
//!
//! A route added to the protected or stream group needs sign-in without further ado; the
//! public group is listed in [`PUBLIC_ROUTES`], and a test checks every route of the
//! OpenAPI document against it. The token scope each signed-in route needs is in
//! [`scopes::ROUTE_SCOPES`], checked against the document the same way.
//!
//! Invariant: handlers are thin; they parse and validate, call the store or a worker,
//! and translate the outcome into response types of their own (never store rows). They
//! never hold SQL or Docker types.

mod apply;
mod audit;
pub mod auth;
mod deploys;
mod error;
mod events;
mod extract;
mod headers;
mod health;
mod instances;
mod login_audit;
mod managed;
mod notifications;
mod openapi;
mod projects;
mod registries;
mod release;
pub mod scopes;
mod settings;
mod stage_release;
mod stage_target;
mod stages;
mod system;
mod ui;
mod validate;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::deployer::Deployer;
use crate::docker::Engine;
use crate::intake::Intake;
use crate::notify::HttpNotifier;
use crate::poller::Poller;
use crate::store::Store;

pub use apply::{ApplyError, apply_files};
pub use auth::{LoginLimiter, ensure_admin};
pub use error::{ApiError, ErrorBody, not_found};
pub use events::{STREAMS_PER_CALLER, STREAMS_TOTAL};

/// Routes anyone may call, as `(method, path)` in the OpenAPI document.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("post", "/api/webhook/{secret}"),
    ("post", "/api/auth/login"),
];
/// The interactive docs and the spec they read: public, and not in the spec themselves.
pub const DOCS_PATH: &str = "/api/docs";
pub const SPEC_PATH: &str = "/api/openapi.json";

/// Largest JSON body the protected routes take (the webhook has its own limit).
pub const BODY_LIMIT: usize = 256 * 1024;
/// Longest a non-streaming request may take; stopping an instance waits for Docker's
/// grace period, and a registry or proxy check for their timeouts.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What every handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: Arc<dyn Engine>,
    pub deployer: Deployer,
    pub intake: Intake,
    pub poller: Arc<Poller>,
    pub notifier: HttpNotifier,
    pub web: Arc<WebConfig>,
    pub login_limiter: Arc<LoginLimiter>,
    /// Google's public keys, for the tokens of signed Pub/Sub pushes.
    pub google_keys: Arc<crate::google_keys::GoogleKeys>,
    /// Cancelled when the daemon stops: open event streams end, so the server's graceful
    /// shutdown (which waits for every connection) is not held up by a browser tab.
    pub shutdown: CancellationToken,
}

/// How the daemon is reached from outside, for links and cookies.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Base URL without trailing slash, e.g. `https://deploy.example.com`.
    pub public_url: String,
    /// Mark the session cookie `Secure` (the public URL is https).
    pub secure_cookies: bool,
}

impl WebConfig {
    pub fn new(public_url: String) -> WebConfig {
        WebConfig {
            secure_cookies: public_url.starts_with("https://"),
            public_url,
        }
    }
}

/// Every route, with its layers, the docs and the JSON 404 for anything else.
pub fn router(state: AppState) -> Router {
    let groups = Groups::new();
    let auth = axum::middleware::from_fn_with_state(state.clone(), auth::require_auth);
    let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT);
    let layered = Groups {
        public: groups.public.layer(timeout),
        protected: groups
            .protected
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                managed::refuse_edits,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                audit::record_changes,
            ))
            .route_layer(auth.clone())
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(timeout),
        root_protected: groups.root_protected.route_layer(auth.clone()),
        streams: groups
            .streams
            .route_layer(auth)
            .layer(Extension(Arc::new(events::StreamLimits::default()))),
    };
    let (routes, _) = layered.assemble().split_for_parts();
    routes
        .route(SPEC_PATH, axum::routing::get(spec_json))
        .merge(SwaggerUi::new(DOCS_PATH).config(utoipa_swagger_ui::Config::new([SPEC_PATH])))
        .fallback(ui::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.web.clone(),
            headers::security_headers,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state)
}

/// The OpenAPI document of every route `router` mounts (the docs and the spec aside).
pub fn openapi() -> utoipa::openapi::OpenApi {
    document(Groups::new())
}

/// `GET /api/openapi.json`: the document is built on the first request, not at start,
/// and kept as its JSON (~130 KB). Built at start and kept as a structure, it was four
/// fifths of the heap of a daemon just started (~4 MB) and a third of the router's
/// start-up time, for a page few people open.
async fn spec_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    static JSON: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    let json = JSON.get_or_init(|| {
        serde_json::to_vec(&openapi())
            .map(Into::into)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot write the document: {e}\"}}").into())
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json.clone(),
    )
        .into_response()
}

/// The document of `groups`, with the error answers every operation may give.
fn document(groups: Groups) -> utoipa::openapi::OpenApi {
    let mut api = groups.assemble().into_openapi();
    openapi::add_common_errors(&mut api, PUBLIC_ROUTES);
    openapi::add_field_rules(&mut api);
    openapi::add_query_rules(&mut api);
    managed::document_refusals(&mut api);
    api
}

/// The webhook's documented POST, mounted for every method: the handler checks the
/// secret before anything else, so a wrong one answers like an unknown path whatever the
/// method.
fn webhook_any_method() -> utoipa_axum::router::UtoipaMethodRouter<AppState> {
    let (schemas, paths, _post) = routes!(webhook::receive);
    (schemas, paths, axum::routing::any(webhook::receive))
}

/// The routes, grouped by the layers they get.
#[derive(Clone)]
struct Groups {
    /// Under `/api` (and `/healthz` at the root).
    public: OpenApiRouter<AppState>,
    /// Under `/api`.
    protected: OpenApiRouter<AppState>,
    /// At the root, signed in.
    root_protected: OpenApiRouter<AppState>,
    /// Under `/api`, server-sent events.
    streams: OpenApiRouter<AppState>,
}

impl Groups {
    fn new() -> Groups {
        let public = OpenApiRouter::new()
            .routes(routes!(auth::login))
            .routes(webhook_any_method())
            .layer(DefaultBodyLimit::max(webhook::BODY_LIMIT));
        let protected = OpenApiRouter::new()
            .routes(routes!(auth::logout))
            .routes(routes!(auth::me))
            .routes(routes!(auth::change_password))
            .routes(routes!(auth::list_tokens, auth::create_token))
            .routes(routes!(auth::revoke_token))
            .routes(routes!(registries::list, registries::create))
            .routes(routes!(
                registries::get,
                registries::update,
                registries::delete
            ))
            .routes(routes!(registries::check))
            .routes(routes!(projects::list, projects::create))
            .routes(routes!(projects::get, projects::update, projects::delete))
            .routes(routes!(projects::tags))
            .routes(routes!(projects::poll))
            .routes(routes!(projects::events))
            .routes(routes!(stages::list, stages::create))
            .routes(routes!(stages::get, stages::update, stages::delete))
            .routes(routes!(stages::poll_state))
            .routes(routes!(stage_target::get_service))
            .routes(routes!(stage_target::scale_service))
            .routes(routes!(stage_target::remove_service))
            .routes(routes!(instances::list_all))
            .routes(routes!(instances::list))
            .routes(routes!(instances::get, instances::remove))
            .routes(routes!(instances::stop))
            .routes(routes!(instances::start))
            .routes(routes!(deploys::list))
            .routes(routes!(deploys::get))
            .routes(routes!(deploys::logs))
            .routes(routes!(deploys::deploy_tag))
            .routes(routes!(deploys::redeploy))
            .routes(routes!(deploys::rollback))
            .routes(routes!(release::promote))
            .routes(routes!(release::approve))
            .routes(routes!(release::reject))
            .routes(routes!(release::waiting))
            .routes(routes!(audit::list))
            .routes(routes!(settings::get, settings::update))
            .routes(routes!(settings::webhook))
            .routes(routes!(settings::regenerate_webhook))
            .routes(routes!(settings::check_proxy))
            .routes(routes!(notifications::list, notifications::create))
            .routes(routes!(
                notifications::get,
                notifications::update,
                notifications::delete
            ))
            .routes(routes!(notifications::test))
            .routes(routes!(notifications::preview))
            .routes(routes!(system::webhook_events))
            .routes(routes!(system::reconcile))
            .routes(routes!(apply::apply))
            .routes(routes!(apply::export))
            .routes(routes!(managed::list));
        let root_protected = OpenApiRouter::new().routes(routes!(system::metrics));
        let streams = OpenApiRouter::new()
            .routes(routes!(events::log_stream))
            .routes(routes!(events::events))
            .routes(routes!(instances::logs));
        Groups {
            public,
            protected,
            root_protected,
            streams,
        }
    }

    fn assemble(self) -> OpenApiRouter<AppState> {
        OpenApiRouter::with_openapi(openapi::base())
            .routes(routes!(health::healthz))
            .merge(self.root_protected)
            .nest(
                "/api",
                OpenApiRouter::new()
                    .merge(self.public)
                    .merge(self.protected)
                    .merge(self.streams),
            )
    }
}

/// The span of one request: method, path (the webhook secret blanked) and request id.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let path = request.uri().path();
    let path = if path.starts_with("/api/webhook/") {
        "/api/webhook/<secret>"
    } else {
        path
    };
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), path = %path, request_id = %request_id)
}
