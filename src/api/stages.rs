//! Stages of a project (`/api/projects/{id}/stages`, `/api/stages/{id}`): tag pattern
//! (glob and optional semver range), deploy policy, overrides; and each stage's poll state.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, FieldErrors};
use super::extract::{ApiJson, double_option};
use super::projects::{EnvVarBody, EnvVarView, check_env};
use super::stage_release::{self, ReleaseChanges};
use super::{AppState, validate};
use crate::store::{NewStage, Stage, StageRelease, StageUpdate, Store};
use crate::subdomain::Subdomain;
use crate::tags::{TagPattern, TagPatternError};

#[derive(Serialize, ToSchema)]
pub struct StageView {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    /// Glob over the whole tag; `*` takes every tag.
    pub tag_pattern: String,
    /// Semver range on top of the glob, e.g. `>=1.2, <2`.
    pub version_range: Option<String>,
    pub auto_deploy: bool,
    pub max_instances: u32,
    pub polling: bool,
    /// Watch the digest of a mutable tag (`latest`): a new digest is a new version.
    pub track_digest: bool,
    pub env: Vec<EnvVarView>,
    pub container_port: Option<u16>,
    pub health_path: Option<String>,
    /// Release workflow: `any`, `forward`, `patch` or `minor`.
    pub policy: String,
    /// Whether prerelease versions (`1.3.0-rc.1`) deploy.
    pub prerelease: bool,
    /// The stage (name) this one takes versions from, by promotion only.
    pub promote_from: Option<String>,
    /// Distinct approvers every deploy needs; 0 for none.
    pub approvals_required: u32,
    /// Seconds a deploy waits for approval before it expires.
    pub approval_timeout: u32,
    /// Ranges in which deploys may start (`Mon-Fri 02:00-06:00`); empty for any time.
    pub deploy_windows: Vec<String>,
    /// The IANA time zone of the windows.
    pub window_timezone: String,
    /// Where the stage runs: containers, or a Swarm service.
    pub target: super::stage_target::TargetView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStageBody {
    pub name: String,
    /// Defaults to `*`.
    pub tag_pattern: Option<String>,
    pub version_range: Option<String>,
    /// Defaults to true.
    pub auto_deploy: Option<bool>,
    /// Defaults to 1.
    pub max_instances: Option<u32>,
    #[serde(default)]
    pub polling: bool,
    #[serde(default)]
    pub track_digest: bool,
    #[serde(default)]
    pub env: Vec<EnvVarBody>,
    pub container_port: Option<u32>,
    pub health_path: Option<String>,
    // Release workflow (see `StageView`); left out: the defaults (any, prereleases on,
    // no promotion source, no approvals, 86400 s, no windows, UTC).
    pub policy: Option<String>,
    pub prerelease: Option<bool>,
    pub promote_from: Option<String>,
    pub approvals_required: Option<u32>,
    pub approval_timeout: Option<u32>,
    pub deploy_windows: Option<Vec<String>>,
    pub window_timezone: Option<String>,
    /// Where the stage runs; left out: containers (create) or unchanged (update).
    pub target: Option<super::stage_target::TargetBody>,
}

/// Fields left out keep their value; `null` clears an optional one.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StageChanges {
    pub name: Option<String>,
    pub tag_pattern: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub version_range: Option<Option<String>>,
    pub auto_deploy: Option<bool>,
    pub max_instances: Option<u32>,
    pub polling: Option<bool>,
    pub track_digest: Option<bool>,
    pub env: Option<Vec<EnvVarBody>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub container_port: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub health_path: Option<Option<String>>,
    // Release workflow (see `StageView`).
    pub policy: Option<String>,
    pub prerelease: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub promote_from: Option<Option<String>>,
    pub approvals_required: Option<u32>,
    pub approval_timeout: Option<u32>,
    pub deploy_windows: Option<Vec<String>>,
    pub window_timezone: Option<String>,
    /// Where the stage runs; left out: containers (create) or unchanged (update).
    pub target: Option<super::stage_target::TargetBody>,
}

