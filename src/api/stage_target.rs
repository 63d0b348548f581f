//! A stage's target (`target` in the stage's body and view: `container`, or `swarm` with
//! replicas, placement constraints and update pace) and a swarm stage's service:
//! `GET /api/stages/{id}/service`, `POST …/service/scale` (0 stops it), `POST
//! …/service/remove`.
//!
//! Saving a swarm target asks the Docker Engine whether it is a swarm manager and refuses
//! (422 on `target.kind`, with what to do) when it is not, so a stage never waits for a
//! deploy to say so.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody, FieldErrors};
use super::extract::{ApiJson, Path};
use super::validate;
use crate::docker::{ServiceInfo, TaskInfo};
use crate::store::{StageTarget, Store, SwarmTarget};

/// Where a stage runs.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetView {
    /// `container` (one container per deployed tag) or `swarm` (one Swarm service).
    pub kind: String,
    /// Swarm: tasks the service runs (1 to 100).
    pub replicas: u32,
    /// Swarm: placement constraints, e.g. `node.role==worker`.
    pub constraints: Vec<String>,
    /// Swarm: tasks updated at once; 0 for all at once.
    pub update_parallelism: u32,
    /// Swarm: pause between batches of an update, in milliseconds.
    pub update_delay_ms: u32,
}

/// A stage's target as sent: fields left out take their defaults (1 replica, no
/// constraints, one task at a time, no delay).
#[derive(Deserialize, ToSchema, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    /// `container` or `swarm`.
    pub kind: String,
    pub replicas: Option<u32>,
    pub constraints: Option<Vec<String>>,
    pub update_parallelism: Option<u32>,
    pub update_delay_ms: Option<u32>,
}

/// The view of a stored target.
pub fn view(target: &StageTarget) -> TargetView {
    let swarm = target.swarm().cloned().unwrap_or_default();
    TargetView {
        kind: match target {
            StageTarget::Container => "container",
            StageTarget::Swarm(_) => "swarm",
        }
        .into(),
        replicas: swarm.replicas,
        constraints: swarm.constraints,
        update_parallelism: swarm.update_parallelism,
        update_delay_ms: swarm.update_delay_ms,
    }
}

/// The stage's target view, read from the store (a stage without a row: container).
pub fn view_of(store: &Store, stage_id: i64) -> TargetView {
    view(&store.stage_target(stage_id).unwrap_or_default())
}

/// Checks a target body, recording bad fields under `target.…`.
fn check(errors: &mut FieldErrors, body: &TargetBody) -> Option<StageTarget> {
    match body.kind.as_str() {
        "container" => return Some(StageTarget::Container),
        "swarm" => {}
        _ => {
            errors.add("target.kind", "must be container or swarm");
            return None;
        }
    }
    let defaults = SwarmTarget::default();
    let replicas = body.replicas.unwrap_or(defaults.replicas);
    errors.check(
        "target.replicas",
        validate::range(u64::from(replicas), 1, 100),
    );
    let parallelism = body
        .update_parallelism
        .unwrap_or(defaults.update_parallelism);
    errors.check(
        "target.update_parallelism",
        validate::range(u64::from(parallelism), 0, 100),
    );
    let delay = body.update_delay_ms.unwrap_or(defaults.update_delay_ms);
    errors.check(
        "target.update_delay_ms",
        validate::range(u64::from(delay), 0, 3_600_000),
    );
    let constraints = body.constraints.clone().unwrap_or_default();
    if constraints.len() > 20 {
        errors.add("target.constraints", "at most 20 constraints");
    }
    for (i, constraint) in constraints.iter().enumerate() {
        if let Err(reason) = check_constraint(constraint) {
            errors.add(format!("target.constraints[{i}]"), reason);
        }
    }
    Some(StageTarget::Swarm(SwarmTarget {
        replicas,
        constraints,
        update_parallelism: parallelism,
        update_delay_ms: delay,
    }))
}

/// `key==value` or `key!=value`, as `docker service create --constraint` takes them.
fn check_constraint(constraint: &str) -> Result<(), String> {
    let (key, value) = constraint
        .split_once("==")
        .or_else(|| constraint.split_once("!="))
        .ok_or("write a constraint as key==value or key!=value, e.g. node.role==worker")?;
    let (key, value) = (key.trim(), value.trim());
    let printable = |s: &str| {
        !s.is_empty()
            && s.len() <= 200
            && s.chars()
                .all(|c| c.is_ascii_graphic() && c != '=' && c != '!')
    };
    if !printable(key) || !printable(value) {
        return Err(
            "a constraint's key and value are non-empty, without spaces, = or ! (e.g. node.labels.zone==a)"
                .into(),
        );
    }
    Ok(())
}

/// The last step of a stage body's validation: checks its target (if it names one) with
/// the `errors` found so far, answers 422 with all of them, then refuses a swarm target
/// the engine cannot run. What the stage's target becomes, when the body sets one.
pub async fn checked(
    state: &AppState,
    mut errors: FieldErrors,
    body: Option<&TargetBody>,
) -> Result<Option<StageTarget>, ApiError> {
    let target = body.and_then(|t| check(&mut errors, t));
    errors.into_result()?;
    if let Some(target) = &target {
        require_manager(state, target).await?;
    }
    Ok(target)
}

/// Refuses a swarm target when the engine is not a swarm manager (422 on `target.kind`).
async fn require_manager(state: &AppState, target: &StageTarget) -> Result<(), ApiError> {
    if matches!(target, StageTarget::Container) {
        return Ok(());
    }
    match state.deployer.swarm_problem().await {
        None => Ok(()),
        Some(reason) => Err(FieldErrors::single("target.kind", reason)),
    }
}

