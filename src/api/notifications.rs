//! `/api/notifications`: where events are sent. A target is one URL (plain https for
//! webhooks, or a shoutrrr-style URL such as `telegram://…`, `smtp://…`), which carries
//! its credentials, so it is write-only: answers show `has_url`. Also template previews,
//! delivery status and test sends.

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
use crate::notify::{Destination, EventKind, Notification, template};
use crate::store::{
    NewNotificationTarget, NotificationKind, NotificationTarget, NotificationTargetUpdate,
    TargetFilter, Templates,
};

#[derive(Serialize, ToSchema)]
pub struct NotificationTargetView {
    pub id: i64,
    pub name: String,
    /// `webhook`, `slack`, `discord`, `ntfy`, `telegram`, `gotify`, `email`, `matrix`,
    /// `pushover`, `teams` or `apprise`.
    pub kind: String,
    /// Always true: the URL is stored sealed and never shown.
    pub has_url: bool,
    /// `success`, `failure`, `rollback`, `approval_needed`, `poll_error`.
    pub events: Vec<String>,
    /// Only these projects (empty: all).
    pub projects: Vec<String>,
    /// Only these stages (empty: all).
    pub stages: Vec<String>,
    /// Poll errors are sent when a stage fails this many polls in a row.
    pub poll_error_threshold: u32,
    pub title_template: Option<String>,
    pub body_template: Option<String>,
    pub delivery: DeliveryView,
    pub created_at: DateTime<Utc>,
}

/// How sending to the target went lately.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last attempt's error; null when it succeeded.
    pub last_error: Option<String>,
    /// Messages waiting in the outbox for this target.
    pub pending: u32,
}

/// A new target. Projects-as-code files carry targets in this same shape.
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NewNotificationBody {
    pub name: String,
    /// Write-only. An http(s) URL (a webhook of `kind`) or a service URL:
    /// `telegram://TOKEN@telegram?chats=…`, `gotify://host/TOKEN`,
    /// `smtp://user:pass@host:587/?from=…&to=…`, `matrix://:TOKEN@host/?rooms=!id:server`,
    /// `pushover://shoutrrr:TOKEN@USER/`, `teams+https://…`, `apprise+https://host/notify/KEY`.
    pub url: String,
    /// For a plain http(s) URL: `webhook` (default), `slack`, `discord`, `ntfy` or `teams`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Default: success, failure, rollback, approval_needed.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub projects: Option<Vec<String>>,
    #[serde(default)]
    pub stages: Option<Vec<String>>,
    /// Default 3.
    #[serde(default)]
    pub poll_error_threshold: Option<u32>,
    /// A minijinja template; empty or absent: the default.
    #[serde(default)]
    pub title_template: Option<String>,
    #[serde(default)]
    pub body_template: Option<String>,
}

/// Fields left out keep their value; an empty template goes back to the default.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NotificationChanges {
    pub name: Option<String>,
    pub kind: Option<String>,
    /// Write-only.
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub projects: Option<Vec<String>>,
    pub stages: Option<Vec<String>>,
    pub poll_error_threshold: Option<u32>,
    pub title_template: Option<String>,
    pub body_template: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TestAnswer {
    pub ok: bool,
    pub message: String,
}

/// Templates to try on a sample event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub title_template: Option<String>,
    pub body_template: Option<String>,
    /// The sample event; default `rollback` (every field set).
    pub event: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewAnswer {
    pub title: String,
    pub body: String,
}