#[derive(Serialize, ToSchema)]
pub struct PollStateView {
    pub stage_id: i64,
    /// Whether the stage was ever polled; the first poll records what exists.
    pub polled: bool,
    /// Tag → digest (digest only with `track_digest`).
    pub seen_tags: BTreeMap<String, Option<String>>,
    pub baseline_at: Option<DateTime<Utc>>,
    pub last_polled_at: Option<DateTime<Utc>>,
    /// `baseline`, `no_change`, `new_tag` or `error`.
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub last_new_tag: Option<String>,
    pub consecutive_failures: u32,
}

impl From<Stage> for StageView {
    fn from(s: Stage) -> StageView {
        StageView {
            id: s.id,
            project_id: s.project_id,
            name: s.name,
            tag_pattern: s.tag_pattern,
            version_range: s.version_range,
            auto_deploy: s.auto_deploy,
            max_instances: s.max_instances,
            polling: s.polling,
            track_digest: s.track_digest,
            env: s.env.into_iter().map(EnvVarView::from).collect(),
            container_port: s.container_port,
            health_path: s.health_path,
            policy: s.release.policy.as_str().into(),
            prerelease: s.release.prerelease,
            promote_from: s.release.promote_from.map(|id| format!("stage {id}")),
            approvals_required: s.release.approvals_required,
            approval_timeout: s.release.approval_timeout_secs,
            deploy_windows: s.release.windows,
            window_timezone: s.release.window_timezone,
            target: super::stage_target::view(&Default::default()),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The stage's view with the name of the stage it is promoted from.
pub fn view(store: &Store, stage: Stage) -> StageView {
    let from = stage_release::promote_from_name(store, &stage);
    let target = super::stage_target::view_of(store, stage.id);
    let mut view = StageView::from(stage);
    view.promote_from = from.or(view.promote_from);
    view.target = target;
    view
}

/// The project's stages in name order (the order tags are matched in).
#[utoipa::path(get, path = "/projects/{id}/stages", tag = "stages", params(("id" = i64, Path, description = "project id")),
    responses((status = 200, body = Vec<StageView>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Path(project_id): Path<i64>,
) -> Result<Json<Vec<StageView>>, ApiError> {
    state.store.get_project(project_id)?;
    Ok(Json(
        state
            .store
            .list_stages(project_id)?
            .into_iter()
            .map(|s| view(&state.store, s))
            .collect(),
    ))
}

#[utoipa::path(post, path = "/projects/{id}/stages", tag = "stages", params(("id" = i64, Path, description = "project id")),
    request_body = NewStageBody,
    responses((status = 201, body = StageView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Path(project_id): Path<i64>,
    ApiJson(body): ApiJson<NewStageBody>,
) -> Result<(StatusCode, Json<StageView>), ApiError> {
    state.store.get_project(project_id)?;
    let mut errors = FieldErrors::new();
    errors.check("name", validate::dns_name(&body.name));
    let tag_pattern = body.tag_pattern.unwrap_or_else(|| "*".into());
    check_pattern(&mut errors, &tag_pattern, body.version_range.as_deref());
    let max_instances = body.max_instances.unwrap_or(1);
    errors.check(
        "max_instances",
        validate::range(u64::from(max_instances), 1, 100),
    );
    let env = check_env(&mut errors, "env", &body.env, &[]);
    let port = body
        .container_port
        .and_then(|p| errors.check("container_port", validate::port(p)));
    if let Some(path) = &body.health_path {
        errors.check("health_path", validate::http_path(path));
    }
    let release = stage_release::apply(
        &mut errors,
        &state.store,
        project_id,
        None,
        &StageRelease::default(),
        ReleaseChanges {
            policy: body.policy,
            prerelease: body.prerelease,
            promote_from: body.promote_from.map(Some),
            approvals_required: body.approvals_required,
            approval_timeout: body.approval_timeout,
            deploy_windows: body.deploy_windows,
            window_timezone: body.window_timezone,
        },
    )?;
    let target = super::stage_target::checked(&state, errors, body.target.as_ref()).await?;
    let project = state.store.get_project(project_id)?;
    check_domain_clash(&state.store, &project.name, &body.name, None)?;
    let created = state.store.create_stage(&NewStage {
        project_id,
        name: body.name,
        tag_pattern,
        version_range: body.version_range.filter(|r| !r.trim().is_empty()),
        auto_deploy: body.auto_deploy.unwrap_or(true),
        max_instances,
        polling: body.polling,
        track_digest: body.track_digest,
        env,
        container_port: port,
        health_path: body.health_path,
        release,
    })?;
    if let Some(target) = &target {
        state.store.set_stage_target(created.id, target)?;
    }
    if created.polling {
        // Its baseline is taken now, not after the poller's current wait.
        state.poller.wake();
    }
    Ok((StatusCode::CREATED, Json(view(&state.store, created))))
}

#[utoipa::path(get, path = "/stages/{id}", tag = "stages", params(("id" = i64, Path)),
    responses((status = 200, body = StageView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<StageView>, ApiError> {
    Ok(Json(view(&state.store, state.store.get_stage(id)?)))
}

#[utoipa::path(put, path = "/stages/{id}", tag = "stages", params(("id" = i64, Path)),
    request_body = StageChanges,
    responses((status = 200, body = StageView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<StageChanges>,
) -> Result<Json<StageView>, ApiError> {
    let current = state.store.get_stage(id)?;
    let mut errors = FieldErrors::new();
    if let Some(name) = &body.name {
        errors.check("name", validate::dns_name(name));
    }
    let pattern = body.tag_pattern.as_deref().unwrap_or(&current.tag_pattern);
    let range = match &body.version_range {
        Some(range) => range.as_deref(),
        None => current.version_range.as_deref(),
    };
    check_pattern(&mut errors, pattern, range);
    if let Some(max) = body.max_instances {
        errors.check("max_instances", validate::range(u64::from(max), 1, 100));
    }
    let env = body
        .env
        .as_ref()
        .map(|vars| check_env(&mut errors, "env", vars, &current.env));
    let port = match body.container_port {
        Some(Some(p)) => errors.check("container_port", validate::port(p)).map(Some),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(Some(path)) = &body.health_path {
        errors.check("health_path", validate::http_path(path));
    }
    let release = stage_release::apply(
        &mut errors,
        &state.store,
        current.project_id,
        Some(id),
        &current.release,
        ReleaseChanges {
            policy: body.policy,
            prerelease: body.prerelease,
            promote_from: body.promote_from,
            approvals_required: body.approvals_required,
            approval_timeout: body.approval_timeout,
            deploy_windows: body.deploy_windows,
            window_timezone: body.window_timezone,
        },
    )?;
    let target = super::stage_target::checked(&state, errors, body.target.as_ref()).await?;
    if let Some(target) = &target {
        state.deployer.check_target_switch(id, target).await?;
    }
    if let Some(name) = body.name.as_ref().filter(|n| **n != current.name) {
        let project = state.store.get_project(current.project_id)?;
        check_domain_clash(&state.store, &project.name, name, Some(id))?;
    }
    let updated = state.store.update_stage(
        id,
        &StageUpdate {
            name: body.name,
            tag_pattern: body.tag_pattern,
            version_range: body
                .version_range
                .map(|r| r.filter(|r| !r.trim().is_empty())),
            auto_deploy: body.auto_deploy,
            max_instances: body.max_instances,
            polling: body.polling,
            track_digest: body.track_digest,
            env,
            container_port: port,
            health_path: body.health_path,
            release: Some(release),
        },
    )?;
    if let Some(target) = &target {
        state.store.set_stage_target(id, target)?;
    }
    let watched_changed = updated.polling != current.polling
        || updated.tag_pattern != current.tag_pattern
        || updated.version_range != current.version_range
        || updated.track_digest != current.track_digest;
    if updated.polling && watched_changed {
        state.poller.wake();
    }
    Ok(Json(view(&state.store, updated)))
}

/// Deletes the stage with its deploys, after retiring its instances: their containers
/// and proxy hosts (the stage domain's too) go with it. A deploy under way is waited for.
#[utoipa::path(delete, path = "/stages/{id}", tag = "stages", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a deploy of the stage is still running"),
        (status = 502, body = ErrorBody, description = "an instance could not be retired; the stage is kept")))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.deployer.retire_stage(id).await?;
    if state.store.stage_target(id)?.swarm().is_some() {
        match state.deployer.remove_service(id).await {
            Err(crate::deployer::OpsError::Conflict(reason)) => {
                tracing::warn!(
                    stage_id = id,
                    "the stage's swarm service was left: {reason}"
                );
            }
            other => other?,
        }
    }
    state.store.delete_stage(id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// What polling saw for the stage and how its last poll went.
#[utoipa::path(get, path = "/stages/{id}/poll-state", tag = "stages", params(("id" = i64, Path)),
    responses((status = 200, body = PollStateView), (status = 404, body = ErrorBody)))]
pub async fn poll_state(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<PollStateView>, ApiError> {
    state.store.get_stage(id)?;
    Ok(Json(match state.store.get_poll_state(id)? {
        Some(p) => PollStateView {
            stage_id: id,
            polled: true,
            seen_tags: p.seen,
            baseline_at: p.baseline_at,
            last_polled_at: p.last_polled_at,
            last_result: p.last_result.map(|r| r.as_str().into()),
            last_error: p.last_error,
            last_new_tag: p.last_new_tag,
            consecutive_failures: p.consecutive_failures,
        },
        None => PollStateView {
            stage_id: id,
            polled: false,
            seen_tags: BTreeMap::new(),
            baseline_at: None,
            last_polled_at: None,
            last_result: None,
            last_error: None,
            last_new_tag: None,
            consecutive_failures: 0,
        },
    }))
}

/// Refuses a project and stage name pair whose domains another stage already gets: the
/// stage domain (`shop`/`dev-x` and `x-shop`/`dev` both make `stage-dev-x-shop`), or the
/// instance domains, which then clash tag for tag. Checked when a stage is created or
/// renamed and when a project is renamed, so the clash never reaches a deploy. `stage_id`
/// is the stage itself (not a clash with itself); `None` for a new stage.
pub(super) fn check_domain_clash(
    store: &Store,
    project: &str,
    stage: &str,
    stage_id: Option<i64>,
) -> Result<(), ApiError> {
    let settings = store.settings()?;
    // The base domain is the same for every stage: any valid one compares the same way.
    let base = if Subdomain::parse(&settings.base_domain).is_ok() {
        settings.base_domain.as_str()
    } else {
        "domain.invalid"
    };
    let domains = |project: &str, stage: &str| {
        let stage_domain =
            Subdomain::for_stage(&settings.stage_subdomain_pattern, base, project, stage).ok();
        // One tag stands for all: the tag is filled in the same way for both stages.
        let instance_domain = Subdomain::for_instance(
            &settings.instance_subdomain_pattern,
            base,
            project,
            stage,
            "tag",
        )
        .ok();
        (stage_domain, instance_domain)
    };
    let (mine, my_instances) = domains(project, stage);
    for other_project in store.list_projects()? {
        for other in store.list_stages(other_project.id)? {
            if Some(other.id) == stage_id {
                continue;
            }
            let (theirs, their_instances) = domains(&other_project.name, &other.name);
            let clash = match (&mine, &theirs, &my_instances, &their_instances) {
                (Some(a), Some(b), _, _) if a == b => Some(format!("the stage domain {a}")),
                (_, _, Some(a), Some(b)) if a == b => {
                    Some(format!("the instance domains (like {a} for tag `tag`)"))
                }
                _ => None,
            };
            if let Some(what) = clash {
                return Err(ApiError::Conflict(format!(
                    "project {project}, stage {stage} would get {what} of project {}, stage {}; rename one of the two",
                    other_project.name, other.name
                )));
            }
        }
    }
    Ok(())
}

fn check_pattern(errors: &mut FieldErrors, glob: &str, range: Option<&str>) {
    // Each half on its own, so both are named when both are wrong.
    if let Err(e) = TagPattern::parse(glob, None) {
        errors.add("tag_pattern", e.to_string());
    }
    if let Err(e @ TagPatternError::VersionRange { .. }) = TagPattern::parse("*", range) {
        errors.add("version_range", e.to_string());
    }
}
