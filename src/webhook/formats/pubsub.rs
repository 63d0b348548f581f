//! Google Container Registry / Artifact Registry notifications through a Pub/Sub push
//! subscription on the `gcr` topic: `{"message": {"data": "<base64>", "messageId", …},
//! "subscription": "projects/p/subscriptions/s"}`, the data being `{"action": "INSERT",
//! "digest": "host/path@sha256:…", "tag": "host/path:tag"}`.
//!
//! A subscription with "payload unwrapping" (`--push-no-wrapper`) posts the data alone
//! (with `--push-no-wrapper-write-metadata`, the message's id, publish time and
//! subscription as `x-goog-pubsub-*` headers); that is read too. `INSERT` without `tag` is a push by digest; `DELETE` is ignored.

use axum::http::HeaderMap;
use base64::Engine;
use serde_json::Value;

use super::valid_digest;
use crate::image_ref::ImageRef;
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParsedEvent, PayloadError};

/// Whether the request is an unwrapped Pub/Sub push with "write metadata": its metadata
/// come as `x-goog-pubsub-*` headers. Its Content-Type is only the message's
/// `Content-Type` attribute (when the publisher set one), so it says nothing about the
/// body, which is read as JSON whatever it says.
pub(in crate::webhook) fn unwrapped_with_metadata(headers: &HeaderMap) -> bool {
    headers.contains_key("x-goog-pubsub-message-id")
        || headers.contains_key("x-goog-pubsub-subscription-name")
}

/// Whether the body is a Pub/Sub push: a `message` object beside `subscription`, or the
/// registry's message alone (`action` `INSERT`/`DELETE` with a `digest` or `tag`).
pub(in crate::webhook) fn matches(root: &Value) -> bool {
    let wrapped =
        root.get("message").is_some_and(Value::is_object) && root.get("subscription").is_some();
    let unwrapped = root
        .get("action")
        .and_then(Value::as_str)
        .is_some_and(|a| a == "INSERT" || a == "DELETE")
        && (root.get("digest").is_some() || root.get("tag").is_some());
    wrapped || unwrapped
}

pub(in crate::webhook) fn parse(root: &Field<'_>) -> Result<Vec<ParsedEvent>, PayloadError> {
    if !root.get("message").is_present() {
        return read(root);
    }
    let data_field = root.get("message").get("data");
    let encoded = data_field.str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| data_field.malformed(format!("is not base64 ({e})")))?;
    let data: Value = serde_json::from_slice(&decoded)
        .map_err(|e| data_field.malformed(format!("does not hold JSON ({e})")))?;
    if !data.is_object() {
        return Err(data_field.malformed("must hold a JSON object"));
    }
    read(&Field::root(&data)).map_err(|e| data_field.malformed(e.detail()))
}

