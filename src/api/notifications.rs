//! `/api/notifications`: where deploy outcomes are sent. A target's URL often carries a
//! token (Slack, Discord, ntfy topics), so it is write-only: answers show `has_url`.

use axum::Json;
use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, FieldErrors};
use super::extract::ApiJson;
use super::{AppState, validate};
use crate::store::{
    NewNotificationTarget, NotificationKind, NotificationTarget, NotificationTargetUpdate,
};

#[derive(Serialize, ToSchema)]
pub struct NotificationTargetView {
    pub id: i64,
    pub name: String,
    /// `webhook`, `slack`, `discord` or `ntfy`.
    pub kind: String,
    /// Always true: the URL is stored sealed and never shown.
    pub has_url: bool,
    pub on_success: bool,
    pub on_failure: bool,
    pub on_rollback: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotificationBody {
    pub name: String,
    pub kind: String,
    /// Write-only.
    pub url: String,
    pub on_success: Option<bool>,
    pub on_failure: Option<bool>,
    pub on_rollback: Option<bool>,
}

/// Fields left out keep their value.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NotificationChanges {
    pub name: Option<String>,
    pub kind: Option<String>,
    /// Write-only.
    pub url: Option<String>,
    pub on_success: Option<bool>,
    pub on_failure: Option<bool>,
    pub on_rollback: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct TestAnswer {
    pub ok: bool,
    pub message: String,
}

impl From<NotificationTarget> for NotificationTargetView {
    fn from(t: NotificationTarget) -> NotificationTargetView {
        NotificationTargetView {
            id: t.id,
            name: t.name,
            kind: t.kind.as_str().into(),
            has_url: true,
            on_success: t.on_success,
            on_failure: t.on_failure,
            on_rollback: t.on_rollback,
            created_at: t.created_at,
        }
    }
}

#[utoipa::path(get, path = "/notifications", tag = "notifications",
    responses((status = 200, body = Vec<NotificationTargetView>)))]
pub async fn list(
    State(state): State<AppState>,
) -> Result<Json<Vec<NotificationTargetView>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_notification_targets()?
            .into_iter()
            .map(NotificationTargetView::from)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/notifications", tag = "notifications", request_body = NewNotificationBody,
    responses((status = 201, body = NotificationTargetView), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewNotificationBody>,
) -> Result<(StatusCode, Json<NotificationTargetView>), ApiError> {
    let mut errors = FieldErrors::new();
    errors.check("name", validate::dns_name(&body.name));
    let kind = errors.check("kind", body.kind.parse::<NotificationKind>());
    errors.check("url", validate::http_url(&body.url));
    errors.into_result()?;
    let created = state
        .store
        .create_notification_target(&NewNotificationTarget {
            name: body.name,
            kind: kind.unwrap_or(NotificationKind::Webhook),
            url: body.url,
            on_success: body.on_success.unwrap_or(true),
            on_failure: body.on_failure.unwrap_or(true),
            on_rollback: body.on_rollback.unwrap_or(true),
        })?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/notifications/{id}", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 200, body = NotificationTargetView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<NotificationTargetView>, ApiError> {
    Ok(Json(state.store.get_notification_target(id)?.into()))
}

#[utoipa::path(put, path = "/notifications/{id}", tag = "notifications", params(("id" = i64, Path)),
    request_body = NotificationChanges,
    responses((status = 200, body = NotificationTargetView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<NotificationChanges>,
) -> Result<Json<NotificationTargetView>, ApiError> {
    state.store.get_notification_target(id)?;
    let mut errors = FieldErrors::new();
    if let Some(name) = &body.name {
        errors.check("name", validate::dns_name(name));
    }
    let kind = body
        .kind
        .as_deref()
        .and_then(|k| errors.check("kind", k.parse::<NotificationKind>()));
    if let Some(url) = &body.url {
        errors.check("url", validate::http_url(url));
    }
    errors.into_result()?;
    let updated = state.store.update_notification_target(
        id,
        &NotificationTargetUpdate {
            name: body.name,
            kind,
            url: body.url,
            on_success: body.on_success,
            on_failure: body.on_failure,
            on_rollback: body.on_rollback,
        },
    )?;
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/notifications/{id}", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_notification_target(id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a sample notification now and say whether the target took it.
#[utoipa::path(post, path = "/notifications/{id}/test", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 200, body = TestAnswer, description = "`ok` false carries the reason"),
        (status = 404, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<TestAnswer>, ApiError> {
    state.store.get_notification_target(id)?;
    Ok(Json(match state.notifier.send_test(id).await {
        Ok(()) => TestAnswer {
            ok: true,
            message: "sent; the target accepted it".into(),
        },
        Err(e) => TestAnswer {
            ok: false,
            message: e,
        },
    }))
}
