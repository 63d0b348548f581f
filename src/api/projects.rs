//! `/api/projects`: one image repository each, how to run its containers, its env vars
//! (secret values write-only), the registry's tags for the UI's tag picker, "poll now",
//! and the project's event log.

use std::time::Duration;

use axum::Json;
use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, FieldErrors};
use super::extract::{ApiJson, ApiQuery, double_option};
use super::{AppState, validate};
use crate::container_policy::ContainerPolicy;
use crate::image_ref::ImageRef;
use crate::poller::PollError;
use crate::registry;
use crate::store::{
    EnvVar, NewProject, Project, ProjectEvent, ProjectHealth, ProjectUpdate, Store, StoredEnvVar,
};
use crate::tags::{TagPattern, parse_version};

#[derive(Serialize, ToSchema)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    /// Registry host and repository without tag: `registry.example.com/acme/shop`.
    pub image: String,
    pub registry_id: Option<i64>,
    /// 0 when unknown (an auto-created project whose image could not be inspected).
    pub container_port: u16,
    pub health_path: Option<String>,
    /// Overrides of the settings' health-check policy; `null` takes the default.
    pub health_interval_ms: Option<u64>,
    pub health_timeout_ms: Option<u64>,
    pub health_retries: Option<u32>,
    pub health_start_period_ms: Option<u64>,
    pub env: Vec<EnvVarView>,
    pub volumes: Vec<String>,
    pub network: Option<String>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub auto_created: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An env var as shown: a secret's value is never sent back.
#[derive(Serialize, ToSchema)]
pub struct EnvVarView {
    pub name: String,
    /// `null` for secrets.
    pub value: Option<String>,
    pub secret: bool,
}

/// An env var as written. A secret sent without `value` keeps its stored value.
#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct EnvVarBody {
    pub name: String,
    pub value: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProjectBody {
    pub name: String,
    /// An image reference without tag, e.g. `registry.example.com/acme/shop` or `nginx`.
    pub image: String,
    pub registry_id: Option<i64>,
    pub container_port: u32,
    pub health_path: Option<String>,
    pub health_interval_ms: Option<u64>,
    pub health_timeout_ms: Option<u64>,
    pub health_retries: Option<u32>,
    pub health_start_period_ms: Option<u64>,
    #[serde(default)]
    pub env: Vec<EnvVarBody>,
    #[serde(default)]
    pub volumes: Vec<String>,
    pub network: Option<String>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
}

/// Fields left out keep their value; `null` clears an optional one. `env` and `volumes`
/// replace the whole list.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub image: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub registry_id: Option<Option<i64>>,
    pub container_port: Option<u32>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub health_path: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub health_interval_ms: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub health_timeout_ms: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub health_retries: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub health_start_period_ms: Option<Option<u64>>,
    pub env: Option<Vec<EnvVarBody>>,
    pub volumes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub network: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub memory_bytes: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub nano_cpus: Option<Option<i64>>,
}

