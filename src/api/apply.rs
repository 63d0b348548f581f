//! `POST /api/apply` (a projects file: plan, check, apply) and `GET /api/export` (what
//! exists, as such a file); `apply_files` is shared with managed mode (`serve
//! --projects`).
//!
//! An apply is checked whole before anything changes: the plan is carried out on a
//! scratch copy of the database through the very handlers the API's create, update and
//! delete routes use, so the file gets exactly the API's validation (and a field another
//! part adds to a request body is checked the same way). Only when every step passes
//! there is it carried out for real, through the same handlers; deleting a stage or a
//! project retires its instances like the delete routes (waiting for a running deploy;
//! an apply never interrupts one). The resources the file names are then marked managed
//! (`managed`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::{ApiError, FieldErrors};
use super::extract::{ApiJson, Path, parse_json};
use super::{AppState, notifications, projects, registries, settings, stages};
use crate::projects_file::{
    self, Action, Current, CurrentProject, Desired, Document, Entry, FileError, Kind, Plan,
    SecretRef, Secrets, SourceFile, Step,
};
use crate::store::{ManagedKind, ManagedMarker, NewProject, Store, StoreError};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    /// The file, or a folder's `*.toml` files in name order.
    pub files: Vec<SourceFile>,
    /// The values of the file's secret references, by `env:NAME` or `file:/path` (the
    /// CLI reads them where it runs). A reference without a value is an error.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Only plan and check; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also delete registries, notification targets, projects and stages the file does
    /// not name.
    #[serde(default)]
    pub prune: bool,
    /// The file or folder as the user named it; resources are marked as coming from it,
    /// and the ones it marked before that it no longer names are deleted. Defaults to
    /// the first file's name.
    pub origin: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApplyAnswer {
    /// Whether anything was changed (false for a dry run and for no changes).
    pub applied: bool,
    pub changes: Vec<ChangeView>,
}

/// One step of the plan.
#[derive(Serialize, ToSchema)]
pub struct ChangeView {
    pub action: Action,
    pub kind: Kind,
    pub name: String,
    /// A stage's project.
    pub project: Option<String>,
    /// The fields set (never their values).
    pub fields: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ExportView {
    /// The projects file.
    pub content: String,
    /// The environment variables its secret references name.
    pub references: Vec<String>,
}

/// Why an apply changed nothing, or stopped.
#[derive(Debug)]
pub enum ApplyError {
    /// The file is wrong: nothing was changed.
    Invalid(Vec<FileError>),
    /// A step failed for real after the check passed (the steps before it stay).
    Failed(ApiError),
}

impl From<ApplyError> for ApiError {
    fn from(error: ApplyError) -> ApiError {
        match error {
            ApplyError::Invalid(errors) => {
                let mut fields = FieldErrors::new();
                for e in errors {
                    fields.add(format!("{}:{}: {}", e.file, e.line, e.field), e.message);
                }
                ApiError::Validation(fields)
            }
            ApplyError::Failed(e) => e,
        }
    }
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> ApplyError {
        ApplyError::Failed(e.into())
    }
}

/// Plan a projects file, check it whole, and (unless `dry_run`) apply it. Errors name the
/// file, line and field: `fields` maps `file:line: field` to the reason.
#[utoipa::path(post, path = "/apply", tag = "apply", request_body = ApplyBody,
    responses((status = 200, body = ApplyAnswer),
        (status = 409, body = super::error::ErrorBody, description = "a step failed (e.g. a deploy is still running); steps before it were applied"),
        (status = 422, body = super::error::ErrorBody, description = "the file is wrong; nothing was changed")))]
pub async fn apply(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ApplyBody>,
) -> Result<Json<ApplyAnswer>, ApiError> {
    let origin = body
        .origin
        .clone()
        .filter(|o| !o.trim().is_empty())
        .or_else(|| body.files.first().map(|f| f.name.clone()))
        .unwrap_or_else(|| "api".into());
    let secrets = body.secrets;
    let resolve = move |r: &SecretRef| secrets.get(&r.key()).cloned();
    let plan = apply_files(
        &state,
        &body.files,
        &resolve,
        &origin,
        body.prune,
        body.dry_run,
    )
    .await?;
    Ok(Json(answer(&plan, !body.dry_run)))
}