/// A swarm stage's service as it runs now.
#[derive(Serialize, ToSchema)]
pub struct ServiceView {
    /// The service's name (`dw-<project>-<stage>`).
    pub name: String,
    /// Whether the service exists (it is made by the stage's first deploy).
    pub exists: bool,
    /// The image of its current spec, pinned by digest.
    pub image: Option<String>,
    pub replicas: u64,
    /// Its last update's state: `updating`, `paused`, `completed`, `rollback_started`,
    /// `rollback_paused` or `rollback_completed`.
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    pub tasks: Vec<TaskView>,
}

/// One task of the service.
#[derive(Serialize, ToSchema)]
pub struct TaskView {
    pub slot: Option<i64>,
    pub image: String,
    /// `running`, `starting`, `failed`, `shutdown`, …
    pub state: String,
    pub desired_state: String,
    pub message: String,
    pub error: Option<String>,
    /// `host:port` where the task's published port is reached, if it publishes one.
    pub address: Option<String>,
}

fn service_view(name: String, service: Option<ServiceInfo>, tasks: Vec<TaskInfo>) -> ServiceView {
    ServiceView {
        name,
        exists: service.is_some(),
        image: service.as_ref().map(|s| s.image.clone()),
        replicas: service.as_ref().map_or(0, |s| s.replicas),
        update_state: service
            .as_ref()
            .and_then(|s| s.update.as_ref())
            .map(|u| u.state.to_string()),
        update_message: service
            .as_ref()
            .and_then(|s| s.update.as_ref())
            .map(|u| u.message.clone()),
        tasks: tasks
            .into_iter()
            .map(|t| TaskView {
                address: t
                    .ports
                    .values()
                    .next()
                    .map(|port| format!("{}:{port}", t.host)),
                slot: t.slot,
                image: t.image,
                state: t.state,
                desired_state: t.desired_state,
                message: t.message,
                error: t.error,
            })
            .collect(),
    }
}

/// A swarm stage's service and its tasks.
#[utoipa::path(get, path = "/stages/{id}/service", tag = "stages", params(("id" = i64, Path, description = "stage id")),
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not a swarm stage, or the engine is not a swarm manager"),
        (status = 502, body = ErrorBody, description = "Docker failed")))]
pub async fn get_service(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<ServiceView>, ApiError> {
    let view = state.deployer.service_view(id).await?;
    Ok(Json(service_view(view.name, view.service, view.tasks)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleBody {
    /// Tasks to run: 0 stops the service (it stays, with its spec), up to 100.
    pub replicas: u32,
}

/// Scales a swarm stage's service; 0 stops every task (`stop`).
#[utoipa::path(post, path = "/stages/{id}/service/scale", tag = "stages", params(("id" = i64, Path, description = "stage id")),
    request_body = ScaleBody,
    responses((status = 204, description = "Swarm is scaling the service"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not a swarm stage, the engine is not a swarm manager, or no service yet"),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody, description = "Docker failed")))]
pub async fn scale_service(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ScaleBody>,
) -> Result<StatusCode, ApiError> {
    let mut errors = FieldErrors::new();
    errors.check(
        "replicas",
        validate::range(u64::from(body.replicas), 0, 100),
    );
    errors.into_result()?;
    state.store.get_stage(id)?;
    service_exists(&state, id).await?;
    state
        .deployer
        .scale_service(id, u64::from(body.replicas))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a swarm stage's service (its tasks stop) and the stage domain's route; the
/// next deploy creates it again.
#[utoipa::path(post, path = "/stages/{id}/service/remove", tag = "stages", params(("id" = i64, Path, description = "stage id")),
    responses((status = 204, description = "removed (or there was none)"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not a swarm stage, or the engine is not a swarm manager"),
        (status = 502, body = ErrorBody, description = "Docker failed")))]
pub async fn remove_service(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.store.get_stage(id)?;
    state.deployer.remove_service(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn service_exists(state: &AppState, id: i64) -> Result<(), ApiError> {
    let view = state.deployer.service_view(id).await?;
    if view.service.is_none() {
        return Err(ApiError::Conflict(format!(
            "the stage has no service {} yet: deploy it first",
            view.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swarm_target_takes_defaults_and_checks_each_field() {
        let mut errors = FieldErrors::new();
        let target = check(
            &mut errors,
            &TargetBody {
                kind: "swarm".into(),
                replicas: Some(2),
                ..TargetBody::default()
            },
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            target,
            Some(StageTarget::Swarm(SwarmTarget {
                replicas: 2,
                ..SwarmTarget::default()
            }))
        );
        let mut errors = FieldErrors::new();
        check(
            &mut errors,
            &TargetBody {
                kind: "swarm".into(),
                replicas: Some(0),
                constraints: Some(vec!["node.role = worker".into(), "zone".into()]),
                ..TargetBody::default()
            },
        );
        let fields: Vec<&str> = errors.fields().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "target.constraints[0]",
                "target.constraints[1]",
                "target.replicas"
            ]
        );
        let mut errors = FieldErrors::new();
        check(
            &mut errors,
            &TargetBody {
                kind: "kubernetes".into(),
                ..TargetBody::default()
            },
        );
        assert!(errors.fields().contains_key("target.kind"));
    }

    #[test]
    fn constraints_are_docker_s_key_op_value() {
        assert!(check_constraint("node.role==worker").is_ok());
        assert!(check_constraint("node.labels.zone!=b").is_ok());
        assert!(check_constraint("node.role").is_err());
        assert!(check_constraint("==worker").is_err());
    }
}
