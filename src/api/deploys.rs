//! Deploys: the list (filters, paging backwards by id), one deploy, its log, and the
//! operations that make new ones (deploy a tag, redeploy, roll a stage back). Deploys
//! are queued: these answer 202 at once with the new deploy; follow its log stream.

use axum::Json;
use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, ErrorBody, FieldErrors};
use super::extract::{ApiJson, ApiQuery};
use super::release::origin_of;
use super::{AppState, validate};
use crate::image_ref::Tag;
use crate::store::{Deploy, DeployFilter, DeployLogEntry, DeployStatus, Store};

/// Most deploys one page may hold.
pub const PAGE_MAX: u32 = 500;

#[derive(Serialize, ToSchema)]
pub struct DeployView {
    pub id: i64,
    pub project_id: i64,
    pub stage_id: i64,
    pub tag: String,
    pub digest: Option<String>,
    /// `webhook`, `poll`, `manual`, `api` or `promotion`.
    pub trigger: String,
    /// `awaiting_approval` or `scheduled` (waiting, see the release workflow), `pending`,
    /// `pulling`, `starting`, `configuring_proxy`, `health_checking`, then one of the
    /// final `success`, `failed`, `rolled_back`, `superseded`, `rejected`, `expired`.
    pub status: String,
    /// Whether the status is final.
    pub finished: bool,
    /// The step that failed, for `failed` and `rolled_back`.
    pub failed_step: Option<String>,
    pub error: Option<String>,
    pub instance_id: Option<i64>,
    pub detected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// For a promotion: the stage (id and name) and deploy its digest came from.
    pub promoted_from_stage_id: Option<i64>,
    pub promoted_from_stage: Option<String>,
    pub promoted_from_deploy_id: Option<i64>,
    /// For a deploy awaiting approval: when it expires, and who approved it so far.
    pub approval_expires_at: Option<DateTime<Utc>>,
    pub approved_by: Vec<String>,
    /// Approvals its stage needs (0: none).
    pub approvals_required: u32,
    /// A person chose to start it outside the stage's deploy windows.
    pub outside_window: bool,
}

