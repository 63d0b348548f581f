//! Resources a projects file manages are read-only in the API: `refuse_edits` answers
//! 409, naming the file and line to change instead, for every route that would edit one
//! (deploys, rollbacks and instance operations stay allowed). `GET /api/managed` lists
//! the markers, so the UI can show where a resource comes from.
//!
//! The check is a layer rather than a line in each handler, so `apply` — which calls the
//! handlers directly — is the one way to change them.

use axum::Json;
use axum::extract::{MatchedPath, OriginalUri, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;

use super::AppState;
use super::error::ApiError;
use crate::store::{ManagedKind, ManagedMarker, Store};

/// The routes that edit a resource, and the kind of resource their `{id}` is. Adding a
/// stage changes the project's list of stages, so it counts as editing the project.
pub const EDIT_ROUTES: &[(&str, &str, ManagedKind)] = &[
    ("put", "/api/registries/{id}", ManagedKind::Registry),
    ("delete", "/api/registries/{id}", ManagedKind::Registry),
    ("put", "/api/projects/{id}", ManagedKind::Project),
    ("delete", "/api/projects/{id}", ManagedKind::Project),
    ("post", "/api/projects/{id}/stages", ManagedKind::Project),
    ("put", "/api/stages/{id}", ManagedKind::Stage),
    ("delete", "/api/stages/{id}", ManagedKind::Stage),
    ("put", "/api/notifications/{id}", ManagedKind::Notification),
    (
        "delete",
        "/api/notifications/{id}",
        ManagedKind::Notification,
    ),
    ("put", "/api/settings", ManagedKind::Settings),
];

#[derive(Serialize, ToSchema)]
pub struct ManagedView {
    /// `registry`, `project`, `stage`, `notification` or `settings`.
    pub kind: String,
    /// The resource's id (1 for settings).
    pub id: i64,
    /// The file or folder that was applied.
    pub origin: String,
    /// The file the resource is written in, and the line.
    pub file: String,
    pub line: u32,
    pub applied_at: DateTime<Utc>,
}

impl From<ManagedMarker> for ManagedView {
    fn from(m: ManagedMarker) -> ManagedView {
        ManagedView {
            kind: m.kind.as_str().into(),
            id: m.resource_id,
            origin: m.origin,
            file: m.file,
            line: m.line,
            applied_at: m.applied_at,
        }
    }
}

/// Which resources a projects file manages, and where each is written.
#[utoipa::path(get, path = "/managed", tag = "apply",
    responses((status = 200, body = Vec<ManagedView>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ManagedView>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_managed()?
            .into_iter()
            .map(ManagedView::from)
            .collect(),
    ))
}

/// 409 for an edit of a managed resource; anything else passes.
pub async fn refuse_edits(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(refusal) = refusal(&state.store, &request) {
        return refusal.into_response();
    }
    next.run(request).await
}

fn refusal(store: &Store, request: &Request) -> Option<ApiError> {
    let matched = request.extensions().get::<MatchedPath>()?.as_str();
    let method = request.method();
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let method = method.as_str().to_ascii_lowercase();
    let (_, _, kind) = EDIT_ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == matched)?;
    let id = if *kind == ManagedKind::Settings {
        1
    } else {
        // `/api/<resource>/<id>…`: the id is the third segment (of the whole path: a
        // nested router sees its own part of the URI).
        let uri = request
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| request.uri(), |o| &o.0);
        uri.path().split('/').nth(3)?.parse().ok()?
    };
    let marker = store.managed(*kind, id).ok()??;
    let what = match kind {
        ManagedKind::Settings => "the settings are".to_string(),
        kind => format!("this {kind} is"),
    };
    Some(ApiError::Conflict(format!(
        "{what} managed by the projects file {} (line {} of {}): change it there and apply the file again",
        marker.origin, marker.line, marker.file
    )))
}

/// The 409 every edit route may now answer, in the document.
pub fn document_refusals(api: &mut OpenApi) {
    for (method, path, _) in EDIT_ROUTES {
        let Some(item) = api.paths.paths.get_mut(*path) else {
            continue;
        };
        let operation = match *method {
            "put" => item.put.as_mut(),
            "post" => item.post.as_mut(),
            "delete" => item.delete.as_mut(),
            _ => None,
        };
        if let Some(operation) = operation {
            operation
                .responses
                .responses
                .entry("409".into())
                .or_insert_with(|| {
                    utoipa::openapi::RefOr::T(super::openapi::error_response(
                        "a projects file manages it: change the file instead",
                    ))
                });
        }
    }
}
