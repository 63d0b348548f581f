//! The one API error type and the 404 answer every unknown path (and every wrong webhook
//! secret) gets, byte for byte the same.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// An error a handler returns; becomes `{"error": "..."}` with the matching status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NotFound => return not_found(),
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(e) => {
                tracing::error!("internal error: {e:#}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound { .. } => ApiError::NotFound,
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Invalid(message) => ApiError::BadRequest(message),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The answer to any path that does not exist.
pub fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not found" }))).into_response()
}

pub(super) async fn fallback() -> Response {
    not_found()
}
