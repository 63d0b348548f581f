//! `POST /api/webhook/{secret}`: registries and CI tell us about pushes here.
//!
//! Thin on purpose: check the secret (a wrong one gets exactly the unknown-path 404),
//! read the payload (`webhook`), check its signature, hand each push to `intake`, and
//! answer 202 with what became of every event.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{AppState, not_found};
use crate::intake::{PushOutcome, WebhookOutcomeText};
use crate::store::{NewWebhookEvent, WebhookOutcome};
use crate::webhook::{
    IgnoreReason, ParseOptions, ParsedEvent, detect_format, parse_payload, verify_signature,
};

/// Largest body accepted; more is answered 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Serialize)]
struct Answer {
    format: &'static str,
    events: Vec<EventAnswer>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EventAnswer {
    Push(PushOutcome),
    Ignored {
        outcome: &'static str,
        reason: String,
        subject: Option<String>,
    },
}

/// Registries and CI report pushes here. The secret in the path is the credential; a
/// wrong one answers exactly like an unknown path.
#[utoipa::path(post, path = "/webhook/{secret}", tag = "webhook", security(()),
    params(("secret" = String, Path, description = "the webhook secret (see GET /api/settings/webhook)")),
    request_body(content = Object, description = "a registry's own notification format, or `{\"image\": \"host/org/app:tag\"}`"),
    responses((status = 202, body = Object, description = "what became of each event"),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody,
            description = "the signature does not match"),
        (status = 404, body = super::error::ErrorBody), (status = 413, description = "body over 1 MiB")))]
pub(super) async fn receive(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !secret_matches(&state, &secret) {
        return not_found();
    }
    let format = match detect_format(&headers, &body) {
        Ok(format) => format,
        Err(e) => {
            return reject(&state, "unknown", e.status_code(), &e.to_string());
        }
    };
    let signing_secret = match state.store.webhook_signing_secret() {
        Ok(secret) => secret,
        Err(e) => return internal(&e.to_string()),
    };
    if let Err(e) = verify_signature(
        format,
        &headers,
        &body,
        signing_secret.as_deref().map(str::as_bytes),
    ) {
        return reject(
            &state,
            format.as_str(),
            StatusCode::UNAUTHORIZED,
            &e.to_string(),
        );
    }
    let payload = match parse_payload(&headers, &body, &ParseOptions::default()) {
        Ok(payload) => payload,
        Err(e) => {
            return reject(
                &state,
                format.as_str(),
                StatusCode::BAD_REQUEST,
                &e.to_string(),
            );
        }
    };
    let mut events = Vec::new();
    for event in payload.events {
        match event {
            ParsedEvent::Push(push) => match state
                .intake
                .handle_push(format.as_str(), &push.image, push.digest.as_deref())
                .await
            {
                Ok(outcome) => {
                    crate::metrics::webhook_event(match outcome.outcome {
                        WebhookOutcomeText::Deployed => "deployed",
                        WebhookOutcomeText::Ignored => "ignored",
                    });
                    events.push(EventAnswer::Push(outcome));
                }
                Err(e) => {
                    crate::metrics::webhook_event("error");
                    return internal(&e.to_string());
                }
            },
            ParsedEvent::Ignored(ignored) => {
                // Registries send a notification per blob and per pull: not worth a record.
                crate::metrics::webhook_event("ignored");
                if !matches!(
                    ignored.reason,
                    IgnoreReason::Pull | IgnoreReason::LayerPush | IgnoreReason::Ping
                ) {
                    let _ = state.intake.record_ignored(
                        format.as_str(),
                        ignored.subject.as_deref(),
                        None,
                        &ignored.reason.to_string(),
                    );
                }
                events.push(EventAnswer::Ignored {
                    outcome: "ignored",
                    reason: ignored.reason.to_string(),
                    subject: ignored.subject,
                });
            }
        }
    }
    (
        StatusCode::ACCEPTED,
        Json(Answer {
            format: format.as_str(),
            events,
        }),
    )
        .into_response()
}

/// Constant-time comparison with the current secret; no secret set means no webhook.
fn secret_matches(state: &AppState, given: &str) -> bool {
    match state.store.webhook_secret() {
        Ok(Some(secret)) => secret.as_bytes().ct_eq(given.as_bytes()).into(),
        _ => false,
    }
}

/// A request that got past the secret but could not be used: recorded, answered with why.
fn reject(state: &AppState, source: &str, status: StatusCode, reason: &str) -> Response {
    crate::metrics::webhook_event("rejected");
    let _ = state.store.record_webhook_event(&NewWebhookEvent {
        source: source.to_string(),
        outcome: Some(WebhookOutcome::Rejected),
        detail: format!("{}: {reason}", status.as_u16()),
        ..Default::default()
    });
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
