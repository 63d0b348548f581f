//! Harbor 2.x webhooks, in either payload format a webhook policy may choose:
//! - *Default*: `{"type": "PUSH_ARTIFACT", "event_data": {"resources": [{"digest", "tag",
//!   "resource_url": "host/project/repo:tag"}], "repository": {"repo_full_name"}}}`;
//! - *CloudEvents* (`Content-Type: application/cloudevents+json`): `{"specversion",
//!   "type": "harbor.artifact.pushed", "data": {…the same resources and repository…}}`.
//!
//! Every resource is one event. Harbor names an artifact pushed by digest with its digest
//! in `tag` (and `resource_url` ends in `@sha256:…`): that is a push without a tag.

use crate::image_ref::{ImageRef, Tag};
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParseOptions, ParsedEvent, PayloadError};

use super::{strip_tag_and_digest, valid_digest};

/// Whether the body is Harbor's: a Default payload or a CloudEvent of type `harbor.*`.
pub(in crate::webhook) fn matches(root: &serde_json::Value) -> bool {
    let kind = root.get("type").and_then(serde_json::Value::as_str);
    (root.get("event_data").is_some() && kind.is_some())
        || (root.get("specversion").is_some() && kind.is_some_and(|k| k.starts_with("harbor.")))
}

pub(in crate::webhook) fn parse(
    root: &Field<'_>,
    options: &ParseOptions,
) -> Result<Vec<ParsedEvent>, PayloadError> {
    let data = if root.get("specversion").is_present() {
        root.get("data")
    } else {
        root.get("event_data")
    };
    let kind = root.get("type").str()?;
    let repository = data.get("repository");
    let subject = repository
        .get("repo_full_name")
        .non_empty_str()?
        .map(str::to_string);
    let ignored = |reason| Ok(vec![ParsedEvent::ignored(reason, subject.clone())]);
    match kind {
        "PUSH_ARTIFACT" | "harbor.artifact.pushed" => {}
        "PULL_ARTIFACT" | "harbor.artifact.pulled" => return ignored(IgnoreReason::Pull),
        "DELETE_ARTIFACT" | "harbor.artifact.deleted" => {
            return ignored(IgnoreReason::Action("delete".to_string()));
        }
        "UPLOAD_CHART" | "harbor.chart.uploaded" => {
            return ignored(IgnoreReason::NotContainer("helm chart".to_string()));
        }
        other => return ignored(IgnoreReason::OtherEvent(other.to_string())),
    }
    let resources = data.get("resources").array()?;
    PayloadError::check_count(resources.len())?;
    Ok(resources
        .iter()
        .map(|resource| {
            read_resource(&Field::root(resource), &repository, options)
                .unwrap_or_else(|e| ParsedEvent::ignored(IgnoreReason::Invalid(e.detail()), None))
        })
        .collect())
}

fn read_resource(
    resource: &Field<'_>,
    repository: &Field<'_>,
    options: &ParseOptions,
) -> Result<ParsedEvent, PayloadError> {
    let url_field = resource.get("resource_url");
    let image = match url_field.non_empty_str()? {
        Some(url) => ImageRef::parse(strip_tag_and_digest(url))
            .map_err(|e| url_field.malformed(format!("is not a valid image reference: {e}")))?,
        None => {
            // Harbor always sends it; without it the host is the configured registry's.
            let name_field = repository.get("repo_full_name");
            let host = options.registry_host.as_deref().ok_or_else(|| {
                url_field.malformed(
                    "is missing and no registry host is configured, so the image is unknown",
                )
            })?;
            ImageRef::from_parts(host, name_field.str()?).map_err(|e| {
                name_field.malformed(format!("does not make an image reference: {e}"))
            })?
        }
    };
    let digest = valid_digest(resource.get("digest").non_empty_str()?);
    let tag_field = resource.get("tag");
    let tag = match tag_field.non_empty_str()? {
        // A digest in the tag field: pushed by digest.
        Some(tag) if !tag.contains(':') => tag,
        _ => {
            return Ok(ParsedEvent::ignored(
                IgnoreReason::NoTag,
                Some(image.to_string()),
            ));
        }
    };
    let tag =
        Tag::parse(tag).map_err(|e| tag_field.malformed(format!("is not a valid tag: {e}")))?;
    Ok(ParsedEvent::push(&image, tag, digest))
}

