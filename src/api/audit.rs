//! The audit log in the API: [`record_changes`], the middleware that writes an entry for
//! every successful change a signed-in caller makes (who, what, and the resource before
//! and after, as its secret-free view), and `GET /api/audit` to read the log.
//!
//! Routes that ask for deploys or decide on them are recorded by the deployer's gate
//! instead (with the deploy they made), so they are skipped here.

use axum::Json;
use axum::body::Body;
use axum::extract::{MatchedPath, State};
use axum::http::{Method, Request};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, ErrorBody, FieldErrors};
use super::extract::ApiQuery;
use super::release::actor_of;
use super::{AppState, validate};
use crate::audit::{self, Target};
use crate::store::{AuditEntry, AuditFilter, Store};

/// Routes the deployer's gate records itself.
const RECORDED_BY_THE_GATE: &[&str] = &[
    "/api/stages/{id}/deploys",
    "/api/stages/{id}/rollback",
    "/api/stages/{id}/promote",
    "/api/deploys/{id}/redeploy",
    "/api/deploys/{id}/approve",
    "/api/deploys/{id}/reject",
];

/// Largest answer body read back to learn a created resource's id.
const ANSWER_LIMIT: usize = 1024 * 1024;

/// Most entries one page may hold.
pub const PAGE_MAX: u32 = 500;

/// Writes an audit entry for every successful state-changing request (see the module).
pub async fn record_changes(
    State(state): State<AppState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let principal = request.extensions().get::<Principal>().cloned();
    let (Some(matched), Some(principal)) = (matched, principal) else {
        return next.run(request).await;
    };
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        || RECORDED_BY_THE_GATE.contains(&matched.as_str())
    {
        return next.run(request).await;
    }
    let call = Call::of(&method, &matched, request.uri().path());
    let before = if call.changes_existing {
        snapshot(&state.store, call.kind, call.id)
    } else {
        None
    };
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, ANSWER_LIMIT)
        .await
        .unwrap_or_default();
    let mut id = call.id;
    if call.action == "create" {
        id = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("id").and_then(serde_json::Value::as_i64));
    }
    let after = if method == Method::DELETE {
        None
    } else {
        snapshot(&state.store, call.kind, id)
    };
    let shown = after.as_ref().or(before.as_ref());
    let name = shown
        .and_then(|v| v.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let project_id = match call.kind {
        "project" => id,
        _ => shown
            .and_then(|v| v.get("project_id"))
            .and_then(serde_json::Value::as_i64),
    };
    match actor_of(&state.store, &principal) {
        Ok(actor) => audit::record_change(
            &state.store,
            &actor,
            &format!("{}.{}", call.kind, call.action),
            Target {
                kind: call.kind,
                id,
                name,
                project_id,
            },
            format!("{method} {matched}"),
            before,
            after,
        ),
        Err(e) => tracing::warn!("cannot name the caller for the audit log: {e}"),
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// What a request does, read from its route: the kind of resource, its id, the action.
struct Call {
    kind: &'static str,
    id: Option<i64>,
    action: String,
    changes_existing: bool,
}

impl Call {
    fn of<'a>(method: &Method, matched: &'a str, path: &'a str) -> Call {
        // The path a nested router sees lacks the `/api` the matched path has.
        let segments = |p: &'a str| -> Vec<&'a str> {
            let p = p.strip_prefix("/api").unwrap_or(p);
            p.trim_start_matches('/').split('/').collect()
        };
        let pattern = segments(matched);
        let actual = segments(path);
        let mut kind = "system";
        let mut id = None;
        for (i, segment) in pattern.iter().enumerate() {
            if *segment == "{id}" {
                id = actual.get(i).and_then(|s| s.parse().ok());
            } else if let Some(k) = kind_of(segment) {
                kind = k;
                if i + 1 == pattern.len() || pattern[i + 1] != "{id}" {
                    // A collection (`/projects/{id}/stages`): a new resource of its kind.
                    id = None;
                }
            }
        }
        let last = pattern.last().copied().unwrap_or_default();
        let (action, changes_existing) = match (method.as_str(), last) {
            ("POST", l) if kind_of(l).is_some() && l != "settings" => ("create".to_string(), false),
            ("PUT" | "PATCH", _) => ("update".to_string(), true),
            ("DELETE", _) => ("delete".to_string(), true),
            (_, l) => (l.replace('-', "_"), true),
        };
        Call {
            kind,
            id,
            action,
            changes_existing,
        }
    }
}

fn kind_of(segment: &str) -> Option<&'static str> {
    Some(match segment {
        "registries" => "registry",
        "projects" => "project",
        "stages" => "stage",
        "instances" => "instance",
        "deploys" => "deploy",
        "notifications" => "notification",
        "settings" => "settings",
        "tokens" => "token",
        "auth" => "auth",
        _ => return None,
    })
}

