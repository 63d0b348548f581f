//! The release workflow's routes: promote a stage's digest to another stage, approve or
//! reject a deploy waiting for approval, and list what waits; plus [`actor_of`], who a
//! signed-in caller is for approvals and the audit log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{AuthVia, Principal};
use super::deploys::{DeployView, view_of};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Path};
use crate::audit::Actor;
use crate::store::{DeployFilter, DeployStatus, Store};
use crate::trigger::RequestOrigin;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    /// The stage (same project) whose running digest to deploy here.
    pub from_stage_id: i64,
    /// Start even outside this stage's deploy windows.
    #[serde(default)]
    pub outside_window: bool,
}

/// Who the caller is: a user (UI or a session bearer) or a named API token.
pub fn actor_of(store: &Store, principal: &Principal) -> Result<Actor, ApiError> {
    if let AuthVia::ApiToken { token_hash } = &principal.via {
        let name = store
            .api_token_name(token_hash)?
            .unwrap_or_else(|| format!("#{}", principal.user_id));
        return Ok(Actor::token(name));
    }
    Ok(Actor::user(store.get_user(principal.user_id)?.username))
}

/// The request's origin as the deployer needs it.
pub fn origin_of(
    state: &AppState,
    principal: &Principal,
    outside_window: bool,
) -> Result<RequestOrigin, ApiError> {
    Ok(RequestOrigin {
        actor: Some(actor_of(&state.store, principal)?),
        promoted_from: None,
        outside_window,
    })
}

/// Deploy to this stage exactly what `from_stage_id` runs: its tag, pulled by its digest
/// (so a tag pushed again since does not change what arrives). Approvals and windows of
/// this stage apply.
#[utoipa::path(post, path = "/stages/{id}/promote", tag = "release", params(("id" = i64, Path, description = "the stage to promote to")),
    request_body = PromoteBody,
    responses((status = 202, body = DeployView, description = "requested"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the source stage runs nothing, or belongs to another project")))]
pub async fn promote(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(stage_id): Path<i64>,
    ApiJson(body): ApiJson<PromoteBody>,
) -> Result<(StatusCode, Json<DeployView>), ApiError> {
    state.store.get_stage(stage_id)?;
    let origin = origin_of(&state, &principal, body.outside_window)?;
    let id = state
        .deployer
        .promote(stage_id, body.from_stage_id, origin)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(view_of(&state.store, state.store.get_deploy(id)?)),
    ))
}

/// Approve a deploy waiting for approval. Once the stage's `approvals_required` distinct
/// users or tokens approved it, it goes on.
#[utoipa::path(post, path = "/deploys/{id}/approve", tag = "release", params(("id" = i64, Path)),
    responses((status = 200, body = DeployView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the deploy does not wait for approval")))]
pub async fn approve(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<DeployView>, ApiError> {
    let actor = actor_of(&state.store, &principal)?;
    let deploy = state.deployer.approve(id, &actor).await?;
    Ok(Json(view_of(&state.store, deploy)))
}

/// Reject a deploy waiting for approval: it never runs.
#[utoipa::path(post, path = "/deploys/{id}/reject", tag = "release", params(("id" = i64, Path)),
    responses((status = 200, body = DeployView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the deploy does not wait for approval")))]
pub async fn reject(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<DeployView>, ApiError> {
    let actor = actor_of(&state.store, &principal)?;
    let deploy = state.deployer.reject(id, &actor).await?;
    Ok(Json(view_of(&state.store, deploy)))
}

/// Deploys waiting for approval or for a deploy window, oldest first.
#[utoipa::path(get, path = "/deploys/waiting", tag = "release",
    responses((status = 200, body = Vec<DeployView>)))]
pub async fn waiting(State(state): State<AppState>) -> Result<Json<Vec<DeployView>>, ApiError> {
    let mut deploys = Vec::new();
    for status in [DeployStatus::AwaitingApproval, DeployStatus::Scheduled] {
        deploys.extend(state.store.list_deploys(&DeployFilter {
            status: Some(status),
            limit: 500,
            ..Default::default()
        })?);
    }
    deploys.sort_by_key(|d| d.id);
    Ok(Json(
        deploys
            .into_iter()
            .map(|d| view_of(&state.store, d))
            .collect(),
    ))
}
