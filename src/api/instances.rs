//! Instances: the containers of a stage, and the hands-on operations on one (stop, start,
//! remove with its container and proxy hosts), and its container's output, live.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody, FieldErrors};
use super::events::{SseEvent, StreamLimits, holding, json_event, too_many};
use super::extract::{ApiQuery, Path};
use super::validate;
use crate::docker::{ContainerId, EngineError, LogLine};
use crate::store::Instance;

/// Lines of backlog a log stream sends when `tail` is not given.
pub const LOG_TAIL_DEFAULT: u32 = 200;
/// The most lines of backlog a log stream sends.
pub const LOG_TAIL_MAX: u32 = 5000;

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

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContainerLogQuery {
    /// Lines of backlog, 0–5000; default 200.
    pub tail: Option<u32>,
    /// Keep the stream open and send new lines as the container writes them, until it
    /// stops; default false (the backlog, then `end`).
    pub follow: Option<bool>,
}

/// One line of a container's output, as the stream sends it.
#[derive(Serialize, ToSchema)]
pub struct ContainerLogLine {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When Docker received the line.
    pub at: Option<DateTime<Utc>>,
    /// The line without its newline; lines over 8 KiB are cut and end with `…`.
    pub text: String,
}

/// Why a container log stream ended, its last event.
#[derive(Serialize, ToSchema)]
pub struct ContainerLogEnd {
    /// `done` (the backlog was sent, or the container stopped) or `error`.
    pub reason: String,
    pub error: Option<String>,
}

/// The container's output: `line` events (the last `tail` lines, then with `follow` each
/// new one as it is written), and an `end` event when the container stops or the backlog
/// is sent. An instance without a container, or whose container was removed outside
/// docker-watcher, answers 409.
#[utoipa::path(get, path = "/instances/{id}/logs", tag = "instances",
    params(("id" = i64, Path), ContainerLogQuery),
    responses(
        (status = 200, content_type = "text/event-stream", body = SseEvent,
            description = "events `line` (ContainerLogLine) and `end` (ContainerLogEnd)"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many event streams open"),
        (status = 502, body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<StreamLimits>>,
    Path(id): Path<i64>,
    ApiQuery(query): ApiQuery<ContainerLogQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tail = query.tail.unwrap_or(LOG_TAIL_DEFAULT);
    let mut errors = FieldErrors::new();
    errors.check(
        "tail",
        validate::range(u64::from(tail), 0, u64::from(LOG_TAIL_MAX)),
    );
    errors.into_result()?;
    let instance = state.store.get_instance(id)?;
    let Some(container) = instance.container_id else {
        return Err(ApiError::Conflict(format!(
            "instance {id} has no container (yet): its deploy did not create one"
        )));
    };
    let slot = match limits.acquire(&headers) {
        Ok(slot) => slot,
        Err(reason) => return Ok(too_many(reason)),
    };
    let lines = state
        .engine
        .follow_logs(
            &ContainerId::new(container),
            tail as usize,
            query.follow.unwrap_or(false),
        )
        .await
        .map_err(|e| match e {
            gone @ EngineError::ContainerNotFound { .. } => ApiError::Conflict(gone.to_string()),
            other => ApiError::BadGateway(other.to_string()),
        })?;
    // Lines until the stream ends or fails; then one `end` event saying which.
    let events = futures_util::stream::unfold(Some(lines), |lines| async move {
        let mut lines = lines?;
        Some(match lines.next().await {
            Some(Ok(line)) => (line_event(line), Some(lines)),
            Some(Err(e)) => (end_event("error", Some(e.to_string())), None),
            None => (end_event("done", None), None),
        })
    })
    .map(Ok::<_, Infallible>)
    .take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(holding(slot, Box::pin(events)))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn line_event(line: LogLine) -> Event {
    json_event(
        "line",
        &ContainerLogLine {
            stream: line.source.as_str().into(),
            at: line.at,
            text: line.text,
        },
    )
}

fn end_event(reason: &str, error: Option<String>) -> Event {
    json_event(
        "end",
        &ContainerLogEnd {
            reason: reason.into(),
            error,
        },
    )
}