/// The resource as its API view shows it (never a secret), for before/after.
fn snapshot(store: &Store, kind: &str, id: Option<i64>) -> Option<serde_json::Value> {
    let value = match (kind, id) {
        ("stage", Some(id)) => {
            serde_json::to_value(super::stages::view(store, store.get_stage(id).ok()?))
        }
        ("project", Some(id)) => serde_json::to_value(super::projects::ProjectView::from(
            store.get_project(id).ok()?,
        )),
        ("registry", Some(id)) => serde_json::to_value(super::registries::RegistryView::from(
            store.get_registry(id).ok()?,
        )),
        ("notification", Some(id)) => {
            serde_json::to_value(super::notifications::NotificationTargetView::from(
                store.get_notification_target(id).ok()?,
            ))
        }
        ("settings", _) => {
            serde_json::to_value(super::settings::SettingsView::from(store.settings().ok()?))
        }
        _ => return None,
    };
    value.ok()
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `user`, `token`, `webhook`, `poller`, `system`, or `anonymous` (a failed sign-in).
    pub actor_kind: String,
    /// The username, the token's name, `webhook`/`poller`/`system`, or an anonymous caller's address.
    pub actor: String,
    /// What was done, e.g. `stage.update`, `deploy.approve`, `deploy.finish`.
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<i64>,
    pub target_name: Option<String>,
    pub project_id: Option<i64>,
    pub detail: String,
    /// The resource before the change (its API view).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The resource after the change.
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<i64>,
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// A username, token name, `webhook`, `poller` or `system`.
    pub actor: Option<String>,
    /// An action (`deploy.approve`), or a prefix ending in `.` (`deploy.`).
    pub action: Option<String>,
    /// `deploy`, `stage`, `project`, …
    pub target_kind: Option<String>,
    pub target_id: Option<i64>,
    pub project_id: Option<i64>,
    /// Only entries at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only entries with a smaller id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Page size, 1–500; default 100.
    pub limit: Option<u32>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> AuditEntryView {
        AuditEntryView {
            id: e.id,
            at: e.at,
            actor_kind: e.actor_kind.as_str().into(),
            actor: e.actor,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            target_name: e.target_name,
            project_id: e.project_id,
            detail: e.detail,
            before: e.before,
            after: e.after,
        }
    }
}

/// The audit log, newest first: who did what.
#[utoipa::path(get, path = "/audit", tag = "release", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = query.limit.unwrap_or(100);
    errors.check(
        "limit",
        validate::range(u64::from(limit), 1, u64::from(PAGE_MAX)),
    );
    let since = query.since.as_deref().and_then(|s| {
        errors.check(
            "since",
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| "must be a time like 2026-11-30T02:00:00Z"),
        )
    });
    errors.into_result()?;
    let entries = state.store.list_audit(&AuditFilter {
        actor: query.actor,
        action: query.action,
        target_kind: query.target_kind,
        target_id: query.target_id,
        project_id: query.project_id,
        since,
        before_id: query.before,
        limit,
    })?;
    let next_before = if entries.len() == limit as usize {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next_before,
    }))
}
