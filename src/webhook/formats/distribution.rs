//! Docker Distribution notifications: an envelope `{"events": [...]}` in which every blob
//! and manifest push or pull is an event. Only a manifest push with a tag counts.
//!
//! One unreadable event is ignored with a reason instead of failing the request: the
//! registry retries a refused delivery until it succeeds, which would stall every later
//! notification behind it.

use serde_json::Value;

use crate::image_ref::{ImageRef, Tag, is_valid_digest};
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParseOptions, ParsedEvent, PayloadError};

pub(in crate::webhook) fn parse(
    root: &Field<'_>,
    options: &ParseOptions,
) -> Result<Vec<ParsedEvent>, PayloadError> {
    let events = root.get("events").array()?;
    PayloadError::check_count(events.len())?;
    Ok(events
        .iter()
        .map(|event| {
            read_event(event, options)
                .unwrap_or_else(|why| ParsedEvent::ignored(IgnoreReason::Invalid(why), None))
        })
        .collect())
}

/// Manifest media types (Docker schema 1 and 2, manifest lists, OCI manifests, indexes and
/// artifacts); blobs arrive as layer, config or `application/octet-stream` types.
fn is_manifest_media_type(media_type: &str) -> bool {
    media_type.contains("manifest") || media_type.contains("image.index")
}

/// Azure Container Registry's own webhook: one Distribution-shaped event without the
/// `events` envelope (`{"action": "push", "target": {…}, "request": {"host"}}`).
pub(in crate::webhook) fn parse_single(
    root: &Value,
    options: &ParseOptions,
) -> Result<Vec<ParsedEvent>, PayloadError> {
    Ok(vec![read_event(root, options).unwrap_or_else(|why| {
        ParsedEvent::ignored(IgnoreReason::Invalid(why), None)
    })])
}

/// Reads one event; `Err` carries why it cannot be read. Also the shape of Azure Container
/// Registry's webhook and of an Event Grid `ImagePushed` event's `data`.
pub(in crate::webhook) fn read_event(
    event: &Value,
    options: &ParseOptions,
) -> Result<ParsedEvent, String> {
    if !event.is_object() {
        return Err("an event must be a JSON object".to_string());
    }
    let event = Field::root(event);
    let target = event.get("target");
    let repository = text(target.get("repository"))?;
    let tag = text(target.get("tag"))?;
    let host = text(event.get("request").get("host"))?.or(options.registry_host.as_deref());
    let subject = repository.map(|repository| {
        let mut subject = match host {
            Some(host) => format!("{host}/{repository}"),
            None => repository.to_string(),
        };
        if let Some(tag) = tag {
            subject.push(':');
            subject.push_str(tag);
        }
        subject
    });
    let ignore = |reason| Ok(ParsedEvent::ignored(reason, subject.clone()));

    match text(event.get("action"))? {
        Some("push") => {}
        Some("pull") => return ignore(IgnoreReason::Pull),
        Some(action) => return ignore(IgnoreReason::Action(action.to_string())),
        None => return Err("action is missing".to_string()),
    }
    let media_type = text(target.get("mediaType"))?.unwrap_or_default();
    if !is_manifest_media_type(media_type) {
        return ignore(IgnoreReason::LayerPush);
    }
    let Some(tag) = tag else {
        return ignore(IgnoreReason::NoTag);
    };
    let repository = repository.ok_or("target.repository is missing")?;
    let host = host.ok_or(
        "request.host is empty and no registry host is configured: \
         set the registry's http.host or the webhook's registry host",
    )?;
    let image = ImageRef::from_parts(host, repository).map_err(|e| e.to_string())?;
    let tag = Tag::parse(tag).map_err(|e| e.to_string())?;
    let digest = match text(target.get("digest"))? {
        Some(digest) if is_valid_digest(digest) => Some(digest.to_string()),
        Some(digest) => return Err(format!("target.digest {digest:?} is not a digest")),
        None => None,
    };
    Ok(ParsedEvent::push(&image, tag, digest))
}

/// A non-empty string field, its error as plain text for an `Invalid` reason.
fn text(field: Field<'_>) -> Result<Option<&str>, String> {
    field.non_empty_str().map_err(|e| e.detail())
}

#[cfg(test)]
mod tests {
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    const EVENTS_V1: &str = "application/vnd.docker.distribution.events.v1+json";
    const EVENTS_V2: &str = "application/vnd.docker.distribution.events.v2+json";

