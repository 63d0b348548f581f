//! Helpers for the webhook tests: request headers, the payloads in testdata/webhooks, and
//! short ways to look at what was parsed.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

#[path = "../../tests/it/support/google_tokens.rs"]
mod google_tokens;
pub(crate) use google_tokens::*;

use super::{ParseOptions, ParsedPayload, PayloadError, PushEvent, parse_payload};

pub(crate) const DIGEST: &str =
    "sha256:3f1a9c0d2b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b";

pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

pub(crate) fn json_headers() -> HeaderMap {
    headers(&[("content-type", "application/json")])
}

pub(crate) fn testdata(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/webhooks/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

pub(crate) fn parse(body: &str, headers: &HeaderMap) -> Result<ParsedPayload, PayloadError> {
    parse_payload(headers, body.as_bytes(), &ParseOptions::default())
}

pub(crate) fn parse_file(name: &str, headers: &HeaderMap) -> ParsedPayload {
    parse_payload(headers, &testdata(name), &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The message of the Malformed error `body` must give.
pub(crate) fn malformed(body: &str, headers: &HeaderMap) -> String {
    match parse(body, headers) {
        Err(e @ PayloadError::Malformed { .. }) => {
            assert_eq!(e.status_code().as_u16(), 400);
            e.to_string()
        }
        other => panic!("{body}: expected Malformed, got {other:?}"),
    }
}

pub(crate) fn only_push(parsed: &ParsedPayload) -> &PushEvent {
    let pushes: Vec<_> = parsed.pushes().collect();
    assert_eq!(pushes.len(), 1, "{parsed:#?}");
    assert_eq!(parsed.events.len(), 1, "{parsed:#?}");
    pushes[0]
}

pub(crate) fn ignored_reasons(parsed: &ParsedPayload) -> Vec<String> {
    parsed.ignored().map(|i| i.reason.to_string()).collect()
}