/// What exists, as a projects file; secrets as references to fill in.
#[utoipa::path(get, path = "/export", tag = "apply",
    responses((status = 200, body = ExportView)))]
pub async fn export(State(state): State<AppState>) -> Result<Json<ExportView>, ApiError> {
    let current = current(&state.store, "")?;
    let (content, references) = projects_file::export(&current);
    Ok(Json(ExportView {
        content,
        references,
    }))
}

fn answer(plan: &Plan, applied: bool) -> ApplyAnswer {
    ApplyAnswer {
        applied: applied && !plan.is_empty(),
        changes: plan
            .steps
            .iter()
            .map(|s| ChangeView {
                action: s.action,
                kind: s.kind,
                name: s.name.clone(),
                project: s.project.clone(),
                fields: s.fields.clone(),
            })
            .collect(),
    }
}

/// One apply at a time in a process: two at once would plan against each other's
/// half-done changes.
static APPLYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Parses, plans, checks on a scratch copy and (unless `dry_run`) applies `files`;
/// returns the plan. `origin` is what the resources are marked as coming from.
pub async fn apply_files(
    state: &AppState,
    files: &[SourceFile],
    resolve: &(dyn Fn(&SecretRef) -> Option<String> + Sync),
    origin: &str,
    prune: bool,
    dry_run: bool,
) -> Result<Plan, ApplyError> {
    let _one_at_a_time = APPLYING.lock().await;
    let document = Document::parse(files).map_err(ApplyError::Invalid)?;
    let (desired, mut errors) = document.desired(resolve);
    let current = current(&state.store, origin).map_err(ApplyError::Failed)?;
    let plan = projects_file::plan(&desired, &current, &StoreSecrets(&state.store), prune);

    errors.extend(check_shapes(&desired));
    // Run on the scratch copy even when errors were found already: every error the file
    // has is named in one answer.
    {
        let scratch = state.store.scratch_copy()?;
        let checking = AppState {
            store: scratch.store.clone(),
            ..state.clone()
        };
        for step in &plan.steps {
            if let Err(e) = carry_out(&checking, step, true).await {
                errors.extend(step_errors(step, origin, e));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApplyError::Invalid(errors));
    }
    if dry_run {
        return Ok(plan);
    }
    for (done, step) in plan.steps.iter().enumerate() {
        if let Err(e) = carry_out(state, step, false).await {
            let what = step_errors(step, origin, e)
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ApplyError::Failed(ApiError::Conflict(format!(
                "{what} ({done} of {} changes were applied before it; fix this and apply again)",
                plan.steps.len()
            ))));
        }
    }
    state
        .store
        .set_managed(origin, &markers(&state.store, &desired)?)?;
    if !plan.is_empty() {
        tracing::info!(
            origin,
            changes = plan.steps.len(),
            "applied a projects file"
        );
    }
    Ok(plan)
}

/// Every resource's table read as the body its create route takes (settings: the
/// update's), so a wrong type, an unknown field or a missing one is named before
/// anything is compared or changed.
fn check_shapes(desired: &Desired) -> Vec<FileError> {
    fn shape<T: serde::de::DeserializeOwned>(
        entry: &Entry,
        body: &Map<String, Value>,
        out: &mut Vec<FileError>,
    ) {
        let json = serde_json::to_vec(body).unwrap_or_default();
        if let Err(e) = parse_json::<T>(&json) {
            out.extend(api_errors(entry, e));
        }
    }
    let mut out = Vec::new();
    if let Some(entry) = &desired.settings {
        shape::<settings::SettingsChanges>(entry, &entry.body, &mut out);
    }
    for entry in &desired.registries {
        shape::<registries::NewRegistryBody>(entry, &entry.body, &mut out);
    }
    for entry in &desired.notifications {
        shape::<notifications::NewNotificationBody>(entry, &entry.body, &mut out);
    }
    for project in &desired.projects {
        shape::<projects::NewProjectBody>(&project.entry, &project.entry.body, &mut out);
        for stage in &project.stages {
            shape::<stages::NewStageBody>(stage, &stage.body, &mut out);
        }
    }
    out
}

