//! `/api/registries`: where images live, with write-only credentials, and a connection
//! check that says in words what is wrong.

use axum::Json;
use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, FieldErrors};
use super::extract::{ApiJson, double_option, parse_json};
use super::{AppState, validate};
use crate::registry::{self, RegistryConfig, RegistryKind};
use crate::store::{NewRegistry, Registry, RegistryUpdate};

#[derive(Serialize, ToSchema)]
pub struct RegistryView {
    pub id: i64,
    pub name: String,
    /// `oci`, `gitea`, `dockerhub` or `ghcr`.
    pub kind: String,
    pub base_url: String,
    pub username: Option<String>,
    /// Whether a password or token is stored (it is never shown).
    pub has_secret: bool,
    pub insecure: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRegistryBody {
    pub name: String,
    pub kind: String,
    /// `https://registry.example.com`, or empty for Docker Hub and GHCR.
    #[serde(default)]
    pub base_url: String,
    pub username: Option<String>,
    /// Password or token; write-only.
    pub secret: Option<String>,
    /// Allow plain HTTP.
    #[serde(default)]
    pub insecure: bool,
}

/// Fields left out keep their value; `null` clears `username` or `secret`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RegistryChanges {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub base_url: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub secret: Option<Option<String>>,
    pub insecure: Option<bool>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    /// A repository to list too, e.g. `acme/shop`.
    pub repository: Option<String>,
}

/// The outcome of a connection check: `ok` with what was found, or the reason.
#[derive(Serialize, ToSchema)]
pub struct CheckAnswer {
    pub ok: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<usize>,
}

impl From<Registry> for RegistryView {
    fn from(r: Registry) -> RegistryView {
        RegistryView {
            id: r.id,
            name: r.name,
            kind: r.kind.as_str().into(),
            base_url: r.base_url,
            username: r.username,
            has_secret: r.has_secret,
            insecure: r.insecure,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[utoipa::path(get, path = "/registries", tag = "registries",
    responses((status = 200, body = Vec<RegistryView>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<RegistryView>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_registries()?
            .into_iter()
            .map(RegistryView::from)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/registries", tag = "registries",
    request_body = NewRegistryBody,
    responses((status = 201, body = RegistryView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewRegistryBody>,
) -> Result<(StatusCode, Json<RegistryView>), ApiError> {
    let mut errors = FieldErrors::new();
    errors.check("name", validate::dns_name(&body.name));
    let kind = errors.check("kind", body.kind.parse::<RegistryKind>());
    if let Some(kind) = kind {
        check_endpoint(&mut errors, kind, &body.base_url, body.insecure);
    }
    check_username(&mut errors, body.username.as_deref());
    errors.into_result()?;
    let created = state.store.create_registry(&NewRegistry {
        name: body.name,
        kind: kind.unwrap_or(RegistryKind::Oci),
        base_url: body.base_url.trim().to_string(),
        username: body.username.filter(|u| !u.is_empty()),
        secret: body.secret.filter(|s| !s.is_empty()),
        insecure: body.insecure,
    })?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/registries/{id}", tag = "registries",
    params(("id" = i64, Path)),
    responses((status = 200, body = RegistryView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<RegistryView>, ApiError> {
    Ok(Json(state.store.get_registry(id)?.into()))
}

#[utoipa::path(put, path = "/registries/{id}", tag = "registries",
    params(("id" = i64, Path)), request_body = RegistryChanges,
    responses((status = 200, body = RegistryView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RegistryChanges>,
) -> Result<Json<RegistryView>, ApiError> {
    let current = state.store.get_registry(id)?;
    let mut errors = FieldErrors::new();
    if let Some(name) = &body.name {
        errors.check("name", validate::dns_name(name));
    }
    let kind = match &body.kind {
        Some(kind) => errors.check("kind", kind.parse::<RegistryKind>()),
        None => Some(current.kind),
    };
    if let Some(kind) = kind {
        check_endpoint(
            &mut errors,
            kind,
            body.base_url.as_deref().unwrap_or(&current.base_url),
            body.insecure.unwrap_or(current.insecure),
        );
    }
    if let Some(username) = &body.username {
        check_username(&mut errors, username.as_deref());
    }
    errors.into_result()?;
    let updated = state.store.update_registry(
        id,
        &RegistryUpdate {
            name: body.name,
            kind: body.kind.and(kind),
            base_url: body.base_url.map(|u| u.trim().to_string()),
            username: body.username.map(|u| u.filter(|u| !u.is_empty())),
            secret: body.secret.map(|s| s.filter(|s| !s.is_empty())),
            insecure: body.insecure,
        },
    )?;
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/registries/{id}", tag = "registries",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_registry(id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Test connection": the registry answers and takes the credentials; with a
/// `repository`, that it can be listed.
#[utoipa::path(post, path = "/registries/{id}/check", tag = "registries",
    params(("id" = i64, Path)), request_body(content = Option<CheckBody>),
    responses((status = 200, body = CheckAnswer, description = "`ok` false carries the reason"),
        (status = 404, body = ErrorBody)))]
pub async fn check(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Json<CheckAnswer>, ApiError> {
    // No body and a JSON `null` both mean "nothing to add".
    let body: CheckBody = if body.is_empty() {
        CheckBody::default()
    } else {
        parse_json::<Option<CheckBody>>(&body)?.unwrap_or_default()
    };
    let stored = state.store.get_registry(id)?;
    let config = RegistryConfig {
        kind: stored.kind,
        base_url: stored.base_url,
        username: stored.username,
        secret: state.store.registry_secret(id)?,
        insecure: stored.insecure,
    };
    let repository = body.repository.filter(|r| !r.is_empty());
    let result = match registry::connect(&config) {
        Ok(client) => client.check(repository.as_deref()).await,
        Err(e) => Err(e),
    };
    Ok(Json(match result {
        Ok(report) => CheckAnswer {
            ok: true,
            message: report.to_string(),
            endpoint: Some(report.endpoint.clone()),
            signed_in: Some(report.signed_in),
            tags: report.repository.map(|(_, tags)| tags),
        },
        Err(e) => CheckAnswer {
            ok: false,
            message: e.to_string(),
            endpoint: None,
            signed_in: None,
            tags: None,
        },
    }))
}

/// The URL must make a client (this contacts nothing).
fn check_endpoint(errors: &mut FieldErrors, kind: RegistryKind, base_url: &str, insecure: bool) {
    let config = RegistryConfig {
        kind,
        base_url: base_url.trim().to_string(),
        username: None,
        secret: None,
        insecure,
    };
    if let Err(e) = registry::connect(&config) {
        errors.add("base_url", e.to_string());
    }
}

fn check_username(errors: &mut FieldErrors, username: Option<&str>) {
    if let Some(username) = username
        && (username.len() > 255 || username.chars().any(|c| c.is_control() || c == ':'))
    {
        errors.add(
            "username",
            "must be at most 255 characters, without `:` or control characters",
        );
    }
}
