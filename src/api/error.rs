//! The one API error type and the 404 answer every unknown path (and every wrong webhook
//! secret) gets, byte for byte the same.
//!
//! Every error body is JSON with an `error` text; a validation failure adds `fields`, one
//! reason per bad field, so a form can show each next to its input.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::deployer::OpsError;
use crate::store::StoreError;

/// An error a handler returns; becomes `{"error": "..."}` with the matching status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    /// The body or query could not be read at all (not JSON, wrong content type).
    #[error("{0}")]
    BadRequest(String),
    /// The request was read, but fields are wrong: 422 with a reason per field.
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("{0}")]
    Conflict(String),
    #[error("sign in first: send the session cookie or an `Authorization: Bearer` token")]
    Unauthorized,
    #[error("wrong username or password")]
    LoginFailed,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many attempts; try again in {} s", .0.as_secs().max(1))]
    TooManyRequests(Duration),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// Something outside (Docker, a registry) failed; the message says what.
    #[error("{0}")]
    BadGateway(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words a person can act on.
    pub error: String,
    /// For `validation failed`: each bad field and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

/// Bad fields and why, collected while checking a request, so one answer names them all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    /// Records why `field` is bad (the first reason per field is kept).
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| reason.into());
    }

    /// Records the error of `result`, if any, under `field`, and passes the value on.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each bad field and why.
    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// `Ok` when nothing was recorded, else the 422 error.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self))
        }
    }

    pub fn single(field: &str, reason: impl Into<String>) -> ApiError {
        let mut errors = FieldErrors::new();
        errors.add(field, reason);
        ApiError::Validation(errors)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NotFound => return not_found(),
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized | ApiError::LoginFailed => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(e) => {
                tracing::error!("internal error: {e:#}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let fields = match &self {
            ApiError::Validation(fields) => Some(fields.0.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.to_string(),
            fields,
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests(wait) = &self
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if let ApiError::Unauthorized = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"docker-watcher\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound { .. } => ApiError::NotFound,
            StoreError::Conflict(message) => ApiError::Conflict(readable_conflict(&message)),
            StoreError::Invalid(message) => ApiError::BadRequest(message),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<OpsError> for ApiError {
    fn from(error: OpsError) -> ApiError {
        match error {
            OpsError::Store(e) => e.into(),
            OpsError::Conflict(message) => ApiError::Conflict(message),
            gone @ OpsError::ContainerGone { .. } => ApiError::Conflict(gone.to_string()),
            OpsError::Engine(message) => ApiError::BadGateway(message),
        }
    }
}

/// "stages.project_id, stages.name is already taken" → "name is already taken": the
/// last column is the one a person chose.
fn readable_conflict(message: &str) -> String {
    match message.split_once(" is already taken") {
        Some((columns, _)) => {
            let column = columns.rsplit(", ").next().unwrap_or(columns);
            let column = column.rsplit_once('.').map_or(column, |(_, c)| c);
            format!("{column} is already taken")
        }
        None => message.to_string(),
    }
}

/// The answer to any path that does not exist.
pub fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not found" }))).into_response()
}

pub(super) async fn fallback() -> Response {
    not_found()
}
