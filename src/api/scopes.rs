//! The token scope every signed-in route needs, in one table that [`super::auth::require_auth`]
//! enforces, so handlers stay free of permission checks.
//!
//! `read` is for GETs that show no secret; `deploy` adds what CI needs (deploy a tag,
//! redeploy, roll back, poll now); everything else — creating, changing and deleting
//! things, tokens, settings, the password, the webhook URL — is `admin`. A route missing
//! here needs `admin` (safe), and a test walks the OpenAPI document so that every route
//! is listed and no entry names a route that does not exist.

use axum::http::Method;

use crate::store::TokenScope;

use TokenScope::{Admin, Deploy, Read};

/// `(method, path as in the OpenAPI document, scope needed)` for every signed-in route.
pub const ROUTE_SCOPES: &[(&str, &str, TokenScope)] = &[
    ("get", "/metrics", Read),
    // auth: anyone signed in may see who they are and sign out; the rest is admin's.
    ("post", "/api/auth/logout", Read),
    ("get", "/api/auth/me", Read),
    ("put", "/api/auth/password", Admin),
    ("get", "/api/auth/tokens", Admin),
    ("post", "/api/auth/tokens", Admin),
    ("delete", "/api/auth/tokens/{id}", Admin),
    ("get", "/api/registries", Read),
    ("post", "/api/registries", Admin),
    ("get", "/api/registries/{id}", Read),
    ("put", "/api/registries/{id}", Admin),
    ("delete", "/api/registries/{id}", Admin),
    ("post", "/api/registries/{id}/check", Admin),
    ("get", "/api/projects", Read),
    ("post", "/api/projects", Admin),
    ("get", "/api/projects/{id}", Read),
    ("put", "/api/projects/{id}", Admin),
    ("delete", "/api/projects/{id}", Admin),
    ("get", "/api/projects/{id}/tags", Read),
    ("post", "/api/projects/{id}/poll", Deploy),
    ("get", "/api/projects/{id}/events", Read),
    ("get", "/api/projects/{id}/stages", Read),
    ("post", "/api/projects/{id}/stages", Admin),
    ("get", "/api/stages/{id}", Read),
    ("put", "/api/stages/{id}", Admin),
    ("delete", "/api/stages/{id}", Admin),
    ("get", "/api/stages/{id}/poll-state", Read),
    ("get", "/api/stages/{id}/service", Read),
    ("post", "/api/stages/{id}/service/scale", Deploy),
    ("post", "/api/stages/{id}/service/remove", Admin),
    ("get", "/api/stages/{id}/instances", Read),
    ("post", "/api/stages/{id}/deploys", Deploy),
    ("post", "/api/stages/{id}/rollback", Deploy),
    ("get", "/api/instances", Read),
    ("get", "/api/instances/{id}", Read),
    ("delete", "/api/instances/{id}", Admin),
    ("post", "/api/instances/{id}/stop", Admin),
    ("post", "/api/instances/{id}/start", Admin),
    ("get", "/api/instances/{id}/logs", Read),
    ("get", "/api/deploys", Read),
    ("get", "/api/deploys/{id}", Read),
    ("post", "/api/deploys/{id}/redeploy", Deploy),
    // release workflow: promoting and deciding on deploys is deploy's; the log is read's.
    ("post", "/api/stages/{id}/promote", Deploy),
    ("post", "/api/deploys/{id}/approve", Deploy),
    ("post", "/api/deploys/{id}/reject", Deploy),
    ("get", "/api/deploys/waiting", Read),
    ("get", "/api/audit", Read),
    ("get", "/api/deploys/{id}/logs", Read),
    ("get", "/api/deploys/{id}/logs/stream", Read),
    ("get", "/api/events", Read),
    // settings: the values (secrets only as `has_*` flags) are readable; the webhook URL
    // is a secret, and every change is admin's.
    ("get", "/api/settings", Read),
    ("put", "/api/settings", Admin),
    ("get", "/api/settings/webhook", Admin),
    ("post", "/api/settings/webhook/regenerate", Admin),
    ("post", "/api/settings/proxy/check", Admin),
    ("get", "/api/notifications", Read),
    ("post", "/api/notifications", Admin),
    ("get", "/api/notifications/{id}", Read),
    ("put", "/api/notifications/{id}", Admin),
    ("delete", "/api/notifications/{id}", Admin),
    ("post", "/api/notifications/{id}/test", Admin),
    ("post", "/api/notifications/preview", Admin),
    ("get", "/api/webhook-events", Read),
    ("post", "/api/reconcile", Admin),
    // projects files: applying changes everything; the export and the markers show only
    // what reading the resources shows (secrets as references)
    ("post", "/api/apply", Admin),
    ("get", "/api/export", Read),
    ("get", "/api/managed", Read),
];

/// The scope a request to the route `path` (axum's matched path) with `method` needs;
/// `admin` for anything not in the table.
pub fn needed(method: &Method, path: &str) -> TokenScope {
    let method = if method == Method::HEAD {
        "get".to_string()
    } else {
        method.as_str().to_ascii_lowercase()
    };
    ROUTE_SCOPES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map_or(Admin, |(_, _, scope)| *scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_looked_up_by_method_and_path() {
        assert_eq!(needed(&Method::GET, "/api/projects"), Read);
        assert_eq!(needed(&Method::HEAD, "/api/projects"), Read);
        assert_eq!(needed(&Method::POST, "/api/projects"), Admin);
        assert_eq!(needed(&Method::POST, "/api/stages/{id}/deploys"), Deploy);
        assert_eq!(
            needed(&Method::GET, "/api/not-listed"),
            Admin,
            "unknown is admin"
        );
    }

    #[test]
    fn no_route_is_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        for (method, path, _) in ROUTE_SCOPES {
            assert!(seen.insert((method, path)), "{method} {path} twice");
        }
    }
}
