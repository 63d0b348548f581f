//! The generic body a CI job or script sends: `{"image": "host/org/app:tag"}`, with an
//! optional `"digest": "sha256:…"` (or a digest inside the reference).

use crate::image_ref::{ImageRef, is_valid_digest};
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParsedEvent, PayloadError};

pub(in crate::webhook) fn parse(root: &Field<'_>) -> Result<Vec<ParsedEvent>, PayloadError> {
    let image_field = root.get("image");
    let image = ImageRef::parse(image_field.str()?)
        .map_err(|e| image_field.malformed(format!("is not a valid image reference: {e}")))?;
    let digest_field = root.get("digest");
    let digest = digest_field.non_empty_str()?;
    if let Some(digest) = digest
        && !is_valid_digest(digest)
    {
        return Err(digest_field.malformed(format!(
            "{digest:?} is not a digest: expected sha256:<64 lowercase hex digits>"
        )));
    }
    if let (Some(inline), Some(field)) = (image.digest(), digest)
        && inline != field
    {
        return Err(digest_field.malformed("differs from the digest inside image"));
    }
    let digest = image.digest().or(digest).map(str::to_string);
    let Some(tag) = image.tag_ref().cloned() else {
        if digest.is_some() {
            return Ok(vec![ParsedEvent::ignored(
                IgnoreReason::NoTag,
                Some(image.to_string()),
            )]);
        }
        return Err(image_field.malformed(
            "has no tag: send the pushed image as host/org/app:tag so a stage can match it",
        ));
    };
    Ok(vec![ParsedEvent::push(&image, tag, digest)])
}

#[cfg(test)]
mod tests {
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    #[test]
    fn image_with_tag_is_a_push() {
        let parsed = parse_file("generic.json", &json_headers());
        assert_eq!(parsed.format, SourceFormat::Generic);
        let push = only_push(&parsed);
        assert_eq!(
            push.image.to_string(),
            "registry.example.com/acme/shop:dev-42"
        );
        assert_eq!(push.tag.as_str(), "dev-42");
        assert_eq!(push.digest.as_deref(), Some(DIGEST));
    }

    #[test]
    fn minimal_body_without_content_type_is_accepted() {
        let parsed = parse(r#"{"image": "nginx:1.25"}"#, &headers(&[])).unwrap();
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "docker.io/library/nginx:1.25");
        assert_eq!(push.digest, None);
    }

    #[test]
    fn digest_inside_the_reference_is_kept_beside_the_image() {
        let body = format!(r#"{{"image": "127.0.0.1:5000/acme/shop:dev-1@{DIGEST}"}}"#);
        let parsed = parse(&body, &json_headers()).unwrap();
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "127.0.0.1:5000/acme/shop:dev-1");
        assert_eq!(push.digest.as_deref(), Some(DIGEST));
    }

    #[test]
    fn digest_only_reference_is_ignored_for_lack_of_a_tag() {
        let body = format!(r#"{{"image": "127.0.0.1:5000/acme/shop@{DIGEST}"}}"#);
        let parsed = parse(&body, &json_headers()).unwrap();
        assert_eq!(
            ignored_reasons(&parsed),
            vec!["no tag".to_string()],
            "{parsed:?}"
        );
    }

    #[test]
    fn bad_bodies_name_the_field_and_the_reason() {
        let cases = [
            (
                r#"{"image": "Acme/Shop:1"}"#,
                "image is not a valid image reference",
                "lowercase",
            ),
            (
                r#"{"image": "acme/shop"}"#,
                "image has no tag",
                "host/org/app:tag",
            ),
            (r#"{"image": 42}"#, "image must be a string", ""),
            (
                r#"{"image": "acme/shop:1", "digest": "sha256:xyz"}"#,
                "digest \"sha256:xyz\" is not a digest",
                "",
            ),
        ];
        for (body, expected, also) in cases {
            let message = malformed(body, &json_headers());
            assert!(message.contains(expected), "{body}: {message}");
            assert!(message.contains(also), "{body}: {message}");
        }
        let other = "1".repeat(64);
        let body = format!(r#"{{"image": "a/b:1@{DIGEST}", "digest": "sha256:{other}"}}"#);
        assert!(malformed(&body, &json_headers()).contains("digest differs"));
    }
}
