//! Docker Hub's repository webhook: `{"push_data": {"tag"}, "repository": {"repo_name"},
//! "callback_url"}`. It carries no event type and no signature; every call is a push.

use crate::image_ref::{DEFAULT_REGISTRY, ImageRef, Tag};
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParsedEvent, PayloadError};

pub(in crate::webhook) fn parse(root: &Field<'_>) -> Result<Vec<ParsedEvent>, PayloadError> {
    let repo_field = root.get("repository").get("repo_name");
    let repo_name = repo_field.str()?;
    let image = ImageRef::from_parts(DEFAULT_REGISTRY, repo_name)
        .map_err(|e| repo_field.malformed(format!("is not a valid repository: {e}")))?;
    let tag_field = root.get("push_data").get("tag");
    let Some(tag) = tag_field.non_empty_str()? else {
        return Ok(vec![ParsedEvent::ignored(
            IgnoreReason::NoTag,
            Some(image.to_string()),
        )]);
    };
    let tag =
        Tag::parse(tag).map_err(|e| tag_field.malformed(format!("is not a valid tag: {e}")))?;
    Ok(vec![ParsedEvent::push(&image, tag, None)])
}

#[cfg(test)]
mod tests {
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    #[test]
    fn push_is_read_as_a_docker_io_image() {
        let parsed = parse_file("docker_hub_push.json", &json_headers());
        assert_eq!(parsed.format, SourceFormat::DockerHub);
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "docker.io/acme/shop:v1.4.0");
        assert_eq!(push.digest, None);
    }

    #[test]
    fn official_image_names_get_library() {
        let body = r#"{"push_data": {"tag": "1.25"}, "repository": {"repo_name": "nginx"}}"#;
        let parsed = parse(body, &json_headers()).unwrap();
        assert_eq!(
            only_push(&parsed).image.to_string(),
            "docker.io/library/nginx:1.25"
        );
    }

    #[test]
    fn missing_or_bad_fields_are_named() {
        assert!(
            malformed(r#"{"push_data": {"tag": "v1"}}"#, &json_headers())
                .contains("repository.repo_name is missing")
        );
        let message = malformed(
            r#"{"push_data": {"tag": "v1"}, "repository": {"repo_name": "Acme/Shop"}}"#,
            &json_headers(),
        );
        assert!(
            message.contains("repository.repo_name is not a valid repository"),
            "{message}"
        );
        let no_tag = r#"{"push_data": {}, "repository": {"repo_name": "acme/shop"}}"#;
        let parsed = parse(no_tag, &json_headers()).unwrap();
        assert_eq!(ignored_reasons(&parsed), vec!["no tag"]);
    }
}