#[cfg(test)]
mod tests {
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    const CLOUDEVENTS: (&str, &str) = ("content-type", "application/cloudevents+json");

    fn edited(file: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut body: serde_json::Value = serde_json::from_slice(&testdata(file)).unwrap();
        edit(&mut body);
        body.to_string()
    }

    #[test]
    fn default_format_push_is_read_from_resource_url() {
        let parsed = parse_file("harbor_push.json", &json_headers());
        assert_eq!(parsed.format, SourceFormat::Harbor);
        let push = only_push(&parsed);
        assert_eq!(
            push.image.to_string(),
            "hub.harbor.com/test-webhook/debian:latest"
        );
        assert_eq!(
            push.digest.as_deref(),
            Some("sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8")
        );
    }

    #[test]
    fn cloudevents_push_with_a_tag_is_the_same_push() {
        let parsed = parse_file(
            "harbor_cloudevents_push_tagged.json",
            &headers(&[CLOUDEVENTS]),
        );
        assert_eq!(parsed.format, SourceFormat::Harbor);
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "localhost/harbor/alpine:3.8");
        assert_eq!(push.tag.as_str(), "3.8");
    }

    #[test]
    fn a_push_by_digest_has_no_tag_in_both_formats() {
        for (file, headers) in [
            ("harbor_push_digest_only.json", json_headers()),
            ("harbor_cloudevents_push.json", headers(&[CLOUDEVENTS])),
        ] {
            let parsed = parse_file(file, &headers);
            assert_eq!(ignored_reasons(&parsed), vec!["no tag"], "{file}");
            assert_eq!(
                parsed.ignored().next().unwrap().subject.as_deref(),
                Some("localhost/harbor/alpine"),
                "{file}"
            );
        }
    }

    #[test]
    fn pulls_deletes_charts_and_scans_are_ignored() {
        for (kind, reason) in [
            ("PULL_ARTIFACT", "pull event"),
            ("DELETE_ARTIFACT", "action delete"),
            ("UPLOAD_CHART", "not a container package (helm chart)"),
            (
                "SCANNING_COMPLETED",
                "not a package event (SCANNING_COMPLETED)",
            ),
        ] {
            let body = edited("harbor_push.json", |b| b["type"] = kind.into());
            let parsed = parse(&body, &json_headers()).unwrap();
            assert_eq!(ignored_reasons(&parsed), vec![reason], "{kind}");
        }
        for (kind, reason) in [
            ("harbor.artifact.pulled", "pull event"),
            ("harbor.artifact.deleted", "action delete"),
        ] {
            let body = edited("harbor_cloudevents_push.json", |b| b["type"] = kind.into());
            let parsed = parse(&body, &headers(&[CLOUDEVENTS])).unwrap();
            assert_eq!(ignored_reasons(&parsed), vec![reason], "{kind}");
        }
    }

    #[test]
    fn a_bad_resource_is_ignored_and_a_missing_list_is_malformed() {
        let body = edited("harbor_push.json", |b| {
            b["event_data"]["resources"][0]["resource_url"] = "Hub/Bad:1".into()
        });
        let parsed = parse(&body, &json_headers()).unwrap();
        let reasons = ignored_reasons(&parsed);
        assert!(
            reasons[0].contains("resource_url is not a valid image reference"),
            "{reasons:?}"
        );
        let body = edited("harbor_push.json", |b| {
            b["event_data"].as_object_mut().unwrap().remove("resources");
        });
        assert!(malformed(&body, &json_headers()).contains("event_data.resources is missing"));
    }
}
