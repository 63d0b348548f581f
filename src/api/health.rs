//! `GET /healthz`: is the store readable, is Docker reachable (and which version).
//! Unauthenticated, cheap, and never fails because Docker is down: it says so instead.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// Liveness and readiness: the store and Docker, each with `ok` and details.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, body = Object, description = "up (`status` is `degraded` when Docker is unreachable)"),
        (status = 503, body = Object, description = "the store cannot be read")))]
pub(super) async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = match state.store.ping() {
        Ok(()) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    };
    let docker = match state.engine.version().await {
        Ok(v) => json!({ "ok": true, "version": v.version, "api_version": v.api_version }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    };
    let store_ok = store["ok"] == true;
    let all_ok = store_ok && docker["ok"] == true;
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if all_ok { "ok" } else { "degraded" },
            "version": env!("CARGO_PKG_VERSION"),
            "store": store,
            "docker": docker,
        })),
    )
}
