//! `POST /api/webhook/{secret}`: registries and CI tell us about pushes here.
//!
//! Thin on purpose: check the secret first, for every method and body size (a wrong one
//! gets exactly the unknown-path 404, so the route is mounted for any method and the body
//! is read here, with its own limit, only after the secret matched); then read the
//! payload (`webhook`, at most `webhook::MAX_EVENTS` events), check its signature, and
//! hand the events to `intake`, which records them and answers with counts and the first
//! few outcomes.
//!
//! Azure Event Grid first proves the endpoint wants its events: a subscription-validation
//! event (answered with its code, before any signature check: it changes nothing) or, in
//! the CloudEvents schema, an `OPTIONS` request with `WebHook-Request-Origin` (answered
//! with `WebHook-Allowed-Origin`).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{ApiError, AppState, not_found};
use crate::webhook::{
    ParseOptions, SignatureError, SourceFormat, bearer_token, detect_format,
    event_grid_validation_code, parse_payload, verify_signature,
};

/// The CloudEvents webhook abuse-protection handshake (Azure Event Grid's CloudEvents
/// schema): an `OPTIONS` request naming the sender, answered by allowing it.
const WEBHOOK_REQUEST_ORIGIN: &str = "webhook-request-origin";

/// Largest body accepted; more is answered 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Bodies up to this size are parsed on the async worker; larger ones on a blocking thread.
const INLINE_PARSE_LIMIT: usize = 64 * 1024;

/// Registries and CI report pushes here. The secret in the path is the credential; a
/// wrong one answers exactly like an unknown path.
#[utoipa::path(post, path = "/webhook/{secret}", tag = "webhook", security(()),
    params(("secret" = String, Path, description = "the webhook secret (see GET /api/settings/webhook)")),
    request_body(content = Object, description = "a registry's own notification format (Docker Distribution, Harbor, Quay, Azure Container Registry or Event Grid, JFrog, Google Pub/Sub, Gitea, GitHub, Docker Hub), or `{\"image\": \"host/org/app:tag\"}`"),
    responses((status = 200, body = Object, description = "an Azure Event Grid subscription validation, answered `{\"validationResponse\": code}`"),
        (status = 202, body = Object, description = "what became of each event"),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody,
            description = "the signature does not match"),
        (status = 404, body = super::error::ErrorBody), (status = 413, description = "body over 1 MiB")))]
pub(super) async fn receive(
    State(state): State<AppState>,
    secret: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    // Nothing about the request is looked at before the secret matched.
    let Ok(Path(secret)) = secret else {
        return not_found();
    };
    // Settings and secrets come from the store's memory while unchanged: this runs for
    // every notification a registry sends.
    let view = match state.store.webhook_view() {
        Ok(view) => view,
        Err(e) => {
            tracing::error!("webhook: cannot read the settings: {e}");
            return not_found();
        }
    };
    if !secret_matches(view.secret.as_deref(), &secret) {
        return not_found();
    }
    if request.method() == Method::OPTIONS
        && let Some(origin) = request.headers().get(WEBHOOK_REQUEST_ORIGIN)
    {
        return allow_origin(origin);
    }
    if request.method() != Method::POST {
        let mut response = (
            StatusCode::METHOD_NOT_ALLOWED,
            Json(json!({ "error": "send webhooks with POST" })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let headers = parts.headers;
    let format = match detect_format(&headers, &body) {
        Ok(format) => format,
        Err(e) => return reject(&state, "unknown", e.status_code(), &e.to_string()).await,
    };
    if format == SourceFormat::EventGrid
        && let Some(code) = event_grid_validation_code(&body)
    {
        return (StatusCode::OK, Json(json!({ "validationResponse": code }))).into_response();
    }
    let limits = &view.settings.limits;
    let signing_secret = view.signing_secret.as_deref().map(str::as_bytes);
    // Google's keys are needed (and fetched, when not held) only for a signed Pub/Sub push.
    let google_keys = match (format, signing_secret, bearer_token(&headers)) {
        (SourceFormat::GooglePubSub, Some(_), Ok(token)) => {
            state.google_keys.for_token(token).await
        }
        _ => Default::default(),
    };
    match verify_signature(format, &headers, &body, signing_secret, &google_keys) {
        Ok(()) => {}
        Err(SignatureError::Unsignable {
            format: SourceFormat::DockerHub,
        }) if limits.allow_unsigned_dockerhub => {}
        Err(SignatureError::Unsignable {
            format: SourceFormat::Quay,
        }) if limits.allow_unsigned_quay => {}
        Err(e) => {
            return reject(&state, format.as_str(), e.status_code(), &e.to_string()).await;
        }
    }
    // A 1 MiB body is parsed in milliseconds, but not on the async workers; a registry's
    // usual notification (a few KiB) is parsed in microseconds, quicker than a hand-off.
    let options = ParseOptions {
        jfrog_image_host: limits.jfrog_image_host.clone(),
        ..ParseOptions::default()
    };
    let parsed = if body.len() <= INLINE_PARSE_LIMIT {
        Ok(parse_payload(&headers, &body, &options))
    } else {
        tokio::task::spawn_blocking(move || parse_payload(&headers, &body, &options)).await
    };
    let payload = match parsed {
        Ok(Ok(payload)) => payload,
        Ok(Err(e)) => {
            return reject(&state, format.as_str(), e.status_code(), &e.to_string()).await;
        }
        Err(e) => return internal(&format!("parsing the payload: {e}")),
    };
    match state.intake.receive(format, payload.events).await {
        Ok(receipt) => (StatusCode::ACCEPTED, Json(receipt)).into_response(),
        Err(e) => internal(&e.to_string()),
    }
}

fn allow_origin(origin: &HeaderValue) -> Response {
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert("webhook-allowed-origin", origin.clone());
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    response
}

/// Reads the body, refusing (413, the JSON error) more than [`BODY_LIMIT`] bytes without
/// reading further.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Err(ApiError::TooLarge(BODY_LIMIT));
    }
    let mut stream = body.into_data_stream();
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
        if read.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::TooLarge(BODY_LIMIT));
        }
        read.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(read))
}

/// Constant-time comparison with the current secret; no secret set means no webhook.
fn secret_matches(secret: Option<&str>, given: &str) -> bool {
    secret.is_some_and(|secret| secret.as_bytes().ct_eq(given.as_bytes()).into())
}

/// A request that got past the secret but could not be used: recorded (by intake),
/// answered with why.
async fn reject(state: &AppState, source: &str, status: StatusCode, reason: &str) -> Response {
    state
        .intake
        .record_rejected(source, status.as_u16(), reason)
        .await;
    (status, Json(json!({ "error": reason }))).into_response()
}

fn internal(reason: &str) -> Response {
    tracing::error!("webhook: {reason}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "internal error" })),
    )
        .into_response()
}