    fn event(action: &str, media_type: &str, tag: Option<&str>, host: Option<&str>) -> String {
        let tag = tag.map(|t| format!(r#","tag":"{t}""#)).unwrap_or_default();
        let request = host
            .map(|h| format!(r#","request":{{"host":"{h}","method":"PUT"}}"#))
            .unwrap_or_default();
        format!(
            r#"{{"action":"{action}","target":{{"mediaType":"{media_type}","digest":"{DIGEST}","repository":"acme/shop"{tag}}}{request}}}"#
        )
    }

    #[test]
    fn one_request_with_several_events_keeps_tagged_manifest_pushes() {
        let parsed = parse_file(
            "distribution_push.json",
            &headers(&[("content-type", EVENTS_V1)]),
        );
        assert_eq!(parsed.format, SourceFormat::Distribution);
        let pushes: Vec<_> = parsed.pushes().collect();
        assert_eq!(pushes.len(), 2, "{parsed:#?}");
        assert_eq!(
            pushes[0].image.to_string(),
            "registry.example.com:5000/acme/shop:dev-42"
        );
        assert_eq!(pushes[0].tag.as_str(), "dev-42");
        assert_eq!(pushes[0].digest.as_deref(), Some(DIGEST));
        assert_eq!(
            pushes[1].image.to_string(),
            "registry.example.com:5000/acme/worker:v2.0.0"
        );
        assert_eq!(
            ignored_reasons(&parsed),
            vec!["layer push", "no tag", "pull event"]
        );
        let pull = parsed.ignored().nth(2).unwrap();
        assert_eq!(
            pull.subject.as_deref(),
            Some("registry.example.com:5000/acme/shop:dev-42")
        );
    }

    #[test]
    fn envelope_is_recognised_by_shape_and_by_the_v2_media_type() {
        let body = format!(
            r#"{{"events":[{}]}}"#,
            event(
                "push",
                "application/vnd.docker.distribution.manifest.v2+json",
                Some("v1"),
                Some("127.0.0.1:5000")
            )
        );
        for headers in [
            json_headers(),
            headers(&[("content-type", EVENTS_V2)]),
            headers(&[]),
        ] {
            let parsed = parse(&body, &headers).unwrap();
            assert_eq!(parsed.format, SourceFormat::Distribution);
            assert_eq!(
                only_push(&parsed).image.to_string(),
                "127.0.0.1:5000/acme/shop:v1"
            );
        }
    }

    #[test]
    fn missing_host_falls_back_to_the_configured_registry() {
        let body = format!(
            r#"{{"events":[{}]}}"#,
            event(
                "push",
                "application/vnd.oci.image.manifest.v1+json",
                Some("v1"),
                None
            )
        );
        let headers = headers(&[("content-type", EVENTS_V1)]);
        let options = ParseOptions {
            registry_host: Some("registry.internal:5000".to_string()),
            ..Default::default()
        };
        let parsed = parse_payload(&headers, body.as_bytes(), &options).unwrap();
        assert_eq!(
            only_push(&parsed).image.to_string(),
            "registry.internal:5000/acme/shop:v1"
        );
        let without = parse(&body, &headers).unwrap();
        let reasons = ignored_reasons(&without);
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].starts_with("invalid event: request.host is empty"),
            "{reasons:?}"
        );
    }

    #[test]
    fn delete_and_mount_are_ignored_by_action() {
        let body = format!(
            r#"{{"events":[{},{}]}}"#,
            event("delete", "", Some("v1"), Some("r.example.com")),
            event(
                "mount",
                "application/octet-stream",
                None,
                Some("r.example.com")
            )
        );
        let parsed = parse(&body, &json_headers()).unwrap();
        assert_eq!(
            ignored_reasons(&parsed),
            vec!["action delete", "action mount"]
        );
    }

    #[test]
    fn an_unreadable_event_is_ignored_and_the_rest_still_count() {
        let good = event(
            "push",
            "application/vnd.docker.distribution.manifest.v2+json",
            Some("v1"),
            Some("r.example.com"),
        );
        let bad_repo = good.replace("acme/shop", "Acme/Shop");
        let body = format!(r#"{{"events":[42,{{"action":7}},{bad_repo},{good}]}}"#);
        let parsed = parse(&body, &json_headers()).unwrap();
        assert_eq!(parsed.pushes().count(), 1);
        let reasons = ignored_reasons(&parsed);
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("must be a JSON object"), "{reasons:?}");
        assert!(
            reasons[1].contains("action must be a string"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("must be lowercase"), "{reasons:?}");
    }

    #[test]
    fn an_envelope_without_events_is_malformed() {
        let headers = headers(&[("content-type", EVENTS_V1)]);
        assert!(malformed(r#"{"evnts": []}"#, &headers).contains("events is missing"));
        assert!(malformed(r#"{"events": {}}"#, &headers).contains("events must be an array"));
        let empty = parse(r#"{"events": []}"#, &headers).unwrap();
        assert!(empty.events.is_empty());
    }

    #[test]
    fn acr_sends_one_event_without_the_envelope() {
        let parsed = parse_file("acr_push.json", &json_headers());
        assert_eq!(parsed.format, SourceFormat::Acr);
        let push = only_push(&parsed);
        assert_eq!(
            push.image.to_string(),
            "myregistry.azurecr.io/hello-world:v1"
        );
        assert_eq!(
            push.digest.as_deref(),
            Some("sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d")
        );
        let delete = parse(
            r#"{"action": "delete", "target": {"repository": "hello-world", "tag": "v1"}, "request": {"host": "r.azurecr.io"}}"#,
            &json_headers(),
        )
        .unwrap();
        assert_eq!(ignored_reasons(&delete), vec!["action delete"]);
    }
}