/// The file errors an API error on `entry` stands for: one per field of a 422.
fn api_errors(entry: &Entry, error: ApiError) -> Vec<FileError> {
    match error {
        ApiError::Validation(fields) if !fields.is_empty() => fields
            .fields()
            .iter()
            .map(|(field, reason)| entry.error(field, reason.clone()))
            .collect(),
        other => vec![entry.error("", other.to_string())],
    }
}

fn step_errors(step: &Step, origin: &str, error: ApiError) -> Vec<FileError> {
    match &step.entry {
        Some(entry) => api_errors(entry, error),
        None => vec![FileError {
            file: origin.to_string(),
            line: 0,
            field: step.label(),
            message: format!("cannot delete it: {error}"),
        }],
    }
}

/// One step through the API's handlers. `checking`: on the scratch copy, where deletes
/// go straight to the store (nothing runs there to retire) and settings are checked and
/// saved without reconnecting the live proxy.
async fn carry_out(state: &AppState, step: &Step, checking: bool) -> Result<(), ApiError> {
    let s = || State(state.clone());
    let body = || -> Result<Vec<u8>, ApiError> {
        let mut body = step.body.clone();
        if step.kind == Kind::Project
            && let Some(registry) = body.remove("registry")
        {
            let id = match registry.as_str() {
                None => Value::Null,
                Some(name) => Value::from(registry_id(&state.store, name)?),
            };
            body.insert("registry_id".into(), id);
        }
        serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.into()))
    };
    let id = step.id.unwrap_or_default();
    match (step.kind, step.action) {
        (Kind::Settings, _) if checking => {
            let changes: settings::SettingsChanges = parse_json(&body()?)?;
            let current = state.store.settings()?;
            let update = settings::check(&current, &changes, state.store.data_dir().as_deref())?;
            state.store.update_settings(&update)?;
        }
        (Kind::Settings, _) => {
            let _ = settings::update(s(), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Registry, Action::Create) => {
            let _ = registries::create(s(), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Registry, Action::Change) => {
            let _ = registries::update(s(), Path(id), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Registry, Action::Delete) => {
            registries::delete(s(), Path(id)).await?;
        }
        (Kind::Notification, Action::Create) => {
            let _ = notifications::create(s(), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Notification, Action::Change) => {
            let _ = notifications::update(s(), Path(id), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Notification, Action::Delete) => {
            notifications::delete(s(), Path(id)).await?;
        }
        (Kind::Project, Action::Create) => {
            let _ = projects::create(s(), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Project, Action::Change) => {
            let _ = projects::update(s(), Path(id), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Project, Action::Delete) if checking => state.store.delete_project(id)?,
        (Kind::Project, Action::Delete) => {
            projects::delete(s(), Path(id)).await?;
        }
        (Kind::Stage, Action::Create) => {
            let project = step.project.as_deref().unwrap_or_default();
            let project_id = match state.store.get_project_by_name(project) {
                Ok(p) => p.id,
                // Its project failed the check (and is named for it): the stage is
                // still checked, on a stand-in.
                Err(StoreError::NotFound { .. }) if checking => {
                    state
                        .store
                        .create_project(&NewProject {
                            name: project.to_string(),
                            image: "stand-in.invalid/project".into(),
                            container_port: 80,
                            ..NewProject::default()
                        })?
                        .id
                }
                Err(e) => return Err(e.into()),
            };
            let _ = stages::create(s(), Path(project_id), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Stage, Action::Change) => {
            let _ = stages::update(s(), Path(id), ApiJson(parse_json(&body()?)?)).await?;
        }
        (Kind::Stage, Action::Delete) if checking => state.store.delete_stage(id)?,
        (Kind::Stage, Action::Delete) => {
            stages::delete(s(), Path(id)).await?;
        }
    }
    Ok(())
}

fn registry_id(store: &Store, name: &str) -> Result<i64, ApiError> {
    store
        .list_registries()?
        .into_iter()
        .find(|r| r.name == name)
        .map(|r| r.id)
        .ok_or_else(|| {
            FieldErrors::single(
                "registry",
                format!("no registry is named {name:?}: add it to the file's [[registries]] or create it first"),
            )
        })
}

/// What exists, as the API's views; `origin`'s markers say what it applied before.
fn current(store: &Store, origin: &str) -> Result<Current, ApiError> {
    fn view<T: Serialize>(value: T) -> Map<String, Value> {
        match serde_json::to_value(value) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
    let mut projects = Vec::new();
    for p in store.list_projects()? {
        let stages = store
            .list_stages(p.id)?
            .into_iter()
            .map(|s| view(stages::StageView::from(s)))
            .collect();
        projects.push(CurrentProject {
            view: view(projects::ProjectView::from(p)),
            stages,
        });
    }
    let managed_here = store
        .list_managed()?
        .into_iter()
        .filter(|m| m.origin == origin)
        .map(|m| (kind_of(m.kind), m.resource_id))
        .collect();
    Ok(Current {
        settings: view(settings::SettingsView::from(store.settings()?)),
        registries: store
            .list_registries()?
            .into_iter()
            .map(|r| view(registries::RegistryView::from(r)))
            .collect(),
        notifications: store
            .list_notification_targets()?
            .into_iter()
            .map(|n| view(notifications::NotificationTargetView::from(n)))
            .collect(),
        projects,
        managed_here,
    })
}

fn kind_of(kind: ManagedKind) -> Kind {
    match kind {
        ManagedKind::Registry => Kind::Registry,
        ManagedKind::Project => Kind::Project,
        ManagedKind::Stage => Kind::Stage,
        ManagedKind::Notification => Kind::Notification,
        ManagedKind::Settings => Kind::Settings,
    }
}

/// The markers for every resource the file names, now that they exist.
fn markers(store: &Store, desired: &Desired) -> Result<Vec<ManagedMarker>, StoreError> {
    let mark = |kind, resource_id, entry: &Entry| ManagedMarker {
        kind,
        resource_id,
        origin: String::new(),
        file: entry.file.clone(),
        line: entry.line,
        applied_at: chrono::Utc::now(),
    };
    let mut out = Vec::new();
    if let Some(entry) = &desired.settings {
        out.push(mark(ManagedKind::Settings, 1, entry));
    }
    let registries = store.list_registries()?;
    for entry in &desired.registries {
        if let Some(r) = registries.iter().find(|r| r.name == entry.name) {
            out.push(mark(ManagedKind::Registry, r.id, entry));
        }
    }
    let targets = store.list_notification_targets()?;
    for entry in &desired.notifications {
        if let Some(t) = targets.iter().find(|t| t.name == entry.name) {
            out.push(mark(ManagedKind::Notification, t.id, entry));
        }
    }
    for project in &desired.projects {
        let Ok(p) = store.get_project_by_name(&project.entry.name) else {
            continue;
        };
        out.push(mark(ManagedKind::Project, p.id, &project.entry));
        let stages = store.list_stages(p.id)?;
        for entry in &project.stages {
            if let Some(s) = stages.iter().find(|s| s.name == entry.name) {
                out.push(mark(ManagedKind::Stage, s.id, entry));
            }
        }
    }
    Ok(out)
}

/// Opened secrets, for comparing with the file's (never sent anywhere).
struct StoreSecrets<'a>(&'a Store);

impl Secrets for StoreSecrets<'_> {
    fn secret(&self, kind: Kind, id: i64, field: &str) -> Option<String> {
        let store = self.0;
        match (kind, field) {
            (Kind::Registry, "secret") => store.registry_secret(id).ok().flatten(),
            (Kind::Notification, "url") => store.notification_url(id).ok(),
            (Kind::Settings, "proxy_secret") => store.proxy_secret().ok().flatten(),
            (Kind::Settings, "webhook_signing_secret") => {
                store.webhook_signing_secret().ok().flatten()
            }
            _ => None,
        }
    }

    fn env(&self, kind: Kind, id: i64) -> Vec<(String, String)> {
        match kind {
            Kind::Project => self.0.project_env(id).unwrap_or_default(),
            Kind::Stage => self.0.stage_env(id).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}
