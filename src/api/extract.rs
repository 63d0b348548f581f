//! Request extractors that answer in our error shape: a body that is not JSON is a 400, a
//! JSON body with a wrong or missing field is a 422 naming the field, a bad query a 422.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldErrors};

/// A JSON body read into `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ));
        }
        let body = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(super::BODY_LIMIT)
            } else {
                ApiError::BadRequest(format!("cannot read the body: {e}"))
            }
        })?;
        parse_json(&body).map(ApiJson)
    }
}

/// Parses a JSON body: a syntax error is a 400, a shape error a 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        match missing_field(&inner) {
            Some(field) => {
                let field = if path == "." {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                };
                FieldErrors::single(&field, "is required")
            }
            None => FieldErrors::single(if path == "." { "body" } else { &path }, inner),
        }
    })
}

/// JSON does not tell `2` from `2.0` (JSON Schema calls both integers), but serde does:
/// a number with no fraction becomes an integer, so `"container_port": 8080.0` is read as
/// 8080 instead of being refused.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            if let Some(f) = number.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                // Exact: |f| < 2^53, so the float holds the integer without rounding.
                #[allow(clippy::cast_possible_truncation)]
                let whole = f as i64;
                *value = serde_json::Value::from(whole);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(whole_numbers_as_integers)
        }
        _ => {}
    }
}

/// A query string read into `T`; a bad value is a 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded_parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                match missing_field(&inner) {
                    Some(field) => FieldErrors::single(field, "is required"),
                    None => FieldErrors::single(if path == "." { "query" } else { &path }, inner),
                }
            })
    }
}

/// For update bodies: a field left out is `None` (keep), `null` is `Some(None)` (clear),
/// a value is `Some(Some(value))`. Use with `#[serde(default, deserialize_with = ...)]`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

fn form_urlencoded_parse(input: &[u8]) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(input)
}

/// Path parameters read into `T`, like axum's `Path`, but a value that does not parse
/// (`/api/projects/abc`) is our JSON 400 naming the parameter instead of a text answer.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                let names: Vec<String> =
                    axum::extract::RawPathParams::from_request_parts(parts, state)
                        .await
                        .map(|params| params.iter().map(|(k, _)| k.to_string()).collect())
                        .unwrap_or_default();
                Err(ApiError::BadRequest(path_reason(&rejection, &names)))
            }
        }
    }
}

/// Why the path did not parse; `names` are the route's parameters, in order, to name the
/// one at fault when axum gives only its position (or nothing, for a single one).
fn path_reason(rejection: &axum::extract::rejection::PathRejection, names: &[String]) -> String {
    use axum::extract::path::ErrorKind;
    use axum::extract::rejection::PathRejection;
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
            ErrorKind::ParseErrorAtKey {
                key, expected_type, ..
            } => format!(
                "the path parameter `{key}` must be {}",
                readable_type(expected_type)
            ),
            ErrorKind::ParseErrorAtIndex {
                index,
                expected_type,
                ..
            } => match names.get(*index) {
                Some(key) => format!(
                    "the path parameter `{key}` must be {}",
                    readable_type(expected_type)
                ),
                None => format!("a path parameter must be {}", readable_type(expected_type)),
            },
            ErrorKind::ParseError { expected_type, .. } => match names {
                [key] => format!(
                    "the path parameter `{key}` must be {}",
                    readable_type(expected_type)
                ),
                _ => format!("a path parameter must be {}", readable_type(expected_type)),
            },
            _ => format!("the path is not valid: {}", e.body_text()),
        },
        other => format!("the path is not valid: {}", other.body_text()),
    }
}

/// `i64` → "a whole number"; other types by name.
fn readable_type(name: &str) -> String {
    match name {
        "i64" | "i32" | "u64" | "u32" | "u16" => "a whole number".into(),
        other => format!("a {other}"),
    }
}