impl From<NotificationTarget> for NotificationTargetView {
    fn from(t: NotificationTarget) -> NotificationTargetView {
        NotificationTargetView {
            id: t.id,
            name: t.name,
            kind: t.kind.as_str().into(),
            has_url: true,
            events: t
                .filter
                .events
                .iter()
                .map(|e| e.as_str().to_string())
                .collect(),
            projects: t.filter.projects,
            stages: t.filter.stages,
            poll_error_threshold: t.filter.poll_error_threshold,
            title_template: t.templates.title,
            body_template: t.templates.body,
            delivery: DeliveryView {
                last_attempt_at: t.status.last_attempt_at,
                last_success_at: t.status.last_success_at,
                last_error: t.status.last_error,
                pending: t.status.pending,
            },
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

/// Checks a new target and turns it into what the store takes (the URL made canonical).
pub fn check_new(body: NewNotificationBody) -> Result<NewNotificationTarget, ApiError> {
    let mut errors = FieldErrors::new();
    errors.check("name", validate::dns_name(&body.name));
    let destination = check_destination(&mut errors, &body.url, body.kind.as_deref());
    let defaults = TargetFilter::default();
    let filter = check_filter(
        &mut errors,
        body.events,
        body.projects,
        body.stages,
        body.poll_error_threshold,
        &defaults,
    );
    let templates = check_templates(&mut errors, body.title_template, body.body_template);
    errors.into_result()?;
    let destination = destination.ok_or_else(|| FieldErrors::single("url", "is not valid"))?;
    Ok(NewNotificationTarget {
        name: body.name,
        kind: destination.kind(),
        url: destination.to_url(),
        filter,
        templates,
    })
}

#[utoipa::path(post, path = "/notifications", tag = "notifications", request_body = NewNotificationBody,
    responses((status = 201, body = NotificationTargetView), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewNotificationBody>,
) -> Result<(StatusCode, Json<NotificationTargetView>), ApiError> {
    let new = check_new(body)?;
    let created = state.store.create_notification_target(&new)?;
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
    let current = state.store.get_notification_target(id)?;
    let mut errors = FieldErrors::new();
    if let Some(name) = &body.name {
        errors.check("name", validate::dns_name(name));
    }
    // A new kind alone re-reads the stored URL with it (a webhook URL becomes Slack's, …).
    let url = match (&body.url, &body.kind) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(_)) => {
            let stored = state.store.notification_url(id)?;
            Some(match Destination::parse(&stored, Some(current.kind)) {
                Ok(Destination::Http { url, .. }) => url,
                _ => stored,
            })
        }
        (None, None) => None,
    };
    let destination = url
        .as_deref()
        .and_then(|url| check_destination(&mut errors, url, body.kind.as_deref()));
    let filter_given = body.events.is_some()
        || body.projects.is_some()
        || body.stages.is_some()
        || body.poll_error_threshold.is_some();
    let filter = check_filter(
        &mut errors,
        body.events,
        body.projects,
        body.stages,
        body.poll_error_threshold,
        &current.filter,
    );
    let templates_given = body.title_template.is_some() || body.body_template.is_some();
    let templates = check_templates(
        &mut errors,
        body.title_template.or(current.templates.title),
        body.body_template.or(current.templates.body),
    );
    errors.into_result()?;
    let updated = state.store.update_notification_target(
        id,
        &NotificationTargetUpdate {
            name: body.name,
            kind: destination.as_ref().map(Destination::kind),
            url: destination.as_ref().map(Destination::to_url),
            filter: filter_given.then_some(filter),
            templates: templates_given.then_some(templates),
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

/// Render templates (or the defaults) for a sample event, as a target would send them.
#[utoipa::path(post, path = "/notifications/preview", tag = "notifications", request_body = PreviewRequest,
    responses((status = 200, body = PreviewAnswer), (status = 422, body = ErrorBody)))]
pub async fn preview(
    ApiJson(body): ApiJson<PreviewRequest>,
) -> Result<Json<PreviewAnswer>, ApiError> {
    let mut errors = FieldErrors::new();
    let event = match body.event.as_deref() {
        Some(e) => errors.check("event", e.parse::<EventKind>()),
        None => Some(EventKind::Rollback),
    };
    let templates = check_templates(&mut errors, body.title_template, body.body_template);
    errors.into_result()?;
    let sample = Notification::sample(event.unwrap_or(EventKind::Rollback));
    let text = template::render(
        templates.title.as_deref(),
        templates.body.as_deref(),
        &sample,
    )
    .map_err(|e| FieldErrors::single("body_template", e))?;
    Ok(Json(PreviewAnswer {
        title: text.title,
        body: text.body,
    }))
}

fn check_destination(
    errors: &mut FieldErrors,
    url: &str,
    kind: Option<&str>,
) -> Option<Destination> {
    let kind = kind.map(|k| errors.check("kind", k.parse::<NotificationKind>()));
    errors.check("url", validate::url_text(url))?;
    let destination = errors.check("url", Destination::parse(url, kind.flatten()))?;
    let kind = match kind {
        Some(None) => return None,
        Some(Some(kind)) => Some(kind),
        None => None,
    };
    if let Some(kind) = kind
        && kind != destination.kind()
    {
        errors.add(
            "kind",
            format!("the URL is a {} target, not {kind}", destination.kind()),
        );
        return None;
    }
    Some(destination)
}

fn check_filter(
    errors: &mut FieldErrors,
    events: Option<Vec<String>>,
    projects: Option<Vec<String>>,
    stages: Option<Vec<String>>,
    threshold: Option<u32>,
    current: &TargetFilter,
) -> TargetFilter {
    let events = match events {
        Some(events) => {
            let mut kinds = Vec::new();
            for e in events {
                if let Some(kind) = errors.check("events", e.parse::<EventKind>())
                    && !kinds.contains(&kind)
                {
                    kinds.push(kind);
                }
            }
            kinds
        }
        None => current.events.clone(),
    };
    for (field, names) in [("projects", &projects), ("stages", &stages)] {
        for name in names.iter().flatten() {
            errors.check(
                field,
                validate::dns_name(name).map_err(|e| format!("{name:?} {e}")),
            );
        }
    }
    if let Some(t) = threshold
        && !(1..=1000).contains(&t)
    {
        errors.add("poll_error_threshold", "must be between 1 and 1000");
    }
    TargetFilter {
        events,
        projects: projects.unwrap_or_else(|| current.projects.clone()),
        stages: stages.unwrap_or_else(|| current.stages.clone()),
        poll_error_threshold: threshold.unwrap_or(current.poll_error_threshold),
    }
}

fn check_templates(
    errors: &mut FieldErrors,
    title: Option<String>,
    body: Option<String>,
) -> Templates {
    let title = title.filter(|t| !t.trim().is_empty());
    let body = body.filter(|t| !t.trim().is_empty());
    for (field, source) in [("title_template", &title), ("body_template", &body)] {
        if let Some(source) = source {
            errors.check(field, template::validate(source));
        }
    }
    Templates { title, body }
}