#[derive(Serialize, ToSchema)]
pub struct TagView {
    pub name: String,
    /// When the registry says the tag was made (Gitea); `null` where it does not say.
    pub created_at: Option<DateTime<Utc>>,
    /// Stages whose pattern takes this tag, in matching order.
    pub stages: Vec<String>,
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TagsQuery {
    /// Only tags this stage's pattern takes.
    pub stage_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct PollOutcomeView {
    pub stage_id: i64,
    /// `baseline`, `no_change`, `new_tag` or `error`.
    pub result: String,
    pub new_tag: Option<String>,
    pub deploy_id: Option<i64>,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProjectEventView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub level: String,
    pub message: String,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> ProjectView {
        ProjectView {
            id: p.id,
            name: p.name,
            image: p.image,
            registry_id: p.registry_id,
            container_port: p.container_port,
            health_path: p.health_path,
            health_interval_ms: p.health.interval.map(as_millis),
            health_timeout_ms: p.health.timeout.map(as_millis),
            health_retries: p.health.retries,
            health_start_period_ms: p.health.start_period.map(as_millis),
            env: p.env.into_iter().map(EnvVarView::from).collect(),
            volumes: p.volumes,
            network: p.network,
            memory_bytes: p.memory_bytes,
            nano_cpus: p.nano_cpus,
            auto_created: p.auto_created,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

impl From<StoredEnvVar> for EnvVarView {
    fn from(v: StoredEnvVar) -> EnvVarView {
        EnvVarView {
            name: v.name,
            value: if v.secret { None } else { v.value },
            secret: v.secret,
        }
    }
}

impl From<ProjectEvent> for ProjectEventView {
    fn from(e: ProjectEvent) -> ProjectEventView {
        ProjectEventView {
            id: e.id,
            at: e.at,
            level: e.level,
            message: e.message,
        }
    }
}

#[utoipa::path(get, path = "/projects", tag = "projects",
    responses((status = 200, body = Vec<ProjectView>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ProjectView>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_projects()?
            .into_iter()
            .map(ProjectView::from)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/projects", tag = "projects", request_body = NewProjectBody,
    responses((status = 201, body = ProjectView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewProjectBody>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    let mut errors = FieldErrors::new();
    errors.check("name", validate::dns_name(&body.name));
    let image = errors.check("image", normalise_image(&body.image));
    let port = errors.check("container_port", validate::port(body.container_port));
    check_registry(&state.store, &mut errors, body.registry_id)?;
    if let Some(path) = &body.health_path {
        errors.check("health_path", validate::http_path(path));
    }
    let health = check_health(
        &mut errors,
        body.health_interval_ms,
        body.health_timeout_ms,
        body.health_retries,
        body.health_start_period_ms,
    );
    let env = check_env(&mut errors, "env", &body.env, &[]);
    check_volumes(&mut errors, &body.volumes);
    check_policy(
        &state.store,
        &mut errors,
        &body.volumes,
        body.network.as_deref(),
    )?;
    check_limits(
        &mut errors,
        body.network.as_deref(),
        body.memory_bytes,
        body.nano_cpus,
    );
    errors.into_result()?;
    let created = state.store.create_project(&NewProject {
        name: body.name,
        image: image.unwrap_or_default(),
        registry_id: body.registry_id,
        container_port: port.unwrap_or_default(),
        health_path: body.health_path,
        health,
        env,
        volumes: body.volumes,
        network: body.network,
        memory_bytes: body.memory_bytes,
        nano_cpus: body.nano_cpus,
        auto_created: false,
    })?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/projects/{id}", tag = "projects", params(("id" = i64, Path)),
    responses((status = 200, body = ProjectView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(state.store.get_project(id)?.into()))
}

#[utoipa::path(put, path = "/projects/{id}", tag = "projects", params(("id" = i64, Path)),
    request_body = ProjectChanges,
    responses((status = 200, body = ProjectView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ProjectChanges>,
) -> Result<Json<ProjectView>, ApiError> {
    let current = state.store.get_project(id)?;
    let mut errors = FieldErrors::new();
    if let Some(name) = &body.name {
        errors.check("name", validate::dns_name(name));
    }
    let image = match &body.image {
        Some(image) => errors.check("image", normalise_image(image)),
        None => None,
    };
    let port = match body.container_port {
        Some(port) => errors.check("container_port", validate::port(port)),
        None => None,
    };
    if let Some(registry_id) = body.registry_id {
        check_registry(&state.store, &mut errors, registry_id)?;
    }
    if let Some(Some(path)) = &body.health_path {
        errors.check("health_path", validate::http_path(path));
    }
    let pick = |change: Option<Option<u64>>, current: Option<Duration>| match change {
        Some(value) => value,
        None => current.map(as_millis),
    };
    let health = check_health(
        &mut errors,
        pick(body.health_interval_ms, current.health.interval),
        pick(body.health_timeout_ms, current.health.timeout),
        body.health_retries.unwrap_or(current.health.retries),
        pick(body.health_start_period_ms, current.health.start_period),
    );
    let env = body
        .env
        .as_ref()
        .map(|vars| check_env(&mut errors, "env", vars, &current.env));
    if let Some(volumes) = &body.volumes {
        check_volumes(&mut errors, volumes);
    }
    let network = body.network.clone().flatten();
    let volumes = body.volumes.as_deref().unwrap_or_default();
    check_policy(&state.store, &mut errors, volumes, network.as_deref())?;
    check_limits(
        &mut errors,
        body.network.clone().flatten().as_deref(),
        body.memory_bytes.flatten(),
        body.nano_cpus.flatten(),
    );
    errors.into_result()?;
    if let Some(name) = body.name.as_ref().filter(|n| **n != current.name) {
        for stage in state.store.list_stages(id)? {
            super::stages::check_domain_clash(&state.store, name, &stage.name, Some(stage.id))?;
        }
    }
    let updated = state.store.update_project(
        id,
        &ProjectUpdate {
            name: body.name,
            image,
            registry_id: body.registry_id,
            container_port: port,
            health_path: body.health_path,
            health: Some(health),
            env,
            volumes: body.volumes,
            network: body.network,
            memory_bytes: body.memory_bytes,
            nano_cpus: body.nano_cpus,
        },
    )?;
    if updated.image != current.image || updated.registry_id != current.registry_id {
        // Polling stages now watch another listing.
        state.poller.wake();
    }
    Ok(Json(updated.into()))
}

/// Deletes the project with its stages and deploys, after retiring every instance of
/// every stage: their containers and proxy hosts go with it. A deploy under way is waited
/// for.
#[utoipa::path(delete, path = "/projects/{id}", tag = "projects", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a deploy of a stage is still running"),
        (status = 502, body = ErrorBody, description = "an instance could not be retired; the project is kept")))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.store.get_project(id)?;
    for stage in state.store.list_stages(id)? {
        state.deployer.retire_stage(stage.id).await?;
    }
    state.store.delete_project(id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The registry's tags of the project's image, newest first, with the stages that take
/// each (for the UI's tag picker).
#[utoipa::path(get, path = "/projects/{id}/tags", tag = "projects",
    params(("id" = i64, Path), TagsQuery),
    responses((status = 200, body = Vec<TagView>), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "the registry could not be asked")))]
pub async fn tags(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiQuery(query): ApiQuery<TagsQuery>,
) -> Result<Json<Vec<TagView>>, ApiError> {
    let project = state.store.get_project(id)?;
    let stages = state.store.list_stages(id)?;
    if let Some(stage_id) = query.stage_id
        && !stages.iter().any(|s| s.id == stage_id)
    {
        return Err(FieldErrors::single(
            "stage_id",
            "is not a stage of this project",
        ));
    }
    let patterns: Vec<(i64, String, Option<TagPattern>)> = stages
        .iter()
        .map(|s| {
            (
                s.id,
                s.name.clone(),
                TagPattern::parse(&s.tag_pattern, s.version_range.as_deref()).ok(),
            )
        })
        .collect();
    let (config, repository) = registry::for_project(&state.store, &project)?;
    let client = registry::connect(&config).map_err(|e| ApiError::BadGateway(e.to_string()))?;
    let mut listing = client
        .list_tags(&repository)
        .await
        .map_err(|e| ApiError::BadGateway(e.to_string()))?;
    listing.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| parse_version(&b.name).cmp(&parse_version(&a.name)))
            .then_with(|| b.name.cmp(&a.name))
    });
    let tags = listing
        .into_iter()
        .filter(|t| !crate::tags::is_ignored_tag(&t.name))
        .map(|t| TagView {
            stages: patterns
                .iter()
                .filter(|(_, _, p)| p.as_ref().is_some_and(|p| p.matches(&t.name)))
                .map(|(_, name, _)| name.clone())
                .collect(),
            created_at: t.created,
            name: t.name,
        })
        .filter(|t| match query.stage_id {
            Some(stage_id) => patterns
                .iter()
                .any(|(id, name, _)| *id == stage_id && t.stages.contains(name)),
            None => true,
        })
        .collect();
    Ok(Json(tags))
}

/// Poll the project's polling stages now, ignoring any back-off.
#[utoipa::path(post, path = "/projects/{id}/poll", tag = "projects", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<PollOutcomeView>), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "no stage of the project polls")))]
pub async fn poll(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<PollOutcomeView>>, ApiError> {
    state.store.get_project(id)?;
    let outcomes = state.poller.poll_project(id).await.map_err(|e| match e {
        PollError::NoPollingStage => ApiError::Conflict(e.to_string()),
        PollError::Store(e) => e.into(),
    })?;
    Ok(Json(
        outcomes
            .into_iter()
            .map(|o| PollOutcomeView {
                stage_id: o.stage_id,
                result: o.result.as_str().into(),
                new_tag: o.new_tag,
                deploy_id: o.deploy_id,
                error: o.error,
            })
            .collect(),
    ))
}

/// What happened to the project (auto-creation notes, warnings), oldest first.
#[utoipa::path(get, path = "/projects/{id}/events", tag = "projects", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ProjectEventView>), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<ProjectEventView>>, ApiError> {
    state.store.get_project(id)?;
    Ok(Json(
        state
            .store
            .list_project_events(id)?
            .into_iter()
            .map(ProjectEventView::from)
            .collect(),
    ))
}

// ----- checks shared with stages -----

/// Env vars: valid and distinct names, a value for every plain var, and for every secret
/// var that `stored` (the env as saved, empty on create) does not already hold sealed.
pub(super) fn check_env(
    errors: &mut FieldErrors,
    field: &str,
    vars: &[EnvVarBody],
    stored: &[StoredEnvVar],
) -> Vec<EnvVar> {
    let mut seen = std::collections::HashSet::new();
    for (i, var) in vars.iter().enumerate() {
        errors.check(&format!("{field}[{i}].name"), validate::env_name(&var.name));
        if !seen.insert(var.name.as_str()) {
            errors.add(
                format!("{field}[{i}].name"),
                format!("{} is given twice", var.name),
            );
        }
        if var.value.as_deref().is_some_and(|v| v.contains('\0')) {
            // A process environment is NUL-terminated: Docker would refuse the container
            // at the deploy's start step, long after this request said it was fine.
            errors.add(
                format!("{field}[{i}].value"),
                "must not contain a NUL character (an environment cannot hold one)",
            );
        }
        if var.value.is_none() && !var.secret {
            errors.add(
                format!("{field}[{i}].value"),
                "is required for a var that is not secret",
            );
        }
        let kept = stored.iter().any(|s| s.secret && s.name == var.name);
        if var.value.is_none() && var.secret && !kept {
            errors.add(
                format!("{field}[{i}].value"),
                "is required for a new secret var (only a saved secret keeps its value when sent without one)",
            );
        }
    }
    vars.iter()
        .map(|v| EnvVar {
            name: v.name.clone(),
            value: v.value.clone(),
            secret: v.secret,
        })
        .collect()
}

/// The image as the store keeps it: host and repository, no tag (stages pick tags).
pub(super) fn normalise_image(image: &str) -> Result<String, String> {
    // The name as sent is what the document's maxLength counts; the parser counts the
    // normalised one, which `index.docker.io/` would make shorter.
    if image.len() > crate::image_ref::NAME_MAX_LEN {
        return Err(format!(
            "must be at most {} characters (it has {})",
            crate::image_ref::NAME_MAX_LEN,
            image.len()
        ));
    }
    let parsed = ImageRef::parse(image).map_err(|e| e.to_string())?;
    if parsed.tag().is_some() || parsed.digest().is_some() {
        return Err(format!(
            "must not carry a tag or digest (stages choose tags): use {}",
            parsed.name()
        ));
    }
    Ok(parsed.name())
}

fn check_registry(
    store: &Store,
    errors: &mut FieldErrors,
    registry_id: Option<i64>,
) -> Result<(), ApiError> {
    if let Some(id) = registry_id {
        match store.get_registry(id) {
            Ok(_) => {}
            Err(crate::store::StoreError::NotFound { .. }) => {
                errors.add("registry_id", format!("there is no registry {id}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn check_health(
    errors: &mut FieldErrors,
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    start_period_ms: Option<u64>,
) -> ProjectHealth {
    let ms = Duration::from_millis;
    let hour = Duration::from_secs(3600);
    ProjectHealth {
        interval: interval_ms
            .and_then(|v| errors.check("health_interval_ms", validate::millis(v, ms(100), hour))),
        timeout: timeout_ms.and_then(|v| {
            errors.check(
                "health_timeout_ms",
                validate::millis(v, ms(100), Duration::from_secs(300)),
            )
        }),
        retries: retries.and_then(|v| {
            errors
                .check("health_retries", validate::range(u64::from(v), 1, 100))
                .map(|_| v)
        }),
        start_period: start_period_ms
            .and_then(|v| errors.check("health_start_period_ms", validate::millis(v, ms(0), hour))),
    }
}

fn check_volumes(errors: &mut FieldErrors, volumes: &[String]) {
    for (i, volume) in volumes.iter().enumerate() {
        errors.check(&format!("volumes[{i}]"), validate::volume(volume));
    }
}

/// What deployed containers may get (`container_policy`): bind mounts, host network.
fn check_policy(
    store: &Store,
    errors: &mut FieldErrors,
    volumes: &[String],
    network: Option<&str>,
) -> Result<(), ApiError> {
    let policy = ContainerPolicy::new(&store.settings()?, store.data_dir().as_deref());
    for refusal in policy.check(volumes, network) {
        errors.add(refusal.field, refusal.reason);
    }
    Ok(())
}

fn check_limits(
    errors: &mut FieldErrors,
    network: Option<&str>,
    memory_bytes: Option<i64>,
    nano_cpus: Option<i64>,
) {
    if let Some(network) = network
        && (network.is_empty()
            || network.len() > 128
            || !network
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)))
    {
        errors.add(
            "network",
            "must be a Docker network name: letters, digits, _, . and -",
        );
    }
    if memory_bytes.is_some_and(|m| m < 6 * 1024 * 1024) {
        errors.add(
            "memory_bytes",
            "must be at least 6 MiB (6291456), Docker's minimum",
        );
    }
    if nano_cpus.is_some_and(|c| c <= 0) {
        errors.add("nano_cpus", "must be positive (1000000000 is one CPU)");
    }
}

fn as_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
