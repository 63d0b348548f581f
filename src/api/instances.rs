//! Instances: the containers of a stage, and the hands-on operations on one (stop, start,
//! remove with its container and proxy hosts).

use axum::Json;
use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::store::Instance;

#[derive(Serialize, ToSchema)]
pub struct InstanceView {
    pub id: i64,
    pub stage_id: i64,
    pub deploy_id: Option<i64>,
    pub tag: String,
    pub digest: Option<String>,
    pub container_id: Option<String>,
    pub container_name: String,
    /// `host:port` the proxy forwards to.
    pub upstream: Option<String>,
    pub subdomains: Vec<String>,
    pub proxy_hosts: Vec<String>,
    /// `starting`, `running`, `stopping` (retired, its container stopping in the
    /// background), `stopped`, `failed` or `removing`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Instance> for InstanceView {
    fn from(i: Instance) -> InstanceView {
        InstanceView {
            id: i.id,
            stage_id: i.stage_id,
            deploy_id: i.deploy_id,
            tag: i.tag,
            digest: i.digest,
            container_id: i.container_id,
            container_name: i.container_name,
            upstream: i.upstream,
            subdomains: i.subdomains,
            proxy_hosts: i.proxy_hosts,
            status: i.status.as_str().into(),
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// Every instance of every stage, oldest first.
#[utoipa::path(get, path = "/instances", tag = "instances",
    responses((status = 200, body = Vec<InstanceView>)))]
pub async fn list_all(State(state): State<AppState>) -> Result<Json<Vec<InstanceView>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_all_instances()?
            .into_iter()
            .map(InstanceView::from)
            .collect(),
    ))
}

/// The stage's instances, oldest first (the order retirement uses).
#[utoipa::path(get, path = "/stages/{id}/instances", tag = "instances", params(("id" = i64, Path, description = "stage id")),
    responses((status = 200, body = Vec<InstanceView>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Path(stage_id): Path<i64>,
) -> Result<Json<Vec<InstanceView>>, ApiError> {
    state.store.get_stage(stage_id)?;
    Ok(Json(
        state
            .store
            .list_instances(stage_id)?
            .into_iter()
            .map(InstanceView::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/instances/{id}", tag = "instances", params(("id" = i64, Path)),
    responses((status = 200, body = InstanceView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<InstanceView>, ApiError> {
    Ok(Json(state.store.get_instance(id)?.into()))
}

/// Stops the container (it keeps its routes; start brings it back). An instance whose
/// container was removed outside docker-watcher answers 409 and is marked `failed`.
#[utoipa::path(post, path = "/instances/{id}/stop", tag = "instances", params(("id" = i64, Path)),
    responses((status = 200, body = InstanceView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<InstanceView>, ApiError> {
    state.deployer.stop_instance(id).await?;
    Ok(Json(state.store.get_instance(id)?.into()))
}

/// Starts a stopped container; a container removed outside docker-watcher answers 409
/// (and the instance is marked `failed`), as for stop.
#[utoipa::path(post, path = "/instances/{id}/start", tag = "instances", params(("id" = i64, Path)),
    responses((status = 200, body = InstanceView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<InstanceView>, ApiError> {
    state.deployer.start_instance(id).await?;
    Ok(Json(state.store.get_instance(id)?.into()))
}

/// Removes the instance with its container and proxy hosts.
#[utoipa::path(delete, path = "/instances/{id}", tag = "instances", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.deployer.remove_instance(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
