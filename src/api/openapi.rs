//! The OpenAPI document's frame: title, version, the two ways to authenticate, and the
//! default that every operation needs one of them. The paths and schemas come from the
//! handlers' `#[utoipa::path]` annotations as [`super::router`] mounts them, so the spec
//! and the routes cannot drift apart.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, SecurityRequirement};

use super::auth::SESSION_COOKIE;

/// Names of the security schemes in the document.
pub const BEARER: &str = "bearer";
pub const COOKIE: &str = "session_cookie";

/// The document before any path is added.
pub fn base() -> OpenApi {
    let mut api = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("docker-watcher")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Continuous deployment for one Docker host. Sign in with \
                     `POST /api/auth/login`, then send `Authorization: Bearer <token>` \
                     (scripts) or the session cookie with `X-CSRF-Token` on state-changing \
                     requests (the UI). Errors are `{\"error\": \"…\"}`; a validation error \
                     adds `fields` with a reason per bad field.",
                ))
                .build(),
        )
        .build();
    api.security = Some(vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(COOKIE, Vec::<String>::new()),
    ]);
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "a session token from login, or an API token from /api/auth/tokens",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "the session cookie set by login; state-changing requests also need X-CSRF-Token",
        ))),
    );
    api
}