/// The registry's message: `{"action", "digest"?, "tag"?}`.
fn read(data: &Field<'_>) -> Result<Vec<ParsedEvent>, PayloadError> {
    let tag_field = data.get("tag");
    let digest_field = data.get("digest");
    let tagged = tag_field.non_empty_str()?;
    let by_digest = digest_field.non_empty_str()?;
    let subject = tagged.or(by_digest).map(str::to_string);
    match data.get("action").str()? {
        "INSERT" => {}
        other => {
            return Ok(vec![ParsedEvent::ignored(
                IgnoreReason::Action(other.to_string()),
                subject,
            )]);
        }
    }
    let Some(tagged) = tagged else {
        return Ok(vec![ParsedEvent::ignored(IgnoreReason::NoTag, subject)]);
    };
    let image = ImageRef::parse(tagged)
        .map_err(|e| tag_field.malformed(format!("is not a valid image reference: {e}")))?;
    let Some(tag) = image.tag_ref().cloned() else {
        return Ok(vec![ParsedEvent::ignored(IgnoreReason::NoTag, subject)]);
    };
    let digest = valid_digest(by_digest.and_then(|d| d.rsplit_once('@')).map(|(_, d)| d));
    Ok(vec![ParsedEvent::push(&image, tag, digest)])
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use crate::webhook::test_support::*;
    use crate::webhook::*;

    fn push_of(data: &str) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(data);
        format!(
            r#"{{"message": {{"data": "{encoded}", "messageId": "1"}}, "subscription": "projects/p/subscriptions/s"}}"#
        )
    }

    #[test]
    fn gcr_and_artifact_registry_pushes_are_read_from_the_message() {
        for (file, image) in [
            ("gcr_pubsub_push.json", "gcr.io/my-project/hello-world:1.1"),
            (
                "artifact_registry_pubsub_push.json",
                "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1",
            ),
        ] {
            let parsed = parse_file(file, &json_headers());
            assert_eq!(parsed.format, SourceFormat::GooglePubSub, "{file}");
            let push = only_push(&parsed);
            assert_eq!(push.image.to_string(), image);
            assert_eq!(push.tag.as_str(), "1.1");
            assert_eq!(
                push.digest.as_deref(),
                Some("sha256:6ec128e26cd5b1b5b8e1f8f3a6c8e0f1d2c3b4a5968778695a4b3c2d1e0f9a8b")
            );
        }
    }

    #[test]
    fn an_unwrapped_push_with_write_metadata_is_read_whatever_its_content_type() {
        // Unwrapped, the body is the message's data and its Content-Type comes from a
        // `Content-Type` attribute, if the publisher set one; the metadata are headers.
        for content_type in [
            None,
            Some("application/json"),
            Some("application/octet-stream"),
        ] {
            let mut pairs = vec![
                (
                    "x-goog-pubsub-subscription-name",
                    "projects/my-project/subscriptions/gcr-push",
                ),
                ("x-goog-pubsub-message-id", "2070443601311540"),
                ("x-goog-pubsub-publish-time", "2021-02-26T19:13:55.749Z"),
            ];
            pairs.extend(content_type.map(|t| ("content-type", t)));
            let parsed = parse_file("gcr_pubsub_push_unwrapped.json", &headers(&pairs));
            assert_eq!(
                parsed.format,
                SourceFormat::GooglePubSub,
                "{content_type:?}"
            );
            let push = only_push(&parsed);
            assert_eq!(push.image.to_string(), "gcr.io/my-project/hello-world:1.1");
            assert_eq!(
                push.digest.as_deref(),
                Some("sha256:6ec128e26cd5b1b5b8e1f8f3a6c8e0f1d2c3b4a5968778695a4b3c2d1e0f9a8b")
            );
        }
    }

    #[test]
    fn an_unwrapped_push_is_the_message_alone() {
        let body = format!(
            r#"{{"action":"INSERT","digest":"gcr.io/p/app@{DIGEST}","tag":"gcr.io/p/app:v2"}}"#
        );
        let parsed = parse(&body, &json_headers()).unwrap();
        assert_eq!(parsed.format, SourceFormat::GooglePubSub);
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "gcr.io/p/app:v2");
        assert_eq!(push.digest.as_deref(), Some(DIGEST));
    }

    #[test]
    fn digest_only_inserts_and_deletes_are_ignored() {
        let untagged = push_of(&format!(
            r#"{{"action":"INSERT","digest":"gcr.io/p/app@{DIGEST}"}}"#
        ));
        let parsed = parse(&untagged, &json_headers()).unwrap();
        assert_eq!(ignored_reasons(&parsed), vec!["no tag"]);
        let deleted = push_of(r#"{"action":"DELETE","tag":"gcr.io/p/app:1"}"#);
        let parsed = parse(&deleted, &json_headers()).unwrap();
        assert_eq!(ignored_reasons(&parsed), vec!["action DELETE"]);
    }

    #[test]
    fn bad_data_is_named() {
        let not_base64 =
            r#"{"message": {"data": "%%%"}, "subscription": "projects/p/subscriptions/s"}"#;
        assert!(malformed(not_base64, &json_headers()).contains("message.data is not base64"));
        let not_json = push_of("hello");
        assert!(malformed(&not_json, &json_headers()).contains("does not hold JSON"));
        let bad_ref = push_of(r#"{"action":"INSERT","tag":"GCR.io/P:1"}"#);
        let message = malformed(&bad_ref, &json_headers());
        assert!(
            message.contains("message.data tag is not a valid image reference"),
            "{message}"
        );
    }
}
