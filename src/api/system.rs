//! Housekeeping routes: received webhook events (why a push did or did not deploy), an
//! on-demand reconciliation, and the Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, FieldErrors};
use super::extract::ApiQuery;
use super::validate;
use crate::store::{InstanceStatus, WebhookEvent};

#[derive(Serialize, ToSchema)]
pub struct WebhookEventView {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    /// The payload format: `distribution`, `gitea`, `github`, `dockerhub`, `generic`, …
    pub source: String,
    pub image: Option<String>,
    pub tag: Option<String>,
    /// `deployed`, `ignored`, `rejected` or `error`.
    pub outcome: String,
    pub detail: String,
    pub project_id: Option<i64>,
    pub stage_id: Option<i64>,
    pub deploy_id: Option<i64>,
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WebhookEventsQuery {
    /// How many, newest first: 1–1000, default 100.
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ReconcileView {
    pub interrupted_deploys: Vec<i64>,
    pub removed_containers: Vec<String>,
    pub vanished_instances: Vec<i64>,
    pub removed_proxy_hosts: Vec<String>,
    /// Domains whose proxy host was missing or pointed elsewhere and was put back.
    pub restored_proxy_hosts: Vec<String>,
    /// What could not be checked or undone (Docker down, proxy unreachable).
    pub problems: Vec<String>,
}

impl From<WebhookEvent> for WebhookEventView {
    fn from(e: WebhookEvent) -> WebhookEventView {
        WebhookEventView {
            id: e.id,
            received_at: e.received_at,
            source: e.source,
            image: e.image,
            tag: e.tag,
            outcome: e.outcome.as_str().into(),
            detail: e.detail,
            project_id: e.project_id,
            stage_id: e.stage_id,
            deploy_id: e.deploy_id,
        }
    }
}

/// Most webhook events one page may hold.
pub const EVENTS_PAGE_MAX: u32 = 1000;

/// Received webhook events, newest first.
#[utoipa::path(get, path = "/webhook-events", tag = "system", params(WebhookEventsQuery),
    responses((status = 200, body = Vec<WebhookEventView>)))]
pub async fn webhook_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<WebhookEventsQuery>,
) -> Result<Json<Vec<WebhookEventView>>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    let mut errors = FieldErrors::new();
    errors.check(
        "limit",
        validate::range(u64::from(limit), 1, u64::from(EVENTS_PAGE_MAX)),
    );
    errors.into_result()?;
    Ok(Json(
        state
            .store
            .list_webhook_events(limit)?
            .into_iter()
            .map(WebhookEventView::from)
            .collect(),
    ))
}

/// Compare the store with Docker and the proxy now, and clean up what does not match
/// (as at start-up).
#[utoipa::path(post, path = "/reconcile", tag = "system",
    responses((status = 200, body = ReconcileView)))]
pub async fn reconcile(State(state): State<AppState>) -> Json<ReconcileView> {
    let report = state.deployer.reconcile().await;
    Json(ReconcileView {
        interrupted_deploys: report.interrupted_deploys,
        removed_containers: report.removed_containers,
        vanished_instances: report.vanished_instances,
        removed_proxy_hosts: report.removed_proxy_hosts,
        restored_proxy_hosts: report.restored_proxy_hosts,
        problems: report.problems,
    })
}

/// Prometheus metrics (text format). Needs a token like the rest of the API: point
/// Prometheus at it with `authorization: { credentials: <API token> }`.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let running = state
        .store
        .list_all_instances()?
        .iter()
        .filter(|i| i.status == InstanceStatus::Running)
        .count();
    crate::metrics::set_running_instances(running);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    ))
}
