//! Quay's `repo_push` notification (quay.io and self-hosted Red Hat Quay): `{"repository":
//! "ns/repo", "namespace", "name", "docker_url": "quay.io/ns/repo", "updated_tags": [...]}`.
//!
//! One push may update several tags: each is its own event. The digest is not sent. Old
//! Quay versions sent `updated_tags` as an object of tag → image id; its keys are the tags.

use serde_json::Value;

use crate::image_ref::{ImageRef, Tag};
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParsedEvent, PayloadError};

/// Whether the body is Quay's: it alone has `docker_url` beside `updated_tags`.
pub(in crate::webhook) fn matches(root: &Value) -> bool {
    root.get("docker_url").is_some() && root.get("updated_tags").is_some()
}

pub(in crate::webhook) fn parse(root: &Field<'_>) -> Result<Vec<ParsedEvent>, PayloadError> {
    let url_field = root.get("docker_url");
    let image = ImageRef::parse(url_field.str()?)
        .map_err(|e| url_field.malformed(format!("is not a valid image reference: {e}")))?
        .without_tag();
    let tags_field = root.get("updated_tags");
    let tags: Vec<&Value> = match tags_field.value() {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(map)) => return read_tags(&image, &tags_field, map.keys()),
        _ => return Err(tags_field.malformed("must be an array of tags")),
    };
    let names: Vec<&str> = tags
        .iter()
        .map(|t| {
            t.as_str()
                .ok_or_else(|| tags_field.malformed("must hold only strings"))
        })
        .collect::<Result<_, _>>()?;
    read_tags(&image, &tags_field, names.into_iter())
}

fn read_tags<'a, S: AsRef<str> + 'a>(
    image: &ImageRef,
    field: &Field<'_>,
    tags: impl ExactSizeIterator<Item = S>,
) -> Result<Vec<ParsedEvent>, PayloadError> {
    PayloadError::check_count(tags.len())?;
    if tags.len() == 0 {
        return Ok(vec![ParsedEvent::ignored(
            IgnoreReason::NoTag,
            Some(image.to_string()),
        )]);
    }
    Ok(tags
        .map(|tag| match Tag::parse(tag.as_ref()) {
            Ok(tag) => ParsedEvent::push(image, tag, None),
            Err(e) => ParsedEvent::ignored(
                IgnoreReason::Invalid(format!(
                    "{} {:?} is not a valid tag: {e}",
                    field.path(),
                    tag.as_ref()
                )),
                Some(image.to_string()),
            ),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    #[test]
    fn documented_push_is_one_tag_on_quay_io() {
        let parsed = parse_file("quay_repo_push.json", &json_headers());
        assert_eq!(parsed.format, SourceFormat::Quay);
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "quay.io/dgangaia/test:latest");
        assert_eq!(push.digest, None);
    }

    #[test]
    fn several_tags_make_several_pushes() {
        let parsed = parse_file("quay_repo_push_test_notification.json", &json_headers());
        let images: Vec<String> = parsed.pushes().map(|p| p.image.to_string()).collect();
        assert_eq!(
            images,
            vec![
                "quay.io/devtable/simple:latest",
                "quay.io/devtable/simple:foo"
            ]
        );
    }

    #[test]
    fn the_old_object_form_and_self_hosted_hosts_are_read() {
        let body = r#"{"docker_url": "quay.example.com:8443/acme/shop", "updated_tags": {"v1": "b750fe79269d"}}"#;
        let parsed = parse(body, &json_headers()).unwrap();
        assert_eq!(
            only_push(&parsed).image.to_string(),
            "quay.example.com:8443/acme/shop:v1"
        );
    }

    #[test]
    fn no_tags_bad_tags_and_bad_urls() {
        let none = parse(
            r#"{"docker_url": "quay.io/a/b", "updated_tags": []}"#,
            &json_headers(),
        )
        .unwrap();
        assert_eq!(ignored_reasons(&none), vec!["no tag"]);
        let bad = parse(
            r#"{"docker_url": "quay.io/a/b", "updated_tags": ["-x", "v2"]}"#,
            &json_headers(),
        )
        .unwrap();
        assert_eq!(bad.pushes().count(), 1);
        assert!(ignored_reasons(&bad)[0].contains("is not a valid tag"));
        assert!(
            malformed(
                r#"{"docker_url": "Quay.io/A", "updated_tags": []}"#,
                &json_headers()
            )
            .contains("docker_url is not a valid image reference")
        );
        assert!(
            malformed(
                r#"{"docker_url": "quay.io/a/b", "updated_tags": "v1"}"#,
                &json_headers()
            )
            .contains("updated_tags must be an array")
        );
    }
}