#[derive(Serialize, ToSchema)]
pub struct DeployPage {
    pub deploys: Vec<DeployView>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<i64>,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct LogEntryView {
    pub id: i64,
    pub deploy_id: i64,
    pub at: DateTime<Utc>,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    pub step: String,
    pub message: String,
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeployQuery {
    pub project_id: Option<i64>,
    pub stage_id: Option<i64>,
    /// One status, e.g. `failed`.
    pub status: Option<String>,
    /// Only deploys with a smaller id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Page size, 1–500; default 50.
    pub limit: Option<u32>,
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only entries with a larger id.
    pub after: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployTagBody {
    pub tag: String,
    /// Start even outside the stage's deploy windows.
    #[serde(default)]
    pub outside_window: bool,
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// Start even outside the stage's deploy windows.
    pub outside_window: Option<bool>,
}

impl From<Deploy> for DeployView {
    fn from(d: Deploy) -> DeployView {
        DeployView {
            id: d.id,
            project_id: d.project_id,
            stage_id: d.stage_id,
            tag: d.tag,
            digest: d.digest,
            trigger: d.trigger.as_str().into(),
            status: d.status.as_str().into(),
            finished: d.status.is_final(),
            failed_step: d.failed_step,
            error: d.error,
            instance_id: d.instance_id,
            detected_at: d.detected_at,
            created_at: d.created_at,
            started_at: d.started_at,
            finished_at: d.finished_at,
            promoted_from_stage_id: d.promoted_from_stage_id,
            promoted_from_stage: None,
            promoted_from_deploy_id: d.promoted_from_deploy_id,
            approval_expires_at: d.approval_expires_at,
            approved_by: Vec::new(),
            approvals_required: 0,
            outside_window: d.outside_window,
        }
    }
}

/// The deploy's view with what the release workflow adds from other rows: the source
/// stage's name, and for one awaiting approval its approvers and how many it needs.
pub fn view_of(store: &Store, deploy: Deploy) -> DeployView {
    let awaiting = deploy.status == DeployStatus::AwaitingApproval;
    let id = deploy.id;
    let stage_id = deploy.stage_id;
    let mut view = DeployView::from(deploy);
    if let Some(from) = view.promoted_from_stage_id {
        view.promoted_from_stage = store.get_stage(from).ok().map(|s| s.name);
    }
    if awaiting {
        view.approved_by = store.approvers(id).unwrap_or_default();
        view.approvals_required = store
            .get_stage(stage_id)
            .map(|s| s.release.approvals_required)
            .unwrap_or_default();
    }
    view
}

impl From<DeployLogEntry> for LogEntryView {
    fn from(e: DeployLogEntry) -> LogEntryView {
        LogEntryView {
            id: e.id,
            deploy_id: e.deploy_id,
            at: e.at,
            level: e.level.as_str().into(),
            step: e.step,
            message: e.message,
        }
    }
}

/// Deploys, newest first.
#[utoipa::path(get, path = "/deploys", tag = "deploys", params(DeployQuery),
    responses((status = 200, body = DeployPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeployQuery>,
) -> Result<Json<DeployPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let status = query
        .status
        .as_deref()
        .and_then(|s| errors.check("status", s.parse::<DeployStatus>()));
    let limit = query.limit.unwrap_or(50);
    errors.check(
        "limit",
        validate::range(u64::from(limit), 1, u64::from(PAGE_MAX)),
    );
    errors.into_result()?;
    let deploys = state.store.list_deploys(&DeployFilter {
        project_id: query.project_id,
        stage_id: query.stage_id,
        status,
        before_id: query.before,
        limit,
    })?;
    let next_before = if deploys.len() == limit as usize {
        deploys.last().map(|d| d.id)
    } else {
        None
    };
    Ok(Json(DeployPage {
        deploys: deploys
            .into_iter()
            .map(|d| view_of(&state.store, d))
            .collect(),
        next_before,
    }))
}

#[utoipa::path(get, path = "/deploys/{id}", tag = "deploys", params(("id" = i64, Path)),
    responses((status = 200, body = DeployView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<DeployView>, ApiError> {
    Ok(Json(view_of(&state.store, state.store.get_deploy(id)?)))
}

/// The deploy's log so far, in order (for a live view, use `logs/stream`).
#[utoipa::path(get, path = "/deploys/{id}/logs", tag = "deploys", params(("id" = i64, Path), LogQuery),
    responses((status = 200, body = Vec<LogEntryView>), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Json<Vec<LogEntryView>>, ApiError> {
    state.store.get_deploy(id)?;
    Ok(Json(
        state
            .store
            .deploy_logs(id, query.after.unwrap_or(0))?
            .into_iter()
            .map(LogEntryView::from)
            .collect(),
    ))
}

/// Queue a deploy of `tag` to the stage.
#[utoipa::path(post, path = "/stages/{id}/deploys", tag = "deploys", params(("id" = i64, Path, description = "stage id")),
    request_body = DeployTagBody,
    responses((status = 202, body = DeployView, description = "queued"), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn deploy_tag(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(stage_id): Path<i64>,
    ApiJson(body): ApiJson<DeployTagBody>,
) -> Result<(StatusCode, Json<DeployView>), ApiError> {
    let tag = Tag::parse(&body.tag).map_err(|e| FieldErrors::single("tag", e.to_string()))?;
    state.store.get_stage(stage_id)?;
    let origin = origin_of(&state, &principal, body.outside_window)?;
    let id = state
        .deployer
        .deploy_tag_as(stage_id, tag.as_str(), principal.trigger(), origin)
        .await?;
    queued(&state, id)
}

/// Queue the tag of an earlier deploy again.
#[utoipa::path(post, path = "/deploys/{id}/redeploy", tag = "deploys", params(("id" = i64, Path), WindowQuery),
    responses((status = 202, body = DeployView, description = "queued"), (status = 404, body = ErrorBody)))]
pub async fn redeploy(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<i64>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<(StatusCode, Json<DeployView>), ApiError> {
    let origin = origin_of(&state, &principal, query.outside_window.unwrap_or(false))?;
    let new_id = state
        .deployer
        .redeploy(id, principal.trigger(), origin)
        .await?;
    queued(&state, new_id)
}

/// Queue a deploy of the tag that was live before the current one.
#[utoipa::path(post, path = "/stages/{id}/rollback", tag = "deploys", params(("id" = i64, Path, description = "stage id"), WindowQuery),
    responses((status = 202, body = DeployView, description = "queued"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "no earlier tag to go back to")))]
pub async fn rollback(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(stage_id): Path<i64>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<(StatusCode, Json<DeployView>), ApiError> {
    state.store.get_stage(stage_id)?;
    let origin = origin_of(&state, &principal, query.outside_window.unwrap_or(false))?;
    let id = state
        .deployer
        .roll_back_stage(stage_id, principal.trigger(), origin)
        .await?;
    queued(&state, id)
}

fn queued(state: &AppState, id: i64) -> Result<(StatusCode, Json<DeployView>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(view_of(&state.store, state.store.get_deploy(id)?)),
    ))
}
